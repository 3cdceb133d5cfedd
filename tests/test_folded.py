"""The folded (PE x SIMD, weights in ROM per bit-plane) architecture against
the golden reference, in Amaranth's simulator; its schedule and folding choice."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.core import reference
from hwgen.errors import HwgenError
from hwgen.rtl.folded import _fewest_lanes, choose_folding, estimate_cycles, estimate_luts, layer_pace, schedule
from hwgen.rtl.network import StreamNetwork

from conftest import edge_inputs, random_model, stream_through, tie_thresholds


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), data=st.data())
def test_folded_network_matches_reference_under_backpressure(seed, data):
    """Random shapes, bit mixes (pruned weights included), foldings and a sink
    that refuses about 40 % of the cycles: every label and score is exact."""
    rng = np.random.default_rng(seed)
    sizes = [data.draw(st.integers(1, 12)) for _ in range(data.draw(st.integers(2, 4)))]
    sizes[-1] = max(sizes[-1], 2)
    bits = data.draw(st.integers(1, 4))
    model = random_model(rng, sizes, input_bits=bits, prune=data.draw(st.sampled_from([0.0, 0.1, 0.6])))
    folding = [(data.draw(st.sampled_from(divisors(layer.out_features))),
                data.draw(st.sampled_from(divisors(layer.in_features)))) for layer in model.layers]
    x = edge_inputs(rng, 8, sizes[0], (1 << bits) - 1)
    if data.draw(st.booleans()):
        tie_thresholds(model, x, rng)
    golden = reference.infer(model, x)
    dut = StreamNetwork(model, folding, data.draw(st.sampled_from([0, 1, 2])))
    got = stream_through(dut, x, sizes[-1], ready=lambda: rng.random() < 0.6)
    assert [g[1] for g in got] == golden.pred.tolist()
    assert [g[2] for g in got] == golden.scores.tolist()


@pytest.mark.parametrize("a_w", [1, 2, 3, 5, 8, 9, 12, 17])
def test_pipelined_multiply_by_alpha_is_exact_every_clock(a_w):
    """``pipeline = 1``'s shift-add tree: a new (alpha, part) pair every
    clock, each product exact ``_multiply_stages`` clocks later, for signed
    parts (pixel lanes) and unsigned ones (binary lanes) at the extremes."""
    from amaranth.hdl import Module, Signal, signed, unsigned
    from amaranth.sim import Simulator

    from hwgen.rtl.folded import FoldedLayer

    rng = np.random.default_rng(a_w)
    model = random_model(rng, [4, 2], input_bits=1)
    layer = model.layers[0]
    layer.alpha[...] = rng.integers(0, 1 << a_w, layer.alpha.shape)
    layer.alpha[0, 0] = (1 << a_w) - 1                     # sets the alpha width
    folded = FoldedLayer(layer, 1, 1, pipeline=1)
    folded._MustUse__silence = True          # only its multiply is built
    assert folded._alpha_width() == a_w
    stages = folded._multiply_stages()
    assert stages == max(int(np.ceil(np.log2(a_w))), 1)
    for part_shape in (signed(7), unsigned(6)):
        m = Module()
        alpha, part = Signal(a_w), Signal(part_shape)
        product = folded._multiply(m, alpha, part, "p")
        lo, hi = (-64, 63) if part_shape.signed else (0, 63)
        pairs = [(a, x) for a in (0, 1, (1 << a_w) - 1) for x in (lo, hi, 0, 1)]
        pairs += [(int(rng.integers(0, 1 << a_w)), int(rng.integers(lo, hi + 1))) for _ in range(40)]
        got = []

        async def bench(ctx):
            for a, x in pairs + [(0, 0)] * stages:
                ctx.set(alpha, a)
                ctx.set(part, x)
                await ctx.tick()
                got.append(ctx.get(product))

        sim = Simulator(m)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        assert got[stages - 1:stages - 1 + len(pairs)] == [a * x for a, x in pairs]


@pytest.mark.parametrize("pipeline", [0, 1, 2])
def test_folded_latency_and_interval_are_what_the_network_says(pipeline):
    """With a sink that is always ready the first result arrives exactly
    ``latency`` cycles after the first input is accepted, and the next ones
    every ``interval`` cycles (the slowest layer's schedule + 1): pipelining
    the lanes adds latency, not cycles per inference."""
    rng = np.random.default_rng(3)
    model = random_model(rng, [24, 8, 10], input_bits=2)
    x = edge_inputs(rng, 5, 24, 3)
    dut = StreamNetwork(model, [(2, 8), (5, 2)], pipeline)
    unpipelined = StreamNetwork(model, [(2, 8), (5, 2)], 0)
    unpipelined._MustUse__silence = True
    assert (dut.latency > unpipelined.latency) == (pipeline > 0)
    got = stream_through(dut, x, 10)
    cycles = [c for c, _, _ in got]
    assert cycles[0] == dut.latency
    assert np.diff(cycles).tolist() == [dut.interval] * (len(x) - 1)
    assert dut.interval == max(layer.schedule.cycles for layer in dut.layers) + 1
    assert [g[1] for g in got] == reference.infer(model, x).pred.tolist()


def assert_streams_exactly(dut, model, x, rng):
    """The first result at ``dut.latency``, then one every ``dut.interval``,
    and every label and score the reference's, with a sink that refuses
    half the cycles too."""
    golden = reference.infer(model, x)
    got = stream_through(dut, x, 10)
    cycles = [c for c, _, _ in got]
    assert cycles[0] == dut.latency
    assert np.diff(cycles).tolist() == [dut.interval] * (len(x) - 1)
    stalled = stream_through(dut, x, 10, ready=lambda: rng.random() < 0.5)
    for run in (got, stalled):
        assert [g[1] for g in run] == golden.pred.tolist() and [g[2] for g in run] == golden.scores.tolist()


@pytest.mark.parametrize("folding, kind", [([(2, 8), (5, 2)], "scan"), ([(8, 12), (10, 8)], "held"),
                                            ([(8, 24), (10, 8)], "delayed")])
def test_argmax_works_on_the_held_scores_only_where_that_costs_no_throughput(folding, kind):
    """A network slower than the scan scans the last layer's held output
    with one comparator (interval 37 >= 2 clocks for each of 10 scores + 2,
    the comparison registered as the layers are); one slower than the
    argmax tree's depth lets the tree work on it (interval 7 >= 4
    levels + 1); a faster one (interval 4) delays the scores alongside the
    tree. Either way the first result comes at ``latency``, then one every
    ``interval``, and every label and score is exact, with a sink that
    refuses half the cycles too."""
    rng = np.random.default_rng(3)
    model = random_model(rng, [24, 8, 10], input_bits=2)
    x = edge_inputs(rng, 6, 24, 3)
    dut = StreamNetwork(model, folding, 1)
    assert dut.argmax_kind == kind and dut.argmax_held == (kind != "delayed")
    assert dut.interval == max(layer.schedule.cycles for layer in dut.layers) + 1
    assert_streams_exactly(dut, model, x, rng)


@pytest.mark.parametrize("clocks", [1, 2])
def test_argmax_scan_takes_the_first_of_the_largest_scores(clocks):
    """One score per ``clocks`` steps, the running maximum replaced only by a
    larger score: after ``clocks * n + 1`` steps the index is numpy's argmax
    (the lowest index among equal maxima), over ties, negative scores and
    the extremes of the score's range; a clock without ``step`` changes
    nothing."""
    from amaranth.hdl import signed
    from amaranth.sim import Simulator
    from hwgen.rtl.argmax import ArgmaxScan
    rng = np.random.default_rng(5)
    n, lo, hi = 10, -32, 31
    cases = [[0] * n, [hi] * n, [lo] * n, [lo] * (n - 1) + [hi], [hi] + [lo] * (n - 1), [3, 7, 7, 1, 7, 0, 2, 7, 5, 6]]
    cases += [rng.integers(lo, hi + 1, n).tolist() for _ in range(20)] + [rng.integers(-2, 2, n).tolist() for _ in range(20)]
    dut = ArgmaxScan(signed(6), n, clocks)
    got = []

    async def bench(ctx):
        for scores in cases:
            ctx.set(dut.scores.as_value(), sum((v & 63) << (6 * j) for j, v in enumerate(scores)))
            for k in range(dut.latency):    # the last step selects nothing
                ctx.set(dut.k, k)
                ctx.set(dut.step, 1)
                await ctx.tick()
            ctx.set(dut.step, 0)
            ctx.set(dut.scores.as_value(), 0)
            await ctx.tick()
            got.append(ctx.get(dut.index))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert dut.latency == clocks * n + 1
    assert got == [int(np.argmax(c)) for c in cases]


@pytest.mark.parametrize("folding, held", [([(8, 24), (10, 8)], [True, False]), ([(8, 24), (1, 1)], [True, True]),
                                           ([(2, 8), (5, 2)], [True, True])])
def test_folded_layers_read_the_held_input_only_where_that_costs_no_throughput(folding, held):
    """A folded dense layer without an input register reads its upstream's
    payload while it is offered and takes it with its last word. That ties
    the upstream's output register up for the whole schedule: fc1 behind an
    equally fast fc0 (3 words each) would alternate 4 and 5 clocks per
    inference, so it keeps its register; a layer behind a faster one, and
    the first layer (the stream's payload may not change until it is
    taken), do without. Each held input starts a clock sooner; the
    interval is that of the layers with registers, as simulated, and every
    result is exact with a sink that refuses half the cycles."""
    rng = np.random.default_rng(3)
    model = random_model(rng, [24, 8, 10], input_bits=2)
    x = edge_inputs(rng, 6, 24, 3)
    dut = StreamNetwork(model, folding, 1)
    assert [layer.held_input for layer in dut.layers] == held
    registered = StreamNetwork(model, folding, 1)
    registered._MustUse__silence = True
    for layer in registered.layers:
        layer.held_input = False
    registered._timing_cache = None
    assert dut.interval == registered.interval
    assert dut.latency == registered.latency - sum(held)
    assert_streams_exactly(dut, model, x, rng)


def set_bits(layer, nbits):
    """Give ``layer`` the bit counts ``nbits`` (up to 3), its planes and
    thresholds following."""
    layer.nbits = np.asarray(nbits).astype(np.uint8)
    b = np.arange(1, 4).reshape(-1, 1, 1)
    layer.planes = (layer.planes * (layer.nbits[None] >= b)).astype(np.uint8)
    if layer.output == "threshold":
        lo, hi = layer.bounds()
        layer.threshold = ((lo + hi) // 2).astype(np.int64)


def tile_uniform_model(rng, sizes, group):
    """A random model whose bit counts are constant over ``group`` tiles."""
    model = random_model(rng, sizes, input_bits=3, prune=0.0)
    for layer in model.layers:
        gr, gc = group
        o, i = layer.out_features, layer.in_features
        set_bits(layer, np.kron(rng.integers(1, 4, size=(o // gr, i // gc)), np.ones((gr, gc), np.int64)))
    return model


def test_tile_uniform_bits_need_no_mask_and_cost_exactly_their_bits():
    """When every PE x SIMD tile has one bit count, the schedule has one word
    per tile bit-plane: cycles = weight bits / (PE x SIMD), no mask ROM, and
    the weight ROM holds exactly the weight bits."""
    rng = np.random.default_rng(4)
    model = tile_uniform_model(rng, [32, 8, 4], group=(2, 8))
    layer = model.layers[0]
    sch = schedule(layer, 2, 8)
    assert not sch.needs_mask
    assert sch.cycles == sch.min_cycles == int(layer.nbits.sum()) // 16
    assert sch.weight_memory_bits == int(layer.nbits.sum())
    # a finer folding inside the same tiles keeps that; a coarser one does not
    assert schedule(layer, 1, 4).cycles == int(layer.nbits.sum()) // 4
    coarse = schedule(layer, 4, 16)
    assert coarse.cycles > coarse.min_cycles
    x = edge_inputs(rng, 6, 32, 7)
    got = stream_through(StreamNetwork(model, [(2, 8), (1, 8)]), x, 4)
    assert [g[2] for g in got] == reference.infer(model, x).scores.tolist()


@pytest.mark.parametrize("pipeline", [0, 1, 2, 3])
def test_pixel_lanes_without_masks_share_their_input_group_sum(pipeline):
    """Several PEs over one input group with uniform tiles: each lane builds
    only its positive inputs' tree and takes 2P - S, S the group's sum built
    once; every score stays exact at every pipelining, thresholds tied to
    values the accumulators reach included."""
    rng = np.random.default_rng(11 + pipeline)
    model = tile_uniform_model(rng, [32, 8, 4], group=(4, 8))
    x = edge_inputs(rng, 8, 32, 7)
    tie_thresholds(model, x, rng)
    dut = StreamNetwork(model, [(4, 8), (2, 4)], pipeline)
    shared = [layer._shares_group_sum() for layer in dut.layers]
    assert shared == [True, False]      # the second layer takes binary inputs
    got = stream_through(dut, x, 4, ready=lambda: rng.random() < 0.7)
    golden = reference.infer(model, x)
    assert [g[1] for g in got] == golden.pred.tolist() and [g[2] for g in got] == golden.scores.tolist()
    # one PE, or masks in ROM: each lane keeps both of its trees
    assert not StreamNetwork(model, [(1, 8), (2, 4)]).layers[0]._shares_group_sum()
    assert not StreamNetwork(random_model(rng, [32, 8, 4], input_bits=3, prune=0.0),
                             [(4, 8), (2, 4)]).layers[0]._shares_group_sum()


@pytest.mark.parametrize("pipeline", [0, 1])
def test_neurons_of_equal_bit_counts_share_a_fold(pipeline):
    """One bit count per neuron, in a mixed order: the folds take the
    neurons sorted by bit count, so every tile is uniform (no mask ROM, the
    pixel layer's group sum shared) and each layer takes its analytic
    minimum of cycles, where its own order costs the tile maxima. The
    outputs are wired back in place: every label and score is exact, under
    backpressure and with thresholds tied to values the accumulators reach."""
    rng = np.random.default_rng(21 + pipeline)
    model = random_model(rng, [32, 12, 8, 4], input_bits=3, prune=0.0)
    folding = [(4, 8), (4, 4), (2, 8)]
    counts = [2, 3, 1, 1, 3, 2, 2, 1, 3, 1, 2, 3], [2, 1, 1, 2, 1, 2, 2, 1], [3, 1, 1, 3]
    for layer, per_neuron in zip(model.layers, counts):
        layer.alpha = rng.integers(1, 257, size=layer.alpha.shape)     # per-neuron scales
        set_bits(layer, np.repeat(np.array(per_neuron)[:, None], layer.in_features, axis=1))
    x = edge_inputs(rng, 8, 32, 7)
    tie_thresholds(model, x, rng)
    dut = StreamNetwork(model, folding, pipeline)
    for layer, (pe, simd) in zip(model.layers, folding):
        sch = schedule(layer, pe, simd)
        own = layer.nbits.reshape(layer.out_features // pe, pe, -1, simd).max(axis=(1, 3)).sum()
        assert sch.reordered and not sch.needs_mask
        assert sch.cycles == sch.min_cycles == estimate_cycles(layer, pe, simd) < own
        assert sorted(sch.order) == list(range(layer.out_features))
    assert dut.layers[0]._shares_group_sum()
    got = stream_through(dut, x, 4, ready=lambda: rng.random() < 0.7)
    golden = reference.infer(model, x)
    assert [g[1] for g in got] == golden.pred.tolist() and [g[2] for g in got] == golden.scores.tolist()
    # one PE, or tiles uniform already: the layer's own order
    assert not schedule(model.layers[0], 1, 8).reordered
    assert not schedule(tile_uniform_model(rng, [32, 8, 4], group=(4, 8)).layers[0], 4, 8).reordered


@pytest.mark.parametrize("pipeline", [0, 1, 2])
def test_rows_of_one_bit_count_need_a_lane_enable_not_a_mask(pipeline):
    """1 x 8 blocks folded to 4 x 8 (and 4 x 4): each tile row has one bit
    count, but the rows differ. The ROM then holds one enable bit per PE and
    word (a lane whose neuron lacks the word's plane adds 0) instead of a
    mask bit per weight, and the pixel lanes still share their group's sum;
    every label and score is exact, with per-neuron scales, thresholds tied
    and backpressure."""
    rng = np.random.default_rng(31 + pipeline)
    model = tile_uniform_model(rng, [32, 8, 4], group=(1, 8))
    for layer in model.layers:
        layer.alpha = rng.integers(1, 257, size=layer.alpha.shape)
    set_bits(model.layers[1], np.repeat(np.array([[1], [3], [2], [1]]), 8, axis=1))
    x = edge_inputs(rng, 8, 32, 7)
    tie_thresholds(model, x, rng)
    folding = [(4, 8), (4, 4)]
    for layer, (pe, simd) in zip(model.layers, folding):
        sch = schedule(layer, pe, simd)
        assert sch.row_enables and not sch.needs_mask
        assert sch.weight_memory_bits == sch.cycles * pe * (simd + 1)
        assert sch.cycles == estimate_cycles(layer, pe, simd)
    dut = StreamNetwork(model, folding, pipeline)
    assert dut.layers[0]._shares_group_sum()
    got = stream_through(dut, x, 4, ready=lambda: rng.random() < 0.7)
    golden = reference.infer(model, x)
    assert [g[1] for g in got] == golden.pred.tolist() and [g[2] for g in got] == golden.scores.tolist()
    # a row that mixes bit counts needs the masks
    mixed = schedule(model.layers[0], 4, 16)
    assert mixed.needs_mask and not mixed.row_enables


def test_of_equal_lanes_the_folding_without_masks_is_taken():
    """1 x 8 blocks, 16 x 32 layer, 20 clocks: 128 lanes are the fewest
    that keep the pace, as 16 x 8, 8 x 16 or 4 x 32. Only 16 x 8 keeps
    each tile row inside a block, so it is the one chosen, though the
    others have more SIMD."""
    layer = tile_uniform_model(np.random.default_rng(7), [32, 16, 4], group=(1, 8)).layers[0]
    assert all(schedule(layer, pe, simd).needs_mask and layer_pace(layer, (pe, simd)) <= 20
               for pe, simd in [(8, 16), (4, 32)])
    assert _fewest_lanes(layer, 20) == (16, 8) and not schedule(layer, 16, 8).needs_mask


def test_per_weight_bits_put_masks_in_rom_and_cost_the_tile_maximum():
    rng = np.random.default_rng(5)
    layer = random_model(rng, [16, 4, 2], prune=0.0).layers[0]
    sch = schedule(layer, 1, 8)
    assert sch.needs_mask
    tile_max = layer.nbits.reshape(4, 1, 2, 8).max(axis=(1, 3))
    assert sch.cycles == estimate_cycles(layer, 1, 8) == int(tile_max.sum())
    assert sch.weight_memory_bits == 2 * sch.cycles * 8


def test_a_fold_without_weights_still_produces_its_outputs():
    rng = np.random.default_rng(6)
    model = random_model(rng, [8, 4, 3], input_bits=2, prune=0.0)
    model.layers[0].nbits[:2] = 0     # neurons 0 and 1 pruned entirely
    model.layers[0].planes[:, :2] = 0
    sch = schedule(model.layers[0], 2, 4)
    assert sch.entries[0][2] == sch.max_bits   # the filler word
    x = edge_inputs(rng, 4, 8, 3)
    got = stream_through(StreamNetwork(model, [(2, 4), (3, 4)]), x, 3)
    assert [g[2] for g in got] == reference.infer(model, x).scores.tolist()


def test_choose_folding_meets_the_target_with_the_fewest_lanes():
    """Every layer gets the fewest lanes that keep the network's interval,
    and that interval meets the target."""
    rng = np.random.default_rng(7)
    model = random_model(rng, [64, 16, 10], input_bits=4)
    for target in (8, 40, 200):
        folding = choose_folding(model, target)
        interval = max(layer_pace(layer, f) for layer, f in zip(model.layers, folding))
        assert interval <= target
        for layer, (pe, simd) in zip(model.layers, folding):
            assert schedule(layer, pe, simd).cycles + 1 <= interval
            # no folding with fewer lanes keeps that pace
            assert all(estimate_cycles(layer, p, s) + 1 > interval
                       for p in divisors(layer.out_features) for s in divisors(layer.in_features)
                       if p * s < pe * simd)
    assert choose_folding(model, 40, {"fc1": (5, 2)})[1] == (5, 2)


def test_a_small_slow_layer_is_balanced_to_the_pace_of_the_others():
    """Lane counts come in steps: with the fewest lanes for 254 clocks, the
    two 64 x 64 layers land at 129 and the 10-neuron layer at 253, so it
    alone sets the interval. A few more lanes there halve the interval for
    about 5 % more estimated LUTs, so choose_folding takes them; a layer set
    by hand is never changed, so there the interval stays."""
    model = random_model(np.random.default_rng(3), [64, 64, 64, 10], input_bits=4, max_bits=2, prune=0.0)
    fewest = [(1, 64), (1, 64), (5, 1)]
    assert [layer_pace(layer, f) for layer, f in zip(model.layers, fewest)] == [129, 129, 253]
    folding = choose_folding(model, 254)
    assert folding[:2] == fewest[:2] and folding[2] == (5, 2)
    cost = [sum(estimate_luts(layer, *f) for layer, f in zip(model.layers, fl)) for fl in (fewest, folding)]
    assert cost[0] < cost[1] < 1.1 * cost[0]
    assert choose_folding(model, 254, {"fc2": (5, 1)}) == fewest
    # the network streams at that pace
    assert StreamNetwork(model, folding).interval == 129 < StreamNetwork(model, fewest).interval == 253


def test_folding_errors_name_the_problem():
    model = random_model(np.random.default_rng(8), [12, 6, 4])
    with pytest.raises(HwgenError, match="PE = 4 must divide its 6 neurons"):
        schedule(model.layers[0], 4, 3)
    with pytest.raises(HwgenError, match="SIMD = 5 must divide its 12 inputs"):
        schedule(model.layers[0], 1, 5)
    with pytest.raises(HwgenError, match="--fold names fc9"):
        choose_folding(model, 16, {"fc9": (1, 1)})


def test_trained_with_a_mask_group_the_folded_layers_cost_their_average_bits():
    """hwgen train --mask-group 1x8 on digits: every 1 x 8 block has one bit
    count, so folded with PE 1 and SIMD 8 (or 4) each layer needs exactly
    weight bits / SIMD cycles and no mask ROM, and the network stays
    bit-exact."""
    from hwgen.training.data import load_dataset
    from hwgen.training.exporter import export_model
    from hwgen.training.train import train
    data = load_dataset("digits")
    net, info = train(log=None, data=data, epochs=3, mask_group=[1, 8])
    model = export_model(net, info, data.input_bits)
    assert abs(model.avg_weight_bits() - 1.4) < 0.03
    for layer in model.layers:
        blocks = layer.nbits.reshape(layer.out_features, -1, 8)
        assert (blocks == blocks[:, :, :1]).all()
        for simd in (8, 4):
            sch = schedule(layer, 1, simd)
            assert not sch.needs_mask
            assert sch.cycles == sch.min_cycles == int(layer.nbits.sum()) // simd
            assert sch.weight_memory_bits == int(layer.nbits.sum())
    x = data.x_test[:12]
    got = stream_through(StreamNetwork(model, [(1, 8)] * 3), x, 10)
    assert [g[2] for g in got] == reference.infer(model, x).scores.tolist()


@pytest.mark.parametrize("target,keys", [("ice40", ("lut4", "carry", "dff", "bram")),
                                         ("ecp5", ("lut4", "ccu2c", "dff", "bram"))])
def test_folded_weight_rom_is_counted_in_block_ram(tmp_path, target, keys):
    """A folded layer with a 5,000-word schedule puts its weights in block
    RAM, and the area report counts every cell it got (LUTs, carries, flops,
    block RAMs) -- none silently left out of the columns."""
    from hwgen import rtl
    from hwgen.tools.synth import synthesize
    model = random_model(np.random.default_rng(0), [256, 32, 10], input_bits=1, prune=0.0)
    rtl.generate(model, tmp_path, folding=[(1, 4), (1, 2)])
    total = synthesize(tmp_path, target)["total"]
    assert total["bram"] > 0
    assert total["cells"] == sum(total[k] for k in keys)


def test_candidates_trade_estimated_luts_for_cycles():
    """Each layer's candidate foldings: cheapest first, every further one
    strictly faster and estimated larger; the estimate grows with the lanes."""
    from hwgen.rtl.folded import candidates, estimate_luts
    model = random_model(np.random.default_rng(8), [24, 12, 6], input_bits=3)
    for layer in model.layers:
        cands = candidates(layer)
        assert cands[0][3] == min(estimate_luts(layer, pe, simd) for pe in divisors(layer.out_features)
                                  for simd in divisors(layer.in_features))
        for (pe, simd, cycles, luts), nxt in zip(cands, cands[1:]):
            assert nxt[2] < cycles and nxt[3] >= luts
            assert cycles == estimate_cycles(layer, pe, simd)
        assert estimate_luts(layer, 1, 1) < estimate_luts(layer, layer.out_features, layer.in_features)


def test_lut_budget_gives_the_fastest_measured_fit(tmp_path):
    """fold_to_budget on generic cells: the design it returns measures within
    the budget (the record's last measurement is of that very folding); a
    larger budget never gives a slower design; a budget below the smallest
    folding is one clear error."""
    from hwgen.explore.budget import fold_to_budget
    model = random_model(np.random.default_rng(9), [16, 8, 4], input_bits=2)
    small, record = fold_to_budget(model, 10 ** 9, "generic")
    smallest = record["measurements"][0]["measured"]
    intervals = []
    for budget in (smallest, int(smallest * 1.5), smallest * 4):
        folding, record = fold_to_budget(model, budget, "generic")
        assert record["measured"] <= budget and record["metric"] == "cells"
        assert {"folding": record["folding"], "measured": record["measured"]} in record["measurements"]
        assert record["folding"] == [list(f) for f in folding]
        intervals.append(max(estimate_cycles(l, *f) for l, f in zip(model.layers, folding)))
    assert intervals[0] >= intervals[1] >= intervals[2] and intervals[2] < intervals[0]
    with pytest.raises(HwgenError, match="smallest folding .* already takes"):
        fold_to_budget(model, smallest - 1, "generic")


def test_lut_budget_search_bisects_when_the_correction_is_still_over(monkeypatch):
    """The search logic alone, with a stand-in for synthesis (the test above
    runs Yosys) whose areas grow much faster with the lanes than the
    estimate: the first greedy round overshoots many times over, and so
    does the first corrected guess. The search then bisects between the last
    fit and the overshoot, so it still returns a design faster than the
    smallest folding, measured within the budget, and never a slower design
    for a larger budget."""
    from hwgen.explore import budget

    def measure(model, folding, target, pipeline, datapaths, log, family="generic"):
        per = {l.name: estimate_luts(l, *f) * (1 + f[0] * f[1] / 16) for l, f in zip(model.layers, folding)}
        return sum(per.values()) + 100, per

    monkeypatch.setattr(budget, "_measure", measure)
    model = random_model(np.random.default_rng(9), [64, 32, 10], input_bits=2)
    smallest = [(1, 1), (1, 1)]
    intervals = []
    for lut_budget in (3000, 9000, 20000):
        folding, record = budget.fold_to_budget(model, lut_budget, "generic")
        assert record["measured"] <= lut_budget and folding != smallest
        assert record["measured"] == measure(model, folding, *[None] * 4)[0]
        assert record["syntheses"] <= budget.MAX_SYNTHESES
        assert max(m["measured"] for m in record["measurements"]) > 2 * lut_budget   # it did overshoot
        intervals.append(max(layer_pace(l, f) for l, f in zip(model.layers, folding)))
    assert intervals[0] >= intervals[1] >= intervals[2]
