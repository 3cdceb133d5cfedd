"""Trained PyTorch model -> integer artifact.

:func:`export` takes any ``nn.Module`` whose eval-mode computation is a
chain of parts the integer format represents exactly, follows its
``forward`` with ``torch.fx`` (an ``nn.Sequential``, hwgen's own models, or a
user's subclass), and refuses everything else with an error that names the
module. What the parts become:

* Masks and bit planes are frozen from the final weights (Middle-Out).
* Per-bit scales become integers relative to a reference scale ``r``:
  ``alpha_b = round(2^F * mu_b / r)`` (``F = scale_frac_bits``, default 8),
  with ``r = mu_1`` of the neuron for threshold layers and the largest
  ``mu_1`` of the layer for the score layer. A positive per-neuron factor
  changes no threshold decision and a common one no argmax, so
  ``Y = sum_b alpha_b P_b`` approximates ``y * 2^F / r``. Scales may be per
  tensor or per output channel (``mu_b[o]``).
* A layer's bias, BatchNorm and sign fold into one integer threshold per
  neuron: with ``t = mean - bias + (theta - beta) * sqrt(var + eps) / gamma``
  (in the units of ``y``, the layer's output before its bias), gamma > 0
  fires iff ``Y >= ceil(T)``, gamma < 0 iff ``Y <= floor(T)``, where
  ``T = t * 2^F * s / r``; gamma == 0 is a constant neuron. Without a
  BatchNorm, ``mean = beta = 0`` and ``gamma = var + eps = 1``. ``s`` is the
  input scale: 1 for pixels and +-1 activations, ``2^(K-1)`` when the layer
  reads K-bit residual activations as odd integers. K-bit activations give
  ``2^K - 1`` thresholds per neuron (levels ``theta``; see
  :func:`_fold_batchnorm`).
* The output layer's bias becomes ``round(2^F * s * bias / r)``. A learned
  logit scale after it (a positive factor on the scores,
  :class:`hwgen.training.nn.LogitScale`) is dropped: it changes no argmax.
* ``MaxPool2d`` (window = stride, no padding) after the activation, or
  between the BatchNorm and the activation, is the format's OR pool; before
  the BatchNorm it is exact where no channel's gamma is negative.
  ``Dropout`` and ``Identity`` are the identity in eval mode; ``Flatten``,
  ``Unflatten`` and reshapes that keep the batch dimension keep the C-major
  element order the format uses.

All float arithmetic here is float64 and happens once; after export nothing
is float.
"""
import json
import math

import numpy as np
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..core import artifact
from ..core.artifact import Artifact, Layer
from ..errors import HwgenError
from .nn import HBBConv2d, HBBLinear, HBBTransformer, LogitScale, ResidualActivation, SignActivation, \
    finish_training, hbb_modules

__all__ = ["export", "export_model", "export_linear", "export_projections", "SUPPORTED"]

#: What :func:`export` accepts, as its error messages list it.
SUPPORTED = ("HBBLinear, HBBConv2d (with or without bias; stride 1, no padding), BatchNorm1d/2d, "
             "SignActivation, ResidualActivation, MaxPool2d (window = stride), Flatten, Unflatten, "
             "reshape/view/flatten keeping the batch dimension, Dropout, Identity, and a LogitScale "
             "after the last layer")

_HBB = (HBBLinear, HBBConv2d)
_ACTIVATIONS = (SignActivation, ResidualActivation)
_SKIP = (nn.Dropout, nn.Identity)
_RESHAPE_FUNCTIONS = {torch.flatten, torch.reshape}
_RESHAPE_METHODS = {"flatten", "reshape", "view", "contiguous"}


