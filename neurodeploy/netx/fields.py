"""Reading a netx HDF5 file's fields, shared by the CUBA (hdf5.py) and sigma-delta (sdnn.py)
readers: every value is checked before it becomes a number, and whatever a damaged file makes
h5py raise becomes one line naming the file, the field and `fix`, never a traceback."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.neurons.network import Conv

REEXPORT = "re-export the network with `neurodeploy export`"
MAX_SIZE = 2 ** 31 - 1      # neurons per layer or input values; beyond it shapes overflow
CONV_MAX = 4096             # stride, padding, dilation and groups beyond it are typos
# What h5py raises, anywhere while reading, on a damaged file: a broken B-tree is a
# RuntimeError ("Unable to get group info"), a broken attribute type a TypeError.
H5PY_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


@contextlib.contextmanager
def open_hdf5(path: str | Path, fix: str) -> Iterator[h5py.File]:
    """The one way a user's HDF5 file is opened for reading: whatever h5py raises on a damaged
    file, while opening or while reading inside the block, becomes one line naming the file
    and `fix`, never a traceback."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 netx file ({e}); {fix}") from None
    try:
        with f:
            yield f
    except UserError:
        raise
    except H5PY_ERRORS as e:
        raise UserError(f"{path}: the HDF5 file is damaged ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:80] if str(e) else 'unreadable'}); {fix}") \
            from None


@contextlib.contextmanager
def open_layers(path: Path, fix: str) -> Iterator[tuple[h5py.File, h5py.Group]]:
    """A netx file opened for reading (see open_hdf5) with its 'layer' group; a missing file
    or one without layers is refused in one line."""
    if not path.is_file():
        raise UserError(f"{path}: no such network file; run `neurodeploy export` first")
    with open_hdf5(path, fix) as f:
        groups = f.get("layer")
        if not isinstance(groups, h5py.Group) or len(groups) == 0:
            raise UserError(f"{path}: no 'layer' group with layers, so not a netx network; "
                            f"{fix}")
        yield f, groups


def layer_group(groups: h5py.Group, i: int, path: Path) -> h5py.Group:
    """Layer `i`: netx reads the groups as numbered 0..n-1."""
    g = groups.get(str(i))
    if not isinstance(g, h5py.Group):
        raise UserError(f"{path}: layer groups must be numbered 0..{len(groups) - 1}; "
                        f"'{i}' is missing")
    return g


def read(group, key: str, where: str, fix: str = REEXPORT):
    """The value of dataset `key`, refusing a missing key, a group, or an unreadable value."""
    try:
        item = group.get(key)
        if not isinstance(item, h5py.Dataset):
            what = "is missing" if item is None else "is a group, not a dataset"
            raise UserError(f"{where}: '{key}' {what}; {fix}")
        return item[()]
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise UserError(f"{where}: '{key}' cannot be read ({type(e).__name__}); {fix}") \
            from None


