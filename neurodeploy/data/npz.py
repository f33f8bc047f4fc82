"""Inputs from a user's .npz file: `x` and `y`, checked before anything is simulated.

`x` is either analog intensities (N, ...) in [0, 1] (floats, encoded like the network's own
data) or spike trains (N, T, ...) of 0/1 (bool or integers), or, with `input_bits` N, graded
input events (N, T, ...): integers in 0..2**N - 1 (what netx runs with input_message_bits=N). `y` holds N integer labels in
[0, classes). Anything else is refused with one line naming the file, the array and the fix:
a NaN intensity or a label the network cannot output would otherwise give an accuracy that
looks real.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodeploy.errors import UserError


def load_arrays(path: str | Path, required: tuple[str, ...], optional: tuple[str, ...] = (), *,
                expected: str, save: str) -> dict[str, np.ndarray]:
    """The named arrays of a user's .npz (optional ones only where present), or one line
    naming the file, the missing array and how to save it (`expected`: what the file should
    hold; `save`: the np.savez call that writes it)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such input file; expected a .npz with {expected}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in required if k not in z.files]
            if missing:
                raise UserError(f"{path}: array '{missing[0]}' is missing (found: "
                                f"{', '.join(z.files) or 'none'}); save it with {save}")
            return {k: z[k] for k in (*required, *optional) if k in z.files}
    except UserError:
        raise
    except Exception as e:      # not a zip, truncated, pickled objects, ...
        raise UserError(f"{path}: not a readable .npz ({type(e).__name__}); save it with "
                        f"{save}") from None


