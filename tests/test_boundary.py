"""Boundary vectors (hwgen.tools.boundary) and the per-layer harnesses of
``hwgen sim`` (hwgen.tools.sim.simulate_layers).

The vectors are checked against an independent enumeration of every sum a
neuron reaches. The harnesses are checked on single-point mutants of a
folded MLP and of a folded conv layer, where the symbolic proof cannot
follow (registers, weight ROMs): each mutant's layer is simulated on its
boundary vectors and on every input of the layer, and the boundary vectors
must catch exactly the mutants that some input tells apart. The CLI test is
the issue's case: a pixel-layer threshold moved across sums that no test
image reaches passes the test split and is caught by default.
"""
import copy
import itertools

import numpy as np
import pytest

from hwgen import rtl
from hwgen.core import artifact
from hwgen.tools import boundary
from hwgen.tools.sim import simulate_layers

from conftest import has_icarus, hwgen, random_cnn, random_model
from test_equiv import layer_outputs
from test_symbolic import mutants, reachable

SIMULATOR = "icarus" if has_icarus() else "verilator"    # small designs: Icarus compiles in a second


def _sums(layer, codes):
    a = np.asarray(codes, dtype=np.int64)
    return (a if layer.input == "uint" else 2 * a - 1) @ layer.weights().T


def _check_nearest(layer, lv):
    """Every below/at/above vector sits on the nearest reachable sum of its side."""
    y = _sums(layer, lv.inputs)
    seen = set()
    for (o, label), row in zip(lv.what, y):
        if label not in ("below", "at", "above"):
            continue
        t, up = int(layer.threshold[o]), layer.direction[o] > 0
        sums = reachable(layer, o)
        fire = [s for s in sums if (s >= t if up else s <= t)]
        off = [s for s in sums if not (s >= t if up else s <= t)]
        nearest_fire = min(fire) if up else max(fire)
        nearest_off = max(off) if up else min(off)
        if label == "below":
            assert row[o] == nearest_off, (o, label, row[o], nearest_off)
        elif label == "at":
            assert row[o] == nearest_fire, (o, label, row[o], nearest_fire)
        else:   # the next reachable sum beyond the firing one
            beyond = [s for s in fire if (s > nearest_fire if up else s < nearest_fire)]
            assert row[o] == (min(beyond) if up else max(beyond)), (o, label)
        seen.add((o, label))
    return seen


@pytest.mark.parametrize("seed", range(6))
def test_boundary_vectors_sit_on_the_nearest_reachable_sums(seed):
    rng = np.random.default_rng(900 + seed)
    model = random_model(rng, [5, 6, 4], input_bits=2 + seed % 2, frac_bits=3 + seed, prune=0.2)
    for layer in model.layers[:-1]:
        lv = boundary.layer_vectors(layer, variants=3, seed=seed)
        assert lv.exact and lv.covered == layer.out_features and not lv.uncovered
        seen = _check_nearest(layer, lv)
        lo, hi = layer.bounds()
        for o in range(layer.out_features):
            t, up = int(layer.threshold[o]), layer.direction[o] > 0
            sums = reachable(layer, o)
            if any(s >= t if up else s <= t for s in sums) and any(not (s >= t if up else s <= t) for s in sums):
                assert {(o, "below"), (o, "at")} <= seen, o
        assert (lv.inputs >= 0).all() and (lv.inputs <= 2 ** layer.input_bits - 1).all()
        # every neuron's extremes
        y = _sums(layer, lv.inputs)
        for o in range(layer.out_features):
            assert y[:, o].max() == hi[o] and y[:, o].min() == lo[o]
    scores = boundary.layer_vectors(model.layers[-1])
    assert scores.covered is None and len(scores.inputs) == 2 + 2 * model.layers[-1].out_features


