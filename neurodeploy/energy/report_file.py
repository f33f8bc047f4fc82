"""report.json and simulate.json as pydantic schemas, one per file for writing and reading:
`report.summary` builds them and writes their dump (`Report`; `Record`, or `PricedRecord` when
priced; a sigma-delta network's simulate.json and parity.json are `SigmaDeltaRecord`s),
`neurodeploy energy` validates a file with them before repricing, and writes `Priced`.

Repricing trusts the counts in a report, so a hand-edited or damaged report must not turn into
negative, NaN or infinite energies: the sections that pricing reads are checked for type,
range and shape (layers x timesteps) first, and NaN/Infinity anywhere in the file is refused
(they are not JSON, and would be copied into the repriced output).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from neurodeploy.errors import UserError
from neurodeploy.schema import (MAX_TIMESTEPS, OPEN, Generated, Section, Timesteps, one_line,
                                read_text)

FIX = "re-run `neurodeploy run` to write a fresh report"
FIX_RECORD = "re-run `neurodeploy simulate` to write a fresh simulate.json"
# Mean events per inference in one layer and step: Loihi 2 chips hold 1.2e8 synapses, so 1e12
# is far beyond any real count and keeps count x figure (<= 1e6 pJ) a finite number.
Count = Annotated[float, Field(ge=0, le=1e12)]
Rows = Annotated[list[Annotated[list[Count], Field(max_length=MAX_TIMESTEPS)]],
                 Field(max_length=1024)]
KINDS = ("synaptic_ops", "neuron_active", "neuron_inactive", "spikes")


class Counts(BaseModel):
    model_config = OPEN
    layers: Annotated[list[str], Field(min_length=1, max_length=1024)]
    synaptic_ops: Rows
    neuron_active: Rows
    neuron_inactive: Rows
    spikes: Rows


Size = Annotated[int, Field(ge=0, le=10 ** 12)]


class Layer(BaseModel):
    """A row of energy.hardware.layer_table: every field feeds the resource estimate."""
    model_config = ConfigDict(strict=True, extra="forbid")
    name: str
    kind: Literal["dense", "conv"] = "dense"
    neurons: Annotated[int, Field(ge=1, le=2 ** 31)]
    synapses: Size
    inputs: Size = 0
    macs: Size = 0
    nonzero_synapses: Size = 0
    fan_in: Size = 0
    recurrent_synapses: Size = 0
    max_delay: Size = 0
    neuron: Literal["RF", "RF_IZ"] | None = None       # resonate-and-fire; else CUBA
    stored_synapses: Size | None = None                 # sparse storage (lava-sparse)


class Baseline(BaseModel):
    """An ANN baseline (energy.ann): copied into the repriced output, so checked like counts."""
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
    name: str
    source: str
    macs: Size
    memory_pj: Annotated[float, Field(ge=0, le=1e15)] | None = None
    per_inference_pj: Annotated[float, Field(ge=0, le=1e15)]


class Network(BaseModel):
    model_config = OPEN
    sha256: str | None = None


class PricedReport(BaseModel):
    """What `report.summary.priced` reads from a report (required) and what it gives."""
    model_config = OPEN
    timesteps: Timesteps
    layers: Annotated[list[Layer], Field(min_length=1, max_length=1024)]
    counts: Counts
    accuracy_by_timestep: list[Annotated[float, Field(ge=0, le=1)]] | None  # None: no labels
    ann_baselines: list[Baseline]
    network: Network | None = None
    energy: Section | None = None                 # priced: energy.estimate.price
    per_timestep: list[Section] | None = None
    timestep_sweep: list[Section] | None = None
    resources: Section | None = None

    @model_validator(mode="after")
    def _shapes(self):
        """Every count table is layers x timesteps, the same layers as the layer table."""
        n, steps = len(self.layers), self.timesteps
        if len(self.counts.layers) != n:
            raise ValueError(f"counts.layers: {len(self.counts.layers)} names for {n} layers "
                             "in `layers`")
        for kind in KINDS:
            rows = getattr(self.counts, kind)
            if len(rows) != n or any(len(r) != steps for r in rows):
                raise ValueError(f"counts.{kind}: shape {len(rows)} x "
                                 f"{sorted({len(r) for r in rows})} steps, expected {n} layers x "
                                 f"{steps} timesteps")
        if self.accuracy_by_timestep is not None and len(self.accuracy_by_timestep) != steps:
            raise ValueError(f"accuracy_by_timestep: {len(self.accuracy_by_timestep)} entries "
                             f"for {steps} timesteps")
        return self


class Provenance(BaseModel):
    model_config = OPEN
    network_sha256: str


class Report(PricedReport):
    """report.json, as `run` and `explore` write it. Only what pricing reads is required, so
    an older report (or a hand-made one) still reprices; the rest is checked where present."""
    recipe: str | None = None
    dataset: Section | None = None                # the netx metadata's, as exported
    encoding: Section | None = None
    backend: str | None = None                    # the backend that ran the deployed record
    provenance: Provenance | None = None          # backends.record.provenance
    timing: dict[str, float] | None = None        # seconds per stage of `run`
    training: Section | None = None
    artifacts: dict[str, str] | None = None       # the run folder's files, by role
    samples: Annotated[int, Field(ge=0)] | None = None
    accuracy: dict[str, float | None] | None = None   # student_deployed (older: student_lava)
    parity: Section | None = None                 # parity.compare: deployed vs exact record
    source_parity: Section | None = None          # parity.compare_source, or {"skipped": why}
    neurobench: Section | None = None             # energy.neurobench.neurobench_metrics
    generated: Generated | None = None
    raster: dict[str, list[list[int]]] | None = None   # (t, neuron) spikes of sample 0
    readout_voltage: list[list[int | float]] | None = None   # a readout's [T, classes], sample 0


class Record(BaseModel):
    """simulate.json, as `simulate` and `merge` write it (`report.summary.record_summary`):
    one record's accuracy and spikes. Every section is optional for a reader, as in Report."""
    model_config = OPEN
    backend: str | None = None
    samples: Annotated[int, Field(ge=0)] | None = None
    timesteps: Annotated[int, Field(ge=1)] | None = None
    accuracy: float | None = None
    network: str | None = None                    # the file simulated, as given
    shard: str | None = None                      # "i/n": the i-th of n equal slices
    merged: list[str] | None = None               # `merge`: the chunk directories joined
    provenance: Section | None = None             # backends.record.provenance
    quantization: list[Section] | None = None     # what lowering a NIR graph rounded
    warnings: list[str] | None = None
    reset: str | None = None                      # a foreign graph's reset assumption
    generated: Generated | None = None
    spikes_per_layer: dict[str, int] | None = None
    spikes_per_layer_timestep: dict[str, list[float]] | None = None   # mean per inference
    predictions: list[int] | None = None
    labels: list[int] | None = None


