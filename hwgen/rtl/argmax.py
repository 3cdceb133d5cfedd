"""Argmax over the integer scores; ties go to the lowest index."""
from amaranth.hdl import Module, Mux, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Argmax"]


class Argmax(wiring.Component):
    """Combinational comparison tree.

    Members
    -------
    scores : ``In(ArrayLayout(score_shape, n))``
    index : ``Out(unsigned(ceil(log2 n)))``
    """

    def __init__(self, score_shape, n):
        self._n = n
        super().__init__({
            "scores": In(data.ArrayLayout(score_shape, n)),
            "index": Out(unsigned(max((n - 1).bit_length(), 1))),
        })

    def elaborate(self, platform):
        m = Module()
        # (value, index) pairs; a left entry wins ties, so the lowest index wins.
        level = [(self.scores[i], i) for i in range(self._n)]
        while len(level) > 1:
            nxt = []
            for i in range(0, len(level), 2):
                if i + 1 == len(level):
                    nxt.append(level[i])
                    continue
                (va, ia), (vb, ib) = level[i], level[i + 1]
                keep_a = va >= vb
                nxt.append((Mux(keep_a, va, vb), Mux(keep_a, ia, ib)))
            level = nxt
        m.d.comb += self.index.eq(level[0][1])
        return m
