"""Convolution hardware (pixel streams, line buffers, OR-pooling) against the
golden reference: random CNNs in Amaranth's simulator, the trained digits
CNN in cocotb on Verilator and Icarus, in both architectures."""
import copy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen import reference, rtl
from hwgen.errors import HwgenError
from hwgen.rtl.folded import choose_folding
from hwgen.rtl.network import StreamNetwork
from hwgen.sim import simulate

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
    pruned weights, both architectures for the dense tail, pipelining, and a
    sink that refuses about 40 % of the cycles: every label and score exact."""
    rng = np.random.default_rng(seed)
    in_shape, convs = shapes
    bits = data.draw(st.integers(1, 4))
    model = random_cnn(rng, in_shape, convs, [data.draw(st.integers(1, 6)), 3], input_bits=bits,
                       prune=data.draw(st.sampled_from([0.0, 0.1, 0.6])))
    folding = None
    if data.draw(st.booleans()):
        folding = [None] * len(convs) + [(data.draw(st.sampled_from(divisors(layer.out_features))),
                                          data.draw(st.sampled_from(divisors(layer.in_features))))
                                         for layer in model.layers[len(convs):]]
    x = edge_inputs(rng, 5, model.input_features, (1 << bits) - 1)
    golden = reference.infer(model, x)
    dut = StreamNetwork(model, folding, data.draw(st.sampled_from([0, 1, 2])))
    got = stream_through(dut, x, bits, 3, ready=lambda: rng.random() < 0.6)
    assert [g[1] for g in got] == golden.pred.tolist()
    assert [g[2] for g in got] == golden.scores.tolist()


@pytest.mark.parametrize("pipeline", [0, 2])
@pytest.mark.parametrize("folded", [False, True])
def test_conv_latency_and_interval_are_what_the_network_says(pipeline, folded):
    """With an always-ready sink the first result arrives exactly ``latency``
    cycles after the image is accepted (pixels timed through each conv
    layer's pooling), then one every ``interval`` cycles: the image's pixel
    count, or a slower folded layer's schedule."""
    rng = np.random.default_rng(5)
    model = random_cnn(rng, (2, 7, 8), [(4, (3, 3), 1), (3, (2, 2), 2)], [6, 4], input_bits=3)
    x = edge_inputs(rng, 4, model.input_features, 7)
    folding = [None, None, (1, 1), (1, 1)] if folded else None
    dut = StreamNetwork(model, folding, pipeline)
    got = stream_through(dut, x, 3, 4)
    cycles = [c for c, _, _ in got]
    assert cycles[0] == dut.latency
    assert np.diff(cycles).tolist() == [dut.interval] * (len(x) - 1)
    slowest = max(layer.interval for layer in dut.layers)
    assert dut.interval == (slowest if folded else 7 * 8)
    assert [g[1] for g in got] == reference.infer(model, x).pred.tolist()


def test_conv_after_dense_and_folding_a_conv_layer_are_refused():
    rng = np.random.default_rng(0)
    model = random_cnn(rng, (1, 6, 6), [(2, (3, 3), 2)], [4, 3])
    with pytest.raises(HwgenError, match="conv2d layer, which is pixel-stream"):
        choose_folding(model, 16, {"conv0": (1, 1)})
    assert choose_folding(model, 16)[0] is None
    # the pixel stream takes 36 clocks per image: a faster target would only idle the dense layers
    assert choose_folding(model, 2) == choose_folding(model, 36) != choose_folding(model, 2 * 36)
    model.layers = [model.layers[1], model.layers[0], model.layers[2]]
    with pytest.raises(HwgenError, match="conv layers come first"):
        StreamNetwork(model)


@pytest.fixture(scope="module")
def cnn_rtl(cnn_run, tmp_path_factory):
    """The trained digits CNN's RTL, unrolled and folded."""
    root = tmp_path_factory.mktemp("cnn_rtl")
    model = cnn_run["model"]
    return {"unrolled": (root / "unrolled", rtl.generate(model, root / "unrolled")),
            "folded": (root / "folded", rtl.generate(model, root / "folded", folding=choose_folding(model, 64),
                                                     pipeline=1))}


@pytest.mark.parametrize("simulator", ["verilator", pytest.param("icarus", marks=pytest.mark.skipif(
    not has_icarus(), reason="Icarus Verilog (iverilog) is not installed"))])
@pytest.mark.parametrize("arch", ["unrolled", "folded"])
def test_trained_cnn_bit_exact_on_every_test_image(cnn_run, cnn_rtl, arch, simulator, tmp_path):
    """The digits CNN (two conv layers, a 2x2 pool, two dense layers) on all
    360 test images in cocotb, with backpressure: labels and scores exact."""
    rtl_dir, manifest = cnn_rtl[arch]
    assert manifest["arch"] == arch and manifest["layers"][0]["op"] == "conv2d"
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
