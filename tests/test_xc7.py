"""The xc7 datapath family: LUT6_2 / CARRY4 bit heaps (hwgen.rtl.xc7).

The netlist is checked three ways: run in Python against the exact count
(every vector for small fan-ins), proven equal to the reference circuit by
Yosys's SAT with Yosys's own cell models, and simulated bit-exact in cocotb
(Verilator and Icarus, the same models) on the digits test images, RTL and
synthesized netlist.
"""
import itertools
import json
import re
import shutil

import numpy as np
import pytest

from hwgen import rtl
from hwgen.errors import HwgenError
from hwgen.rtl.xc7 import Heap

from conftest import has_icarus, hwgen, random_cnn, random_model


def inversion_patterns(n, rng):
    yield [False] * n
    yield [True] * n                      # no raw bit for the carry chain's DI / carry-in
    yield [j != 0 for j in range(n)]
    yield [bool(b) for b in rng.integers(0, 2, n)]


@pytest.mark.parametrize("n", range(1, 11))
def test_heap_is_exact_on_every_vector(n):
    rng = np.random.default_rng(n)
    x = np.array(list(itertools.product([0, 1], repeat=n)), dtype=bool)
    for inverted in inversion_patterns(n, rng):
        want = (x ^ np.array(inverted)).sum(axis=1)
        assert (Heap(inverted).evaluate(x) == want).all(), inverted
        for t in range(1, n + 1):
            assert (Heap(inverted, t).evaluate(x) == (want >= t)).all(), (inverted, t)


