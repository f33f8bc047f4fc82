"""Per-operation energy and time figures, each with the source it comes from.

No per-operation table for Loihi 2 has been published (see the project's energy references):
`loihi2-proxy` prices operations with Loihi 1's figures and adds Loihi 2's measured static
power, and says so. The literature rows are whole-chip "pJ per synaptic operation" figures of
other chips: they price synaptic ops only, all-in, and are not comparable one to one.
A user preset is a YAML file with the same fields (`neurodeploy energy ... --preset my.yaml`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neurodeploy.errors import UserError
from neurodeploy.schema import one_line, read_yaml, yaml_number

DAVIES = ("Davies et al., 'Loihi: A Neuromorphic Manycore Processor with On-Chip Learning', "
          "IEEE Micro 38(1), 2018, Table 2 (pre-silicon, 0.75 V)")
SANAFE = ("Boyle et al., 'SANA-FE: Simulating Advanced Neuromorphic Architectures for Fast "
          "Exploration', IEEE TCAD 2025, arch/loihi.yaml (silicon-calibrated Loihi 1)")
PILOTNET = ("lava-dl PilotNet LIF benchmark notebook, Loihi 2 Oheo Gulch single chip, 2023: "
            "0.232 W static of 0.679 W total")
SENECA = "Tang et al., 'SENECA', Frontiers in Neuroscience 2023, Table 3"

# Bounds far above any chip's figure (Loihi: tens of pJ and ns per operation, 0.2 W static),
# low enough that a report's products of counts and figures stay finite JSON numbers.
Energy = Annotated[float, Field(ge=0, le=1e6)]       # pJ per operation
Time = Annotated[float, Field(ge=0, le=1e6)]         # ns per operation
Text = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00-\x1f]*$")]


class Preset(BaseModel):
    """Figures of one chip; validated, so a user preset cannot price events as NaN or inf."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)
    name: Text
    source: Text
    synaptic_op_pj: Energy           # one spike delivered over one non-zero synapse
    # the same over a synapse stored sparse (netx's sparse_fc_layer, the lava-sparse backend's
    # records); None: no separate figure, priced as synaptic_op
    sparse_synaptic_op_pj: Energy | None = None
    sparse_synaptic_op_ns: Time | None = None
    neuron_active_pj: Energy = 0.0   # neuron update in a step in which it received input
    neuron_inactive_pj: Energy = 0.0  # neuron update without input (Loihi services every neuron)
    spike_out_pj: Energy = 0.0       # one output spike leaving its neuron (and core)
    synaptic_op_ns: Time = 0.0       # times, for the latency estimate (0: not modelled)
    neuron_active_ns: Time = 0.0
    neuron_inactive_ns: Time = 0.0
    spike_out_ns: Time = 0.0
    barrier_ns: Time = 0.0           # end-of-step synchronisation
    static_w: Annotated[float, Field(ge=0, le=1e3)] = 0.0   # static power (0: not modelled)
    kind: Literal["per-operation", "all-in per synaptic op"] = "per-operation"
    note: Annotated[str, Field(max_length=2000)] = ""
    mapping: Literal["brief", "compiler"] = "brief"   # cores per layer: energy/hardware.py

    @property
    def models_latency(self) -> bool:
        return self.synaptic_op_ns > 0


_LOIHI1 = dict(synaptic_op_pj=23.6, neuron_active_pj=81.0, neuron_inactive_pj=52.0,
               spike_out_pj=1.7, synaptic_op_ns=3.5, neuron_active_ns=8.4,
               neuron_inactive_ns=5.3, spike_out_ns=2.1, barrier_ns=113.0)

# benchmarks/silicon.py on lava-dl's PilotNet LIF (results/silicon.json): measured / predicted
# for loihi1-davies2018's figures with the compiler mapping, dynamic energy and step time.
# Fitted to that one network and that one measurement: it cannot validate itself.
_PILOTNET_FIT = {"energy": 1.093544 / 1.1495432, "time": (1e6 / 408.91 / 16) / 297.3742}

