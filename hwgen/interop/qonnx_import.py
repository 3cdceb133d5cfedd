"""QONNX model -> integer artifact, exactly (``hwgen import``, :func:`from_qonnx`).

The graph (after qonnx's own cleanup: shape inference, constant folding,
unique names) is read node by node as the integers it denotes. Every float
constant is an exact rational and every comparison is made exactly
(:mod:`hwgen.interop.exact`); nothing is decided by float rounding:

* the input quantizer (``Quant`` / ``BipolarQuant`` on the graph input)
  fixes the unsigned codes the hardware reads and what value each stands
  for (``value = a * code + b``);
* a ``MatMul`` / ``Gemm`` / ``Conv`` whose weight is a quantized constant
  (``Quant`` or ``BipolarQuant`` of an initializer) starts a layer: its
  integer weights times per-neuron factors (weight scale times input scale);
  several such products of one input summed (``Add`` / ``Sum``, each with its
  own per-channel ``Mul``) are bit-planes, which is how :func:`to_qonnx`
  writes hwgen's own layers;
* per-channel ``Add`` / ``Sub`` / ``Mul`` / ``Div`` by constants, ``Gemm``
  bias, ``BatchNormalization``, ``Relu`` and ``MaxPool`` follow it;
* the next activation quantizer (``BipolarQuant``, ``Quant``, ``Sign``,
  ``MultiThreshold``) closes the layer: each of its output levels becomes one
  integer threshold on the layer's sum, found by inverting the chain exactly;
* the last layer's sum, after its affine chain, is the class scores; a final
  ``ArgMax`` / ``TopK`` (k = 1) is the argmax, ties to the lowest index.

Anything else is refused with an error naming the node, its op type and what
is supported. Integer weights become the artifact's bit-planes: ternary
weights one plane (0 = pruned), other integers the fewest planes (at most
:data:`~hwgen.core.artifact.MAX_BITS`) with per-neuron integer scales.
"""
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from itertools import product
from pathlib import Path

import numpy as np

from ..core import artifact as _artifact
from ..core.artifact import MAX_BITS, Artifact, Layer
from ..errors import HwgenError, NotInstalledError
from .exact import Surd, ceil, exact, floor

__all__ = ["from_qonnx", "SUPPORTED_OPS", "require_onnx"]

#: The op types :func:`from_qonnx` maps, as its error messages list them.
SUPPORTED_OPS = ("Quant, BipolarQuant, MultiThreshold, MatMul, Gemm, Conv, Add, Sub, Sum, Mul, Div, "
                 "BatchNormalization, Relu, Sign, MaxPool, Flatten, Reshape, Identity, ArgMax, TopK")
_QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "finn")
_INSTALL = "pip install 'hwgen[onnx]'"
_LIMIT = 2 ** 40            # the artifact's bound on |alpha|, |bias|, |threshold|
_FRAC_BITS = 8              # where a score bias cannot be exact: its rounding, in 2^-8 of the score unit


def require_onnx():
    """Import onnx and qonnx, or say which extra installs them."""
    try:
        import onnx  # noqa: F401
        import qonnx  # noqa: F401
    except ImportError as exc:
        raise NotInstalledError(f"QONNX import and export need onnx and qonnx ({exc.name} is missing): "
                                f"{_INSTALL}") from None


# -- the values a tensor can hold ------------------------------------------------------------------------------

@dataclass
class _Const:
    """A float constant (an initializer or a folded one)."""
    value: np.ndarray


@dataclass
class _QConst:
    """A quantized constant: ``value = q * scale`` exactly (``q`` integer)."""
    q: np.ndarray           # int64
    scale: np.ndarray       # float, broadcastable to q
    node: str


@dataclass
class _Act:
    """A quantized activation the hardware carries as integer codes:
    ``value = a * code + b``. The graph input's codes are unsigned
    (``kind = "uint"``); a layer's are the odd levels ``2c - (2^K - 1)``."""
    shape: tuple            # without the batch dimension
    a: Fraction
    b: Fraction
    kind: str
    bits: int
    layer: int              # index of the layer that produced it, -1: the graph input
    pooled: bool = False


@dataclass
class _Lin:
    """A layer under construction: ``y[o] = sum_t factor[t][o] * (Q_t x)[o] + offset[o]``
    then the elementwise ``post`` chain."""
    source: _Act
    op: str                 # dense / conv2d
    terms: list             # [(Q int64 [O, I], [Fraction per neuron])]
    offset: list            # [Surd per neuron]
    shape: tuple            # (O,) or (O, H', W')
    kernel: tuple = None
    post: list = field(default_factory=list)   # ("affine", [k], [c]) or ("relu",)
    pool: int = 1
    pool_at: int = None     # len(post) when the MaxPool came
    nodes: list = field(default_factory=list)

    @property
    def out(self):
        return self.shape[0]


# -- reading the file ------------------------------------------------------------------------------------------

