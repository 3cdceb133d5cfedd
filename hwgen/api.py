"""The library's verbs on the integer side: artifact -> RTL -> synthesis,
place and route, simulation, proof.

Each is what one ``hwgen`` command does, without the printing. None of them
imports torch: whoever only receives an artifact needs none. (The torch side,
:func:`hwgen.export` and the layers, is in :mod:`hwgen.training.exporter` and
:mod:`hwgen.training.nn`.)
"""
import contextlib
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .core import artifact as _artifact
from .core.artifact import Artifact
from .core.design import DEFAULT_TARGET_CYCLES, Design
from .errors import HwgenError
from .core.manifest import Manifest

__all__ = ["generate_rtl", "resolve_folding", "synthesize", "place_and_route", "simulate", "SimResult", "prove"]


def _locked(directory, function):
    """The output directory's lock (:func:`hwgen.core.fileio.locked`) for an
    API call, named for whoever waits on it; a directory that is not there
    is left to the call to report."""
    from .core.fileio import locked
    if not Path(directory).is_dir() and function != "generate_rtl":
        return contextlib.nullcontext()
    return locked(directory, f"hwgen.{function} in process {os.getpid()} ({' '.join(sys.argv[:1])})")


def resolve_folding(artifact: Artifact, design: Design):
    """``None`` (unrolled) or one ``(pe, simd)`` (or ``None``: a conv layer
    on constants) per layer of ``artifact``, as ``design`` asks."""
    if design.arch == "unrolled":
        return None
    from .rtl.folded import choose_folding, schedule
    names = [layer.name for layer in artifact.layers]
    unknown = sorted(set(design.folding) - set(names))
    if unknown:
        raise HwgenError(f"the design folds {', '.join(unknown)}, which the artifact does not have "
                         f"(layers: {', '.join(names)})")
    if set(design.folding) == set(names):
        folding = []
        for layer in artifact.layers:
            fold = design.folding[layer.name]
            if fold is None and layer.op != "conv2d":
                raise HwgenError(f"the design leaves dense layer {layer.name} unfolded (None): only a conv "
                                 f"layer runs on constants in a folded network")
            if fold is not None:
                schedule(layer, *fold)    # one clear error where PE or SIMD does not divide the layer
            folding.append(fold)
        return folding
    constant = sorted(k for k, v in design.folding.items() if v is None)
    if constant:
        raise HwgenError(f"the design leaves {', '.join(constant)} on constants (None) but does not fold every "
                         f"layer: name them all, or give (pe, simd)")
    return choose_folding(artifact, design.target_cycles or DEFAULT_TARGET_CYCLES, design.folding)


def generate_rtl(artifact: Artifact, out_dir, design: Design = None, *, datapath_choice=None,
                 folding_choice=None, artifact_sha256=None) -> Manifest:
    """Write the RTL of ``artifact`` as ``design`` (default: unrolled,
    bit-planes, no pipelining) into ``out_dir``: ``hwgen_top.v``,
    ``hwgen_top.il`` and ``rtl.json``. The same artifact and design always
    give byte-identical files. ``datapath_choice`` / ``folding_choice``:
    records of how an exploration chose the design, kept in ``rtl.json``;
    ``artifact_sha256``: the artifact file's hash (default: that of the
    bytes :meth:`Artifact.save` writes)."""
    from . import rtl
    design = Design() if design is None else design
    if not isinstance(design, Design):
        raise HwgenError(f"design must be a hwgen.Design, not a {type(design).__name__}")
    folding = resolve_folding(artifact, design)
    sha = artifact_sha256 or hashlib.sha256(_artifact.dumps(artifact)).hexdigest()
    with _locked(out_dir, "generate_rtl"):
        data = rtl.generate(artifact, out_dir, sha, pipeline=design.pipeline, folding=folding,
                            datapaths=design.datapath_list(artifact), datapath_choice=datapath_choice,
                            folding_choice=folding_choice, family=design.family)
    return Manifest.from_dict(data, out_dir)


def synthesize(rtl_dir, targets: Iterable[str] = ("generic",), *, log=None) -> dict:
    """``{target: report}``: Yosys synthesis of the RTL in ``rtl_dir`` for
    each target (``generic``, ``ice40``, ``ecp5``, ``xc7``, ``asic``). A report
    holds ``total`` (cell counts and the target's area figures), ``per_module``
    and the netlist's path; docs/flow.md describes them."""
    from .tools.synth import synthesize as _synthesize
    targets = [targets] if isinstance(targets, str) else list(targets)
    with _locked(rtl_dir, "synthesize"):
        return {target: _synthesize(rtl_dir, target, log=log) for target in targets}


