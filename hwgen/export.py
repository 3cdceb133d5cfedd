"""Trained PyTorch model -> integer artifact.

* Masks and bit planes are frozen from the final weights (Middle-Out).
* Per-bit scales become integers relative to a reference scale ``r``:
  ``alpha_b = round(2^F * mu_b / r)`` (``F = scale_frac_bits``, default 8),
  with ``r = mu_1`` of the neuron for threshold layers and the largest
  ``mu_1`` of the layer for the score layer. A positive per-neuron factor
  changes no threshold decision and a common one no argmax, so
  ``Y = sum_b alpha_b P_b`` approximates ``y * 2^F / r``. Scales may be per
  tensor or per output channel (``mu_b[o]``).
* BatchNorm + sign fold into one integer threshold per neuron: with
  ``t = mean - beta * sqrt(var + eps) / gamma`` (in the units of ``y``),
  gamma > 0 fires iff ``Y >= ceil(T)``, gamma < 0 iff ``Y <= floor(T)``, where
  ``T = t * 2^F * s / r``; gamma == 0 is a constant neuron. ``s`` is the
  input scale: 1 for pixels and +-1 activations, ``2^(K-1)`` when the layer
  reads K-bit residual activations as odd integers. K-bit activations give
  ``2^K - 1`` thresholds per neuron (see :func:`_fold_batchnorm`).
* The output layer's bias becomes ``round(2^F * s * bias / r)``. The learned
  logit scale of training (a positive factor on the scores,
  :class:`hwgen.nn.LogitScale`) is dropped: it changes no argmax.

All float arithmetic here is float64 and happens once; after export nothing
is float.
"""
import math

import numpy as np

from . import artifact
from .artifact import Layer, Model
from .errors import HwgenError

__all__ = ["export_model", "export_linear", "export_projections"]


def _integer_layer(name, module, input_kind, input_bits, frac_bits, common_ref):
    """Planes and integer scales of one HBB layer, plus the per-neuron
    reference scale ``ref[o]`` the layer's outputs are expressed in:
    ``mu_1[o]`` for threshold layers (any positive per-neuron factor keeps a
    threshold decision), one common value (the largest ``mu_1``) for the
    score layer, whose argmax needs a common factor."""
    mus, planes = module.binarized()
    nbits = module.nbits.reshape(module.weight.shape[0], -1).numpy().astype(np.uint8)
    max_bits = max(int(nbits.max()), 1)
    mu1 = mus[0] if mus else np.zeros(nbits.shape[0])
    ref = np.full_like(mu1, mu1.max()) if common_ref else mu1.copy()
    ref[~(ref > 0)] = 1.0
    alpha = np.zeros((nbits.shape[0], max_bits), np.int64)
    bits = np.zeros((max_bits, *nbits.shape), np.uint8)
    for b, (mu, plane) in enumerate(zip(mus, planes)):
        alpha[:, b] = [round(2 ** frac_bits * m / r) for m, r in zip(mu, ref)]
        bits[b] = plane.numpy() > 0
    layer = Layer(name=name, input=input_kind, input_bits=input_bits, output="threshold",
                  nbits=nbits, planes=bits, alpha=alpha)
    return layer, ref


def _fold_batchnorm(layer, bn, ref, frac_bits, in_scale, act_bits):
    """BatchNorm + the (k-bit residual) sign activation -> integer thresholds.

    The activation of ``z = BN(y)`` counts the levels ``theta_j = j 2^(2-K)``
    (``|j| < 2^(K-1)``; K = 1: just 0) that ``z`` reaches; ``z >= theta`` is
    ``y >= t`` (gamma > 0) or ``y <= t`` (gamma < 0) with
    ``t = mean + (theta - beta) std / gamma``, and ``y`` is ``Y r / (2^F in_scale)``.
    """
    mean = bn.running_mean.double().numpy()
    std = np.sqrt(bn.running_var.double().numpy() + bn.eps)
    gamma = bn.weight.detach().double().numpy()
    beta = bn.bias.detach().double().numpy()
    half = 2 ** (act_bits - 1)
    thetas = [j * 2.0 ** (2 - act_bits) for j in range(-(half - 1), half)]
    lo, hi = layer.bounds()  # a threshold outside [lo, hi] just means "always" / "never"
    thr = np.empty((len(gamma), len(thetas)), np.int64)
    direction = np.where(gamma < 0, -1, 1).astype(np.int8)
    for o, (m, s, g, be) in enumerate(zip(mean, std, gamma, beta)):
        for k, theta in enumerate(thetas):
            if g == 0:
                thr[o, k] = lo[o] if be >= theta else hi[o] + 1
                continue
            t = (m + (theta - be) * s / g) * 2 ** frac_bits * in_scale / ref[o]
            t = math.ceil(t) if g > 0 else math.floor(t)
            thr[o, k] = min(max(t, lo[o] - 1), hi[o] + 1)
    layer.threshold = thr[:, 0] if act_bits == 1 else thr
    layer.direction, layer.output_bits = direction, act_bits


