"""Random networks against the golden model.

Breadth in Amaranth's simulator (hypothesis, 500+ layers per run): fan-in
1..512, every bit mix (all 1-bit, all 3-bit, mixed, pruned 0-bit weights,
whole neurons pruned), negative BatchNorm gamma (direction -1), thresholds
that always or never fire or sit exactly on the reachable bounds, zero and
huge scales and biases, all-zero and all-maximum inputs, on both datapaths
(bit-planes, direct constant MAC). Depth in cocotb: a
sample of whole random networks streamed through Verilator and Icarus.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen import rtl

from hwgen.core import reference
from hwgen.core.artifact import Layer, Model, _validate
from hwgen.rtl.layer import DATAPATHS
from hwgen.tools.sim import simulate

from conftest import has_icarus, random_model
from test_rtl import run_layer

LIMIT = 2 ** 40 - 1   # the artifact's bound on thresholds and biases

MIXES = ("all-1", "all-2", "all-3", "mixed", "pruned", "pruned-rows", "all-0")


def make_nbits(rng, mix, shape):
    out, fan_in = shape
    if mix.startswith("all-"):
        return np.full(shape, int(mix[-1]), dtype=np.uint8)
    nbits = rng.integers(1, 4, size=shape).astype(np.uint8)
    if mix == "pruned":
        nbits[rng.random(shape) < 0.3] = 0
    elif mix == "pruned-rows":  # some neurons lose every weight: Y is a constant
        nbits[rng.random(out) < 0.5] = 0
    return nbits


def make_layer(rng, *, fan_in, out, input_kind, input_bits, output, mix, alpha_mode, direction_mode,
               threshold_mode, frac_bits=8):
    nbits = make_nbits(rng, mix, (out, fan_in))
    max_bits = int(rng.integers(max(int(nbits.max()), 1), 4))  # sometimes more planes than any weight uses
    b = np.arange(1, max_bits + 1).reshape(-1, 1, 1)
    planes = (rng.integers(0, 2, size=(max_bits, out, fan_in)) * (nbits[None] >= b)).astype(np.uint8)
    if alpha_mode == "large":
        alpha = rng.integers(2 ** 16, 2 ** 20, size=(out, max_bits))
    elif alpha_mode == "some-zero":
        alpha = rng.integers(0, 2, size=(out, max_bits)) * rng.integers(1, 2 ** frac_bits + 1, size=(out, max_bits))
    else:
        alpha = rng.integers(1, 2 ** frac_bits + 1, size=(out, max_bits))
    layer = Layer(name="dut", input=input_kind, input_bits=input_bits, output=output, nbits=nbits,
                  planes=planes, alpha=alpha.astype(np.int64))
    lo, hi = layer.bounds() if output == "threshold" else (None, None)
    if output == "scores":
        span = {"large": LIMIT, "zero": 0}.get(threshold_mode, 2 ** 12)
        layer.bias = rng.integers(-span, span + 1, size=out).astype(np.int64)
        return layer
    direction = {"up": np.ones(out), "down": -np.ones(out)}.get(direction_mode, rng.choice([-1, 1], size=out))
    layer.direction = direction.astype(np.int8)
    up = layer.direction > 0
    k = rng.integers(0, 3, size=out)
    if threshold_mode == "always":
        thr = np.where(up, lo - k, hi + k)
    elif threshold_mode == "never":
        thr = np.where(up, hi + 1 + k, lo - 1 - k)
    elif threshold_mode == "bounds":
        thr = np.where(rng.random(out) < 0.5, lo, hi) + rng.integers(-1, 2, size=out)
    elif threshold_mode == "large":
        thr = rng.choice([-LIMIT, LIMIT], size=out)
    else:
        thr = np.array([rng.integers(l - 2, h + 3) for l, h in zip(lo, hi)])
    layer.threshold = thr.astype(np.int64)
    return layer


def identity_layer(fan_in):
    """A 1-bit-input layer whose outputs equal its inputs (bit j fires iff x_j = 1):
    it lets the golden model feed chosen +-1 vectors to the layer under test."""
    nbits = np.eye(fan_in, dtype=np.uint8)
    return Layer(name="carry", input="uint", input_bits=1, output="threshold", nbits=nbits,
                 planes=nbits[None].copy(), alpha=np.ones((fan_in, 1), np.int64),
                 threshold=np.ones(fan_in, np.int64), direction=np.ones(fan_in, np.int8))


def readout(fan_in):
    return Layer(name="readout", input="binary", input_bits=1, output="scores",
                 nbits=np.ones((2, fan_in), np.uint8), planes=np.ones((1, 2, fan_in), np.uint8),
                 alpha=np.ones((2, 1), np.int64), bias=np.zeros(2, np.int64))


def golden_layer(layer, x):
    """The golden model's output of ``layer`` alone on ``x`` (codes; bit 1 = +1)."""
    if layer.input == "binary":
        layers, bits = [identity_layer(layer.in_features), layer], 1
    else:
        layers, bits = [layer], layer.input_bits
    if layer.output == "threshold":
        layers.append(readout(layer.out_features))
    model = Model(layers=layers, input_features=layer.in_features, input_bits=bits, scale_frac_bits=8,
                  n_classes=layers[-1].out_features)
    _validate(model)
    result = reference.infer(model, x)
    return result.scores if layer.output == "scores" else result.activations[len(layers) - 2]


