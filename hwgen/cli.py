"""The ``hwgen`` command line: train, export, rtl, synth, sim, flow."""
import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from .errors import HwgenError

PROG = "hwgen"


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _hidden(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"hidden sizes must be comma-separated integers, not {text!r}")
    if not sizes or any(s < 1 or s > 4096 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be 1..4096, not {text!r}")
    return sizes


def _add_train_args(p):
    from .train import DEFAULTS
    p.add_argument("--dataset", default=DEFAULTS["dataset"], help="dataset name (default: %(default)s)")
    p.add_argument("--bits", default=DEFAULTS["bits"],
                   help="weight bit mix: '1:0.6,2:0.4', an average such as '1.4' (= 1:0.6,2:0.4: "
                        "the two neighbouring widths), or '2' for homogeneous (default: %(default)s)")
    p.add_argument("--hidden", type=_hidden, default=DEFAULTS["hidden"],
                   help="hidden layer sizes, comma-separated (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="default: %(default)s")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="Adam learning rate (default: %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="default: %(default)s")
    p.add_argument("--quantizer", default=DEFAULTS["quantizer"], choices=["bc", "bnn"],
                   help="forward/backward quantizer pair (default: %(default)s)")
    p.add_argument("--threads", type=int, default=DEFAULTS["threads"],
                   help="torch CPU threads (default: %(default)s; more threads slowed this small "
                        "model down on a loaded 2-core machine)")


def _train_kwargs(args):
    if args.epochs < 1:
        raise HwgenError(f"--epochs must be at least 1, not {args.epochs}")
    return dict(dataset=args.dataset, bits=args.bits, hidden=args.hidden, epochs=args.epochs,
                lr=args.lr, seed=args.seed, quantizer=args.quantizer, threads=args.threads)


def cmd_train(args):
    from .train import save_checkpoint, train
    _log(f"training on {args.dataset} with bits {args.bits} ...")
    model, info = train(**_train_kwargs(args))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, info, args.output)
    _log(f"float (fake-quantized) test accuracy {info['float_accuracy']:.4f}; checkpoint: {args.output}")


def _export(model, info, path, frac_bits):
    from . import artifact
    from .data import load_dataset
    from .export import export_model
    data = load_dataset(info["dataset"])
    integer = export_model(model, info, data.input_bits, frac_bits)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    artifact.save(integer, path)
    return integer


def cmd_export(args):
    from .train import load_checkpoint
    model, info = load_checkpoint(args.checkpoint)
    integer = _export(model, info, args.output, args.frac_bits)
    _log(f"artifact {args.output}: {len(integer.layers)} layers, avg {integer.avg_weight_bits():.3f} "
         f"weight bits, histogram {integer.bit_histogram()}")


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cmd_rtl(args):
    from . import artifact, rtl
    model = artifact.load(args.artifact)
    _log(f"generating RTL for {args.artifact} (Amaranth) ...")
    manifest = rtl.generate(model, args.output, _sha256(args.artifact))
    _log(f"wrote {args.output}/{manifest['sources'][0]} (+ .il, rtl.json); latency "
         f"{manifest['latency']} cycles, one inference per clock")


def cmd_synth(args):
    from .synth import format_table, synthesize
    results = {}
    for target in args.target:
        res = synthesize(args.rtl_dir, target, log=_log)
        results[target] = res
        print(f"\n{target}:\n{format_table(res)}")
    out = Path(args.json or Path(args.rtl_dir) / "synth" / "area.json")
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    _log(f"area report: {out}")


def _load_test_inputs(dataset, limit):
    from .data import load_dataset
    data = load_dataset(dataset)
    x, y = data.x_test, data.y_test
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


def cmd_sim(args):
    from . import artifact
    from .sim import simulate
    model = artifact.load(args.artifact)
    x, _ = _load_test_inputs(args.dataset, args.limit)
    failed = False
    for simulator in args.simulator:
        res = simulate(model, args.rtl, x, simulator=simulator,
                       backpressure=args.backpressure, log=_log)
        print(f"{simulator}: {res['vectors']} vectors, {res['mismatches']} mismatches, "
              f"{res['inferences_per_s']:.0f} inferences/s (build {res['build_s']:.1f} s)")
        for mm in res["first_mismatches"][:3]:
            print(f"  vector {mm['vector']}: expected label {mm['expected_label']} scores "
                  f"{mm['expected_scores']}, got label {mm['got_label']} scores {mm['got_scores']}")
        failed |= res["mismatches"] > 0
    if failed:
        raise HwgenError("the RTL does not match the golden reference")


def cmd_flow(args):
    from .report import run_flow
    run_flow(out=Path(args.output), train_kwargs=_train_kwargs(args), frac_bits=args.frac_bits,
             targets=args.target, simulator=args.simulator, log=_log)


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description="Heterogeneous-bitwidth binarized networks: "
                                     "train, export, Amaranth RTL, Yosys area, cocotb bit-exact simulation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train an HBB network and save a checkpoint")
    _add_train_args(p)
    p.add_argument("-o", "--output", required=True, help="checkpoint file to write")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="freeze a checkpoint into an integer model artifact")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", required=True, help="artifact file to write (.hwgen)")
    p.add_argument("--frac-bits", type=int, default=8, help="fixed-point bits of the scales (default: 8)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("rtl", help="generate Verilog and RTLIL for an artifact")
    p.add_argument("artifact")
    p.add_argument("-o", "--output", required=True, help="RTL directory to write")
    p.set_defaults(func=cmd_rtl)

    p = sub.add_parser("synth", help="synthesize an RTL directory with Yosys and report area")
    p.add_argument("rtl_dir")
    p.add_argument("--target", action="append", choices=["generic", "ice40"],
                   help="synthesis target, repeatable (default: generic and ice40)")
    p.add_argument("--json", help="where to write the JSON report (default: RTLDIR/synth/area.json)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("sim", help="prove RTL bit-exact against the golden reference in cocotb")
    p.add_argument("artifact")
    p.add_argument("--rtl", required=True, help="RTL directory (with rtl.json) to simulate")
    p.add_argument("--dataset", default="digits", help="test split to stream (default: digits)")
    p.add_argument("--simulator", action="append", choices=["verilator", "icarus"],
                   help="simulator, repeatable (default: verilator)")
    p.add_argument("--limit", type=int, help="only the first N test images")
    p.add_argument("--backpressure", type=float, default=0.0,
                   help="probability the sink stalls a cycle (default: 0)")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("flow", help="train, export, generate RTL, synthesize, simulate, report")
    _add_train_args(p)
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--frac-bits", type=int, default=8, help="fixed-point bits of the scales (default: 8)")
    p.add_argument("--target", action="append", choices=["generic", "ice40"],
                   help="synthesis target, repeatable (default: generic and ice40)")
    p.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    p.set_defaults(func=cmd_flow)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "target", "") is None:
        args.target = ["generic", "ice40"]
    if getattr(args, "simulator", "") is None:
        args.simulator = ["verilator"]
    try:
        args.func(args)
    except HwgenError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
