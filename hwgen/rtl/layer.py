"""One fully connected HBB layer as a combinational Amaranth component.

Weights are constants, so the per-parameter-bitwidth datapath is wiring plus
adders: a weight with n bits contributes n terms, one per bit-plane it has.

* ``binary`` input (XNOR-popcount): ``P_b = 2*pc_b - |m_b|`` where ``pc_b``
  counts the inputs equal to the plane's sign (``a_j`` or ``~a_j``).
* ``uint`` input (MAC): ``P_b = sum(x_j, s=+1) - sum(x_j, s=-1)``, two kept
  adder trees and one subtraction; or, where several planes of the layer
  cover the same inputs (every input, for the first plane), ``2*sum(x_j,
  s=+1) - S`` or ``S - 2*sum(x_j, s=-1)``, whichever side is smaller, with
  ``S`` the sum over those inputs: one kept tree shared by the planes.

Then ``Y = sum_b alpha_b P_b``; constants are folded into the threshold (or
added to the score) so the neuron needs only the variable part. Pipelined
(``pipeline > 0``), that sum is a shift-add tree over the digits of each
``alpha_b`` (:meth:`~hwgen.rtl.arith.Adders.scaled_sum`), one carry chain per
adder level, and a threshold decision is the sign bit of one subtraction.

``datapath = "direct"`` builds the same ``Y`` as a direct constant MAC
instead: the neuron's integer weights ``w_j = sum_b alpha_b s_bj`` are
grouped by magnitude ``v``, and each group is one popcount (or pair of
trees) over its inputs, signs taken from ``w_j``: ``Y = sum_v v * P_v``. A
weight is then one input of one tree whatever its bit count, at the price of
up to ``2^(bits-1)`` groups (constant multiplies) per neuron instead of one
per plane. Which is smaller depends on the layer; :mod:`hwgen.explore.datapath`
measures both. A neuron with
a single bit-plane and binary inputs compares its popcount inside the tree's
last carry chain (``Adders.at_least``). The adder structures are described in
:mod:`hwgen.rtl.arith`. With ``family = "xc7"`` the neuron's planes (or
magnitude groups), scales and threshold or bias become weighted bits of one
7-series bit heap instead (:meth:`LinearLayer._groups`).
"""
import numpy as np
from amaranth.hdl import Const, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .arith import Adders, Staged, tree_sum, width_for

__all__ = ["DATAPATHS", "LinearLayer", "score_shape"]

#: how a layer's constant weights become adders (see the module docstring)
DATAPATHS = ("planes", "direct")


def score_shape(layer):
    """Shape of one score of a ``scores`` layer: wide enough for every
    neuron's exact bounds, signed if any neuron needs a sign."""
    shapes = [width_for(l, h) for l, h in zip(*layer.bounds())]
    width = max(w for w, _ in shapes) + (not all(s for _, s in shapes))
    return signed(width)


