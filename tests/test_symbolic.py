"""The symbolic proof (hwgen.tools.symbolic) against single-point mutants.

Each mutant is RTL generated from a copy of the model with one thing
changed: a threshold +-1, a threshold moved into a gap of reachable sums or
across a sum the test split never reaches, one weight bit, one scale +1, a
bias +1, two input wires swapped, a direction flipped; and the argmax with
its operands swapped. The RTL is proven against the *original* model. On
small layers the verdict is checked against every input; a counterexample
must separate the two models on numpy's reference arithmetic; a mutant that
is equivalent must be reported as proven (and as such).
"""
import copy
import itertools
import re

import numpy as np
import pytest

from hwgen import rtl
from hwgen.core import artifact
from hwgen.tools.equiv import check_argmax, check_rtl, summarize
from hwgen.tools.symbolic import Unsupported, _Reach, compare_threshold, prove_layer

from conftest import random_cnn, random_model
from test_equiv import all_inputs, layer_outputs as outputs


def reachable(layer, o):
    """Every value neuron ``o``'s sum ``Y`` reaches over all inputs, ascending
    (a boolean-array DP over the inputs, numpy only)."""
    w = [int(v) for v in layer.weights()[o]]
    levels = list(range(2 ** layer.input_bits)) if layer.input == "uint" else [-1, 1]
    lo = sum(min(v * a for a in levels) for v in w)
    hi = sum(max(v * a for a in levels) for v in w)
    reach = np.zeros(hi - lo + 1, dtype=bool)
    reach[0] = True          # index = sum - (running minimum)
    base = 0
    for v in w:
        shifts = sorted({v * a for a in levels})
        new = np.zeros_like(reach)
        for sh in shifts:
            k = sh - shifts[0]
            new[k:] |= reach[:len(reach) - k]
        reach, base = new, base + shifts[0]
    return (np.flatnonzero(reach) + lo).tolist()