def _load_model(source):
    """A qonnx ``ModelWrapper`` of ``source`` (a path, a ``ModelProto`` or a ModelWrapper)."""
    require_onnx()
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    if isinstance(source, ModelWrapper):
        return ModelWrapper(source.model), "<ModelWrapper>"
    if isinstance(source, onnx.ModelProto):
        return ModelWrapper(source), "<ModelProto>"
    path = Path(source)
    if not path.is_file():
        raise HwgenError(f"ONNX model {path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        proto = onnx.load(str(path))     # external data (model.onnx.data) next to the file
    except Exception as exc:   # protobuf DecodeError, missing external data, ...: the file is not ONNX
        raise HwgenError(f"{path} is not a readable ONNX model ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None
    return ModelWrapper(proto), path.name


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "no detail"


def _clean(wrapper, where):
    import onnx
    from qonnx.util.cleanup import cleanup_model
    try:
        onnx.checker.check_model(wrapper.model)
    except Exception as exc:
        raise HwgenError(f"{where} fails onnx.checker: {_first_line(exc)}") from None
    try:
        return cleanup_model(wrapper)
    except Exception as exc:
        raise HwgenError(f"{where}: qonnx could not clean up the graph ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None


# -- the importer ----------------------------------------------------------------------------------------------

def from_qonnx(source):
    """The :class:`~hwgen.core.artifact.Artifact` of a QONNX model.

    ``source`` is a path to an ``.onnx`` file (external data next to it is
    read too), an ``onnx.ModelProto`` or a qonnx ``ModelWrapper``. Raises
    :class:`~hwgen.errors.HwgenError` naming the first node it cannot
    represent exactly, and :class:`~hwgen.errors.NotInstalledError` when the
    ``onnx`` extra is missing. A model written by :func:`to_qonnx` comes back
    byte-identical (names, metadata and all)."""
    wrapper, where = _load_model(source)
    wrapper = _clean(wrapper, where)
    try:
        return _Importer(wrapper, where).run()
    except HwgenError:
        raise
    except Exception as exc:   # outside any one node: the graph's inputs, outputs or metadata
        raise HwgenError(f"{where}: the graph cannot be read ({type(exc).__name__}: {_first_line(exc)})") from None


class _Importer:
    def __init__(self, wrapper, where):
        self.model, self.where = wrapper, where
        self.graph = wrapper.graph
        self.values = {}
        self.layers = []        # Layer, in order
        self.input_quant = None
        self.notes = []
        self.hwgen = self._hwgen_metadata()

    # -- helpers
    def fail(self, node, msg):
        return HwgenError(f"{self.where}: node {node.name!r} ({node.op_type}): {msg}")

    def _hwgen_metadata(self):
        props = {p.key: p.value for p in self.model.model.metadata_props}
        if "hwgen" not in props:
            return None
        try:
            info = json.loads(props["hwgen"])
            assert isinstance(info, dict) and isinstance(info.get("layers"), list)
        except (ValueError, AssertionError):
            raise HwgenError(f"{self.where}: metadata_props 'hwgen' is not the JSON hwgen writes") from None
        info["nbits"] = {k[len("hwgen.nbits."):]: v for k, v in props.items() if k.startswith("hwgen.nbits.")}
        return info

    def attrs(self, node):
        from onnx import helper
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def value(self, node, i):
        if i >= len(node.input) or not node.input[i]:
            raise self.fail(node, f"input {i} is missing")
        name = node.input[i]
        if name in self.values:
            return self.values[name]
        init = self.model.get_initializer(name)
        if init is not None:
            return _Const(np.asarray(init))
        raise self.fail(node, f"input {name!r} is neither a graph input, an initializer nor computed before it")

    def const(self, node, i, what):
        v = self.value(node, i)
        if not isinstance(v, _Const):
            raise self.fail(node, f"{what} (input {i}) must be a constant")
        return v.value

    def scalar(self, node, i, what):
        arr = self.const(node, i, what)
        if arr.size != 1:
            raise self.fail(node, f"{what} must be one number (per tensor), has shape {list(arr.shape)}")
        return arr.reshape(-1)[0]

    def shape_of(self, tensor):
        shape = self.model.get_tensor_shape(tensor)
        return tuple(shape) if shape is not None else None

    # -- the walk
    def run(self):
        g = self.graph
        inputs = [i for i in g.input if self.model.get_initializer(i.name) is None]
        if len(inputs) != 1 or len(g.output) != 1:
            raise HwgenError(f"{self.where}: the graph must have one input and one output, has "
                             f"{len(inputs)} and {len(g.output)}")
        self.values[inputs[0].name] = "input"
        self.input_name = inputs[0].name
        shape = self.shape_of(inputs[0].name)
        if not shape or shape[0] != 1 or any(not isinstance(d, int) or d < 1 for d in shape):
            raise HwgenError(f"{self.where}: the graph input {inputs[0].name!r} needs a fixed shape "
                             f"[1, ...], has {shape}")
        self.input_shape = shape[1:]
        for node in g.node:
            handler = getattr(self, f"op_{node.op_type}", None)
            if handler is None or (node.domain not in ("", "ai.onnx") and node.domain not in _QONNX_DOMAINS):
                raise self.fail(node, f"op {node.op_type!r} (domain {node.domain!r}) is not supported; "
                                f"hwgen maps {SUPPORTED_OPS}")
            try:
                out = handler(node)
            except HwgenError:
                raise
            except Exception as exc:   # a malformed node (wrong arity, odd attribute types): name it
                raise self.fail(node, f"cannot be read ({type(exc).__name__}: {_first_line(exc)})") from None
            outs = out if isinstance(out, tuple) else (out,)
            for name, v in zip(node.output, outs):
                if name:
                    self.values[name] = v
        result = self.values.get(g.output[0].name)
        if isinstance(result, _Lin):
            self.scores(result)
        elif result != "argmax":
            raise HwgenError(f"{self.where}: the graph output {g.output[0].name!r} is not the class scores "
                             f"of a quantized layer (nor their ArgMax)")
        return self.build()

    # -- constants and quantizers
    def quant_params(self, node):
        a = self.attrs(node)
        signed, narrow = int(a.get("signed", 1)), int(a.get("narrow", 0))
        mode = a.get("rounding_mode", b"ROUND")
        mode = (mode.decode() if isinstance(mode, bytes) else str(mode)).upper()
        if mode not in _ROUNDING:
            raise self.fail(node, f"rounding_mode {mode!r} is not one of {', '.join(_ROUNDING)}")
        bits = self.scalar(node, 3, "bitwidth")
        if float(bits) != int(bits) or not 1 <= int(bits) <= 32:
            raise self.fail(node, f"bitwidth {float(bits)} is not an integer within 1..32 "
                            f"(a non-integer quantizer cannot be represented)")
        return int(bits), signed, narrow, mode

    def op_Quant(self, node):
        x = self.value(node, 0)
        bits, signed, narrow, mode = self.quant_params(node)
        if isinstance(x, _Const):
            return self.quantize_constant(node, x.value, bits, signed, narrow, mode)
        scale = self.scalar(node, 1, "scale")
        zp = self.scalar(node, 2, "zero point")
        if not float(scale) > 0:
            raise self.fail(node, f"scale {float(scale)} must be positive")
        lo, hi = _int_range(bits, signed, narrow)
        if x == "input":
            return self.input_quantizer(node, scale, zp, lo, hi, mode, bits, signed, narrow)
        if isinstance(x, _Lin):
            s, z = exact(scale), exact(zp)
            if bits == 1 and signed:        # qonnx: a signed 1-bit Quant is bipolar, +1 iff x/s + zp >= 0
                return self.close(node, x, [[("ge", -z * s)]], 1, s, -z * s)
            levels = hi - lo + 1
            k = max(1, (levels - 1).bit_length())
            if k > 4:
                raise self.fail(node, f"a {bits}-bit activation ({levels} levels) is wider than the 4 bits "
                                f"(16 levels) a threshold layer produces")
            conds = [[_level(mode, lo + j, s, z)] for j in range(1, levels)]
            conds += [[("never",)]] * (2 ** k - levels)
            return self.close(node, x, conds, k, s / 2, s * (Fraction(2 ** k - 1, 2) + lo - z))
        raise self.fail(node, "a quantizer on an already quantized tensor is not supported")

    def quantize_constant(self, node, w, bits, signed, narrow, mode):
        """qonnx's own integer quantization of a constant (its float32 arithmetic: the integers the
        reference executor computes), kept as integers and a scale."""
        from qonnx.custom_op.general.quant import max_int, min_int, resolve_rounding_mode
        scale = self.const(node, 1, "scale")
        zp = self.const(node, 2, "zero point")
        if not (np.asarray(scale) > 0).all():
            raise self.fail(node, "a weight scale is not positive")
        y = w / scale + zp
        if bits == 1 and signed:
            y = np.where(y >= 0.0, 1.0, -1.0).astype(y.dtype)
        else:
            y = np.clip(y, min_int(signed, narrow, bits), max_int(signed, narrow, bits))
            y = resolve_rounding_mode(mode)(y)
        q = y - zp
        if not np.all(q == np.round(q)):
            raise self.fail(node, "its zero point is not an integer: the weights are not integers times a scale")
        if np.abs(q).max(initial=0) >= 2 ** 31:
            raise self.fail(node, "quantized weights exceed 2^31")
        q = np.broadcast_to(q, np.broadcast_shapes(q.shape, np.shape(scale))).astype(np.int64)
        return _QConst(q, np.asarray(scale, dtype=np.float64), node.name)

    def op_BipolarQuant(self, node):
        x = self.value(node, 0)
        if isinstance(x, _Const):
            scale = self.const(node, 1, "scale")
            if not (np.asarray(scale) > 0).all():
                raise self.fail(node, "a weight scale is not positive")
            q = np.where(x.value / scale >= 0.0, 1, -1)
            q = np.broadcast_to(q, np.broadcast_shapes(q.shape, np.shape(scale))).astype(np.int64)
            return _QConst(q, np.asarray(scale, dtype=np.float64), node.name)
        s = exact(self.scalar(node, 1, "scale"))
        if not s > 0:
            raise self.fail(node, f"scale {float(s)} must be positive")
        if x == "input":
            self.input_quant = {"op": "BipolarQuant", "scale": float(s)}
            return _Act(self.input_shape, 2 * s, -s, "uint", 1, -1)   # code 1 = +s, 0 = -s
        if isinstance(x, _Lin):
            return self.close(node, x, [[("ge", Fraction(0))]], 1, s, Fraction(0))
        raise self.fail(node, "a quantizer on an already quantized tensor is not supported")

    def op_Sign(self, node):
        x = self.value(node, 0)
        if not isinstance(x, _Lin):
            raise self.fail(node, "Sign must follow a quantized layer")
        return self.close(node, x, [[("gt", Fraction(0))]], 1, Fraction(1), Fraction(0), sign=True)

    def op_MultiThreshold(self, node):
        x = self.value(node, 0)
        if not isinstance(x, _Lin):
            raise self.fail(node, "MultiThreshold must follow a quantized layer")
        a = self.attrs(node)
        layout = a.get("data_layout", b"")
        layout = layout.decode() if isinstance(layout, bytes) else str(layout)
        if layout not in ("", "NCHW", "NC"):
            raise self.fail(node, f"data_layout {layout!r}: only channels-first (NCHW / NC) is supported")
        t = self.const(node, 1, "thresholds")
        if t.ndim != 2 or t.shape[0] not in (1, x.out):
            raise self.fail(node, f"thresholds have shape {list(t.shape)}, expected [1 or {x.out}, n]")
        n = t.shape[1]
        k = max(1, n.bit_length())
        if n < 1 or k > 4:
            raise self.fail(node, f"{n} thresholds per channel: a threshold layer produces 1..15")
        t = np.broadcast_to(t, (x.out, n))
        conds = [[("ge", exact(t[o, i])) for o in range(x.out)] for i in range(n)]
        conds += [[("never",)]] * (2 ** k - 1 - n)
        scale, bias = exact(a.get("out_scale", 1.0)), exact(a.get("out_bias", 0.0))
        if scale == 0:
            raise self.fail(node, "out_scale is 0: the output is a constant")
        return self.close(node, x, conds, k, scale / 2, scale * Fraction(2 ** k - 1, 2) + bias)

    def input_quantizer(self, node, scale, zp, lo, hi, mode, bits, signed, narrow):
        codes = hi - lo
        width = max(1, codes.bit_length())
        if width > 16:
            raise self.fail(node, f"the input quantizer has {codes + 1} levels; hwgen reads at most 16-bit inputs")
        s, z = exact(scale), exact(zp)
        self.input_quant = {"op": "Quant", "scale": float(scale), "zero_point": float(zp), "bit_width": bits,
                            "signed": bool(signed), "narrow": bool(narrow), "rounding_mode": mode,
                            "code_offset": lo}
        return _Act(self.input_shape, s, (lo - z) * s, "uint", width, -1)

    # -- linear layers
    def start_layer(self, node, x, w, op, kernel=None):
        if not isinstance(x, _Act):
            what = "a float tensor" if x == "input" else "a quantized layer's sum (quantize it first)" \
                if isinstance(x, _Lin) else "a constant"
            raise self.fail(node, f"its input is {what}: hwgen maps layers that read quantized activations")
        if not isinstance(w, tuple):
            raise self.fail(node, "its weight is not quantized (a float weight): hwgen maps Quant / BipolarQuant "
                            "weights")
        q, scale = w
        out = q.shape[0]
        rows = np.broadcast_to(scale, q.shape).reshape(out, -1)
        if not (rows == rows[:, :1]).all():
            raise self.fail(node, "its weight scale varies along the fan-in; hwgen needs one scale per output "
                            "channel")
        if x.a == 0:
            raise self.fail(node, "its input is a constant (scale 0)")
        q2 = q.reshape(out, -1)
        factors = [exact(s) * x.a for s in rows[:, 0]]
        offset = [Surd(exact(s) * x.b * int(row.sum())) for s, row in zip(rows[:, 0], q2)]
        if op == "conv2d":
            c, h, wd = x.shape
            shape = (out, h - kernel[0] + 1, wd - kernel[1] + 1)
        else:
            shape = (out,)
        return _Lin(x, op, [(q2, factors)], offset, shape, kernel, nodes=[node.name])

    def op_MatMul(self, node):
        x, w = self.value(node, 0), self.value(node, 1)
        if isinstance(x, _Act) and len(x.shape) != 1:
            raise self.fail(node, f"it reads a {list(x.shape)} map; Flatten it first")
        if isinstance(w, _QConst):
            if w.q.ndim != 2 or (isinstance(x, _Act) and w.q.shape[0] != x.shape[0]):
                raise self.fail(node, f"weight shape {list(w.q.shape)} does not match the input {x.shape}")
            w = (w.q.T, np.broadcast_to(w.scale, w.q.shape).T)
        return self.start_layer(node, x, w, "dense")

    def op_Gemm(self, node):
        a = self.attrs(node)
        x, w = self.value(node, 0), self.value(node, 1)
        if a.get("transA", 0):
            raise self.fail(node, "transA=1 is not supported")
        if isinstance(x, _Act) and len(x.shape) != 1:
            raise self.fail(node, f"it reads a {list(x.shape)} map; Flatten it first")
        if isinstance(w, _QConst):
            if w.q.ndim != 2:
                raise self.fail(node, f"weight has shape {list(w.q.shape)}, expected 2-D")
            scale = np.broadcast_to(w.scale, w.q.shape)
            w = (w.q, scale) if a.get("transB", 0) else (w.q.T, scale.T)
            if isinstance(x, _Act) and w[0].shape[1] != x.shape[0]:
                raise self.fail(node, f"weight shape {list(w[0].shape)} does not match the input {x.shape}")
        lin = self.start_layer(node, x, w, "dense")
        alpha = exact(a.get("alpha", 1.0))
        if alpha != 1:
            self.scale_lin(node, lin, [alpha] * lin.out)
        if len(node.input) > 2 and node.input[2]:
            bias = self.channel_vector(node, self.bias_value(node, 2), lin)
            beta = exact(a.get("beta", 1.0))
            lin.offset = [o + beta * b for o, b in zip(lin.offset, bias)]
        return lin

    def op_Conv(self, node):
        a = self.attrs(node)
        x, w = self.value(node, 0), self.value(node, 1)
        if isinstance(x, _Act) and len(x.shape) != 3:
            raise self.fail(node, f"it reads a {list(x.shape)} tensor, not a [C, H, W] map")
        if isinstance(w, _QConst):
            if w.q.ndim != 4 or (isinstance(x, _Act) and w.q.shape[1] != x.shape[0]):
                raise self.fail(node, f"weight shape {list(w.q.shape)} does not match the input {x.shape}")
            kernel = tuple(w.q.shape[2:])
            for attr, want in (("strides", [1, 1]), ("dilations", [1, 1]), ("pads", [0, 0, 0, 0]), ("group", 1)):
                if attr in a and list(np.atleast_1d(a[attr])) != list(np.atleast_1d(want)):
                    raise self.fail(node, f"{attr} {a[attr]} is not supported (hwgen convolutions: stride 1, "
                                    f"no padding, no dilation, one group)")
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
                raise self.fail(node, f"auto_pad {a['auto_pad']!r} pads the input; hwgen convolutions use none")
            if isinstance(x, _Act) and (kernel[0] > x.shape[1] or kernel[1] > x.shape[2]):
                raise self.fail(node, f"kernel {kernel} is larger than the {x.shape[1:]} map")
            w = (w.q, w.scale)
        else:
            kernel = None
        lin = self.start_layer(node, x, w, "conv2d", kernel)
        if len(node.input) > 2 and node.input[2]:
            bias = self.channel_vector(node, self.bias_value(node, 2), lin)
            lin.offset = [o + b for o, b in zip(lin.offset, bias)]
        return lin

    def bias_value(self, node, i):
        v = self.value(node, i)
        if isinstance(v, _QConst):
            return v.q * v.scale, [exact(q) * exact(s) for q, s in
                                   zip(v.q.reshape(-1), np.broadcast_to(v.scale, v.q.shape).reshape(-1))]
        if isinstance(v, _Const):
            return v.value, None
        raise self.fail(node, f"input {i} must be a constant")

    def channel_vector(self, node, value, lin):
        """A constant broadcast against the layer's ``[1, O, ...]`` output, as one exact value per
        channel; refuses one that varies within a channel."""
        arr, exact_values = value if isinstance(value, tuple) else (value, None)
        arr = np.asarray(arr)
        full = (1, *lin.shape)
        try:
            b = np.broadcast_to(arr, np.broadcast_shapes(arr.shape, full))
        except ValueError:
            raise self.fail(node, f"constant of shape {list(arr.shape)} does not broadcast to {list(full)}") from None
        if b.shape != full:
            raise self.fail(node, f"constant of shape {list(arr.shape)} changes the shape {list(full)}")
        rows = np.moveaxis(b, 1, 0).reshape(lin.out, -1)
        if not (rows == rows[:, :1]).all():
            raise self.fail(node, "the constant varies within a channel; hwgen folds one value per channel")
        if exact_values is not None and len(exact_values) == lin.out:
            return exact_values
        return [exact(v) for v in rows[:, 0]]

    def other(self, node):
        """``(lin, constant input index)`` of a binary elementwise node with one layer input."""
        a, b = self.value(node, 0), self.value(node, 1)
        if isinstance(a, _Lin) and isinstance(b, (_Const, _QConst)):
            return a, 1, False
        if isinstance(b, _Lin) and isinstance(a, (_Const, _QConst)):
            return b, 0, True
        if isinstance(a, _Lin) and isinstance(b, _Lin):
            return None, None, None
        kinds = {type(v).__name__.strip("_") if not isinstance(v, str) else v for v in (a, b)}
        raise self.fail(node, f"an elementwise op on {' and '.join(sorted(kinds))}: hwgen folds constants "
                        f"into a layer before its quantizer")

    def elementwise_const(self, node, lin, i):
        v = self.value(node, i)
        return self.channel_vector(node, self.bias_value(node, i) if isinstance(v, _QConst) else v.value, lin)

    def add_offset(self, lin, c):
        if lin.post and lin.post[-1][0] == "affine":
            k, old = lin.post[-1][1], lin.post[-1][2]
            lin.post[-1] = ("affine", k, [o + ci for o, ci in zip(old, c)])
        elif lin.post:
            lin.post.append(("affine", [Surd(1)] * lin.out, [Surd(ci) for ci in c]))
        else:
            lin.offset = [o + ci for o, ci in zip(lin.offset, c)]

    def scale_lin(self, node, lin, k):
        if lin.post:
            if lin.post[-1][0] == "affine":
                k0, c0 = lin.post[-1][1], lin.post[-1][2]
                lin.post[-1] = ("affine", [a * b for a, b in zip(k0, k)], [a * b for a, b in zip(c0, k)])
            else:
                lin.post.append(("affine", [Surd(v) for v in k], [Surd(0)] * lin.out))
            return
        if any(isinstance(v, Surd) and not v.is_rational() for v in k):
            lin.post.append(("affine", list(k), [Surd(0)] * lin.out))
            return
        k = [v.a if isinstance(v, Surd) else v for v in k]
        lin.terms = [(q, [f * kv for f, kv in zip(fs, k)]) for q, fs in lin.terms]
        lin.offset = [o * kv for o, kv in zip(lin.offset, k)]

    def join(self, node, a, b):
        if a.source is not b.source or a.op != b.op or a.shape != b.shape or a.kernel != b.kernel \
                or a.post or b.post or a.pool > 1 or b.pool > 1:
            raise self.fail(node, "adds two tensors that are not products of one quantized input "
                            "(a residual Add is not supported)")
        return _Lin(a.source, a.op, a.terms + b.terms, [x + y for x, y in zip(a.offset, b.offset)], a.shape,
                    a.kernel, nodes=a.nodes + b.nodes + [node.name])

    def op_Add(self, node):
        lin, i, _ = self.other(node)
        if lin is None:
            return self.join(node, self.value(node, 0), self.value(node, 1))
        self.add_offset(lin, self.elementwise_const(node, lin, i))
        return lin

    def op_Sum(self, node):
        vals = [self.value(node, i) for i in range(len(node.input))]
        if not all(isinstance(v, _Lin) for v in vals):
            raise self.fail(node, "Sum of tensors that are not quantized layers' products")
        out = vals[0]
        for v in vals[1:]:
            out = self.join(node, out, v)
        return out

    def op_Sub(self, node):
        lin, i, swapped = self.other(node)
        if lin is None:
            raise self.fail(node, "subtracts two layers (a residual is not supported)")
        c = self.elementwise_const(node, lin, i)
        if swapped:                                  # c - y
            self.scale_lin(node, lin, [Fraction(-1)] * lin.out)
            self.add_offset(lin, c)
        else:
            self.add_offset(lin, [-v for v in c])
        return lin

    def op_Mul(self, node):
        lin, i, _ = self.other(node)
        if lin is None:
            raise self.fail(node, "multiplies two layers (not a linear function of the input)")
        self.scale_lin(node, lin, self.elementwise_const(node, lin, i))
        return lin

    def op_Div(self, node):
        lin, i, swapped = self.other(node)
        if lin is None or swapped:
            raise self.fail(node, "divides by a tensor; only a division by constants is linear")
        c = self.elementwise_const(node, lin, i)
        if any(v == 0 for v in c):
            raise self.fail(node, "divides by zero")
        self.scale_lin(node, lin, [1 / v for v in c])
        return lin

    def op_BatchNormalization(self, node):
        lin = self.value(node, 0)
        if not isinstance(lin, _Lin):
            raise self.fail(node, "BatchNormalization must follow a quantized layer")
        a = self.attrs(node)
        if a.get("training_mode", 0):
            raise self.fail(node, "training_mode=1 normalises by each batch; no fixed threshold does that")
        if len(node.output) > 1 and any(node.output[1:]):
            raise self.fail(node, "running-statistics outputs are not supported")
        eps = exact(a.get("epsilon", 1e-5))
        params = []
        for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")):
            arr = self.const(node, i, what).reshape(-1)
            if arr.size not in (1, lin.out):
                raise self.fail(node, f"{what} has {arr.size} values for {lin.out} channels")
            params.append([exact(v) for v in np.broadcast_to(arr, (lin.out,))])
        gamma, beta, mean, var = params
        k = [g / Surd.sqrt(v + eps) for g, v in zip(gamma, var)]
        c = [be - m * kk for be, m, kk in zip(beta, mean, k)]
        lin.post.append(("affine", k, c))
        return lin

    def op_Relu(self, node):
        lin = self.value(node, 0)
        if not isinstance(lin, _Lin):
            raise self.fail(node, "Relu must follow a quantized layer")
        lin.post.append(("relu",))
        return lin

    def op_Constant(self, node):
        from onnx import numpy_helper
        a = self.attrs(node)
        if "value" not in a:
            raise self.fail(node, "only a tensor 'value' Constant is supported")
        return _Const(numpy_helper.to_array(a["value"]))

    def op_Identity(self, node):
        return self.value(node, 0)

    def op_MaxPool(self, node):
        x = self.value(node, 0)
        a = self.attrs(node)
        k = list(a.get("kernel_shape", []))
        strides = list(a.get("strides", k))
        if len(k) != 2 or k[0] != k[1] or strides != k:
            raise self.fail(node, f"kernel {k} with strides {strides}: hwgen pools square windows with "
                            f"stride = window")
        if any(a.get("pads", [0])) or a.get("ceil_mode", 0) or any(v != 1 for v in a.get("dilations", [1])) \
                or (len(node.output) > 1 and node.output[1]):
            raise self.fail(node, "padding, ceil_mode, dilation and an indices output are not supported")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
            raise self.fail(node, "auto_pad pads the input; not supported")
        p = k[0]
        if isinstance(x, _Lin) and x.op == "conv2d" and x.pool == 1:
            x.pool, x.pool_at = p, len(x.post)
            return x
        if isinstance(x, _Act) and x.layer >= 0 and not x.pooled and len(x.shape) == 3:
            layer = self.layers[x.layer]
            if layer.op == "conv2d" and layer.pool == 1 and tuple(x.shape) == layer.conv_shape:
                layer.pool = p
                return _Act(layer.out_shape, x.a, x.b, x.kind, x.bits, x.layer, True)
        raise self.fail(node, "hwgen pools once per conv layer, directly after it or its activation")

    def reshape(self, node, new_shape):
        x = self.value(node, 0)
        if not isinstance(x, _Act):
            raise self.fail(node, "reshapes a tensor that is not a quantized activation")
        if int(np.prod(new_shape)) != int(np.prod(x.shape)):
            raise self.fail(node, f"reshapes {list(x.shape)} to {list(new_shape)}")
        return _Act(tuple(new_shape), x.a, x.b, x.kind, x.bits, x.layer, True)

    def op_Flatten(self, node):
        if self.attrs(node).get("axis", 1) != 1:
            raise self.fail(node, "only axis=1 keeps the batch dimension")
        x = self.value(node, 0)
        return self.reshape(node, (int(np.prod(x.shape)),) if isinstance(x, _Act) else ())

    def op_Reshape(self, node):
        shape = self.shape_of(node.output[0])
        if not shape or shape[0] != 1:
            raise self.fail(node, f"output shape {shape} does not keep the batch dimension 1")
        return self.reshape(node, shape[1:])

    def op_ArgMax(self, node):
        lin = self.value(node, 0)
        a = self.attrs(node)
        if not isinstance(lin, _Lin) or lin.op != "dense":
            raise self.fail(node, "ArgMax must read the last layer's scores")
        if a.get("axis", 0) not in (1, -1) or a.get("select_last_index", 0):
            raise self.fail(node, "only the argmax over the classes (axis 1), ties to the lowest index")
        self.scores(lin)
        return "argmax"

    def op_TopK(self, node):
        lin = self.value(node, 0)
        a = self.attrs(node)
        k = self.const(node, 1, "k")
        if not isinstance(lin, _Lin) or lin.op != "dense" or k.size != 1 or int(k.reshape(-1)[0]) != 1 \
                or a.get("axis", -1) not in (1, -1) or not a.get("largest", 1):
            raise self.fail(node, "only TopK with k = 1, largest, over the classes of the last layer's scores")
        self.scores(lin)
        return "argmax", "argmax"

    # -- closing a layer
    def planes(self, node, lin, common):
        """``(nbits, planes, alpha, unit)``: the layer's integer form ``y = unit * Y + offset``
        (``unit`` per neuron, or one common value for the score layer)."""
        terms = lin.terms
        out = lin.out
        ternary = len(terms) <= MAX_BITS and all(np.abs(q).max(initial=0) <= 1 for q, _ in terms) and \
            all((np.abs(terms[t][0]) <= np.abs(terms[t - 1][0])).all() for t in range(1, len(terms)))
        if ternary:   # bit-planes as they are: nested masks, one factor per neuron and plane
            factors = [[terms[t][1][o] for t in range(len(terms))] for o in range(out)]
            units = _units([f for f in factors], common)
            alpha = np.zeros((out, len(terms)), np.int64)
            signs = np.stack([q for q, _ in terms])          # [B, O, I] in -1, 0, 1
            for o in range(out):
                for t in range(len(terms)):
                    a = factors[o][t] / units[o]
                    alpha[o, t] = abs(int(a))
                    if a < 0:
                        signs[t, o] = -signs[t, o]
            nbits = (signs != 0).sum(0).astype(np.uint8)
            return nbits, (signs > 0).astype(np.uint8), alpha, units
        rows = []
        for o in range(out):
            row = [sum((f[o] * int(q[o, j]) for q, f in terms), Fraction(0)) for j in range(terms[0][0].shape[1])]
            rows.append(row)
        units = _units(rows, common)
        ints = np.array([[int(v / u) for v in row] for row, u in zip(rows, units)], dtype=object)
        if np.abs(ints).max(initial=0) >= _LIMIT:
            raise self.fail(node, "its integer weights exceed 2^40")
        decomposed = [_decompose(tuple(sorted(set(int(v) for v in row if v))), ) for row in ints]
        bad = [o for o, d in enumerate(decomposed) if d is None]
        if bad:
            vals = sorted(set(int(v) for v in ints[bad[0]]))
            raise self.fail(node, f"neuron {bad[0]}'s integer weights {_show(vals)} need more than {MAX_BITS} "
                            f"bit-planes (hwgen's plane form holds at most {MAX_BITS}; wider integer weights "
                            f"are not supported yet)")
        b = max(len(d[0]) for d in decomposed)
        nbits = np.zeros(ints.shape, np.uint8)
        planes = np.zeros((b, *ints.shape), np.uint8)
        alpha = np.zeros((out, b), np.int64)
        for o, (alphas, table) in enumerate(decomposed):
            alpha[o, :len(alphas)] = alphas
            for j, v in enumerate(ints[o]):
                if v:
                    n, signs = table[int(v)]
                    nbits[o, j] = n
                    for t, s in enumerate(signs):
                        planes[t, o, j] = s > 0
        return nbits, planes, alpha, units

    def new_layer(self, node, lin, output):
        src = lin.source
        if src.layer != len(self.layers) - 1:
            raise self.fail(node, "the graph is not a chain of layers (a layer reads an earlier layer's output)")
        index = len(self.layers)
        nbits, planes, alpha, units = self.planes(node, lin, common=output == "scores")
        kind = "conv" if lin.op == "conv2d" else "fc"
        name = self.layer_name(index, kind)
        layer = Layer(name=name, input="uint" if src.kind == "uint" else "binary", input_bits=src.bits,
                      output=output, nbits=nbits, planes=planes, alpha=alpha, op=lin.op)
        if lin.op == "conv2d":
            layer.in_shape, layer.kernel = tuple(int(v) for v in src.shape), tuple(int(v) for v in lin.kernel)
        return layer, units

    def layer_name(self, index, kind):
        if self.hwgen is not None:
            names = self.hwgen["layers"]
            if index < len(names) and isinstance(names[index], str):
                return names[index]
        return f"{kind}{sum(1 for l in self.layers if (l.op == 'conv2d') == (kind == 'conv'))}"

    def close(self, node, lin, conds, k, a, b, sign=False):
        """Finish ``lin`` as a threshold layer whose activation levels are ``conds`` (per level: one
        condition on the chain's output, or one per neuron) and return its output activation."""
        layer, units = self.new_layer(node, lin, "threshold")
        lo, hi = layer.bounds()
        chain = lambda o: [("affine", [units[o]], [lin.offset[o]])] + [ _neuron(op, o) for op in lin.post]
        thr = np.zeros((lin.out, len(conds)), np.int64)
        direction = np.ones(lin.out, np.int8)
        for o in range(lin.out):
            ops = chain(o)
            if lin.pool > 1 and not (_increasing(ops[:1 + lin.pool_at]) and _increasing(ops[1 + lin.pool_at:])):
                raise self.fail(node, f"neuron {o} decreases before or after the MaxPool, where max does not "
                                f"commute with its activation (hwgen pools after the activation)")
            finals = [_back(level[o] if len(level) > 1 else level[0], ops) for level in conds]
            rels = {f[0] for f in finals} - {"always", "never"}
            if len(rels) > 1:
                raise self.fail(node, f"neuron {o} is not monotone in its sum")
            d = -1 if rels == {"le"} else 1
            direction[o] = d
            for j, f in enumerate(finals):
                if f[0] == "always":
                    t = lo[o] - 1 if d > 0 else hi[o] + 1
                elif f[0] == "never":
                    t = hi[o] + 1 if d > 0 else lo[o] - 1
                else:
                    t = min(max(f[1], int(lo[o]) - 1), int(hi[o]) + 1)
                thr[o, j] = t
            if sign and _count(_back(("ge", Fraction(0)), ops), lo[o], hi[o]) != \
                    _count(finals[0], lo[o], hi[o]):    # ONNX Sign(0) = 0, which a +-1 activation cannot carry
                raise self.fail(node, f"neuron {o} can reach 0, where Sign gives 0 (not +-1); use "
                                    f"BipolarQuant")
        layer.threshold = thr[:, 0] if k == 1 else thr
        layer.direction, layer.output_bits = direction, k
        if lin.op == "conv2d":
            layer.pool = lin.pool
        self.layers.append(layer)
        shape = layer.out_shape if lin.op == "conv2d" else (lin.out,)
        return _Act(tuple(shape), exact(a), exact(b), "binary", k, len(self.layers) - 1, lin.pool > 1)

    def scores(self, lin):
        node = _FakeNode(lin.nodes[-1] if lin.nodes else "?", "scores")
        if lin.op != "dense" or lin.pool > 1:
            raise HwgenError(f"{self.where}: the last layer must be dense (it gives the class scores)")
        if any(op[0] == "relu" for op in lin.post):
            raise HwgenError(f"{self.where}: a Relu on the class scores makes ties that an integer argmax of "
                             f"the sums cannot keep; remove it (argmax is unchanged without it)")
        k, c = [Surd(1)] * lin.out, [Surd(0)] * lin.out
        for op in lin.post:            # the scores' affine chain, collapsed
            k = [a * b for a, b in zip(k, op[1])]
            c = [a * b + d for a, b, d in zip(c, op[1], op[2])]
        offsets = [kk * o + cc for kk, o, cc in zip(k, lin.offset, c)]
        if not all(v.is_rational() for v in k + offsets):
            raise HwgenError(f"{self.where}: the class scores pass a BatchNormalization whose 1/sqrt(var + eps) "
                             f"differs per class (irrational): no integer scores keep their order exactly")
        lin.terms = [(q, [f * kk.a for f, kk in zip(fs, k)]) for q, fs in lin.terms]
        layer, units = self.new_layer(node, lin, "scores")
        unit = units[0]
        bias = [o.a / unit for o in offsets]
        scale = math.lcm(*[b.denominator for b in bias])
        if scale > 2 ** _FRAC_BITS:
            # a float bias: rounded to 2^-8 of the weights' unit, as hwgen's own export rounds it
            scale = 2 ** _FRAC_BITS
            err = max(abs(b * scale - round(b * scale)) for b in bias)
            self.notes.append(f"{layer.name}: the class-score bias is not an integer multiple of the weights' "
                              f"unit; it is rounded to 2^-{_FRAC_BITS} of that unit (largest error "
                              f"{float(err):.3f} x 2^-{_FRAC_BITS}); an integer-quantized bias (e.g. Brevitas "
                              f"Int32Bias) is exact")
        layer.alpha = layer.alpha * scale
        layer.bias = np.array([round(b * scale) for b in bias], np.int64)
        self.layers.append(layer)
        self.score_unit = unit / scale

    # -- the artifact
    def build(self):
        layers = list(self.layers)
        if not layers:
            raise HwgenError(f"{self.where}: no quantized layer found")
        first = layers[0]
        identity_input = self.input_quant is None or (
            self.input_quant["op"] == "Quant" and self.input_quant["scale"] == 1 and
            self.input_quant["zero_point"] == 0 and self.input_quant["code_offset"] == 0)
        if self.hwgen is not None:    # written by to_qonnx: its names and metadata come back as they were
            meta = dict(self.hwgen.get("meta", {}))
            frac = int(self.hwgen.get("scale_frac_bits", 0))
            for layer in layers:
                want = self.hwgen["nbits"].get(layer.name)
                if want is not None and want != _nbits_text(layer.nbits):
                    raise HwgenError(f"{self.where}: layer {layer.name}: the bit counts in metadata_props "
                                     f"disagree with its planes (hand-edited?)")
            imported = {}
        else:
            meta, frac = {}, 0
            imported = {"from": "qonnx", "source": self.where,
                        "producer": f"{self.model.model.producer_name} "
                                    f"{self.model.model.producer_version}".strip()}
        # whatever the graph does beyond the integers is recorded, whoever wrote it
        if self.score_unit != 1 or imported:
            imported["score_unit"] = float(self.score_unit)   # float score = unit * integer score
        if self.notes:
            imported["notes"] = self.notes
        if imported:
            meta["imported"] = imported
        if not identity_input:
            meta["input_quant"] = self.input_quant
        art = Artifact(layers=layers, input_features=first.in_size, input_bits=first.input_bits,
                       scale_frac_bits=frac, n_classes=layers[-1].out_features, meta=meta)
        if int(np.prod(self.input_shape)) != art.input_features:
            raise HwgenError(f"{self.where}: the input has {int(np.prod(self.input_shape))} elements but the first "
                             f"layer reads {art.input_features}")
        try:
            _artifact._validate(art)
        except HwgenError as exc:
            raise HwgenError(f"{self.where}: the imported model is not a valid hwgen artifact: {exc}") from None
        return art


class _FakeNode:
    def __init__(self, name, op_type):
        self.name, self.op_type = name, op_type


# -- exact level conditions ------------------------------------------------------------------------------------

#: rounding mode -> whether ``round(t) >= m`` is ``t >= m - delta`` (True) or ``t > m - delta`` (False),
#: as ``(delta, inclusive(m))``
_ROUNDING = {
    "ROUND": (Fraction(1, 2), lambda m: m % 2 == 0),           # half to even
    "HALF_EVEN": (Fraction(1, 2), lambda m: m % 2 == 0),
    "FLOOR": (Fraction(0), lambda m: True),
    "CEIL": (Fraction(1), lambda m: False),
    "HALF_UP": (Fraction(1, 2), lambda m: m > 0),              # half away from zero
    "HALF_DOWN": (Fraction(1, 2), lambda m: m <= 0),           # half toward zero
    "UP": (None, None),                                        # away from zero
    "DOWN": (None, None),                                      # toward zero
}


def _level(mode, m, s, z):
    """The condition on ``x`` for ``clamp(round(x / s + z)) >= m`` (``m`` above the clamp's minimum)."""
    if mode == "UP":
        delta, inclusive = (Fraction(1), False) if m > 0 else (Fraction(0), True)
    elif mode == "DOWN":
        delta, inclusive = (Fraction(0), True) if m > 0 else (Fraction(1), False)
    else:
        delta, incl = _ROUNDING[mode]
        inclusive = incl(m)
    return ("ge" if inclusive else "gt", (m - delta - z) * s)


def _neuron(op, o):
    return op if op[0] == "relu" else ("affine", [op[1][o]], [op[2][o]])


def _increasing(ops):
    sign = 1
    for op in ops:
        if op[0] == "affine":
            sign *= Surd.of(op[1][0]).sign()
    return sign > 0


def _count(cond, lo, hi):
    """How many integers in ``lo..hi`` meet a condition from :func:`_back`."""
    lo, hi = int(lo), int(hi)
    if cond[0] in ("always", "never"):
        return hi - lo + 1 if cond[0] == "always" else 0
    t = cond[1]
    return max(0, hi - max(lo, t) + 1) if cond[0] == "ge" else max(0, min(hi, t) - lo + 1)


_FLIP = {"ge": "le", "gt": "lt", "le": "ge", "lt": "gt"}


def _holds(rel, v, t):
    return {"ge": v >= t, "gt": v > t, "le": v <= t, "lt": v < t}[rel]


def _back(cond, ops):
    """``cond`` on the chain's output as a condition on its integer input ``Y``:
    ``("ge", T)`` (``Y >= T``), ``("le", T)``, ``("always",)`` or ``("never",)``."""
    if cond[0] in ("always", "never"):
        return cond
    rel, t = cond[0], Surd.of(cond[1])
    for op in reversed(ops):
        if op[0] == "relu":        # v = max(x, 0)
            if _holds(rel, Surd(0), t) and rel in ("ge", "gt"):
                return ("always",)
            if not _holds(rel, Surd(0), t) and rel in ("le", "lt"):
                return ("never",)
            continue
        k, c = Surd.of(op[1][0]), Surd.of(op[2][0])
        if k.sign() == 0:
            return ("always",) if _holds(rel, c, t) else ("never",)
        t = (t - c) / k
        if k.sign() < 0:
            rel = _FLIP[rel]
    if rel == "ge":
        return ("ge", ceil(t))
    if rel == "gt":
        return ("ge", floor(t) + 1)
    if rel == "le":
        return ("le", floor(t))
    return ("le", ceil(t) - 1)


# -- integer units and bit-plane decomposition -----------------------------------------------------------------

def _gcd(values):
    """The largest positive rational dividing every value (0 if all are 0)."""
    nums = [v for v in values if v != 0]
    if not nums:
        return Fraction(0)
    n = math.gcd(*[v.numerator for v in nums])
    d = math.lcm(*[v.denominator for v in nums])
    return Fraction(n, d)


def _units(rows, common):
    """Per row, the unit its values are integer multiples of: 1 where they already are integers
    (hwgen's own scales stay as written), else their gcd; negative where every value is, so that the
    scales come out >= 0. ``common``: one unit for all rows (the score layer)."""
    if common:
        flat = [v for row in rows for v in row]
        g = Fraction(1) if all(v.denominator == 1 for v in flat) else _gcd(flat)
        return [g if g else Fraction(1)] * len(rows)
    units = []
    for row in rows:
        nonzero = [v for v in row if v != 0]
        g = Fraction(1) if all(v.denominator == 1 for v in row) else _gcd(row)
        g = g if g else Fraction(1)
        units.append(-g if nonzero and all(v < 0 for v in nonzero) else g)
    return units


@lru_cache(maxsize=4096)
def _decompose(values):
    """``(alphas, {value: (nbits, signs)})``: the fewest bit-planes (scales ``alphas``, nested masks)
    that write every integer in ``values`` (nonzero, sorted), the fewest total bits among them; None
    when more than :data:`MAX_BITS` planes would be needed."""
    if not values:
        return (1,), {}
    g = math.gcd(*values)
    top = max(abs(v) // g for v in values)
    if top == 1:
        return (g,), {v: (1, (1 if v > 0 else -1,)) for v in values}
    if top > 2 ** MAX_BITS:
        return None
    best = None
    for b in range(2, MAX_BITS + 1):
        for alphas in product(range(1, top + 1), repeat=b):
            reach = {}
            for n in range(1, b + 1):
                for signs in product((1, -1), repeat=n):
                    v = sum(s * a for s, a in zip(signs, alphas))
                    reach.setdefault(v, (n, signs))
            if all(v // g in reach for v in values):
                cost = sum(reach[v // g][0] for v in values)
                if best is None or cost < best[0]:
                    best = (cost, alphas, reach)
        if best is not None:
            break
    if best is None:
        return None
    _, alphas, reach = best
    return tuple(a * g for a in alphas), {v: reach[v // g] for v in values}


def _show(values):
    text = ", ".join(map(str, values[:12]))
    return "{" + text + (", ..." if len(values) > 12 else "") + "}"


def _nbits_text(nbits):
    """The per-weight bit counts as metadata_props carries them: one digit per weight, row-major."""
    return "".join("0123456789"[v] for v in np.asarray(nbits).reshape(-1))


def _int_range(bits, signed, narrow):
    if signed:
        return -(2 ** (bits - 1)) + (1 if narrow else 0), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1 - (1 if narrow else 0)
