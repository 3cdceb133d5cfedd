"""Integer golden inference from an artifact: int64 numpy, no float anywhere.

This module (like the whole artifact -> RTL -> synth -> sim -> equiv path)
does not import torch: whoever only receives an artifact needs numpy alone.
"""
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import HwgenError

__all__ = ["Result", "infer", "check_inputs", "layer_output"]


@dataclass
class Result:
    """What :func:`infer` returns for ``N`` input vectors."""
    scores: np.ndarray        # int64 [N, n_classes]
    pred: np.ndarray          # int64 [N]; ties go to the lowest class index
    activations: list         # per hidden layer: uint8 [N, out] codes (a + 2^K - 1) / 2; K = 1: bit, 1 = +1


def check_inputs(model, x):
    """``x`` as int64 ``[N, input_features]``, or an :class:`HwgenError`
    saying what is wrong with its shape, dtype or range."""
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


def _accumulate(layer, a, weights=None):
    """``Y`` (int64 ``[rows, out]``) of ``layer`` for fan-in vectors ``a``
    (int64 ``[rows, fan_in]``): ``a @ W.T`` with the layer's effective
    integer weights ``W = sum_b alpha_b m_b s_b``, which is
    ``sum_b alpha_b P_b`` exactly (the artifact's checks keep every partial
    sum inside int64)."""
    w = layer.weights() if weights is None else weights
    return np.asarray(a, dtype=np.int64) @ w.T


def _windows(layer, a):
    """im2col: int64 ``[N, H'*W', C*kh*kw]`` (fan-in order c, ky, kx) of the flattened maps ``a``."""
    c, h, w = layer.in_shape
    kh, kw = layer.kernel
    maps = a.reshape(a.shape[0], c, h, w)
    win = sliding_window_view(maps, (kh, kw), axis=(2, 3))    # [N, C, H', W', kh, kw]
    positions = (h - kh + 1) * (w - kw + 1)
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(a.shape[0], positions, c * kh * kw)


def _level_codes(a, bits):
    """Activation values as unsigned codes ``(a + 2^K - 1) / 2`` (K = 1: the bit, 1 = +1)."""
    return ((a + (2 ** bits - 1)) // 2).astype(np.uint8)


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
    weights = [layer.weights() for layer in model.layers]
    parts = [_infer(model, weights, x[i:i + chunk]) for i in range(0, len(x), chunk)] \
        or [_infer(model, weights, x)]
    scores = np.concatenate([p[0] for p in parts])
    acts = [np.concatenate([p[1][k] for p in parts]) for k in range(len(parts[0][1]))]
    return Result(scores=scores, pred=scores.argmax(axis=1), activations=acts)


def _infer(model, weights, a):
    acts = []
    for layer, w in zip(model.layers, weights):
        a = layer_output(layer, a, w)
        if layer.output == "scores":
            return a, acts
        acts.append(_level_codes(a, layer.output_bits))
    raise AssertionError("the last layer produces scores")  # _validate guarantees it


def layer_output(layer, a, weights=None):
    """One layer on int64 inputs ``a`` (``[N, in_size]``: pixels, or
    activation values ``2c - (2^K - 1)``): int64 ``[N, out_size]``, the
    activation values of a threshold layer (a conv layer's maps flattened
    C-major after its pool) or the scores of the last layer."""
    a = np.asarray(a, dtype=np.int64)
    n = a.shape[0]
    if layer.op == "conv2d":
        _, h, wd = layer.conv_shape
        y = _accumulate(layer, _windows(layer, a).reshape(n * h * wd, layer.in_features), weights)
        y = y.reshape(n, h * wd, layer.out_features)            # [N, H'*W', O]
    else:
        y = _accumulate(layer, a, weights)
    if layer.output == "scores":
        return y + layer.bias
    # activation value: 2c - (2^K - 1), c = thresholds met (K = 1: +-1)
    thr = layer.threshold.reshape(layer.out_features, -1)           # [O, 2^K - 1]
    up = layer.direction.astype(np.int64).reshape(-1, 1) > 0
    y = y[..., None]
    c = np.where(up, y >= thr, y <= thr).sum(-1, dtype=np.int64)
    out = 2 * c - (2 ** layer.output_bits - 1)
    if layer.op == "conv2d":
        o, h, wd = layer.conv_shape
        out = out.transpose(0, 2, 1).reshape(n, o, h, wd)
        if layer.pool > 1:  # max-pool; on +-1 bits it is an OR
            p = layer.pool
            out = out[:, :, :h // p * p, :wd // p * p].reshape(n, o, h // p, p, wd // p, p).max(5).max(3)
        out = out.reshape(n, layer.out_size)
    return out