def export(model, *, input_bits, input_shape=None, frac_bits=8, meta=None):
    """The integer :class:`~hwgen.core.artifact.Artifact` of ``model``.

    ``model`` is any ``nn.Module`` whose eval-mode forward is a chain of the
    parts in :data:`SUPPORTED`; its input is ``input_bits``-bit unsigned
    integers (as floats, e.g. pixels 0..16 with ``input_bits=5``), shaped
    ``[N, *input_shape]``. ``input_shape`` may be left out where the first
    layer is an :class:`~hwgen.training.nn.HBBLinear` (``(in_features,)``) or the model
    has an ``image_shape``; a model that starts with a convolution needs it,
    e.g. ``(1, 8, 8)``. The artifact reads the input flattened (C-major).

    Export freezes the masks of the model's HBB layers on its final weights
    (:func:`hwgen.training.nn.finish_training`), so a model straight out of a plain
    training loop exports as it is; afterwards the model is back in the
    training mode it was in. ``meta`` (JSON) is stored in the artifact.

    Raises :class:`~hwgen.errors.HwgenError` naming the first module or
    operation that the integer format cannot represent exactly; nothing is
    dropped silently.
    """
    if not isinstance(model, nn.Module):
        raise HwgenError(f"export takes a torch.nn.Module, not a {type(model).__name__}")
    if isinstance(input_bits, bool) or not isinstance(input_bits, int) or not 1 <= input_bits <= 16:
        raise HwgenError(f"input_bits must be an integer within 1..16, not {input_bits!r}")
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, int) or not 0 <= frac_bits <= 24:
        raise HwgenError(f"frac_bits must be an integer within 0..24, not {frac_bits!r}")
    if meta is not None:
        try:
            json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise HwgenError(f"meta must be JSON (it is stored in the artifact's manifest): {exc}") from None
        if not isinstance(meta, dict):
            raise HwgenError(f"meta must be a JSON object (a dict), not {type(meta).__name__}")
    if not hbb_modules(model):
        raise HwgenError(f"the {type(model).__name__} has no HBBLinear or HBBConv2d layer: nothing to export "
                         f"(hwgen exports networks built from {SUPPORTED})")
    modes = {m: m.training for m in model.modules()}
    try:
        finish_training(model)
        model.eval()
        parts = _trace(model, input_bits, input_shape)
        layers = _to_layers(parts, input_bits, frac_bits)
    finally:
        for m, mode in modes.items():
            m.training = mode
    result = Artifact(layers=layers, input_features=layers[0].in_size, input_bits=input_bits,
                      scale_frac_bits=frac_bits, n_classes=layers[-1].out_features,
                      meta={"model": type(model).__qualname__} if meta is None else meta)
    try:
        artifact._validate(result)
    except artifact.ArtifactError as exc:
        raise HwgenError(f"the exported {type(model).__name__} is not a valid integer model: {exc}") from None
    return result


# -- following the forward pass -------------------------------------------------------------------------------

class _Tracer(fx.Tracer):
    """torch.fx tracing that keeps hwgen's layers and activations whole."""

    def is_leaf_module(self, m, qualname):
        return isinstance(m, (*_HBB, *_ACTIVATIONS, LogitScale)) or super().is_leaf_module(m, qualname)


class _Part:
    """One step of the chain: a module (``path`` its name in the model) or a
    reshape, with the shapes before and after it (batch dimension included)."""

    def __init__(self, node, module, in_shape, out_shape):
        self.node, self.module = node, module
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        self.path = str(node.target) if node.op == "call_module" else node.name

    def __str__(self):
        if self.module is not None:
            return f"{type(self.module).__name__} '{self.path}'"
        return f"'{_op_name(self.node)}' (at {self.node.name})"


def _op_name(node):
    if node.op == "call_function":
        return f"{getattr(node.target, '__module__', '') or ''}.{getattr(node.target, '__name__', node.target)}" \
            .lstrip(".")
    return f"Tensor.{node.target}" if node.op == "call_method" else f"{node.op} {node.target}"


def _example_input(model, input_bits, input_shape):
    if input_shape is None:
        input_shape = getattr(model, "image_shape", None)
    if input_shape is None:
        first = hbb_modules(model)[0]
        if isinstance(first, HBBConv2d):
            raise HwgenError(f"the {type(model).__name__} starts with a convolution: give input_shape=(C, H, W) "
                             f"of one input image")
        input_shape = (first.in_features,)
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list, torch.Size)) else (input_shape,)
    if not shape or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise HwgenError(f"input_shape must be a tuple of positive integers, not {input_shape!r}")
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 2 ** input_bits, (2, *shape), generator=gen).float()


