"""THE contract between training and hardware: the integer model artifact.

An artifact is a zip archive (stored, fixed timestamps, fixed member order, so
the same model gives the same bytes) holding ``manifest.json`` and one raw
little-endian C-order array per ``arrays/<layer>.<field>.bin``. The manifest
names each array's dtype, shape and SHA-256. No pickle anywhere. The format is
documented in ``docs/format.md``; :func:`load` validates every field and raises
:class:`~hwgen.errors.ArtifactError` naming the first problem it finds.
"""
import collections
import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..errors import ArtifactError

__all__ = ["FORMAT", "VERSION", "MAX_BITS", "Layer", "Artifact", "Model", "save", "load", "dumps", "loads"]

#: The largest bit count of one weight (bitwidths are 0..MAX_BITS; 0 = pruned).
MAX_BITS = 3

FORMAT = "hwgen-model"
VERSION = 2
_READS = (1, 2)  # version 1 = dense layers only, no "op" key
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_INT_LIMIT = 2 ** 40  # |alpha|, |bias|, |threshold| must stay far inside int64

# field -> (dtype, shape as a function of the layer)
_FIELDS = {
    "nbits": ("uint8", lambda l: (l.out_features, l.in_features)),
    "planes": ("uint8", lambda l: (l.max_bits, l.out_features, l.in_features)),
    "alpha": ("int64", lambda l: (l.out_features, l.max_bits)),
    "threshold": ("int64", lambda l: (l.out_features,) if l.output_bits == 1
                  else (l.out_features, 2 ** l.output_bits - 1)),
    "direction": ("int8", lambda l: (l.out_features,)),
    "bias": ("int64", lambda l: (l.out_features,)),
}
_OUTPUT_FIELDS = {"threshold": ("threshold", "direction"), "scores": ("bias",)}


