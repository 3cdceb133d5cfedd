"""Real Yosys (yowasp) synthesis of a small network, parsed into area reports."""
import numpy as np
import pytest

from hwgen import rtl
from hwgen.errors import HwgenError
from hwgen.synth import format_table, synthesize

from conftest import random_model

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
    from hwgen.sim import simulate
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
    from hwgen.sim import simulate
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
