"""Area per bitwidth class (``hwgen synth --by-class MODEL``): what the
1-, 2- and 3-bit weights of each layer cost, measured.

For each bit count ``b`` the model has, the same design (architecture,
folding, pipelining and datapaths as recorded in ``rtl.json``) is generated
again with every ``b``-bit weight pruned, and synthesized. A layer's
*marginal* area for class ``b`` is its area in the full design minus its
area without those weights: what those weights cost, given the others.
Marginals need not add up to the layer's area. Logic all weights share (a
neuron's compare, a plane's multiply by its scale that stays while other
weights use the plane) belongs to no class, and removing a class can remove
logic the others share (a whole bit-plane, or a folded layer's cycles).
"""
import copy
import hashlib
from pathlib import Path

import numpy as np

from .. import rtl
from ..errors import HwgenError
from ..core.manifest import Manifest
from .measure import measure
from ..tools.synth import AREA_METRIC, layer_areas, synthesize

__all__ = ["by_class", "format_by_class"]


def by_class(model, rtl_dir, target="ice40", artifact_path=None, log=None):
    """``{"target", "metric", "total", "layers": {name: {"area", "classes":
    {b: {"weights", "weight_bits", "marginal", "per_weight_bit"}}}}}``."""
    rtl_dir = Path(rtl_dir)
    manifest = rtl.read_manifest(rtl_dir)
    if artifact_path is not None and manifest.get("artifact_sha256"):
        sha = hashlib.sha256(Path(artifact_path).read_bytes()).hexdigest()
        if sha != manifest["artifact_sha256"]:
            raise HwgenError(f"{rtl_dir} was generated from another artifact than {artifact_path} "
                             f"(SHA-256 differs): give --by-class the model the RTL came from")
    names = [e["name"] for e in manifest["layers"]]
    if names != [layer.name for layer in model.layers]:
        raise HwgenError(f"{rtl_dir} has layers {', '.join(names)}, the model "
                         f"{', '.join(l.name for l in model.layers)}: give --by-class the model the RTL came from")
    design = Manifest.from_dict(manifest, rtl_dir).design
    metric = AREA_METRIC[target]
    full = synthesize(rtl_dir, target, log=log)
    areas = layer_areas(full["per_module"], names, metric)
    classes = sorted({int(b) for layer in model.layers for b in np.unique(layer.nbits) if b > 0})
    out = {"target": target, "metric": metric, "total": full["total"][metric],
           "layers": {name: {"area": areas[name], "classes": {}} for name in names}}
    for b in classes:
        variant = copy.deepcopy(model)
        for layer in variant.layers:
            gone = layer.nbits == b
            layer.nbits = np.where(gone, 0, layer.nbits).astype(layer.nbits.dtype)
            layer.planes = np.where(gone[None], 0, layer.planes).astype(layer.planes.dtype)
        if log:
            log(f"  without the {b}-bit weights ...")
        without = measure(variant, design, target, log=log).per_layer
        for layer in model.layers:
            n = int((layer.nbits == b).sum())
            if n:
                marginal = areas[layer.name] - without[layer.name]
                out["layers"][layer.name]["classes"][b] = {
                    "weights": n, "weight_bits": n * b, "marginal": round(marginal, 2),
                    "per_weight_bit": round(marginal / (n * b), 3)}
    return out


def format_by_class(result):
    """A fixed-width table of :func:`by_class`."""
    rows = [("layer", "area", "class", "weights", "weight bits", f"marginal {result['metric']}", "per weight bit")]
    for name, entry in result["layers"].items():
        for b, c in sorted(entry["classes"].items()):
            rows.append((name, str(entry["area"]), f"{b}-bit", str(c["weights"]), str(c["weight_bits"]),
                         str(c["marginal"]), f"{c['per_weight_bit']:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)