@dataclass
class Layer:
    """One dense or convolutional layer in integer form.

    ``Y[o] = sum_b alpha[o, b-1] * P_b[o] (+ bias[o])`` with
    ``P_b[o] = sum_j [nbits[o,j] >= b] * s_b[o,j] * a[j]`` and
    ``s_b = +1 if planes[b-1] == 1 else -1``, ``j`` running over the fan-in
    (``in_features``). ``input`` is ``"uint"`` (unsigned integers,
    ``input_bits`` wide) or ``"binary"``: ``input_bits = K`` sign bits per
    activation, value ``sum_k 2^(K-k) s_k`` (K = 1: +-1, bit 1 = +1; K = 2:
    -3, -1, 1, 3). ``output`` is ``"threshold"`` or ``"scores"``
    (``Y + bias``). A threshold layer with ``output_bits = 1`` outputs +1 iff
    ``Y >= threshold`` (direction +1) or ``Y <= threshold`` (direction -1),
    else -1; with ``output_bits = K > 1`` it holds ``2^K - 1`` thresholds per
    neuron and outputs ``2c - (2^K - 1)``, ``c`` the number of thresholds met.

    ``op`` is ``"dense"`` or ``"conv2d"``: a conv layer reads a ``[C, H, W]``
    map (``in_shape``, flattened C-major), applies the same neuron at every
    ``kernel`` window (stride 1, no padding; fan-in order ``c, ky, kx``), and
    after the threshold max-pools ``pool x pool`` windows (stride ``pool``;
    ``pool = 1``: none), which on bits is a logical OR.
    """
    name: str
    input: str
    input_bits: int
    output: str
    nbits: np.ndarray
    planes: np.ndarray
    alpha: np.ndarray
    threshold: np.ndarray = None
    direction: np.ndarray = None
    bias: np.ndarray = None
    op: str = "dense"
    in_shape: tuple = None   # conv2d: (C, H, W)
    kernel: tuple = None     # conv2d: (kh, kw)
    pool: int = 1            # conv2d: max-pool window after the threshold
    output_bits: int = 1     # threshold layers: bits of the activation produced

    @property
    def conv_shape(self):
        """conv2d: ``(out_channels, H', W')`` before pooling."""
        _, h, w = self.in_shape
        return self.out_features, h - self.kernel[0] + 1, w - self.kernel[1] + 1

    @property
    def out_shape(self):
        """conv2d: ``(out_channels, H'', W'')`` after pooling."""
        o, h, w = self.conv_shape
        return o, h // self.pool, w // self.pool

    @property
    def in_size(self):
        """Number of input elements the layer reads (flattened)."""
        return int(np.prod(self.in_shape)) if self.op == "conv2d" else self.in_features

    @property
    def out_size(self):
        """Number of output elements the layer produces (flattened)."""
        return int(np.prod(self.out_shape)) if self.op == "conv2d" else self.out_features

    @property
    def out_features(self):
        return self.nbits.shape[0]

    @property
    def in_features(self):
        return self.nbits.shape[1]

    @property
    def max_bits(self):
        return self.planes.shape[0]

    @property
    def input_range(self):
        """Inclusive (lo, hi) of one input element as an integer."""
        if self.input == "uint":
            return 0, 2 ** self.input_bits - 1
        return -(2 ** self.input_bits - 1), 2 ** self.input_bits - 1

    def signed_planes(self):
        """int64 ``[max_bits, out, in]`` of ``m_b * s_b`` in {-1, 0, +1}."""
        b = np.arange(1, self.max_bits + 1).reshape(-1, 1, 1)
        mask = self.nbits[None].astype(np.int64) >= b
        return np.where(mask, np.where(self.planes == 1, 1, -1), 0).astype(np.int64)

    def weights(self):
        """int64 ``[out, in]`` effective integer weights ``sum_b alpha_b m_b s_b``."""
        return np.einsum("boi,ob->oi", self.signed_planes(), self.alpha)

    def bounds(self):
        """Exact per-neuron ``(lo, hi)`` int64 arrays of ``Y`` (bias included)
        over every input vector in :attr:`input_range`."""
        w = self.weights()
        lo_in, hi_in = self.input_range
        hi = np.where(w > 0, w * hi_in, w * lo_in).sum(axis=1)
        lo = np.where(w > 0, w * lo_in, w * hi_in).sum(axis=1)
        if self.output == "scores":
            lo, hi = lo + self.bias, hi + self.bias
        return lo, hi


@dataclass
class Artifact:
    """An integer network: the layers in order, what the first one reads
    (``input_features`` unsigned integers of ``input_bits`` bits, flattened
    C-major for an image) and how many class scores the last one gives.
    ``scale_frac_bits`` is the fixed-point position of the scales ``alpha``.
    ``meta`` is free JSON (how it was trained or where it came from).

    :func:`hwgen.load` reads one from disk, :meth:`save` writes it, and
    :meth:`predict` runs the integer golden model. Nothing here imports
    torch."""
    layers: list
    input_features: int
    input_bits: int
    scale_frac_bits: int
    n_classes: int
    meta: dict = field(default_factory=dict)

    def save(self, path):
        """Validate and write the artifact to ``path`` (byte-identical for
        the same model)."""
        save(self, path)

    def predict(self, x):
        """int64 class scores ``[N, n_classes]`` of the integer golden model
        for the integer inputs ``x`` (``[N, input_features]``, each within
        ``0 .. 2**input_bits - 1``). The predicted class is the argmax, ties
        to the lowest index (``scores.argmax(1)``)."""
        from .reference import infer
        return infer(self, x).scores

    def to_qonnx(self):
        """This model as a QONNX ``onnx.ModelProto`` (:func:`hwgen.interop.to_qonnx`; needs the
        ``onnx`` extra): bit-planes times their scales, ``MultiThreshold`` activations, integer
        class scores out. :func:`hwgen.from_qonnx` reads it back byte-identical."""
        from ..interop import to_qonnx       # the interop layer sits on top of this one: imported on use
        return to_qonnx(self)

    def bit_histogram(self):
        """``{"b": count}`` of the weights with ``b`` bits, over all layers."""
        counts = np.zeros(MAX_BITS + 1, dtype=np.int64)
        for layer in self.layers:
            counts += np.bincount(layer.nbits.reshape(-1), minlength=MAX_BITS + 1)
        return {str(b): int(n) for b, n in enumerate(counts) if n}

    def avg_weight_bits(self):
        """The average bit count per weight (pruned weights count as 0)."""
        hist = self.bit_histogram()
        return sum(int(b) * n for b, n in hist.items()) / sum(hist.values())