@pytest.mark.parametrize("n", [11, 16, 23, 31, 32, 33, 47, 64, 65, 100, 255, 256, 257])
def test_heap_is_exact_around_every_threshold(n):
    """Random vectors plus vectors whose count is T-1, T and T+1."""
    rng = np.random.default_rng(n)
    for inverted in inversion_patterns(n, rng):
        inv = np.array(inverted)
        x = rng.integers(0, 2, (300, n)).astype(bool)
        assert (Heap(inverted).evaluate(x) == (x ^ inv).sum(axis=1)).all(), inverted
        thresholds = range(1, n + 1) if n <= 33 else sorted({1, 2, n // 2, n - 1, n, *rng.integers(1, n, 5)})
        for t in thresholds:
            near = []
            for count in (t - 1, t, t + 1):
                if 0 <= count <= n:
                    for _ in range(8):
                        v = np.zeros(n, dtype=bool)
                        v[rng.permutation(n)[:count]] = True
                        near.append(v ^ inv)
            xs = np.vstack([x, *near])
            got = Heap(inverted, int(t)).evaluate(xs)
            assert (got == ((xs ^ inv).sum(axis=1) >= t)).all(), (inverted, t)


def test_heap_cost_per_bit():
    """The structure's point: about half a LUT6 per input bit (one LUT6_2 per
    ternary-adder column, two heap bits removed per LUT)."""
    rng = np.random.default_rng(0)
    for n, most in ((64, 0.62), (256, 0.54), (1024, 0.52)):
        heap = Heap([bool(b) for b in rng.integers(0, 2, n)], n // 2)
        assert heap.luts <= most * n, (n, heap.luts)
        assert heap.carry4s <= 0.31 * n


def test_heap_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least one term"):
        Heap([])
    with pytest.raises(ValueError, match="threshold 5 outside 1..4"):
        Heap([False] * 4, 5)


@pytest.mark.slow
def test_cell_models_equal_yosys_models(tmp_path):
    """hwgen's Verilator-friendly LUT6_2 / CARRY4 models (rtl_templates) are
    proven equal, for every input, to Yosys's xilinx cells_sim.v models:
    CARRY4 as is, LUT6_2 under 24 INIT values (random, and the ternary-adder
    columns hwgen emits)."""
    import subprocess
    from hwgen.paths import resource
    from hwgen.tools.synth import yosys_executable
    shutil.copyfile(resource("rtl_templates", "xc7_cells_sim.v"), tmp_path / "ours.v")
    rng = np.random.default_rng(0)
    heap = Heap([bool(b) for b in rng.integers(0, 2, 64)], 32)
    inits = sorted({c[1] for c in heap.cells if c[0] == "lut"})[:8]
    inits += [int(v) for v in rng.integers(0, 2 ** 63, 16, dtype=np.uint64)]
    for side in ("gold", "gate"):
        lines = [f"module {side}(input [5:0] i, input ci, input cy, input [3:0] di, input [3:0] s, "
                 f"output [{2 * len(inits) - 1}:0] l, output [3:0] co, output [3:0] o);",
                 f"  {side}_CARRY4 c(.CO(co), .O(o), .CI(ci), .CYINIT(cy), .DI(di), .S(s));"]
        lines += [f"  {side}_LUT6_2 #(.INIT(64'h{v:016x})) u{k} (.O6(l[{2 * k}]), .O5(l[{2 * k + 1}]), "
                  f".I0(i[0]), .I1(i[1]), .I2(i[2]), .I3(i[3]), .I4(i[4]), .I5(i[5]));"
                  for k, v in enumerate(inits)]
        (tmp_path / f"{side}.v").write_text("\n".join(lines) + "\nendmodule\n")
    (tmp_path / "check.ys").write_text("\n".join([
        "read_verilog ours.v", "rename CARRY4 gate_CARRY4", "rename LUT6_2 gate_LUT6_2",
        "read_verilog +/xilinx/cells_sim.v", "rename CARRY4 gold_CARRY4", "rename LUT6_2 gold_LUT6_2",
        "read_verilog gold.v gate.v", "hierarchy -check", "proc",
        "miter -equiv -flatten -make_outputs gold gate miter", "hierarchy -top miter", "flatten",
        "sat -verify -prove trigger 0 miter"]) + "\n")
    proc = subprocess.run([yosys_executable(), "-q", "-l", "check.log", "-s", "check.ys"], cwd=tmp_path,
                          capture_output=True, text=True)
    log = (tmp_path / "check.log").read_text()
    assert proc.returncode == 0 and "SUCCESS!" in log, log[-2000:]


def test_xc7_rtl_is_reproducible_and_records_its_family(tmp_path):
    model = random_model(np.random.default_rng(5), [12, 9, 4], input_bits=1, prune=0.2)
    a = rtl.generate(model, tmp_path / "a", family="xc7")
    b = rtl.generate(model, tmp_path / "b", family="xc7")
    assert (tmp_path / "a" / "hwgen_top.v").read_bytes() == (tmp_path / "b" / "hwgen_top.v").read_bytes()
    assert a["family"] == "xc7" and a["sim_sources"] == ["xc7_cells_sim.v"]
    assert (tmp_path / "a" / "xc7_cells_sim.v").is_file()
    text = (tmp_path / "a" / "hwgen_top.v").read_text()
    assert "LUT6_2" in text and "CARRY4" in text
    generic = rtl.generate(model, tmp_path / "g")
    assert generic["family"] == "generic" and generic["sim_sources"] == []
    assert "LUT6_2" not in (tmp_path / "g" / "hwgen_top.v").read_text()


@pytest.mark.slow
def test_xc7_layers_are_proven_with_the_cell_models(tmp_path):
    """Yosys SAT reads the LUT6_2 / CARRY4 models: the layers are proven, and
    one LUT's O6 half of INIT inverted is a counterexample."""
    from hwgen.tools.equiv import check_rtl
    model = random_model(np.random.default_rng(2), [8, 6, 4, 2], input_bits=1, frac_bits=4, prune=0.25)
    rtl.generate(model, tmp_path / "rtl", family="xc7")
    results = check_rtl(model, tmp_path / "rtl", timeout_s=240)
    assert [r["result"] for r in results] == ["proven"] * 4, results     # 3 layers and the argmax
    assert [r["method"] for r in results[:3]] == ["sat"] * 3   # LUT6_2 primitives: SAT, not symbolic
    src = tmp_path / "rtl" / "hwgen_top.v"
    text = src.read_text()
    # the first LUT: its O6 is a carry chain's S, so every sum bit above it changes
    m = re.search(r"\.INIT\(64'h([0-9a-f]{16})\)", text)
    init = int(m.group(1), 16) ^ (0xFFFFFFFF << 32)
    src.write_text(text[:m.start(1)] + f"{init:016x}" + text[m.end(1):])
    results = check_rtl(model, tmp_path / "rtl", timeout_s=240)
    assert "counterexample" in [r["result"] for r in results], results


@pytest.mark.slow
@pytest.mark.parametrize("seed,sizes,input_bits,frac_bits,datapath,prune", [
    (10, [4, 6, 5], 3, 8, "planes", 0.2),     # scales with many set bits: counted first, then shifted
    (11, [5, 8, 4], 2, 3, "direct", 0.2),
    (12, [8, 5, 3], 1, 1, "planes", 0.2),     # scales 1..2
    (13, [4, 7, 7, 4], 3, 5, "planes", 0.2),
    (14, [5, 6, 4], 3, 6, "planes", 0.0),     # full pixel planes: the shared input sum enters the heaps
])
def test_random_xc7_networks_are_proven(tmp_path, seed, sizes, input_bits, frac_bits, datapath, prune):
    """Whole neurons as weighted bit heaps (MAC and binary layers, thresholds
    both ways, scores with bias, shared pixel sums), proven for every input
    by Yosys SAT."""
    from hwgen.tools.equiv import check_rtl
    model = random_model(np.random.default_rng(seed), sizes, input_bits=input_bits, frac_bits=frac_bits,
                         prune=prune)
    rtl.generate(model, tmp_path / "rtl", family="xc7", datapaths=[datapath] * len(model.layers))
    assert "CARRY4" in (tmp_path / "rtl" / "hwgen_top.v").read_text()
    results = check_rtl(model, tmp_path / "rtl", timeout_s=240)
    assert [r["result"] for r in results] == ["proven"] * (len(model.layers) + 1), results


@pytest.mark.slow
def test_xc7_conv_window_datapath_is_proven(tmp_path):
    from hwgen.tools.equiv import check_rtl
    model = random_cnn(np.random.default_rng(12), (1, 5, 5), [(3, (3, 3), 1)], [4, 3], input_bits=2,
                       frac_bits=3, prune=0.2)
    rtl.generate(model, tmp_path / "rtl", family="xc7")
    results = check_rtl(model, tmp_path / "rtl", timeout_s=240)
    assert results[0]["result"] == "proven", results[0]


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["verilator", pytest.param("icarus", marks=pytest.mark.skipif(
    not has_icarus(), reason="Icarus Verilog (iverilog) not installed"))])
def test_xc7_rtl_bit_exact_on_every_test_image(digits_run, simulator, tmp_path):
    """`hwgen rtl --family xc7` then `hwgen sim`, as a user runs them: the
    primitives simulate with Yosys's models on all 360 digits test images."""
    artifact = digits_run["root"] / "model.hwgen"
    proc = hwgen("rtl", artifact, "-o", tmp_path / "rtl", "--family", "xc7", "--pipeline", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "rtl" / "rtl.json").read_text())["family"] == "xc7"
    proc = hwgen("sim", artifact, "--rtl", tmp_path / "rtl", "--simulator", simulator)
    assert proc.returncode == 0, proc.stderr
    assert f"{simulator}: 360 vectors, 0 mismatches" in proc.stdout


@pytest.mark.slow
def test_xc7_synthesis_and_its_netlist(digits_run, tmp_path):
    """`hwgen synth` defaults to xc7 for xc7 RTL and keeps the primitives; the
    gate netlist is bit-exact too; other targets and nextpnr refuse clearly."""
    artifact = digits_run["root"] / "model.hwgen"
    assert hwgen("rtl", artifact, "-o", tmp_path / "rtl", "--family", "xc7").returncode == 0
    proc = hwgen("synth", tmp_path / "rtl")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "rtl" / "synth" / "area.json").read_text())
    assert list(report) == ["xc7"]
    cells = report["xc7"]["cell_types"]
    n_luts = (tmp_path / "rtl" / "hwgen_top.v").read_text().count("LUT6_2 #(")
    assert cells.get("LUT6_2", 0) == n_luts > 0 and cells.get("CARRY4", 0) > 0
    for argv in (("synth", tmp_path / "rtl", "--target", "ice40"), ("timing", tmp_path / "rtl")):
        proc = hwgen(*argv)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert "instantiates xc7 primitives" in proc.stderr and "--family generic" in proc.stderr
    proc = hwgen("sim", artifact, "--rtl", tmp_path / "rtl", "--netlist", "xc7", "--limit", "120")
    assert proc.returncode == 0, proc.stderr
    assert "verilator: 120 vectors, 0 mismatches" in proc.stdout


