"""``hwgen flow``: every stage in order, then ``report.json`` and ``report.md``."""
import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import HwgenError, VerificationError
from .core.fileio import write_text
from .versions import versions

__all__ = ["TIMINGS", "TIMINGS_HEADING", "run_flow", "write_markdown"]

#: the report.json entries that are wall-clock measurements; all others are
#: byte-identical across runs with the same seed and inputs
TIMINGS = ("timing_s", "bitexact.inferences_per_s", "timing.seconds", "proof.seconds")
#: report.md's last section, the only one holding timings
TIMINGS_HEADING = "Timings"


class _Stages:
    def __init__(self, log):
        self.log, self.timing = log, {}

    def beside(self, tag):
        """Stages that run beside these, in another thread: the same
        ``timing`` record, and log lines that start with ``tag |``."""
        other = _Stages(lambda msg: self.log(f"{tag} | {msg}"))
        other.timing = self.timing
        return other

    def run(self, name, fn):
        self.log(f"[{name}]")
        t0 = time.perf_counter()
        try:
            return fn()
        finally:    # a stage that raised (a device the design does not fit) took its time too
            self.timing[name] = round(time.perf_counter() - t0, 2)


def run_flow(config, out, *, log=print):
    """Run every stage of the flow that ``config`` (a
    :class:`~hwgen.flowconfig.FlowConfig`) describes into the directory
    ``out``: train, export, golden reference, RTL, synthesis, simulation,
    then ``report.json`` (which embeds the config, with every training
    option resolved) and ``report.md``. Returns the report; raises
    :class:`HwgenError` on any mismatch. ``out`` is locked
    (:func:`hwgen.core.fileio.locked`) while the flow runs."""
    from .core.fileio import locked
    out = Path(out)
    with locked(out, f"hwgen.run_flow in process {os.getpid()}"):
        return _run_flow(config, out, log)


