"""Convolution hardware (pixel streams, line buffers, OR-pooling) against the
golden reference: random CNNs in Amaranth's simulator, the trained digits
CNN in cocotb on Verilator and Icarus, in both architectures."""
import copy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen import rtl

from hwgen.core import reference
from hwgen.errors import HwgenError
from hwgen.rtl.folded import choose_folding, conv_windows, estimate_cycles
from hwgen.rtl import handshake
from hwgen.rtl.network import StreamNetwork
from hwgen.tools.sim import simulate

from conftest import edge_inputs, has_icarus, random_cnn, stream_through


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def cnn_shapes(draw):
    """``(in_shape, convs)``: one or two conv layers whose kernels and pools fit."""
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    convs, (c, h, w) = [], shape
    for _ in range(draw(st.integers(1, 2))):
        if h < 1 or w < 1:
            break
        kernel = (draw(st.integers(1, min(h, 3))), draw(st.integers(1, min(w, 3))))
        hc, wc = h - kernel[0] + 1, w - kernel[1] + 1
        pool = draw(st.integers(1, min(hc, wc, 3)))
        channels = draw(st.integers(1, 4))
        convs.append((channels, kernel, pool))
        c, h, w = channels, hc // pool, wc // pool
    return shape, convs


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), shapes=cnn_shapes(), data=st.data())
def test_conv_network_matches_reference_under_backpressure(seed, shapes, data):
    """Random image shapes, kernels (1x1 to 3x3, not square too), pools
    (1 to 3, with the rows and columns a pool drops), channels, bit mixes with
    pruned weights, both architectures (conv layers folded or not in the
    folded one), pipelining, and a sink that refuses about 40 % of the
    cycles: every label and score exact."""
    rng = np.random.default_rng(seed)
    in_shape, convs = shapes
    bits = data.draw(st.integers(1, 4))
    model = random_cnn(rng, in_shape, convs, [data.draw(st.integers(1, 6)), 3], input_bits=bits,
                       prune=data.draw(st.sampled_from([0.0, 0.1, 0.6])))
    folding = None
    if data.draw(st.booleans()):   # folded: each conv layer folded or on constants, every dense layer folded
        folding = [(data.draw(st.sampled_from(divisors(layer.out_features))),
                    data.draw(st.sampled_from(divisors(layer.in_features))))
                   if layer.op == "dense" or data.draw(st.booleans()) else None for layer in model.layers]
    x = edge_inputs(rng, 5, model.input_features, (1 << bits) - 1)
    golden = reference.infer(model, x)
    dut = StreamNetwork(model, folding, data.draw(st.sampled_from([0, 1, 2])))
    got = stream_through(dut, x, 3, ready=lambda: rng.random() < 0.6)
    assert [g[1] for g in got] == golden.pred.tolist()
    assert [g[2] for g in got] == golden.scores.tolist()


@pytest.mark.parametrize("pipeline", [0, 2])
@pytest.mark.parametrize("folding", [None, [None, None, (1, 1), (1, 1)], [(2, 3), (1, 4), (2, 3), (1, 2)],
                                     [None, (3, 1), (6, 12), (4, 6)]])
def test_conv_latency_and_interval_are_what_the_network_says(pipeline, folding):
    """With an always-ready sink the first result arrives exactly ``latency``
    cycles after the image is offered, then one every ``interval`` cycles:
    the image's pixel count, a slower folded dense layer's schedule, or what
    a folded conv layer holding the pixel stream makes of it (the
    handshake model, checked here against the hardware)."""
    rng = np.random.default_rng(5)
    model = random_cnn(rng, (2, 7, 8), [(4, (3, 3), 1), (3, (2, 2), 2)], [6, 4], input_bits=3)
    x = edge_inputs(rng, 4, model.input_features, 7)
    dut = StreamNetwork(model, folding, pipeline)
    got = stream_through(dut, x, 4)
    cycles = [c for c, _, _ in got]
    assert cycles[0] == dut.latency
    assert np.diff(cycles).tolist() == [dut.interval] * (len(x) - 1)
    slowest = max(layer.interval for layer in dut.layers)
    assert dut.interval >= slowest >= 7 * 8
    if folding is None or folding[1] is None:
        assert dut.interval == slowest
    assert [g[1] for g in got] == reference.infer(model, x).pred.tolist()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), shapes=cnn_shapes(), data=st.data())
