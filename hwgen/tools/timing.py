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
import threading
import time
from pathlib import Path

from ..errors import HwgenError
from ..paths import find_tool, resource
from . import targets as _targets
from ..core.manifest import read_manifest
from .synth import yosys_executable

__all__ = ["DEVICES", "EFFORTS", "DoesNotFitError", "Stopped", "place_and_route", "synthesize_harness",
           "logic_needed", "fit_advice", "format_table"]

#: target -> nextpnr executable, its device arguments, the device's name, the
#: default clock constraint (MHz) and the utilization entry counting logic cells
#: (from :mod:`hwgen.tools.targets`)
DEVICES = {name: t.pnr for name, t in _targets.REGISTRY.items() if t.pnr}

#: effort -> nextpnr options. ``full``: nextpnr's defaults (HeAP analytic
#: placement, then timing-driven annealing and routing). ``fast``: the
#: electrostatic placer and no timing-driven placement or routing, about a
#: third of the time; on the unrolled digits demo (ECP5-25k) it reached 33.0 MHz
#: against ``full``'s 33.4 MHz (docs/results.md, bench/results/pnr_effort.json)
EFFORTS = {"full": (), "fast": ("--placer", "static", "--no-tmdriv")}


class Stopped(HwgenError):
    """Place and route was stopped from outside (``stop`` was set) before it finished."""


def _run(cmd, cwd, log_path, what, timeout=None, stop=None):
    """Run ``cmd`` in ``cwd`` with its output in ``log_path``; raise on a
    non-zero exit, after ``timeout`` seconds, or as soon as the
    :class:`threading.Event` ``stop`` is set (the process is killed)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    proc.wait(timeout=0.25)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if stop is not None and stop.is_set():
                    raise Stopped(f"{what} was stopped")
                if deadline is not None and time.monotonic() > deadline:
                    raise HwgenError(f"{what} did not finish within {timeout:g} s and was stopped; a design that "
                                     f"fills most of the device may never route: try another --seed, a smaller "
                                     f"design or a longer --timeout (log: {log_path})")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if proc.returncode != 0:
        lines = log_path.read_text(errors="replace").strip().splitlines()
        errors = [line for line in lines if "ERROR" in line] or lines[-2:]
        raise HwgenError(f"{what} failed (exit {proc.returncode}): {' | '.join(errors[:2]) or 'no output'} "
                         f"(log: {log_path})")


class DoesNotFitError(HwgenError):
    """The design needs more logic cells than the device has (found from
    the synthesized netlist, before nextpnr runs); ``needed`` and
    ``available`` count the device's logic cells."""

    def __init__(self, message, *, target, needed, available):
        super().__init__(message)
        self.target, self.needed, self.available = target, needed, available


def ice40_logic_cells(cells):
    """The ICESTORM_LC logic cells nextpnr-ice40 packs the netlist ``cells``
    (Yosys JSON cells of the top module) into, estimated as its packer
    works: one per SB_LUT4; an SB_CARRY in the cell of a LUT whose I1, I2
    are its I0, I1, else its own; a flip-flop in the cell of the LUT that
    drives its D, else its own; one more where a carry chain starts from a
    signal, and one where a chain's carry-out leaves it. Measured on the
    unrolled digits demo: 8,999 against nextpnr's 8,956."""
    def bits(cell, port):
        return tuple(cell["connections"].get(port, ()))
    luts = [c for c in cells if c["type"] == "SB_LUT4"]
    carries = [c for c in cells if c["type"] == "SB_CARRY"]
    ffs = [c for c in cells if c["type"].startswith("SB_DFF")]
    free = {}
    for lut in luts:
        key = (bits(lut, "I1"), bits(lut, "I2"))
        free[key] = free.get(key, 0) + 1
    unpaired = 0
    for carry in carries:
        key = (bits(carry, "I0"), bits(carry, "I1"))
        if free.get(key):
            free[key] -= 1
        else:
            unpaired += 1
    lut_outputs = {bits(lut, "O") for lut in luts}
    lone_ffs = sum(bits(ff, "D") not in lut_outputs for ff in ffs)
    carry_outs = {bits(c, "CO") for c in carries}
    carry_ins = {bits(c, "CI") for c in carries}
    signal_starts = sum(bits(c, "CI") not in carry_outs and any(isinstance(b, int) for b in bits(c, "CI"))
                        for c in carries)
    read = {bits(c, port) for c in cells for port in c["connections"]
            if port not in ("O", "CO", "Q") and not (c["type"] == "SB_CARRY" and port == "CI")}
    leaving = sum(bits(c, "CO") not in carry_ins and bits(c, "CO") in read for c in carries)
    return len(luts) + unpaired + lone_ffs + signal_starts + leaving


