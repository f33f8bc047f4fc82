"""SpikeRecord: what every backend returns, and all that energy, parity and reports read."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurodeploy.errors import UserError, atomic_path


@dataclass
class SpikeRecord:
    """Spikes of every layer at every window timestep, for N samples.

    `inputs` is [N, T, n_in] and `layers[i]` is [N, T, n_i], all boolean, in window time
    (see neurodeploy.neurons.network). Predictions are the argmax of output spike counts,
    ties going to the lowest class index, identically on every backend.
    """

    backend: str
    inputs: np.ndarray
    layers: list[np.ndarray]
    layer_names: list[str]
    info: dict = field(default_factory=dict)
    readout: np.ndarray | None = None   # [N, T, classes] voltages of a non-spiking last layer

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
        arrays = {"inputs": np.packbits(self.inputs, axis=-1)}
        for i, layer in enumerate(self.layers):
            arrays[f"layer{i}"] = np.packbits(layer, axis=-1)
        if self.readout is not None:
            arrays["readout"] = self.readout.astype(np.int32)
        meta = json.dumps({"backend": self.backend, "layer_names": self.layer_names,
                           "widths": [self.inputs.shape[-1]] + [s.shape[-1] for s in self.layers],
                           "info": self.info})
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, meta=np.array(meta), **arrays, **extra)

    @classmethod
    def load(cls, path: str | Path) -> tuple["SpikeRecord", dict[str, np.ndarray]]:
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                widths = meta["widths"]
                unpack = lambda key, w: np.unpackbits(z[key], axis=-1, count=w).astype(bool)  # noqa
                inputs = unpack("inputs", widths[0])
                layers = [unpack(f"layer{i}", w) for i, w in enumerate(widths[1:])]
                readout = z["readout"].astype(np.int64) if "readout" in z.files else None
                extra = {k: z[k] for k in z.files if k not in ("meta", "inputs", "readout")
                         and not k.startswith("layer")}
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{path}: not a readable spike record ({type(e).__name__}); "
                            "simulate again") from None
        return cls(meta["backend"], inputs, layers, meta["layer_names"], meta["info"],
                   readout), extra
