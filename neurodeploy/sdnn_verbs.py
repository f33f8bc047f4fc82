"""`simulate`, `parity` and `inspect` of a sigma-delta (SDNN) netx file (for `neurodeploy.api`).

Sigma-delta networks send graded messages and are never reset, so they run apart from the CUBA
pipeline: the N samples stream back to back through one state on each backend (the exact
mode in chip time, the emulator, Lava), every backend is compared message for message with the
first, and the first backend's messages are counted and priced like any record.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from neurodeploy.backends.record import SDNNRecord
from neurodeploy.backends.registry import BACKENDS, SDNN_BACKENDS, listed
from neurodeploy.energy import load_preset, storage_estimates
from neurodeploy.errors import UserError
from neurodeploy.files import file_digest
from neurodeploy.netx.sdnn import is_sdnn, read_sdnn
from neurodeploy.neurons.sigma_delta import activity, describe, message_mismatches
from neurodeploy.report.summary import DEFAULT_PRESET, sdnn_energy_sections


def is_sdnn_file(path: str | Path) -> bool:
    """Whether `path` is a netx file of sigma-delta neurons (a .nir or .pt never is)."""
    path = Path(path)
    return path.suffix not in (".nir", ".pt") and path.is_file() and is_sdnn(path)


def load_frames(path: str | Path, input_size: int, samples: int | None = None) -> np.ndarray:
    """Integer frames 'x' [N, T, ...] from an .npz, checked (Lava's Delta takes int32)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f.files:
                raise UserError(f"{path}: no array 'x'; save integer frames [N, T, ...] as x")
            x = f["x"]
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npz ({type(e).__name__}); save it with "
                        "numpy.savez") from None
    x = check_frames(x, input_size, str(path))
    return x[:samples] if samples else x


def check_frames(x: np.ndarray, input_size: int, source: str = "inputs") -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind == "f" and np.isfinite(x).all() and np.array_equal(x, np.round(x)):
        x = x.astype(np.int64)
    if x.dtype.kind not in "iu" or x.ndim < 3 or not x.shape[0] or not x.shape[1]:
        raise UserError(f"{source}: field x must hold integers shaped [N, T, ...] with N, T >= 1, "
                        f"got {x.dtype} {list(x.shape)}")
    if int(np.prod(x.shape[2:])) != input_size:
        raise UserError(f"{source}: field x has {int(np.prod(x.shape[2:]))} values per step; the "
                        f"network's input layer takes {input_size}")
    if np.abs(x.astype(np.int64)).max() >= 2 ** 31:
        raise UserError(f"{source}: field x exceeds int32, which Lava's Delta input takes")
    return x


def run(network: str | Path, frames, backends: list[str], preset: str | None = None,
        samples: int | None = None, timeout_s: float | None = None) -> dict:
    """Run integer frames (an [N, T, ...] array or an .npz holding 'x') through the SDNN on each
    backend; returns simulate.json / parity.json's content (with `comparisons` and
    `message_mismatches` when there is more than one backend)."""
    net = read_sdnn(network)
    try:                                  # a wrong preset fails before the simulation
        priced_with = load_preset(preset or DEFAULT_PRESET)
    except UserError as e:
        raise UserError(f"--preset: {e}") from None
    unknown = [b for b in backends if b not in SDNN_BACKENDS]
    if unknown:
        raise UserError(f"{network}: a sigma-delta network runs on the backends "
                        f"{listed(SDNN_BACKENDS, phrases=True)}, not {unknown[0]!r}")
    if frames is None:
        raise UserError(f"{network}: a sigma-delta network has no recorded dataset; pass "
                        "--data x.npz with integer frames 'x' shaped [N, T, ...]")
    x = (load_frames(frames, net.input_size, samples) if isinstance(frames, (str, Path))
         else check_frames(frames, net.input_size)[:samples or None])
    runs = {name: BACKENDS[name].run_sdnn(network, net, x, timeout_s) for name in backends}
    first = runs[backends[0]]
    steps = int(x.shape[1])
    result = {"network": str(network), "kind": "sigma-delta", "samples": len(x),
              "timesteps": steps,
              "provenance": {"network_sha256": file_digest(network),
                             "inputs_sha256": hashlib.sha256(
                                 repr(x.shape).encode()
                                 + np.ascontiguousarray(x, dtype=np.int64).tobytes()).hexdigest(),
                             "backends": list(backends), "timesteps": steps, "samples": len(x)},
              "warnings": list(net.notes),
              "activity": activity(net, first),
              "messages_per_layer": {layer.name: int(np.count_nonzero(m))
                                     for layer, m in zip(net.layers, first)}}
    record = SDNNRecord(backend=backends[0], inputs=x, layers=first,
                        layer_names=[layer.name for layer in net.layers])
    result.update(sdnn_energy_sections(net, record, priced_with))
    pairs = {other: message_mismatches(first, runs[other]) for other in backends[1:]}
    if pairs:                     # each backend against the first, message for message
        result["comparisons"] = {f"{backends[0]}-{other}": m for other, m in pairs.items()}
        result["message_mismatches"] = {
            "total": sum(m["total"] for m in pairs.values()),
            "compared": sum(m["compared"] for m in pairs.values()),
            "first": next((m["first"] for m in pairs.values() if m["first"]), None)}
    return result


def inspect(path: str | Path) -> dict:
    """What a sigma-delta file holds: each layer as `describe` gives it, the Loihi 2 estimate."""
    net = read_sdnn(path)
    return {"file": str(Path(path)), "kind": "sigma-delta", "layers": describe(net),
            "warnings": list(net.notes),
            **storage_estimates(net)}