class PricedRecord(PricedReport, Record):
    """simulate.json with the energy sections (`simulate`'s): the network is its path, its
    hash in provenance."""
    network: str
    provenance: Provenance


class SigmaDeltaRecord(PricedRecord):
    """simulate.json and parity.json of a sigma-delta network (simulation.stream): integer
    frames streamed through one state on each backend, the first one's graded messages
    counted and priced as spikes, and with more than one backend each compared with the first
    message for message (parity.message_mismatches)."""
    kind: Literal["sigma-delta"]
    activity: Section                             # neurons.sigma_delta.activity
    messages_per_layer: dict[str, int]            # non-zero messages, over every sample
    comparisons: dict[str, Section] | None = None   # "<first>-<other>": message_mismatches
    message_mismatches: Section | None = None     # over the comparisons: total, compared, first


class Priced(BaseModel):
    """`energy-<preset>.json`, what `neurodeploy energy --out` writes: the sections of a report
    or record that the preset prices (report.summary.priced)."""
    model_config = OPEN
    energy: Section
    per_timestep: list[Section]
    timestep_sweep: list[Section]
    resources: Section


def is_record(data: dict) -> bool:
    """simulate.json (and merge's) rather than run's report.json: only records list
    spikes_per_layer; sigma-delta results say their kind."""
    return "spikes_per_layer" in data or data.get("kind") == "sigma-delta"


def network_digest(data: dict) -> str | None:
    """sha256 of the network a validated report or record was made with."""
    if is_record(data):
        return data["provenance"]["network_sha256"]
    return (data.get("network") or {}).get("sha256")


def _no_constants(name: str):
    raise ValueError(f"{name} is not a JSON number")


def read_report(path: str | Path) -> dict:
    """report.json or simulate.json as a dict, after checking every section that repricing
    reads (simulate.json also the network hash that `--network` compares)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such report; run `neurodeploy run` or `neurodeploy "
                        "simulate` first")
    text = read_text(path, "report.json")
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except ValueError as e:      # JSONDecodeError is a ValueError too
        raise UserError(f"{path}: not valid JSON ({str(e).splitlines()[0]}); {FIX}") from None
    except RecursionError:
        raise UserError(f"{path}: not a report (nested too deeply); {FIX}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a neurodeploy report (a JSON {type(data).__name__}, not "
                        f"an object); {FIX}")
    record = is_record(data)
    if record and "counts" not in data:
        raise UserError(f"{path}: field counts: missing, so there is nothing to price (a "
                        "simulate.json of an older neurodeploy, or of `merge`); "
                        f"{FIX_RECORD}")
    schema = (SigmaDeltaRecord if data.get("kind") == "sigma-delta" else
              PricedRecord if record else Report)
    try:
        schema.model_validate(data)
    except ValidationError as e:
        raise UserError(one_line(e, str(path), schema)
                        + f"; {FIX_RECORD if record else FIX}") from None
    return data
