"""Inputs from a user's .npz file: `x` and `y`, checked before anything is simulated.

`x` is either analog intensities (N, ...) in [0, 1] (floats, encoded like the network's own
data) or spike trains (N, T, ...) of 0/1 (bool or integers). `y` holds N integer labels in
[0, classes). Anything else is refused with one line naming the file, the array and the fix:
a NaN intensity or a label the network cannot output would otherwise give an accuracy that
looks real.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodeploy.errors import UserError


def read_inputs(path: str | Path, classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from a .npz; x is float32 intensities or uint8 spike trains [N, T, ...]."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such input file; expected a .npz with arrays 'x' and 'y'")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x", "y") if k not in z.files]
            if missing:
                raise UserError(f"{path}: array '{missing[0]}' is missing (found: "
                                f"{', '.join(z.files) or 'none'}); save it with "
                                "np.savez(path, x=..., y=...)")
            x, y = z["x"], z["y"]
    except UserError:
        raise
    except Exception as e:      # not a zip, truncated, pickled objects, ...
        raise UserError(f"{path}: not a readable .npz ({type(e).__name__}); save it with "
                        "np.savez(path, x=..., y=...)") from None
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
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise UserError(f"{path}: array 'x' holds NaN or infinite values; clean the inputs")
        if x.min() < 0 or x.max() > 1:
            raise UserError(f"{path}: analog inputs must lie in [0, 1] (array 'x' spans "
                            f"[{x.min():.3g}, {x.max():.3g}]); scale them first")
        return x.astype(np.float32), y.astype(np.int64)
    if x.dtype == bool or (np.issubdtype(x.dtype, np.integer) and x.min() >= 0 and x.max() <= 1):
        if x.ndim < 3:
            raise UserError(f"{path}: binary array 'x' of shape {list(x.shape)} needs a time "
                            "axis: spike trains are (N, T, ...)")
        return x.astype(np.uint8), y.astype(np.int64)
    raise UserError(f"{path}: x must be float intensities (N, ...) in [0, 1] or binary spikes "
                    f"(N, T, ...); got {x.dtype} {list(x.shape)}")
