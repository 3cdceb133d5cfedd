"""Time per training step: HBB 1.4 bits (Middle-Out masks recomputed every
step) vs homogeneous 1-bit binarization of the same model. Prints JSON.

    python bench/train_step.py [--hidden 512,512] [--batch 256] [--steps 60] [--rounds 10] [--threads 0]

Target (issue 3): overhead ratio <= 1.3. Inputs are random integers of the
Fashion-MNIST shape (784 pixels, 0..255), so no dataset is needed.
"""
import argparse
import json
import platform
import statistics
import time

import torch

from hwgen.training.nn import HBBMLP, set_progress
from hwgen.training.quant import parse_bits
from hwgen.training.train import default_threads


def time_steps(bits, quantizer, hidden, batch, steps, warmup, seed=0):
    torch.manual_seed(seed)
    model = HBBMLP(784, hidden, 10, mix=parse_bits(bits), quantizer=quantizer)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (batch, 784), generator=g).float()
    y = torch.randint(0, 10, (batch,), generator=g)
    model.train()
    times = []
    for i in range(warmup + steps):
        set_progress(model, 0.5)
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", default="512,512")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=10,
                    help="the two configurations alternate this many times (machine load drifts)")
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores (the training default)")
    ap.add_argument("--quantizer", default="bnn")
    args = ap.parse_args()
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    hidden = [int(h) for h in args.hidden.split(",")]
    per_round = max(args.steps // args.rounds, 1)
    result = {"bench": "train_step", "model": f"784-{args.hidden.replace(',', '-')}-10",
              "batch": args.batch, "steps": per_round * args.rounds, "rounds": args.rounds, "threads": threads,
              "quantizer": args.quantizer,
              "torch": torch.__version__, "machine": platform.machine()}
    # interleave the two configurations so machine load affects both alike
    runs = {"homogeneous_1bit": [], "hbb_1.4_middle_out_every_step": []}
    for _ in range(args.rounds):
        runs["homogeneous_1bit"] += time_steps("1", args.quantizer, hidden, args.batch, per_round, args.warmup)
        runs["hbb_1.4_middle_out_every_step"] += time_steps("1.4", args.quantizer, hidden, args.batch,
                                                            per_round, args.warmup)
    for name, ts in runs.items():
        result[name] = {"median_ms": round(1000 * statistics.median(ts), 3),
                        "mean_ms": round(1000 * statistics.fmean(ts), 3)}
    result["overhead_ratio"] = round(result["hbb_1.4_middle_out_every_step"]["median_ms"]
                                     / result["homogeneous_1bit"]["median_ms"], 3)
    result["target_ratio"] = 1.3
    result["meets_target"] = result["overhead_ratio"] <= 1.3
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