#: The name of :class:`Artifact` before 0.2 (kept for existing code).
Model = Artifact


def dumps(model):
    """Serialize (after validating) to the artifact's bytes."""
    _validate(model)
    arrays, layers = {}, []
    for layer in model.layers:
        entry = {"name": layer.name, "kind": "linear", "op": layer.op, "input": layer.input,
                 "input_bits": layer.input_bits, "output": layer.output,
                 "in_features": layer.in_features, "out_features": layer.out_features,
                 "max_bits": layer.max_bits, "arrays": {}}
        if layer.op == "conv2d":
            entry.update(in_shape=list(layer.in_shape), kernel=list(layer.kernel), pool=layer.pool)
        if layer.output == "threshold":
            entry["output_bits"] = layer.output_bits
        for fname in ("nbits", "planes", "alpha") + _OUTPUT_FIELDS[layer.output]:
            dtype, _ = _FIELDS[fname]
            data = np.ascontiguousarray(getattr(layer, fname), dtype=np.dtype(dtype).newbyteorder("<"))
            path = f"arrays/{layer.name}.{fname}.bin"
            raw = data.tobytes()
            arrays[path] = raw
            entry["arrays"][fname] = {"file": path, "dtype": dtype, "shape": list(data.shape),
                                      "sha256": hashlib.sha256(raw).hexdigest()}
        layers.append(entry)
    manifest = {"format": FORMAT, "version": VERSION, "input_features": model.input_features,
                "input_bits": model.input_bits, "scale_frac_bits": model.scale_frac_bits,
                "n_classes": model.n_classes, "meta": model.meta, "layers": layers}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        members = [("manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")]
        members += sorted(arrays.items())
        for name, raw in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=_ZIP_DATE), raw)
    return buf.getvalue()


def save(model, path):
    """Write ``model`` (an :class:`Artifact`) to ``path``, atomically (a
    temporary file renamed into place: never half-written)."""
    from .fileio import write_bytes
    write_bytes(path, dumps(model))