def test_family_needs_a_matching_area_target(digits_run, tmp_path):
    proc = hwgen("rtl", digits_run["root"] / "model.hwgen", "-o", tmp_path / "rtl", "--family", "xc7",
                 "--datapath", "auto")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--area-target xc7" in proc.stderr


@pytest.mark.slow
def test_cnn_flow_on_xc7_primitives(tmp_path):
    """`hwgen flow --family xc7`: a small digits CNN whose conv windows and
    dense neurons are bit heaps, synthesized for xc7 (the default target
    then) and simulated bit-exact on all 360 test images."""
    proc = hwgen("flow", "--model", "cnn", "--conv", "c4,p", "--hidden", "8", "--epochs", "2",
                 "--family", "xc7", "--no-prove", "-o", tmp_path / "f")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "f" / "report.json").read_text())
    assert report["bitexact"] == {**report["bitexact"], "mismatches": 0, "vectors": 360}
    assert list(report["area"]) == ["xc7"] and report["rtl"]["family"] == "xc7"
    assert report["area_per_layer"]["xc7"]["conv0.datapath"]["lut6"] > 0
    assert "built from xc7 primitives" in (tmp_path / "f" / "report.md").read_text()


def test_flow_refuses_other_targets_for_xc7_before_training(tmp_path):
    proc = hwgen("flow", "--family", "xc7", "--target", "ice40", "-o", tmp_path / "out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "drop --target ice40" in proc.stderr and "training on" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_folded_xc7_lanes_bit_exact(digits_run, tmp_path):
    """Folded binary lanes count with xc7 popcount heaps; bit-exact on every test image."""
    artifact = digits_run["root"] / "model.hwgen"
    proc = hwgen("rtl", artifact, "-o", tmp_path / "rtl", "--family", "xc7", "--arch", "folded",
                 "--target-cycles", "16")
    assert proc.returncode == 0, proc.stderr
    assert "LUT6_2" in (tmp_path / "rtl" / "hwgen_top.v").read_text()
    proc = hwgen("sim", artifact, "--rtl", tmp_path / "rtl")
    assert proc.returncode == 0, proc.stderr
    assert "verilator: 360 vectors, 0 mismatches" in proc.stdout
