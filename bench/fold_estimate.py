"""How well the folded-layer LUT estimate predicts iCE40 synthesis. Prints JSON.

    python bench/fold_estimate.py [--scales 1 2 4 8 16] [--epochs 3]

Trains digits MLPs (16-16 and 64-64 at 1.4 bits, 32-32 at 2 bits), folds
them at several sizes (PE up to scale/2, SIMD up to 4*scale), synthesizes
each design for iCE40 and compares every folded layer's LUT4 with
``hwgen.rtl.folded.estimate_luts``. Also prints the non-negative
least-squares fit of ``LUT4_PER_FEATURE`` (relative error) to these
measurements, which is where the coefficients in the code come from. The estimate only guides
``--lut-budget``'s search (hwgen/budget.py), which measures what it picks.
"""
import argparse
import json
import platform
import sys

import numpy as np
from scipy.optimize import nnls

from hwgen.training.data import load_dataset
from hwgen.training.exporter import export_model
from hwgen.rtl.folded import LUT4_PER_FEATURE, estimate_luts, lut_features
from hwgen.core.design import Design
from hwgen.explore.measure import measure
from hwgen.tools.synth import layer_areas
from hwgen.training.train import train

NETWORKS = [([16, 16], "1.4"), ([64, 64], "1.4"), ([32, 32], "2")]


def largest_divisor(n, at_most):
    return max(d for d in range(1, n + 1) if n % d == 0 and d <= max(1, at_most))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    data = load_dataset("digits")
    rows, features = [], []
    for hidden, bits in NETWORKS:
        net, info = train(log=None, data=data, hidden=hidden, epochs=args.epochs, bits=bits)
        model = export_model(net, info, data.input_bits)
        for scale in args.scales:
            folding = [(largest_divisor(l.out_features, scale // 2), largest_divisor(l.in_features, 4 * scale))
                       for l in model.layers]
            m = measure(model, Design.of(model, folding=folding), "ice40")
            for layer, (pe, simd), entry in zip(model.layers, folding, m.manifest.layers):
                row = {"network": f"{'-'.join(map(str, hidden))} {bits} b", "layer": layer.name, "pe": pe,
                       "simd": simd, "cycles": entry["cycles"], "input": layer.input,
                       "lut4": m.per_layer[layer.name],
                       "bram": layer_areas(m.per_module, [layer.name], "bram")[layer.name],
                       "estimate": round(estimate_luts(layer, pe, simd), 1)}
                row["error"] = round((row["estimate"] - row["lut4"]) / max(row["lut4"], 1), 3)
                rows.append(row)
                features.append(lut_features(layer, pe, simd))
                print(json.dumps(row), file=sys.stderr, flush=True)
    keys = list(LUT4_PER_FEATURE)
    x = np.array([[f[k] for k in keys] for f in features], float)
    y = np.array([r["lut4"] for r in rows], float)
    coef, _ = nnls(x / y[:, None], np.ones(len(y)))    # least squares of the relative error
    errors = np.abs([r["error"] for r in rows])
    print(json.dumps({"bench": "fold_estimate", "machine": platform.machine(), "target": "ice40",
                      "layers": len(rows), "mean_abs_error": round(float(errors.mean()), 3),
                      "max_abs_error": round(float(errors.max()), 3), "coefficients_in_code": LUT4_PER_FEATURE,
                      "fitted_coefficients": dict(zip(keys, np.round(coef, 3).tolist())), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