def load(path):
    """Read and validate the artifact at ``path``; an :class:`ArtifactError`
    names the first problem."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise ArtifactError(f"artifact {path} does not exist") from None
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact {path}: {exc.strerror}") from None
    try:
        return loads(blob)
    except ArtifactError as exc:
        raise ArtifactError(f"invalid artifact {path}: {exc}") from None


def _need(cond, msg):
    if not cond:
        raise ArtifactError(msg)


def _get(obj, key, kind, where):
    _need(isinstance(obj, dict), f"{where} must be a JSON object")
    _need(key in obj, f"{where} lacks the key {key!r}")
    value = obj[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    _need(ok, f"{where}.{key} must be {getattr(kind, '__name__', kind)}, not {value!r}")
    return value


def loads(blob):
    """Parse and validate artifact bytes into a :class:`Model`."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
        listed = zf.namelist()
        names = set(listed)
        twice = sorted(n for n, k in collections.Counter(listed).items() if k > 1)
        _need(not twice, f"the archive holds {', '.join(twice)} more than once (tools differ on which copy "
                         f"they read)")
        _need("manifest.json" in names, "no manifest.json inside (not an hwgen artifact?)")
        _need(zf.getinfo("manifest.json").file_size <= MAX_MANIFEST_BYTES,
              f"manifest.json expands to {zf.getinfo('manifest.json').file_size:,} bytes, more than the "
              f"{MAX_MANIFEST_BYTES:,} a manifest may hold")
        manifest = json.loads(zf.read("manifest.json").decode("utf-8"))
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise ArtifactError(f"not a readable artifact archive ({exc.__class__.__name__}: {exc})") from None
    except Exception as exc:  # zipfile raises assorted errors on corrupt headers
        raise ArtifactError(f"corrupt archive ({exc.__class__.__name__}: {exc})") from None
    _need(isinstance(manifest, dict), "manifest.json must be a JSON object")
    _need(manifest.get("format") == FORMAT, f"manifest format is {manifest.get('format')!r}, expected {FORMAT!r}")
    _need(manifest.get("version") in _READS,
          f"format version {manifest.get('version')!r} is not supported (this hwgen reads versions "
          f"{', '.join(map(str, _READS))})")
    layers = []
    # what the members may expand to, all together: hwgen stores them uncompressed
    budget = _Budget(max(MIN_EXPANSION_BYTES, MAX_EXPANSION * len(blob)))
    for i, entry in enumerate(_get(manifest, "layers", list, "manifest")):
        where = f"layers[{i}]"
        name = _get(entry, "name", str, where)
        _need(name.isidentifier(), f"{where}.name {name!r} must be an identifier")
        _need(_get(entry, "kind", str, where) == "linear", f"{where}.kind {entry['kind']!r} is not supported")
        arrays = _get(entry, "arrays", dict, where)
        output = _get(entry, "output", str, where)
        _need(output in _OUTPUT_FIELDS, f"{where}.output must be 'threshold' or 'scores', not {output!r}")
        kw = {}
        if output == "threshold" and manifest["version"] >= 2:
            kw["output_bits"] = _get(entry, "output_bits", int, where)
            _need(1 <= kw["output_bits"] <= 4, f"{where}.output_bits must be within 1..4")
        for fname in ("nbits", "planes", "alpha") + _OUTPUT_FIELDS[output]:
            desc = _get(arrays, fname, dict, f"{where}.arrays")
            kw[fname] = _read_array(zf, names, desc, f"{where}.arrays.{fname}", _FIELDS[fname][0], budget)
        op = _get(entry, "op", str, where) if manifest["version"] >= 2 else "dense"
        _need(op in ("dense", "conv2d"), f"{where}.op must be 'dense' or 'conv2d', not {op!r}")
        if op == "conv2d":
            kw["in_shape"] = tuple(_int_list(entry, "in_shape", 3, where))
            kw["kernel"] = tuple(_int_list(entry, "kernel", 2, where))
            kw["pool"] = _get(entry, "pool", int, where)
        layer = Layer(name=name, input=_get(entry, "input", str, where),
                      input_bits=_get(entry, "input_bits", int, where), output=output, op=op, **kw)
        _need(layer.nbits.ndim == 2 and layer.planes.ndim == 3,
              f"{where}: nbits must be 2-D [out, in] and planes 3-D [bits, out, in]")
        for key in ("in_features", "out_features", "max_bits"):
            _need(_get(entry, key, int, where) == getattr(layer, key),
                  f"{where}.{key} = {entry[key]} disagrees with the array shapes")
        layers.append(layer)
    model = Artifact(layers=layers,
                  input_features=_get(manifest, "input_features", int, "manifest"),
                  input_bits=_get(manifest, "input_bits", int, "manifest"),
                  scale_frac_bits=_get(manifest, "scale_frac_bits", int, "manifest"),
                  n_classes=_get(manifest, "n_classes", int, "manifest"),
                  meta=_get(manifest, "meta", dict, "manifest"))
    _validate(model)
    return model


def _int_list(entry, key, n, where):
    value = _get(entry, key, list, where)
    _need(len(value) == n and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096
                                  for v in value),
          f"{where}.{key} must be a list of {n} integers in 1..4096, not {value!r}")
    return value