def _run_flow(config, out, log):
    from .core import artifact, reference
    from .api import generate_rtl
    from .explore.budget import choose_design
    from .training.data import load_dataset, user_dataset
    from .training.exporter import export_model
    from .tools.sim import simulate
    from .tools.synth import synthesize
    from .training.train import DEFAULTS, save_checkpoint, train

    config = _resolve(config, DEFAULTS)
    train_kwargs, family, targets = config.train, config.design.family, config.targets
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stages = _Stages(log)
    data = user_dataset(**config.data) if config.data else load_dataset(train_kwargs["dataset"], config.data_dir)

    model, info = stages.run("train", lambda: train(data=data, **train_kwargs))
    save_checkpoint(model, info, out / "model.pt")

    def _export():
        integer = export_model(model, info, data.input_bits, config.frac_bits)
        artifact.save(integer, out / "model.hwgen")
        return artifact.load(out / "model.hwgen")  # what follows sees only the artifact
    integer = stages.run("export", _export)

    golden = stages.run("reference", lambda: reference.infer(integer, data.x_test))
    int_acc = float((golden.pred == data.y_test).mean())
    log(f"  float accuracy {info['float_accuracy']:.4f}, integer accuracy {int_acc:.4f}")

    sha = hashlib.sha256((out / "model.hwgen").read_bytes()).hexdigest()
    datapath = "auto" if config.datapath == "auto" else config.design.datapath_list(integer)
    design, fold_choice, choice = choose_design(integer, config.fold, datapath, config.area_target,
                                                config.design.pipeline, family, log=log, stage=stages.run)
    manifest = stages.run("rtl", lambda: generate_rtl(integer, out / "rtl", design, datapath_choice=choice,
                                                      folding_choice=fold_choice, artifact_sha256=sha).data)
    from .tools.timing import DEVICES
    area = {}
    ready = {t: threading.Event() for t in targets if t in DEVICES}

    def _synth(target):
        area[target] = stages.run(f"synth_{target}", lambda: synthesize(out / "rtl", target, log=log))
        if target in ready:
            ready[target].set()

    # place and route (one core, minutes) runs beside the rest of the flow; the synthesis of the
    # place-and-route devices comes first ("auto" reads their LUT counts)
    stop = threading.Event()
    with ThreadPoolExecutor(1, thread_name_prefix="hwgen-timing") as pool:
        if config.timing is not None:
            log("[timing] place and route runs beside the rest of the flow; its lines start with 'timing |'")
        pending = pool.submit(_timing, config, out / "rtl", area, manifest, stages.beside("timing"), stop, ready)
        try:
            for target in sorted(targets, key=lambda t: t not in DEVICES):
                _synth(target)
            sim = stages.run("sim", lambda: simulate(integer, out / "rtl", data.x_test,
                                                     simulator=config.simulator, log=log))
            proof = stages.run("prove", lambda: _proof(integer, out / "rtl", log)) if config.prove else \
                {"result": "off", "reason": "--no-prove"}
        except BaseException:
            stop.set()      # the flow has failed: nextpnr is killed, not waited for
            raise
        timing = pending.result()
    rtl_acc = round(float((np.asarray(sim["labels"]) == data.y_test).mean()), 6)
    report = {
        "dataset": data.name,
        "data": _data_entry(data),
        "avg_weight_bits": round(integer.avg_weight_bits(), 4),
        "bit_histogram": integer.bit_histogram(),
        "accuracy": {"float": round(info["float_accuracy"], 6), "integer": round(int_acc, 6),
                     "rtl": rtl_acc},
        "bitexact": {"simulator": sim["simulator"], "vectors": sim["vectors"],
                     "mismatches": sim["mismatches"], "boundary": _boundary_entry(sim),
                     "inferences_per_s": round(sim["inferences_per_s"], 1)},
        "area": {t: dict(res["total"]) for t, res in area.items()},
        "area_per_layer": {t: res["per_module"] for t, res in area.items()},
        "timing": timing,
        "proof": proof,
        "rtl": _rtl_entry(manifest),
        "artifacts": {"model": "model.hwgen", "checkpoint": "model.pt", "verilog": "rtl/hwgen_top.v",
                      "rtlil": "rtl/hwgen_top.il"},
        "training": {k: ({b: round(f, 12) for b, f in v.items()} if k == "mix" else v)   # 0.6, not 0.6000000000000001
                     for k, v in info.items() if k not in ("float_accuracy", "input")},
        "timing_s": stages.timing,
        "config": config.to_dict(),
        "versions": versions(),
    }
    write_text(out / "report.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    write_text(out / "report.md", write_markdown(report))
    log(f"report: {out / 'report.json'}, {out / 'report.md'}")
    log(f"  accuracy float {report['accuracy']['float']:.4f} / integer {int_acc:.4f} / rtl {rtl_acc:.4f}; "
        f"{sim['mismatches']} mismatches over {sim['vectors']} vectors ({sim['simulator']})")
    if "fmax_mhz" in timing:
        log(f"  Fmax {timing['fmax_mhz']:.1f} MHz on {timing['device']} ({timing['effort']} effort), "
            f"{timing['logic_cells']:,}/{timing['logic_available']:,} logic cells")
    elif timing["result"] != "off":
        log(f"  no place and route: {timing['reason']}")
    if proof["result"] != "off":
        log(f"  proof: {proof['proven']} of {len(proof['layers'])} parts (layers and argmax) proven equal to "
            f"the artifact" + (f"; not proven: {', '.join(proof['not_proven'])}" if proof["not_proven"] else "")
            + (f"; {proof['counterexample']} with a counterexample" if proof["counterexample"] else ""))
    b = report["bitexact"]["boundary"]
    if b:
        log(f"  boundary vectors: {b['vectors']}, {b['mismatches']} mismatches; {b['covered']} of "
            f"{b['neurons']} threshold neurons met on both sides"
            + (f"; not simulated alone: {', '.join(b['not_alone'])}" if b["not_alone"] else ""))
    if sim["mismatches"]:
        raise VerificationError(f"RTL differs from the golden reference on {sim['mismatches']} test vectors")
    if b and b["mismatches"]:
        raise VerificationError(f"RTL differs from the golden reference on {b['mismatches']} boundary vectors "
                                f"(report.json, bitexact.boundary)")
    if proof.get("counterexample"):
        bad = [r["layer"] for r in proof["layers"] if r["result"] == "counterexample"]
        raise VerificationError(f"the proof found a counterexample: {', '.join(bad)} of the RTL "
                                f"differs from the artifact (report.json, proof)")
    return report


#: "auto" place and route passes over a device whose LUT4 count, from the flow's
#: own synthesis, is over this share of its logic cells: carries and flip-flops
#: need more cells than the LUTs alone (the digits demo: 7,252 LUT4 in 8,956
#: iCE40 cells), and a device that full may not route at all
AUTO_FILL = 0.9


def _timing(config, rtl_dir, area, manifest, stages, stop=None, ready=None):
    """Place and route on the device ``config.timing`` names, or with
    ``"auto"`` on the smallest device the design fits, at
    ``config.timing_effort``; report.json's
    ``timing``: :func:`~hwgen.tools.timing.place_and_route`'s result plus
    ``tried`` (the devices it did not fit), or ``{"result", "reason"}``.
    ``stop`` (a :class:`threading.Event`) kills the tool that is running.

    With ``"auto"``, ``area`` holds the flow's own synthesis of each device
    target, filled in by another thread as it goes (``ready``: ``{target:
    Event}``, set once ``area[target]`` is in), and the largest device's
    harness is synthesized meanwhile, for a design the smaller devices
    turn out too small for (it is stopped once a smaller one is taken)."""
    from .tools.timing import DEVICES, DoesNotFitError, fit_advice, place_and_route, synthesize_harness
    if config.timing is None:
        return {"result": "off", "reason": "--no-timing"}
    log = stages.log
    family = config.design.family
    auto = config.timing == "auto"
    candidates = [config.timing] if not auto else \
        sorted((t for t in DEVICES if family in _device_families(t)), key=lambda t: DEVICES[t]["capacity"])
    if not candidates:
        return {"result": "skipped", "reason": f"no open-source place and route maps {family} primitives"}
    ready = ready or {}
    done = threading.Event()
    either = _Either(done, stop)
    tried = []
    with ThreadPoolExecutor(1, thread_name_prefix="hwgen-harness") as ahead:
        pending = {}
        if auto and len(candidates) > 1:
            largest = candidates[-1]
            pending[largest] = ahead.submit(stages.run, f"harness_{largest}", lambda t=largest: synthesize_harness(
                rtl_dir, t, log=log, stop=either))
        try:
            for target in candidates:
                dev = DEVICES[target]
                if auto and target in ready:
                    _wait(ready[target], stop)
                lut4 = area.get(target, {}).get("total", {}).get("lut4")
                if auto and lut4 is not None and lut4 > AUTO_FILL * dev["capacity"]:
                    # the flow's own synthesis already says so: no harness synthesis needed
                    tried.append({"target": target, "device": dev["device"], "needed": lut4,
                                  "available": dev["capacity"],
                                  "by": f"{target} synthesis, lut4" + (f" over {AUTO_FILL:.0%} of the device"
                                                                       if lut4 <= dev["capacity"] else "")})
                    log(f"  {target}: {lut4:,} LUT4 > {AUTO_FILL:.0%} of the {dev['capacity']:,} "
                        f"{dev['logic']} of {dev['device']}: a larger device")
                    continue
                try:
                    harness = pending.pop(target).result() if target in pending else None
                    result = stages.run(f"timing_{target}", lambda t=target, h=harness: place_and_route(
                        rtl_dir, t, log=log, effort=config.timing_effort, stop=stop, harness=h))
                except DoesNotFitError as exc:
                    tried.append({"target": target, "device": dev["device"], "needed": exc.needed,
                                  "available": exc.available, "by": "logic cell count before nextpnr"})
                    continue
                return {**result, "tried": tried}
        finally:
            done.set()      # a harness synthesized ahead and not needed is stopped
    last = tried[-1]
    return {"result": "does not fit", "tried": tried,
            "reason": f"the design needs about {last['needed']:,} logic cells and {last['device']} has "
                      f"{last['available']:,}; {fit_advice(last['target'], manifest['arch'])}"}


class _Either:
    """Set when any of its events (None: never) is."""

    def __init__(self, *events):
        self.events = [e for e in events if e is not None]

    def is_set(self):
        return any(e.is_set() for e in self.events)


def _wait(event, stop):
    """Wait for ``event``; raise :class:`~hwgen.tools.timing.Stopped` if ``stop`` is set first."""
    from .tools.timing import Stopped
    while not event.wait(0.25):
        if stop is not None and stop.is_set():
            raise Stopped("place and route was stopped")


def _device_families(target):
    from .tools.targets import REGISTRY
    return REGISTRY[target].families


#: seconds the flow's proof may take per part, SAT or clocked simulation (hwgen equiv's default is 300)
PROOF_TIMEOUT_S = 60


def _proof(integer, rtl_dir, log):
    """report.json's ``proof``: :func:`hwgen.prove`'s records (every layer
    and the argmax) and their counts; ``result`` "proven" (all of it),
    "counterexample" or "incomplete" (``not_proven`` names the parts)."""
    from .api import prove
    from .tools.equiv import summarize
    layers = prove(integer, rtl_dir, timeout_s=PROOF_TIMEOUT_S, log=log)
    seconds = {r["layer"]: r.pop("seconds") for r in layers if r.get("seconds") is not None}
    for r in layers:
        r.pop("seconds", None)
    counts = {k: sum(r["result"] == k for r in layers)
              for k in ("proven", "counterexample", "unproven", "timeout", "skipped")}
    summary = summarize(layers)
    result = "counterexample" if counts["counterexample"] else "proven" if summary["complete"] else "incomplete"
    return {"result": result, "layers": layers, **counts, "not_proven": summary["not_proven"],
            "seconds": seconds}


def _data_entry(data):
    """report.json's record of the data: the files read (user data) or the
    dataset's name, and the sha256 of the test split the RTL was checked on
    (its int64 inputs, then labels)."""
    digest = hashlib.sha256(np.ascontiguousarray(data.x_test, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(data.y_test, dtype=np.int64).tobytes())
    return {"name": data.name, "files": [dict(f) for f in data.files], "train_examples": len(data.x_train),
            "test_examples": len(data.x_test), "test_sha256": digest.hexdigest(),
            "input_shape": list(data.image_shape), "input_bits": data.input_bits, "classes": data.n_classes}


def _resolve(config, defaults):
    """``config`` with every training option named, after the checks that
    can fail before training starts."""
    unknown = sorted(set(config.train) - set(defaults))
    if unknown:
        raise HwgenError(f"the flow config's train has no option {', '.join(map(repr, unknown))} "
                         f"(options: {', '.join(defaults)})")
    if config.data and config.train.get("dataset", "user") != "user":
        raise HwgenError(f"the flow config gives its own data; its train dataset {config.train['dataset']!r} "
                         f"would not be used (leave it out)")
    config = config.with_train(**{**defaults, **config.train, **({"dataset": "user"} if config.data else {})})
    model_kind, act_bits = config.train["model"], config.train["act_bits"]
    if model_kind not in ("mlp", "cnn") or act_bits != 1:
        raise HwgenError(f"hwgen flow ends in RTL, which this hwgen generates for --model mlp or cnn with "
                         f"--act-bits 1 only (asked: --model {model_kind} --act-bits {act_bits}); "
                         f"use hwgen train / export / sweep for the others")
    family = config.design.family
    others = [t for t in config.targets if t != family]
    if family != "generic" and others:   # found before training, not after
        raise HwgenError(f"--family {family} RTL instantiates {family} primitives, which only the {family} "
                         f"target maps: drop --target {' '.join(others)}")
    return config


def _rtl_entry(manifest):
    """report.json's description of the RTL (from its rtl.json)."""
    return {"latency_cycles": manifest["latency"], "arch": manifest["arch"],
            "interval_cycles": manifest["interval"],
            "throughput": "1 inference / clock" if manifest["interval"] == 1
            else f"1 inference / {manifest['interval']} clocks",
            "pipeline": manifest["pipeline"], "family": manifest["family"],
            "layers": manifest["layers"], "datapath_choice": manifest["datapath_choice"],
            "folding_choice": manifest["folding_choice"]}


def _boundary_entry(sim):
    """report.json's summary of the boundary vectors of a simulate() result (None: not run)."""
    b = sim.get("boundary")
    if not b:
        return None
    layers = [{k: rec[k] for k in ("layer", "module", "harness", "vectors", "mismatches", "neurons", "covered",
                                    "exact")} for rec in b["layers"]]
    return {"variants": b["variants"], "network_vectors": b["network"]["vectors"],
            "vectors": b["network"]["vectors"] + sum(r["vectors"] for r in layers if r["harness"]),
            "mismatches": b["network"]["mismatches"] + sum(r["mismatches"] or 0 for r in layers),
            "neurons": sum(r["neurons"] for r in layers if r["covered"] is not None),
            "covered": sum(r["covered"] for r in layers if r["covered"] is not None and r["harness"]),
            "not_alone": [r["layer"] for r in layers if not r["harness"]],
            "layers": layers}


def _boundary_line(b):
    if not b:
        return ""
    return (f"; boundary vectors: {b['mismatches']} mismatches over {b['vectors']}, {b['covered']} of "
            f"{b['neurons']} threshold neurons met on both sides")


def write_markdown(r):
    lines = [f"# hwgen report: {r['dataset']}", "",
             f"- average weight bits: **{r['avg_weight_bits']}** (histogram {r['bit_histogram']})",
             f"- accuracy (test split): float {r['accuracy']['float']:.4f}, integer "
             f"{r['accuracy']['integer']:.4f}, RTL {r['accuracy']['rtl']:.4f}",
             f"- bit-exact: {r['bitexact']['mismatches']} mismatches over {r['bitexact']['vectors']} "
             f"vectors ({r['bitexact']['simulator']})" + _boundary_line(r['bitexact'].get('boundary')),
             f"- {r['rtl'].get('arch', 'unrolled')} architecture: latency {r['rtl']['latency_cycles']} cycles, "
             f"{r['rtl']['throughput']}"
             + (f" (pipelined: a register every {r['rtl']['pipeline']} adder levels)"
                if r["rtl"].get("pipeline") else "")
             + (f"; built from {r['rtl']['family']} primitives (`--family {r['rtl']['family']}`)"
                if r["rtl"].get("family", "generic") != "generic" else ""), ""]
    choice = r["rtl"].get("datapath_choice")
    lines += ["## Datapaths", "",
              "Constant-weight layers: `planes` = one adder-tree input per weight bit, one multiply per "
              "bit-plane; `direct` = one input per weight, one multiply per distinct weight value"
              + (f"; chosen per layer by measured {choice['target']} {choice['metric']}." if choice else "."), "",
              "| layer | datapath |" + (" planes | direct |" if choice else ""),
              "|---|---|" + ("---:|---:|" if choice else "")]
    for e in r["rtl"]["layers"]:
        a = (choice or {}).get("layers", {}).get(e["name"])
        lines.append(f"| {e['name']} | {e.get('datapath', 'planes')}"
                     + (" (folded)" if "pe" in e else "") + " |"
                     + ((f" {a['planes']} | {a['direct']} |" if a else " - | - |") if choice else ""))
    lines.append("")
    convs = [e for e in r["rtl"]["layers"] if e.get("op") == "conv2d"]
    if convs:
        lines += ["## Convolution (pixel streams)", "",
                  "The input is a pixel stream (one pixel per transfer); a folded conv layer after a conv "
                  "layer takes its pixels through a FIFO.", "",
                  "| layer | input C x H x W | kernel | pool | output C x H x W | clocks per map | FIFO |",
                  "|---|---|---|---:|---|---:|---:|"]
        lines += [f"| {e['name']} | {' x '.join(map(str, e['in_shape']))} | {'x'.join(map(str, e['kernel']))} | "
                  f"{e['pool']} | {' x '.join(map(str, e['out_shape']))} | {e['interval']} | "
                  f"{e.get('fifo_depth', '-')} |" for e in convs] + [""]
    folded = [e for e in r["rtl"]["layers"] if "pe" in e]
    budget = r["rtl"].get("folding_choice")
    if folded:
        lines += ["## Folding", ""]
        if budget:
            lines += [f"Chosen for a budget of {budget['lut_budget']} {budget['target']} {budget['metric']}: "
                      f"measured {budget['measured']} (estimate {budget['estimated']}, "
                      f"{budget['syntheses']} syntheses).", ""]
        if any(e.get("op") == "conv2d" for e in folded):
            lines += ["A folded conv layer's cycles and weight bits are per window (it computes the "
                      "windows its pooling keeps); its clocks per map are in the table above.", ""]
        lines += ["| layer | PE | SIMD | weight bits | cycles | minimum | weight ROM bits |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {e['name']} | {e['pe']} | {e['simd']} | {e['weight_bits']} | {e['cycles']} | "
                  f"{e['min_cycles']} | {e['weight_memory_bits']}{' (with masks)' if e['mask_in_rom'] else ''}"
                  f"{' (with row enables)' if e.get('row_enables_in_rom') else ''} |"
                  for e in folded] + [""]
        reordered = [e["name"] for e in folded if e.get("neurons_reordered")]
        if reordered:
            lines += [f"Folded in bit-count order (neurons of equal bit counts share a fold; the outputs are "
                      f"wired back in place): {', '.join(reordered)}.", ""]
    for target, per_layer in r["area_per_layer"].items():
        keys = list(r["area"][target])
        lines += [f"## Area: {target}", "", "| module | " + " | ".join(keys) + " |",
                  "|---|" + "---:|" * len(keys)]
        for name, counts in per_layer.items():
            lines.append(f"| {name} | " + " | ".join(str(counts[k]) for k in keys) + " |")
        lines += ["| **total** | " + " | ".join(f"**{r['area'][target][k]}**" for k in keys) + " |", ""]
    lines += _timing_markdown(r.get("timing")) + _proof_markdown(r.get("proof"))
    # timings last: everything above is the same for the same seed and inputs
    lines += [f"## {TIMINGS_HEADING}", "",
              f"Simulation: {r['bitexact']['inferences_per_s']:.0f} inferences/s.", "",
              "| stage | s |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in r["timing_s"].items()]
    return "\n".join(lines) + "\n"


def _timing_markdown(t):
    if not t:
        return []
    lines = ["## Place and route (nextpnr)", ""]
    for tried in t.get("tried", []):
        lines.append(f"- {tried['device']}: does not fit (needs about {tried['needed']:,} logic cells, has "
                     f"{tried['available']:,}; {tried['by']})")
    if "fmax_mhz" in t:
        lines.append(f"- **{t['device']}**: Fmax **{t['fmax_mhz']:.1f} MHz** ({'meets' if t['met'] else 'misses'} "
                     f"the {t['constraint_mhz']:g} MHz constraint), {t['logic_cells']:,} of "
                     f"{t['logic_available']:,} logic cells, placer seed {t['seed']}, "
                     f"{t.get('effort', 'full')} effort" + (" (hwgen timing --effort full for nextpnr's "
                                                            "timing-driven placement)"
                                                            if t.get("effort") == "fast" else ""))
    else:
        lines.append(f"- not run: {t['reason']}")
    return lines + [""]


def _proof_markdown(proof):
    if not proof:
        return []
    if proof["result"] == "off":
        return ["## Proof", "", "Not run (--no-prove).", ""]
    missing = proof.get("not_proven", [])
    lines = ["## Proof", "",
             f"{proof['proven']} of {len(proof['layers'])} parts (layers and argmax) proven equal to the "
             f"artifact for every input" + (f"; not proven: {', '.join(missing)} (simulation checks those on "
                                            f"the test vectors only)" if missing else "") + ".", "",
             "| part | result | method | note |", "|---|---|---|---|"]
    for r in proof["layers"]:
        note = r.get("reason") or (f"input {r['counterexample']}" if r["result"] == "counterexample" else "")
        lines.append(f"| {r['layer']} | {r['result']} | {r.get('method', '')} | {note} |")
    return lines + [""]
