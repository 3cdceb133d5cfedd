"""Training loop: deterministic, single-process, progress on stderr."""
import json
import sys
import time

import torch

from .data import load_dataset
from .errors import HwgenError
from .nn import HBBMLP
from .quant import parse_bits

__all__ = ["TrainConfig", "train", "save_checkpoint", "load_checkpoint", "evaluate"]

DEFAULTS = dict(dataset="digits", bits="1.4", hidden=[16, 16], epochs=40, batch_size=64,
                lr=0.01, seed=0, quantizer="bnn", threads=1)


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(x, dtype=torch.float32)).argmax(dim=1)
    return float((pred == torch.as_tensor(y)).float().mean())


def train(*, dataset="digits", bits="1.4", hidden=(16, 16), epochs=40, batch_size=64, lr=0.01,
          seed=0, quantizer="bnn", threads=1, log=sys.stderr):
    """Train an :class:`HBBMLP`; returns ``(model, info)``."""
    mix = parse_bits(bits)
    torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    data = load_dataset(dataset)
    model = HBBMLP(data.in_features, list(hidden), data.n_classes, mix=mix, quantizer=quantizer)
    x = torch.as_tensor(data.x_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        if log is not None and ((epoch + 1) % 10 == 0 or epoch + 1 == epochs):
            acc = evaluate(model, data.x_test, data.y_test)
            print(f"  epoch {epoch + 1:3d}/{epochs}  loss {total / len(x):.4f}  test acc {acc:.4f}"
                  f"  ({time.perf_counter() - t0:.1f} s)", file=log, flush=True)
    for m in model.modules():
        if hasattr(m, "update_bits"):
            m.update_bits()  # freeze the masks on the final weights
    info = dict(dataset=dataset, bits=str(bits), mix={str(b): p for b, p in mix.items()},
                hidden=list(hidden), epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                quantizer=quantizer, float_accuracy=evaluate(model, data.x_test, data.y_test))
    return model, info


def save_checkpoint(model, info, path):
    """A checkpoint is a torch ``state_dict`` saved without pickle of Python
    objects (``weights_only``-loadable) plus a JSON config."""
    torch.save({"state_dict": model.state_dict(), "config": json.dumps(info, sort_keys=True)}, path)


def load_checkpoint(path):
    try:
        blob = torch.load(path, weights_only=True)
        info = json.loads(blob["config"])
        data = load_dataset(info["dataset"])
        mix = {int(b): p for b, p in info["mix"].items()}
        model = HBBMLP(data.in_features, info["hidden"], data.n_classes, mix=mix,
                       quantizer=info["quantizer"])
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
