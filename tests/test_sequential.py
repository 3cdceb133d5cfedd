"""The clocked symbolic proof (hwgen.tools.sequential): folded and pipelined
layers proven for every input, and every single-point mutant decided
exactly as the artifact's independent arithmetic on every input decides it.

The mutants are RTL generated from a tampered artifact and proven against
the original: a weight bit, a scale, swapped wires, thresholds moved by one,
a flipped direction, a bias, and a threshold moved inside a gap of
reachable sums (equivalent: it must be proven, not reported). A
counterexample must differ in the arithmetic too. A hand-edited folded
layer that keeps its accumulator between inferences is right on the first
inference after reset and wrong later: the induction step must catch it.
"""
import re

import numpy as np
import pytest

from hwgen import rtl
from hwgen.tools.equiv import check_argmax, check_rtl, summarize
from hwgen.tools.sequential import Machine, _Port, _Schedule, _zeros, prove_clocked
from hwgen.tools.symbolic import _netlist_json

from conftest import random_cnn, random_model
from test_equiv import all_inputs, layer_outputs
from test_symbolic import mutants

FOLDING = [(2, 2), (2, 4), (2, 3)]


def _prove(model, k, d, man):
    entry = man["layers"][k]
    module = entry.get("window_module", entry["module"]) if "pe" in entry else entry["datapath_module"]
    latency = 0 if "pe" in entry else entry["datapath_latency"]
    return prove_clocked(model.layers[k], d, module, man["score_width"], latency=latency,
                         cycles=entry.get("cycles", entry.get("interval")))


@pytest.mark.parametrize("arch", ["folded", "pipelined"])
def test_every_mutant_is_decided_as_the_arithmetic_decides_it(tmp_path, arch):
    rng = np.random.default_rng(500)
    model = random_model(rng, [4, 8, 6, 4], input_bits=2, frac_bits=4, prune=0.2)
    verdicts = []
    for k in range(3):
        for n, (kind, ref, tampered) in enumerate(mutants(model, k, rng)):
            d = tmp_path / f"{k}_{n}"
            man = rtl.generate(tampered, d, **({"folding": FOLDING} if arch == "folded" else {"pipeline": 1}))
            layer = ref.layers[k]
            differs = any(layer_outputs(layer, x) != layer_outputs(tampered.layers[k], x)
                          for x in all_inputs(layer))
            res = _prove(ref, k, d, man)
            assert res["method"] == "symbolic-sequential"
            assert res["result"] == ("counterexample" if differs else "proven"), (k, kind, res)
            if differs:
                x = res["counterexample"]
                assert layer_outputs(layer, x) != layer_outputs(tampered.layers[k], x), (k, kind, res)
            else:
                assert "by induction" in res["schedules"]
            verdicts.append((kind, differs))
    assert sum(d for _, d in verdicts) >= 12 and len(verdicts) >= 18
    assert {kind for kind, d in verdicts if d} >= {"weight bit", "scale +1", "swapped wires", "direction flipped",
                                                   "bias +1"}


def test_an_accumulator_kept_between_inferences_is_caught(tmp_path):
    """The folded scores layer with its accumulator no longer cleared on a
    fold's first word: right from reset, wrong on the next inference."""
    model = random_model(np.random.default_rng(5), [8, 6, 3], input_bits=2, frac_bits=3)
    man = rtl.generate(model, tmp_path / "rtl", folding=[(2, 4), (3, 2)])
    assert _prove(model, 1, tmp_path / "rtl", man)["result"] == "proven"
    path = tmp_path / "rtl" / "hwgen_top.v"
    text = path.read_text()
    module = text[text.index("module \\hwgen_top.fc1 "):]
    module = module[:module.index("endmodule")]
    clear = re.search(r"assign (\\\$\d+) {2}= ctl2\[3\] \? 7'h00 : acc0;", module)
    assert clear, "the accumulator's clear was not found"
    path.write_text(text.replace(clear.group(0), f"assign {clear.group(1)}  = acc0;"))
    res = _prove(model, 1, tmp_path / "rtl", man)
    assert res["result"] == "counterexample", res
    assert "inference 1 after reset" in res["reason"] or "concrete run from reset differs" in res["reason"]


def test_folded_cnn_layers_are_proven(tmp_path):
    """A folded CNN: the conv layer's folded window datapath and the folded
    dense layers, one of them fed through a port Amaranth renamed (a
    permutation of its payload wire), and the argmax: all of it proven."""
    rng = np.random.default_rng(501)
    model = random_cnn(rng, (1, 4, 4), [(3, (2, 2), 1)], [6, 4], input_bits=2, frac_bits=4, prune=0.2)
    rtl.generate(model, tmp_path / "rtl", folding=[(1, 2), (2, 3), (2, 3)])
    results = check_rtl(model, tmp_path / "rtl")
    assert [(r["layer"], r["result"]) for r in results[:3]] == [("conv0", "proven"), ("fc0", "proven"),
                                                                ("fc1", "proven")]
    assert all(r["method"] == "symbolic-sequential" for r in results[:3])
    assert results[3]["method"] == "sat-sequential"
    assert summarize(results)["complete"]


