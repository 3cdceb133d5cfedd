"""Formal equivalence of generated RTL with the artifact: the symbolic proof
of every layer (hwgen.tools.symbolic), Yosys SAT against a reference
circuit, and the argmax."""
import copy
import hashlib
import itertools
import json
import re

import numpy as np
import pytest

from hwgen import rtl

from hwgen.core import artifact
from hwgen.tools.equiv import check_layer, check_rtl, reference_verilog, summarize
from hwgen.tools.symbolic import prove_layer

from conftest import assert_clean_error, hwgen, random_cnn, random_model

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
@pytest.mark.parametrize("method", ["symbolic", "sat"])
def test_small_random_networks_are_proven(tmp_path, seed, sizes, input_bits, frac_bits, method):
    model = random_model(np.random.default_rng(seed), sizes, input_bits=input_bits, frac_bits=frac_bits,
                         prune=0.25)
    rtl.generate(model, tmp_path / "rtl")
    results = check_rtl(model, tmp_path / "rtl", method=method, timeout_s=240)
    assert [r["result"] for r in results] == ["proven"] * (len(model.layers) + 1), results
    assert [r["method"] for r in results] == [method] * len(model.layers) + ["sat"]
    assert results[-1]["layer"] == "argmax"
    assert all(r["weight_bits"] == int(l.nbits.astype(int).sum()) for r, l in zip(results, model.layers))
    assert summarize(results)["complete"]


@pytest.mark.parametrize("seed,sizes,input_bits", [(20, [64, 24, 10], 5), (21, [100, 40, 30, 10], 8)])
def test_wide_layers_are_proven_symbolically(tmp_path, seed, sizes, input_bits):
    """Fan-ins of 24 to 100, out of SAT's reach, proven in seconds."""
    model = random_model(np.random.default_rng(seed), sizes, input_bits=input_bits, frac_bits=6, prune=0.2)
    rtl.generate(model, tmp_path / "rtl")
    results = check_rtl(model, tmp_path / "rtl", timeout_s=240)
    assert [r["result"] for r in results] == ["proven"] * (len(model.layers) + 1), results


def _prove(method, layer, rtl_dir, module, score_width):
    if method == "sat":
        return check_layer(layer, rtl_dir, module, score_width, timeout_s=240)
    return prove_layer(layer, rtl_dir, module, score_width)


@pytest.mark.parametrize("method", ["symbolic", "sat"])
@pytest.mark.parametrize("seed", range(6))
def test_verdict_agrees_with_exhaustive_enumeration(tmp_path, seed, method):
    """RTL generated from a model with one weight's plane bit flipped: the
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
    res = _prove(method, layer, tmp_path / "rtl", man["layers"][k]["module"], man["score_width"])
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


@pytest.mark.parametrize("method", ["symbolic", "sat"])
def test_narrow_score_port_is_a_counterexample(tmp_path, method):
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
    res = _prove(method, layer, tmp_path / "rtl", man["layers"][0]["module"], w)
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
    proven equal to its neurons, and so is fc0 (fan-in 27, symbolically);
    folded dense layers are proven by the clocked simulation; RTL with one
    conv plane bit flipped is a counterexample, by either method."""
    rng = np.random.default_rng(12)
    model = random_cnn(rng, (1, 5, 5), [(3, (3, 3), 1)], [4, 3], input_bits=2, frac_bits=3, prune=0.2)
    folding = [None, (1, 1), (1, 1)] if folded else None
    rtl.generate(model, tmp_path / "rtl", folding=folding)
    results = check_rtl(model, tmp_path / "rtl", timeout_s=240)
    assert results[0]["result"] == "proven", results[0]
    if folded:
        assert [(r["result"], r["method"]) for r in results[1:3]] == [("proven", "symbolic-sequential")] * 2
        assert "by induction" in results[1]["schedules"]
    else:
        assert [r["result"] for r in results[1:3]] == ["proven", "proven"]   # fc0: fan-in 27
    assert results[3]["layer"] == "argmax"
    tampered = copy.deepcopy(model)
    o, j = map(int, np.argwhere(model.layers[0].nbits > 0)[0])
    tampered.layers[0].planes[0, o, j] ^= 1
    rtl.generate(tampered, tmp_path / "bad", folding=folding)
    for method in ("symbolic", "sat"):
        bad = check_rtl(model, tmp_path / "bad", method=method, timeout_s=240, max_fan_in=9)[0]
        assert bad["result"] == "counterexample" and bad["method"] == method
        x = bad["counterexample"]
        assert layer_outputs(model.layers[0], x) != layer_outputs(tampered.layers[0], x)


def test_cli_proves_all_and_fails(tmp_path):
    """hwgen equiv: exit 0 only when every layer and the argmax are proven;
    1 on a counterexample, and 1 on a partial proof unless --allow-partial."""
    model = random_model(np.random.default_rng(4), [6, 20, 3], input_bits=2, frac_bits=3)
    artifact.save(model, tmp_path / "m.hwgen")
    rtl.generate(model, tmp_path / "rtl")
    proc = hwgen("equiv", tmp_path / "m.hwgen", "--rtl", tmp_path / "rtl", "--json", tmp_path / "eq.json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "eq.json").read_text())
    assert [r["result"] for r in results] == ["proven"] * 3
    assert "3 of 3 parts proven" in proc.stdout
    # SAT alone stops at the fan-in limit: fc1 (fan-in 20) is not proven, and that is a failure
    sat = hwgen("equiv", tmp_path / "m.hwgen", "--rtl", tmp_path / "rtl", "--method", "sat")
    assert "fc1: skipped (fan-in 20 > 12" in sat.stdout
    assert_clean_error(sat, "only 2 of 3 parts proven; not proven: fc1 (--allow-partial accepts this)", code=1)
    partial = hwgen("equiv", tmp_path / "m.hwgen", "--rtl", tmp_path / "rtl", "--method", "sat",
                    "--allow-partial")
    assert partial.returncode == 0, partial.stderr
    # RTL of another model: refused as generated from another artifact, unless --allow-edited
    other = random_model(np.random.default_rng(5), [6, 20, 3], input_bits=2, frac_bits=3)
    rtl.generate(other, tmp_path / "other", artifact_sha256=hashlib.sha256(artifact.dumps(other)).hexdigest())
    refused = hwgen("equiv", tmp_path / "m.hwgen", "--rtl", tmp_path / "other")
    assert_clean_error(refused, "was generated from another artifact", code=2)
    bad = hwgen("equiv", tmp_path / "m.hwgen", "--rtl", tmp_path / "other", "--allow-edited")
    assert bad.returncode == 1      # verification failed: a counterexample
    assert "fc0: counterexample" in bad.stdout and "input on which" in bad.stdout
    assert bad.stderr.strip().splitlines()[-1].startswith("hwgen: error: fc0")
    assert "not equivalent to the artifact" in bad.stderr and "Traceback" not in bad.stderr
