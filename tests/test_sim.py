"""cocotb bit-exact simulation of the digits network on real simulators."""
import json
import re
import shutil
from pathlib import Path

import pytest

from hwgen.errors import HwgenError
from hwgen.tools.sim import _verilator_can_write_fst, simulate

from conftest import has_icarus

pytestmark = pytest.mark.slow

SIMULATORS = ["verilator", pytest.param("icarus", marks=pytest.mark.skipif(
    not has_icarus(), reason="Icarus Verilog (iverilog) not installed"))]


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_every_test_image_bit_exact(digits_run, simulator, tmp_path):
    x = digits_run["data"].x_test
    res = simulate(digits_run["model"], digits_run["rtl"], x, simulator=simulator,
                   work_dir=tmp_path, backpressure=0.3 if simulator == "icarus" else 0.0)
    assert res["vectors"] == len(x) == 360
    assert res["mismatches"] == 0, res["first_mismatches"]


def test_pipelined_rtl_bit_exact_under_backpressure(digits_run, tmp_path):
    """--pipeline 2: registers inside the layers, stalled by the sink, still
    give every test image bit-exact, in order."""
    from hwgen import rtl
    manifest = rtl.generate(digits_run["model"], tmp_path / "rtl", pipeline=2)
    assert manifest["latency"] > len(manifest["layers"]) + 1
    x = digits_run["data"].x_test
    res = simulate(digits_run["model"], tmp_path / "rtl", x, simulator="verilator", work_dir=tmp_path / "sim",
                   backpressure=0.3)
    assert res["vectors"] == len(x) and res["mismatches"] == 0, res["first_mismatches"]


def tamper(src_dir, dst_dir, layer=-1):
    """Copy the RTL and flip one weight bit of a binary-input layer (default:
    the output layer): the XNOR literal of weight (0, 0) (``~ x[0]`` <-> ``x[0]``)."""
    shutil.copytree(src_dir, dst_dir)
    path = dst_dir / "hwgen_top.v"
    text = path.read_text()
    module = json.loads((dst_dir / "rtl.json").read_text())["layers"][layer]["module"]
    start = text.index(f"module \\{module} ")
    end = text.index("endmodule", start)
    body = text[start:end]
    m = re.search(r"= (~ )?x\[0\];", body)
    assert m, f"weight literal of x[0] not found in {module}"
    flipped = "= x[0];" if m.group(1) else "= ~ x[0];"
    body = body[:m.start()] + flipped + body[m.end():]
    path.write_text(text[:start] + body + text[end:])


def test_flipped_weight_bit_is_caught(digits_run, tmp_path):
    tamper(digits_run["rtl"], tmp_path / "rtl")
    x = digits_run["data"].x_test
    res = simulate(digits_run["model"], tmp_path / "rtl", x, simulator="verilator", work_dir=tmp_path / "w")
    assert res["vectors"] == len(x)
    # weight (0, 0) feeds class 0's score for every image: each one must differ
    assert res["mismatches"] == len(x)
    assert res["first_mismatches"][0]["got_scores"][0] != res["first_mismatches"][0]["expected_scores"][0]
    # the diagnosis run names the image, the output layer and class 0's neuron, and leaves a waveform
    diag = res["diagnosis"]
    assert diag["vector"] == 0 and diag["layer"] == digits_run["model"].layers[-1].name
    assert diag["neuron"] == 0 and diag["expected"] != diag["got"]
    # FST needs Icarus or Verilator built with lz4 headers; without either it is a VCD
    fmt = ".fst" if has_icarus() or _verilator_can_write_fst() else ".vcd"
    assert diag["waveform"].endswith(fmt) and Path(diag["waveform"]).stat().st_size > 0


def test_missing_rtl_manifest(digits_run, tmp_path):
    with pytest.raises(HwgenError, match="rtl.json is missing"):
        simulate(digits_run["model"], tmp_path, digits_run["data"].x_test[:2])