def test_a_wrong_latency_is_not_proven(tmp_path):
    """Read one clock early, a pipelined datapath's output is another
    inference's (or the reset value): never a pass."""
    model = random_model(np.random.default_rng(7), [5, 4, 3], input_bits=2, frac_bits=3)
    man = rtl.generate(model, tmp_path / "rtl", pipeline=1)
    entry = man["layers"][0]
    assert entry["datapath_latency"] > 0
    for latency in (entry["datapath_latency"] - 1, entry["datapath_latency"] + 1):
        res = prove_clocked(model.layers[0], tmp_path / "rtl", entry["datapath_module"], man["score_width"],
                            latency=latency)
        assert res["result"] in ("counterexample", "unproven"), (latency, res)
    ok = prove_clocked(model.layers[0], tmp_path / "rtl", entry["datapath_module"], man["score_width"],
                       latency=entry["datapath_latency"])
    assert ok["result"] == "proven", ok


def test_the_concrete_simulation_follows_the_rom(tmp_path):
    """The machine on constants: a folded layer's ROM words are read at the
    addresses its counter gives, so from reset the first output equals the
    artifact on random inputs (the same check a counterexample gets)."""
    model = random_model(np.random.default_rng(8), [6, 5, 3], input_bits=2, frac_bits=3)
    man = rtl.generate(model, tmp_path / "rtl", folding=[(1, 3), (3, 5)])
    mod = _netlist_json(tmp_path / "rtl", ["hwgen_top.v"], man["layers"][0]["module"], tmp_path / "rtl" / "equiv")
    machine = Machine(mod, "fc0")
    assert machine.init_mems, "the folded layer's ROMs were not read"
    rng = np.random.default_rng(0)
    port = _Port(machine, 12, 5, 0)
    for _ in range(5):
        x = rng.integers(0, 4, size=6)
        bits = [("c", int((x[j] >> b) & 1)) for j in range(6) for b in range(2)]
        outs, _ = port.run(port.after_reset(), [bits], 1, _Schedule(), _zeros, 2000)
        got = [outs[0][o][1] for o in range(5)]
        assert got == layer_outputs(model.layers[0], list(x))


def _argmax_text(path):
    text = path.read_text()
    start = text.index("module \\hwgen_top.argmax")
    return text, start, text.index("endmodule", start)


@pytest.mark.parametrize("arch", ["pipelined tree", "scan"])
def test_clocked_argmax_is_proven_and_its_mutants_are_not(tmp_path, arch):
    """A pipelined comparison tree (new scores every clock) and a scan over
    held scores, proven by bounded SAT from any state of their registers;
    the tree with its first comparison's operands swapped, and the scan
    that no longer restarts its running maximum at the first score (right
    from reset on positive scores, wrong after an earlier inference), are
    counterexamples."""
    model = random_model(np.random.default_rng(3), [6, 5, 4], input_bits=2, frac_bits=3)
    kw = {"pipeline": 1} if arch == "pipelined tree" else {"folding": [(1, 3), (2, 5)]}
    man = rtl.generate(model, tmp_path / "rtl", **kw)
    assert man["argmax_module"] is None and man["argmax_latency"] > 0
    res = check_argmax(tmp_path / "rtl")
    assert (res["result"], res["method"]) == ("proven", "sat-sequential"), res
    path = tmp_path / "rtl" / "hwgen_top.v"
    text, start, end = _argmax_text(path)
    body = text[start:end]
    if arch == "pipelined tree":
        m = re.search(r"\$signed\(([^()]+)\) - \$signed\(([^()]+)\)", body)
        assert m, "the tree's first comparison was not found"
        edited = body[:m.start()] + f"$signed({m.group(2)}) - $signed({m.group(1)})" + body[m.end():]
    else:
        assert "k < " in body, "the folded design's argmax is not a scan"
        m = re.search(r"assign (\\\$\d+) {2}= (\\\$\d+) {2}\| (\\\$\d+) \[(\d+)\];", body)
        assert m, "the scan's first-score term was not found"
        edited = body[:m.start()] + f"assign {m.group(1)}  = {m.group(3)} [{m.group(4)}];" + body[m.end():]
    path.write_text(text[:start] + edited + text[end:])
    bad = check_argmax(tmp_path / "rtl")
    assert bad["result"] == "counterexample", bad
    assert len(bad["counterexample"]) == 4
