"""``hwgen sweep``: train a grid of configurations and tabulate accuracy vs bits.

Each grid point (bit mix x quantizer x bit-selection rule x scale x seed) is
trained, exported and run through the integer golden model. Its result is
written to ``runs/<key>.json`` (and its checkpoint to ``runs/<key>.pt``) as
soon as it finishes, so an interrupted sweep resumes where it stopped.
``sweep.json``, ``sweep.md`` and ``accuracy_vs_bits.png`` summarise every run
in the directory that shares the base settings (mean and spread over seeds),
so several grids run into one directory share one summary.
"""
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from .errors import HwgenError
from .quant import parse_bits
from .train import DEFAULTS

__all__ = ["grid", "run_sweep", "summarize", "write_markdown", "plot"]


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


def run_sweep(*, out, base, points, data_dir=None, log=sys.stderr, progress=True):
    """Train every grid point not already done under ``out/runs``; returns all results."""
    from . import reference
    from .data import load_dataset
    from .export import export_model
    from .train import save_checkpoint, train

    out = Path(out)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(base["dataset"], data_dir)
    results = []
    todo = []
    for point in points:
        path = runs_dir / f"{_key(base['model'], point)}.json"
        if path.exists():
            try:
                results.append(json.loads(path.read_text()))
                continue
            except ValueError:
                pass  # a run interrupted while writing: redo it
        todo.append((point, path))
    if log is not None:
        print(f"sweep: {len(points)} runs, {len(points) - len(todo)} already done, {len(todo)} to train "
              f"({base['dataset']}, {base['model']}, {base['epochs']} epochs)", file=log, flush=True)
    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="sweep", unit="run", file=log, dynamic_ncols=True)
    epoch_log = _BarLog(bar, log) if bar is not None else None
    for point, path in todo:
        t0 = time.perf_counter()
        if bar is not None:
            bar.write(f"{path.stem}:", file=log)
        model, info = train(**{**base, **point}, data=data, log=epoch_log)
        save_checkpoint(model, info, runs_dir / f"{path.stem}.pt")  # before anything else can fail
        integer = export_model(model, info, data.input_bits)
        pred = reference.infer(integer, data.x_test).pred
        result = dict(key=path.stem, **point, model=base["model"], dataset=base["dataset"],
                      epochs=base["epochs"], avg_bits=round(integer.avg_weight_bits(), 4),
                      float_accuracy=round(info["float_accuracy"], 6),
                      integer_accuracy=round(float((pred == data.y_test).mean()), 6),
                      seconds=round(time.perf_counter() - t0, 1), config=info)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)  # atomic: a run is either recorded whole or not at all
        results.append(result)
        if bar is not None:
            bar.set_postfix_str(f"{path.stem}: {result['integer_accuracy']:.4f}")
            bar.update()
        elif log is not None:
            print(f"  {path.stem}: integer accuracy {result['integer_accuracy']:.4f} "
                  f"({result['seconds']} s)", file=log, flush=True)
    if bar is not None:
        bar.close()
    return results


def collect(out, base):
    """Every finished run under ``out/runs`` trained with the same base
    settings (dataset, model, schedule...): a sweep directory accumulates the
    grids run into it, so several smaller grids can share one summary."""
    unused = {"threads", *(() if base["model"] == "cnn" else ("conv",)),
              *(("hidden", "act_bits", "dropout") if base["model"] == "transformer" else ("dim", "depth", "heads"))}
    same = {k: v for k, v in base.items() if k not in unused}
    results = []
    for path in sorted((Path(out) / "runs").glob("*.json")):
        try:
            r = json.loads(path.read_text())
        except ValueError:
            continue
        config = {**DEFAULTS, **r.get("config", {})}  # runs recorded before an option existed
        if all(config.get(k) == v for k, v in same.items()):
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
    out += _rankings(rows, "selection", "bit selection", skip=lambda r: r["selection"] == "-")
    out += _rankings(rows, "quantizer", "quantizers")
    out += _rankings(rows, "scale", "scales")
    return out


def write_markdown(meta, rows):
    lines = [f"# hwgen sweep: {meta['dataset']}, {meta['model']}", "",
             f"{meta['runs']} runs, {meta['epochs']} epochs, seeds {meta['seeds']}; accuracy on the test split "
             f"(integer = the exported integer model run by the golden reference, i.e. what the "
             f"hardware computes). Mean ± standard deviation over seeds.", "",
             "| avg bits | mix | quantizer | selection | scales | float acc (%) | integer acc (%) | seeds |",
             "|---:|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['avg_bits']:.2f} | {r['bits']} | {r['quantizer']} | {r['selection']} | "
                     f"{r['scale']} | {100 * r['float_accuracy']:.2f} ± {100 * r['float_accuracy_std']:.2f} | "
                     f"{100 * r['integer_accuracy']:.2f} ± {100 * r['integer_accuracy_std']:.2f} | "
                     f"{len(r['seeds'])} |")
    comp = comparisons(rows)
    if comp:
        lines += ["", "## Comparisons (integer accuracy)", ""] + [f"- {c}" for c in comp]
    return "\n".join(lines) + "\n"


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


def sweep(*, out, base, bits, quantizers, selections, scales, seeds, data_dir=None, log=sys.stderr):
    """Run (or resume) a sweep and write its summary files; returns the summary rows."""
    if not bits or not quantizers or not selections or not scales or not seeds:
        raise HwgenError("a sweep needs at least one value for each of bits, quantizer, selection, "
                         "scale and seed")
    points = grid(bits=bits, quantizers=quantizers, selections=selections, scales=scales, seeds=seeds)
    run_sweep(out=out, base=base, points=points, data_dir=data_dir, log=log)
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
    return rows


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")
