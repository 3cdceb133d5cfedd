"""Integer golden inference from an artifact (int64 torch, no float anywhere)."""
from dataclasses import dataclass

import numpy as np
import torch

from .errors import HwgenError

__all__ = ["Result", "infer", "check_inputs"]


@dataclass
class Result:
    scores: np.ndarray        # int64 [N, n_classes]
    pred: np.ndarray          # int64 [N]; ties go to the lowest class index
    activations: list         # per hidden layer: uint8 [N, out] codes (a + 2^K - 1) / 2; K = 1: bit, 1 = +1


def check_inputs(model, x):
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != model.input_features:
        raise HwgenError(f"inputs have shape {x.shape}, the model takes [N, {model.input_features}]")
    if not np.issubdtype(x.dtype, np.integer):
        raise HwgenError(f"inputs must be integers, not {x.dtype}")
    hi = 2 ** model.input_bits - 1
    if x.size and (x.min() < 0 or x.max() > hi):
        raise HwgenError(f"inputs must lie in 0..{hi} ({model.input_bits}-bit unsigned), "
                         f"found {x.min()}..{x.max()}")
    return x.astype(np.int64)


def _accumulate(layer, a):
    """``Y`` (int64 ``[rows, out]``) of ``layer`` for fan-in vectors ``a`` (int64 ``[rows, fan_in]``)."""
    y = torch.zeros((a.shape[0], layer.out_features), dtype=torch.int64)
    for b, plane in enumerate(torch.from_numpy(layer.signed_planes())):
        y += (a @ plane.T) * torch.from_numpy(layer.alpha[:, b])
    return y


def _windows(layer, a):
    """im2col: int64 ``[N, H'*W', C*kh*kw]`` (fan-in order c, ky, kx) of the flattened maps ``a``."""
    c, h, w = layer.in_shape
    kh, kw = layer.kernel
    maps = a.reshape(a.shape[0], c, h, w)
    win = maps.unfold(2, kh, 1).unfold(3, kw, 1)             # [N, C, H', W', kh, kw]
    positions = (h - kh + 1) * (w - kw + 1)
    return win.permute(0, 2, 3, 1, 4, 5).reshape(a.shape[0], positions, c * kh * kw)


def _level_codes(a, bits):
    """Activation values as unsigned codes ``(a + 2^K - 1) / 2`` (K = 1: the bit, 1 = +1)."""
    return ((a + (2 ** bits - 1)) // 2).to(torch.uint8).numpy()


#: im2col elements (int64) held at once; bounds the memory of conv layers
#: (a 24x24 map with fan-in 288 is 166k elements per image).
CHUNK_ELEMENTS = 1 << 23


def infer(model, x):
    """Run the integer model on ``x`` (int [N, input_features]), in chunks of
    images small enough that a conv layer's windows fit in a few hundred MB."""
    x = check_inputs(model, x)
    per_image = max((int(np.prod(l.conv_shape[1:])) if l.op == "conv2d" else 1) * l.in_features
                    for l in model.layers)
    chunk = max(1, CHUNK_ELEMENTS // per_image)
    parts = [_infer(model, x[i:i + chunk]) for i in range(0, len(x), chunk)] or [_infer(model, x)]
    scores = np.concatenate([p[0] for p in parts])
    acts = [np.concatenate([p[1][k] for p in parts]) for k in range(len(parts[0][1]))]
    return Result(scores=scores, pred=scores.argmax(axis=1), activations=acts)


def _infer(model, x):
    a = torch.from_numpy(x)
    acts = []
    for layer in model.layers:
        n = a.shape[0]
        if layer.op == "conv2d":
            _, h, w = layer.conv_shape
            y = _accumulate(layer, _windows(layer, a).reshape(n * h * w, layer.in_features))
            y = y.reshape(n, h * w, layer.out_features)            # [N, H'*W', O]
        else:
            y = _accumulate(layer, a)
        if layer.output == "scores":
            return (y + torch.from_numpy(layer.bias)).numpy(), acts
        # activation value: 2c - (2^K - 1), c = thresholds met (K = 1: +-1)
        thr = torch.from_numpy(layer.threshold.reshape(layer.out_features, -1))   # [O, 2^K - 1]
        up = torch.from_numpy(layer.direction.astype(np.int64)).reshape(-1, 1) > 0
        y = y.unsqueeze(-1)
        c = torch.where(up, y >= thr, y <= thr).sum(-1)
        a = 2 * c - (2 ** layer.output_bits - 1)
        if layer.op == "conv2d":
            o, h, w = layer.conv_shape
            a = a.transpose(1, 2).reshape(n, o, h, w)
            if layer.pool > 1:  # max-pool; on +-1 bits it is an OR
                p = layer.pool
                a = a[:, :, :h // p * p, :w // p * p].reshape(n, o, h // p, p, w // p, p).amax(5).amax(3)
            a = a.reshape(n, layer.out_size)
        acts.append(_level_codes(a, layer.output_bits))
    raise AssertionError("the last layer produces scores")  # _validate guarantees it
