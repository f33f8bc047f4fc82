"""Datasets as fixed train / validation / test splits of features in [0, 1].

Splits are stratified and seeded independently of training, so every run, seed and backend
evaluates on the same test samples. Model selection only ever looks at the validation split.
"""
from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

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
    shape: tuple[int, ...] = ()      # one sample's shape, e.g. (1, 28, 28); x is stored flat

    @property
    def features(self) -> int:
        return self.train.x.shape[1]


def _digits():
    """scikit-learn's 8x8 digits (1,797 images, 16 grey levels); ships with scikit-learn."""
    from sklearn.datasets import load_digits
    data = load_digits()
    return data.data.astype(np.float32) / 16.0, data.target.astype(np.int64)


FASHION_DIR = Path(os.environ.get("NEURODEPLOY_FASHION_MNIST",
                                  "/usr/share/datasets/fashion-mnist"))
FASHION_HINT = ("install it with `apt-get install dataset-fashion-mnist` (Debian) or point "
                "NEURODEPLOY_FASHION_MNIST at a directory holding the four IDX .gz files")


def _idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not): the format MNIST and Fashion-MNIST ship in."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or dtype != 0x08:
        raise UserError(f"{path}: not an unsigned-byte IDX file; re-download the dataset")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _fashion_part(kind: str) -> tuple[np.ndarray, np.ndarray]:
    files = {}
    for part in ("images-idx3", "labels-idx1"):
        name = f"{kind}-{part}-ubyte"
        found = [FASHION_DIR / f"{name}{ext}" for ext in (".gz", "")
                 if (FASHION_DIR / f"{name}{ext}").is_file()]
        if not found:
            raise UserError(f"Fashion-MNIST not found: {FASHION_DIR}/{name}.gz is missing; "
                            f"{FASHION_HINT}")
        files[part] = _idx(found[0])
    images = files["images-idx3"].reshape(-1, 28 * 28).astype(np.float32) / 255.0
    return images, files["labels-idx1"].astype(np.int64)


DATASETS = {"digits": (_digits, (1, 8, 8)), "fashion-mnist": (None, (1, 28, 28))}


def load_dataset(name: str, split_seed: int = 0, test_fraction: float = 0.2,
                 val_fraction: float = 0.1) -> Dataset:
    """Fixed splits. Fashion-MNIST keeps its official 10,000-image test set and carves a
    stratified validation set of `val_fraction` from its 60,000 training images."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}")
    loader, shape = DATASETS[name]
    if name == "fashion-mnist":
        x_rest, y_rest = _fashion_part("train")
        x_test, y_test = _fashion_part("t10k")
        val_share = val_fraction
    else:
        x, y = loader()
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=test_fraction, stratify=y, random_state=split_seed)
        val_share = val_fraction / (1 - test_fraction)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_share, stratify=y_rest, random_state=split_seed)
    return Dataset(name, Split(x_train, y_train), Split(x_val, y_val), Split(x_test, y_test),
                   num_classes=int(y_rest.max()) + 1, shape=shape)