def _trace(model, input_bits, input_shape):
    """The model's forward as a list of :class:`_Part`, checked to be one chain."""
    name = type(model).__name__
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:
        raise HwgenError(f"cannot follow the forward of the {name} with torch.fx ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); export takes a forward "
                         f"without data-dependent control flow, e.g. an nn.Sequential") from None
    gm = fx.GraphModule(model, graph)
    example = _example_input(model, input_bits, input_shape)
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise HwgenError(f"the forward of the {name} takes {len(placeholders)} inputs; export takes one")
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example)
    except Exception as exc:
        raise HwgenError(f"the {name} does not run on an input of shape {list(example.shape)} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                         f"check input_shape") from None
    return _chain(model, graph, placeholders[0])


def _is_tensor(node):
    return node.op != "output" and "tensor_meta" in node.meta


def _shape(node):
    return tuple(node.meta["tensor_meta"].shape)


def _chain(model, graph, start):
    parts, cur, seen = [], start, {start}
    while True:
        users = [u for u in cur.users if _is_tensor(u) or u.op == "output"]
        if len(users) != 1:
            raise HwgenError(f"the output of {_describe(model, cur)} feeds {len(users)} operations "
                             f"({', '.join(_describe(model, u) for u in users)}): export takes a chain, "
                             f"not a branch or a residual connection")
        nxt = users[0]
        inputs = [n for n in nxt.all_input_nodes if _is_tensor(n)]
        if nxt.op == "output":
            if nxt.args[0] is not cur:
                raise HwgenError("the forward must return one tensor (the class scores), not a tuple or dict")
            break
        if inputs != [cur]:
            others = [n for n in inputs if n is not cur]
            raise HwgenError(f"{_describe(model, nxt)} combines the running value with "
                             f"{', '.join(_describe(model, n) for n in others)} (a residual add, a "
                             f"concatenation or a parameter used in forward): export takes a chain of "
                             f"{SUPPORTED}")
        parts.append(_part(model, nxt, cur))
        seen.add(nxt)
        cur = nxt
    stray = [n for n in graph.nodes if _is_tensor(n) and n not in seen]
    if stray:
        raise HwgenError(f"{_describe(model, stray[0])} computes a tensor outside the chain of layers; export "
                         f"takes a chain of {SUPPORTED}")
    return parts


def _describe(model, node):
    if node.op == "call_module":
        return f"{type(model.get_submodule(node.target)).__name__} '{node.target}'"
    if node.op == "placeholder":
        return "the input"
    if node.op == "get_attr":
        return f"the tensor '{node.target}'"
    return f"'{_op_name(node)}' (at {node.name})"


def _part(model, node, prev):
    in_shape, out_shape = _shape(prev), _shape(node)
    if node.op == "call_module":
        return _Part(node, model.get_submodule(node.target), in_shape, out_shape)
    reshape = (node.op == "call_function" and node.target in _RESHAPE_FUNCTIONS) or \
        (node.op == "call_method" and node.target in _RESHAPE_METHODS)
    if not reshape:
        raise HwgenError(f"{_describe(model, node)} is not supported: export takes a chain of {SUPPORTED}")
    part = _Part(node, None, in_shape, out_shape)
    _check_reshape(part)
    return part


def _check_reshape(part):
    if len(part.out_shape) < 1 or part.out_shape[0] != part.in_shape[0]:
        raise HwgenError(f"{part} turns shape {list(part.in_shape)} into {list(part.out_shape)}: a reshape must "
                         f"keep the batch dimension")


# -- the chain as integer layers -------------------------------------------------------------------------------

class _Block:
    """One integer layer in the making: its HBB module, then what follows it."""

    def __init__(self, part):
        self.part, self.bn, self.act, self.pool, self.pool_before_bn = part, None, None, None, False


def _group(parts):
    """Split the chain into blocks (HBB layer, BatchNorm, activation, pool),
    refusing whatever cannot go where it stands."""
    blocks, tail = [], []
    for part in parts:
        m = part.module
        if isinstance(m, _SKIP):
            continue
        if m is None or isinstance(m, (nn.Flatten, nn.Unflatten)):
            _check_reshape(part)
            if blocks and (blocks[-1].act is None) and not tail:
                raise HwgenError(f"{part} follows {blocks[-1].part} before its activation; export takes "
                                 f"reshapes between layers only")
            continue
        if tail:
            raise HwgenError(f"{part} follows {tail[0]}, which only the class scores may have after them")
        if isinstance(m, _HBB):
            if blocks and blocks[-1].act is None:
                raise HwgenError(f"{part} reads the output of {blocks[-1].part} without a SignActivation or "
                                 f"ResidualActivation between them: the integer format passes binarized "
                                 f"activations between layers")
            blocks.append(_Block(part))
            continue
        if not blocks:
            raise HwgenError(f"{part} comes before the first HBBLinear / HBBConv2d: the first layer reads the "
                             f"unsigned integer inputs directly (export takes {SUPPORTED})")
        _attach(blocks[-1], part, tail)
    if not blocks or blocks[-1].act is not None or blocks[-1].bn is not None:
        last = blocks[-1]
        after = last.act or last.bn
        raise HwgenError(f"the network ends in {after} after {last.part}: the last layer must be an "
                         f"HBBLinear giving the class scores (a BatchNorm or activation on the scores is "
                         f"not an integer score)")
    return blocks


def _attach(block, part, tail):
    m, conv = part.module, isinstance(block.part.module, HBBConv2d)
    if isinstance(m, LogitScale):
        if block.act is not None or block.bn is not None:
            raise HwgenError(f"{part} follows a hidden layer; a LogitScale may only follow the last layer")
        tail.append(part)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if block.act is not None:
            raise HwgenError(f"{part} follows {block.act}: a BatchNorm goes between its layer and the "
                             f"activation")
        if block.bn is not None:
            raise HwgenError(f"{part} is a second BatchNorm after {block.part}: export takes one")
        want = nn.BatchNorm2d if conv else nn.BatchNorm1d
        if type(m) is not want:
            raise HwgenError(f"{part} follows the {'convolution' if conv else 'dense layer'} {block.part}: "
                             f"that takes a {want.__name__}")
        block.bn = part
    elif isinstance(m, _ACTIVATIONS):
        if block.act is not None:
            raise HwgenError(f"{part} is a second activation after {block.part}")
        block.act = part
    elif isinstance(m, nn.MaxPool2d):
        if not conv:
            raise HwgenError(f"{part} follows the dense layer {block.part}: max-pooling follows convolutions")
        if block.pool is not None:
            raise HwgenError(f"{part} is a second max-pool after {block.part}: the integer format has one "
                             f"pool per convolution")
        block.pool, block.pool_before_bn = part, block.bn is None and block.act is None
    else:
        raise HwgenError(f"{part} is not supported: export takes a chain of {SUPPORTED}")


def _to_layers(parts, input_bits, frac_bits):
    blocks = _group(parts)
    layers = []
    kind, bits, in_scale = "uint", input_bits, 1   # integer input = float activation * in_scale
    for i, block in enumerate(blocks):
        last = i == len(blocks) - 1
        module = block.part.module
        conv = isinstance(module, HBBConv2d)
        name = f"{'conv' if conv else 'fc'}{i}"
        _check_layer_input(block.part, conv)
        layer, ref = _integer_layer(name, module, kind, bits, frac_bits, last)
        if conv:
            layer.op, layer.in_shape, layer.kernel = "conv2d", block.part.in_shape[1:], tuple(module.kernel_size)
            layer.pool = _pool_size(block)
        bias = module.bias.detach().double().numpy() if module.bias is not None else np.zeros(len(ref))
        if last:
            layer.output = "scores"
            layer.bias = np.array([round(2 ** frac_bits * in_scale * b / r) for b, r in zip(bias, ref)],
                                  dtype=np.int64)
        else:
            act_bits = block.act.module.bits if isinstance(block.act.module, ResidualActivation) else 1
            _fold_batchnorm(layer, _affine(block), ref, frac_bits, in_scale, act_bits, bias)
            kind, bits, in_scale = "binary", act_bits, 2 ** (act_bits - 1)
        layers.append(layer)
    return layers


def _check_layer_input(part, conv):
    m = part.module
    if conv:
        if len(part.in_shape) != 4:
            raise HwgenError(f"{part} reads a tensor of shape {list(part.in_shape)}; a convolution reads "
                             f"[N, C, H, W]")
        if tuple(m.stride) != (1, 1) or tuple(m.dilation) != (1, 1) or m.groups != 1 or \
                (m.padding != "valid" and tuple(m.padding) != (0, 0)):
            raise HwgenError(f"{part} has stride {tuple(m.stride)}, padding {m.padding}, dilation "
                             f"{tuple(m.dilation)}, groups {m.groups}: the integer format's convolutions "
                             f"have stride 1, no padding, no dilation and one group")
    elif len(part.in_shape) != 2:
        raise HwgenError(f"{part} reads a tensor of shape {list(part.in_shape)}; a dense layer reads "
                         f"[N, features] (flatten first)")


def _pool_size(block):
    if block.pool is None:
        return 1
    part, m = block.pool, block.pool.module
    k = m.kernel_size if isinstance(m.kernel_size, int) else tuple(m.kernel_size)
    stride = k if m.stride is None else (m.stride if isinstance(m.stride, int) else tuple(m.stride))
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)   # noqa: E731
    if pair(k)[0] != pair(k)[1] or pair(stride) != pair(k) or pair(m.padding) != (0, 0) or \
            pair(m.dilation) != (1, 1) or m.ceil_mode or m.return_indices:
        raise HwgenError(f"{part} has kernel {k}, stride {stride}, padding {m.padding}, dilation {m.dilation}, "
                         f"ceil_mode {m.ceil_mode}: the integer format pools square windows with stride = "
                         f"window, no padding or dilation, floor mode")
    if block.pool_before_bn and block.bn is not None:
        gamma = _affine(block)[2]
        bad = np.flatnonzero(gamma < 0)
        if len(bad):
            raise HwgenError(f"{part} comes before {block.bn}, whose gamma is negative on channel(s) "
                             f"{', '.join(map(str, bad[:8]))}: there the pool would have to take the "
                             f"minimum; move the MaxPool2d after the BatchNorm")
    return pair(k)[0]


