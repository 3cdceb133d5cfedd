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
    activations: list         # per hidden layer: uint8 [N, out] bits (1 = +1)


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


def infer(model, x):
    """Run the integer model on ``x`` (int [N, input_features])."""
    a = torch.from_numpy(check_inputs(model, x))
    acts = []
    for layer in model.layers:
        y = torch.zeros((a.shape[0], layer.out_features), dtype=torch.int64)
        for b, plane in enumerate(torch.from_numpy(layer.signed_planes())):
            y += (a @ plane.T) * torch.from_numpy(layer.alpha[:, b])
        if layer.output == "scores":
            scores = y + torch.from_numpy(layer.bias)
            break
        thr = torch.from_numpy(layer.threshold)
        fire = torch.where(torch.from_numpy(layer.direction.astype(np.int64)) > 0, y >= thr, y <= thr)
        acts.append(fire.to(torch.uint8).numpy())
        a = fire.to(torch.int64) * 2 - 1
    scores = scores.numpy()
    return Result(scores=scores, pred=scores.argmax(axis=1), activations=acts)
