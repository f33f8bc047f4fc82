"""The metadata of a deployed network, one schema: what `export` writes into network.net (the
HDF5 attribute 'neurodeploy'), student.nir (metadata/neurodeploy) and manifest.json (which adds
its own sections), and what reading any of them accepts.

T, the steps per sample, is one value: `timesteps`; the input encoding's T and netx's
reset_interval are derived from it (`input_encoding`, `execution`). Files also carry it as
encoding.timesteps (manifests as execution.reset_interval), copies written for their other
readers (report.json copies the encoding; whoever runs network.net on netx directly reads the
reset interval from the manifest): reading accepts a copy that agrees with `timesteps`, refuses
a file where one does not, and the model keeps none.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import (BaseModel, ConfigDict, TypeAdapter, ValidationError,
                      field_validator, model_validator)

from neurodeploy.data.datasets import DATASETS
from neurodeploy.data.encoding import ENCODINGS, encoding_spec
from neurodeploy.errors import UserError
from neurodeploy.netx.fields import REEXPORT
from neurodeploy.neurons.cuba import WEIGHT_MAX, WEIGHT_MIN
from neurodeploy.schema import MAX_TIMESTEPS, Levels, Timesteps, first_problem, one_of

if TYPE_CHECKING:
    from neurodeploy.neurons import IntNetwork
    from neurodeploy.recipe import Recipe

RESET_OFFSET = 1            # netx resets layer l when step % T == RESET_OFFSET + 1 + l
COPIES_OF_T = (("encoding", "timesteps"), ("execution", "reset_interval"))   # derived copies
_T = TypeAdapter(Timesteps)
# Unknown fields pass (files of newer versions); a field given as null is refused like any
# other wrong type, so fields that may be absent default to None without admitting null.
_OPEN = ConfigDict(strict=True, extra="allow")


class Encoding(BaseModel):
    """How intensities become spikes (data/encoding.py); its T is the network's `timesteps`."""
    model_config = _OPEN
    name: str = "rate"                      # rate | thermometer (data/encoding.py)
    levels: Levels = None                   # thermometer only

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return one_of(name, list(ENCODINGS), "encoding")

    @model_validator(mode="after")
    def _levels(self):
        if self.name == "thermometer" and self.levels is None:
            raise ValueError("a thermometer encoding needs 'levels' (1..256)")
        return self


class DatasetRef(BaseModel):
    """The data the network was made from: its test split is the network's default input."""
    model_config = _OPEN
    name: str
    split_seed: int = 0

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return one_of(name, sorted(DATASETS), "dataset")


class Constants(BaseModel):
    model_config = _OPEN
    iDecay: int
    vDecay: int
    vThMant: int


class Quantization(BaseModel):
    """Each layer's neuron constants (older files check their layers against it)."""
    model_config = _OPEN
    layers: dict[str, Constants] = {}


class ArchitectureLayer(BaseModel):
    model_config = _OPEN
    type: Literal["input", "dense", "dense_rec", "conv"]      # IntLayer.kind
    shape: list[int]


class Architecture(BaseModel):
    """What `architecture(net)` records, so an altered file is refused (check_architecture)."""
    model_config = _OPEN
    input_shape: list[int]
    layers: list[ArchitectureLayer]


class Metadata(BaseModel):
    """A deployed network's metadata; every field may be absent (other tools' files have none).
    T is `timesteps` alone: see the module docstring for the copies older files hold."""
    model_config = _OPEN
    recipe: str = None
    timesteps: Timesteps = None
    encoding: Encoding = None
    dataset: DatasetRef = None
    quantization: Quantization | None = None
    discretization: str = None
    readout: bool = False
    architecture: Architecture = None

    @model_validator(mode="before")
    @classmethod
    def _one_t(cls, data):
        """Drop the copies of T that older files hold, refusing one that is not a valid T or
        disagrees with `timesteps`."""
        return without_copies_of_t(data)


