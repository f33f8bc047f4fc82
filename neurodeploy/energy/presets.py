"""Per-operation energy figures, each with the source it comes from."""
from __future__ import annotations

from dataclasses import dataclass

from neurodeploy.errors import UserError


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    synaptic_op_pj: float        # one presynaptic spike delivered over one non-zero synapse
    neuron_active_pj: float      # neuron update in a step where it received input
    neuron_inactive_pj: float    # neuron update in a step without input (still serviced)
    spike_out_pj: float          # one output spike leaving a neuron
    note: str = ""

    def __post_init__(self):
        for field in ("synaptic_op_pj", "neuron_active_pj", "neuron_inactive_pj", "spike_out_pj"):
            if getattr(self, field) < 0:
                raise ValueError(f"preset {self.name}: {field} must be >= 0")


PRESETS = {p.name: p for p in (
    Preset(
        name="loihi1-davies2018",
        source="Davies et al., 'Loihi: A Neuromorphic Manycore Processor with On-Chip "
               "Learning', IEEE Micro 38(1), 2018, Table 2 (pre-silicon, 0.75 V)",
        synaptic_op_pj=23.6, neuron_active_pj=81.0, neuron_inactive_pj=52.0, spike_out_pj=1.7,
        note="Loihi 1 figures; synaptic op is the table's minimum; spike out is the "
             "within-tile spike energy; dynamic energy only (no static power figure)."),
)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown energy preset {name!r}; available: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
