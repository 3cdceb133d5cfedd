"""The hwgen command line as users run it (real subprocesses)."""
import json
import re
import sys
from pathlib import Path

import pytest

from conftest import assert_clean_error, hwgen


@pytest.mark.parametrize("verb", ["train", "export", "rtl", "synth", "timing", "sim", "equiv", "flow", "sweep"])
def test_every_verb_has_help(verb):
    proc = hwgen(verb, "--help")
    assert proc.returncode == 0 and "usage: hwgen" in proc.stdout


def test_train_export_rtl_are_deterministic(tmp_path):
    for run in ("a", "b"):
        d = tmp_path / run
        assert hwgen("train", "--bits", "1:0.7,2:0.2,3:0.1", "--hidden", "6", "--epochs", "3",
                     "-o", d / "m.pt").returncode == 0
        assert hwgen("export", d / "m.pt", "-o", d / "m.hwgen").returncode == 0
        assert hwgen("rtl", d / "m.hwgen", "-o", d / "rtl", "--pipeline", "2").returncode == 0
    for name in ("m.hwgen", "rtl/hwgen_top.v", "rtl/hwgen_top.il", "rtl/rtl.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    manifest = json.loads((tmp_path / "a" / "rtl" / "rtl.json").read_text())
    assert manifest["pipeline"] == 2
    assert manifest["latency"] == (sum(layer["latency"] + 1 for layer in manifest["layers"])
                                   + manifest["argmax_latency"] + 1)
    assert manifest["layers"][0]["latency"] > 0


def test_folded_rtl_from_the_command_line(tmp_path):
    """train --mask-group, then rtl --arch folded: per-layer folding in
    rtl.json (a --fold override, the rest from --target-cycles), byte-identical
    on a second run, and the folding errors are one clear line."""
    assert hwgen("train", "--hidden", "8", "--epochs", "2", "--mask-group", "1x8",
                 "-o", tmp_path / "m.pt").returncode == 0
    assert hwgen("export", tmp_path / "m.pt", "-o", tmp_path / "m.hwgen").returncode == 0
    for run in ("a", "b"):
        proc = hwgen("rtl", tmp_path / "m.hwgen", "-o", tmp_path / run, "--arch", "folded",
                     "--fold", "fc0=1x8", "--target-cycles", "20")
        assert proc.returncode == 0, proc.stderr
    assert "fc0: PE 1 x SIMD 8" in proc.stderr and "note: fc0" not in proc.stderr
    # a tile across two 1 x 8 blocks mixes bit counts: the output says how to train for it
    proc = hwgen("rtl", tmp_path / "m.hwgen", "-o", tmp_path / "wide", "--arch", "folded", "--fold", "fc0=1x16")
    wide = json.loads((tmp_path / "wide" / "rtl.json").read_text())["layers"][0]
    assert wide["mask_in_rom"] and wide["cycles"] > wide["min_cycles"]
    assert "note: fc0" in proc.stderr and "e.g. 1x16 for fc0" in proc.stderr
    for name in ("hwgen_top.v", "hwgen_top.il", "rtl.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    manifest = json.loads((tmp_path / "a" / "rtl.json").read_text())
    fc0, fc1 = manifest["layers"]
    assert manifest["arch"] == "folded" and manifest["pipeline"] == 0
    assert (fc0["pe"], fc0["simd"]) == (1, 8) and fc0["cycles"] == fc0["min_cycles"] == fc0["weight_bits"] // 8
    assert not fc0["mask_in_rom"] and fc0["weight_memory_bits"] == fc0["weight_bits"]
    assert fc1["interval"] <= 20 and manifest["interval"] == max(fc0["interval"], fc1["interval"])
    # one bit count per neuron: the folds take fc1's neurons in bit-count order, at the minimum
    assert hwgen("train", "--hidden", "8", "--epochs", "2", "--mask-group", "neuron",
                 "-o", tmp_path / "n.pt").returncode == 0
    assert hwgen("export", tmp_path / "n.pt", "-o", tmp_path / "n.hwgen").returncode == 0
    proc = hwgen("rtl", tmp_path / "n.hwgen", "-o", tmp_path / "n", "--arch", "folded",
                 "--fold", "fc0=2x64", "--fold", "fc1=2x8")
    fc1 = json.loads((tmp_path / "n" / "rtl.json").read_text())["layers"][1]
    assert fc1["neurons_reordered"] and fc1["cycles"] == fc1["min_cycles"] and not fc1["mask_in_rom"]
    assert re.search(r"fc1: PE 2 x SIMD 8, .*, neurons folded in bit-count order", proc.stderr)
    proc = hwgen("rtl", tmp_path / "m.hwgen", "-o", tmp_path / "budget", "--arch", "folded", "--lut-budget",
                 "8000", "--area-target", "generic")
    assert proc.returncode == 0, proc.stderr
    choice = json.loads((tmp_path / "budget" / "rtl.json").read_text())["folding_choice"]
    assert choice["lut_budget"] == 8000 and choice["measured"] <= 8000 and choice["metric"] == "cells"
    assert "folding for a budget of 8000 cells" in proc.stderr
    for args, needle in [(["--fold", "fc0=1x8"], "--fold applies to --arch folded"),
                         (["--lut-budget", "100"], "--lut-budget applies to --arch folded"),
                         (["--arch", "folded", "--lut-budget", "10", "--area-target", "generic"],
                          "already takes"),
                         (["--arch", "folded", "--fold", "fc0=3x8"], "PE = 3 must divide its 8 neurons"),
                         (["--arch", "folded", "--fold", "fc7=1x1"], "--fold names fc7")]:
        assert_clean_error(hwgen("rtl", tmp_path / "m.hwgen", "-o", tmp_path / "c", *args), needle)


def test_cnn_flow_from_the_command_line(tmp_path):
    """`hwgen flow --model cnn`: a small digits CNN trained, exported, turned
    into pixel-stream conv hardware with folded dense layers, synthesized and
    simulated bit-exact on all test images; the report lists the conv layers."""
    proc = hwgen("flow", "--model", "cnn", "--conv", "c4,p", "--hidden", "8", "--epochs", "2",
                 "--arch", "folded", "--target", "generic", "--no-timing", "--no-prove", "-o", tmp_path / "f")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "f" / "report.json").read_text())
    assert report["bitexact"] == {**report["bitexact"], "mismatches": 0, "vectors": 360}
    conv = report["rtl"]["layers"][0]
    assert conv["op"] == "conv2d" and conv["out_shape"] == [4, 3, 3] and conv["interval"] == 64
    assert report["rtl"]["interval_cycles"] >= 64
    assert "conv0" in report["area_per_layer"]["generic"]
    md = (tmp_path / "f" / "report.md").read_text()
    assert "| conv0 | 1 x 8 x 8 | 3x3 | 2 | 4 x 3 x 3 | 64 |" in md
    # the folding table tells what rtl.json says
    folded = [e for e in report["rtl"]["layers"] if "pe" in e]
    for e in folded:
        assert f"| {e['name']} | {e['pe']} | {e['simd']} | {e['weight_bits']} | {e['cycles']} |" in md
    assert ("(with masks)" in md) == any(e["mask_in_rom"] for e in folded)
    assert ("(with row enables)" in md) == any(e["row_enables_in_rom"] for e in folded)
    assert ("Folded in bit-count order" in md) == any(e["neurons_reordered"] for e in folded)


