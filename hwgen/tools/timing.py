"""Place and route with nextpnr (iCE40, ECP5): Fmax and device utilization.

The network is synthesized inside ``rtl_templates/timing_wrapper.v``, an
out-of-context harness with four pins (a shift register fills the input
vector, the label valid bit and the parity of the scores leave through
registers), so the package's I/O count does not limit what fits and every
timed path is a real path of the network. yowasp tools read only relative
paths, so everything runs in ``RTLDIR/timing/<target>``.
"""
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from ..errors import HwgenError
from ..paths import find_tool, project_dir
from . import targets as _targets
from ..rtl import read_manifest
from .synth import yosys_executable

__all__ = ["DEVICES", "place_and_route", "format_table"]

#: target -> nextpnr executable, its device arguments, the device's name, the
#: default clock constraint (MHz) and the utilization entry counting logic cells
#: (from :mod:`hwgen.tools.targets`)
DEVICES = {name: t.pnr for name, t in _targets.REGISTRY.items() if t.pnr}


def _run(cmd, cwd, log_path, what, timeout=None):
    with open(log_path, "w") as logf:
        try:
            proc = subprocess.run(cmd, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HwgenError(f"{what} did not finish within {timeout:g} s and was stopped; a design that fills "
                             f"most of the device may never route: try another --seed, a smaller design or a "
                             f"longer --timeout (log: {log_path})") from None
    if proc.returncode != 0:
        lines = log_path.read_text(errors="replace").strip().splitlines()
        errors = [line for line in lines if "ERROR" in line] or lines[-2:]
        raise HwgenError(f"{what} failed (exit {proc.returncode}): {' | '.join(errors[:2]) or 'no output'} "
                         f"(log: {log_path})")


def _does_not_fit(log_text, device, arch="unrolled", target="ice40"):
    """nextpnr's placer error for a design larger than the device, as one
    clear sentence with what to try for an ``arch`` design on ``target``,
    or None."""
    m = re.search(r"Failed to expand region .* of (\d+) (\w+?)s?\b", log_text)
    if not m:
        return None
    tries = ["fewer lanes (hwgen rtl --target-cycles or --lut-budget)" if arch == "folded"
             else "--arch folded (hwgen rtl)"]
    tries += ["the ecp5 target"] if target == "ice40" else []
    return (f"the design does not fit on {device}: it needs {int(m.group(1)):,} {m.group(2)} cells, more "
            f"than the device has; try {', '.join(tries)} or a smaller network")


def place_and_route(rtl_dir, target="ice40", *, freq=None, seed=1, log=None, timeout=None):
    """Synthesize ``rtl_dir``'s network in the timing harness and place and
    route it on ``target``'s device; ``timeout``: seconds nextpnr may take
    (None: no limit; nextpnr's router can go on for good on a nearly full
    device).

    Returns ``{"target", "device", "fmax_mhz", "constraint_mhz", "met",
    "logic_cells", "logic_available", "utilization", "seed", "seconds"}``.
    """
    if target not in DEVICES:
        raise HwgenError(f"unknown timing target {target!r}; choose one of {', '.join(DEVICES)}")
    dev = DEVICES[target]
    freq = float(freq or dev["freq"])
    if freq <= 0:
        raise HwgenError(f"the clock constraint must be positive, not {freq} MHz")
    if timeout is not None and timeout <= 0:
        raise HwgenError(f"the timeout must be positive, not {timeout} s")
    rtl_dir = Path(rtl_dir).resolve()
    rtl = read_manifest(rtl_dir)
    _targets.check_family(rtl.get("family", "generic"), target, rtl_dir)
    if "target" in rtl:
        raise HwgenError(f"{rtl_dir} holds a synthesized netlist; point hwgen timing at the RTL directory")
    work = rtl_dir / "timing" / target
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project_dir("rtl_templates") / "timing_wrapper.v", work / "timing_wrapper.v")
    in_width = int(rtl.get("input_word_width", rtl["input_features"] * rtl["input_bits"]))
    out_width = rtl["scores_offset"] + rtl["n_classes"] * rtl["score_width"]
    script = (project_dir("rtl_templates") / dev["script"]).read_text().format(
        sources=" ".join([*(f"../../{s}" for s in rtl["sources"]), "timing_wrapper.v"]),
        in_width=in_width, out_width=out_width, netlist_json="netlist.json")
    (work / "synth.ys").write_text(script)
    t0 = time.perf_counter()
    if log:
        log(f"  yosys: {target} synthesis in the timing harness ...")
    _run([yosys_executable(), "-q", "-s", "synth.ys"], work, work / "synth.log", f"yosys {target} synthesis")
    if log:
        log(f"  {dev['tool']}: placing and routing on {dev['device']} at {freq:g} MHz (seed {seed}) ...")
    (work / "report.json").unlink(missing_ok=True)
    try:
        _run([find_tool(dev["tool"], "timing"), *dev["args"], "--json", "netlist.json", "--freq", f"{freq:g}",
              "--seed", str(seed), "--timing-allow-fail", "--report", "report.json", "-q"],
             work, work / "nextpnr.log", f"{dev['tool']} on {dev['device']}", timeout)
    except HwgenError:
        too_big = _does_not_fit((work / "nextpnr.log").read_text(errors="replace"), dev["device"],
                                rtl.get("arch", "unrolled"), target)
        if too_big:
            raise HwgenError(f"{too_big} (log: {work / 'nextpnr.log'})") from None
        raise
    try:
        report = json.loads((work / "report.json").read_text())
        fmax = min(clock["achieved"] for clock in report["fmax"].values())
    except (OSError, ValueError, KeyError) as exc:
        raise HwgenError(f"{dev['tool']} wrote no usable report ({exc}); see {work / 'nextpnr.log'}") from None
    util = {k: v for k, v in sorted(report["utilization"].items()) if v["used"]}
    logic = report["utilization"].get(dev["logic"], {"used": 0, "available": 0})
    result = {"target": target, "device": dev["device"], "fmax_mhz": round(fmax, 2), "constraint_mhz": freq,
              "met": fmax >= freq, "logic_cells": logic["used"], "logic_available": logic["available"],
              "utilization": util, "seed": seed, "seconds": round(time.perf_counter() - t0, 2)}
    if log:
        log(f"  {target}: Fmax {fmax:.1f} MHz ({'meets' if fmax >= freq else 'misses'} {freq:g} MHz), "
            f"{logic['used']}/{logic['available']} logic cells")
    return result


def format_table(results):
    rows = [("target", "device", "Fmax MHz", "constraint", "logic cells")]
    rows += [(r["target"], r["device"], f"{r['fmax_mhz']:.1f}", f"{r['constraint_mhz']:g} "
              f"({'met' if r['met'] else 'missed'})", f"{r['logic_cells']}/{r['logic_available']}")
             for r in results]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