def test_handshake_model_times_random_folded_cnns(seed, shapes, data):
    """The handshake model against the hardware on random CNNs with every
    layer folded at random (or conv layers on constants), pipelined or not:
    the first result exactly ``latency`` cycles after the first image is
    offered, then one every ``interval``."""
    rng = np.random.default_rng(seed)
    in_shape, convs = shapes
    model = random_cnn(rng, in_shape, convs, [data.draw(st.integers(1, 4)), 3], input_bits=2)
    folding = [(data.draw(st.sampled_from(divisors(layer.out_features))),
                data.draw(st.sampled_from(divisors(layer.in_features))))
               if layer.op == "dense" or data.draw(st.booleans()) else None for layer in model.layers]
    dut = StreamNetwork(model, folding, data.draw(st.sampled_from([0, 1])))
    x = edge_inputs(rng, 4, model.input_features, 3)
    cycles = [c for c, _, _ in stream_through(dut, x, 3)]
    assert cycles[0] == dut.latency
    assert np.diff(cycles).tolist() == [dut.interval] * (len(x) - 1)


def test_fifo_lets_a_folded_conv_layer_keep_pace():
    """A folded conv layer after a conv layer gets a FIFO, sized by the
    handshake model: without it the two stall each other and the network
    streams slower than its slowest layer; with it, at that layer's pace,
    as the hardware shows (timing and every result)."""
    rng = np.random.default_rng(1)
    model = random_cnn(rng, (1, 12, 12), [(4, (3, 3), 2), (4, (3, 3), 1)], [4, 3], input_bits=2)
    folding = choose_folding(model, 144)
    assert folding[0] is None and folding[1] is not None
    dut = StreamNetwork(model, folding)
    names = [name for name, _ in dut.stages]
    assert names[names.index("conv1") - 1] == "conv1_fifo"
    fifo = dict(dut.stages)["conv1_fifo"]
    assert 2 <= fifo.depth <= 5 * 5 + 2
    slowest = max(stage.interval for _, stage in dut.stages)
    assert dut.interval == slowest == 144
    coupled = [stage.control() for name, stage in dut.stages if name != "conv1_fifo"]
    out, _ = handshake.simulate(coupled + [dut.argmax_control()], 4)
    assert out[3] - out[2] > slowest
    x = edge_inputs(rng, 4, model.input_features, 3)
    got = stream_through(dut, x, 3)
    cycles = [c for c, _, _ in got]
    assert cycles[0] == dut.latency
    assert np.diff(cycles).tolist() == [dut.interval] * (len(x) - 1)
    golden = reference.infer(model, x)
    assert [g[1] for g in got] == golden.pred.tolist() and [g[2] for g in got] == golden.scores.tolist()


def test_conv_after_dense_is_refused_and_conv_folding_follows_the_target():
    rng = np.random.default_rng(0)
    model = random_cnn(rng, (1, 6, 6), [(2, (3, 3), 2)], [4, 3])
    assert choose_folding(model, 16, {"conv0": (1, 3)})[0] == (1, 3)
    # 36 pixels per image, 16 windows kept by the pooling, 9 inputs, 2 channels: at 36 clocks per
    # image no folding with at most half of the 18 lanes keeps up, so the layer stays on constants
    assert choose_folding(model, 16)[0] is None
    assert choose_folding(model, 2) == choose_folding(model, 36) != choose_folding(model, 2 * 36)
    # one lane takes the schedule's clocks + 1 per window
    one_lane = conv_windows(model.layers[0]) * (estimate_cycles(model.layers[0], 1, 1) + 1)
    assert choose_folding(model, one_lane)[0] == (1, 1)
    assert choose_folding(model, one_lane - 1)[0] not in [(1, 1), None]
    model.layers = [model.layers[1], model.layers[0], model.layers[2]]
    with pytest.raises(HwgenError, match="conv layers come first"):
        StreamNetwork(model)


