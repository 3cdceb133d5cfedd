"""``hwgen sweep``: train a grid of configurations and tabulate accuracy vs bits.

Each grid point (bit mix x quantizer x bit-selection rule x scale x seed) is
trained, exported and run through the integer golden model. Its result is
written to ``runs/<key>.json`` (and its checkpoint to ``runs/<key>.pt``) as
soon as it finishes, so an interrupted sweep resumes where it stopped.
``sweep.json``, ``sweep.md`` and ``accuracy_vs_bits.png`` summarise every run
in the directory that shares the base settings (mean and spread over seeds),
so several grids run into one directory share one summary.

With ``hardware`` (``hwgen sweep --synth TARGET``) every run's artifact also
becomes RTL (unrolled or folded) and is synthesized; the area is recorded in
the run's JSON under a key naming the target and the design
(:func:`hardware_key`), so a resumed or extended sweep synthesizes only what
is missing (and Yosys results are cached by content hash besides). The
summary then adds area columns, the area of each heterogeneous mix relative
to the 2-bit homogeneous one, ``area_vs_bits.png`` and ``accuracy_vs_area.png``
(with the Pareto front).
"""
import hashlib
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import HwgenError
from ..training.quant import parse_bits
from ..training.train import DEFAULTS, LEGACY

__all__ = ["grid", "hardware_key", "run_sweep", "summarize", "write_markdown", "plot", "plot_area"]


def _avg_bits(mix):
    return sum(b * p for b, p in mix.items())


def _homogeneous(mix):
    return len(mix) == 1


def grid(*, bits, quantizers, selections, scales, seeds):
    """Grid points as dicts of training options. Homogeneous mixes are run
    with the first selection rule only (the rule cannot matter there)."""
    points = []
    for spec, q, sel, scale, seed in itertools.product(bits, quantizers, selections, scales, seeds):
        mix = parse_bits(spec)
        if _homogeneous(mix) and sel != selections[0]:
            continue
        points.append(dict(bits=spec, quantizer=q, selection=sel, scale=scale, seed=seed))
    return points


def _key(model, point):
    mix = parse_bits(point["bits"])
    bits = "-".join(f"{b}x{p:g}" for b, p in mix.items())
    sel = "homog" if _homogeneous(mix) else point["selection"]
    return f"{model}_{bits}_{point['quantizer']}_{sel}_{point['scale']}_s{point['seed']}"


def hardware_key(target, fold=None, pipeline=0, datapath="planes"):
    """The name of one hardware measurement: target, architecture, pipelining
    (and the datapath, unless bit-planes)."""
    if fold is None:
        arch = "unrolled"
    else:
        arch = (f"budget{fold['lut_budget']}" if fold.get("lut_budget") else f"folded{fold.get('target_cycles', 64)}") + "".join(
            f"_{name}-{pe}x{simd}" for name, (pe, simd) in sorted(fold.get("overrides", {}).items()))
    return f"{target}_{arch}_p{int(pipeline)}" + ("" if datapath == "planes" else f"_{datapath}")


def _measure(integer, target, fold, pipeline, datapath, log):
    """Generate ``integer``'s RTL and synthesize it for ``target``."""
    from .budget import choose_design
    from .measure import measure
    design, _, _ = choose_design(integer, fold, datapath, target, pipeline, log=log)
    m = measure(integer, design, target, log=log)
    folding = [design.folding[layer.name] for layer in integer.layers] if design.arch == "folded" else None
    datapaths = design.datapath_list(integer)
    return {"target": target, "arch": design.arch, "pipeline": int(pipeline),
            "folding": [list(f) if f else None for f in folding] if folding else None,
            "metric": m.metric, "area": m.area, "total": m.total,
            "per_module": m.per_module, "latency": m.manifest.latency, "interval": m.manifest.interval,
            "datapaths": datapaths}


def _digest(result):
    """sha256 of a run record's canonical JSON, its own ``sha256`` left out."""
    body = {k: v for k, v in result.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=_json_default).encode()).hexdigest()