def logic_needed(cells, target):
    """The logic cells of ``target``'s device that the netlist ``cells``
    (Yosys JSON cells of the top module) take: the iCE40 packing estimate,
    or the fullest of the device's ``fill`` rules (``{cell type prefix:
    logic cells each}``, :mod:`hwgen.tools.targets`)."""
    fill = DEVICES[target]["fill"]
    if fill == "ice40-pack":
        return ice40_logic_cells(cells)
    counts = {}
    for cell in cells:
        counts[cell["type"]] = counts.get(cell["type"], 0) + 1
    return max(sum(w * n for prefix, w in rule.items() for t, n in counts.items() if t.startswith(prefix))
               for rule in fill)


def fit_advice(target, arch="unrolled"):
    """What to try for a design too large for ``target``'s device."""
    tries = ["fewer lanes (--lut-budget N or a larger --target-cycles)" if arch == "folded"
             else "--arch folded --lut-budget N"]
    larger = [t for t, d in DEVICES.items() if d["capacity"] > DEVICES[target]["capacity"]]
    tries += [f"a larger device (--target {t}: {DEVICES[t]['device']}, {DEVICES[t]['capacity']:,} "
              f"{DEVICES[t]['logic']})" for t in larger]
    return "try " + " or ".join(tries) + " or a smaller network"


def _netlist_cells(path):
    """The cells (Yosys JSON) of the top module of a netlist."""
    try:
        netlist = json.loads(path.read_text())
        return list(next(m for m in netlist["modules"].values() if m.get("attributes", {}).get("top"))["cells"]
                    .values())
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise HwgenError(f"yosys wrote no usable netlist {path} ({type(exc).__name__}: {exc})") from None


def _check_fit(work, target, arch):
    dev = DEVICES[target]
    needed = logic_needed(_netlist_cells(work / "netlist.json"), target)
    if needed > dev["capacity"]:
        raise DoesNotFitError(
            f"the design does not fit on {dev['device']}: it needs about {needed:,} {dev['logic']} logic "
            f"cells and the device has {dev['capacity']:,}; {fit_advice(target, arch)}",
            target=target, needed=needed, available=dev["capacity"])
    return needed


def _does_not_fit(log_text, device, arch="unrolled", target="ice40"):
    """nextpnr's placer error for a design larger than the device (one the
    cell count did not foresee), as one clear sentence with what to try, or
    None."""
    m = re.search(r"Failed to expand region .* of (\d+) (\w+?)s?\b", log_text)
    if not m:
        return None
    return (f"the design does not fit on {device}: it needs {int(m.group(1)):,} {m.group(2)} cells, more "
            f"than the device has; {fit_advice(target, arch)}")


def _checked(rtl_dir, target):
    if target not in DEVICES:
        raise HwgenError(f"unknown timing target {target!r}; choose one of {', '.join(DEVICES)}")
    rtl_dir = Path(rtl_dir).resolve()
    rtl = read_manifest(rtl_dir)
    _targets.check_family(rtl.get("family", "generic"), target, rtl_dir)
    if "target" in rtl:
        raise HwgenError(f"{rtl_dir} holds a synthesized netlist; point hwgen timing at the RTL directory")
    return rtl_dir, rtl


def synthesize_harness(rtl_dir, target="ice40", *, log=None, stop=None):
    """Synthesize ``rtl_dir``'s network in the timing harness for
    ``target``'s device (``RTLDIR/timing/<target>/netlist.json``) and count
    the logic cells it needs (:func:`logic_needed`); a design that needs
    more than the device has raises :class:`DoesNotFitError`. Returns
    ``{"target", "needed", "seconds"}``, which :func:`place_and_route`
    takes as ``harness`` (the flow synthesizes the next device's harness
    while it decides on the first)."""
    rtl_dir, rtl = _checked(rtl_dir, target)
    dev = DEVICES[target]
    work = rtl_dir / "timing" / target
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(resource("rtl_templates", "timing_wrapper.v"), work / "timing_wrapper.v")
    in_width = int(rtl.get("input_word_width", rtl["input_features"] * rtl["input_bits"]))
    out_width = rtl["scores_offset"] + rtl["n_classes"] * rtl["score_width"]
    script = resource("rtl_templates", dev["script"]).read_text().format(
        sources=" ".join([*(f"../../{s}" for s in rtl["sources"]), "timing_wrapper.v"]),
        in_width=in_width, out_width=out_width, netlist_json="netlist.json")
    (work / "synth.ys").write_text(script)
    (work / "netlist.json").unlink(missing_ok=True)
    t0 = time.perf_counter()
    if log:
        log(f"  yosys: {target} synthesis in the timing harness ...")
    _run([yosys_executable(), "-q", "-s", "synth.ys"], work, work / "synth.log", f"yosys {target} synthesis",
         stop=stop)
    needed = _check_fit(work, target, rtl.get("arch", "unrolled"))
    if log:
        log(f"  {target}: needs about {needed:,} of the {dev['capacity']:,} {dev['logic']} logic cells")
    return {"target": target, "needed": needed, "seconds": time.perf_counter() - t0}


