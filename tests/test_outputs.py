"""Outputs that cannot be half-written, directories one command at a time,
caches and sweep records that are checked before they are believed, and a
command line that answers ordinary mistakes in one line (issue 30)."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from hwgen import rtl
from hwgen.core import artifact
from hwgen.core.fileio import LOCK_NAME, locked, write_text
from hwgen.errors import HwgenError

from conftest import assert_clean_error, hwgen, random_model

FLOW = ("flow", "--hidden", "6", "--epochs", "2", "--target", "generic", "--no-timing", "--no-prove")


def test_write_text_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "report.json"
    write_text(path, "old\n")
    write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_held_lock_refuses_another_process_and_names_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom hwgen.core.fileio import locked\n"
        "with locked(sys.argv[1], 'hwgen flow -o demo'):\n    print('held', flush=True)\n    time.sleep(60)\n"),
        str(tmp_path / "out")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(HwgenError, match=r"in use by another hwgen command \('hwgen flow -o demo', "
                                             rf"pid {holder.pid}, since "):
            with locked(tmp_path / "out"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with locked(tmp_path / "out"):     # the kernel dropped the dead holder's lock
        with locked(tmp_path / "out"):     # and one process may nest it
            pass


def test_the_python_api_locks_its_directories_too(tmp_path):
    """hwgen.generate_rtl, synthesize, simulate and prove refuse a directory
    that a command of another process holds, naming it; run_flow locks its
    output directory for what it calls."""
    import hwgen
    model = random_model(np.random.default_rng(0), [6, 5, 3], input_bits=2)
    hwgen.generate_rtl(model, tmp_path / "rtl")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom hwgen.core.fileio import locked\n"
        "with locked(sys.argv[1], 'hwgen sim m.hwgen --rtl rtl'):\n    print('held', flush=True)\n"
        "    time.sleep(60)\n"), str(tmp_path / "rtl")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        x = np.zeros((2, 6), dtype=np.int64)
        for call in (lambda: hwgen.generate_rtl(model, tmp_path / "rtl"),
                     lambda: hwgen.synthesize(tmp_path / "rtl"),
                     lambda: hwgen.simulate(model, tmp_path / "rtl", x),
                     lambda: hwgen.prove(model, tmp_path / "rtl")):
            with pytest.raises(HwgenError, match=r"in use by another hwgen command \('hwgen sim m.hwgen"):
                call()
    finally:
        holder.kill()
        holder.wait()
    assert hwgen.prove(model, tmp_path / "rtl")[0]["result"] == "proven"   # free again


def test_two_flows_into_one_directory_one_runs_one_is_refused(tmp_path):
    first = subprocess.Popen([sys.executable, "-m", "hwgen.cli", *FLOW, "-o", str(tmp_path / "one")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "one" / LOCK_NAME
    deadline = time.time() + 120
    while time.time() < deadline and not (lock.is_file() and lock.stat().st_size):
        time.sleep(0.1)
    second = hwgen(*FLOW, "-o", tmp_path / "one")
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert_clean_error(second, "is in use by another hwgen command ('hwgen flow", code=2)
    assert json.loads((tmp_path / "one" / "report.json").read_text())["bitexact"]["mismatches"] == 0


def test_two_flows_into_two_directories_both_succeed(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-m", "hwgen.cli", *FLOW, "-o", str(tmp_path / name)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err
    for name in ("a", "b"):
        assert json.loads((tmp_path / name / "report.json").read_text())["bitexact"]["mismatches"] == 0


@pytest.fixture
def tiny_rtl(tmp_path):
    model = random_model(np.random.default_rng(1), [6, 5, 3], input_bits=2)
    artifact.save(model, tmp_path / "m.hwgen")
    rtl.generate(model, tmp_path / "rtl")
    return tmp_path


def _entry(cache):
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    return entry


@pytest.mark.parametrize("poison", ["halved counts", "empty netlist", "truncated", "no index"])
def test_a_poisoned_cache_entry_is_evicted_and_recomputed(tiny_rtl, monkeypatch, poison):
    """The counts in a cached stat.json halved, its netlist replaced by an
    empty module, a truncated entry, an entry of an older hwgen: each is
    evicted and synthesized again, never reported."""
    from hwgen.tools.synth import synthesize
    monkeypatch.setenv("HWGEN_CACHE", str(tiny_rtl / "cache"))
    first = synthesize(tiny_rtl / "rtl", "generic")
    assert not first["cached"]
    entry = _entry(tiny_rtl / "cache")
    stat = entry / "stat.json"
    if poison == "halved counts":
        data = json.loads(stat.read_text())
        for mod in data["modules"].values():
            mod["num_cells_by_type"] = {k: v // 2 for k, v in mod.get("num_cells_by_type", {}).items()}
        stat.write_text(json.dumps(data))
    elif poison == "empty netlist":
        (entry / "netlist.v").write_text("module hwgen_top(); endmodule\n")
    elif poison == "truncated":
        stat.write_bytes(stat.read_bytes()[:100])
    else:
        (entry / "sha256.json").unlink()
    lines = []
    again = synthesize(tiny_rtl / "rtl", "generic", log=lines.append)
    assert not again["cached"] and again["total"] == first["total"]
    assert any("failed its check" in line and "evicted" in line for line in lines), lines
    assert "module hwgen_top();" not in (tiny_rtl / "rtl" / "synth" / "generic_netlist" / "hwgen_top.v").read_text()
    assert synthesize(tiny_rtl / "rtl", "generic")["cached"]       # stored again, whole


def test_an_edited_sweep_run_is_left_out_and_redone(tmp_path):
    from hwgen.explore.sweep import _write_json, read_run
    path = tmp_path / "run.json"
    _write_json(path, {"key": "k", "int_acc": 0.5, "config": {"bits": "1.4"}})
    assert read_run(path)["int_acc"] == 0.5
    record = json.loads(path.read_text())
    record["int_acc"] = 0.99
    path.write_text(json.dumps(record))
    assert read_run(path) is None
    path.write_text('{"key": "k", "int_acc": 0.5}')      # a record from before the hash: read as is
    assert read_run(path)["int_acc"] == 0.5
    path.write_text('{"key": ')
    assert read_run(path) is None


def test_ordinary_mistakes_get_one_line(tiny_rtl, tmp_path):
    """`-o` naming a file or a path under a file, synth on a directory
    without the RTL: one error line, exit 2, no traceback."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert_clean_error(hwgen("rtl", tiny_rtl / "m.hwgen", "-o", a_file), "is a file, not a directory")
    assert_clean_error(hwgen("rtl", tiny_rtl / "m.hwgen", "-o", a_file / "sub"), "a_file")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(hwgen("synth", empty), "rtl.json is missing")
    (tiny_rtl / "rtl" / "hwgen_top.v").unlink()
    assert_clean_error(hwgen("synth", tiny_rtl / "rtl"), "hwgen_top.v")
    assert_clean_error(hwgen("sim", tiny_rtl / "m.hwgen", "--rtl", tmp_path / "nowhere"), "does not exist")