def test_wide_layers_use_the_split_search(monkeypatch):
    """Beyond the exact enumeration, the split search still lands on T - 1 and T exactly."""
    monkeypatch.setattr(boundary, "MAX_REACH_WORK", 0)
    rng = np.random.default_rng(5)
    model = random_model(rng, [40, 12, 4], input_bits=4, frac_bits=8, prune=0.1)
    layer = model.layers[0]
    lv = boundary.layer_vectors(layer, variants=2)
    assert not lv.exact
    y = _sums(layer, lv.inputs)
    lo, hi = layer.bounds()
    live = [o for o in range(layer.out_features) if lo[o] < layer.threshold[o] <= hi[o]]
    w = layer.weights()
    for (o, label), row in zip(lv.what, y):
        if label in ("below", "at"):
            # Y is a multiple of g, the gcd of the coefficients of the pixels' bits: the sums
            # next to the threshold on either side are the multiples of g next to it
            g = int(np.gcd.reduce(np.abs(w[o][w[o] != 0])))
            t, up = int(layer.threshold[o]), layer.direction[o] > 0
            at = -(-t // g) * g if up else t // g * g
            want = at if label == "at" else at - g if up else at + g
            assert row[o] == want, (o, label, row[o], want)
    assert lv.covered >= len(live) - 1 and lv.covered + len(lv.uncovered) == layer.out_features


def test_wide_layers_get_scale_vectors_that_tell_each_scale_apart():
    """Beyond 1,024 input bits (200 pixels x 8 bits) the scale search starts
    from the neuron's own boundary vectors: every ``scale b`` vector found
    makes the neuron with plane b's scale one more or one less decide
    differently, and every neuron gets them."""
    import dataclasses
    rng = np.random.default_rng(7)
    layer = random_model(rng, [200, 6, 4], input_bits=8, frac_bits=8, prune=0.1).layers[0]
    assert layer.in_features * layer.input_bits > boundary.MAX_SEPARATE_BITS
    lv = boundary.layer_vectors(layer, variants=1)
    base = boundary.golden_codes(layer, lv.inputs)
    found = set()
    for k, (o, label) in enumerate(lv.what):
        if not label.startswith("scale"):
            continue
        b = int(label.split()[1]) - 1
        told = []
        for sign in (1, -1):
            alpha = layer.alpha.copy()
            alpha[o, b] += sign
            mutant = dataclasses.replace(layer, alpha=alpha)
            told.append(boundary.golden_codes(mutant, lv.inputs[k:k + 1])[0, o] != base[k, o])
        assert any(told), (o, label)
        found.add((o, b))
    planes = {b for b in range(layer.max_bits) if layer.nbits.max() > b}
    assert {o for o, _ in found} == set(range(layer.out_features)) and {b for _, b in found} == planes


def test_network_inputs_carry_the_first_layers_windows():
    rng = np.random.default_rng(2)
    model = random_cnn(rng, (2, 5, 5), [(3, (3, 3), 1)], [6, 4], input_bits=3)
    lv = boundary.layer_vectors(model.layers[0], variants=2)
    x = boundary.network_inputs(model, lv)
    assert x.shape == (len(lv.inputs), model.input_features) and x.max() < 8
    images = x.reshape(-1, 2, 5, 5)
    for image, window in zip(images, lv.inputs):
        windows = [image[:, i:i + 3, j:j + 3].ravel() for i in range(3) for j in range(3)]
        assert any((w == window).all() for w in windows)
    assert (boundary.network_inputs(model, lv) == x).all()          # reproducible


def _all_inputs(layer):
    levels = range(2 ** layer.input_bits) if layer.input == "uint" else range(2)
    return np.array(list(itertools.product(levels, repeat=layer.in_features)), dtype=np.int64)


def _mutant_verdicts(model, k, folding, tmp_path, rng):
    """``[(kind, caught by the boundary vectors, told apart by some input)]``
    for layer ``k``'s single-point mutants, each simulated in the layer's own
    harness."""
    out = []
    for n, (kind, ref, tampered) in enumerate(mutants(model, k, rng)):
        d = tmp_path / f"{k}_{n}"
        rtl.generate(tampered, d, folding=folding)
        layer = ref.layers[k]
        lv = boundary.layer_vectors(layer)
        every = _all_inputs(layer)
        both = boundary.LayerVectors(layer.name, np.concatenate([lv.inputs, every]),
                                     lv.what + [(None, "all")] * len(every), lv.neurons, lv.covered)
        sets = [None] * len(model.layers)
        sets[k] = both
        rec = simulate_layers(ref, d, sets, simulator=SIMULATOR, work_dir=d / "layers")[0]
        assert rec["harness"] == "stream", rec
        # the harness's verdicts agree with the independent arithmetic on every input
        expected = {i for i, x in enumerate(every)
                    if layer_outputs(layer, x) != layer_outputs(tampered.layers[k], x)}
        assert {i - len(lv.inputs) for i in rec["mismatched"] if i >= len(lv.inputs)} == expected, kind
        out.append((kind, any(i < len(lv.inputs) for i in rec["mismatched"]), bool(expected)))
    return out


def test_boundary_vectors_catch_every_folded_mutant_that_differs(tmp_path):
    """A folded MLP (weights, scales and thresholds in ROMs): every mutant of
    every layer that some input tells apart is caught by its boundary
    vectors, and none that no input tells apart is."""
    rng = np.random.default_rng(500)
    model = random_model(rng, [4, 8, 6, 4], input_bits=2, frac_bits=4, prune=0.2)
    verdicts = []
    for k in range(3):
        verdicts += _mutant_verdicts(model, k, [(2, 2), (2, 4), (2, 3)], tmp_path, rng)
    assert [v for v in verdicts if v[1] != v[2]] == []
    assert sum(differs for _, _, differs in verdicts) >= 12 and len(verdicts) >= 18
    assert {kind for kind, _, differs in verdicts if differs} >= {
        "weight bit", "scale +1", "swapped wires", "threshold -1", "direction flipped", "bias +1"}


def test_boundary_vectors_catch_folded_conv_mutants(tmp_path):
    """The pixel layer of a folded CNN, driven window by window through its
    folded datapath."""
    rng = np.random.default_rng(501)
    model = random_cnn(rng, (1, 4, 4), [(3, (2, 2), 1)], [6, 4], input_bits=2, frac_bits=4, prune=0.2)
    verdicts = _mutant_verdicts(model, 0, [(1, 2), (2, 3), (2, 3)], tmp_path, rng)
    assert [v for v in verdicts if v[1] != v[2]] == []
    assert sum(differs for _, _, differs in verdicts) >= 4


def test_sim_catches_a_pixel_threshold_the_test_split_cannot_see(digits_run, tmp_path):
    """The issue's mutant, on the trained digits network: an fc0 threshold
    moved across reachable sums that no test image reaches. The test split
    alone passes it (--no-boundary); by default ``hwgen sim`` fails, names
    the layer and the neuron, and exits 1."""
    model = copy.deepcopy(digits_run["model"])
    layer = model.layers[0]
    x = digits_run["data"].x_test
    y = x.astype(np.int64) @ layer.weights().T
    lo, hi = layer.bounds()
    best = None
    for o in range(layer.out_features):
        seen = np.unique(y[:, o])
        gaps = np.diff(seen)
        i = int(gaps.argmax())
        if best is None or gaps[i] > best[0]:
            best = (int(gaps[i]), o, int(seen[i]), int(seen[i + 1]))
    _, o, a, b = best
    tampered = copy.deepcopy(model)
    layer.threshold[o], tampered.layers[0].threshold[o] = a + 1, b
    layer.direction[o] = tampered.layers[0].direction[o] = 1
    fire = lambda m: (x @ m.layers[0].weights().T)[:, o] >= m.layers[0].threshold[o]
    assert (fire(model) == fire(tampered)).all()
    artifact.save(model, tmp_path / "ref.hwgen")
    rtl.generate(tampered, tmp_path / "rtl")
    quiet = hwgen("sim", str(tmp_path / "ref.hwgen"), "--rtl", str(tmp_path / "rtl"), "--limit", "60",
                  "--allow-edited", "--no-boundary")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "boundary" not in quiet.stdout
    proc = hwgen("sim", str(tmp_path / "ref.hwgen"), "--rtl", str(tmp_path / "rtl"), "--limit", "60",
                 "--allow-edited")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "60 vectors, 0 mismatches" in proc.stdout
    assert f"neuron {o} " in proc.stdout and "fc0:" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr


def test_sim_on_a_netlist_says_which_layers_were_not_simulated_alone(tmp_path):
    """A flattened netlist has no layer modules: the network-level boundary
    vectors still run, and each layer says why it was not driven alone."""
    rng = np.random.default_rng(3)
    model = random_model(rng, [6, 5, 3], input_bits=2)
    rtl.generate(model, tmp_path / "rtl")
    (tmp_path / "rtl" / "hwgen_top.v").write_text(
        (tmp_path / "rtl" / "hwgen_top.v").read_text().replace("module \\hwgen_top.fc0 ", "module \\other "))
    sets = [boundary.layer_vectors(layer) for layer in model.layers]
    recs = simulate_layers(model, tmp_path / "rtl", sets, simulator=SIMULATOR)
    assert recs[0]["harness"] is None and "no module hwgen_top.fc0" in recs[0]["note"]
    assert recs[1]["harness"] == "combinational" and recs[1]["mismatches"] == 0

