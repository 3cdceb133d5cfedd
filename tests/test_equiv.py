"""Formal equivalence (Yosys SAT) of generated layers with the reference circuit."""
import copy
import itertools
import json
import re

import numpy as np
import pytest

from hwgen import rtl

from hwgen.core import artifact
from hwgen.tools.equiv import check_layer, check_rtl, reference_verilog

from conftest import hwgen, random_cnn, random_model

pytestmark = pytest.mark.slow


def layer_outputs(layer, x):
    """What ``layer`` outputs for the input elements ``x`` (numpy, independent of hwgen's code)."""
    x = np.asarray(x, dtype=np.int64)
    a = x if layer.input == "uint" else 2 * x - 1
    y = layer.weights() @ a
    if layer.output == "scores":
        return (y + layer.bias).tolist()
    up = layer.direction > 0
    return np.where(up, y >= layer.threshold, y <= layer.threshold).astype(int).tolist()


def all_inputs(layer):
    levels = range(2 ** layer.input_bits) if layer.input == "uint" else range(2)
    return itertools.product(levels, repeat=layer.in_features)


@pytest.mark.parametrize("seed,sizes,input_bits,frac_bits", [
    (0, [6, 5, 4], 2, 3),
    (1, [4, 6, 3], 3, 8),    # large scales
    (2, [8, 4, 2], 1, 4),    # 1-bit unsigned pixels
    (3, [5, 8, 8, 3], 2, 2),
])
def test_small_random_networks_are_proven(tmp_path, seed, sizes, input_bits, frac_bits):
    model = random_model(np.random.default_rng(seed), sizes, input_bits=input_bits, frac_bits=frac_bits,
                         prune=0.25)
    rtl.generate(model, tmp_path / "rtl")
    results = check_rtl(model, tmp_path / "rtl", timeout_s=240)
    assert [r["result"] for r in results] == ["proven"] * len(model.layers), results
    assert all(r["weight_bits"] == int(l.nbits.astype(int).sum()) for r, l in zip(results, model.layers))


@pytest.mark.parametrize("seed", range(6))
def test_verdict_agrees_with_exhaustive_enumeration(tmp_path, seed):
    """RTL generated from a model with one weight's plane bit flipped: SAT's
    verdict must match a brute-force comparison over every input, and a
    counterexample must really separate the two layers."""
    rng = np.random.default_rng(100 + seed)
    model = random_model(rng, [5, 4, 3], input_bits=2, frac_bits=3, prune=0.2)
    k = seed % 2                                   # uint threshold layer or binary scores layer
    layer = model.layers[k]
    tampered = copy.deepcopy(model)
    o, j = map(int, np.argwhere(layer.nbits > 0)[rng.integers(int((layer.nbits > 0).sum()))])
    tampered.layers[k].planes[0, o, j] ^= 1
    man = rtl.generate(tampered, tmp_path / "rtl")
    res = check_layer(layer, tmp_path / "rtl", man["layers"][k]["module"], man["score_width"], timeout_s=240)
    differing = [x for x in all_inputs(layer)
                 if layer_outputs(layer, x) != layer_outputs(tampered.layers[k], x)]
    if differing:
        assert res["result"] == "counterexample"
        x = res["counterexample"]
        assert len(x) == layer.in_features
        assert layer_outputs(layer, x) != layer_outputs(tampered.layers[k], x)
    else:  # e.g. a threshold that never fires either way: the flip is invisible
        assert res["result"] == "proven"
    if k == 1:  # a scores layer always shows a flipped weight of a nonzero scale
        assert differing