def test_lut_budget_folds_conv_layers_too():
    """fold_to_budget on a CNN: the conv layer is folded like the dense ones
    (cycles per image = kept windows x (cycles + 1)), every design measures
    within its budget, and a larger budget streams faster. With no limit the
    conv layer ends on its constant-weight datapath, at one pixel per clock."""
    from hwgen.explore.budget import fold_to_budget
    model = random_cnn(np.random.default_rng(3), (1, 6, 6), [(4, (3, 3), 2)], [4, 3], input_bits=2)
    folding, record = fold_to_budget(model, 10 ** 9, "generic")
    assert folding[0] is None and record["folding"][0] is None
    assert StreamNetwork(model, folding).interval == 36            # the 6 x 6 pixel stream
    smallest = record["measurements"][0]["measured"]
    assert record["measurements"][0]["folding"][0] == [1, 1]
    intervals = []
    for budget in (smallest, smallest * 3 // 2):
        folding, record = fold_to_budget(model, budget, "generic")
        assert folding[0] is not None and record["measured"] <= budget
        intervals.append(StreamNetwork(model, folding).interval)
    assert intervals[0] > intervals[1] > 36


@pytest.fixture(scope="module")
def cnn_rtl(cnn_run, tmp_path_factory):
    """The trained digits CNN's RTL: unrolled; folded at 64 clocks per image
    (conv layers on constants); folded at 256 (the conv layers folded too)."""
    root = tmp_path_factory.mktemp("cnn_rtl")
    model = cnn_run["model"]
    return {"unrolled": (root / "unrolled", rtl.generate(model, root / "unrolled")),
            "folded": (root / "folded", rtl.generate(model, root / "folded", folding=choose_folding(model, 64),
                                                     pipeline=1)),
            "folded-conv": (root / "folded-conv", rtl.generate(model, root / "folded-conv",
                                                               folding=choose_folding(model, 256), pipeline=1))}


@pytest.mark.parametrize("simulator", ["verilator", pytest.param("icarus", marks=pytest.mark.skipif(
    not has_icarus(), reason="Icarus Verilog (iverilog) is not installed"))])
@pytest.mark.parametrize("arch", ["unrolled", "folded", "folded-conv"])
def test_trained_cnn_bit_exact_on_every_test_image(cnn_run, cnn_rtl, arch, simulator, tmp_path):
    """The digits CNN (two conv layers, a 2x2 pool, two dense layers) on all
    360 test images in cocotb, with backpressure: labels and scores exact."""
    rtl_dir, manifest = cnn_rtl[arch]
    assert manifest["arch"] == arch.split("-")[0] and manifest["layers"][0]["op"] == "conv2d"
    assert [("pe" in e) for e in manifest["layers"][:2]] == [arch == "folded-conv"] * 2
    # rtl.json names the FIFO a folded conv layer after a conv layer gets
    assert ("fifo_depth" in manifest["layers"][1]) == (arch == "folded-conv")
    assert manifest["input_words"] == 64 and manifest["input_word_width"] == manifest["input_bits"]
    x = cnn_run["data"].x_test
    res = simulate(cnn_run["model"], rtl_dir, x, simulator=simulator, backpressure=0.2,
                   work_dir=tmp_path / "w")
    assert res["vectors"] == len(x) == 360
    assert res["mismatches"] == 0, res["first_mismatches"][:2]
    assert res["labels"] == reference.infer(cnn_run["model"], x).pred.tolist()


def test_conv_fault_is_located_to_channel_and_pixel(cnn_run, tmp_path):
    """RTL from a CNN whose second conv layer has channel 3's first bit-plane
    inverted, checked against the true model: the diagnosis names that conv
    layer and channel (through the pixel stream probe), not a later layer."""
    model = cnn_run["model"]
    faulty = copy.deepcopy(model)
    conv = faulty.layers[1]
    conv.planes[0, 3] = (1 - conv.planes[0, 3]) * (conv.nbits[3] >= 1)
    rtl.generate(faulty, tmp_path / "rtl")
    x = cnn_run["data"].x_test
    golden, wrong = reference.infer(model, x), reference.infer(faulty, x)
    assert (golden.pred != wrong.pred).any()
    res = simulate(model, tmp_path / "rtl", x, simulator="verilator", work_dir=tmp_path / "w")
    diag = res["diagnosis"]
    k = diag["vector"]
    assert (diag["layer"], diag["channel"]) == (conv.name, 3)
    pixels = conv.out_shape[1] * conv.out_shape[2]
    assert diag["pixels"] == pixels
    first = next(j for j in range(conv.out_size) if golden.activations[1][k][j] != wrong.activations[1][k][j])
    assert diag["neuron"] == first and diag["pixel"] == first % pixels
    assert diag["waveform"] and Path(diag["waveform"]).is_file()