#: the most bytes one array member may hold (a 4096 x 4096 layer of 3 planes is 48 MiB)
MAX_MEMBER_BYTES = 1 << 30
#: manifest.json is read whole: a manifest larger than this is refused unread
MAX_MANIFEST_BYTES = 1 << 24
#: the arrays together may expand to this many times the archive's size (at least
#: MIN_EXPANSION_BYTES): hwgen writes them uncompressed (ZIP_STORED, ratio 1); a
#: re-zipped artifact compresses a few times; a zip bomb, a thousand
MAX_EXPANSION = 64
MIN_EXPANSION_BYTES = 1 << 24


class _Budget:
    """Bytes the archive's arrays may still expand to."""

    def __init__(self, limit):
        self.limit, self.left = limit, limit

    def take(self, n, where):
        _need(n <= self.left, f"{where}: the archive's arrays expand to more than {self.limit:,} bytes, "
                              f"{MAX_EXPANSION} times its size (a zip bomb?)")
        self.left -= n


def _read_array(zf, names, desc, where, dtype, budget=None):
    _need(_get(desc, "dtype", str, where) == dtype, f"{where}.dtype must be {dtype!r}, not {desc['dtype']!r}")
    shape = _get(desc, "shape", list, where)
    _need(all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 1 << 24 for n in shape),
          f"{where}.shape {shape!r} must be a list of non-negative integers")
    path = _get(desc, "file", str, where)
    _need(path in names, f"{where}.file {path!r} is missing from the archive")
    # sized in Python integers before anything is read: no int64 product to wrap, and a member
    # is never decompressed past the size its shape implies (a zip bomb stops here)
    itemsize = np.dtype(dtype).itemsize
    size = math.prod(shape) * itemsize
    _need(size <= MAX_MEMBER_BYTES, f"{where}: shape {shape} needs {size:,} bytes, more than the "
                                    f"{MAX_MEMBER_BYTES:,} an artifact array may hold")
    info = zf.getinfo(path)
    _need(info.file_size == size, f"{where}: {path!r} holds {info.file_size} bytes, shape {shape} needs {size}")
    if budget is not None:
        budget.take(size, where)
    try:
        with zf.open(info) as member:
            raw = member.read(size + 1)
    except Exception as exc:
        raise ArtifactError(f"{where}: cannot read {path!r} ({exc.__class__.__name__}: {exc})") from None
    _need(len(raw) == size, f"{where}: {path!r} holds {len(raw)} bytes, shape {shape} needs {size}")
    _need(hashlib.sha256(raw).hexdigest() == _get(desc, "sha256", str, where),
          f"{where}: {path!r} does not match its SHA-256 (corrupt or edited)")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)


