"""Trained PyTorch model -> integer artifact.

* Masks and bit planes are frozen from the final weights (Middle-Out).
* Per-bit scales become integers relative to the first bit's scale:
  ``alpha_b = round(2^F * mu_b / mu_1)`` (``F = scale_frac_bits``, default 8).
  A positive common factor changes neither a threshold decision nor an argmax,
  so ``Y = sum_b alpha_b P_b`` approximates ``y * 2^F / mu_1``.
* BatchNorm + sign fold into one integer threshold per neuron: with
  ``t = mean - beta * sqrt(var + eps) / gamma`` (in the units of ``y``),
  gamma > 0 fires iff ``Y >= ceil(T)``, gamma < 0 iff ``Y <= floor(T)``, where
  ``T = t * 2^F / mu_1``; gamma == 0 is a constant neuron.
* The output layer's bias becomes ``round(2^F * bias / mu_1)``.

All float arithmetic here is float64 and happens once; after export nothing
is float.
"""
import math

import numpy as np

from . import artifact
from .artifact import Layer, Model

__all__ = ["export_model"]


def _integer_layer(name, linear, input_kind, input_bits, frac_bits):
    mus, planes = linear.binarized()
    nbits = linear.nbits.numpy().astype(np.uint8)
    max_bits = max(int(nbits.max()), 1)
    mu_ref = mus[0] if mus and mus[0] > 0 else 1.0
    alpha = np.zeros((nbits.shape[0], max_bits), np.int64)  # per tensor: equal rows
    bits = np.zeros((max_bits, *nbits.shape), np.uint8)
    for b, (mu, plane) in enumerate(zip(mus, planes)):
        alpha[:, b] = round(2 ** frac_bits * mu / mu_ref)
        bits[b] = plane.numpy() > 0
    return Layer(name=name, input=input_kind, input_bits=input_bits, output="threshold",
                 nbits=nbits, planes=bits, alpha=alpha), mu_ref


def export_model(model, info, input_bits, frac_bits=8):
    """Turn a trained :class:`hwgen.nn.HBBMLP` into an :class:`artifact.Model`."""
    model.eval()
    layers = []
    kind, bits = "uint", input_bits
    for i, block in enumerate(model.hidden):
        layer, mu_ref = _integer_layer(f"fc{i}", block["linear"], kind, bits, frac_bits)
        bn = block["bn"]
        mean = bn.running_mean.double().numpy()
        std = np.sqrt(bn.running_var.double().numpy() + bn.eps)
        gamma = bn.weight.detach().double().numpy()
        beta = bn.bias.detach().double().numpy()
        lo, hi = layer.bounds()  # threshold outside [lo, hi] is just "always"/"never"
        thr = np.empty(len(gamma), np.int64)
        direction = np.where(gamma < 0, -1, 1).astype(np.int8)
        for o, (m, s, g, be) in enumerate(zip(mean, std, gamma, beta)):
            if g == 0:
                thr[o] = lo[o] if be >= 0 else hi[o] + 1
                continue
            t = (m - be * s / g) * 2 ** frac_bits / mu_ref
            t = math.ceil(t) if g > 0 else math.floor(t)
            thr[o] = min(max(t, lo[o] - 1), hi[o] + 1)
        layer.threshold, layer.direction = thr, direction
        layers.append(layer)
        kind, bits = "binary", 1
    layer, mu_ref = _integer_layer(f"fc{len(layers)}", model.out, kind, bits, frac_bits)
    bias = model.out.bias.detach().double().numpy()
    layer.output = "scores"
    layer.bias = np.array([round(2 ** frac_bits * b / mu_ref) for b in bias], dtype=np.int64)
    layers.append(layer)
    result = Model(layers=layers, input_features=model.hidden[0]["linear"].in_features if model.hidden
                   else model.out.in_features, input_bits=input_bits, scale_frac_bits=frac_bits,
                   n_classes=model.out.out_features, meta={"training": info})
    artifact._validate(result)
    return result
