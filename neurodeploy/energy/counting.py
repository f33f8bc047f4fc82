"""Counting events per layer and timestep from any backend's SpikeRecord.

- synaptic ops: each presynaptic spike costs one op per non-zero outgoing weight (the
  convention of Sinabs and of NeuroBench's effective ACs for binary inputs);
- neuron updates: every neuron of a layer is serviced every step; it is "active" in a step
  where at least one synaptic event reached it, else "inactive";
- spikes: output spikes of the layer.
Counts are means per inference over the record's samples, shape [layers, T]; they are all that
pricing needs, so a report can be repriced without simulating again.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.neurons import IntNetwork

KINDS = ("synaptic_ops", "neuron_active", "neuron_inactive", "spikes")


def count_events(record: SpikeRecord, net: IntNetwork, totals: bool = False) -> dict[str, np.ndarray]:
    """Event counts [layers, T]: means per inference, or exact totals over all samples."""
    counts = {k: [] for k in KINDS}
    pre = record.inputs.astype(np.float64)      # float64 sums of integers stay exact
    for layer, post in zip(net.layers, record.layers):
        connected = (layer.weight != 0).astype(np.float64)            # [out, in]
        active = ((pre @ connected.T) > 0).sum(-1).sum(0)
        counts["synaptic_ops"].append((pre @ connected.sum(0)).sum(0))
        counts["neuron_active"].append(active)
        counts["neuron_inactive"].append(layer.size * record.samples - active)
        counts["spikes"].append(post.sum(-1).sum(0))
        pre = post.astype(np.float64)
    scale = 1 if totals else record.samples
    return {k: np.array(v, dtype=np.float64) / scale for k, v in counts.items()}


def accuracy_by_timestep(record: SpikeRecord, labels: np.ndarray) -> list[float]:
    """Accuracy when the output is read after the first T' steps, for T' = 1..T (one record)."""
    cumulative = record.layers[-1].cumsum(axis=1)                      # [N, T, classes]
    return [float((cumulative[:, t].argmax(1) == labels).mean())
            for t in range(record.timesteps)]
