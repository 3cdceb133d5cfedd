"""One fully connected HBB layer as a combinational Amaranth component.

Weights are constants, so the per-parameter-bitwidth datapath is wiring plus
adders: a weight with n bits contributes n terms, one per bit-plane it has.

* ``binary`` input (XNOR-popcount): ``P_b = 2*pc_b - |m_b|`` where ``pc_b``
  counts the inputs equal to the plane's sign (``a_j`` or ``~a_j``).
* ``uint`` input (MAC): ``P_b = sum(x_j, s=+1) - sum(x_j, s=-1)``, a signed
  adder tree of the inputs.

Then ``Y = sum_b alpha_b P_b``; constants are folded into the threshold (or
added to the score) so the neuron needs only the variable part.
"""
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .arith import tree_sum, width_for

__all__ = ["LinearLayer"]


class LinearLayer(wiring.Component):
    """Combinational layer for one :class:`hwgen.artifact.Layer`.

    Members
    -------
    x : ``In(ArrayLayout(unsigned(input_bits), in_features))``
        Input vector; for binary inputs bit 1 means +1.
    y : ``Out(unsigned(out_features))`` for threshold layers (bit o = neuron
        o fires), ``Out(ArrayLayout(signed(score_width), out_features))`` for
        the scores layer.
    """

    def __init__(self, layer):
        self._layer = layer
        lo, hi = layer.bounds()
        self.acc_shapes = [width_for(l, h) for l, h in zip(lo, hi)]
        if layer.output == "scores":
            width = max(w for w, _ in self.acc_shapes) + (not all(s for _, s in self.acc_shapes))
            y_shape = data.ArrayLayout(signed(width), layer.out_features)
        else:
            y_shape = unsigned(layer.out_features)
        super().__init__({
            "x": In(data.ArrayLayout(unsigned(layer.input_bits), layer.in_features)),
            "y": Out(y_shape),
        })

    @property
    def layer(self):
        return self._layer

    def _neuron(self, o):
        """Variable part of ``Y[o]`` and the constant to add to it."""
        layer, x = self._layer, self.x
        nbits, planes, alpha = layer.nbits[o], layer.planes[:, o], layer.alpha[o]
        var_terms, const = [], 0
        for b in range(layer.max_bits):
            idx = [j for j in range(layer.in_features) if nbits[j] > b]
            if not idx or alpha[b] == 0:
                continue
            if layer.input == "binary":
                pc = tree_sum(x[j][0] if planes[b, j] else ~x[j][0] for j in idx)
                var_terms.append(pc * int(2 * alpha[b]))
                const -= int(alpha[b]) * len(idx)
            else:
                pos = tree_sum(x[j] for j in idx if planes[b, j])
                neg = tree_sum(x[j] for j in idx if not planes[b, j])
                var_terms.append((pos - neg) * int(alpha[b]))
        return tree_sum(var_terms), const

    def elaborate(self, platform):
        m = Module()
        layer = self._layer
        for o in range(layer.out_features):
            var, const = self._neuron(o)
            width, is_signed = self.acc_shapes[o]
            if layer.output == "scores":
                acc = Signal((signed if is_signed else unsigned)(width), name=f"acc{o}")
                m.d.comb += acc.eq(var + (const + int(layer.bias[o])))
                m.d.comb += self.y[o].eq(acc)
            else:
                # Y = var + const; fire iff Y >= thr (dir +1) or Y <= thr (dir -1).
                thr = int(layer.threshold[o]) - const
                fire = var >= thr if layer.direction[o] > 0 else var <= thr
                m.d.comb += self.y[o].eq(fire)
        return m
