"""Training loop: deterministic, progress on stderr, checkpoints without pickle."""
import json
import os
import sys
import time

import numpy as np
import torch

from .data import load_dataset
from ..errors import HwgenError
from .nn import HBBCNN, HBBMLP, HBBTransformer, finish_training, float_teacher, parse_conv_spec, set_progress
from .options import AUGMENTS, DEFAULTS, LEGACY, MODELS
from .quant import QUANTIZERS, SCALES, SELECTIONS, parse_bits

__all__ = ["DEFAULTS", "LEGACY", "DISTILL_TEMPERATURE", "train", "train_teacher", "save_checkpoint",
           "load_checkpoint", "load_teacher", "evaluate", "build_model", "default_threads"]

#: Softmax temperature of knowledge distillation (Hinton et al.): the
#: student matches the teacher's ``softmax(z / T)``; the loss is scaled by
#: ``T^2`` so that its gradients keep their size.
DISTILL_TEMPERATURE = 4.0


def augment_batch(x, shape, mode, gen, max_shift=2):
    """Random integer-preserving augmentation of a batch of flattened images:
    ``shift`` translates each image by up to ``max_shift`` pixels (zeros
    enter at the border); ``shift+flip`` also mirrors half of them left-right
    (for Fashion-MNIST, not for digits)."""
    if mode == "none":
        return x
    c, h, w = shape
    n = x.shape[0]
    img = x.reshape(n, c, h, w)
    s = max_shift
    padded = torch.nn.functional.pad(img, (s, s, s, s))
    shifts = torch.randint(0, 2 * s + 1, (n, 2), generator=gen)
    out = torch.empty_like(img)
    code = shifts[:, 0] * (2 * s + 1) + shifts[:, 1]
    for value in torch.unique(code).tolist():   # one slice per distinct shift, not per image
        idx = (code == value).nonzero().squeeze(1)
        dy, dx = divmod(value, 2 * s + 1)
        out[idx] = padded[idx, :, dy:dy + h, dx:dx + w]
    if mode == "shift+flip":
        flip = torch.rand(n, generator=gen) < 0.5
        out[flip] = out[flip].flip(-1)
    return out.reshape(n, -1)


def default_threads():
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def evaluate(model, x, y, batch=2048):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.as_tensor(x[i:i + batch], dtype=torch.float32)
            correct += int((model(xb).argmax(dim=1) == torch.as_tensor(y[i:i + batch])).sum())
    return correct / max(len(x), 1)


def _check_config(cfg):
    if cfg["model"] not in MODELS:
        raise HwgenError(f"unknown model {cfg['model']!r}; available: {', '.join(MODELS)}")
    if cfg["quantizer"] not in QUANTIZERS:
        raise HwgenError(f"unknown quantizer {cfg['quantizer']!r}; available: {', '.join(QUANTIZERS)}")
    if cfg["selection"] not in SELECTIONS:
        raise HwgenError(f"unknown bit selection {cfg['selection']!r}; available: {', '.join(SELECTIONS)}")
    if cfg["scale"] not in SCALES:
        raise HwgenError(f"unknown scale granularity {cfg['scale']!r}; available: {', '.join(SCALES)}")
    if cfg["recompute_every"] < 1:
        raise HwgenError(f"recompute_every must be at least 1 step, not {cfg['recompute_every']}")
    if not 0.0 <= cfg["freeze_after"] <= 1.0:
        raise HwgenError(f"freeze_after is a fraction of training in 0..1, not {cfg['freeze_after']}")
    if cfg["model"] == "transformer" and min(cfg["dim"], cfg["depth"], cfg["heads"]) < 1:
        raise HwgenError("transformer dim, depth and heads must each be at least 1")
    if cfg["augment"] not in AUGMENTS:
        raise HwgenError(f"unknown augmentation {cfg['augment']!r}; available: {', '.join(AUGMENTS)}")
    if not 0.0 <= cfg["dropout"] < 1.0:
        raise HwgenError(f"dropout must be within [0, 1), not {cfg['dropout']}")
    if not 1 <= cfg["act_bits"] <= 4:
        raise HwgenError(f"act_bits must be within 1..4, not {cfg['act_bits']}")
    if cfg["epochs"] < 1 or cfg["batch_size"] < 1:
        raise HwgenError("epochs and batch size must be at least 1")
    if not 0.0 <= cfg["distill"] <= 1.0:
        raise HwgenError(f"distill is the weight of the distillation loss, within 0..1, not {cfg['distill']}")
    if cfg["distill"] > 0 and cfg["model"] == "transformer":
        raise HwgenError("distillation (--distill) has a float teacher for the mlp and cnn models only")


