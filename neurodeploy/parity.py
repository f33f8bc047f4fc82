"""Parity: do two backends compute the same spikes, layer by layer and step by step?"""
from __future__ import annotations

import numpy as np

from neurodeploy.backends.record import SpikeRecord


def compare(a: SpikeRecord, b: SpikeRecord, labels: np.ndarray | None = None) -> dict:
    if a.inputs.shape != b.inputs.shape or not np.array_equal(a.inputs, b.inputs):
        raise ValueError("parity needs both backends to see the same input spikes")
    per_layer = [(x != y).sum(axis=(0, 2)) for x, y in zip(a.layers, b.layers)]   # [T] each
    first = None
    for name, x, y in zip(a.layer_names, a.layers, b.layers):
        diff = np.argwhere(x != y)
        if len(diff):
            n, t, i = (int(v) for v in diff[0])
            first = {"layer": name, "sample": n, "t": t, "neuron": i,
                     a.backend: bool(x[n, t, i]), b.backend: bool(y[n, t, i])}
            break
    readout = None
    if a.readout is not None or b.readout is not None:
        readout = (int((a.readout != b.readout).sum())
                   if a.readout is not None and b.readout is not None else None)
    result = {
        "backends": [a.backend, b.backend],
        "readout_voltage_mismatches": readout,
        "spike_mismatches": int(sum(m.sum() for m in per_layer)),
        "spike_mismatches_per_layer_timestep": {
            name: [int(v) for v in m] for name, m in zip(a.layer_names, per_layer)},
        "first_mismatch": first,
        "prediction_agreement": float((a.predictions == b.predictions).mean()),
        "spikes_compared": int(sum(x.size for x in a.layers)),
    }
    if labels is not None:
        result["accuracy"] = {a.backend: a.accuracy(labels), b.backend: b.accuracy(labels)}
    return result
