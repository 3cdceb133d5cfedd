"""Fmax and wall time of place and route at each effort
(:data:`hwgen.tools.timing.EFFORTS`: ``full``, nextpnr's timing-driven
defaults; ``fast``, the electrostatic placer without timing-driven placement
or routing) on the RTL of the demo (``hwgen flow --dataset digits --bits
1.4``, unrolled) or of ``--rtl DIR``, for each seed; prints JSON.

    python bench/pnr_effort.py [--rtl DIR] [--target ecp5] [--seeds 1 2]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from hwgen.tools.timing import EFFORTS, place_and_route


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtl", help="an RTL directory (default: the demo's, made by hwgen flow --no-timing)")
    ap.add_argument("--target", default="ecp5", help="timing target (default: %(default)s, where the demo fits)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rtl = Path(args.rtl) if args.rtl else Path(tmp) / "demo" / "rtl"
        if not args.rtl:
            subprocess.run([sys.executable, "-m", "hwgen", "-q", "flow", "--dataset", "digits", "--bits", "1.4",
                            "--no-timing", "--no-prove", "-o", str(Path(tmp) / "demo")], check=True)
        runs = []
        for seed in args.seeds:
            for effort in EFFORTS:
                res = place_and_route(rtl, args.target, seed=seed, effort=effort)
                runs.append({"effort": effort, "seed": seed, "fmax_mhz": res["fmax_mhz"],
                             "logic_cells": res["logic_cells"], "seconds": res["seconds"]})
                print(json.dumps(runs[-1]), file=sys.stderr)
    print(json.dumps({"bench": "pnr_effort", "python": platform.python_version(), "cpus": os.cpu_count(),
                      "rtl": args.rtl or "hwgen flow --dataset digits --bits 1.4 (unrolled)",
                      "target": args.target, "options": {k: list(v) for k, v in EFFORTS.items()},
                      "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
