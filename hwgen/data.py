"""Datasets and their fixed, documented train/test splits.

Every dataset is returned as unsigned integer pixels (``int64``) plus labels,
because the first hardware layer consumes the integers directly.
"""
from dataclasses import dataclass

import numpy as np

from .errors import HwgenError

__all__ = ["Dataset", "load_dataset", "DATASETS"]


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # int64 [N, features], values in 0..max_value
    y_train: np.ndarray  # int64 [N]
    x_test: np.ndarray
    y_test: np.ndarray
    max_value: int       # largest possible pixel value (digits: 16)
    n_classes: int

    @property
    def in_features(self):
        return self.x_train.shape[1]

    @property
    def input_bits(self):
        """Bits of an unsigned input element."""
        return int(self.max_value).bit_length()


def _digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on install
        raise HwgenError("dataset 'digits' needs scikit-learn (pip install scikit-learn)") from exc
    d = load_digits()
    x = d.data.astype(np.int64)
    y = d.target.astype(np.int64)
    # Fixed split: legacy RandomState(0) permutation (its stream is frozen by
    # NumPy's compatibility policy); the first 1437 images train, the last 360 test.
    perm = np.random.RandomState(0).permutation(len(x))
    train, test = perm[:1437], perm[1437:]
    return Dataset("digits", x[train], y[train], x[test], y[test], max_value=16, n_classes=10)


DATASETS = {"digits": _digits}


def load_dataset(name):
    try:
        loader = DATASETS[name]
    except KeyError:
        raise HwgenError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}") from None
    return loader()
