"""Area against average weight bits: the hardware half of the HBB claim. Prints JSON.

    python bench/area_vs_bits.py [--bits 1 1.4 2 3] [--targets ice40 asic] [--hidden 64,64]
                                 [--dataset digits] [--epochs 40] [--pipeline 0] [--mask-group neuron]
                                 [--arch folded --mask-group 1x8 --target-cycles 64]
                                 [--targets xc7 --family xc7]

Trains the same MLP at each bit mix (homogeneous 1, 2, 3 bits and
heterogeneous 1.4 bits, Middle-Out), exports it, generates the RTL and
synthesizes it. Reports per mix: test accuracy of the integer model, weight
bits, and area per target (total and per layer). Target (issue 4):
area(1.4 b) / area(2 b) <= 0.70 (``ratio_1.4_over_2``). ``--mask-group
neuron`` trains one bit count per neuron, so that no 1.4-bit neuron pays for
a bit-plane it barely uses.

``--arch folded --target-cycles N [N ...]`` folds each mix with
``choose_folding(model, N)`` for every N (the fewest PE x SIMD lanes that
stream at N clocks per inference, balanced between the layers), trained
with ``--mask-group`` so the tiles have one bit count. The designs of a mix
then differ in area and interval both, so besides the ratios at each N it
reports each mix's most efficient design (least area x interval) and the
ratio of those; the rows also give the folding, cycles and weight ROM bits.
``--family xc7`` generates the RTL from 7-series primitives (``hwgen rtl
--family xc7``; synthesizes for ``--targets xc7`` only).
"""
import argparse
import json
import platform
import sys
import time

import numpy as np

from hwgen import rtl

from hwgen.core import reference
from hwgen.core.design import Design
from hwgen.explore.measure import measure_many
from hwgen.training.data import load_dataset
from hwgen.training.exporter import export_model
from hwgen.training.quant import NAMED_GROUPS
from hwgen.rtl.folded import choose_folding
from hwgen.training.train import train

