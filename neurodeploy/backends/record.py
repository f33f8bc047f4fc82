"""SpikeRecord: what every backend returns for either kind of network (binary spikes of a
CUBA network, graded messages of a sigma-delta one), and all that energy, parity and reports
read."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurodeploy.data.npz import all_binary
from neurodeploy.errors import UserError
from neurodeploy.files import atomic_path, file_digest


def record_inputs(spikes: np.ndarray) -> np.ndarray:
    """The inputs a record keeps: booleans for binary spikes, int32 values for graded input
    events (netx's input_message_bits), which differ from spikes in what they carry."""
    spikes = np.asarray(spikes)
    if all_binary(spikes):
        return spikes.astype(bool)
    return spikes.astype(np.int32)


def inputs_digest(spikes: np.ndarray, labels: np.ndarray | None = None) -> str:
    """sha256 of input spikes (as 0/1 bytes, with their shape; graded input events as their
    int64 values) and labels: what a record saw."""
    h = hashlib.sha256()
    spikes = np.asarray(spikes)
    graded = not all_binary(spikes)
    h.update(json.dumps(list(spikes.shape)).encode())
    if graded:
        h.update(b"graded" + np.ascontiguousarray(spikes, dtype=np.int64).tobytes())
    else:
        h.update(np.packbits(np.ascontiguousarray(spikes != 0), axis=None).tobytes())
    if labels is not None:
        h.update(np.ascontiguousarray(np.asarray(labels, dtype=np.int64)).tobytes())
    return h.hexdigest()


def provenance(network: str | Path, spikes: np.ndarray, labels: np.ndarray, backend: str,
               **settings) -> dict:
    """What produced a record: the network file's hash, the inputs' hash, backend, T (and any
    setting that changes the result, such as --dt). Records with different provenance never mix."""
    return {"network_sha256": file_digest(network), "inputs_sha256": inputs_digest(spikes, labels),
            "samples": int(len(spikes)), "timesteps": int(np.asarray(spikes).shape[1]),
            "backend": backend,     # settings as JSON gives them back (tuples become lists)
            **json.loads(json.dumps({k: v for k, v in settings.items() if v is not None}))}


def provenance_difference(expected: dict, found: dict | None) -> str | None:
    """None when `found` is `expected`, else a short phrase naming the first field that differs."""
    if found is None:
        return "it records no provenance (made by an older neurodeploy)"
    first = ["network_sha256", "inputs_sha256", "backend", "timesteps", "samples"]
    for key in first + sorted((set(expected) | set(found)) - set(first)):
        a, b = expected.get(key), found.get(key)
        if a != b:
            short = lambda v: v[:12] if isinstance(v, str) and len(v) == 64 else v  # noqa: E731
            return f"its {key} is {short(b)!r}, this run's is {short(a)!r}"
    return None


def _arrays_digest(arrays: dict) -> str:
    """sha256 of a saved record's arrays (name, dtype, shape, values): a record edited after it
    was written (spikes, readout voltages, indices, labels) no longer matches the one it keeps;
    the zip's CRC-32 only catches damaged bytes, and provenance only the inputs."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode() + a.tobytes())
    return h.hexdigest()


def _checked_info(info, path) -> dict:
    """A saved record's `info`: a mapping whose provenance, when present, is a mapping too."""
    if not isinstance(info, dict) or not isinstance(info.get("provenance", {}), dict):
        raise UserError(f"{path}: its metadata field 'info' (or 'info.provenance') is not a "
                        "mapping; delete it and simulate again")
    return info


@dataclass
class SpikeRecord:
    """Events of every layer at every window timestep, for N samples.

    `inputs` is [N, T, n_in] and `layers[i]` is [N, T, n_i], in window time (see
    neurodeploy.neurons.network): booleans for spikes; integers for graded events (a
    sigma-delta network's messages, int64; graded input events, int32: `record_inputs`).
    Predictions are the argmax of output spike counts, ties going to the lowest class index,
    identically on every backend. `backend` is the backend's name (backends/registry.py), the
    key a record has in every JSON file; `detail` says what exactly ran (device, Lava's run
    configuration), for text: `label`.
    """

    backend: str
    inputs: np.ndarray
    layers: list[np.ndarray]
    layer_names: list[str]
    info: dict = field(default_factory=dict)
    readout: np.ndarray | None = None   # [N, T, classes] voltages of a non-spiking last layer
    detail: str = ""                    # e.g. "exact mode, cpu", "Loihi2SimCfg fixed_pt"

    @property
    def label(self) -> str:
        """The backend as text shows it: "lava (Loihi2SimCfg fixed_pt)"."""
        return f"{self.backend} ({self.detail})" if self.detail else self.backend

    def __post_init__(self):
        n, t = self.inputs.shape[:2]
        for name, s in zip(self.layer_names, self.layers):
            if s.shape[:2] != (n, t):
                raise ValueError(f"layer {name}: record shape {s.shape} does not match "
                                 f"{n} samples x {t} steps")

    @property
    def samples(self) -> int:
        return self.inputs.shape[0]

    @property
    def timesteps(self) -> int:
        return self.inputs.shape[1]

    @property
    def counts(self) -> np.ndarray:
        """Output spike counts per sample and class, [N, classes]."""
        return self.layers[-1].sum(axis=1)

    @property
    def predictions(self) -> np.ndarray:
        """argmax of output spike counts, or of the time-summed voltage of a readout layer."""
        if self.readout is not None:
            return self.readout.sum(axis=1).argmax(axis=1)
        return self.counts.argmax(axis=1)

    def accuracy(self, labels: np.ndarray) -> float:
        return float((self.predictions == np.asarray(labels)).mean())

    def save(self, path: str | Path, **extra: np.ndarray) -> None:
        """Bit-packed .npz, written atomically; `extra` arrays (e.g. sample indices) ride along."""
        graded = self.inputs.dtype != bool
        arrays = {"inputs_graded" if graded else "inputs":
                  self.inputs.astype(np.int32) if graded else np.packbits(self.inputs, axis=-1)}
        for i, layer in enumerate(self.layers):
            if layer.dtype == bool:
                arrays[f"layer{i}"] = np.packbits(layer, axis=-1)
            else:
                arrays[f"layer{i}_graded"] = layer.astype(np.int64)
        if self.readout is not None:
            arrays["readout"] = self.readout.astype(np.int32)
        arrays |= {k: np.asarray(v) for k, v in extra.items()}
        meta = json.dumps({"backend": self.backend, "detail": self.detail,
                           "layer_names": self.layer_names,
                           "widths": [self.inputs.shape[-1]] + [s.shape[-1] for s in self.layers],
                           "info": self.info, "sha256": _arrays_digest(arrays)})
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, meta=np.array(meta), **arrays)

    @staticmethod
    def read_info(path: str | Path) -> dict:
        """A saved record's `info` (e.g. its provenance) without unpacking its spikes."""
        try:
            with np.load(path, allow_pickle=False) as z:
                info = json.loads(str(z["meta"]))["info"]
        except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
            raise UserError(f"{path}: not a readable spike record ({type(e).__name__}); "
                            "delete it and simulate again") from None
        return _checked_info(info, path)

    @classmethod
    def load(cls, path: str | Path) -> tuple["SpikeRecord", dict[str, np.ndarray]]:
        """Read a record written by `save`; anything else is refused with one line."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                z = {k: npz[k] for k in npz.files}      # each read decompresses: read once
                meta = json.loads(str(z["meta"]))
                widths = meta["widths"]
                if not isinstance(meta["layer_names"], list) or not isinstance(widths, list) \
                        or not all(type(w) is int and w >= 1 for w in widths) \
                        or len(meta["layer_names"]) != len(widths) - 1 \
                        or not isinstance(meta["backend"], str) \
                        or not all(isinstance(n, str) for n in meta["layer_names"]):
                    raise ValueError("fields widths, layer_names or backend are malformed")
                unpack = lambda key, w: np.unpackbits(z[key], axis=-1, count=w).astype(bool)  # noqa
                if "inputs_graded" in z:                # graded input events, as they were
                    inputs = z["inputs_graded"]
                    if inputs.dtype.kind not in "iu" or inputs.shape[-1:] != (widths[0],):
                        raise ValueError("graded inputs are not integers of the stated width")
                    inputs = inputs.astype(np.int32)
                else:
                    inputs = unpack("inputs", widths[0])
                layers = [z[f"layer{i}_graded"].astype(np.int64) if f"layer{i}_graded" in z
                          else unpack(f"layer{i}", w) for i, w in enumerate(widths[1:])]
                readout = z.get("readout")
                if readout is not None and (readout.dtype == bool
                                            or not np.issubdtype(readout.dtype, np.integer)):
                    raise ValueError("readout voltages are not integers")
                readout = None if readout is None else readout.astype(np.int64)
                extra = {k: v for k, v in z.items() if k not in ("meta", "inputs", "inputs_graded",
                                                                 "readout")
                         and not k.startswith("layer")}
                info = meta["info"]
                intact = meta.get("sha256") == _arrays_digest(
                    {k: v for k, v in z.items() if k != "meta"})
                record = cls(meta["backend"], inputs, layers, meta["layer_names"], info, readout,
                             str(meta.get("detail", "")))
        except Exception as e:      # a damaged file can fail inside numpy, zipfile or json
            raise UserError(f"{path}: not a readable spike record ({type(e).__name__}); "
                            "delete it and simulate again") from None
        if not intact:
            raise UserError(f"{path}: its arrays do not match the sha256 saved with them (changed "
                            "after it was written, or by an older neurodeploy); delete it and "
                            "simulate again")
        _checked_info(info, path)
        if inputs.ndim != 3 or (readout is not None and readout.shape[:2] != inputs.shape[:2]):
            raise UserError(f"{path}: the record's arrays have inconsistent shapes; delete it and "
                            "simulate again")
        return record, extra

