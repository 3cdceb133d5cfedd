"""The public API: what `import hwgen` exposes, Design, Manifest, the target
registry and measure()."""
import json
import subprocess
import sys

import numpy as np
import pytest

import hwgen
from hwgen import rtl
from hwgen.core import artifact
from hwgen.tools import targets
from hwgen.core.design import FAMILIES, Design


def test_every_public_name_resolves_and_is_documented():
    """Every name in hwgen.__all__ exists, and docs/api.md mentions it."""
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    for name in hwgen.__all__:
        assert getattr(hwgen, name) is not None
        if name != "__version__":
            assert name in doc, f"{name} is not in docs/api.md"
    with pytest.raises(AttributeError):
        hwgen.no_such_name


def test_import_hwgen_loads_neither_torch_nor_amaranth():
    code = ("import sys, hwgen; print(sorted(m for m in ('torch', 'amaranth', 'cocotb') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_export_is_the_function_even_after_its_module_is_imported():
    import hwgen.training.exporter  # noqa: F401
    assert callable(hwgen.export) and hwgen.export.__name__ == "export"


def test_design_round_trips_and_keys_are_stable():
    d = Design(arch="folded", pipeline=1, datapaths={"fc1": "direct", "fc0": "planes"},
               folding={"fc0": [2, 16], "conv0": None}, target_cycles=32)
    assert Design.from_json(d.to_json()) == d
    assert Design.from_dict(json.loads(json.dumps(d.to_dict()))) == d
    assert d.key() == Design.from_json(d.to_json()).key() and len(d.key()) == 16
    assert d.key() != Design(arch="folded", pipeline=1, target_cycles=32).key()
    # mapping order does not matter
    e = Design(arch="folded", pipeline=1, datapaths={"fc0": "planes", "fc1": "direct"},
               folding={"conv0": None, "fc0": (2, 16)}, target_cycles=32)
    assert e == d and e.to_json() == d.to_json()
    assert Design().key() == Design.from_dict({}).key()


@pytest.mark.parametrize("kw,word", [
    ({"arch": "systolic"}, "arch"), ({"pipeline": -1}, "pipeline"), ({"pipeline": True}, "pipeline"),
    ({"family": "xc9"}, "family"), ({"datapaths": "luts"}, "datapaths"), ({"datapaths": {"fc0": "x"}}, "datapaths"),
    ({"folding": {"fc0": (2, 16)}}, "folded"), ({"arch": "folded", "folding": {"fc0": (0, 16)}}, "pe, simd"),
    ({"arch": "folded", "target_cycles": 1}, "target_cycles"), ({"target_cycles": 32}, "folded"),
])
def test_bad_designs_are_refused(kw, word):
    with pytest.raises(hwgen.HwgenError, match=word):
        Design(**kw)


def test_design_from_dict_refuses_unknown_settings():
    with pytest.raises(hwgen.HwgenError, match="no setting 'fold'"):
        Design.from_dict({"fold": {}})
    with pytest.raises(hwgen.HwgenError, match="not valid JSON"):
        Design.from_json("{")


def test_families_have_one_definition():
    from hwgen.rtl.arith import FAMILIES as RTL_FAMILIES
    assert RTL_FAMILIES is FAMILIES
    assert set(FAMILIES) == {f for t in targets.REGISTRY.values() for f in t.families}


def test_the_target_registry_feeds_synth_and_timing():
    from hwgen.tools import synth, timing
    assert set(synth.TARGETS) == set(targets.REGISTRY) == set(synth.AREA_METRIC)
    assert set(timing.DEVICES) == {"ice40", "ecp5"}
    assert synth.AREA_METRIC["xc7"] == "lut" and synth.CELL_MODELS["ice40"] == "ice40/cells_sim.v"
    with pytest.raises(hwgen.HwgenError, match="unknown synthesis target 'xc9'"):
        targets.get("xc9")
    with pytest.raises(hwgen.HwgenError, match="only the xc7 target maps them"):
        targets.check_family("xc7", "ice40", "rtl/")
    targets.check_family("xc7", "xc7", "rtl/")
    targets.check_family("generic", "asic", "rtl/")


def test_the_manifest_carries_the_design_that_regenerates_the_rtl(tmp_path):
    """generate_rtl records the resolved design; generating again from the
    manifest's design alone gives the same bytes."""
    from conftest import random_model
    model = random_model(np.random.default_rng(3), [16, 8, 8, 4])
    m = hwgen.generate_rtl(model, tmp_path / "a", Design(arch="folded", target_cycles=8, pipeline=1))
    assert m.design.arch == "folded" and set(m.design.folding) == {"fc0", "fc1", "fc2"}
    assert m.design.target_cycles is None and m.design.pipeline == 1
    again = hwgen.generate_rtl(model, tmp_path / "b", hwgen.Manifest.read(tmp_path / "a").design)
    assert (tmp_path / "a" / "hwgen_top.v").read_bytes() == (tmp_path / "b" / "hwgen_top.v").read_bytes()
    assert again.design == m.design and again.verilog_sha256 == m.verilog_sha256
    assert m.artifact_sha256 == __import__("hashlib").sha256(artifact.dumps(model)).hexdigest()
    # the same as the module-level generator with the equivalent loose arguments
    folding = [m.design.folding[l.name] for l in model.layers]
    data = rtl.generate(model, tmp_path / "c", pipeline=1, folding=folding)
    assert data["verilog_sha256"] == m.verilog_sha256


def test_a_design_naming_unknown_layers_is_refused(tmp_path):
    from conftest import random_model
    model = random_model(np.random.default_rng(3), [16, 8, 4])
    with pytest.raises(hwgen.HwgenError, match="fc7"):
        hwgen.generate_rtl(model, tmp_path, Design(arch="folded", folding={"fc7": (1, 1)}))
    with pytest.raises(hwgen.HwgenError, match="fc7"):
        hwgen.generate_rtl(model, tmp_path, Design(datapaths={"fc7": "direct"}))
    with pytest.raises(hwgen.HwgenError, match="dense layer fc0"):
        hwgen.generate_rtl(model, tmp_path, Design(arch="folded", folding={"fc0": None, "fc1": (1, 8)}))
    with pytest.raises(hwgen.HwgenError, match="hwgen.Design"):
        hwgen.generate_rtl(model, tmp_path, {"arch": "folded"})


def test_manifests_written_before_the_design_was_recorded_still_read(tmp_path):
    from conftest import random_model
    model = random_model(np.random.default_rng(4), [16, 8, 4])
    m = hwgen.generate_rtl(model, tmp_path, Design(arch="folded", target_cycles=8, datapaths="planes"))
    data = json.loads((tmp_path / "rtl.json").read_text())
    del data["design"]
    (tmp_path / "rtl.json").write_text(json.dumps(data))
    assert hwgen.Manifest.read(tmp_path).design == m.design


@pytest.mark.slow
def test_measure_is_what_synthesis_reports(tmp_path):
    """measure(): the same totals and per-layer areas as generating and
    synthesizing by hand."""
    from conftest import random_model
    from hwgen.explore.measure import measure
    from hwgen.tools.synth import layer_areas
    model = random_model(np.random.default_rng(5), [12, 8, 4])
    got = measure(model, Design(), "generic")
    hwgen.generate_rtl(model, tmp_path, Design())
    want = hwgen.synthesize(tmp_path, ["generic"])["generic"]
    assert got.area == want["total"]["cells"] and got.total == want["total"]
    assert got.per_layer == layer_areas(want["per_module"], ["fc0", "fc1"], "cells")
    assert got.manifest.latency == hwgen.Manifest.read(tmp_path).latency


@pytest.mark.slow
def test_simulate_reports_a_wrong_constant(tmp_path):
    """hwgen.simulate counts every disagreeing vector and is not ok."""
    from conftest import random_model
    model = random_model(np.random.default_rng(6), [8, 6, 4], input_bits=2)
    hwgen.generate_rtl(model, tmp_path, Design())
    x = np.random.default_rng(0).integers(0, 4, size=(64, 8))
    good = hwgen.simulate(model, tmp_path, x, labels=model.predict(x).argmax(1))
    assert good.ok and good.mismatches == 0 and good.accuracy == 1.0 and good.vectors == 64
    bad = artifact.loads(artifact.dumps(model))
    bad.layers[-1].bias = bad.layers[-1].bias + np.array([1, 0, 0, 0])
    res = hwgen.simulate(bad, tmp_path, x)
    assert not res.ok and res.mismatches == 64
    assert res.runs["verilator"]["mismatched"] == list(range(64))


def test_flow_config_round_trips_and_checks_itself():
    from hwgen.flowconfig import FlowConfig
    c = FlowConfig(train={"hidden": [8], "epochs": 3}, design=Design(arch="folded", target_cycles=16),
                   lut_budget=900, targets=["ice40"], datapath="auto")
    assert FlowConfig.from_json(c.to_json()) == c
    assert c.fold == {"target_cycles": 16, "overrides": {}, "lut_budget": 900}
    assert FlowConfig().targets == ("generic", "ice40") and FlowConfig().fold is None
    assert FlowConfig(design=Design(family="xc7")).targets == ("xc7",)
    for kw, word in [({"lut_budget": 10}, "arch 'folded'"), ({"targets": ["xc9"]}, "xc9"),
                     ({"simulator": "vcs"}, "simulator"), ({"datapath": "direct"}, "datapath"),
                     ({"frac_bits": 30}, "frac_bits"), ({"train": []}, "train")]:
        with pytest.raises(hwgen.HwgenError, match=word):
            FlowConfig(**kw)
    with pytest.raises(hwgen.HwgenError, match="no setting 'fold'"):
        FlowConfig.from_dict({"fold": 1})