@pytest.mark.parametrize("args,needle", [
    (["train", "--bits", "4", "-o", "x.pt"], "out of range"),
    (["train", "--bits", "1:0.5,2:0.2", "-o", "x.pt"], "sum to"),
    (["train", "--dataset", "cifar", "-o", "x.pt"], "unknown dataset 'cifar'"),
    (["export", "missing.pt", "-o", "x.hwgen"], "does not exist"),
    (["rtl", "missing.hwgen", "-o", "rtl"], "does not exist"),
    (["synth", "."], "rtl.json is missing"),
    (["train", "--mask-group", "3x8", "-o", "x.pt"], "mask group 3x8 does not tile a 16 x 64"),
])
def test_bad_input_gives_one_clear_error(tmp_path, args, needle):
    assert_clean_error(hwgen(*args, cwd=tmp_path), needle)


@pytest.mark.parametrize("args,needle", [
    (["train", "--mask-group", "8", "-o", "x.pt"], "argument --mask-group: expected ROWSxCOLS (e.g. 1x8), 'neuron' or 'input'"),
    (["rtl", "x.hwgen", "-o", "rtl", "--fold", "fc0=2"], "argument --fold: expected LAYER=PExSIMD"),
    (["rtl", "x.hwgen", "-o", "rtl", "--pipeline", "-1"], "argument --pipeline: expected an integer >= 0"),
    (["rtl", "x.hwgen", "-o", "rtl", "--lut-budget", "0"], "argument --lut-budget: expected an integer >= 1"),
])
def test_malformed_options_are_usage_errors(tmp_path, args, needle):
    proc = hwgen(*args, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"hwgen {args[0]}: error: {needle}")


def test_corrupt_artifact_and_checkpoint(tmp_path):
    (tmp_path / "bad.hwgen").write_bytes(b"PK\x03\x04 definitely not a zip")
    assert_clean_error(hwgen("rtl", tmp_path / "bad.hwgen", "-o", tmp_path / "rtl"), "invalid artifact")
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 100)
    assert_clean_error(hwgen("export", tmp_path / "bad.pt", "-o", tmp_path / "x.hwgen"), "cannot load checkpoint")


def without_timings(report):
    from hwgen.report import TIMINGS
    report = json.loads(json.dumps(report))
    for key in TIMINGS:
        *parents, leaf = key.split(".")
        node = report
        for p in parents:
            node = node.get(p, {})
        node.pop(leaf, None)      # (timing.seconds: not where the flow ran no place and route)
    return report