def _validate(model):
    """Check every invariant the reference and the RTL generator rely on."""
    _need(len(model.layers) >= 1, "the model has no layers")
    _need(0 <= model.scale_frac_bits <= 24, f"scale_frac_bits {model.scale_frac_bits} is not within 0..24")
    _need(1 <= model.input_bits <= 16, f"input_bits {model.input_bits} is not within 1..16")
    _need(model.n_classes >= 2, f"n_classes {model.n_classes} must be at least 2")
    _need(model.input_features >= 1, f"input_features {model.input_features} must be at least 1")
    fan_in, names, act_bits = model.input_features, set(), None
    for i, layer in enumerate(model.layers):
        where = f"layer {i} ({layer.name})"
        _need(layer.name not in names, f"{where}: duplicate layer name")
        names.add(layer.name)
        first, last = i == 0, i == len(model.layers) - 1
        _need(layer.input == ("uint" if first else "binary"),
              f"{where}: input must be {'uint' if first else 'binary'}, not {layer.input!r}")
        _need(layer.output == ("scores" if last else "threshold"),
              f"{where}: output must be {'scores' if last else 'threshold'}, not {layer.output!r}")
        if first:
            _need(layer.input_bits == model.input_bits,
                  f"{where}: input_bits {layer.input_bits} differs from the model's {model.input_bits}")
        else:
            _need(layer.input_bits == act_bits, f"{where}: input_bits {layer.input_bits} differs from the "
                  f"previous layer's output_bits {act_bits}")
        _need(layer.nbits.ndim == 2, f"{where}: nbits must be 2-D [out, in], has shape {layer.nbits.shape}")
        _need(layer.out_features >= 1, f"{where}: has no outputs")
        _need(layer.in_features >= 1, f"{where}: has no inputs (fan-in 0)")
        if layer.op == "conv2d":
            _need(not last, f"{where}: the last layer must be dense (it produces the class scores)")
            c, h, w = layer.in_shape
            kh, kw = layer.kernel
            _need(c * kh * kw == layer.in_features,
                  f"{where}: fan-in {layer.in_features} is not in_channels*kh*kw = {c * kh * kw}")
            _need(kh <= h and kw <= w, f"{where}: kernel {kh}x{kw} is larger than the {h}x{w} input map")
            _need(1 <= layer.pool <= min(layer.conv_shape[1:]),
                  f"{where}: pool {layer.pool} must be within 1..{min(layer.conv_shape[1:])}")
        else:
            _need(layer.op == "dense", f"{where}: op must be 'dense' or 'conv2d', not {layer.op!r}")
        _need(layer.in_size == fan_in, f"{where}: takes {layer.in_size} inputs but receives {fan_in}")
        fan_in = layer.out_size
        act_bits = layer.output_bits
        for fname, (dtype, shape_of) in _FIELDS.items():
            arr = getattr(layer, fname)
            if fname in ("nbits", "planes", "alpha") or fname in _OUTPUT_FIELDS[layer.output]:
                _need(arr is not None and tuple(arr.shape) == shape_of(layer),
                      f"{where}: {fname} has shape {None if arr is None else tuple(arr.shape)}, "
                      f"expected {shape_of(layer)}")
        _need(1 <= layer.max_bits <= MAX_BITS, f"{where}: max_bits {layer.max_bits} is not within 1..{MAX_BITS}")
        top = int(layer.nbits.max())
        _need(top <= layer.max_bits, f"{where}: a weight has {top} bits, above max_bits {layer.max_bits} "
              f"(bitwidths must be 0..{MAX_BITS})")
        _need(np.isin(layer.planes, (0, 1)).all(), f"{where}: planes must hold only 0/1 bits")
        b = np.arange(1, layer.max_bits + 1).reshape(-1, 1, 1)
        _need(not (layer.planes.astype(bool) & (layer.nbits[None] < b)).any(),
              f"{where}: planes has bits set beyond a weight's bitwidth")
        _need((layer.alpha >= 0).all() and (layer.alpha < _INT_LIMIT).all(),
              f"{where}: alpha scales must be within 0..2^40")
        worst = int(layer.alpha.max(initial=0)) * layer.max_bits * layer.in_features * 2 ** layer.input_bits
        _need(worst < 2 ** 62, f"{where}: alpha, fan-in and input width could overflow a 64-bit accumulator")
        if layer.output == "threshold":
            _need(1 <= layer.output_bits <= 4, f"{where}: output_bits {layer.output_bits} is not within 1..4")
            _need(np.isin(layer.direction, (-1, 1)).all(), f"{where}: direction must be +1 or -1")
            # compared as is: np.abs(-2^63) is -2^63, which passed an |x| < 2^40 check
            _need(((layer.threshold > -_INT_LIMIT) & (layer.threshold < _INT_LIMIT)).all(),
                  f"{where}: a threshold exceeds 2^40 in magnitude")
        else:
            _need(((layer.bias > -_INT_LIMIT) & (layer.bias < _INT_LIMIT)).all(),
                  f"{where}: a bias exceeds 2^40 in magnitude")
    _need(fan_in == model.n_classes, f"the last layer has {fan_in} outputs but n_classes is {model.n_classes}")