def place_and_route(rtl_dir, targets: Iterable[str] = ("ice40",), *, freq=None, seed=1, timeout=None,
                    effort: str = "full", log=None) -> dict:
    """``{target: result}``: nextpnr place and route (``ice40``: HX8K,
    ``ecp5``: 25k) of the RTL in ``rtl_dir``, with the Fmax it reached and
    the utilization; ``effort`` ``"full"`` (nextpnr's timing-driven
    defaults) or ``"fast"`` (:data:`hwgen.tools.timing.EFFORTS`)."""
    from .tools.timing import place_and_route as _pnr
    targets = [targets] if isinstance(targets, str) else list(targets)
    with _locked(rtl_dir, "place_and_route"):
        return {target: _pnr(rtl_dir, target, freq=freq, seed=seed, log=log, timeout=timeout, effort=effort)
                for target in targets}


@dataclass
class SimResult:
    """What :func:`simulate` found. ``mismatches`` counts the vectors on
    which any simulator's RTL output (label or scores) differs from the
    integer golden model; ``runs`` holds each simulator's full record;
    ``labels`` the RTL's labels (first simulator) and ``accuracy`` their
    agreement with the labels given, if any. ``boundary_mismatches``
    counts the boundary vectors (built from the weights, through the
    network and through each layer alone) that any simulator got wrong;
    each run's ``"boundary"`` entry has the details and the coverage."""
    vectors: int
    mismatches: int
    labels: list
    accuracy: float = None
    runs: dict = field(default_factory=dict)
    boundary_mismatches: int = 0

    @property
    def ok(self) -> bool:
        """True where every simulator agreed with the golden model on every
        vector, the boundary vectors included."""
        return self.mismatches == 0 and self.boundary_mismatches == 0


def simulate(artifact: Artifact, rtl_dir, inputs, labels=None, simulators: Sequence[str] = ("verilator",), *,
             backpressure=0.0, boundary: bool = True, log=None) -> SimResult:
    """Stream ``inputs`` (int ``[N, input_features]``) through the RTL in
    ``rtl_dir`` in each of ``simulators`` (``verilator``, ``icarus``; cocotb)
    and compare every output with ``artifact``'s integer golden model.
    With ``boundary`` (default) the boundary vectors of
    :mod:`hwgen.tools.boundary` are simulated too."""
    from .tools.sim import boundary_failures, simulate as _simulate
    simulators = [simulators] if isinstance(simulators, str) else list(simulators)
    if not simulators:
        raise HwgenError("simulate needs at least one simulator")
    with _locked(rtl_dir, "simulate"):
        runs = {s: _simulate(artifact, rtl_dir, inputs, simulator=s, backpressure=backpressure, log=log,
                             boundary=boundary)
                for s in simulators}
    bad = np.zeros(len(runs[simulators[0]]["labels"]), bool)
    for run in runs.values():
        bad[run["mismatched"]] = True
    out_labels = runs[simulators[0]]["labels"]
    accuracy = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(out_labels),):
            raise HwgenError(f"labels have shape {labels.shape}, expected ({len(out_labels)},)")
        accuracy = float(np.mean([got == want for got, want in zip(out_labels, labels.tolist())]))
    return SimResult(vectors=len(out_labels), mismatches=int(bad.sum()), labels=out_labels, accuracy=accuracy,
                     runs=runs, boundary_mismatches=max(boundary_failures(r) for r in runs.values()))


def prove(artifact: Artifact, rtl_dir, *, method: str = "auto", max_fan_in: int | None = None,
          timeout_s: float = 300, log=None) -> list:
    """Prove every layer of the RTL in ``rtl_dir`` and its argmax equal to
    ``artifact`` for every input: one record per layer and one for the
    argmax, ``result`` "proven", "counterexample" (with the input),
    "unproven" or "skipped" (with the reason) or "timeout".

    ``method`` (see :data:`hwgen.tools.equiv.METHODS`): "symbolic" reads
    each layer's exact linear forms off the netlist (any fan-in); "sat"
    runs Yosys SAT against a reference circuit for fan-ins up to
    ``max_fan_in``; "auto" uses SAT where the symbolic proof cannot follow
    the netlist. Folded and pipelined layers are proven by a clocked
    symbolic simulation (:mod:`hwgen.tools.sequential`; ``method``
    "symbolic" or "auto"), within ``timeout_s`` each; their records say
    which handshake ``schedules`` were covered.
    :func:`hwgen.tools.equiv.summarize` counts the records."""
    from .tools.equiv import DEFAULT_MAX_FAN_IN, check_rtl
    with _locked(rtl_dir, "prove"):
        return check_rtl(artifact, rtl_dir, method=method,
                         max_fan_in=DEFAULT_MAX_FAN_IN if max_fan_in is None else max_fan_in,
                         timeout_s=timeout_s, log=log)