def _affine(block):
    """``(mean, std, gamma, beta)`` float64 arrays of the block's BatchNorm
    (eval mode), or of the identity where there is none."""
    out = block.part.module.weight.shape[0]
    if block.bn is None:
        return np.zeros(out), np.ones(out), np.ones(out), np.zeros(out)
    bn = block.bn.module
    if not bn.track_running_stats or bn.running_mean is None:
        raise HwgenError(f"{block.bn} keeps no running statistics (track_running_stats=False): in eval mode "
                         f"it normalises by each batch, which no fixed threshold can do")
    mean = bn.running_mean.double().numpy()
    std = np.sqrt(bn.running_var.double().numpy() + bn.eps)
    gamma = bn.weight.detach().double().numpy() if bn.affine else np.ones(out)
    beta = bn.bias.detach().double().numpy() if bn.affine else np.zeros(out)
    return mean, std, gamma, beta


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


def _fold_batchnorm(layer, affine, ref, frac_bits, in_scale, act_bits, bias):
    """The layer's bias, BatchNorm and (k-bit residual) sign activation ->
    integer thresholds.

    The activation of ``z = BN(y + bias)`` counts the levels
    ``theta_j = j 2^(2-K)`` (``|j| < 2^(K-1)``; K = 1: just 0) that ``z``
    reaches; ``z >= theta`` is ``y >= t`` (gamma > 0) or ``y <= t``
    (gamma < 0) with ``t = mean - bias + (theta - beta) std / gamma``, and
    ``y`` is ``Y r / (2^F in_scale)``.
    """
    mean, std, gamma, beta = affine
    half = 2 ** (act_bits - 1)
    thetas = [j * 2.0 ** (2 - act_bits) for j in range(-(half - 1), half)]
    lo, hi = layer.bounds()  # a threshold outside [lo, hi] just means "always" / "never"
    thr = np.empty((len(gamma), len(thetas)), np.int64)
    direction = np.where(gamma < 0, -1, 1).astype(np.int8)
    for o, (m, s, g, be) in enumerate(zip(mean - bias, std, gamma, beta)):
        for k, theta in enumerate(thetas):
            if g == 0:
                thr[o, k] = lo[o] if be >= theta else hi[o] + 1
                continue
            t = (m + (theta - be) * s / g) * 2 ** frac_bits * in_scale / ref[o]
            t = math.ceil(t) if g > 0 else math.floor(t)
            thr[o, k] = min(max(t, lo[o] - 1), hi[o] + 1)
    layer.threshold = thr[:, 0] if act_bits == 1 else thr
    layer.direction, layer.output_bits = direction, act_bits


