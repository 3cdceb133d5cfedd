"""Argmax over the integer scores; ties go to the lowest index."""
from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Argmax", "ArgmaxScan"]


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


class ArgmaxScan(wiring.Component):
    """One score at a time over scores that stay put: one comparator and a
    running maximum instead of a tree, for a stream slow enough to wait
    :attr:`latency` clocks (:class:`hwgen.rtl.network.StreamNetwork` holds
    its last layer's output while it scans).

    ``k`` counts the clocks since the scores arrived (``step`` while it
    counts). Score ``k / clocks`` is selected into a register on the first
    of its ``clocks``; it then replaces the running maximum if it is the
    first score or a larger one (so the lowest index wins ties). With
    ``clocks = 2`` the comparison is registered before the maximum is
    updated: one carry chain per clock, as in a pipelined :class:`Argmax`
    level. Comparing and updating in one clock (``clocks = 1``) made the
    scan the critical path of the folded demo at ``--pipeline 1`` on the
    iCE40 HX8K (121 MHz, against 168 on the ECP5), so the network uses
    ``clocks = 2`` where its layers are pipelined.

    Members
    -------
    scores : ``In(ArrayLayout(score_shape, n))``
    k : ``In(range(latency + 1))``
    step : ``In(1)``
    index : ``Out(unsigned(ceil(log2 n)))``
    """

    def __init__(self, score_shape, n, clocks=1):
        if clocks not in (1, 2):
            raise ValueError(f"clocks per score must be 1 or 2, not {clocks}")
        self._n, self._shape, self._clocks = n, score_shape, clocks
        super().__init__({
            "scores": In(data.ArrayLayout(score_shape, n)),
            "k": In(range(self.latency + 1)),
            "step": In(1),
            "index": Out(unsigned(max((n - 1).bit_length(), 1))),
        })

    @property
    def latency(self):
        """Clocks from the scores' arrival to ``index``: ``clocks`` per
        score and one to compare the last."""
        return self._clocks * self._n + 1

    def elaborate(self, platform):
        m = Module()
        at = self.k[self._clocks - 1:]                   # the score this clock selects
        first_clock = self.k[0] == 0 if self._clocks == 2 else 1
        best, score = Signal(self._shape), Signal(self._shape)
        k, selected = Signal.like(self.index), Signal()
        m.d.sync += [score.eq(self.scores[at[:len(self.index)]]), k.eq(at),
                     selected.eq(self.step & first_clock & (at < self._n))]
        larger = selected & ((k == 0) | (best - score)[-1])     # score > best: best - score < 0
        if self._clocks == 2:
            registered = Signal()
            m.d.sync += registered.eq(larger)
            larger = registered
        with m.If(larger):
            m.d.sync += [best.eq(score), self.index.eq(k)]
        return m