def build_model(cfg):
    """The untrained network a config (with its ``input`` description) describes."""
    mix = {int(b): p for b, p in cfg["mix"].items()} if "mix" in cfg else parse_bits(cfg["bits"])
    kw = dict(mix=mix, quantizer=cfg["quantizer"], selection=cfg.get("selection", "middle-out"),
              scale=cfg.get("scale", "tensor"), recompute_every=cfg.get("recompute_every", 1),
              freeze_after=cfg.get("freeze_after", 1.0), group=cfg.get("mask_group"))
    try:
        shape, classes = cfg["input"]["shape"], cfg["input"]["classes"]
        net = dict(act_bits=cfg.get("act_bits", 1), dropout=cfg.get("dropout", 0.0),
                   logit_scale=cfg.get("logit_scale", LEGACY["logit_scale"]))
        if cfg.get("model", "mlp") == "cnn":
            return HBBCNN(shape, parse_conv_spec(cfg["conv"]), cfg["hidden"], classes, **net, **kw)
        if cfg.get("model") == "transformer":
            return HBBTransformer(shape, cfg["dim"], cfg["depth"], cfg["heads"], classes, **kw)
        return HBBMLP(int(np.prod(shape)), cfg["hidden"], classes, **net, **kw)
    except ValueError as exc:
        raise HwgenError(str(exc)) from None


def describe_input(data):
    return {"shape": list(data.image_shape), "bits": data.input_bits, "classes": data.n_classes}


def _config(overrides):
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown training options: {sorted(unknown)}")
    cfg = {**DEFAULTS, **overrides}
    cfg["hidden"] = list(cfg["hidden"])
    _check_config(cfg)
    torch.set_num_threads(int(cfg["threads"]) or default_threads())
    return cfg


