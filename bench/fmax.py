"""Fmax of the digits demo per architecture and pipelining, placed and routed
with nextpnr. Prints JSON.

    python bench/fmax.py [--targets ice40 ecp5] [--seeds 1] [--target-cycles 32] [--archs folded]
                         [--mask-group neuron] [--fold fc0=4x64 ...] [--hidden 8 8]

Trains the default network (``hwgen flow``'s: digits, 64-16-16-10, 1.4
bits, seed 0), then for each design -- unrolled with ``--pipeline`` 0, 1 and 2,
folded (``choose_folding(model, --target-cycles)``) with ``--pipeline`` 0
and 1 -- generates the RTL and runs ``hwgen timing`` on each target and
placer seed. Targets (issue 4): >= 100 MHz on the iCE40 HX8K, >= 150 MHz on
the ECP5-25k. A design that does not fit a device is reported as such.
Partial results go to stderr as they come. ``--mask-group`` trains with
that grouping of bit counts (as ``hwgen train``), ``--fold`` sets layers'
folding by hand (as ``hwgen rtl``): per-neuron counts folded with PE 4 give
row enables and neurons in bit-count order, for instance. ``--hidden``
trains other hidden widths (the unrolled demo does not fit the HX8K).
"""
import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from hwgen import rtl
from hwgen.cli import _fold_spec, _mask_group
from hwgen.training.data import load_dataset
from hwgen.errors import HwgenError
from hwgen.training.exporter import export_model
from hwgen.rtl.folded import choose_folding
from hwgen.tools.timing import place_and_route
from hwgen.training.train import train

DESIGNS = [("unrolled", 0), ("unrolled", 1), ("unrolled", 2), ("folded", 0), ("folded", 1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", nargs="+", default=["ice40", "ecp5"], choices=["ice40", "ecp5"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--target-cycles", type=int, default=32)
    ap.add_argument("--archs", nargs="+", default=["unrolled", "folded"], choices=["unrolled", "folded"],
                    help="which designs (the unrolled ones take minutes per ECP5 run)")
    ap.add_argument("--mask-group", type=_mask_group, default=None, metavar="RxC|neuron|input")
    ap.add_argument("--fold", type=_fold_spec, action="append", default=[], metavar="LAYER=PExSIMD")
    ap.add_argument("--timeout", type=float, default=900,
                    help="seconds per nextpnr run before it counts as failed (default: %(default)s)")
    ap.add_argument("--hidden", nargs="+", type=int, default=[16, 16],
                    help="hidden layer widths (the demo's by default; 8 8 fits the HX8K unrolled)")
    args = ap.parse_args()
    data = load_dataset("digits")
    net, info = train(log=None, data=data, mask_group=args.mask_group, hidden=args.hidden)
    model = export_model(net, info, data.input_bits)
    folding = choose_folding(model, args.target_cycles, {name: (pe, simd) for name, pe, simd in args.fold})
    sizes = "-".join(map(str, [model.input_features, *args.hidden, model.n_classes]))
    result = {"bench": "fmax", "machine": platform.machine(), "model": f"digits {sizes}, 1.4 bits",
              "mask_group": args.mask_group, "folding": folding, "targets_mhz": {"ice40": 100, "ecp5": 150},
              "designs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for arch, pipeline in DESIGNS:
            if arch not in args.archs:
                continue
            rtl_dir = Path(tmp) / f"{arch}{pipeline}"
            manifest = rtl.generate(model, rtl_dir, pipeline=pipeline,
                                    folding=folding if arch == "folded" else None)
            row = {"arch": arch, "pipeline": pipeline, "latency": manifest["latency"],
                   "interval": manifest["interval"], "runs": []}
            if arch == "folded":
                row["layers"] = {e["name"]: {k: e[k] for k in ("pe", "simd", "cycles", "mask_in_rom",
                                                               "row_enables_in_rom", "neurons_reordered")}
                                 for e in manifest["layers"]}
            for target in args.targets:
                for seed in args.seeds:
                    print(f"{arch} --pipeline {pipeline}: {target} seed {seed} ...", file=sys.stderr)
                    t0 = time.perf_counter()
                    try:
                        res = place_and_route(rtl_dir, target, seed=seed, timeout=args.timeout)
                        run = {"target": target, "seed": seed, "fmax_mhz": res["fmax_mhz"],
                               "logic_cells": res.get("logic_cells")}
                    except HwgenError as exc:   # e.g. does not fit the device, or never routes
                        run = {"target": target, "seed": seed, "error": str(exc)}
                    run["seconds"] = round(time.perf_counter() - t0, 1)
                    row["runs"].append(run)
                    print(json.dumps(run), file=sys.stderr)
            result["designs"].append(row)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