def _write_json(path, result):
    result = dict(result)
    # JSON round trip first, so that the digest is of what a reader will parse back
    result = json.loads(json.dumps({k: v for k, v in result.items() if k != "sha256"}, default=_json_default))
    result["sha256"] = _digest(result)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)  # atomic: a run is either recorded whole or not at all


def read_run(path):
    """A run record ``runs/<key>.json``, or None where it does not parse or
    its ``sha256`` does not match its contents (edited or corrupt: the run is
    redone, and left out of the summary until then). A record of a sweep
    that predates the hash has none and is read as it is."""
    try:
        r = json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(r, dict) or ("sha256" in r and r["sha256"] != _digest(r)):
        return None
    return r


def _run_hardware(runs_dir, results, hardware, log):
    """Synthesize every run that lacks a measurement of ``hardware``
    (``[(target, fold, pipeline, datapath)]``), from its artifact ``runs/<key>.hwgen``
    (or, for runs recorded before artifacts were kept, its checkpoint)."""
    from ..core import artifact
    from ..training.exporter import export_model
    from ..training.train import load_checkpoint
    todo = [(r, spec) for r in results for spec in hardware
            if hardware_key(*spec) not in r.get("hardware", {})]
    if log is not None and todo:
        print(f"sweep: {len(todo)} syntheses to run", file=log, flush=True)
    for n, (r, (target, fold, pipeline, datapath)) in enumerate(todo, 1):
        model_path = runs_dir / f"{r['key']}.hwgen"
        if not model_path.is_file():
            net, info = load_checkpoint(runs_dir / f"{r['key']}.pt")
            artifact.save(export_model(net, info, info["input"]["bits"]), model_path)
        key = hardware_key(target, fold, pipeline, datapath)
        if log is not None:
            print(f"[{n}/{len(todo)}] {r['key']}: {key}", file=log, flush=True)
        measured = _measure(artifact.load(model_path), target, fold, pipeline, datapath,
                            (lambda text: print(text, file=log, flush=True)) if log is not None else None)
        r.setdefault("hardware", {})[key] = measured
        _write_json(runs_dir / f"{r['key']}.json", r)


def run_sweep(*, out, base, points, data_dir=None, log=sys.stderr, progress=True, hardware=()):
    """Train every grid point not already done under ``out/runs`` and measure
    ``hardware`` (``[(target, fold, pipeline, datapath)]``) where missing; returns all
    results."""
    from ..core import artifact, reference
    from ..training.data import load_dataset
    from ..training.exporter import export_model
    from ..training.train import save_checkpoint, train

    out = Path(out)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(base["dataset"], data_dir)
    results = []
    todo = []
    for point in points:
        path = runs_dir / f"{_key(base['model'], point)}.json"
        if path.exists():
            done = read_run(path)   # None: interrupted while writing, or edited: redo it
            if done is None and log is not None:
                print(f"sweep: {path} does not parse or does not match its sha256: running it again",
                      file=log, flush=True)
            if done is not None:
                differ = _base_differences(done, base)
                if differ:   # the key names the grid point only: never mix two bases under one name
                    name, was, now = differ[0]
                    raise HwgenError(f"{path} was trained with {name} = {was!r}, not {now!r}: "
                                     f"sweep into another -o directory")
                results.append(done)
                continue
        todo.append((point, path))
    if log is not None:
        print(f"sweep: {len(points)} runs, {len(points) - len(todo)} already done, {len(todo)} to train "
              f"({base['dataset']}, {base['model']}, {base['epochs']} epochs)", file=log, flush=True)
    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="sweep", unit="run", file=log, dynamic_ncols=True)
    epoch_log = _BarLog(bar, log) if bar is not None else None
    teachers = {}
    for point, path in todo:
        t0 = time.perf_counter()
        teacher = None
        if base.get("distill", 0) > 0:
            if point["seed"] not in teachers:
                teachers[point["seed"]] = _teacher(runs_dir, base, point["seed"], data, log, epoch_log, bar)
            teacher = teachers[point["seed"]]
        _say(bar, log, f"{path.stem}:")
        model, info = train(**{**base, **point}, data=data, log=epoch_log, teacher=teacher)
        save_checkpoint(model, info, runs_dir / f"{path.stem}.pt")  # before anything else can fail
        integer = export_model(model, info, data.input_bits)
        artifact.save(integer, runs_dir / f"{path.stem}.hwgen")
        pred = reference.infer(integer, data.x_test).pred
        result = dict(key=path.stem, **point, model=base["model"], dataset=base["dataset"],
                      epochs=base["epochs"], avg_bits=round(integer.avg_weight_bits(), 4),
                      float_accuracy=round(info["float_accuracy"], 6),
                      integer_accuracy=round(float((pred == data.y_test).mean()), 6),
                      seconds=round(time.perf_counter() - t0, 1), config=info)
        _write_json(path, result)
        results.append(result)
        if bar is not None:
            bar.set_postfix_str(f"{path.stem}: {result['integer_accuracy']:.4f}")
            bar.update()
        elif log is not None:
            print(f"  {path.stem}: integer accuracy {result['integer_accuracy']:.4f} "
                  f"({result['seconds']} s)", file=log, flush=True)
    if bar is not None:
        bar.close()
    if hardware:
        _run_hardware(runs_dir, results, hardware, log)
    return results


