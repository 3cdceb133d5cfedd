"""LUTs per weight bit of hwgen's datapaths against Yosys's mapping of the plain sum. Prints JSON.

    python bench/popcount_area.py [--sizes 64 256 1024] [--targets ice40 xc7] [--mac-inputs 64]

Three circuits, each synthesized twice: as hwgen generates it
(``hwgen.rtl.layer.LinearLayer``: kept carry trees, fused compare) and as the
plain expression a straightforward generator writes (one ``sum(...)``, which
Yosys's ``alumacc`` turns into a single multi-operand adder). This plain form
is the baseline only; it is not in the product. On xc7 a third synthesis
takes ``LinearLayer(family="xc7")`` (LUT6_2 / CARRY4 bit heaps,
``hwgen rtl --family xc7``): ``hwgen_xc7`` in the JSON.

* ``popcount``: one binary neuron over N 1-bit weights (XNOR-popcount and
  threshold) -- LUTs per weight bit. Targets (issue 4): <= 1.3 iCE40 LUT4 and
  <= 1.1 xc7 LUT6 per weight bit.
* ``layer``: 16 binary neurons over 256 inputs with heterogeneous bits
  (mean 1.4, Middle-Out-like mix 70/20/10 % of 1/2/3 bits).
* ``mac``: one neuron over ``--mac-inputs`` 8-bit inputs with 1-bit weights
  (``sum(x, s=+1) - sum(x, s=-1) >= T``) -- LUTs per input; target: >= 1.8x
  fewer than the plain sum.
"""
import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.core.artifact import Layer
from hwgen.rtl.arith import tree_sum
from hwgen.rtl.layer import LinearLayer
from hwgen.tools.synth import synthesize_sources

TOP = "bench_top"


class PlainLayer(wiring.Component):
    """The baseline: what a straightforward generator writes, and what hwgen
    wrote before its kept structures -- per bit-plane a plain sum of the
    XNOR bits (binary inputs) or of the +x and -x inputs (MAC), scaled by
    alpha, summed, compared with the threshold; Yosys maps it on its own."""

    def __init__(self, layer):
        self._layer = layer
        super().__init__({"x": In(data.ArrayLayout(unsigned(layer.input_bits), layer.in_features)),
                          "y": Out(unsigned(layer.out_features))})

    def elaborate(self, platform):
        m = Module()
        layer, x = self._layer, self.x
        for o in range(layer.out_features):
            var, const = 0, 0
            for b in range(layer.max_bits):
                idx = [j for j in range(layer.in_features) if layer.nbits[o, j] > b]
                alpha, signs = int(layer.alpha[o, b]), layer.planes[b, o]
                if not idx or not alpha:
                    continue
                if layer.input == "binary":
                    var = var + tree_sum(x[j][0] if signs[j] else ~x[j][0] for j in idx) * (2 * alpha)
                    const -= alpha * len(idx)
                else:
                    pos = tree_sum(x[j] for j in idx if signs[j])
                    neg = tree_sum(x[j] for j in idx if not signs[j])
                    var = var + (pos - neg) * alpha
            thr = int(layer.threshold[o]) - const
            m.d.comb += self.y[o].eq(var >= thr if layer.direction[o] > 0 else var <= thr)
        return m


def make_layer(rng, out, fan_in, input_kind, input_bits, bit_fractions):
    nbits = rng.choice([1, 2, 3], size=(out, fan_in), p=bit_fractions).astype(np.uint8)
    max_bits = int(nbits.max())
    b = np.arange(1, max_bits + 1).reshape(-1, 1, 1)
    planes = (rng.integers(0, 2, size=(max_bits, out, fan_in)) * (nbits[None] >= b)).astype(np.uint8)
    alpha = np.array([[256, 128, 64][:max_bits]] * out, dtype=np.int64)
    layer = Layer(name="dut", input=input_kind, input_bits=input_bits, output="threshold", nbits=nbits,
                  planes=planes, alpha=alpha)
    lo, hi = layer.bounds()
    layer.threshold = ((lo + hi) // 2 + rng.integers(-8, 9, size=out)).astype(np.int64)
    layer.direction = rng.choice([-1, 1], size=out).astype(np.int8)
    return layer


def synth(component, work, target):
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{TOP}.v").write_text(verilog.convert(component, name=TOP, emit_src=False))
    res = synthesize_sources(work, [f"{TOP}.v"], TOP, target)
    keep = {"ice40": ("lut4", "carry"), "xc7": ("lut", "carry4"), "ecp5": ("lut4", "ccu2c")}[target]
    return {k: res["total"][k] for k in keep} | {"seconds": round(res["seconds"], 1)}


def compare(name, layer, per, targets, work):
    lut = {"ice40": "lut4", "xc7": "lut", "ecp5": "lut4"}
    row = {"out": layer.out_features, "fan_in": layer.in_features, "input_bits": layer.input_bits,
           "weight_bits": int(layer.nbits.astype(int).sum()), "per": per}
    units = row["weight_bits"] if per == "weight_bit" else layer.in_features * layer.out_features
    for target in targets:
        print(f"{name}: {target} ...", file=sys.stderr)
        hw = synth(LinearLayer(layer), work / name / target / "hwgen", target)
        plain = synth(PlainLayer(layer), work / name / target / "plain", target)
        row[target] = {"hwgen": hw, "plain": plain,
                       f"hwgen_lut_per_{per}": round(hw[lut[target]] / units, 3),
                       f"plain_lut_per_{per}": round(plain[lut[target]] / units, 3),
                       "plain_over_hwgen": round(plain[lut[target]] / max(hw[lut[target]], 1), 2)}
        if target == "xc7":
            fam = synth(LinearLayer(layer, family="xc7"), work / name / target / "hwgen_xc7", target)
            row[target].update({"hwgen_xc7": fam,
                                f"hwgen_xc7_lut_per_{per}": round(fam[lut[target]] / units, 3)})
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[64, 256, 1024], help="popcount fan-ins")
    ap.add_argument("--targets", nargs="+", default=["ice40", "xc7"], choices=["ice40", "xc7", "ecp5"])
    ap.add_argument("--mac-inputs", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    result = {"bench": "popcount_area", "machine": platform.machine(), "seed": args.seed,
              "targets": {"ice40_lut4_per_weight_bit": 1.3, "xc7_lut6_per_weight_bit": 1.1,
                          "mac_plain_over_hwgen": 1.8}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in args.sizes:
            layer = make_layer(rng, 1, n, "binary", 1, [1.0, 0.0, 0.0])
            result[f"popcount{n}"] = compare(f"popcount{n}", layer, "weight_bit", args.targets, work)
        layer = make_layer(rng, 16, 256, "binary", 1, [0.7, 0.2, 0.1])
        result["layer16x256_1.4b"] = compare("layer", layer, "weight_bit", args.targets, work)
        layer = make_layer(rng, 1, args.mac_inputs, "uint", 8, [1.0, 0.0, 0.0])
        result[f"mac{args.mac_inputs}x8b"] = compare("mac", layer, "input", args.targets, work)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