def place_and_route(rtl_dir, target="ice40", *, freq=None, seed=1, log=None, timeout=None, effort="full",
                    stop=None, harness=None):
    """Synthesize ``rtl_dir``'s network in the timing harness
    (:func:`synthesize_harness`, unless ``harness`` is its result already)
    and place and route it on ``target``'s device; ``timeout``: seconds
    nextpnr may take (None: no limit; nextpnr's router can go on for good
    on a nearly full device); ``effort``: ``"full"`` or ``"fast"``
    (:data:`EFFORTS`); ``stop``: a :class:`threading.Event` that, once set,
    kills the running tool and raises :class:`Stopped`.

    Before nextpnr runs, the synthesized netlist's logic cells are counted
    (:func:`logic_needed`); a design that needs more than the device has
    raises :class:`DoesNotFitError`, naming both and what to try.

    Returns ``{"target", "device", "fmax_mhz", "constraint_mhz", "met",
    "logic_cells", "logic_available", "logic_estimate", "utilization", "seed",
    "effort", "seconds"}`` (``logic_estimate``: the count made before nextpnr).
    """
    rtl_dir, rtl = _checked(rtl_dir, target)
    if effort not in EFFORTS:
        raise HwgenError(f"unknown place-and-route effort {effort!r}; choose one of {', '.join(EFFORTS)}")
    dev = DEVICES[target]
    freq = float(freq or dev["freq"])
    if freq <= 0:
        raise HwgenError(f"the clock constraint must be positive, not {freq} MHz")
    if timeout is not None and timeout <= 0:
        raise HwgenError(f"the timeout must be positive, not {timeout} s")
    if harness is not None and harness.get("target") != target:
        raise HwgenError(f"the timing harness given was synthesized for {harness.get('target')!r}, not {target!r}")
    t0 = time.perf_counter()
    ahead = 0.0 if harness is None else harness["seconds"]   # the harness synthesis that ran before
    harness = harness or synthesize_harness(rtl_dir, target, log=log, stop=stop)
    needed = harness["needed"]
    work = rtl_dir / "timing" / target
    if log:
        log(f"  {dev['tool']}: placing and routing on {dev['device']} at {freq:g} MHz (seed {seed}, "
            f"{effort} effort) ...")
    (work / "report.json").unlink(missing_ok=True)
    try:
        _run([find_tool(dev["tool"], "timing"), *dev["args"], "--json", "netlist.json", "--freq", f"{freq:g}",
              "--seed", str(seed), "--timing-allow-fail", "--report", "report.json", *EFFORTS[effort]],
             work, work / "nextpnr.log", f"{dev['tool']} on {dev['device']}", timeout, stop)
    except Stopped:
        raise
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
              "logic_estimate": needed,
              "utilization": util, "seed": seed, "effort": effort,
              "seconds": round(time.perf_counter() - t0 + ahead, 2)}
    if log:
        log(f"  {target}: Fmax {fmax:.1f} MHz ({'meets' if fmax >= freq else 'misses'} {freq:g} MHz), "
            f"{logic['used']}/{logic['available']} logic cells")
    return result


def format_table(results):
    rows = [("target", "device", "Fmax MHz", "constraint", "logic cells", "effort")]
    rows += [(r["target"], r["device"], f"{r['fmax_mhz']:.1f}", f"{r['constraint_mhz']:g} "
              f"({'met' if r['met'] else 'missed'})", f"{r['logic_cells']}/{r['logic_available']}",
              r.get("effort", "full")) for r in results]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