def ints(value, where: str, key: str, lo: int, hi: int, fix: str = REEXPORT) -> np.ndarray:
    """`value` as int64, refusing bools, text, NaN/inf, fractions (netx's astype(int) would
    truncate them) and values outside [lo, hi]. Floats holding exact integers are accepted:
    lava-dl's own exporter writes weights as float32."""
    a = np.asarray(value)
    if a.dtype.kind not in "iuf":
        raise UserError(f"{where}: '{key}' holds {a.dtype} values, not integers; {fix}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise UserError(f"{where}: '{key}' holds NaN or infinity; {fix}")
        if (a != np.round(a)).any():
            bad = a[a != np.round(a)].flat[0]
            raise UserError(f"{where}: '{key}' holds the fraction {bad:g}; netx would truncate "
                            f"it: store integers ({fix})")
    if a.size and (a.min() < lo or a.max() > hi):
        raise UserError(f"{where}: '{key}' spans [{a.min():g}, {a.max():g}], outside its range "
                        f"[{lo}, {hi}]; {fix}")
    return a.astype(np.int64)


def text(group, key: str, where: str, fix: str = REEXPORT) -> str | None:
    """Dataset `key` as one string; None when absent."""
    if key not in group:
        return None
    v = np.asarray(read(group, key, where, fix)).reshape(-1)
    if v.size != 1 or not isinstance(v[0], (bytes, str)):
        raise UserError(f"{where}: '{key}' is not text; {fix}")
    return v[0].decode("utf-8", "replace") if isinstance(v[0], bytes) else str(v[0])


def shape(group, where: str, fix: str = REEXPORT) -> tuple[int, ...]:
    s = ints(read(group, "shape", where, fix), where, "shape", 1, MAX_SIZE, fix).reshape(-1)
    if len(s) not in (1, 3) or np.prod(s, dtype=np.float64) > MAX_SIZE:
        raise UserError(f"{where}: 'shape' is {s.tolist()}; a netx shape is [n] or [C, H, W] "
                        f"with at most {MAX_SIZE} values; {fix}")
    return tuple(int(v) for v in s)


def unknown(group, allowed: set, where: str) -> None:
    """Refuse keys netx would use (or ignore) that the reader does not model."""
    extra = sorted(set(group.keys()) - allowed)
    if extra:
        raise UserError(f"{where}: '{extra[0]}' is not supported (netx would use or ignore it, "
                        f"this reader would not model it); remove it (supported: "
                        f"{', '.join(sorted(allowed))})")


def conv(g, in_shape: tuple[int, ...], where: str, fix: str = REEXPORT) -> Conv:
    """A conv layer's geometry as netx reads it: stride, padding, dilation as one value or
    [H, W]; groups as one value."""
    def pair(key, default, lo):
        if key not in g:
            return (default, default)
        v = ints(read(g, key, where, fix), where, key, lo, CONV_MAX, fix).reshape(-1)
        if v.size not in (1, 2):
            raise UserError(f"{where}: '{key}' has {v.size} values; give one or two [H, W]")
        return tuple(int(x) for x in np.broadcast_to(v, (2,)))
    groups = 1
    if "groups" in g:
        v = ints(read(g, "groups", where, fix), where, "groups", 1, CONV_MAX, fix).reshape(-1)
        if v.size != 1:
            raise UserError(f"{where}: 'groups' has {v.size} values; store one integer")
        groups = int(v[0])
    return Conv(input_shape=tuple(in_shape), stride=pair("stride", 1, 1),
                padding=pair("padding", 0, 0), dilation=pair("dilation", 1, 1), groups=groups)


def weight(g, where: str, rows: int | None, lo: int, hi: int, fix: str = REEXPORT,
           key: str = "weight") -> np.ndarray:
    """'weight' (or `key`: 'weight/real', 'weight/imag') shaped as netx shapes it: slayer's
    trailing time axis of a conv weight dropped, lava-dl's (n,) for a dense (n, 1); `rows`: a
    dense layer's declared neurons (None for conv layers)."""
    w = ints(read(g, key, where, fix), where, key, lo, hi, fix)
    if rows is None and w.ndim == 5 and w.shape[4] == 1:
        w = w[..., 0]
    if rows is not None and w.ndim == 1 and w.size % rows == 0:
        w = w.reshape(rows, -1)
    return w


def netx_delays(value, dims: tuple, where: str, limit: int,
                fix: str = REEXPORT) -> tuple[np.ndarray, str | None]:
    """A dense layer's `delay` as netx 0.6.0's create_dense builds it: floats floored (its
    astype(int) of lava-dl's floored delays), values beyond `limit` (62) clamped to it, then one
    value for all, one per output neuron (checked first, as netx does), one per input, or the
    full (out, in) matrix. Returns the matrix and, when netx would clamp, what it clamped."""
    d = np.asarray(value)
    if d.dtype.kind == "f" and np.isfinite(d).all():
        d = np.floor(d)
    d = ints(d, where, "delay", 0, 2 ** 31 - 1, fix)
    clamped = None
    if d.size and d.max() > limit:
        over = d[d > limit]
        span = f"{over.min()}" if over.min() == over.max() else f"{over.min()}-{over.max()}"
        clamped = (f"{over.size} delay{'s' if over.size > 1 else ''} of {span} clamped to "
                   f"{limit}, as netx does")
        d = np.minimum(d, limit)
    out, inp = dims
    if d.size == 1:
        return np.full(dims, int(d.reshape(-1)[0]), dtype=np.int64), clamped
    if d.ndim == 1 and d.size == out:
        return np.repeat(d.reshape(-1, 1), inp, axis=1), clamped
    if d.ndim == 1 and d.size == inp:
        return np.repeat(d.reshape(1, -1), out, axis=0), clamped
    if d.shape == tuple(dims):
        return d, clamped
    raise UserError(f"{where}: 'delay' has shape {list(d.shape)}; netx takes one value, one per "
                    f"output ({out}), one per input ({inp}) or ({out}, {inp}); {fix}")
