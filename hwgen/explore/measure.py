"""One measurement of a design: generate its RTL in a temporary directory,
synthesize it for one target, take the area per layer. Every exploration
(:mod:`hwgen.explore.budget`, :mod:`hwgen.explore.datapath`, :mod:`hwgen.explore.breakdown`,
:mod:`hwgen.explore.sweep`) measures through :func:`measure`. Yosys results are
cached by content hash, so measuring the same design twice costs one
synthesis.
"""
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..tools import targets as targets_registry
from ..api import generate_rtl
from ..core.design import Design
from ..core.manifest import Manifest
from ..tools.synth import layer_areas, synthesize

__all__ = ["Measurement", "measure", "measure_many"]


@dataclass(frozen=True)
class Measurement:
    """``area``: the target's one area figure (``metric``: ``lut4``, ``lut``,
    ``um2`` or ``cells``) for the whole design; ``per_layer``: that figure per
    layer module; ``total`` and ``per_module``: the whole synthesis report;
    ``manifest``: the RTL's (latency, interval, layers, design)."""
    target: str
    metric: str
    area: float
    per_layer: dict
    total: dict
    per_module: dict
    manifest: Manifest


def measure(artifact, design: Design, target: str, *, log=None) -> Measurement:
    """Synthesize ``artifact`` as ``design`` for ``target``."""
    return measure_many(artifact, design, [target], log=log)[target]


def measure_many(artifact, design: Design, targets, *, log=None, on_target=None) -> dict:
    """``{target: Measurement}``: the design generated once and synthesized
    for each of ``targets`` in turn (``on_target(target)`` is called before
    each synthesis, e.g. for progress output)."""
    metrics = {target: targets_registry.get(target).metric for target in targets}
    out = {}
    with tempfile.TemporaryDirectory(prefix="hwgen-measure-") as tmp:
        manifest = generate_rtl(artifact, Path(tmp) / "rtl", design)
        names = [entry["name"] for entry in manifest.layers]
        for target, metric in metrics.items():
            if on_target:
                on_target(target)
            res = synthesize(Path(tmp) / "rtl", target, log=log)
            out[target] = Measurement(target=target, metric=metric, area=res["total"][metric],
                                      per_layer=layer_areas(res["per_module"], names, metric), total=res["total"],
                                      per_module=res["per_module"], manifest=manifest)
    return out