class LinearLayer(wiring.Component):
    """One :class:`hwgen.core.artifact.Layer`, combinational or pipelined.

    ``pipeline = k > 0`` registers the adder structures every k adder levels
    (in the ``sync`` domain; the network gates it with its stall enable); the
    output then lags the input by :attr:`latency` cycles. ``k = 0`` (default)
    is purely combinational. ``family`` (see :data:`hwgen.rtl.arith.FAMILIES`)
    picks the adder structures: ``xc7`` builds each neuron as one weighted
    bit heap of 7-series primitives (:meth:`hwgen.rtl.arith.Adders.weighted`).

    Members
    -------
    x : ``In(ArrayLayout(unsigned(input_bits), in_features))``
        Input vector; for binary inputs bit 1 means +1.
    y : ``Out(unsigned(out_features))`` for threshold layers (bit o = neuron
        o fires), ``Out(ArrayLayout(signed(score_width), out_features))`` for
        the scores layer.
    """

    def __init__(self, layer, pipeline=0, datapath="planes", family="generic"):
        if datapath not in DATAPATHS:
            raise ValueError(f"datapath must be one of {', '.join(DATAPATHS)}, not {datapath!r}")
        self._layer, self._pipeline, self._latency, self._built = layer, int(pipeline), None, None
        self.datapath_kind, self.family = datapath, family
        lo, hi = layer.bounds()
        self.acc_shapes = [width_for(l, h) for l, h in zip(lo, hi)]
        if layer.output == "scores":
            y_shape = data.ArrayLayout(score_shape(layer), layer.out_features)
        else:
            y_shape = unsigned(layer.out_features)
        super().__init__({
            "x": In(data.ArrayLayout(unsigned(layer.input_bits), layer.in_features)),
            "y": Out(y_shape),
        })

    @property
    def layer(self):
        return self._layer

    @property
    def pipeline(self):
        return self._pipeline

    @property
    def latency(self):
        """Cycles from ``x`` to ``y``: 0 unless pipelined."""
        if self._latency is None:
            if not self._pipeline:
                self._latency = 0
            else:   # the stages follow from the structure; elaborate reuses it
                self._latency = max((out.stage for out, _ in self._structure()[1]), default=0)
        return self._latency

    def _structure(self):
        """``(module, neurons)``: the adder structures, built once."""
        if self._built is None:
            m = Module()
            m._MustUse__silence = True   # unused if only the latency is asked for
            self._built = m, self._build(m)
        return self._built

    def _terms(self, o):
        """Neuron ``o``'s terms ``(weight, [(j, sign), ...])``, ``Y`` being
        the sum of ``weight * sum_j (+-a_j)``: its bit-planes ``(alpha_b,
        plane signs)``, or with the direct datapath its weight magnitudes ``(v,
        signs of the w_j with |w_j| = v)``."""
        layer = self._layer
        if self.datapath_kind == "direct":
            w = self._weights[o]
            for v in np.unique(np.abs(w[w != 0])):
                yield int(v), [(int(j), bool(w[j] > 0)) for j in np.flatnonzero(np.abs(w) == v)]
            return
        nbits, planes, alpha = layer.nbits[o], layer.planes[:, o], layer.alpha[o]
        for b in range(layer.max_bits):
            idx = [(j, bool(planes[b, j])) for j in range(layer.in_features) if nbits[j] > b]
            if idx and alpha[b] != 0:
                yield int(alpha[b]), idx

    def _neuron(self, adders, o, finish):
        """``finish(var, const)`` as one staged adder level, where
        ``Y[o] = var + const`` and ``var`` is the sum over the bit-planes."""
        x = self.x
        items, weights, bounds, const = [], [], [], 0
        for alpha, idx in self._terms(o):
            if self._layer.input == "binary":
                # P_b = 2*pc - n, pc counting inputs equal to the plane's sign
                count, n, complemented = adders.popcount((x[j][0], not s) for j, s in idx)
                items.append(count)
                weights.append(-2 * alpha if complemented else 2 * alpha)   # complemented: pc = n - count
                bounds.append((0, n))
                const += alpha * n if complemented else -alpha * n
            else:
                top = (1 << self._layer.input_bits) - 1
                cover = tuple(j for j, _ in idx)
                if cover in self._shared_sums:
                    # P = 2*sum_+ - S = S - 2*sum_-, S the sum over the plane's inputs, shared
                    total = self._sum_over(cover)
                    side, sign = _smaller_side(idx)
                    part, _ = adders.sum((Staged(x[j]), top) for j in side)
                    rest = (len(cover) - len(side)) * top
                    if sign > 0:
                        items.append(adders.node(lambda p, t: 2 * p - t, [part, total]))
                        bounds.append((-rest, len(side) * top))
                    else:
                        items.append(adders.node(lambda q, t: t - 2 * q, [part, total]))
                        bounds.append((-len(side) * top, rest))
                else:
                    pos, hi = adders.sum((Staged(x[j]), top) for j, s in idx if s)
                    neg, lo = adders.sum((Staged(x[j]), top) for j, s in idx if not s)
                    items.append(adders.node(lambda p, q: p - q, [pos, neg]))
                    bounds.append((-lo, hi))
                weights.append(alpha)
        if not items:
            return Staged(finish(Const(0, 1), const))
        if self._pipeline:   # every level one carry chain: as fast as the pipeline's registers allow
            var, _, _ = adders.scaled_sum((v, w, lo, hi) for v, w, (lo, hi) in zip(items, weights, bounds))
            return adders.node(lambda v: finish(v, const), [var])
        return adders.node(lambda *v: finish(tree_sum(w * a for w, a in zip(weights, v)), const), items)

    def _groups(self, o):
        """Neuron ``o`` as weighted bits for :meth:`Adders.weighted`:
        ``(groups, const, values)`` with ``Y[o] = const + sum_g w_g * sum
        2^col * t + sum_v w_v * v``, ``values`` the shared sums it reads."""
        x, layer = self.x, self._layer
        groups, const, values = [], 0, []
        for alpha, idx in self._terms(o):
            cover = tuple(j for j, _ in idx)
            if layer.input == "binary":    # alpha * (2 * pc - n), pc counting x_j == s_j
                groups.append((2 * alpha, [(x[j][0], not s, 0) for j, s in idx]))
                const -= alpha * len(idx)
            elif cover in self._shared_sums:   # alpha * (2 * sum_+ - S) or alpha * (S - 2 * sum_-)
                k, (side, sign) = layer.input_bits, _smaller_side(idx)
                groups.append((2 * alpha * sign, [(x[j][b], False, b) for j in side for b in range(k)]))
                values.append((-alpha * sign, self._sum_over(cover), len(cover) * ((1 << k) - 1)))
            else:                          # alpha * (sum_+ x - sum_- x), -x = ~x - (2^K - 1)
                k = layer.input_bits
                groups.append((alpha, [(x[j][b], not s, b) for j, s in idx for b in range(k)]))
                const -= alpha * sum(not s for _, s in idx) * ((1 << k) - 1)
        return groups, const, values

    def _fire(self, adders, o):
        """Staged 1-bit decision of threshold neuron ``o``."""
        layer = self._layer
        thr, up = int(layer.threshold[o]), layer.direction[o] > 0
        if self.family == "xc7":   # the whole neuron as bit heaps: Y >= thr, or not Y >= thr + 1
            groups, const, values = self._groups(o)
            out = adders.weighted(groups, const, threshold=thr if up else thr + 1, values=values)
            return out if up else Staged(~out.value, out.stage, out.depth)
        planes = list(self._terms(o))
        if layer.input == "binary" and len(planes) == 1:
            # One plane: Y = alpha*(2*pc - n), so the decision is pc >= k, fused
            # into the popcount's carry chain.
            (alpha, idx), = planes
            n = len(idx)
            terms = [(self.x[j][0], not s) for j, s in idx]
            if up:    # alpha*(2pc - n) >= thr  <=>  pc >= ceil((thr + alpha*n) / (2*alpha))
                return adders.at_least(terms, -((-(thr + alpha * n)) // (2 * alpha)))
            # alpha*(2pc - n) <= thr  <=>  not pc >= floor((thr + alpha*n) / (2*alpha)) + 1
            out = adders.at_least(terms, (thr + alpha * n) // (2 * alpha) + 1)
            return Staged(~out.value, out.stage, out.depth)
        # Y = var + const; fire iff Y >= thr (dir +1) or Y <= thr (dir -1).
        if self._pipeline:
            # as the sign of thr - 1 - Y, or of Y - (thr + 1): the top bit of
            # one carry chain, where a compare added two LUTs after its chain
            return self._neuron(adders, o, lambda var, const: (thr - 1 - const - var)[-1] if up
                                else (var - (thr + 1 - const))[-1])
        return self._neuron(adders, o, lambda var, const: var >= thr - const if up else var <= thr - const)

    def _sums_to_share(self):
        """The input sets whose sum ``S`` a pixel layer shares between the
        planes over exactly those inputs: a set worth it when one tree over
        it plus one over the smaller side of each plane beats both sides of
        each (from two planes on). Planes over every input share one set."""
        layer = self._layer
        if layer.input == "binary":
            return {}
        planes = {}
        for o in range(layer.out_features):
            for _, idx in self._terms(o):
                planes.setdefault(tuple(j for j, _ in idx), []).append(sum(s for _, s in idx))
        return {cover: None for cover, plus in planes.items()
                if len(cover) + sum(min(p, len(cover) - p) for p in plus) < len(cover) * len(plus)}

    def _sum_over(self, cover):
        """``S = sum_j x_j`` over the inputs ``cover``, built once for the layer."""
        if self._shared_sums[cover] is None:
            k = self._layer.input_bits
            if self.family == "xc7":       # one bit heap, exact in enough bits
                width = (len(cover) * ((1 << k) - 1)).bit_length()
                total = self._shared.weighted([(1, [(self.x[j][b], False, b) for j in cover for b in range(k)])],
                                              0, width=width)
            else:
                total = self._shared.sum((Staged(self.x[j]), (1 << k) - 1) for j in cover)[0]
            self._shared_sums[cover] = total
        return self._shared_sums[cover]

    def _build(self, m):
        """Every neuron's staged output and its adder builder."""
        layer, outs = self._layer, []
        self._weights = layer.weights() if self.datapath_kind == "direct" else None
        self._shared = Adders(m, "all", self._pipeline, self.family)
        self._shared_sums = self._sums_to_share()
        for o in range(layer.out_features):
            adders = Adders(m, f"n{o}", self._pipeline, self.family)
            if layer.output == "scores" and self.family == "xc7":   # Y + bias in two's complement
                groups, const, values = self._groups(o)
                out = adders.weighted(groups, const + int(layer.bias[o]), width=self.acc_shapes[o][0],
                                      values=values)
            elif layer.output == "scores":
                bias = int(layer.bias[o])
                out = self._neuron(adders, o, lambda var, const: var + (const + bias))
            else:
                out = self._fire(adders, o)
            outs.append((out, adders))
        return outs

    def elaborate(self, platform):
        layer, latency = self._layer, self.latency
        m, neurons = self._structure()
        self._built = None   # consumed: a second elaboration builds afresh
        for o, (out, adders) in enumerate(neurons):
            value = adders.delay(out, latency)
            if layer.output == "scores":
                width, is_signed = self.acc_shapes[o]
                acc = Signal((signed if is_signed else unsigned)(width), name=f"acc{o}")
                m.d.comb += [acc.eq(value), self.y[o].eq(acc)]
            else:
                m.d.comb += self.y[o].eq(value)
        return m


def _smaller_side(idx):
    """``(inputs, sign)`` of a plane's smaller sign side (``idx``: ``(j,
    s)`` pairs): the plane is ``2*sum(inputs) - S`` for sign +1, ``S -
    2*sum(inputs)`` for sign -1, ``S`` the sum over all its inputs."""
    plus = [j for j, s in idx if s]
    if 2 * len(plus) <= len(idx):
        return plus, 1
    return [j for j, s in idx if not s], -1
