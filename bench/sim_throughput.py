"""Verified inferences per second of `hwgen sim` on each simulator. Prints JSON.

    python bench/sim_throughput.py [--repeat 60] [--fashion-hidden 128,128] [--simulators verilator icarus]
                                   [--fashion-simulators verilator] [--fashion-arch unrolled folded]
                                   [--fashion-target-cycles 256]

Trains (briefly) and exports the digits MLP and a Fashion-MNIST MLP, then
streams test images through the batch harness and compares every output with
the golden model. ``inferences_per_s`` counts the simulator's own run;
``verified_per_s`` the whole call after the build (golden model, file I/O,
comparison). Targets (issue 5): >= 20,000/s with Verilator on digits, and the
full Fashion-MNIST test set bit-exact in <= 60 s, RTL generation and the
simulator build included (``total_s`` + ``rtl_s``), for the unrolled
network and the folded one (``choose_folding(model,
--fashion-target-cycles)``). Icarus is left out of the
Fashion-MNIST run by default: its compiler (ivl) had not finished elaborating
the unrolled 784-128-128-10 MLP after 35 min (2026-11-23). Each measurement
is also printed to stderr as soon as it is done.
"""
import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hwgen import rtl
from hwgen.training.data import load_dataset
from hwgen.training.exporter import export_model
from hwgen.rtl.folded import choose_folding
from hwgen.tools.sim import simulate
from hwgen.training.train import train


def measure(name, model, x, simulators, work, icarus_limit, folding=None):
    rtl_dir = work / name / "rtl"
    t0 = time.perf_counter()
    manifest = rtl.generate(model, rtl_dir, folding=folding)
    rows = {"rtl_s": round(time.perf_counter() - t0, 2), "weight_bits": int(sum(int(l.nbits.sum())
                                                                                for l in model.layers)),
            "arch": manifest["arch"], "interval": manifest["interval"],
            "verilog_mb": round((rtl_dir / "hwgen_top.v").stat().st_size / 1e6, 2)}
    for simulator in simulators:
        xs = x if simulator == "verilator" else x[:icarus_limit]
        print(f"{name}: {simulator}, {len(xs)} vectors ...", file=sys.stderr)
        t0 = time.perf_counter()
        res = simulate(model, rtl_dir, xs, simulator=simulator, work_dir=work / name / "sim")
        total = time.perf_counter() - t0
        rows[simulator] = {"vectors": res["vectors"], "mismatches": res["mismatches"],
                           "build_s": round(res["build_s"], 2), "run_s": round(res["run_s"], 2),
                           "total_s": round(total, 2), "with_rtl_s": round(total + rows["rtl_s"], 2),
                           "inferences_per_s": round(res["inferences_per_s"]),
                           "verified_per_s": round(res["vectors"] / max(total - res["build_s"], 1e-9))}
        print(json.dumps({name: {simulator: rows[simulator]}}), file=sys.stderr)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=60,
                    help="digits: stream the 360 test images this many times (default: %(default)s)")
    ap.add_argument("--fashion-hidden", default="128,128", help="Fashion-MNIST MLP widths (default: %(default)s)")
    ap.add_argument("--simulators", nargs="+", default=["verilator", "icarus"], help="for digits")
    ap.add_argument("--fashion-simulators", nargs="+", default=["verilator"])
    ap.add_argument("--icarus-limit", type=int, default=2000,
                    help="at most this many vectors on Icarus (default: %(default)s)")
    ap.add_argument("--fashion-arch", nargs="+", default=["unrolled", "folded"], choices=["unrolled", "folded"])
    ap.add_argument("--fashion-target-cycles", type=int, default=256,
                    help="folded Fashion-MNIST: clocks per inference to aim for (default: %(default)s)")
    ap.add_argument("--skip-fashion", action="store_true")
    args = ap.parse_args()
    result = {"bench": "sim_throughput", "machine": platform.machine(), "targets": {
        "verilator_digits_per_s": 20000, "fashion_full_test_s": 60}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tm, info = train(log=None)
        digits = load_dataset("digits")
        model = export_model(tm, info, info["input"]["bits"])
        x = np.tile(digits.x_test, (args.repeat, 1))
        result["digits"] = measure("digits", model, x, args.simulators, work, args.icarus_limit)
        if not args.skip_fashion:
            hidden = [int(h) for h in args.fashion_hidden.split(",")]
            tm, info = train(log=None, dataset="fashion-mnist", hidden=hidden, epochs=1, batch_size=256)
            fashion = load_dataset("fashion-mnist")
            model = export_model(tm, info, info["input"]["bits"])
            for arch in args.fashion_arch:
                folding = choose_folding(model, args.fashion_target_cycles) if arch == "folded" else None
                result[f"fashion_mnist_{arch}"] = dict(hidden=hidden, folding=folding, **measure(
                    f"fashion_{arch}", model, fashion.x_test, args.fashion_simulators, work,
                    args.icarus_limit, folding))
    v = result["digits"].get("verilator")
    if v:
        result["verilator_digits_meets_target"] = v["inferences_per_s"] >= 20000 and v["mismatches"] == 0
    for arch in args.fashion_arch:
        f = result.get(f"fashion_mnist_{arch}", {}).get("verilator")
        if f:
            result[f"fashion_{arch}_full_test_s"] = f["with_rtl_s"]
            result[f"fashion_{arch}_meets_target"] = (f["with_rtl_s"] <= 60 and f["mismatches"] == 0
                                                      and f["vectors"] == 10000)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