def _say(bar, log, text, always=False):
    """A line above the progress bar; without a bar, on ``log`` if ``always``."""
    if bar is not None:
        bar.write(text, file=log)
    elif always and log is not None:
        print(f"  {text}", file=log, flush=True)


def _teacher(runs_dir, base, seed, data, log, epoch_log, bar):
    """The float teacher of ``seed`` for distillation: trained once per seed
    and kept as ``runs/teacher_s<seed>.pt``, so every grid point (and a
    resumed sweep) distils from the same one."""
    from ..training.train import TEACHER_KEYS, load_teacher, save_checkpoint, train_teacher
    path = runs_dir / f"teacher_s{seed}.pt"
    want = {**{k: base[k] for k in TEACHER_KEYS if k in base}, "seed": seed}
    if path.is_file():
        teacher, info = load_teacher(path)
        for k, v in want.items():
            if info.get(k) != v:
                raise HwgenError(f"{path} was trained with {k} = {info.get(k)!r}, not {v!r}: "
                                 f"sweep into another -o directory")
        return teacher
    _say(bar, log, f"{path.stem} (float, for --distill):", always=True)
    teacher, info = train_teacher(**want, threads=base.get("threads", 0), data=data, log=epoch_log or log)
    save_checkpoint(teacher, info, path)
    return teacher


def _base_differences(run, base):
    """The base settings (dataset, model, schedule...) ``run`` was not
    trained with, as ``[(name, run's value, base's value)]``."""
    unused = {"threads", *(() if base["model"] == "cnn" else ("conv",)),
              *(("hidden", "act_bits", "dropout", "logit_scale", "distill") if base["model"] == "transformer"
                else ("dim", "depth", "heads"))}
    config = {**DEFAULTS, **LEGACY, **run.get("config", {})}  # runs recorded before an option existed
    return [(k, config.get(k), v) for k, v in base.items() if k not in unused and config.get(k) != v]


def collect(out, base):
    """Every finished run under ``out/runs`` trained with the same base
    settings (dataset, model, schedule...): a sweep directory accumulates the
    grids run into it, so several smaller grids can share one summary."""
    results = []
    for path in sorted((Path(out) / "runs").glob("*.json")):
        r = read_run(path)
        if r is None:
            continue
        if not _base_differences(r, base):
            results.append(r)
    return results


class _BarLog:
    """A file-like sink that prints training progress above the progress bar."""

    def __init__(self, bar, file):
        self.bar, self.file = bar, file

    def write(self, text):
        if text.strip():
            self.bar.write(text.rstrip(), file=self.file)

    def flush(self):
        pass


