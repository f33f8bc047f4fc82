"""Datasets as fixed train / validation / test splits of features in [0, 1].

Splits are stratified and seeded independently of training, so every run, seed and backend
evaluates on the same test samples. Model selection only ever looks at the validation split.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader

from neurodeploy.data.encoding import encode, encoded_shape
from neurodeploy.data.npz import read_dataset
from neurodeploy.errors import UserError
from neurodeploy.files import atomic_path, file_digest


@dataclass(frozen=True)
class Split:
    x: np.ndarray   # [N, features], float32 in [0, 1] (for spike data: each input's rate)
    y: np.ndarray   # [N], int64
    spikes: np.ndarray | None = None    # [N, T, features] uint8, for a dataset of spike trains

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
    file: str | None = None          # a user's dataset .npz (see data/npz.py), else None
    sha256: str | None = None        # of that file: which data a checkpoint was made from

    @property
    def features(self) -> int:
        return self.train.x.shape[1]

    @property
    def timesteps(self) -> int | None:
        """T of a dataset of spike trains (None for intensities, which an encoding turns
        into spikes)."""
        return None if self.train.spikes is None else self.train.spikes.shape[1]

    def encoded(self, split: str, encoding: dict) -> np.ndarray:
        """A split's input spikes [N, T, ...]: intensities encoded as `encoding` says, spike
        trains as they are (their T must be the encoding's)."""
        part = getattr(self, split)
        if part.spikes is None:
            return encode(part.x, encoding)
        if self.timesteps != int(encoding["timesteps"]):
            raise UserError(f"{self.file}: the dataset holds spike trains of T={self.timesteps} "
                            f"steps; set encoding.timesteps: {self.timesteps} in the recipe")
        return part.spikes

    def input_shape(self, encoding: dict) -> tuple[int, ...]:
        """The network's per-timestep input shape for this data and encoding."""
        return self.shape if self.timesteps else encoded_shape(self.shape, encoding)

    def provenance(self, split_seed: int) -> dict:
        """What a checkpoint and a manifest record about the data that made them."""
        return {"name": self.name, "split_seed": split_seed,
                **({"file": self.file, "sha256": self.sha256} if self.file else {}),
                "samples": {s: len(getattr(self, s)) for s in ("train", "val", "test")}}


def _digits():
    """scikit-learn's 8x8 digits (1,797 images, pixel values 0..16); ships with scikit-learn."""
    from sklearn.datasets import load_digits   # ~30 ms at every start: only when it is used
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


def cache_dir() -> Path:
    """Where decoded datasets are kept: $NEURODEPLOY_CACHE, else $XDG_CACHE_HOME/neurodeploy,
    else ~/.cache/neurodeploy."""
    if os.environ.get("NEURODEPLOY_CACHE"):
        return Path(os.environ["NEURODEPLOY_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "neurodeploy"


def _decoded(path: Path) -> np.ndarray:
    """`_idx(path)`, decoded once per content: gunzipping Fashion-MNIST took longer than
    simulating 2,000 of its images, on every call. The array is kept in cache_dir() under the
    sha256 of the source file (hashing costs a fraction of decoding), written atomically, with
    that digest inside; a cache file that does not load or names another digest is rebuilt,
    and where nothing can be written the file is decoded every time, as before."""
    digest = file_digest(path)
    cached = cache_dir() / f"{path.name}.{digest[:16]}.npz"
    try:
        with np.load(cached, allow_pickle=False) as kept:
            if str(kept["sha256"]) == digest:
                return kept["data"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass                                         # absent or damaged: decode again
    data = _idx(path)
    with contextlib.suppress(OSError):
        with atomic_path(cached) as tmp, open(tmp, "wb") as f:
            np.savez(f, data=data, sha256=np.str_(digest))
    return data


def _fashion_part(part: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's official "train" (60,000) or "test" (10,000) images and labels."""
    kind = {"train": "train", "test": "t10k"}[part]
    files = {}
    for what in ("images-idx3", "labels-idx1"):
        name = f"{kind}-{what}-ubyte"
        found = [FASHION_DIR / f"{name}{ext}" for ext in (".gz", "")
                 if (FASHION_DIR / f"{name}{ext}").is_file()]
        if not found:
            raise UserError(f"Fashion-MNIST not found: {FASHION_DIR}/{name}.gz is missing; "
                            f"{FASHION_HINT}")
        files[what] = _decoded(found[0])
    return files["images-idx3"].reshape(-1, 28 * 28), files["labels-idx1"].astype(np.int64)


@dataclass(frozen=True)
class BuiltIn:
    """A dataset the tool reads itself: its image shape, and either all its samples (split
    here, seeded: `whole`) or its official parts (`part("train" | "test")`, the test part
    kept whole and readable alone). "file" stands for the user's own .npz (dataset.file)."""
    shape: tuple[int, int, int] | None
    whole: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    part: Callable[[str], tuple[np.ndarray, np.ndarray]] | None = None


DATASETS = {"digits": BuiltIn((1, 8, 8), whole=_digits),
            "fashion-mnist": BuiltIn((1, 28, 28), part=_fashion_part),
            "file": BuiltIn(None)}


def input_source(data: str) -> str:
    """`data` (--data: a built-in dataset's name or a .npz path), or the refusal that says
    which names there are; checked before any other option, as a user fixes the value first."""
    if not data.endswith(".npz") and (data not in DATASETS or data == "file"):
        names = ", ".join(n for n in DATASETS if n != "file")
        raise UserError(f"--data {data}: no such dataset; give {names} or the path of a .npz "
                        "file (x and y, or a dataset's x_train ... y_test)")
    return data


def _split(x, y, fraction: float, seed: int):
    """A seeded split, stratified when every class has two samples (else plain)."""
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 and len(y) * fraction >= len(counts) else None
    try:
        return train_test_split(x, y, test_size=fraction, stratify=stratify, random_state=seed)
    except ValueError as e:     # too few samples to split
        raise UserError(f"cannot split {len(y)} training samples into train and validation "
                        f"({e}); give more samples, or x_val and y_val") from None


def load_file_dataset(path: str | Path, split_seed: int = 0, val_fraction: float = 0.1,
                      sha256: str | None = None) -> Dataset:
    """A dataset .npz (see data/npz.py), with the built-in sets' guarantees: fixed splits (no
    x_val: a stratified split of train seeded by `split_seed`), checked arrays, and its sha256.
    `sha256`: the hash a checkpoint or manifest recorded; a file that changed is refused."""
    path = Path(path)
    splits = read_dataset(path)
    digest = file_digest(path)
    if sha256 is not None and digest != sha256:
        raise UserError(f"{path}: its sha256 {digest[:12]} is not the {sha256[:12]} recorded when "
                        "the network was made from it; restore that file or distill again")
    if "val" not in splits:
        x_tr, x_va, y_tr, y_va = _split(*splits["train"], val_fraction, split_seed)
        splits["train"], splits["val"] = (x_tr, y_tr), (x_va, y_va)
    spiking = splits["train"][0].dtype == np.uint8

    def part(x, y):
        if spiking:   # teachers read each input's firing rate; the student reads the spikes
            return Split(x.mean(1).reshape(len(x), -1).astype(np.float32), y,
                         x.reshape(*x.shape[:2], -1))
        return Split(x.reshape(len(x), -1), y)
    x0 = splits["train"][0]
    return Dataset("file", *(part(*splits[s]) for s in ("train", "val", "test")),
                   num_classes=int(splits["train"][1].max()) + 1,
                   shape=tuple(x0.shape[2:] if spiking else x0.shape[1:]), file=str(path),
                   sha256=digest)


def load_data(cfg) -> Dataset:
    """The one place a recipe's dataset ({name, split_seed[, file]}) is loaded."""
    if getattr(cfg, "file", None):
        return load_file_dataset(cfg.file, cfg.split_seed)
    return load_dataset(cfg.name, cfg.split_seed)


def load_dataset(name: str, split_seed: int = 0, test_fraction: float = 0.2,
                 val_fraction: float = 0.1) -> Dataset:
    """Fixed splits. Fashion-MNIST keeps its official 10,000-image test set and carves a
    stratified validation set of `val_fraction` from its 60,000 training images. A path to a
    dataset .npz loads that file (see load_file_dataset)."""
    if name.endswith(".npz"):
        return load_file_dataset(name, split_seed, val_fraction)
    if name not in DATASETS or name == "file":
        raise UserError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))} "
                        "(file: a dataset .npz, named by dataset.file)")
    built_in = DATASETS[name]
    if built_in.part:
        (x_rest, y_rest), (x_test, y_test) = built_in.part("train"), built_in.part("test")
        val_share = val_fraction
    else:
        x, y = built_in.whole()
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=test_fraction, stratify=y, random_state=split_seed)
        val_share = val_fraction / (1 - test_fraction)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_share, stratify=y_rest, random_state=split_seed)
    x_train, x_val, x_test = map(_intensities, (x_train, x_val, x_test))  # bytes split: 4x less
    return Dataset(name, Split(x_train, y_train), Split(x_val, y_val), Split(x_test, y_test),
                   num_classes=int(y_rest.max()) + 1, shape=built_in.shape)


