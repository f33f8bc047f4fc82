"""Reading one field of a NIR node: a graph is somebody else's file, so every value is checked
(text, NaN, wrong sizes, out of range) and refused in one line naming the node and field."""
from __future__ import annotations

import numpy as np

from neurodeploy.errors import UserError


def numbers(value, node_name: str, field: str, source: str, nan_ok: bool = False) -> np.ndarray:
    """A numeric NIR field as float64, refusing text, objects and NaN (inf passes: tau = inf
    means no decay)."""
    a = np.asarray(value)
    if a.dtype.kind not in "iuf":         # bools are not numbers here
        raise UserError(f"{source}: node '{node_name}': {field} holds {a.dtype} values, not "
                        "numbers; fix the graph")
    a = a.astype(np.float64)
    if not nan_ok and np.isnan(a).any():
        raise UserError(f"{source}: node '{node_name}': {field} holds NaN; fix the graph")
    return a


def pair(value, node_name: str, field: str, source: str, lo: int) -> tuple[int, int]:
    """A conv stride/padding/dilation: one or two integers >= lo."""
    a = numbers(value, node_name, field, source).reshape(-1)
    if a.size not in (1, 2) or not np.isfinite(a).all() or (a != np.round(a)).any() \
            or a.min() < lo or a.max() > 4096:
        raise UserError(f"{source}: node '{node_name}': {field} must be one or two integers in "
                        f"[{lo}, 4096], got {a.tolist()}; fix the graph")
    return tuple(int(x) for x in np.broadcast_to(a, (2,)))


def groups(value, node_name: str, source: str) -> int:
    a = numbers(value, node_name, "groups", source).reshape(-1)
    if a.size != 1 or not np.isfinite(a).all() or a[0] != round(a[0]) or not 1 <= a[0] <= 4096:
        raise UserError(f"{source}: node '{node_name}': groups must be one integer in [1, 4096], "
                        f"got {a.tolist()}; fix the graph")
    return int(a[0])


def shape_of(value, node_name: str, source: str) -> tuple[int, ...]:
    a = numbers(value, node_name, "shape", source).reshape(-1)
    if a.size == 0 or not np.isfinite(a).all() or (a != np.round(a)).any() or a.min() < 1 \
            or np.prod(a) > 2 ** 31 - 1:
        raise UserError(f"{source}: node '{node_name}': shape {a.tolist()} must be positive "
                        "integers; fix the graph")
    return tuple(int(x) for x in a)


def per_neuron(value, n: int | None = None,
               where: tuple[str, str, str] = ("<graph>", "?", "?")) -> np.ndarray:
    """A parameter as a flat per-neuron array (scalars are broadcast to n neurons); `where` is
    (source, node, field) for messages."""
    source, node, field = where
    a = numbers(value, node, field, source).reshape(-1)
    if n is None or a.size == n:
        return a
    if a.size == 1:
        return np.full(n, a[0])
    raise UserError(f"{source}: node '{node}': {field} has {a.size} values for {n} neurons; "
                    "give one per neuron or a single value")


def uniform(node_name: str, field: str, values, source: str) -> float:
    """A per-neuron field that Loihi holds once per layer: its one value."""
    arr = np.atleast_1d(numbers(values, node_name, field, source))
    if arr.size == 0 or not np.all(arr == arr.flat[0]):
        raise UserError(f"{source}: node '{node_name}': {field} differs between neurons; Loihi "
                        "holds one value per layer: make it uniform")
    return float(arr.flat[0])


def integer(node_name: str, field: str, value: float, lo: int, hi: int, source: str) -> int:
    """A value that must already sit on Loihi's integer grid, within [lo, hi]."""
    if not np.isfinite(value) or abs(value - round(value)) > 1e-6 * max(1.0, abs(value)):
        raise UserError(f"{source}: node '{node_name}': {field} = {value:.6g} is not an integer "
                        "on Loihi's grid; quantize the graph before lowering")
    if not lo <= round(value) <= hi:
        raise UserError(f"{source}: node '{node_name}': {field} = {round(value)} is outside "
                        f"Loihi's range [{lo}, {hi}]")
    return int(round(value))