def summarize(results):
    """Group runs over seeds: one row per (bits, quantizer, selection, scale)."""
    groups = {}
    for r in results:
        sel = "-" if _homogeneous(parse_bits(r["bits"])) else r["selection"]
        groups.setdefault((r["model"], r["bits"], r["quantizer"], sel, r["scale"]), []).append(r)
    rows = []
    for (model, bits, q, sel, scale), rs in groups.items():
        row = dict(model=model, bits=bits, avg_bits=rs[0]["avg_bits"], quantizer=q, selection=sel,
                   scale=scale, seeds=sorted(r["seed"] for r in rs))
        for k in ("float_accuracy", "integer_accuracy"):
            vals = [r[k] for r in rs]
            row[k] = round(statistics.fmean(vals), 6)
            row[k + "_std"] = round(statistics.stdev(vals), 6) if len(vals) > 1 else 0.0
        keys = set.intersection(*(set(r.get("hardware", {})) for r in rs))
        row["hardware"] = {}
        for key in sorted(keys):   # mean over seeds of the area figure (and the interval)
            ms = [r["hardware"][key] for r in rs]
            row["hardware"][key] = {"metric": ms[0]["metric"], "area": round(statistics.fmean(m["area"] for m in ms), 2),
                                    "interval": round(statistics.fmean(m["interval"] for m in ms), 2)}
        rows.append(row)
    rows.sort(key=lambda r: (r["model"], r["avg_bits"], r["quantizer"], r["selection"], r["scale"]))
    return rows


def _find(rows, **kw):
    return [r for r in rows if all(r[k] == v for k, v in kw.items())]


def _rankings(rows, vary, label, skip=lambda r: False):
    """One line per group of rows equal in everything but ``vary``, best first."""
    fixed = [k for k in ("bits", "quantizer", "selection", "scale") if k != vary]
    groups = {}
    for r in rows:
        if not skip(r):
            groups.setdefault(tuple(r[k] for k in fixed), []).append(r)
    lines = []
    for key, group in sorted(groups.items()):
        if len(group) > 1:
            ranked = sorted(group, key=lambda r: -r["integer_accuracy"])
            where = ", ".join(f"{k} {v}" for k, v in zip(fixed, key))
            lines.append(f"{label} ({where}): " + " > ".join(
                f"{r[vary]} {100 * r['integer_accuracy']:.2f}%" for r in ranked))
    return lines


def comparisons(rows):
    """The questions the HBB and ProxConnect++ papers answer, on this grid."""
    out = []
    for het in [r for r in rows if r["selection"] == "middle-out"]:
        homs = [h for h in rows if h["selection"] == "-" and h["quantizer"] == het["quantizer"]
                and h["scale"] == het["scale"] and h["avg_bits"] == 2.0]
        for hom in homs:
            gap = 100 * (het["integer_accuracy"] - hom["integer_accuracy"])
            out.append(f"{het['avg_bits']:g}-bit Middle-Out vs 2-bit homogeneous ({het['quantizer']}, "
                       f"{het['scale']} scales): {gap:+.2f} pp")
    for het in [r for r in rows if r["selection"] != "-"]:
        for hom in [h for h in rows if h["selection"] == "-" and h["quantizer"] == het["quantizer"]
                    and h["scale"] == het["scale"] and h["avg_bits"] == 2.0]:
            for key in sorted(set(het["hardware"]) & set(hom["hardware"])):
                a, b = het["hardware"][key], hom["hardware"][key]
                if b["area"]:
                    out.append(f"area of {het['avg_bits']:.2f}-bit {het['selection']} / 2-bit homogeneous "
                               f"({het['quantizer']}, {het['scale']} scales, {key} {a['metric']}): "
                               f"{a['area'] / b['area']:.3f}"
                               + (f"; area x interval {a['area'] * a['interval'] / (b['area'] * b['interval']):.3f}"
                                  if a["interval"] != 1 or b["interval"] != 1 else ""))
    out += _rankings(rows, "selection", "bit selection", skip=lambda r: r["selection"] == "-")
    out += _rankings(rows, "quantizer", "quantizers")
    out += _rankings(rows, "scale", "scales")
    return out


