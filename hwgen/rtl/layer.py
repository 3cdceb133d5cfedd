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

from .arith import Adders, tree_sum, width_for

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

    def _planes(self, o):
        """The bit-planes neuron ``o`` uses: ``(alpha_b, [(j, sign), ...])``."""
        layer = self._layer
        nbits, planes, alpha = layer.nbits[o], layer.planes[:, o], layer.alpha[o]
        for b in range(layer.max_bits):
            idx = [(j, bool(planes[b, j])) for j in range(layer.in_features) if nbits[j] > b]
            if idx and alpha[b] != 0:
                yield int(alpha[b]), idx

    def _neuron(self, adders, o):
        """Variable part of ``Y[o]`` and the constant to add to it."""
        x = self.x
        var_terms, const = [], 0
        for alpha, idx in self._planes(o):
            if self._layer.input == "binary":
                # P_b = 2*pc - n, pc counting inputs equal to the plane's sign
                value, n, complemented = adders.popcount((x[j][0], not s) for j, s in idx)
                if complemented:  # pc = n - value
                    var_terms.append(-(value * (2 * alpha)))
                    const += alpha * n
                else:
                    var_terms.append(value * (2 * alpha))
                    const -= alpha * n
            else:
                top = (1 << self._layer.input_bits) - 1
                pos, hi_pos = adders.sum((x[j], top) for j, s in idx if s)
                neg, hi_neg = adders.sum((x[j], top) for j, s in idx if not s)
                var_terms.append((pos - neg) * alpha)
        return tree_sum(var_terms), const

    def _fire(self, adders, o):
        """1-bit decision of threshold neuron ``o``."""
        layer = self._layer
        thr, up = int(layer.threshold[o]), layer.direction[o] > 0
        planes = list(self._planes(o))
        if layer.input == "binary" and len(planes) == 1:
            # One plane: Y = alpha*(2*pc - n), so the decision is pc >= k, fused
            # into the popcount's carry chain.
            (alpha, idx), = planes
            n = len(idx)
            terms = [(self.x[j][0], not s) for j, s in idx]
            if up:    # alpha*(2pc - n) >= thr  <=>  pc >= ceil((thr + alpha*n) / (2*alpha))
                return adders.at_least(terms, -((-(thr + alpha * n)) // (2 * alpha)))
            # alpha*(2pc - n) <= thr  <=>  not pc >= floor((thr + alpha*n) / (2*alpha)) + 1
            return ~adders.at_least(terms, (thr + alpha * n) // (2 * alpha) + 1)
        var, const = self._neuron(adders, o)
        # Y = var + const; fire iff Y >= thr (dir +1) or Y <= thr (dir -1).
        return var >= thr - const if up else var <= thr - const

    def elaborate(self, platform):
        m = Module()
        layer = self._layer
        for o in range(layer.out_features):
            adders = Adders(m, f"n{o}")
            if layer.output == "scores":
                var, const = self._neuron(adders, o)
                width, is_signed = self.acc_shapes[o]
                acc = Signal((signed if is_signed else unsigned)(width), name=f"acc{o}")
                m.d.comb += acc.eq(var + (const + int(layer.bias[o])))
                m.d.comb += self.y[o].eq(acc)
            else:
                m.d.comb += self.y[o].eq(self._fire(adders, o))
        return m
