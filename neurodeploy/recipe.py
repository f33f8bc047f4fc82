"""Recipes: one YAML file per model in models/, validated by one strict pydantic schema.

Unknown keys, wrong types (true for an integer, text for a number) and values out of range
are errors, reported on one line as `<file>: <field.path>: <problem>; <fix>`: a typo must not
fall back to a default, and `epochs: -1` must not write an untrained checkpoint.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from typing_extensions import Required, TypedDict

from neurodeploy.data.encoding import encoding_spec
from neurodeploy.distill.losses import build_loss, check_term
from neurodeploy.energy.presets import load_preset
from neurodeploy.errors import UserError
from neurodeploy.neurons.cuba import DECAY_UNITY, THRESHOLD_MAX
from neurodeploy.netx.metadata import DatasetRef, Encoding
from neurodeploy.schema import Levels, Timesteps, one_line, read_yaml

# The shipped recipes: inside an installed package (pyproject.toml maps models/ to
# neurodeploy/models in the wheel), else models/ beside the package in a checkout.
_HERE = Path(__file__).resolve().parent
MODELS_DIR = next((d for d in (_HERE / "models", _HERE.parent / "models") if d.is_dir()),
                  _HERE.parent / "models")

# One Loihi 2 chip has 2**20 neurons: a layer (or conv stage) wider than 65,536 is a typo, and
# would exhaust memory while training on a CPU long before it could be deployed.
Width = Annotated[int, Field(ge=1, le=65536)]
Layers = Annotated[list[Width], Field(max_length=64)]
Seed = Annotated[int, Field(ge=0, le=2 ** 32 - 1)]          # numpy's seed range
Epochs = Annotated[int, Field(ge=1, le=100_000)]
BatchSize = Annotated[int, Field(ge=1, le=1_048_576)]
LearningRate = Annotated[float, Field(gt=0, le=10)]
Small = Annotated[int, Field(ge=1, le=15)]                   # kernel sizes and strides

STRICT = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)
HINTS = {"name": "add `name: <run name>` (letters, digits, . _ -; the run goes to runs/<name>/)",
         ".channels": "widths are 1..65536 (one Loihi 2 chip has 2**20 neurons)",
         ".hidden": "widths are 1..65536 (one Loihi 2 chip has 2**20 neurons)",
         "teacher.conv": "widths are 1..65536 (one Loihi 2 chip has 2**20 neurons)"}


class ConvSpec(TypedDict, total=False):
    """One conv stage: {channels, kernel[, stride, padding]}; kept as a plain dict."""
    __pydantic_config__ = ConfigDict(strict=True, extra="forbid")
    channels: Required[Width]
    kernel: Required[Small]
    stride: Small
    padding: Annotated[int, Field(ge=0, le=15)]


class ChainSpec(TypedDict, total=False):
    """A teaching assistant between teacher and student: its conv stages and hidden widths."""
    __pydantic_config__ = ConfigDict(strict=True, extra="forbid")
    conv: Annotated[list[ConvSpec], Field(max_length=64)]
    hidden: Layers


class DatasetCfg(DatasetRef):
    """The recipe's data: the network metadata's reference (netx.metadata.DatasetRef), with a
    default, a bounded seed, your own file and training subsets."""
    model_config = STRICT
    name: str = "digits"
    split_seed: Seed = 0
    file: Annotated[str, Field(min_length=1)] | None = None   # your dataset .npz (data/npz.py)
    # quick runs: train/validate on a seeded random subset (the test split stays whole)
    train_samples: Annotated[int, Field(ge=1)] | None = None
    val_samples: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _file_is_named_file(cls, data):
        if isinstance(data, dict) and data.get("file") is not None:
            return {"name": "file", **data}
        return data

    @model_validator(mode="after")
    def _file_iff_named_file(self):
        if (self.name == "file") != (self.file is not None):
            raise ValueError("name: 'file' and dataset.file go together; give dataset.file: "
                             "<your .npz> alone, or a built-in name without a file")
        return self


class EncodingCfg(Encoding):
    """The recipe's encoding: the network metadata's (netx.metadata.Encoding) with its T and
    defaults."""
    model_config = STRICT
    timesteps: Timesteps = 16
    levels: Levels = 4          # thermometer channels per input

    def metadata(self) -> dict:
        """What an exported network records so any backend can encode its inputs."""
        return encoding_spec(self.name, self.timesteps, self.levels)


class TeacherCfg(BaseModel):
    model_config = STRICT
    conv: Layers = []           # channels of stride-2 conv stages (CNN)
    hidden: Layers = [256]      # MLP widths (when no conv)
    spiking: bool = False       # a large SNN teacher (same neurons and encoding as the student)
    epochs: Epochs = 40
    lr: LearningRate = 2e-3
    batch_size: BatchSize = 64
    seed: Seed = 0
    # a teacher trained elsewhere (TorchScript or torch.export .pt2; see distill/teacher_file.py)
    file: Annotated[str, Field(min_length=1)] | None = None
    # layers of that teacher (or of one given from Python) that feature losses read
    features: Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=64)] = []
    head: Annotated[str, Field(min_length=1)] | None = None   # its final Linear layer (samd)
    weight_decay: Annotated[float, Field(ge=0, le=10)] = 0.0    # AdamW's decoupled decay
    augment: Literal["none", "crop", "crop_flip"] = "none"     # image shifts (pad 2) / h-flips
    schedule: Literal["constant", "cosine", "onecycle"] = "constant"   # lr, per batch

    @model_validator(mode="after")
    def _ann_training_only(self):
        """A spiking teacher trains like a student (on spikes): these settings would be ignored."""
        for name, default in (("weight_decay", 0.0), ("augment", "none"),
                              ("schedule", "constant")):
            if self.spiking and getattr(self, name) != default:
                raise ValueError(f"{name}: applies to ANN teachers; a spiking teacher trains "
                                 f"like the student (distill.weight_decay, cosine lr): remove "
                                 f"teacher.{name} or set teacher.spiking: false")
        return self


Decay = Annotated[int, Field(ge=0, le=DECAY_UNITY)]
Threshold = Annotated[int, Field(ge=1, le=THRESHOLD_MAX)]   # Loihi's 17-bit vThMant, as netx


class NeuronCfg(BaseModel):
    model_config = STRICT
    i_decay: Decay = 1024
    v_decay: Decay = 256
    threshold: Threshold = 128


class StudentCfg(BaseModel):
    model_config = STRICT
    conv: Annotated[list[ConvSpec], Field(max_length=64)] = []
    hidden: Layers = [128]
    neuron: NeuronCfg = NeuronCfg()
    readout: bool = False   # true: non-spiking last layer, predictions from summed voltage
    # per-layer thresholds (one per conv, hidden and output layer) instead of neuron.threshold
    thresholds: Annotated[list[Threshold], Field(max_length=129)] = []
    init_gain: Annotated[float, Field(gt=0, le=100)] = 1.0   # x Kaiming: use the 8-bit grid
    recurrent: bool = False   # true: each hidden dense layer also gets its own spikes, 1 step late

    @model_validator(mode="after")
    def _recurrence_on_hidden_dense_layers(self):
        if self.recurrent and (self.conv or not self.hidden):
            raise ValueError("recurrent: needs a dense-only student with a hidden layer (no "
                             "student.conv, student.hidden not empty); set student.recurrent: "
                             "false or change the layers")
        return self

    @model_validator(mode="after")
    def _one_threshold_per_layer(self):
        layers = len(self.conv) + len(self.hidden) + 1
        if self.thresholds and len(self.thresholds) != layers:
            raise ValueError(f"thresholds: {len(self.thresholds)} given for {layers} layers "
                             f"(conv, hidden, output); give {layers} or none")
        return self


class DistillCfg(BaseModel):
    model_config = STRICT
    epochs: Epochs = 40
    lr: LearningRate = 2e-3
    batch_size: BatchSize = 64
    seed: Seed = 0
    weight_decay: Annotated[float, Field(ge=0, le=10)] = 0.0
    # exact-mode validation every N epochs (and after the last); the best validated one is kept
    validate_every: Annotated[int, Field(ge=1, le=100_000)] = 1
    # steps per training sample when longer than the deployed T (encoding.timesteps): full_range_kd
    # then supervises every readout T' up to it, so the student also reads out past T
    timesteps: Timesteps | None = None
    chain: Annotated[list[ChainSpec], Field(max_length=16)] = []   # assistants, teacher first
    losses: Annotated[list[Annotated[dict[str, Any], AfterValidator(check_term)]],
                      Field(min_length=1, max_length=32)] = [
        {"name": "ce", "weight": 0.5}, {"name": "logit_kd", "weight": 0.5, "temperature": 4.0}]


class EnergyCfg(BaseModel):
    model_config = STRICT
    preset: Annotated[str, Field(min_length=1)] = "loihi1-davies2018"


FEATURE_LOSSES = ("attention", "samd", "feature_kd")


class Recipe(BaseModel):
    model_config = STRICT
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    dataset: DatasetCfg = DatasetCfg()
    encoding: EncodingCfg = EncodingCfg()
    teacher: TeacherCfg = TeacherCfg()
    student: StudentCfg = StudentCfg()
    distill: DistillCfg = DistillCfg()
    energy: EnergyCfg = EnergyCfg()

    @model_validator(mode="after")
    def _training_window_extends_the_deployed_one(self):
        """A longer training window is only the deployed run continued when every step sees the
        same frame (thermometer); rate coding spreads an intensity's spikes over the window."""
        steps, deployed = self.distill.timesteps, self.encoding.timesteps
        if steps is None or steps == deployed:
            return self
        if steps < deployed:
            raise ValueError(f"distill.timesteps: {steps} is shorter than the deployed "
                             f"encoding.timesteps: {deployed}; give at least {deployed} or remove it")
        if self.encoding.name != "thermometer":
            raise ValueError(f"distill.timesteps: a {steps}-step {self.encoding.name} code does not "
                             f"begin with the {deployed}-step one that deploys; use encoding.name: "
                             "thermometer or remove distill.timesteps")
        return self

    @model_validator(mode="after")
    def _losses_fit_the_networks(self):
        """What the loss terms need from the networks, checked before any training."""
        names = {term["name"] for term in self.distill.losses}
        if "spike_train" in names and not (self.teacher.spiking or self.distill.chain):
            raise ValueError("distill.losses: spike_train needs a spiking teacher; set "
                             "teacher.spiking: true or add a distill.chain assistant")
        if "spike_train" in names and self.student.readout:
            raise ValueError("distill.losses: spike_train compares output spikes and a readout "
                             "student (student.readout: true) has none; drop one of them")
        trained = self.teacher.file or self.teacher.features or self.teacher.head
        if trained and (self.teacher.spiking or self.teacher.conv):
            raise ValueError("teacher.file / features / head describe a teacher trained "
                             "elsewhere: drop teacher.spiking and teacher.conv (they describe "
                             "a teacher the tool trains)")
        if "samd" in names and self.teacher.features and not self.teacher.head:
            raise ValueError("teacher.head: samd reads class activation maps; name the "
                             "teacher's final Linear layer, e.g. head: fc")
        if names & set(FEATURE_LOSSES) and not (self.student.conv and (
                self.teacher.conv or self.teacher.features)):
            raise ValueError(f"distill.losses: {', '.join(sorted(names & set(FEATURE_LOSSES)))} "
                             "need(s) a conv student (student.conv) and a conv teacher "
                             "(teacher.conv, or teacher.file with teacher.features)")
        try:
            build_loss(self.distill.losses, "distill", architecture(self))
        except UserError as e:
            raise ValueError(str(e)) from None
        return self

    def to_dict(self) -> dict:
        return self.model_dump()