def test_narrow_score_port_is_a_counterexample(tmp_path):
    """The reference is wider than the RTL's scores: an RTL whose score 0
    wraps around (kept to 2 bits, sign-extended) is caught, not hidden."""
    model = random_model(np.random.default_rng(7), [4, 3], input_bits=3, frac_bits=4)
    layer = model.layers[0]
    lo, hi = layer.bounds()
    assert lo[0] < -2 or hi[0] > 1          # score 0 does not fit in 2 bits
    man = rtl.generate(model, tmp_path / "rtl")
    w = man["score_width"]
    path = tmp_path / "rtl" / "hwgen_top.v"
    text = path.read_text()
    line = re.search(rf"^  assign y\[{w - 1}:0\] = (.*);$", text, re.MULTILINE)
    assert line, "score 0's assignment not found"
    path.write_text(text[:line.start()] + f"  wire [{w - 1}:0] t0 = {line.group(1)};\n"
                    f"  assign y[{w - 1}:0] = {{ {{{w - 1}{{t0[1]}}}}, t0[0] }};" + text[line.end():])
    res = check_layer(layer, tmp_path / "rtl", man["layers"][0]["module"], w, timeout_s=240)
    assert res["result"] == "counterexample"
    x = res["counterexample"]
    assert not -2 <= layer_outputs(layer, x)[0] <= 1


def test_reference_refuses_what_it_does_not_model():
    model = random_model(np.random.default_rng(0), [3, 2, 2])
    layer = copy.deepcopy(model.layers[0])
    layer.output_bits = 2
    with pytest.raises(Exception, match="1-bit outputs"):
        reference_verilog(layer, "gold")


@pytest.mark.parametrize("folded", [False, True])
def test_conv_window_datapaths_are_proven(tmp_path, folded):
    """A CNN's conv layer: its window datapath (fan-in channels x 3 x 3) is
    proven equal to the reference circuit of its neurons; folded dense layers
    are skipped as sequential; RTL with one conv plane bit flipped is a
    counterexample."""
    rng = np.random.default_rng(12)
    model = random_cnn(rng, (1, 5, 5), [(3, (3, 3), 1)], [4, 3], input_bits=2, frac_bits=3, prune=0.2)
    folding = [None, (1, 1), (1, 1)] if folded else None
    rtl.generate(model, tmp_path / "rtl", folding=folding)
    results = check_rtl(model, tmp_path / "rtl", timeout_s=240)
    assert results[0]["result"] == "proven", results[0]
    if folded:
        assert [r["result"] for r in results[1:]] == ["skipped", "skipped"]
        assert "folded" in results[1]["reason"]
    else:
        assert [r["result"] for r in results[1:]] == ["skipped", "proven"]   # fc0: fan-in 27 > 12
    tampered = copy.deepcopy(model)
    o, j = map(int, np.argwhere(model.layers[0].nbits > 0)[0])
    tampered.layers[0].planes[0, o, j] ^= 1
    rtl.generate(tampered, tmp_path / "bad", folding=folding)
    bad = check_rtl(model, tmp_path / "bad", timeout_s=240, max_fan_in=9)[0]
    assert bad["result"] == "counterexample"
    x = bad["counterexample"]
    assert layer_outputs(model.layers[0], x) != layer_outputs(tampered.layers[0], x)


def test_cli_proves_skips_and_fails(tmp_path):
    model = random_model(np.random.default_rng(4), [6, 20, 3], input_bits=2, frac_bits=3)
    artifact.save(model, tmp_path / "m.hwgen")
    rtl.generate(model, tmp_path / "rtl")
    proc = hwgen("equiv", tmp_path / "m.hwgen", "--rtl", tmp_path / "rtl", "--json", tmp_path / "eq.json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "eq.json").read_text())
    assert [r["result"] for r in results] == ["proven", "skipped"]   # fc1 has fan-in 20 > 12
    assert "fc1: skipped (fan-in 20 > 12" in proc.stdout
    strict = hwgen("equiv", tmp_path / "m.hwgen", "--rtl", tmp_path / "rtl", "--strict")
    assert strict.returncode == 2 and "not every layer was proven" in strict.stderr
    # RTL of another model: a counterexample, one error line, exit 1
    other = random_model(np.random.default_rng(5), [6, 20, 3], input_bits=2, frac_bits=3)
    rtl.generate(other, tmp_path / "other")
    bad = hwgen("equiv", tmp_path / "m.hwgen", "--rtl", tmp_path / "other", "--max-fan-in", "6")
    assert bad.returncode == 1      # verification failed: a counterexample
    assert "fc0: counterexample" in bad.stdout and "input on which" in bad.stdout
    assert bad.stderr.strip().splitlines()[-1] == \
        "hwgen: error: layer fc0 of the RTL is not equivalent to the artifact"
    assert "Traceback" not in bad.stderr
