"""Argmax over the integer scores; ties go to the lowest index."""
from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Argmax"]


class Argmax(wiring.Component):
    """Comparison tree, ``ceil(log2 n)`` levels of compare-and-select.

    ``pipeline = k > 0`` registers every k-th level and the last between
    its comparison and its select, so that a clock spans one compare (in
    the ``sync`` domain; the network gates it with its stall enable), and
    ``index`` lags ``scores`` by :attr:`latency` cycles.

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
        return -(-self.levels // self._pipeline) if self._pipeline else 0

    def elaborate(self, platform):
        m = Module()
        # (value, index) pairs; a left entry wins ties, so the lowest index wins.
        level = [(self.scores[i], i) for i in range(self._n)]
        depth = 0
        while len(level) > 1:
            depth += 1
            last = depth == self.levels
            registered = self._pipeline and (depth % self._pipeline == 0 or last)

            def reg(value, shape, name):
                r = Signal(shape, name=f"l{depth}_{name}")
                m.d.sync += r.eq(value)
                return r
            nxt = []
            for i in range(0, len(level), 2):
                if i + 1 == len(level):     # the odd one out goes on (through the register)
                    v, ix = level[i]
                    if registered:
                        v, ix = reg(v, self._shape, f"value{i}"), reg(ix, self.index.shape(), f"index{i}")
                    nxt.append((v, ix))
                    continue
                (va, ia), (vb, ib) = level[i], level[i + 1]
                # va >= vb as the sign of the exact difference: the carry
                # chain's last bit, with no logic after it
                keep_a = ~(va - vb)[-1]
                if registered:   # compare, register, then select: one carry chain per clock
                    keep_a = reg(keep_a, 1, f"keep{i}")
                    ia, ib = reg(ia, self.index.shape(), f"index{i}"), reg(ib, self.index.shape(), f"index{i + 1}")
                    if not last:
                        va, vb = reg(va, self._shape, f"value{i}"), reg(vb, self._shape, f"value{i + 1}")
                nxt.append((None if last else Mux(keep_a, va, vb), Mux(keep_a, ia, ib)))
            level = nxt
        m.d.comb += self.index.eq(level[0][1])
        return m