def _intensities(x: np.ndarray) -> np.ndarray:
    """Pixel bytes as float32 in [0, 1]; other arrays are intensities already."""
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x


def _arrays(source, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from a torch Dataset or DataLoader yielding (x, y) pairs."""
    loader = source if isinstance(source, DataLoader) else DataLoader(source, batch_size=256)
    xs, ys = [], []
    try:
        for batch in loader:
            x, y = batch[0], batch[1]
            xs.append(torch.as_tensor(x).detach().cpu().numpy())
            ys.append(torch.as_tensor(y).detach().cpu().numpy().reshape(-1))
    except (TypeError, IndexError, ValueError, RuntimeError) as e:
        raise UserError(f"{what}: items must be (x, y) pairs of a tensor and a label "
                        f"({type(e).__name__}: {str(e).splitlines()[0][:80]})") from None
    if not xs:
        raise UserError(f"{what}: the dataset is empty; give at least one sample per split")
    return np.concatenate(xs), np.concatenate(ys)


def save_dataset(data, path: str | Path, split_seed: int = 0,
                 test_fraction: float = 0.2) -> Path:
    """Materialize in-memory data as a dataset .npz at `path` (returned), so it gets every
    guarantee of a file dataset: checked arrays, fixed splits, a sha256 in the checkpoint.

    `data`: a torch Dataset or DataLoader (a seeded, stratified `test_fraction` becomes the
    test split, like digits), a (train, test) pair or a {train, test[, val]} dict of them."""
    if isinstance(data, tuple) and len(data) == 2:
        data = {"train": data[0], "test": data[1]}
    if isinstance(data, dict):
        unknown = set(data) - {"train", "val", "test"}
        if unknown or not {"train", "test"} <= set(data):
            raise UserError(f"data: expected keys train, test[, val], got {sorted(data)}")
        arrays = {}
        for split, source in data.items():
            arrays[f"x_{split}"], arrays[f"y_{split}"] = _arrays(source, f"data[{split!r}]")
    else:
        x, y = _arrays(data, "data")
        try:
            x_tr, x_te, y_tr, y_te = _split(x, y.astype(np.int64), test_fraction, split_seed)
        except (UserError, TypeError):
            raise UserError(f"data: cannot carve a test split from {len(y)} samples; give more "
                            "samples or a {train, test} pair") from None
        arrays = {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path


def encoded_test(metadata: dict, encoding: dict,
                 samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first `samples` (default all) of the test split of the dataset a network records
    ({name, split_seed[, file, sha256]}), encoded, and their labels. A dataset's official
    test part is read alone: decoding and splitting Fashion-MNIST's 60,000 training images
    cost `simulate` more than the simulation. The encodings are per sample, so encoding a
    prefix gives the prefix of the encoded whole."""
    built_in = DATASETS.get(metadata.get("name"))
    if built_in and built_in.part and not metadata.get("file"):
        x, y = built_in.part("test")
        return encode(_intensities(x[:samples]), encoding), y[:samples]
    data = dataset_of(metadata)
    return data.encoded("test", encoding)[:samples], data.test.y[:samples]


def dataset_of(metadata: dict) -> Dataset:
    """The dataset a checkpoint or network records ({name, split_seed[, file, sha256]}); a
    file must still have the recorded sha256."""
    if metadata.get("file"):
        return load_file_dataset(metadata["file"], metadata["split_seed"],
                                 sha256=metadata.get("sha256"))
    return load_dataset(metadata["name"], metadata["split_seed"])
