"""The kept adder structures of hwgen.rtl.arith, exhaustively in Amaranth's
simulator, and their purpose, in Yosys: the structure survives synthesis."""
import itertools

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hwgen.rtl.arith import Adders, Staged, _naf, _slots


class Counter(wiring.Component):
    """popcount and every ``at_least`` threshold over n terms with fixed inversions."""

    def __init__(self, inverted, thresholds):
        self.inverted, self.thresholds = inverted, thresholds
        n = len(inverted)
        super().__init__({"x": In(max(n, 1)), "count": Out(range(n + 1)), "ge": Out(len(thresholds))})

    def elaborate(self, platform):
        m = Module()
        n = len(self.inverted)
        terms = [(self.x[j], inv) for j, inv in enumerate(self.inverted)]
        adders = Adders(m, "t")
        value, size, complemented = adders.popcount(terms)
        assert size == n
        m.d.comb += self.count.eq(size - value.value if complemented else value.value)
        for k, t in enumerate(self.thresholds):
            m.d.comb += self.ge[k].eq(adders.at_least(terms, t).value)
        return m


def simulate_all(dut, n):
    got = []

    async def bench(ctx):
        for v in range(1 << n):
            ctx.set(dut.x, v)
            got.append((ctx.get(dut.count), ctx.get(dut.ge)))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return got


def patterns():
    """Inversion patterns: none, all, alternating, mostly inverted, random."""
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 4, 5, 7, 8, 9, 11):
        yield [False] * n
        yield [True] * n
        yield [j % 2 == 1 for j in range(n)]
        yield [j != 0 for j in range(n)]
        yield [bool(b) for b in rng.integers(0, 2, n)]


@pytest.mark.parametrize("inverted", list(patterns()), ids=lambda p: "".join("~" if i else "." for i in p))
def test_popcount_and_threshold_exhaustive(inverted):
    n = len(inverted)
    thresholds = list(range(-1, n + 2))
    got = simulate_all(Counter(inverted, thresholds), n)
    for v, (count, ge) in enumerate(got):
        bits = [(v >> j) & 1 for j in range(n)]
        want = sum(b ^ inv for b, inv in zip(bits, inverted))
        assert count == want, (v, count, want)
        assert [(ge >> k) & 1 for k in range(len(thresholds))] == [int(want >= t) for t in thresholds], v


def test_tree_shape_carry_slots():
    # a tree over 2^(L+1) - 1 terms: 1 carry-in slot + two subtrees over 2^L - 1
    assert [_slots(n) for n in (3, 7, 15, 31, 63)] == [0, 1, 3, 7, 15]


def test_multibit_sum_exhaustive():
    hi = [3, 7, 1, 5, 2]

    class Summer(wiring.Component):
        x: In(unsigned(3)).array(len(hi))
        s: Out(8)

        def elaborate(self, platform):
            m = Module()
            value, top = Adders(m, "s").sum((Staged(x), h) for x, h in zip(self.x, hi))
            assert top == sum(hi)
            m.d.comb += self.s.eq(value.value)
            return m

    dut = Summer()
    vectors = [v for v in itertools.product(*[range(h + 1) for h in hi])]
    got = []

    async def bench(ctx):
        for v in vectors:
            for j, a in enumerate(v):
                ctx.set(dut.x[j], a)
            got.append(ctx.get(dut.s))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert got == [sum(v) for v in vectors]


def test_naf_digits_are_fewest_and_exact():
    for w in range(-300, 301):
        digits = _naf(w)
        assert sum(sign << shift for sign, shift in digits) == w
        shifts = [shift for _, shift in digits]
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))   # non-adjacent, so fewest digits
    assert _naf(7) == [(-1, 0), (1, 3)] and _naf(-7) == [(1, 0), (-1, 3)] and _naf(0) == []


