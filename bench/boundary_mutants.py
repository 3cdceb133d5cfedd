"""How many single-point mutants the boundary vectors of ``hwgen sim`` catch. Prints JSON.

    python bench/boundary_mutants.py [--seeds 10] [--simulator icarus] [--variants 8]

For each seed: a random folded MLP (4 pixels of 2 bits -> 8 -> 6 -> 4; weights,
scales and thresholds in ROMs, where ``hwgen equiv`` does not reach) and
the single-point mutants of every layer (tests/test_symbolic.py: a weight
bit, a scale +1, two input wires swapped, a threshold +-1, a direction
flipped, a threshold inside a gap of reachable sums, a bias +1). Each
mutant's layer is simulated in its own harness on the boundary vectors of
the original layer and on every input of the layer (256 here), so the
ground truth is exact. Reports, per mutant kind: mutants, those that some
input tells apart (``differ``), those the boundary vectors caught, and the
misses (differing but not caught) and false alarms (caught but equivalent:
must be 0). Target (issue 30): no misses.
"""
import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import random_model  # noqa: E402
from test_symbolic import mutants  # noqa: E402

from hwgen import rtl  # noqa: E402
from hwgen.tools import boundary  # noqa: E402
from hwgen.tools.sim import simulate_layers  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--simulator", default="icarus", choices=["icarus", "verilator"])
    ap.add_argument("--variants", type=int, default=boundary.DEFAULT_VARIANTS)
    args = ap.parse_args()
    t0 = time.perf_counter()
    kinds, misses = {}, []
    with TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            rng = np.random.default_rng(500 + seed)
            model = random_model(rng, [4, 8, 6, 4], input_bits=2, frac_bits=4, prune=0.2)
            for k in range(len(model.layers)):
                for n, (kind, ref, tampered) in enumerate(mutants(model, k, rng)):
                    d = Path(tmp) / f"{seed}_{k}_{n}"
                    rtl.generate(tampered, d, folding=[(2, 2), (2, 4), (2, 3)])
                    layer = ref.layers[k]
                    lv = boundary.layer_vectors(layer, variants=args.variants)
                    levels = range(2 ** layer.input_bits) if layer.input == "uint" else range(2)
                    every = np.array(list(itertools.product(levels, repeat=layer.in_features)), dtype=np.int64)
                    sets = [None] * len(model.layers)
                    sets[k] = boundary.LayerVectors(layer.name, np.concatenate([lv.inputs, every]),
                                                    lv.what + [(None, "all")] * len(every), lv.neurons,
                                                    lv.covered)
                    rec = simulate_layers(ref, d, sets, simulator=args.simulator, work_dir=d / "layers")[0]
                    caught = any(i < len(lv.inputs) for i in rec["mismatched"])
                    differs = any(i >= len(lv.inputs) for i in rec["mismatched"])
                    row = kinds.setdefault(kind, {"mutants": 0, "differ": 0, "caught": 0, "missed": 0,
                                                  "false_alarms": 0, "boundary_vectors": 0})
                    row["mutants"] += 1
                    row["differ"] += differs
                    row["caught"] += caught
                    row["missed"] += differs and not caught
                    row["false_alarms"] += caught and not differs
                    row["boundary_vectors"] += len(lv.inputs)
                    if differs and not caught:
                        misses.append({"seed": seed, "layer": layer.name, "kind": kind})
            print(f"seed {seed}: {sum(r['mutants'] for r in kinds.values())} mutants so far, "
                  f"{len(misses)} missed", file=sys.stderr)
    total = {key: sum(r[key] for r in kinds.values()) for key in ("mutants", "differ", "caught", "missed",
                                                                  "false_alarms")}
    print(json.dumps({"bench": "boundary_mutants", "seeds": args.seeds, "simulator": args.simulator,
                      "variants": args.variants, "total": total, "kinds": kinds, "misses": misses,
                      "target_met": total["missed"] == 0 and total["false_alarms"] == 0,
                      "seconds": round(time.perf_counter() - t0, 1), "machine": platform.machine(),
                      "python": platform.python_version()}, indent=2))


if __name__ == "__main__":
    main()