def _fit(model, data, cfg, log, label="", teacher=None):
    """Adam with a cosine schedule over ``cfg``'s epochs, one pass over a
    seeded permutation per epoch; cross-entropy, mixed with the
    distillation loss towards ``teacher``'s scores if one is given."""
    x = torch.as_tensor(data.x_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train)
    epochs, batch_size = cfg["epochs"], cfg["batch_size"]
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(cfg["seed"])
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size
    total_steps = epochs * steps_per_epoch
    every = max(1, epochs // 4) if len(x) < 5000 else 1
    weight, temp = cfg["distill"], DISTILL_TEMPERATURE
    if teacher is not None:
        teacher.eval()
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for k, i in enumerate(range(0, len(x), batch_size)):
            set_progress(model, (epoch * steps_per_epoch + k) / total_steps)
            idx = perm[i:i + batch_size]
            xb = augment_batch(x[idx], data.image_shape, cfg["augment"], gen)
            scores = model(xb)
            loss = torch.nn.functional.cross_entropy(scores, y[idx])
            if teacher is not None:
                with torch.no_grad():
                    target = torch.log_softmax(teacher(xb) / temp, dim=1)
                kl = torch.nn.functional.kl_div(torch.log_softmax(scores / temp, dim=1), target,
                                                log_target=True, reduction="batchmean")
                loss = (1 - weight) * loss + weight * temp * temp * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        if log is not None and ((epoch + 1) % every == 0 or epoch + 1 == epochs):
            acc = evaluate(model, data.x_test, data.y_test)
            print(f"  {label}epoch {epoch + 1:3d}/{epochs}  loss {total / len(x):.4f}  test acc {acc:.4f}"
                  f"  ({time.perf_counter() - t0:.1f} s)", file=log, flush=True)


#: The settings a teacher depends on (and is cached under, by ``hwgen sweep``).
TEACHER_KEYS = ("dataset", "model", "conv", "hidden", "augment", "epochs", "batch_size", "lr", "seed")


def _build_teacher(cfg):
    conv = parse_conv_spec(cfg["conv"]) if cfg["model"] == "cnn" else None
    return float_teacher(cfg["input"]["shape"], conv, cfg["hidden"], cfg["input"]["classes"])


def train_teacher(*, log=sys.stderr, data=None, data_dir=None, **overrides):
    """Train the full-precision teacher that ``--distill`` distils from: the
    float twin of the configured MLP or CNN (:func:`hwgen.training.nn.float_teacher`),
    with the same data, schedule and seed. Returns ``(teacher, info)``."""
    cfg = _config(overrides)
    if cfg["model"] == "transformer":
        raise HwgenError("distillation (--distill) has a float teacher for the mlp and cnn models only")
    data = data or load_dataset(cfg["dataset"], data_dir)
    cfg["input"] = describe_input(data)
    torch.manual_seed(cfg["seed"])
    teacher = _build_teacher(cfg)
    _fit(teacher, data, {**cfg, "distill": 0.0}, log, label="teacher ")
    teacher.eval()
    info = {k: cfg[k] for k in TEACHER_KEYS}
    info.update(teacher=True, input=cfg["input"], float_accuracy=evaluate(teacher, data.x_test, data.y_test))
    return teacher, info


def train(*, log=sys.stderr, data=None, data_dir=None, teacher=None, **overrides):
    """Train an :class:`HBBMLP`, :class:`HBBCNN` or :class:`HBBTransformer`;
    returns ``(model, info)``.

    Keyword arguments are those of :data:`DEFAULTS`; ``threads=0`` means all
    cores. ``data`` may pass an already loaded :class:`~hwgen.training.data.Dataset`,
    ``data_dir`` where to find it. With ``distill > 0`` the loss mixes in
    the distillation loss towards ``teacher`` (a module giving class
    scores); without one, :func:`train_teacher` trains it first.
    """
    cfg = _config(overrides)
    mix = parse_bits(cfg["bits"])
    data = data or load_dataset(cfg["dataset"], data_dir)
    cfg["input"] = describe_input(data)
    teacher_info = None
    if cfg["distill"] > 0 and teacher is None:
        if log is not None:
            print(f"  training the float teacher ({cfg['epochs']} epochs) ...", file=log, flush=True)
        teacher, teacher_info = train_teacher(**{k: cfg[k] for k in TEACHER_KEYS}, threads=cfg["threads"],
                                              data=data, log=log)
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg)
    _fit(model, data, cfg, log, teacher=teacher if cfg["distill"] > 0 else None)
    finish_training(model)
    info = {k: cfg[k] for k in [*DEFAULTS, "input"] if k != "threads"}
    if cfg["model"] != "cnn":
        info.pop("conv")
    if cfg["model"] != "transformer":
        for k in ("dim", "depth", "heads"):
            info.pop(k)
    else:
        for k in ("hidden", "act_bits", "dropout", "logit_scale", "distill"):
            info.pop(k)
    info.update(bits=str(cfg["bits"]), mix={str(b): p for b, p in mix.items()},
                float_accuracy=evaluate(model, data.x_test, data.y_test))
    if cfg["distill"] > 0 and teacher is not None:
        info["teacher_accuracy"] = (teacher_info["float_accuracy"] if teacher_info
                                    else evaluate(teacher, data.x_test, data.y_test))
    return model, info


def save_checkpoint(model, info, path):
    """A checkpoint is a torch ``state_dict`` saved without pickle of Python
    objects (``weights_only``-loadable) plus a JSON config."""
    torch.save({"state_dict": model.state_dict(), "config": json.dumps(info, sort_keys=True)}, path)


def load_checkpoint(path, teacher=False):
    """``(model, info)`` of a checkpoint written by :func:`save_checkpoint`
    (a float teacher with ``teacher=True``)."""
    try:
        blob = torch.load(path, weights_only=True)
        info = json.loads(blob["config"])
        if bool(info.get("teacher")) != teacher:
            kind = "a float teacher" if info.get("teacher") else "an HBB network"
            raise HwgenError(f"checkpoint {path} holds {kind}, not {'a teacher' if teacher else 'an HBB network'}")
        if "input" not in info:  # checkpoints of hwgen <= 0.1
            info["input"] = describe_input(load_dataset(info["dataset"]))
        model = _build_teacher(info) if teacher else build_model(info)
        model.load_state_dict(blob["state_dict"])
    except HwgenError:
        raise
    except FileNotFoundError:
        raise HwgenError(f"checkpoint {path} does not exist") from None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise HwgenError(f"cannot load checkpoint {path}: not a readable hwgen checkpoint "
                         f"({exc.__class__.__name__}: {first})") from None
    model.eval()
    return model, info


def load_teacher(path):
    """``(teacher, info)`` saved by ``save_checkpoint(*train_teacher(...), path)``."""
    return load_checkpoint(path, teacher=True)