def read_inputs(path: str | Path, classes: int | None = None,
                input_bits: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from a .npz; x is float32 intensities, uint8 spike trains [N, T, ...] (0/1 of
    any dtype with a time axis, as read_dataset reads training data) or, with `input_bits`,
    int32 graded input events [N, T, ...]."""
    arrays = load_arrays(path, ("x", "y"), expected="arrays 'x' and 'y'",
                         save="np.savez(path, x=..., y=...)")
    path, x, y = Path(path), arrays["x"], arrays["y"]
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) and y.dtype != bool):
        raise UserError(f"{path}: array 'y' must be 1-D integer labels, got {y.dtype} with shape "
                        f"{list(y.shape)}; store class indices, e.g. y.astype(np.int64)")
    if x.ndim < 2 or len(x) == 0 or 0 in x.shape:
        raise UserError(f"{path}: array 'x' has shape {list(x.shape)}; expected N >= 1 samples "
                        "of intensities (N, ...) or spike trains (N, T, ...)")
    if len(x) != len(y):
        raise UserError(f"{path}: x has {len(x)} samples but y has {len(y)}; give one label "
                        "per sample")
    if y.min() < 0 or (classes is not None and y.max() >= classes):
        bad = int(y.min() if y.min() < 0 else y.max())
        raise UserError(f"{path}: array 'y' holds label {bad}, outside the network's classes "
                        f"0..{(classes or 1) - 1}; check the labels belong to this network")
    if _spikes(x):               # the training data's rule: 0/1 with a time axis, any dtype
        return x.astype(np.uint8), y.astype(np.int64)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise UserError(f"{path}: array 'x' holds NaN or infinite values; clean the inputs")
        if x.min() < 0 or x.max() > 1:
            raise UserError(f"{path}: analog inputs must lie in [0, 1] (array 'x' spans "
                            f"[{x.min():.3g}, {x.max():.3g}]); scale them first")
        return x.astype(np.float32), y.astype(np.int64)
    if x.dtype == bool or (np.issubdtype(x.dtype, np.integer) and x.min() >= 0 and x.max() <= 1):
        raise UserError(f"{path}: binary array 'x' of shape {list(x.shape)} needs a time "
                        "axis: spike trains are (N, T, ...)")
    if np.issubdtype(x.dtype, np.integer) and x.ndim >= 3 and input_bits:
        if x.min() < 0 or x.max() > 2 ** input_bits - 1:
            bad = int(x.min() if x.min() < 0 else x.max())
            raise UserError(f"{path}: array 'x' holds the event {bad}, outside the {input_bits}-bit "
                            f"graded input range 0..{2 ** input_bits - 1}; raise --input-bits or "
                            "rescale the events")
        return x.astype(np.int32), y.astype(np.int64)
    if np.issubdtype(x.dtype, np.integer) and x.ndim >= 3 and x.min() >= 0:
        raise UserError(f"{path}: array 'x' holds integer events up to {int(x.max())}: graded "
                        "input spikes; pass --input-bits N (netx's input_message_bits, events in "
                        "0..2**N - 1) or give binary spikes")
    raise UserError(f"{path}: x must be float intensities (N, ...) in [0, 1], binary spikes "
                    f"(N, T, ...) or graded input events (non-negative integers with "
                    f"--input-bits); got {x.dtype} {list(x.shape)}")


# --- a whole dataset in one .npz: the user's own data, first-class like the built-in sets ---

DATASET_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
NPZ_HINT = "save it with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"


def is_dataset_file(path: str | Path) -> bool:
    """A .npz holding a dataset (x_train, ..., x_test) rather than one set of inputs (x, y)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return "x_test" in z.files
    except Exception:          # not readable: read_inputs / read_dataset says why
        return False


def all_binary(x: np.ndarray) -> bool:
    """Every value exactly 0 or 1: bools, integers (by their extremes: np.isin sorts a copy)
    or floats."""
    if x.dtype == bool:
        return True
    if np.issubdtype(x.dtype, np.integer):
        return x.size == 0 or bool(x.min() >= 0 and x.max() <= 1)
    return np.issubdtype(x.dtype, np.floating) and bool(((x == 0) | (x == 1)).all())


def _spikes(x: np.ndarray) -> bool:
    """Spike trains: bool, or integers / floats that are all exactly 0 or 1, with a time axis."""
    return x.dtype == bool or (x.ndim >= 3 and all_binary(x))


def read_dataset(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (x, y)} from a dataset .npz, every array checked (one-line errors naming the file
    and the array). x is float32 intensities (N, ...) in [0, 1], or uint8 spike trains
    (N, T, ...) when every split holds only 0/1 with a time axis; y is int64 in [0, classes)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such dataset file; {NPZ_HINT}")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = list(z.files)
            missing = [k for k in DATASET_ARRAYS if k not in files]
            if missing:
                raise UserError(f"{path}: array '{missing[0]}' is missing (found: "
                                f"{', '.join(files) or 'none'}); {NPZ_HINT}")
            if ("x_val" in files) != ("y_val" in files):
                raise UserError(f"{path}: give both x_val and y_val or neither (without them a "
                                "seeded validation split of the training set is used)")
            arrays = {k: z[k] for k in (*DATASET_ARRAYS, "x_val", "y_val") if k in files}
    except UserError:
        raise
    except Exception as e:      # not a zip, truncated, pickled objects, ...
        raise UserError(f"{path}: not a readable .npz ({type(e).__name__}); {NPZ_HINT}") from None
    splits = {s: (arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in ("train", "val", "test")
              if f"x_{s}" in arrays}
    for s, (x, y) in splits.items():
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or x.dtype.kind == "c":
            raise UserError(f"{path}: array 'x_{s}' has dtype {x.dtype}; store intensities as "
                            "float32 in [0, 1] or spikes as uint8/bool 0/1")
        if x.ndim < 2 or len(x) == 0 or 0 in x.shape:
            raise UserError(f"{path}: array 'x_{s}' has shape {list(x.shape)}; expected N >= 1 "
                            "samples of intensities (N, ...) or spike trains (N, T, ...)")
        if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) and y.dtype != bool):
            raise UserError(f"{path}: array 'y_{s}' must be 1-D integer labels, got {y.dtype} "
                            f"with shape {list(y.shape)}; store class indices, e.g. "
                            "y.astype(np.int64)")
        if len(x) != len(y):
            raise UserError(f"{path}: x_{s} has {len(x)} samples but y_{s} has {len(y)}; give "
                            "one label per sample")
        if y.min() < 0:
            raise UserError(f"{path}: array 'y_{s}' holds label {int(y.min())}; labels are class "
                            "indices 0..classes-1")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise UserError(f"{path}: array 'x_{s}' holds NaN or infinite values; clean the data")
        if x.min() < 0 or x.max() > 1:
            raise UserError(f"{path}: array 'x_{s}' spans [{x.min():.3g}, {x.max():.3g}]; analog "
                            "inputs must lie in [0, 1] and spikes be 0/1: scale them first")
    shapes = {s: x.shape[1:] for s, (x, _) in splits.items()}
    if len(set(shapes.values())) > 1:
        raise UserError(f"{path}: the splits' samples differ in shape "
                        f"({', '.join(f'x_{s} {list(v)}' for s, v in shapes.items())}); give "
                        "every split the same sample shape")
    classes = int(splits["train"][1].max()) + 1
    for s in ("val", "test"):
        if s in splits and splits[s][1].max() >= classes:
            raise UserError(f"{path}: array 'y_{s}' holds label {int(splits[s][1].max())}, a "
                            f"class the training set never shows (y_train spans "
                            f"0..{classes - 1}); check the labels")
    if classes < 2:
        raise UserError(f"{path}: array 'y_train' holds one class only; a classifier needs two "
                        "or more")
    spikes = all(_spikes(x) for x, _ in splits.values())
    return {s: (x.astype(np.uint8 if spikes else np.float32), y.astype(np.int64))
            for s, (x, y) in splits.items()}
