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

from ..core.design import Design
from ..errors import HwgenError
from .measure import measure
from ..rtl.folded import candidates, choose_folding, conv_windows
from ..tools.synth import AREA_METRIC

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
    search = _BudgetSearch(model, lut_budget, target, overrides, pipeline, datapaths, log, family)
    best = search.start()
    for _ in range(MAX_ROUNDS):
        moves = search.greedy()
        if not moves:
            break
        total, per_layer = search.measure()
        if total <= lut_budget:        # fits: recalibrate there and try to go further
            best = (total, dict(search.pos))
            search.calibrate(total, per_layer)
            continue
        best = search.settle(moves, total, best)
        break
    return search.finish(best)


class _BudgetSearch:
    """The state of :func:`fold_to_budget`'s greedy search: each free
    layer's candidate foldings and position among them, the estimate's
    per-layer scales (calibrated on the last measurement that fitted) and
    every measurement made."""

    def __init__(self, model, lut_budget, target, overrides, pipeline, datapaths, log, family):
        self.model, self.budget, self.target, self.log = model, lut_budget, target, log
        self.pipeline, self.datapaths, self.family = pipeline, datapaths, family
        self.metric = AREA_METRIC[target]
        self.base = choose_folding(model, 2, overrides)     # validates overrides
        overrides = dict(overrides or {})
        self.cands = {k: _candidates(layer) for k, layer in enumerate(model.layers) if layer.name not in overrides}
        self.free = [k for k in self.cands if self.cands[k][0][0]]   # a conv layer too small to fold stays on constants
        self.pos = {k: 0 for k in self.free}
        convs = [layer for layer in model.layers if layer.op == "conv2d"]
        self.floor = convs[0].in_shape[1] * convs[0].in_shape[2] if convs else 1   # the pixel stream's interval
        self.measurements, self.scale, self.rest = [], {}, 0

    def folding(self):
        """The folding at the current positions ((None, None): a conv layer on its constant-weight datapath)."""
        return [(self.cands[k][self.pos[k]][:2] if self.cands[k][self.pos[k]][0] else None) if k in self.pos
                else self.base[k] for k in range(len(self.model.layers))]

    def measure(self):
        """Synthesize the current folding: ``(total, {layer: area})``."""
        if self.log:
            self.log(f"  synthesizing the folding {_describe(self.model, self.folding())} ({self.target}) ...")
        total, per_layer = _measure(self.model, self.folding(), self.target, self.pipeline, self.datapaths,
                                    self.log, self.family)
        self.measurements.append({"folding": [list(f) if f else None for f in self.folding()], "measured": total})
        return total, per_layer

    def start(self):
        """Measure the smallest folding (an error if it is over the budget) and calibrate there."""
        total, per_layer = self.measure()
        if total > self.budget:
            raise HwgenError(f"the smallest folding (by the estimate: {_describe(self.model, self.folding())}) "
                             f"already takes {total} {self.target} {self.metric}, over the budget of "
                             f"{self.budget}: raise --lut-budget, or fold by hand with --fold")
        self.calibrate(total, per_layer)
        return total, dict(self.pos)

    def calibrate(self, total, per_layer):
        """Rescale each layer's estimate to its measured area at its current folding."""
        for k in self.free:
            self.scale[k] = per_layer[self.model.layers[k].name] / max(self.cands[k][self.pos[k]][3], 1.0)
        self.rest = total - sum(per_layer[self.model.layers[k].name] for k in self.free)

    def estimate(self):
        return self.rest + sum(self.scale[k] * self.cands[k][self.pos[k]][3] for k in self.free)

    def greedy(self):
        """Move the slowest layer to its next faster candidate while the estimate fits; the moves made."""
        moves, cands, pos = [], self.cands, self.pos
        while self.free:
            k = max(self.free, key=lambda k: (cands[k][pos[k]][2], -k))
            if cands[k][pos[k]][2] + 1 <= self.floor or pos[k] + 1 == len(cands[k]):
                break
            pos[k] += 1
            if self.estimate() > self.budget:
                pos[k] -= 1
                break
            moves.append(k)
        return moves

    def settle(self, moves, total, best):
        """A round whose design measured ``total``, over the budget: the
        longest prefix of its ``moves`` that measures within it lies between
        the round's start (``best``: measured, fits) and all of them
        (measured, over). First guess: the prefix whose estimate, corrected
        by the overshoot, fits; then bisect, measuring each. The best design
        that measured within the budget."""
        start, ratio = dict(best[1]), total / self.estimate()
        lo, hi = 0, len(moves)

        def at(n):
            self.pos.clear()
            self.pos.update(start)
            for k in moves[:n]:
                self.pos[k] += 1

        n = hi - 1
        while n > lo:
            at(n)
            if self.estimate() * ratio <= self.budget:
                break
            n -= 1
        if n == lo:
            n = (lo + hi) // 2
        while lo < n < hi and len(self.measurements) < MAX_SYNTHESES:
            at(n)
            total, per_layer = self.measure()
            if total <= self.budget:
                lo, best = n, (total, dict(self.pos))
            else:
                hi = n
            n = (lo + hi) // 2
        return best

    def finish(self, best):
        """``(folding, record)`` at the best design."""
        total, self.pos = best[0], dict(best[1])
        chosen, metric = self.folding(), self.metric
        record = {"lut_budget": self.budget, "target": self.target, "metric": metric, "measured": total,
                  "folding": [list(f) if f else None for f in chosen],
                  "estimated": round(self.estimate(), 1), "syntheses": len(self.measurements),
                  "measurements": self.measurements}
        if self.log:
            self.log(f"  folding for a budget of {self.budget} {metric}: {_describe(self.model, chosen)}, "
                     f"measured {total} {metric} ({len(self.measurements)} syntheses)")
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
    :func:`hwgen.explore.datapath.choose_datapaths`),
    as one resolved :class:`~hwgen.core.design.Design`. ``stage(name, fn)``
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