@pytest.mark.parametrize("every", [0, 1, 2])
def test_scaled_sum_is_exact_at_its_bounds_and_pipelined(every):
    """``sum w_i * v_i`` over signed and unsigned values, positive, negative
    and all-negative weights, without a multiplier: exact on every corner of
    the bounds and on random values, a new vector every clock, the result
    ``stage`` clocks later; its bounds hold every value."""
    cases = [[(-5, 9, 37), (0, 16, -74), (-12, 3, 1)],
             [(0, 7, -6), (0, 64, -255)],                  # negative weights, digits of both signs
             [(0, 7, -4), (0, 64, -1), (-3, 3, -2)],       # every digit negative: one negation level
             [(-31, 0, 128), (0, 1, 3)],
             [(0, 31, 0)]]
    rng = np.random.default_rng(every)
    for case in cases:
        m = Module()
        xs = [Signal(range(lo, hi + 1), name=f"x{k}") for k, (lo, hi, _) in enumerate(case)]
        value, lo, hi = Adders(m, "s", every).scaled_sum((Staged(x), w, l, h) for x, (l, h, w) in zip(xs, case))
        out = Signal(range(min(lo, 0), max(hi, 1) + 1))
        m.d.comb += out.eq(value.value)
        corners = list(itertools.product(*[(l, h) for l, h, _ in case]))
        assert lo <= min(sum(w * v for (_, _, w), v in zip(case, c)) for c in corners)
        assert hi >= max(sum(w * v for (_, _, w), v in zip(case, c)) for c in corners)
        vectors = corners + [tuple(int(rng.integers(l, h + 1)) for l, h, _ in case) for _ in range(30)]
        got = []

        async def bench(ctx):
            for v in vectors + [vectors[0]] * value.stage:
                for x, a in zip(xs, v):
                    ctx.set(x, a)
                if value.stage:
                    await ctx.tick()
                got.append(ctx.get(out))

        sim = Simulator(m)
        sim.add_clock(1e-6, if_exists=True)
        sim.add_testbench(bench)
        sim.run()
        assert (value.stage > 0) == (every > 0 and len([d for _, _, w in case for d in _naf(w)]) > 1)
        skip = max(value.stage - 1, 0)
        assert got[skip:skip + len(vectors)] == [sum(w * a for (_, _, w), a in zip(case, v)) for v in vectors]


def test_adders_keep_their_sums_in_the_verilog():
    """Every intermediate sum is its own wire marked keep (what stops Yosys's
    alumacc from merging the tree into one multi-operand adder)."""
    dut = Counter([j % 3 == 0 for j in range(31)], [16])
    text = verilog.convert(dut, name="t", emit_src=False)
    kept = [line for line in text.splitlines() if "keep" in line]
    assert len(kept) >= 15


@pytest.mark.slow
def test_kept_popcount_survives_ice40_synthesis(tmp_path):
    """A binary neuron over 64 one-bit weights, as hwgen generates it, maps to
    a carry-chain tree: at most 1.3 SB_LUT4 per weight bit (Yosys's own
    mapping of the plain sum takes 1.70; bench/popcount_area.py)."""
    from hwgen.core.artifact import Layer
    from hwgen.rtl.layer import LinearLayer
    from hwgen.tools.synth import synthesize_sources
    rng = np.random.default_rng(1)
    layer = Layer(name="dut", input="binary", input_bits=1, output="threshold",
                  nbits=np.ones((1, 64), np.uint8), planes=rng.integers(0, 2, (1, 1, 64)).astype(np.uint8),
                  alpha=np.array([[256]], np.int64), threshold=np.array([512], np.int64),
                  direction=np.array([1], np.int8))
    (tmp_path / "t.v").write_text(verilog.convert(LinearLayer(layer), name="t", emit_src=False))
    res = synthesize_sources(tmp_path, ["t.v"], "t", "ice40")
    assert res["total"]["carry"] > 0
    assert res["total"]["lut4"] <= 1.3 * 64, res["total"]
