"""Per layer, the bit-plane or the direct constant-MAC datapath, whichever
synthesizes smaller (``hwgen rtl --datapath auto``).

Both datapaths compute the same integers (:class:`hwgen.rtl.layer.LinearLayer`):
bit-planes give every weight one adder-tree input per bit it has and every
neuron one constant multiply per plane; the direct MAC gives every weight
one input and every neuron one constant multiply per distinct weight
magnitude. Which is smaller depends on the bit mix, the scales and the
target, so it is measured: the network is generated and synthesized once
with every layer on each datapath (layers are separate modules, so one run
measures all of them), and each layer takes the smaller. Folded layers are
bit-plane hardware and keep it. Yosys results are cached by content hash.
"""
from ..core.design import Design
from .measure import measure
from ..tools.synth import AREA_METRIC

__all__ = ["choose_datapaths"]


def choose_datapaths(model, target="ice40", pipeline=0, folding=None, log=None, family="generic"):
    """``(datapaths, record)``: one ``"planes"``/``"direct"`` per layer, and
    ``record = {"target", "metric", "layers": {name: {"planes": area,
    "direct": area}}}`` for the layers that had a choice."""
    metric = AREA_METRIC[target]
    areas = {}
    for kind in ("planes", "direct"):
        if log:
            log(f"  measuring the {kind} datapath of every layer ({target}) ...")
        m = measure(model, Design.of(model, folding=folding, datapaths=[kind] * len(model.layers),
                                     pipeline=pipeline, family=family), target, log=log)
        for entry in m.manifest.layers:
            if "pe" not in entry:    # folded layers have no choice
                areas.setdefault(entry["name"], {})[kind] = m.per_layer[entry["name"]]
    datapaths = ["direct" if layer.name in areas and areas[layer.name]["direct"] < areas[layer.name]["planes"]
                 else "planes" for layer in model.layers]
    if log:
        for layer, kind in zip(model.layers, datapaths):
            if layer.name in areas:
                a = areas[layer.name]
                log(f"  {layer.name}: planes {a['planes']} {metric}, direct {a['direct']} {metric} -> {kind}")
    return datapaths, {"target": target, "metric": metric, "layers": areas}
