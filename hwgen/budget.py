"""Folding under a LUT budget (``--lut-budget N``): the fastest folded design
whose synthesized area fits N.

A greedy search, as FINN's: every layer starts at its cheapest folding,
then the slowest layer (most cycles per image; a conv layer takes
``cycles + 1`` per window it computes) moves to its next faster candidate
(:func:`hwgen.rtl.folded.candidates`; a conv layer's fastest is its
constant-weight window datapath, one window per pixel) while the estimate stays within the
budget. Speeding a layer past the conv layers' pixel rate gains nothing, so
the search stops there too. The estimate is the feature
model of :func:`hwgen.rtl.folded.estimate_luts`, scaled per layer to what
synthesis last measured for it (so it fits this model, target and Yosys),
plus the measured rest of the design (conv layers, argmax, glue). Each
round synthesizes the design the moves reached: if it fits, the estimate is
rescaled there and the search goes on; if not, moves are undone (as many
as the measured overshoot asks), that design is measured, and the search
ends with the fastest design that measured within the budget (where the
corrected design is still over, the search bisects between it and the last
design that fitted, up to :data:`MAX_SYNTHESES` syntheses in all). Yosys
results are cached by content hash.
"""
import numpy as np

from .design import Design
from .errors import HwgenError
from .measure import measure
from .rtl.folded import candidates, choose_folding, conv_windows
from .synth import AREA_METRIC

__all__ = ["choose_design", "fold_to_budget", "pick_folding"]

#: rounds of (greedy moves, synthesis) at most: each round costs one synthesis
MAX_ROUNDS = 6
#: syntheses at most, the corrections after an overshoot included
MAX_SYNTHESES = 10


def _measure(model, folding, target, pipeline, datapaths, log, family="generic"):
    """``(total, {layer name: area})`` of the synthesized design."""
    m = measure(model, Design.of(model, folding=folding, datapaths=datapaths, pipeline=pipeline, family=family),
                target, log=log)
    return m.area, m.per_layer


def fold_to_budget(model, lut_budget, target="ice40", overrides=None, pipeline=0, datapaths=None, log=None,
                   family="generic"):
    """``(folding, record)``: one ``(pe, simd)`` per layer (None: a conv
    layer too small to fold) whose design measures at most ``lut_budget`` in ``target``'s
    area figure, as fast as the search finds; ``record`` says what was
    estimated and measured."""
    metric = AREA_METRIC[target]
    base = choose_folding(model, 2, overrides)     # validates overrides
    overrides = dict(overrides or {})
    cands = {k: _candidates(layer) for k, layer in enumerate(model.layers) if layer.name not in overrides}
    free = [k for k in cands if cands[k][0][0]]     # a conv layer too small to fold stays on constants
    pos = {k: 0 for k in free}
    convs = [layer for layer in model.layers if layer.op == "conv2d"]
    floor = convs[0].in_shape[1] * convs[0].in_shape[2] if convs else 1   # the pixel stream's interval

    def folding():    # (None, None): a conv layer on its constant-weight datapath
        return [(cands[k][pos[k]][:2] if cands[k][pos[k]][0] else None) if k in pos else base[k]
                for k in range(len(model.layers))]

    measurements = []

    def measure():
        if log:
            log(f"  synthesizing the folding {_describe(model, folding())} ({target}) ...")
        total, per_layer = _measure(model, folding(), target, pipeline, datapaths, log, family)
        measurements.append({"folding": [list(f) if f else None for f in folding()], "measured": total})
        return total, per_layer

    total, per_layer = measure()
    if total > lut_budget:
        raise HwgenError(f"the smallest folding (by the estimate: {_describe(model, folding())}) already takes "
                         f"{total} {target} {metric}, over the budget of {lut_budget}: raise --lut-budget, or "
                         f"fold by hand with --fold")
    scale, rest = {}, 0

    def calibrate(total, per_layer):
        """Rescale each layer's estimate to its measured area at its current folding."""
        nonlocal rest
        for k in free:
            scale[k] = per_layer[model.layers[k].name] / max(cands[k][pos[k]][3], 1.0)
        rest = total - sum(per_layer[model.layers[k].name] for k in free)

    def estimate():
        return rest + sum(scale[k] * cands[k][pos[k]][3] for k in free)

    def greedy():
        moves = []
        while free:
            k = max(free, key=lambda k: (cands[k][pos[k]][2], -k))
            if cands[k][pos[k]][2] + 1 <= floor or pos[k] + 1 == len(cands[k]):
                break
            pos[k] += 1
            if estimate() > lut_budget:
                pos[k] -= 1
                break
            moves.append(k)
        return moves

    calibrate(total, per_layer)
    best = (total, dict(pos))
    for _ in range(MAX_ROUNDS):
        moves = greedy()
        if not moves:
            break
        total, per_layer = measure()
        if total <= lut_budget:        # fits: recalibrate there and try to go further
            best = (total, dict(pos))
            calibrate(total, per_layer)
            continue
        # over: the longest prefix of this round's moves that measures within
        # the budget lies between the round's start (measured, fits) and all of
        # them (measured, over). First guess: the prefix whose estimate,
        # corrected by the overshoot, fits; then bisect, measuring each.
        start, ratio = dict(best[1]), total / estimate()
        lo, hi = 0, len(moves)

        def at(n):
            pos.clear()
            pos.update(start)
            for k in moves[:n]:
                pos[k] += 1

        n = hi - 1
        while n > lo:
            at(n)
            if estimate() * ratio <= lut_budget:
                break
            n -= 1
        if n == lo:
            n = (lo + hi) // 2
        while lo < n < hi and len(measurements) < MAX_SYNTHESES:
            at(n)
            total, per_layer = measure()
            if total <= lut_budget:
                lo, best = n, (total, dict(pos))
            else:
                hi = n
            n = (lo + hi) // 2
        break
    total, pos = best[0], dict(best[1])
    chosen = folding()
    record = {"lut_budget": lut_budget, "target": target, "metric": metric, "measured": total,
              "folding": [list(f) if f else None for f in chosen],
              "estimated": round(estimate(), 1), "syntheses": len(measurements), "measurements": measurements}
    if log:
        log(f"  folding for a budget of {lut_budget} {metric}: {_describe(model, chosen)}, measured {total} "
            f"{metric} ({len(measurements)} syntheses)")
    return chosen, record


