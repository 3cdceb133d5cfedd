"""Wall time of ``make demo`` after the install (target, issue 29: <= 90 s on
a 2-core machine), with each stage's time from its report.json. Runs the
demo's command, ``hwgen flow --dataset digits --bits 1.4``, into a
temporary directory (the synthesis cache off unless ``--cache``, so that
Yosys really runs); prints JSON.

    python bench/demo_time.py [--cache] [-- extra flow options]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", action="store_true", help="keep hwgen's synthesis cache on")
    ap.add_argument("extra", nargs="*", help="more hwgen flow options (after --)")
    args = ap.parse_args()
    env = dict(os.environ) if args.cache else {**os.environ, "HWGEN_CACHE": "off"}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "hwgen", "-q", "flow", "--dataset", "digits", "--bits", "1.4", *args.extra,
               "-o", str(Path(tmp) / "demo")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"the demo failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        report = json.loads((Path(tmp) / "demo" / "report.json").read_text())
    timing = report.get("timing", {})
    print(json.dumps({"bench": "demo_time", "python": platform.python_version(), "cpus": os.cpu_count(),
                      "command": " ".join(["hwgen flow --dataset digits --bits 1.4", *args.extra]),
                      "synthesis_cache": args.cache, "wall_s": round(wall, 1), "target_s": 90,
                      "met": wall <= 90, "stages_s": report["timing_s"],
                      "pnr_device": timing.get("device"), "fmax_mhz": timing.get("fmax_mhz"),
                      "proof": report.get("proof", {}).get("result"),
                      "mismatches": report["bitexact"]["mismatches"]}, indent=2))


if __name__ == "__main__":
    main()