# -- hwgen's own models ----------------------------------------------------------------------------------------

def export_model(model, info, input_bits, frac_bits=8):
    """Turn a trained :class:`hwgen.training.nn.HBBMLP` or :class:`hwgen.training.nn.HBBCNN`
    (``info``: the training record, stored as ``meta["training"]``) into an
    :class:`artifact.Artifact`: :func:`export` with hwgen's own metadata."""
    if isinstance(model, HBBTransformer):
        raise HwgenError(f"a {type(model).__name__} is not one integer network (it has float softmax and "
                         f"LayerNorms); export its binarized projections with export_projections")
    return export(model, input_bits=input_bits, frac_bits=frac_bits, meta={"training": info})


def export_linear(module, input_bits, frac_bits=8, name="fc0", meta=None):
    """One :class:`hwgen.training.nn.HBBLinear` (with or without bias) as a one-layer
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
    result = Artifact(layers=[layer], input_features=layer.in_features, input_bits=input_bits,
                      scale_frac_bits=frac_bits, n_classes=layer.out_features,
                      meta={"projection": name, "scale": float(ref[0]), **(meta or {})})
    artifact._validate(result)
    return result


def export_projections(model, info, input_bits, frac_bits=8):
    """``{name: Artifact}`` for every binarized projection of an
    :class:`hwgen.training.nn.HBBTransformer` (BMT): each is the integer
    matrix-vector product of that layer, ready for the golden reference and
    the RTL generator. The token embedding reads the image's own pixels
    (``input_bits`` of the dataset); the inner projections read float
    activations in the network, so their artifacts describe the datapath
    for ``input_bits``-wide unsigned inputs."""
    return {name: export_linear(m, input_bits, frac_bits, name, {"training": info})
            for name, m in model.projections().items()}