def test_missing_simulator_named(digits_run, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(HwgenError, match="apt-get install iverilog"):
        simulate(digits_run["model"], digits_run["rtl"], digits_run["data"].x_test[:2], simulator="icarus")


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_folded_rtl_bit_exact_under_backpressure(digits_run, simulator, tmp_path):
    """The folded architecture (PE x SIMD, weights in ROM per bit-plane, each
    layer on its own inference, lanes pipelined every adder level): every
    test image bit-exact, in order, with the sink refusing 30 % of the
    cycles."""
    from hwgen import rtl
    from hwgen.rtl.folded import choose_folding
    model = digits_run["model"]
    manifest = rtl.generate(model, tmp_path / "rtl", folding=choose_folding(model, 24), pipeline=1)
    assert manifest["arch"] == "folded" and 1 < manifest["interval"] <= 24
    x = digits_run["data"].x_test
    res = simulate(model, tmp_path / "rtl", x, simulator=simulator, work_dir=tmp_path / "sim", backpressure=0.3)
    assert res["vectors"] == len(x) and res["mismatches"] == 0, res["first_mismatches"]
    assert res["cycles"] >= manifest["interval"] * len(x)
    # the testbench reported its progress while the outputs came out
    progress = json.loads((tmp_path / "sim" / simulator / "progress.json").read_text())
    streamed = len(x) + res["boundary"]["network"]["vectors"]       # the boundary vectors follow the images
    assert 0 <= progress["received"] <= streamed and 0 < progress["cycles"] <= res["cycles"]


def test_progress_lines_count_vectors_and_estimate_the_rest(tmp_path):
    """The progress thread turns the testbench's counts into log lines."""
    import threading
    from hwgen.tools.sim import _Progress
    path, lines, seen = tmp_path / "progress.json", [], threading.Event()

    def log(line):
        lines.append(line)
        seen.set()

    with _Progress(path, 1000, log, every=0.0, poll=0.01):
        path.write_text(json.dumps({"received": 250, "cycles": 64000, "wall_s": 50.0}))
        assert seen.wait(10)
    assert lines[0] == "    250/1000 vectors (5.0/s, about 2 min 30 s to go)"
    with _Progress(path, 10, None):                     # no log: no thread, and a stale file is removed
        assert not path.exists()


@pytest.mark.parametrize("arch", ["unrolled", "folded"])
def test_hidden_layer_fault_is_located(digits_run, arch, tmp_path):
    """RTL generated from a model whose hidden neuron 0 has its first bit-plane
    inverted, checked against the true model: the diagnosis must name that
    layer and neuron (the only source of difference), not the scores it spoils."""
    import copy

    from hwgen import rtl
    from hwgen.rtl.folded import choose_folding

    model = digits_run["model"]
    faulty = copy.deepcopy(model)
    hidden = faulty.layers[1]
    hidden.planes[0, 0] = (1 - hidden.planes[0, 0]) * (hidden.nbits[0] >= 1)
    rtl.generate(faulty, tmp_path / "rtl", folding=choose_folding(faulty, 24) if arch == "folded" else None)
    x = digits_run["data"].x_test
    res = simulate(model, tmp_path / "rtl", x, simulator="verilator", work_dir=tmp_path / "w")
    assert 0 < res["mismatches"] < len(x)
    diag = res["diagnosis"]
    assert diag["vector"] == res["first_mismatches"][0]["vector"]
    assert (diag["layer"], diag["neuron"]) == (hidden.name, 0)
    assert diag["waveform"] and Path(diag["waveform"]).is_file()


def test_sim_netlist_option_checks_the_gate_netlist(digits_run, tmp_path):
    """`hwgen sim --netlist generic` as a user runs it: synthesize, then prove the
    gate netlist bit-exact on real test images."""
    from conftest import hwgen
    rtl_dir = tmp_path / "rtl"
    shutil.copytree(digits_run["rtl"], rtl_dir)
    proc = hwgen("sim", digits_run["root"] / "model.hwgen", "--rtl", rtl_dir, "--netlist", "generic",
                 "--limit", "120")
    assert proc.returncode == 0, proc.stderr
    assert "synthesized generic netlist" in proc.stderr
    assert "verilator: 120 vectors, 0 mismatches" in proc.stdout
