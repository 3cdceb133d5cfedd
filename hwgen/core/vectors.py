"""A user's own data: input vectors and labels from ``.npy``, ``.npz`` or CSV
files, checked against what a model takes (docs/cli.md, "Your own data").

Formats:

* ``.npz``: arrays ``x`` (inputs) and ``y`` (labels; optional where only
  inputs are needed), as ``numpy.savez(path, x=x, y=y)`` writes them;
* ``.npy``: one array, the inputs; the labels are a second ``.npy`` file
  (``hwgen sim --inputs x.npy --labels y.npy``, or ``--train x.npy,y.npy``);
* ``.csv``: one example per line, the label first and then the features, as
  integers separated by commas; a first line that is not all integers is a
  header and is skipped.

Inputs are unsigned integers ``[N, features]`` or images ``[N, C, H, W]``
(flattened C-major, as hwgen's datasets are), each element within
``0 .. 2**input_bits - 1``. Labels are integers ``[N]`` within
``0 .. n_classes - 1``. Anything else is one :class:`~hwgen.errors.HwgenError`
that names the file and what is wrong: floats, NaN, an empty array, the wrong
shape, values out of range, labels outside the classes, lengths that differ.
Files are read without pickle.
"""
import csv
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from ..errors import HwgenError

__all__ = ["read_vectors", "read_spec", "check_vectors", "check_for_model", "sha256", "FORMATS"]

FORMATS = (".npz", ".npy", ".csv")