def test_vectors(rng, fan_in, hi, n_random=6):
    alternating = np.arange(fan_in) % 2 * hi
    rows = [np.zeros(fan_in), np.full(fan_in, hi), alternating, hi - alternating]
    return np.vstack(rows + [rng.integers(0, hi + 1, size=(n_random, fan_in))]).astype(np.int64)


test_vectors.__test__ = False  # a helper, not a test


@settings(max_examples=520, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1),
       fan_in=st.one_of(st.integers(1, 12), st.integers(13, 96), st.integers(97, 512)),
       out=st.integers(1, 4),
       input_kind=st.sampled_from(["uint", "binary"]),
       input_bits=st.integers(1, 8),
       output=st.sampled_from(["threshold", "scores"]),
       mix=st.sampled_from(MIXES),
       alpha_mode=st.sampled_from(["random", "some-zero", "large"]),
       direction_mode=st.sampled_from(["up", "down", "mixed"]),
       threshold_mode=st.sampled_from(["random", "always", "never", "bounds", "large", "zero"]),
       datapath=st.sampled_from(DATAPATHS))
def test_random_layer_rtl_equals_golden(seed, fan_in, out, input_kind, input_bits, output, mix, alpha_mode,
                                        direction_mode, threshold_mode, datapath):
    rng = np.random.default_rng(seed)
    if input_kind == "binary":
        input_bits = 1
    if output == "scores":
        out = max(out, 2)
    if fan_in > 96:  # keep the wide layers' simulation time in check
        out = min(out, 2)
    layer = make_layer(rng, fan_in=fan_in, out=out, input_kind=input_kind, input_bits=input_bits,
                       output=output, mix=mix, alpha_mode=alpha_mode, direction_mode=direction_mode,
                       threshold_mode=threshold_mode)
    x = test_vectors(rng, fan_in, 2 ** input_bits - 1)
    expected = golden_layer(layer, x)
    assert np.array_equal(run_layer(layer, x, datapath), expected)


def test_edge_layers_fire_as_designed():
    """The generator really produces the edge cases the property test claims."""
    rng = np.random.default_rng(0)
    common = dict(fan_in=20, out=3, input_kind="uint", input_bits=4, output="threshold", mix="mixed",
                  alpha_mode="random", direction_mode="mixed")
    x = test_vectors(rng, 20, 15)
    assert golden_layer(make_layer(rng, threshold_mode="always", **common), x).all()
    assert not golden_layer(make_layer(rng, threshold_mode="never", **common), x).any()
    down = make_layer(rng, threshold_mode="random", **dict(common, direction_mode="down"))
    assert (down.direction == -1).all()
    rows = make_layer(rng, threshold_mode="random", **dict(common, mix="pruned-rows", out=8))
    assert (rows.nbits.sum(axis=1) == 0).any()


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_random_networks_stream_bit_exact_in_cocotb(simulator, tmp_path):
    """A sample of whole random networks (wide fan-in, pruned weights,
    negative gamma) through a real simulator, all-zero and all-max inputs
    included."""
    if simulator == "icarus" and not has_icarus():
        pytest.skip("iverilog is not installed")
    rng = np.random.default_rng(5 if simulator == "verilator" else 6)
    model = random_model(rng, [300, 24, 9, 4], input_bits=5, max_bits=3, prune=0.25)
    model.layers[0].direction[::2] = -1
    x = test_vectors(rng, 300, 31, n_random=60)
    # both datapaths, each in a different layer per simulator
    datapaths = ["direct", "planes", "direct"] if simulator == "verilator" else ["planes", "direct", "planes"]
    rtl.generate(model, tmp_path / "rtl", datapaths=datapaths)
    result = simulate(model, tmp_path / "rtl", x, simulator=simulator, work_dir=tmp_path / "sim")
    assert result["vectors"] == len(x) and result["mismatches"] == 0, result["first_mismatches"]
    assert result["labels"] == reference.infer(model, x).pred.tolist()