def mutants(model, k, rng):
    """``(kind, reference model, tampered model)`` for layer ``k``: the
    single-point mutants (the reference is ``model``, except for the gap
    mutant: a copy whose threshold sits at the gap's bottom)."""
    layer = model.layers[k]
    out = []

    def variant(kind, edit):
        m = copy.deepcopy(model)
        edit(m.layers[k])
        out.append((kind, model, m))

    o = 0
    if layer.output == "threshold":   # a neuron that is not constant, so that its mutants can show
        lo, hi = layer.bounds()
        live_o = [i for i in range(layer.out_features) if lo[i] < layer.threshold[i] <= hi[i]]
        o = live_o[0] if live_o else 0
    live = np.argwhere(layer.nbits[o] > 0).ravel()
    j = int(live[rng.integers(len(live))])

    def flip(l):
        l.planes[0, o, j] ^= 1

    def scale(l):
        l.alpha[o, 0] += 1
    variant("weight bit", flip)
    variant("scale +1", scale)
    j1, j2 = (int(v) for v in rng.choice(layer.in_features, 2, replace=False))

    def swap(l):
        for arr in (l.nbits, *l.planes):
            arr[:, [j1, j2]] = arr[:, [j2, j1]]
    variant("swapped wires", swap)
    if layer.output == "scores":
        variant("bias +1", lambda l: l.bias.__setitem__(o, l.bias[o] + 1))
        return out
    variant("threshold +1", lambda l: l.threshold.__setitem__(o, l.threshold[o] + 1))
    variant("threshold -1", lambda l: l.threshold.__setitem__(o, l.threshold[o] - 1))
    variant("direction flipped", lambda l: l.direction.__setitem__(o, -l.direction[o]))
    sums = reachable(layer, o)
    gaps = [(a, b) for a, b in zip(sums, sums[1:]) if b - a >= 2]
    if gaps:   # thresholds at either end of a gap of reachable sums: the same function
        a, b = gaps[len(gaps) // 2]
        base, moved = copy.deepcopy(model), copy.deepcopy(model)
        base.layers[k].threshold[o], moved.layers[k].threshold[o] = a + 1, b
        base.layers[k].direction[o] = moved.layers[k].direction[o] = 1
        out.append(("threshold inside a gap (equivalent)", base, moved))
    return out


def o_of(model, tampered, k):
    """The neuron whose threshold the mutant moved."""
    a, b = model.layers[k].threshold, tampered.layers[k].threshold
    return int(np.flatnonzero(a != b)[0])


def _truth(layer, tampered_layer):
    return [x for x in all_inputs(layer) if outputs(layer, x) != outputs(tampered_layer, x)]


@pytest.mark.parametrize("seed", range(4))
def test_every_single_point_mutant_is_decided_exactly(tmp_path, seed):
    """Small layers, every input enumerated: the proof says counterexample
    exactly when some input tells the mutant from the model, and its input
    does."""
    rng = np.random.default_rng(300 + seed)
    model = random_model(rng, [4, 5, 3], input_bits=2, frac_bits=3, prune=0.2)
    seen = set()
    for k in range(len(model.layers)):
        for n, (kind, ref, tampered) in enumerate(mutants(model, k, rng)):
            d = tmp_path / f"{k}_{n}"
            man = rtl.generate(tampered, d)
            res = prove_layer(ref.layers[k], d, man["layers"][k]["module"], man["score_width"])
            differing = _truth(ref.layers[k], tampered.layers[k])
            seen.add((kind, bool(differing)))
            if differing:
                assert res["result"] == "counterexample", (kind, res)
                x = res["counterexample"]
                assert outputs(ref.layers[k], x) != outputs(tampered.layers[k], x), (kind, x)
            else:
                assert res["result"] == "proven", (kind, res)
    assert any(caught for _, caught in seen)


def test_threshold_in_a_gap_of_the_test_split_is_caught(tmp_path):
    """The issue's mutant: a pixel-layer threshold moved across sums that no
    test vector reaches but other inputs do. Simulation on the test vectors
    passes it; the proof gives an input that separates."""
    rng = np.random.default_rng(41)
    model = random_model(rng, [64, 16, 10], input_bits=5, frac_bits=6, prune=0.2)
    layer = model.layers[0]
    tests = rng.integers(0, 32, size=(360, 64))
    y = tests @ layer.weights().T                    # the test split's sums, [360, 16]
    o = 3
    seen = np.unique(y[:, o])
    # the widest gap between two test sums, inside the reachable range
    gaps = np.diff(seen)
    i = int(gaps.argmax())
    lo, hi = int(seen[i]), int(seen[i + 1])
    assert hi - lo >= 4
    tampered = copy.deepcopy(model)
    model.layers[0].threshold[o], tampered.layers[0].threshold[o] = lo + 1, hi
    model.layers[0].direction[o] = tampered.layers[0].direction[o] = 1
    fire = lambda m: (tests @ m.layers[0].weights().T)[:, o] >= m.layers[0].threshold[o]
    assert (fire(model) == fire(tampered)).all()    # the test split cannot tell them apart
    man = rtl.generate(tampered, tmp_path / "rtl")
    res = prove_layer(model.layers[0], tmp_path / "rtl", man["layers"][0]["module"], man["score_width"])
    assert res["result"] == "counterexample" and res["neuron"] == o, res
    x = res["counterexample"]
    assert outputs(model.layers[0], x)[o] != outputs(tampered.layers[0], x)[o]


@pytest.mark.parametrize("which", ["demo-sized", "cnn"])
def test_mutants_of_wide_layers_are_caught(tmp_path, which):
    """Fan-in 64 pixels x 5 bits, and a CNN's conv window and dense layers:
    every mutant that differs on some input is a counterexample that
    separates; the gap mutant is proven equivalent."""
    rng = np.random.default_rng(7)
    if which == "cnn":
        model = random_cnn(rng, (1, 6, 6), [(3, (3, 3), 1)], [8, 4], input_bits=2, frac_bits=3, prune=0.2)
    else:
        model = random_model(rng, [64, 16, 10], input_bits=5, frac_bits=6, prune=0.2)
    kinds = {}
    for k in range(len(model.layers)):
        for n, (kind, ref, tampered) in enumerate(mutants(model, k, rng)):
            d = tmp_path / f"{k}_{n}"
            man = rtl.generate(tampered, d)
            entry = man["layers"][k]
            res = prove_layer(ref.layers[k], d, entry["datapath_module"], man["score_width"])
            kinds[(k, kind)] = res["result"]
            assert res["result"] in ("proven", "counterexample"), (kind, res)
            if res["result"] == "counterexample":
                x = res["counterexample"]
                assert outputs(ref.layers[k], x) != outputs(tampered.layers[k], x), (kind, x)
                assert "equivalent" not in kind
            elif kind.startswith("threshold"):   # the same function iff no reachable sum lies between
                o = o_of(ref, tampered, k)
                t, u = sorted((int(ref.layers[k].threshold[o]), int(tampered.layers[k].threshold[o])))
                up = ref.layers[k].direction[o] > 0     # >= t parts t-1 from t; <= t parts t from t+1
                between = [v for v in reachable(ref.layers[k], o) if (t <= v < u if up else t < v <= u)]
                assert not between, (kind, res, between[:3])
            else:   # proven: no sampled input tells them apart
                xs = rng.integers(0, 2 ** ref.layers[k].input_bits, size=(2000, ref.layers[k].in_features))
                assert all(outputs(ref.layers[k], x) == outputs(tampered.layers[k], x) for x in xs), kind
    # the mutants that always show are caught on every layer
    for k, layer in enumerate(model.layers):
        assert kinds[(k, "weight bit")] == "counterexample" or layer.output != "scores"
        if layer.output == "scores":
            assert kinds[(k, "bias +1")] == "counterexample"
            assert kinds[(k, "scale +1")] == "counterexample"
    assert kinds[(0, "scale +1")] == "counterexample"   # the pixel layer's scale


def test_argmax_mutant_is_a_counterexample(tmp_path):
    """The argmax with its first comparison's operands swapped (the wrong
    one of two scores wins, and ties go the other way): SAT gives scores on
    which it picks another class."""
    model = random_model(np.random.default_rng(3), [6, 5, 4], input_bits=2, frac_bits=3)
    man = rtl.generate(model, tmp_path / "rtl")
    assert check_argmax(tmp_path / "rtl")["result"] == "proven"
    path = tmp_path / "rtl" / "hwgen_top.v"
    text = path.read_text()
    start = text.index(f"module \\{man['argmax_module']} ")
    m = re.compile(r"\$signed\((scores\[\d+:\d+\])\) - \$signed\((scores\[\d+:\d+\])\)").search(text, start)
    assert m, "the argmax's first comparison was not found"
    path.write_text(text[:m.start()] + f"$signed({m.group(2)}) - $signed({m.group(1)})" + text[m.end():])
    res = check_argmax(tmp_path / "rtl")
    assert res["result"] == "counterexample", res
    scores = res["counterexample"]
    assert len(scores) == 4 and all(isinstance(s, int) for s in scores)


def test_edited_rtl_checks_report_all_parts(tmp_path):
    """check_rtl on a folded design: the folded layers are proven by the
    clocked simulation and the argmax scan by bounded SAT, so the proof is
    complete; with a layer's module gone from the Verilog that part is not
    proven, and the summary names it."""
    model = random_model(np.random.default_rng(5), [8, 6, 3], input_bits=2, frac_bits=3)
    rtl.generate(model, tmp_path / "rtl", folding=[(1, 2), (1, 2)])
    s = summarize(check_rtl(model, tmp_path / "rtl"))
    assert s["complete"] and s["proven"] == 3 and s["counterexample"] == []
    path = tmp_path / "rtl" / "hwgen_top.v"
    text = path.read_text()
    path.write_text(text.replace("module \\hwgen_top.fc1 ", "module \\hwgen_top.fc1_renamed "))
    with pytest.raises(Exception):
        check_rtl(model, tmp_path / "rtl")


def test_compare_threshold_agrees_with_enumeration():
    """Random pairs of thresholds over 8 bits: the verdict matches every
    input, and a counterexample separates."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = 8
        p = {v: int(a) for v, a in enumerate(rng.integers(-6, 7, size=n)) if a}
        q = dict(p)
        if rng.random() < 0.5 and p:                       # a few coefficients differ
            for v in rng.choice(n, size=int(rng.integers(1, 3)), replace=False):
                q[int(v)] = int(rng.integers(-6, 7))
            q = {v: a for v, a in q.items() if a}
        c, d = int(rng.integers(-10, 11)), int(rng.integers(-10, 11))
        f, g = (p, c), (q, d)
        verdict, x = compare_threshold(f, g)
        ev = lambda form, bits: form[1] + sum(a * bits[v] for v, a in form[0].items()) >= 0
        differ = [bits for bits in itertools.product((0, 1), repeat=n) if ev(f, bits) != ev(g, bits)]
        if differ:
            assert verdict == "counterexample"
            bits = [x.get(v, 0) for v in range(n)]
            assert ev(f, bits) != ev(g, bits)
        else:
            assert verdict == "proven"


def test_reachable_sums_and_witnesses():
    coeffs = {0: 3, 1: -5, 2: 7, 3: 2, 4: -1}
    r = _Reach(coeffs)
    sums = {sum(a * b for a, b in zip(coeffs.values(), bits)) for bits in itertools.product((0, 1), repeat=5)}
    for s in range(-7, 13):
        hit = r.first_in(s, s + 1)
        assert (hit is not None) == (s in sums)
        if hit is not None:
            x = r.witness(hit)
            assert sum(a * x.get(v, 0) for v, a in coeffs.items()) == s


def test_the_search_refuses_an_enormous_range():
    with pytest.raises(Unsupported, match="possible sums"):
        _Reach({0: 1 << 30})
