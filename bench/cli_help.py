"""Wall time of ``hwgen --help`` and of each command's ``--help`` (target,
issue 29: under 0.5 s each; they import neither torch nor Amaranth). Each is
run ``--rounds`` times as a fresh process; prints JSON with the median and
the worst per command.

    python bench/cli_help.py [--rounds 5]
"""
import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

COMMANDS = [[], ["train"], ["export"], ["rtl"], ["synth"], ["timing"], ["sim"], ["equiv"], ["flow"], ["sweep"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rows = {}
    for cmd in COMMANDS:
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "hwgen", *cmd, "--help"], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        rows[" ".join(["hwgen", *cmd, "--help"])] = {"median_s": round(statistics.median(times), 3),
                                                     "max_s": round(max(times), 3)}
    worst = max(r["median_s"] for r in rows.values())
    print(json.dumps({"bench": "cli_help", "python": platform.python_version(), "rounds": args.rounds,
                      "commands": rows, "worst_median_s": worst, "target_s": 0.5, "met": worst < 0.5},
                     indent=2))


if __name__ == "__main__":
    main()