def write_markdown(meta, rows):
    keys = _hardware_keys(rows)
    lines = [f"# hwgen sweep: {meta['dataset']}, {meta['model']}", "",
             f"{meta['runs']} runs, {meta['epochs']} epochs, seeds {meta['seeds']}; accuracy on the test split "
             f"(integer = the exported integer model run by the golden reference, i.e. what the "
             f"hardware computes). Mean ± standard deviation over seeds"
             + (" (areas: mean over seeds; interval: clocks per inference)." if keys else "."), "",
             *_settings_lines(meta),
             "| avg bits | mix | quantizer | selection | scales | float acc (%) | integer acc (%) | seeds |"
             + "".join(f" {key} {metric} |" + (f" {key} interval |" if folded else "") for key, metric, folded in keys),
             "|---:|---|---|---|---|---:|---:|---:|" + "---:|" * sum(2 if folded else 1 for _, _, folded in keys)]
    for r in rows:
        cells = []
        for key, _, folded in keys:
            m = r["hardware"].get(key)
            cells += [f"{m['area']:g}" if m else "-"] + ([f"{m['interval']:g}" if m else "-"] if folded else [])
        lines.append(f"| {r['avg_bits']:.2f} | {r['bits']} | {r['quantizer']} | {r['selection']} | "
                     f"{r['scale']} | {100 * r['float_accuracy']:.2f} ± {100 * r['float_accuracy_std']:.2f} | "
                     f"{100 * r['integer_accuracy']:.2f} ± {100 * r['integer_accuracy_std']:.2f} | "
                     f"{len(r['seeds'])} |" + "".join(f" {c} |" for c in cells))
    comp = comparisons(rows)
    if comp:
        lines += ["", "## Comparisons", ""] + [f"- {c}" for c in comp]
    return "\n".join(lines) + "\n"


def _settings_lines(meta):
    """The training settings that differ from hwgen's defaults, so that a
    table says what it was trained with."""
    base = meta.get("base", {})
    diff = [(k, v) for k, v in base.items() if k in DEFAULTS and k not in ("dataset", "model", "epochs")
            and v != DEFAULTS[k] and not (k == "conv" and base.get("model") != "cnn")]
    if not diff:
        return []

    def option(k, v):
        name = k.replace("_", "-")
        if isinstance(v, bool):
            return name if v else f"no-{name}"
        if isinstance(v, (list, tuple)):
            v = ("x" if k == "mask_group" else ",").join(map(str, v))
        return f"{name} {v}"
    return ["Settings besides the defaults: " + ", ".join(f"`--{option(k, v)}`" for k, v in diff) + ".", ""]


def _hardware_keys(rows):
    """``[(key, metric, folded)]`` of the hardware measurements in ``rows``."""
    found = {}
    for r in rows:
        for key, m in r.get("hardware", {}).items():
            found[key] = (m["metric"], m.get("interval", 1) != 1 or "_unrolled" not in key)
    return [(key, *found[key]) for key in sorted(found)]


def pareto(points):
    """Of ``[(area, accuracy, ...)]``, those no other point beats in both
    (smaller or equal area with higher accuracy, or smaller area with equal
    accuracy), by increasing area."""
    front, best = [], float("-inf")
    for p in sorted(points, key=lambda p: (p[0], -p[1])):
        if p[1] > best:
            front.append(p)
            best = p[1]
    return front


