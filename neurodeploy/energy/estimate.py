"""Pricing counted events: energy (dynamic, static), latency, and the T' trade-off.

E_step = N_syn*E_syn + N_active*E_active + N_inactive*E_inactive + N_spikes*E_spike
         + P_static * t_step,
t_step = max over layers of the per-core work (layer counts / the layer's cores, times the
per-operation times) + barrier synchronisation. Every figure comes from a cited preset and
every count from the deployed record; the report keeps both so each number can be traced.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.energy.hardware import resource_estimate
from neurodeploy.energy.presets import Preset


def price(counts: dict, layers: list[dict], preset: Preset,
          accuracy_by_t: list[float] | None = None, mapping: str | None = None) -> dict:
    """counts: {kind: [layers][T]} means per inference; layers: energy.hardware.layer_table;
    mapping: how layers are spread over cores (energy.hardware.resource_estimate; default: the
    preset's), which sets the step time and so the static energy."""
    c = {k: np.asarray(v, dtype=np.float64) for k, v in counts.items()}
    # layers stored sparse (hardware.layer_table) at the preset's sparse-synapse figures
    sparse = np.array([[layer.get("stored_synapses") is not None] for layer in layers])
    syn_pj, syn_ns = (np.where(sparse, dense if figure is None else figure, dense)
                      for dense, figure in ((preset.synaptic_op_pj, preset.sparse_synaptic_op_pj),
                                            (preset.synaptic_op_ns, preset.sparse_synaptic_op_ns)))
    dynamic = (c["synaptic_ops"] * syn_pj
               + c["neuron_active"] * preset.neuron_active_pj
               + c["neuron_inactive"] * preset.neuron_inactive_pj
               + c["spikes"] * preset.spike_out_pj)                          # [L, T] pJ
    resources = resource_estimate(layers, mapping or preset.mapping)
    cores = np.array([r["cores"] for r in resources["layers"]], dtype=np.float64)[:, None]
    work_ns = (c["synaptic_ops"] * syn_ns
               + c["neuron_active"] * preset.neuron_active_ns
               + c["neuron_inactive"] * preset.neuron_inactive_ns
               + c["spikes"] * preset.spike_out_ns) / cores                  # [L, T] per core
    step_ns = work_ns.max(axis=0) + preset.barrier_ns                       # [T]
    static = preset.static_w * step_ns * 1e3                                # W * ns = 1e3 pJ
    steps = dynamic.shape[1]
    per_timestep = [{
        "t": t,
        "spikes": float(c["spikes"][:, t].sum()),
        "synaptic_ops": float(c["synaptic_ops"][:, t].sum()),
        "neuron_updates": float((c["neuron_active"] + c["neuron_inactive"])[:, t].sum()),
        "neuron_updates_active": float(c["neuron_active"][:, t].sum()),
        "dynamic_pj": float(dynamic[:, t].sum()),
        "static_pj": float(static[t]),
        "energy_pj": float(dynamic[:, t].sum() + static[t]),
        "energy_pj_per_layer": [float(e) for e in dynamic[:, t]],
        "step_us": float(step_ns[t] / 1e3) if preset.models_latency else None,
    } for t in range(steps)]
    cum_energy = np.cumsum(dynamic.sum(0) + static)
    cum_latency = np.cumsum(step_ns) / 1e3
    sweep = [{"T": t + 1,
              "accuracy": accuracy_by_t[t] if accuracy_by_t else None,
              "energy_pj": float(cum_energy[t]),
              "latency_us": float(cum_latency[t]) if preset.models_latency else None}
             for t in range(steps)]
    return {
        "per_timestep": per_timestep,
        "timestep_sweep": sweep,
        "resources": resources,
        "energy": {
            "preset": preset.name,
            "source": preset.source,
            "kind": preset.kind,
            "note": preset.note,
            "per_inference_pj": float(dynamic.sum() + static.sum()),
            "dynamic_pj": float(dynamic.sum()),
            "static_pj": float(static.sum()),
            "latency_us": float(step_ns.sum() / 1e3) if preset.models_latency else None,
            "per_layer_pj": {layer["name"]: float(e) for layer, e in zip(layers, dynamic.sum(1))},
            "figures": {k: getattr(preset, k) for k in (
                "synaptic_op_pj", "neuron_active_pj", "neuron_inactive_pj", "spike_out_pj",
                "synaptic_op_ns", "neuron_active_ns", "neuron_inactive_ns", "spike_out_ns",
                "barrier_ns", "static_w")},
            **({"sparse_synaptic_op": [preset.sparse_synaptic_op_pj,
                                       preset.sparse_synaptic_op_ns]}
               if sparse.any() and preset.sparse_synaptic_op_pj is not None else {}),
            "units": "per inference, mean over the evaluated samples",
        },
    }
