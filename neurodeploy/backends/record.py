"""SpikeRecord: what every backend returns, and all that energy, parity and reports read."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
        return self.counts.argmax(axis=1)

    def accuracy(self, labels: np.ndarray) -> float:
        return float((self.predictions == np.asarray(labels)).mean())