def sha256(path):
    """The sha256 of a file (as reports record the data they used)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_npy(path):
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise HwgenError(f"{path}: not a readable .npy file (no NumPy header)")
        return np.load(path, allow_pickle=False)
    except ValueError as exc:      # an object array needs pickle
        raise HwgenError(f"{path}: cannot read the array without pickle ({exc}); save plain integer "
                         f"arrays") from None
    except (OSError, EOFError) as exc:
        raise HwgenError(f"{path}: not a readable .npy file ({exc})") from None


def _load_npz(path, need_labels):
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            if "x" not in names:
                raise HwgenError(f"{path} has no array 'x' (it has {', '.join(sorted(names)) or 'none'}); "
                                 f"save it with numpy.savez(path, x=inputs, y=labels)")
            if need_labels and "y" not in names:
                raise HwgenError(f"{path} has no array 'y' (the labels); save it with "
                                 f"numpy.savez(path, x=inputs, y=labels)")
            return z["x"], z["y"] if "y" in names else None
    except HwgenError:
        raise
    except ValueError as exc:
        raise HwgenError(f"{path}: cannot read its arrays without pickle ({exc}); save plain integer "
                         f"arrays") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise HwgenError(f"{path}: not a readable .npz file ({exc})") from None


def _load_csv(path):
    rows = []
    try:
        with open(path, newline="") as f:
            for k, row in enumerate(csv.reader(f)):
                fields = [c.strip() for c in row]
                if not fields or fields == [""]:
                    continue
                try:
                    rows.append([int(c) for c in fields])
                except ValueError:
                    if k == 0:
                        continue           # a header line
                    bad = next(c for c in fields if not _is_int(c))
                    raise HwgenError(f"{path} line {k + 1}: {bad!r} is not an integer (a CSV row is the "
                                     f"label, then the features, as integers)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HwgenError(f"{path}: cannot read the CSV file ({exc})") from None
    if not rows:
        raise HwgenError(f"{path} holds no examples")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise HwgenError(f"{path}: the rows have different lengths ({', '.join(map(str, sorted(widths)))} "
                         f"fields)")
    if widths.pop() < 2:
        raise HwgenError(f"{path}: a row needs the label and at least one feature")
    table = np.array(rows, dtype=np.int64)
    return table[:, 1:], table[:, 0]


def _is_int(text):
    try:
        int(text)
        return True
    except ValueError:
        return False


def read_vectors(path, labels=None, *, need_labels=False):
    """``(x, y)`` as stored in ``path`` (``y`` from ``labels``, a ``.npy``
    file, where given; None where there are none and ``need_labels`` is
    false). The arrays are returned as read: :func:`check_vectors` checks
    them."""
    path = Path(path)
    if not path.is_file():
        raise HwgenError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise HwgenError(f"{path}: unknown data format {suffix or '(no suffix)'}; use "
                         f"{', '.join(FORMATS)} (docs/cli.md, 'Your own data')")
    if labels is not None and suffix != ".npy":
        raise HwgenError(f"separate labels go with a .npy inputs file; {path} holds its own labels")
    if suffix == ".npz":
        x, y = _load_npz(path, need_labels)
    elif suffix == ".csv":
        x, y = _load_csv(path)
    else:
        x = _load_npy(path)
        y = None
        if labels is not None:
            labels = Path(labels)
            if not labels.is_file():
                raise HwgenError(f"{labels} does not exist")
            if labels.suffix.lower() != ".npy":
                raise HwgenError(f"{labels}: labels beside a .npy inputs file are a .npy file too")
            y = _load_npy(labels)
        elif need_labels:
            raise HwgenError(f"{path} holds inputs only: give the labels too (X.npy,Y.npy), or use an .npz "
                             f"with x and y, or a CSV")
    return x, y


def _first_bad(mask):
    index = tuple(int(i) for i in np.argwhere(mask)[0])
    return index[0] if len(index) == 1 else index


def check_vectors(x, y=None, *, input_bits, features, image_shape=None, n_classes=None, name="inputs"):
    """``(x, y)`` as int64 ``[N, features]`` and ``[N]`` (``y`` None stays
    None), or an :class:`~hwgen.errors.HwgenError` naming ``name`` and the
    problem. ``image_shape`` ``(C, H, W)``: also take ``x`` as ``[N, C, H, W]``."""
    x = np.asarray(x)
    if x.dtype.kind == "f":
        if np.isnan(x).any():
            raise HwgenError(f"{name} contain NaN (at {_first_bad(np.isnan(x))}); hwgen takes unsigned "
                             f"integers of {input_bits} bits")
        raise HwgenError(f"{name} are floats ({x.dtype}); hwgen takes unsigned integers of {input_bits} bits "
                         f"(quantize them first, e.g. np.round(x * scale).astype(np.int64))")
    if x.dtype.kind not in "iub":
        raise HwgenError(f"{name} have dtype {x.dtype}; hwgen takes unsigned integers of {input_bits} bits")
    if x.ndim == 0 or x.shape[0] == 0:
        raise HwgenError(f"{name} are empty (shape {list(x.shape)})")
    shapes = [f"[N, {features}]"]
    if image_shape is not None:
        shapes.append("[N, " + ", ".join(map(str, image_shape)) + "]")
    if x.ndim == 4 and image_shape is not None and tuple(x.shape[1:]) == tuple(image_shape):
        x = x.reshape(len(x), -1)
    if x.ndim != 2 or x.shape[1] != features:
        raise HwgenError(f"{name} have shape {list(x.shape)}; the model takes {' or '.join(shapes)}")
    x = x.astype(np.int64)
    hi = 2 ** input_bits - 1
    out = (x < 0) | (x > hi)
    if out.any():
        at = _first_bad(out)
        raise HwgenError(f"{name} must lie within 0..{hi} ({input_bits}-bit unsigned); found {x[at]} at "
                         f"[{at[0]}, {at[1]}] (values {x.min()}..{x.max()})")
    if y is None:
        return x, None
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise HwgenError(f"the labels of the {name} have dtype {y.dtype}; labels are integers 0.."
                         f"{(n_classes or 1) - 1}")
    if y.ndim != 1:
        raise HwgenError(f"the labels of the {name} have shape {list(y.shape)}; expected [N]")
    if len(y) != len(x):
        raise HwgenError(f"{name}: {len(x)} inputs but {len(y)} labels")
    y = y.astype(np.int64)
    if n_classes is not None:
        bad = (y < 0) | (y >= n_classes)
        if bad.any():
            at = _first_bad(bad)
            raise HwgenError(f"the labels of the {name} must lie within 0..{n_classes - 1} (the model has "
                             f"{n_classes} classes); found {y[at]} at {at}")
    elif (y < 0).any():
        raise HwgenError(f"the labels of the {name} must be >= 0; found {y.min()}")
    return x, y


def read_spec(spec, *, need_labels=True):
    """``(x, y, files)`` of a data argument: ``FILE.npz``, ``FILE.csv`` or
    ``X.npy,Y.npy``; ``files`` lists ``{"path", "sha256"}`` of each file read."""
    parts = [p for p in str(spec).split(",")]
    if len(parts) > 2 or not all(parts):
        raise HwgenError(f"data {spec!r}: give FILE.npz, FILE.csv or X.npy,Y.npy")
    x, y = read_vectors(parts[0], parts[1] if len(parts) == 2 else None, need_labels=need_labels)
    return x, y, [{"path": str(p), "sha256": sha256(p)} for p in parts]


def model_image_shape(model):
    """``(C, H, W)`` of a model whose first layer is a convolution, else None."""
    first = model.layers[0]
    return tuple(first.in_shape) if first.op == "conv2d" else None


def check_for_model(model, x, y=None, *, name="inputs"):
    """:func:`check_vectors` against what the artifact ``model`` takes."""
    return check_vectors(x, y, input_bits=model.input_bits, features=model.input_features,
                         image_shape=model_image_shape(model), n_classes=model.n_classes, name=name)