PRESETS = {p.name: p for p in (
    Preset(name="loihi1-davies2018", source=DAVIES, **_LOIHI1,
           note="Loihi 1 pre-silicon figures: synaptic op at the table's minimum energy and "
                "maximum time, spike out = within-tile spike, barrier = 1-32 tiles; "
                "dynamic energy only (the table gives no static power)."),
    Preset(name="loihi1-sanafe", source=SANAFE,
           synaptic_op_pj=35.5, synaptic_op_ns=3.8,              # dense synapse per spike
           sparse_synaptic_op_pj=33.6, sparse_synaptic_op_ns=4.7,  # sparse synapse per spike
           neuron_active_pj=51.2 + 21.6, neuron_active_ns=6.0 + 3.7,   # access + update
           neuron_inactive_pj=51.2, neuron_inactive_ns=6.0,      # access only
           spike_out_pj=69.3 + 111.0, spike_out_ns=30.0 + 5.1,   # spike out + message out
           barrier_ns=113.0,
           note="Silicon-calibrated Loihi 1 figures; our mapping: active neuron = access + "
                "update, inactive = access, spike = spike out + one message (feed-forward "
                "layers sit on different cores); barrier from Davies 2018; no static power."),
    Preset(name="loihi2-proxy", source=f"{DAVIES}; static power: {PILOTNET}", **_LOIHI1,
           static_w=0.232,
           note="PROXY, not a Loihi 2 measurement: Loihi 1 per-operation energies and times "
                "plus the measured static power of a whole Loihi 2 chip (charged for the "
                "estimated step time)."),
    Preset(name="loihi2-pilotnet-calibrated",
           source=f"{DAVIES}, scaled to {PILOTNET}: dynamic energy x "
                  f"{_PILOTNET_FIT['energy']:.4f}, times x {_PILOTNET_FIT['time']:.4f}",
           **{k: v * _PILOTNET_FIT["time" if k.endswith("_ns") else "energy"]
              for k, v in _LOIHI1.items()},
           static_w=0.232078, mapping="compiler",
           note="CALIBRATED on one measurement (lava-dl's PilotNet LIF on Loihi 2): Loihi 1 "
                "per-operation figures scaled so that this network's dynamic energy and step "
                "time match what Intel measured, cores mapped by the compiler's PilotNet limits. "
                "One network cannot validate it; other networks may differ by more than the "
                "uncalibrated presets do."),
    Preset(name="truenorth-merolla2014", kind="all-in per synaptic op", synaptic_op_pj=26.0,
           source="Merolla et al., Science 345(6197), 2014 (all-in, whole chip)"),
    Preset(name="spinnaker2", kind="all-in per synaptic op", synaptic_op_pj=10.0,
           source=f"SpiNNaker2 as tabulated in {SENECA}"),
    Preset(name="odin", kind="all-in per synaptic op", synaptic_op_pj=12.7,
           source=f"ODIN (Frenkel et al. 2019) as tabulated in {SENECA}"),
    Preset(name="reckon", kind="all-in per synaptic op", synaptic_op_pj=5.3,
           source=f"ReckOn (Frenkel & Indiveri 2022) as tabulated in {SENECA}"),
    Preset(name="tianjic", kind="all-in per synaptic op", synaptic_op_pj=1.54,
           source=f"Tianjic (Pei et al. 2019) as tabulated in {SENECA}"),
    Preset(name="seneca", kind="all-in per synaptic op", synaptic_op_pj=2.8, source=SENECA),
)}


def load_preset(name_or_path: str) -> Preset:
    """A built-in preset by name, or a user preset from a YAML file (validated)."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        raise UserError(f"unknown energy preset {name_or_path!r}; available: "
                        f"{', '.join(PRESETS)}, or a preset YAML file")
    if not path.exists():
        raise UserError(f"{path}: no such preset file")
    data = read_yaml(path, "preset")
    if not isinstance(data, dict):
        raise UserError(f"{path}: a preset is a mapping of fields to values (name, source, "
                        "synaptic_op_pj, ...), got "
                        f"{'an empty file' if data is None else type(data).__name__}")
    try:
        return Preset.model_validate(data)
    except ValidationError as e:
        raise UserError(_one_line(e, path)) from None


def _one_line(error: ValidationError, path: Path) -> str:
    """The first problem, worded as `<file>: <field> ...; <fix>`."""
    err = error.errors(include_url=False)[0]
    field = str(err["loc"][-1]) if err["loc"] else ""
    if err["type"] == "missing":
        return (f"{path}: missing field {field!r}; every preset needs name, source and "
                "synaptic_op_pj")
    if err["type"] == "extra_forbidden":
        return (f"{path}: unknown field {field!r}; known: "
                f"{', '.join(sorted(Preset.model_fields))}")
    if field.endswith(("_pj", "_ns", "_w")):
        bound, unit = (("1e3", "W") if field == "static_w"
                       else ("1e6", "pJ" if field.endswith("_pj") else "ns"))
        return (f"{path}: {field} must be a number >= 0 and <= {bound} ({unit}), got "
                f"{err.get('input')!r}{yaml_number(err.get('input'))}")
    return one_line(error, str(path), Preset)
