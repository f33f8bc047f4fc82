"""Counting events per layer and timestep from any backend's SpikeRecord.

- synaptic ops: each presynaptic spike costs one op per non-zero outgoing weight (the
  convention of Sinabs and NeuroBench's effective ACs for binary inputs);
- neuron updates: every neuron of a layer is serviced every step; it is "active" in a step
  where at least one synaptic event reached it, else "inactive";
- spikes: output spikes of the layer.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.energy.presets import Preset
from neurodeploy.neurons import IntNetwork


def count_events(record: SpikeRecord, net: IntNetwork) -> dict[str, np.ndarray]:
    """Per-layer, per-timestep means over samples: arrays of shape [layers, T]."""
    synops, active, inactive, spikes = [], [], [], []
    pre = record.inputs.astype(np.float32)
    for layer, post in zip(net.layers, record.layers):
        connected = (layer.weight != 0).astype(np.float32)           # [out, in]
        synops.append((pre @ connected.sum(0)).mean(0))               # [T]
        reached = (pre @ connected.T) > 0                             # [N, T, out]
        n_active = reached.sum(-1).mean(0)
        active.append(n_active)
        inactive.append(layer.size - n_active)
        spikes.append(post.sum(-1).mean(0))
        pre = post.astype(np.float32)
    return {k: np.array(v) for k, v in (("synaptic_ops", synops), ("neuron_active", active),
                                         ("neuron_inactive", inactive), ("spikes", spikes))}


def energy_report(record: SpikeRecord, net: IntNetwork, preset: Preset) -> dict:
    """The report's `per_timestep` list and `energy` summary (means per inference)."""
    c = count_events(record, net)
    per_layer_pj = (c["synaptic_ops"] * preset.synaptic_op_pj
                    + c["neuron_active"] * preset.neuron_active_pj
                    + c["neuron_inactive"] * preset.neuron_inactive_pj
                    + c["spikes"] * preset.spike_out_pj)                  # [layers, T]
    per_timestep = [{
        "t": t,
        "spikes": float(c["spikes"][:, t].sum()),
        "synaptic_ops": float(c["synaptic_ops"][:, t].sum()),
        "neuron_updates": float((c["neuron_active"] + c["neuron_inactive"])[:, t].sum()),
        "neuron_updates_active": float(c["neuron_active"][:, t].sum()),
        "energy_pj": float(per_layer_pj[:, t].sum()),
        "energy_pj_per_layer": [float(e) for e in per_layer_pj[:, t]],
    } for t in range(record.timesteps)]
    return {
        "per_timestep": per_timestep,
        "energy": {
            "preset": preset.name,
            "source": preset.source,
            "note": preset.note,
            "per_inference_pj": float(per_layer_pj.sum()),
            "per_layer_pj": {name: float(e) for name, e in
                             zip(record.layer_names, per_layer_pj.sum(1))},
            "figures_pj": {"synaptic_op": preset.synaptic_op_pj,
                           "neuron_active": preset.neuron_active_pj,
                           "neuron_inactive": preset.neuron_inactive_pj,
                           "spike_out": preset.spike_out_pj},
            "counted_from": record.backend,
            "units": "mean per inference over the evaluated samples",
        },
    }