@pytest.mark.slow
def test_sim_catches_tampered_rtl_and_flow_reports(tmp_path):
    """A tiny network through `hwgen flow` twice, the second time from the
    config the first report.json embeds (identical outputs but for
    timings), then `hwgen sim` on a tampered copy."""
    from hwgen.report import TIMINGS_HEADING
    # no synthesis cache: Yosys itself must be deterministic
    proc = hwgen("flow", "--hidden", "6", "--epochs", "20", "--target", "generic", "-o", tmp_path / "again",
                 env={"HWGEN_CACHE": "off"})
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "again" / "report.json").read_text())["config"]
    assert config["train"]["hidden"] == [6] and config["targets"] == ["generic"]
    (tmp_path / "flow.json").write_text(json.dumps(config))
    proc = hwgen("flow", "--config", tmp_path / "flow.json", "-o", tmp_path / "flow", env={"HWGEN_CACHE": "off"})
    assert proc.returncode == 0, proc.stderr
    out, again = tmp_path / "flow", tmp_path / "again"
    for name in ("model.hwgen", "rtl/hwgen_top.v", "rtl/hwgen_top.il", "rtl/rtl.json",
                 "rtl/synth/generic_netlist/hwgen_top.v"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    report = json.loads((out / "report.json").read_text())
    assert without_timings(report) == without_timings(json.loads((again / "report.json").read_text()))
    md = [(d / "report.md").read_text() for d in (out, again)]
    assert md[0].split(f"## {TIMINGS_HEADING}")[0] == md[1].split(f"## {TIMINGS_HEADING}")[0]
    for key in ("dataset", "avg_weight_bits", "bit_histogram", "accuracy", "bitexact", "area",
                "artifacts", "timing_s"):
        assert key in report
    assert report["bitexact"] == {**report["bitexact"], "mismatches": 0, "vectors": 360}
    assert report["accuracy"]["rtl"] == report["accuracy"]["integer"]
    assert report["area"]["generic"]["cells"] > 0
    assert sum(report["bit_histogram"].values()) == 64 * 6 + 6 * 10
    assert (out / report["artifacts"]["verilog"]).is_file() and (out / "report.md").is_file()
    # the default flow also places and routes (the smallest device it fits: the HX8K) and proves
    # every layer (fc0's 64 inputs symbolically) and the argmax
    timing = report["timing"]
    assert timing["target"] == "ice40" and timing["tried"] == [] and 1 < timing["fmax_mhz"] < 1000
    assert 0 < timing["logic_cells"] <= timing["logic_available"] == 7680
    # the flow places and routes at fast effort, beside the simulation and the proof
    assert timing["effort"] == "fast" and report["config"]["timing_effort"] == "fast"
    assert "fast effort" in md[0] and "timing | [timing_ice40]" in proc.stdout + proc.stderr
    proof = report["proof"]
    assert [r["result"] for r in proof["layers"]] == ["proven"] * 3 and proof["result"] == "proven"
    assert [r["layer"] for r in proof["layers"]] == ["fc0", "fc1", "argmax"] and proof["not_proven"] == []
    assert proof["proven"] == 3 and proof["skipped"] == 0 and proof["counterexample"] == 0
    assert f"Fmax **{timing['fmax_mhz']:.1f} MHz**" in md[0] and "| fc0 | proven | symbolic |" in md[0]
    assert report["versions"]["hwgen"] and report["data"]["name"] == "digits"

    sys.path.insert(0, str(Path(__file__).parent))
    from test_sim import tamper
    tamper(out / "rtl", tmp_path / "bad_rtl")
    # edited Verilog is refused before it is simulated, then verified on purpose
    proc = hwgen("sim", out / "model.hwgen", "--rtl", tmp_path / "bad_rtl")
    assert_clean_error(proc, "is not the Verilog rtl.json records", code=2)
    proc = hwgen("sim", out / "model.hwgen", "--rtl", tmp_path / "bad_rtl", "--allow-edited")
    assert_clean_error(proc, "does not match the golden reference", code=1)
    assert "360 vectors, 360 mismatches" in proc.stdout


def test_flow_config_refuses_other_flags_and_bad_files(tmp_path):
    (tmp_path / "flow.json").write_text('{"train": {"epochs": 1}}')
    proc = hwgen("flow", "--config", tmp_path / "flow.json", "--bits", "2", "-o", tmp_path / "o")
    assert_clean_error(proc, "--config gives every setting of the flow; drop --bits")
    (tmp_path / "bad.json").write_text('{"train": {}, "pipe": 1}')
    proc = hwgen("flow", "--config", tmp_path / "bad.json", "-o", tmp_path / "o")
    assert_clean_error(proc, "no setting 'pipe'")
    (tmp_path / "bad2.json").write_text('{"train": {"epoch": 3}}')
    proc = hwgen("flow", "--config", tmp_path / "bad2.json", "-o", tmp_path / "o")
    assert_clean_error(proc, "no option 'epoch'")
    proc = hwgen("flow", "--config", tmp_path / "missing.json", "-o", tmp_path / "o")
    assert_clean_error(proc, "cannot read the flow config")