#: first estimate of a constant-weight conv window datapath, LUT4 per weight
#: bit: binary inputs (XNOR-popcount), and per input bit of a MAC (docs/results.md,
#: "LUTs per weight bit"); the search rescales it once it has measured the layer
CONST_LUT4_PER_WEIGHT_BIT = {"binary": 1.3, "mac_per_input_bit": 1.15}


def _candidates(layer):
    """:func:`~hwgen.rtl.folded.candidates` with cycles per image: a conv
    layer takes ``cycles + 1`` clocks per window it computes, and its
    candidates stop short of a folding with as many lanes as its
    constant-weight datapath has weights (the unrolled window is cheaper).
    A conv layer's last, fastest candidate is that constant-weight datapath,
    ``(None, None, pixels, estimate)``: one window per input pixel."""
    if layer.op != "conv2d":
        return candidates(layer)
    windows = conv_windows(layer)
    out = [(pe, simd, windows * (cycles + 1), luts) for pe, simd, cycles, luts in candidates(layer)
           if 2 * pe * simd <= layer.out_features * layer.in_features]
    pixels = layer.in_shape[1] * layer.in_shape[2]
    weight_bits = int(layer.nbits.astype(np.int64).sum())
    per_bit = CONST_LUT4_PER_WEIGHT_BIT["binary"] if layer.input_bits == 1 else \
        CONST_LUT4_PER_WEIGHT_BIT["mac_per_input_bit"] * layer.input_bits
    if not out or pixels < out[-1][2]:
        out.append((None, None, pixels, per_bit * weight_bits))
    return out


def _describe(model, folding):
    return ", ".join(f"{layer.name} {f[0]}x{f[1]}" if f else f"{layer.name} on constants"
                     for layer, f in zip(model.layers, folding) if f or layer.op == "conv2d")


def pick_folding(model, fold, target="ice40", pipeline=0, datapaths=None, log=None, family="generic"):
    """``(folding, record)`` from the folding options ``fold`` (None: the
    unrolled design, ``(None, None)``): ``lut_budget`` searches under that
    budget (:func:`fold_to_budget`), else ``target_cycles`` as
    :func:`~hwgen.rtl.folded.choose_folding`."""
    if fold is None:
        return None, None
    if fold.get("lut_budget"):
        return fold_to_budget(model, fold["lut_budget"], target, fold.get("overrides"), pipeline, datapaths, log,
                              family)
    return choose_folding(model, fold.get("target_cycles", 64), fold.get("overrides")), None


def choose_design(model, fold=None, datapath="planes", target="ice40", pipeline=0, family="generic", log=None,
                  stage=None):
    """``(design, folding record, datapath record)``: the folding that the
    options ``fold`` ask for (:func:`pick_folding`; None: unrolled), then
    every layer's datapath (``planes``, ``direct``, one of them per layer,
    or ``auto``: the smaller by ``target``'s measured area,
    :func:`hwgen.datapath.choose_datapaths`),
    as one resolved :class:`~hwgen.design.Design`. ``stage(name, fn)``
    runs the measured steps (``folding`` under a LUT budget, ``datapath``
    for auto) where a caller times them."""
    run = stage or (lambda name, fn: fn())
    if fold and fold.get("lut_budget"):
        folding, fold_choice = run("folding", lambda: pick_folding(model, fold, target, pipeline, log=log,
                                                                   family=family))
    else:
        folding, fold_choice = pick_folding(model, fold)
    datapaths = [datapath] * len(model.layers) if isinstance(datapath, str) else list(datapath)
    choice = None
    if datapath == "auto":
        from .datapath import choose_datapaths
        datapaths, choice = run("datapath", lambda: choose_datapaths(model, target, pipeline, folding, log=log,
                                                                     family=family))
    return Design.of(model, folding=folding, datapaths=datapaths, pipeline=pipeline, family=family), \
        fold_choice, choice