def without_copies_of_t(data):
    """`data` without its copies of T (COPIES_OF_T), after refusing one that is not a valid T
    or disagrees with `timesteps` (a ValueError, inside a validator)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for section, key in COPIES_OF_T:
        part = data.get(section)
        if not isinstance(part, dict) or key not in part:
            continue
        copy, t = part[key], data.get("timesteps")
        if not _is_t(copy):
            raise ValueError(f"field '{section}.{key}': must be an integer in "
                             f"1..{MAX_TIMESTEPS}, got {copy!r}")
        if _is_t(t) and copy != t:
            raise ValueError(f"field '{section}.{key}' is {copy} but 'timesteps' is {t}; a "
                             "network has one T")
        data[section] = {k: v for k, v in part.items() if k != key}
    return data


def _is_t(value) -> bool:
    try:
        _T.validate_python(value, strict=True)
    except ValidationError:
        return False
    return True


def check_metadata(meta, source: str) -> dict:
    """`meta` as given, after refusing known fields of the wrong type or value and copies of T
    that disagree (unknown fields pass, for files from newer versions); `source` names the file
    for messages."""
    if not isinstance(meta, dict):
        raise UserError(f"{source}: the neurodeploy metadata is a JSON {type(meta).__name__}, "
                        f"not an object; {REEXPORT}")
    try:
        Metadata.model_validate(meta)
    except ValidationError as e:
        path, what = first_problem(e, Metadata)
        raise UserError(f"{source}: metadata {f'field {path!r}: ' if path else ''}{what}; fix "
                        f"it or {REEXPORT}") from None
    return meta


def metadata_from_json(raw, source: str, field: str) -> dict:
    """Metadata stored as JSON text (`field` names where, for messages), checked."""
    if isinstance(raw, np.ndarray) and raw.size == 1:
        raw = raw.reshape(-1)[0]
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        if not isinstance(text, str):
            raise TypeError
        meta = json.loads(text)
    except (TypeError, ValueError, RecursionError):   # includes Unicode and JSON decode errors
        raise UserError(f"{source}: {field} is not JSON text; {REEXPORT}") from None
    return check_metadata(meta, source)


def input_encoding(meta: dict, source: str = "the network") -> dict:
    """How to encode a network's inputs: its encoding (rate for files that predate the field)
    with T from its one place, meta["timesteps"] (which `--timesteps` replaces to read a
    network out earlier or later). A copy of T under encoding is not read."""
    encoding = meta.get("encoding") or {"name": "rate"}
    if not isinstance(encoding, dict) or "name" not in encoding:
        raise UserError(f"{source}: metadata field 'encoding' has no 'name'; re-export it with "
                        "`neurodeploy export`")
    return encoding_spec(encoding["name"], int(meta["timesteps"]), encoding.get("levels"))


def network_metadata(recipe: Recipe, net: IntNetwork, provenance: dict | None = None) -> dict:
    """The metadata `export` writes into student.nir, network.net and manifest.json: the
    recipe, T (`timesteps`; encoding.timesteps is derived from it), the input encoding, the
    data (a user's file by path and hash, from the checkpoint's `provenance`) and each layer's
    neuron constants. `net`: the integer network exported. Checked by the schema reading
    applies, so what is written can be read."""
    files = (provenance or {}).get("dataset") or {}
    meta = {"recipe": recipe.name, "timesteps": recipe.encoding.timesteps,
            "encoding": recipe.encoding.metadata(),
            "dataset": {"name": recipe.dataset.name, "split_seed": recipe.dataset.split_seed,
                        **{k: v for k, v in files.items()
                           if k in ("file", "sha256") and v is not None}},
            "quantization": {
                "weights": f"even integers in [{WEIGHT_MIN}, {WEIGHT_MAX}] (8-bit mantissa x 2)",
                "state": "24-bit current (wraps), 24-bit voltage (saturates), decays /4096",
                "layers": {layer.name: {"iDecay": layer.params.i_decay,
                                        "vDecay": layer.params.v_decay,
                                        "vThMant": layer.params.threshold}
                           for layer in net.layers}}}
    return check_metadata(meta, f"recipe {recipe.name}")


def execution(meta: dict, net: IntNetwork) -> dict:
    """manifest.json's `execution`: how to run network.net on netx as the Lava backend does
    (reset every T steps, T from meta["timesteps"]) and how many steps the pipeline lags."""
    return {"reset_interval": meta["timesteps"], "netx_reset_offset": RESET_OFFSET,
            "pipeline_delay_steps": len(net.layers)}


def architecture(net: IntNetwork) -> dict:
    """What a file must contain to be this network: read back and compared by
    `check_architecture`, so a deleted or altered layer is refused instead of silently giving a
    smaller network."""
    return {"input_shape": [int(v) for v in net.input_shape],
            "layers": [{"name": layer.name, "type": layer.kind,
                        "shape": [int(v) for v in layer.shape]} for layer in net.layers],
            "classes": int(net.layers[-1].size)}


def check_architecture(net: IntNetwork, meta: dict, source: str) -> None:
    """Refuse a network whose layers disagree with what its own metadata records: the
    architecture written by `write_netx`, or, in older files, the per-layer neuron constants
    that `export` writes under quantization.layers."""
    found = architecture(net)
    if "architecture" in meta:
        listed = meta["architecture"]
        if listed["input_shape"] != found["input_shape"]:
            raise UserError(f"{source}: the input is {found['input_shape']} but the metadata "
                            f"records {listed['input_shape']}; the file was altered: {REEXPORT}")
        pairs = [(a["type"], list(a["shape"])) for a in listed["layers"]]
        have = [(a["type"], a["shape"]) for a in found["layers"]]
    else:
        q = (meta.get("quantization") or {}).get("layers")
        if not q:
            return
        pairs = [(name, [v["iDecay"], v["vDecay"], v["vThMant"]]) for name, v in q.items()]
        have = [(layer.name, [layer.params.i_decay, layer.params.v_decay, layer.params.threshold])
                for layer in net.layers]
    for i, (want, got) in enumerate(zip(pairs, have)):
        if want != got:
            raise UserError(f"{source}: layer {i + 1} of {len(pairs)} is {got[0]} {got[1]} but "
                            f"the metadata records {want[0]} {want[1]}; the file was altered: "
                            f"{REEXPORT}")
    if len(pairs) != len(have):
        i = min(len(pairs), len(have)) + 1
        raise UserError(f"{source}: layer {i} {'missing' if len(have) < len(pairs) else 'extra'}:"
                        f" the metadata lists {len(pairs)} layers, the file has {len(have)}; "
                        f"the file was altered: {REEXPORT}")