def export_model(model, info, input_bits, frac_bits=8):
    """Turn a trained :class:`hwgen.nn.HBBMLP` or :class:`hwgen.nn.HBBCNN`
    into an :class:`artifact.Model`."""
    if not hasattr(model, "features"):
        raise HwgenError(f"a {type(model).__name__} is not one integer network (it has float softmax and "
                         f"LayerNorms); export its binarized projections with export_projections")
    model.eval()
    layers = []
    kind, bits = "uint", input_bits
    act_bits = model.act.bits
    in_scale = 1                      # integer input = float activation * in_scale
    shape = getattr(model, "image_shape", None)
    for block in model.features:
        conv = block["conv"]
        layer, ref = _integer_layer(f"conv{len(layers)}", conv, kind, bits, frac_bits, False)
        layer.op, layer.in_shape, layer.kernel = "conv2d", tuple(shape), tuple(conv.kernel_size)
        layer.pool = block["pool"].kernel_size if "pool" in block else 1
        _fold_batchnorm(layer, block["bn"], ref, frac_bits, in_scale, act_bits)
        layers.append(layer)
        shape = layer.out_shape
        kind, bits, in_scale = "binary", act_bits, 2 ** (act_bits - 1)
    for block in model.hidden:
        layer, ref = _integer_layer(f"fc{len(layers)}", block["linear"], kind, bits, frac_bits, False)
        _fold_batchnorm(layer, block["bn"], ref, frac_bits, in_scale, act_bits)
        layers.append(layer)
        kind, bits, in_scale = "binary", act_bits, 2 ** (act_bits - 1)
    layer, ref = _integer_layer(f"fc{len(layers)}", model.out, kind, bits, frac_bits, True)
    bias = model.out.bias.detach().double().numpy()
    layer.output = "scores"
    layer.bias = np.array([round(2 ** frac_bits * in_scale * b / r) for b, r in zip(bias, ref)], dtype=np.int64)
    layers.append(layer)
    input_features = layers[0].in_size
    result = Model(layers=layers, input_features=input_features, input_bits=input_bits,
                   scale_frac_bits=frac_bits, n_classes=model.out.out_features, meta={"training": info})
    artifact._validate(result)
    return result


def export_linear(module, input_bits, frac_bits=8, name="fc0", meta=None):
    """One :class:`hwgen.nn.HBBLinear` (with or without bias) as a one-layer
    integer model: ``scores = sum_b alpha_b P_b(x) + bias`` for unsigned
    ``input_bits``-wide inputs, in units of ``r / 2^F`` (``r`` the largest
    ``mu_1``). The same planes, scales and datapath as any network layer."""
    module.eval()
    layer, ref = _integer_layer(name, module, "uint", input_bits, frac_bits, True)
    layer.output = "scores"
    bias = module.bias.detach().double().numpy() if module.bias is not None else np.zeros(len(ref))
    layer.bias = np.array([round(2 ** frac_bits * b / r) for b, r in zip(bias, ref)], dtype=np.int64)
    if layer.out_features < 2:
        raise HwgenError(f"projection {name} has a single output; the integer format needs at least 2")
    result = Model(layers=[layer], input_features=layer.in_features, input_bits=input_bits,
                   scale_frac_bits=frac_bits, n_classes=layer.out_features,
                   meta={"projection": name, "scale": float(ref[0]), **(meta or {})})
    artifact._validate(result)
    return result


def export_projections(model, info, input_bits, frac_bits=8):
    """``{name: Model}`` for every binarized projection of an
    :class:`hwgen.nn.HBBTransformer` (BMT): each is the integer
    matrix-vector product of that layer, ready for the golden reference and
    the RTL generator. The token embedding reads the image's own pixels
    (``input_bits`` of the dataset); the inner projections read float
    activations in the network, so their artifacts describe the datapath
    for ``input_bits``-wide unsigned inputs."""
    return {name: export_linear(m, input_bits, frac_bits, name, {"training": info})
            for name, m in model.projections().items()}
