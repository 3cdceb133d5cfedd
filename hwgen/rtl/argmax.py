"""Argmax over the integer scores; ties go to the lowest index."""
from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Argmax"]


class Argmax(wiring.Component):
    """Comparison tree, ``ceil(log2 n)`` levels of compare-and-select.

    ``pipeline = k > 0`` registers the tree after every k-th level but the
    last (in the ``sync`` domain; the network gates it with its stall
    enable), so ``index`` lags ``scores`` by :attr:`latency` cycles.

    Members
    -------
    scores : ``In(ArrayLayout(score_shape, n))``
    index : ``Out(unsigned(ceil(log2 n)))``
    """

    def __init__(self, score_shape, n, pipeline=0):
        self._n, self._shape, self._pipeline = n, score_shape, int(pipeline)
        super().__init__({
            "scores": In(data.ArrayLayout(score_shape, n)),
            "index": Out(unsigned(max((n - 1).bit_length(), 1))),
        })

    @property
    def levels(self):
        return (self._n - 1).bit_length()

    @property
    def latency(self):
        """Cycles from ``scores`` to ``index``: 0 unless pipelined."""
        return (self.levels - 1) // self._pipeline if self._pipeline and self.levels else 0

    def elaborate(self, platform):
        m = Module()
        # (value, index) pairs; a left entry wins ties, so the lowest index wins.
        level = [(self.scores[i], i) for i in range(self._n)]
        depth = 0
        while len(level) > 1:
            nxt = []
            for i in range(0, len(level), 2):
                if i + 1 == len(level):
                    nxt.append(level[i])
                    continue
                (va, ia), (vb, ib) = level[i], level[i + 1]
                keep_a = va >= vb
                nxt.append((Mux(keep_a, va, vb), Mux(keep_a, ia, ib)))
            level, depth = nxt, depth + 1
            if self._pipeline and depth % self._pipeline == 0 and depth < self.levels:
                regs = []
                for k, (v, i) in enumerate(level):
                    rv = Signal(self._shape, name=f"l{depth}_value{k}")
                    ri = Signal(self.index.shape(), name=f"l{depth}_index{k}")
                    m.d.sync += [rv.eq(v), ri.eq(i)]
                    regs.append((rv, ri))
                level = regs
        m.d.comb += self.index.eq(level[0][1])
        return m