def plot_area(rows, out, title):
    """``area_vs_bits.png`` and ``accuracy_vs_area.png``, one panel per
    hardware measurement; returns the files written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = _hardware_keys(rows)
    if not keys:
        return []
    out = Path(out)
    files = []
    for name, xlabel in (("area_vs_bits", "average weight bits"), ("accuracy_vs_area", None)):
        fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 4.2), squeeze=False)
        for ax, (key, metric, _) in zip(axes[0], keys):
            have = [r for r in rows if key in r["hardware"]]
            if name == "area_vs_bits":
                series = {}
                for r in have:
                    series.setdefault((r["quantizer"], r["scale"]), []).append(r)
                for (q, scale), rs in sorted(series.items()):
                    line = sorted([r for r in rs if r["selection"] in ("-", "middle-out")], key=lambda r: r["avg_bits"])
                    ax.plot([r["avg_bits"] for r in line], [r["hardware"][key]["area"] for r in line], marker="o",
                            label=f"{q} ({scale})")
                    other = [r for r in rs if r["selection"] in ("magnitude", "random")]
                    ax.scatter([r["avg_bits"] for r in other], [r["hardware"][key]["area"] for r in other],
                               marker="s", color="gray", zorder=3)
                ax.set_xlabel(xlabel)
                ax.set_ylabel(f"area ({metric})")
            else:
                pts = [(r["hardware"][key]["area"], 100 * r["integer_accuracy"], r) for r in have]
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], color="tab:blue", zorder=3)
                for a, acc, r in pts:
                    ax.annotate(f"{r['avg_bits']:.2f} b {r['quantizer']}"
                                + (f" {r['selection']}" if r["selection"] not in ("-", "middle-out") else ""),
                                (a, acc), fontsize=7, textcoords="offset points", xytext=(4, 3))
                front = pareto(pts)
                ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="tab:red",
                        label="Pareto front")
                ax.set_xlabel(f"area ({metric})")
                ax.set_ylabel("test accuracy of the integer model (%)")
            ax.set_title(f"{title}\n{key}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=120, metadata={"Software": None})
        plt.close(fig)
        files.append(path)
    return files


def plot(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    series = {}
    for r in rows:
        series.setdefault((r["quantizer"], r["scale"]), []).append(r)
    for (q, scale), rs in sorted(series.items()):
        # one line per quantizer through the homogeneous and Middle-Out points
        line = sorted([r for r in rs if r["selection"] in ("-", "middle-out")], key=lambda r: r["avg_bits"])
        if line:
            ax.errorbar([r["avg_bits"] for r in line], [100 * r["integer_accuracy"] for r in line],
                        yerr=[100 * r["integer_accuracy_std"] for r in line], marker="o", capsize=3,
                        label=f"{q} ({scale})")
        for r in rs:
            if r["selection"] in ("magnitude", "random"):
                ax.scatter([r["avg_bits"]], [100 * r["integer_accuracy"]],
                           marker="x" if r["selection"] == "random" else "s", color="gray", zorder=3)
    ax.scatter([], [], marker="s", color="gray", label="magnitude selection")
    ax.scatter([], [], marker="x", color="gray", label="random selection")
    ax.set_xlabel("average weight bits")
    ax.set_ylabel("test accuracy of the integer model (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)


def sweep(*, out, base, bits, quantizers, selections, scales, seeds, data_dir=None, log=sys.stderr,
          hardware=(), progress=True):
    """Run (or resume) a sweep and write its summary files; returns the summary rows.
    ``hardware``: ``[(target, fold, pipeline, datapath)]`` to synthesize every
    run for (``fold``: None for unrolled, else
    :func:`~hwgen.rtl.folded.choose_folding`'s keyword arguments;
    ``datapath``: planes, direct or auto)."""
    if not bits or not quantizers or not selections or not scales or not seeds:
        raise HwgenError("a sweep needs at least one value for each of bits, quantizer, selection, "
                         "scale and seed")
    points = grid(bits=bits, quantizers=quantizers, selections=selections, scales=scales, seeds=seeds)
    run_sweep(out=out, base=base, points=points, data_dir=data_dir, log=log, hardware=hardware,
              progress=progress)
    results = collect(out, base)
    rows = summarize(results)
    meta = dict(dataset=base["dataset"], model=base["model"], epochs=base["epochs"],
                seeds=sorted({r["seed"] for r in results}), runs=len(results),
                base={k: v for k, v in base.items() if k not in ("threads",)})
    out = Path(out)
    (out / "sweep.json").write_text(json.dumps(dict(meta=meta, rows=rows, runs=sorted(
        results, key=lambda r: r["key"])), indent=2, sort_keys=True, default=_json_default) + "\n")
    (out / "sweep.md").write_text(write_markdown(meta, rows))
    plot(rows, out / "accuracy_vs_bits.png", f"{base['dataset']} {base['model']}, {base['epochs']} epochs")
    plot_area(rows, out, f"{base['dataset']} {base['model']}, {base['epochs']} epochs")
    return rows


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")