def recipe_from_dict(data, where: str) -> Recipe:
    """A validated Recipe, or a one-line UserError naming `where` and the field."""
    if data is None or data == {}:
        raise UserError(f"{where}: empty recipe; add `name: <run name>` and the settings to "
                        "change (see models/digits.yaml)")
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of recipe sections (name, dataset, "
                        f"encoding, teacher, student, distill, energy), got {type(data).__name__}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise UserError(one_line(e, where, Recipe, HINTS, last=(("name",),))) from None


def resolve(name_or_path: str | None) -> Path:
    """A recipe name from models/ ('digits') or a path to a YAML file."""
    if name_or_path is None:
        name_or_path = "digits"
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return MODELS_DIR / f"{name_or_path}.yaml"


def override(data, overrides: dict, where: str):
    """data with {"distill.epochs": 2, ...} set (command-line `--set`), before validation, so a
    bad key or value gets the schema's one-line error; sections a file leaves out are created."""
    if not isinstance(data, dict | None):
        return data                              # recipe_from_dict says what is wrong
    data = copy.deepcopy(data or {})
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = data
        for i, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                section = ".".join(parents[:i + 1])
                raise UserError(f"{where}: --set {key}: {section} is not a section of "
                                f"settings; set {section} itself (--set {section}=...)")
        node[leaf] = value
    return data


def _relative_to(data, folder: Path):
    """dataset.file and teacher.file as written in a recipe are relative to the recipe's
    folder (a recipe travels with its data); made absolute here."""
    for section in ("dataset", "teacher"):
        part = data.get(section) if isinstance(data, dict) else None
        if isinstance(part, dict) and isinstance(part.get("file"), str) and part["file"]:
            data[section] = {**part, "file": str((folder / part["file"]).resolve())}
    return data


def load_recipe(name_or_path: str | None = None, overrides: dict | None = None) -> Recipe:
    """A recipe file, validated in full (including its energy preset) before any work;
    `overrides`: dotted keys set on the file's contents first (see `override`)."""
    path = resolve(name_or_path)
    if not path.exists():
        available = ", ".join(sorted(p.stem for p in MODELS_DIR.glob("*.yaml")))
        raise UserError(f"{path}: no such recipe; available in models/: {available}")
    data = _relative_to(read_yaml(path, "recipe"), path.parent)
    where = str(path)
    if overrides:
        data, where = override(data, overrides, where), f"{path} with --set"
    recipe = recipe_from_dict(data, where)
    try:
        load_preset(recipe.energy.preset)
    except UserError as e:
        raise UserError(f"{path}: energy.preset: {e}") from None
    return recipe


def architecture(recipe: Recipe, teacher_channels: list[int] | None = None) -> dict:
    """What learned loss terms need to know about the networks (channels per conv stage).
    A teacher file's channels are known once it is loaded (`teacher_channels`); before, one
    placeholder per named feature layer lets the recipe be checked."""
    if teacher_channels is None:
        teacher_channels = ([1] * len(recipe.teacher.features) if recipe.teacher.features
                            else list(recipe.teacher.conv))
    return {"student_channels": [c["channels"] for c in recipe.student.conv],
            "teacher_channels": list(teacher_channels)}