MEASURE = {"ice40": "lut4", "ecp5": "lut4", "xc7": "lut", "asic": "um2", "generic": "cells"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bits", nargs="+", default=["1", "1.4", "2", "3"])
    ap.add_argument("--targets", nargs="+", default=["ice40", "asic"], choices=list(MEASURE))
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--hidden", default="64,64", help="hidden widths (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pipeline", type=int, default=0)
    ap.add_argument("--arch", choices=["unrolled", "folded"], default="unrolled")
    ap.add_argument("--mask-group", default=None,
                    help="RxC blocks of one bit count (folded: e.g. 1x8), 'neuron' or 'input'")
    ap.add_argument("--target-cycles", type=int, nargs="+", default=[64],
                    help="folded: one design per value (default: %(default)s)")
    ap.add_argument("--family", choices=list(rtl.FAMILIES), default="generic")
    args = ap.parse_args()
    if args.family != "generic" and set(args.targets) != {args.family}:
        ap.error(f"--family {args.family} RTL synthesizes for --targets {args.family} only")
    hidden = [int(h) for h in args.hidden.split(",")]
    group = args.mask_group and (args.mask_group.lower() if args.mask_group.lower() in NAMED_GROUPS
                                 else [int(v) for v in args.mask_group.lower().split("x")])
    data = load_dataset(args.dataset)
    result = {"bench": "area_vs_bits", "machine": platform.machine(), "dataset": args.dataset,
              "hidden": hidden, "epochs": args.epochs, "seed": args.seed, "pipeline": args.pipeline,
              "arch": args.arch, "family": args.family, "mask_group": group,
              "target_cycles": args.target_cycles if args.arch == "folded" else None,
              "target_ratio_1.4_over_2": 0.70, "mixes": {}}
    for bits in args.bits:
        print(f"bits {bits}: training ...", file=sys.stderr)
        tm, info = train(log=None, data=data, bits=bits, hidden=hidden, epochs=args.epochs, seed=args.seed,
                         mask_group=group)
        model = export_model(tm, info, data.input_bits)
        acc = float((reference.infer(model, data.x_test).pred == data.y_test).mean())
        row = {"avg_weight_bits": round(model.avg_weight_bits(), 4),
               "weight_bits": int(sum(int(l.nbits.astype(int).sum()) for l in model.layers)),
               "bit_histogram": model.bit_histogram(), "integer_accuracy": round(acc, 4)}
        if args.arch == "folded":
            row["designs"] = {}
            for cycles in args.target_cycles:
                design = _design(model, args, choose_folding(model, cycles),
                                 f"bits {bits}, --target-cycles {cycles}")
                row["designs"][str(cycles)] = design
        else:
            row.update(_design(model, args, None, f"bits {bits}"))
        result["mixes"][bits] = row
        print(json.dumps({bits: row}, default=_plain), file=sys.stderr)   # partial result
    mixes = result["mixes"]
    if "1.4" in mixes and "2" in mixes:
        for target in args.targets:
            key = MEASURE[target]
            if args.arch == "unrolled":
                result.update(_ratios(mixes["1.4"], mixes["2"], target, key, f"{target}_{key}"))
                continue
            # folded: the designs at each --target-cycles, and each mix's most efficient one
            for cycles in args.target_cycles:
                result.update(_ratios(mixes["1.4"]["designs"][str(cycles)], mixes["2"]["designs"][str(cycles)],
                                      target, key, f"{target}_{key}_t{cycles}"))
            best = {b: min(mixes[b]["designs"].items(), key=lambda d: d[1][target]["total"][key] * d[1]["interval"])
                    for b in ("1.4", "2")}
            result[f"most_efficient_{target}_{key}"] = {
                b: {"target_cycles": int(t), "interval": d["interval"], key: d[target]["total"][key]}
                for b, (t, d) in best.items()}
            result[f"ratio_1.4_over_2_{target}_{key}_x_interval_most_efficient"] = round(
                _area_time(best["1.4"][1], target, key) / _area_time(best["2"][1], target, key), 3)
    print(json.dumps(result, indent=2, default=_plain))


def _design(model, args, folding, what):
    """Generate and synthesize one design (hwgen.explore.measure): interval,
    folding, area per target."""
    starts = []

    def started(target):
        print(f"{what}: {target} synthesis ...", file=sys.stderr)
        starts.append(time.perf_counter())
    measured = measure_many(model, Design.of(model, folding=folding, pipeline=args.pipeline, family=args.family),
                            args.targets, on_target=started)
    starts.append(time.perf_counter())
    manifest = next(iter(measured.values())).manifest
    row = {"interval": manifest.interval}
    if folding:
        row["layers"] = {e["name"]: {k: e[k] for k in ("pe", "simd", "cycles", "min_cycles",
                                                       "weight_memory_bits", "mask_in_rom", "row_enables_in_rom",
                                                       "neurons_reordered")}
                         for e in manifest.layers}
    for k, (target, m) in enumerate(measured.items()):
        row[target] = {"total": m.total, "per_layer": m.per_module, "seconds": round(starts[k + 1] - starts[k], 1)}
    return row


def _area_time(design, target, key):
    return design[target]["total"][key] * design["interval"]


def _ratios(het, hom, target, key, name):
    """1.4-bit over 2-bit: whole design, the layers alone (no argmax,
    registers: what the weights cost), and area x interval."""
    layers = [sum(v[key] for k, v in d[target]["per_layer"].items() if k.startswith("fc")) for d in (het, hom)]
    return {f"ratio_1.4_over_2_{name}": round(het[target]["total"][key] / hom[target]["total"][key], 3),
            f"ratio_1.4_over_2_{name}_layers": round(layers[0] / layers[1], 3),
            f"ratio_1.4_over_2_{name}_x_interval":
                round(_area_time(het, target, key) / _area_time(hom, target, key), 3)}


def _plain(o):
    return o.item() if isinstance(o, np.generic) else str(o)


if __name__ == "__main__":
    main()
