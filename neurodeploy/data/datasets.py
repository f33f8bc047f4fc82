"""Datasets as fixed train / validation / test splits of features in [0, 1].

Splits are stratified and seeded independently of training, so every run, seed and backend
evaluates on the same test samples. Model selection only ever looks at the validation split.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from neurodeploy.errors import UserError


@dataclass(frozen=True)
class Split:
    x: np.ndarray   # [N, features], float32 in [0, 1]
    y: np.ndarray   # [N], int64

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int

    @property
    def features(self) -> int:
        return self.train.x.shape[1]


def _digits():
    """scikit-learn's 8x8 digits (1,797 images, 16 grey levels); ships with scikit-learn."""
    from sklearn.datasets import load_digits
    data = load_digits()
    return data.data.astype(np.float32) / 16.0, data.target.astype(np.int64)


DATASETS = {"digits": _digits}


def load_dataset(name: str, split_seed: int = 0, test_fraction: float = 0.2,
                 val_fraction: float = 0.1) -> Dataset:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}")
    x, y = DATASETS[name]()
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=split_seed)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_fraction / (1 - test_fraction), stratify=y_rest,
        random_state=split_seed)
    return Dataset(name, Split(x_train, y_train), Split(x_val, y_val), Split(x_test, y_test),
                   num_classes=int(y.max()) + 1)
