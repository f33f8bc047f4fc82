"""Recipes: one YAML file per model in models/, parsed strictly into typed settings.

Unknown keys are errors (a typo must not silently fall back to a default). Every message
names the file and the key path.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from neurodeploy.errors import UserError

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class DatasetCfg:
    name: str = "digits"
    split_seed: int = 0


@dataclass(frozen=True)
class EncodingCfg:
    name: str = "rate"          # rate | thermometer (see neurodeploy/data/encoding.py)
    timesteps: int = 16
    levels: int = 4             # thermometer channels per input

    def metadata(self) -> dict:
        """What an exported network records so any backend can encode its inputs."""
        out = {"name": self.name, "timesteps": self.timesteps}
        return (out | {"levels": self.levels}) if self.name == "thermometer" else out


@dataclass(frozen=True)
class TeacherCfg:
    conv: list[int] = field(default_factory=list)     # channels of stride-2 conv stages (CNN)
    hidden: list[int] = field(default_factory=lambda: [256])   # MLP widths (when no conv)
    spiking: bool = False      # a large SNN teacher (same neurons and encoding as the student)
    epochs: int = 40
    lr: float = 2e-3
    batch_size: int = 64
    seed: int = 0


@dataclass(frozen=True)
class NeuronCfg:
    i_decay: int = 1024
    v_decay: int = 256
    threshold: int = 128


@dataclass(frozen=True)
class StudentCfg:
    conv: list[dict] = field(default_factory=list)   # [{channels, kernel, stride, padding}]
    hidden: list[int] = field(default_factory=lambda: [128])
    neuron: NeuronCfg = field(default_factory=NeuronCfg)


@dataclass(frozen=True)
class DistillCfg:
    epochs: int = 40
    lr: float = 2e-3
    batch_size: int = 64
    seed: int = 0
    weight_decay: float = 0.0
    chain: list[dict] = field(default_factory=list)   # assistants [{conv, hidden}], teacher first
    losses: list[dict] = field(default_factory=lambda: [
        {"name": "ce", "weight": 0.5}, {"name": "logit_kd", "weight": 0.5, "temperature": 4.0}])


@dataclass(frozen=True)
class EnergyCfg:
    preset: str = "loihi1-davies2018"


@dataclass(frozen=True)
class Recipe:
    name: str = "digits"
    dataset: DatasetCfg = field(default_factory=DatasetCfg)
    encoding: EncodingCfg = field(default_factory=EncodingCfg)
    teacher: TeacherCfg = field(default_factory=TeacherCfg)
    student: StudentCfg = field(default_factory=StudentCfg)
    distill: DistillCfg = field(default_factory=DistillCfg)
    energy: EnergyCfg = field(default_factory=EnergyCfg)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    values = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, f"{where}.{key}")
            continue
        expected = typing.get_origin(hint) or hint
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise UserError(f"{where}.{key}: expected {getattr(expected, '__name__', expected)}, "
                            f"got {value!r}")
        values[key] = value
    return cls(**values)


def recipe_from_dict(data: dict, where: str) -> Recipe:
    recipe = _build(Recipe, data, where)
    validate(recipe, where)
    return recipe


def resolve(name_or_path: str | None) -> Path:
    """A recipe name from models/ ('digits') or a path to a YAML file."""
    if name_or_path is None:
        name_or_path = "digits"
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return MODELS_DIR / f"{name_or_path}.yaml"


def load_recipe(name_or_path: str | None = None) -> Recipe:
    path = resolve(name_or_path)
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in MODELS_DIR.glob("*.yaml")))
        raise UserError(f"{path}: no such recipe; available in models/: {available}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return recipe_from_dict(data, str(path))


def architecture(recipe: Recipe) -> dict:
    """What learned loss terms need to know about the networks (channels per conv stage)."""
    return {"student_channels": [c.get("channels") for c in recipe.student.conv
                                 if isinstance(c, dict)],
            "teacher_channels": list(recipe.teacher.conv)}


def validate(recipe: Recipe, where: str) -> None:
    """Check values against what they feed (Loihi's ranges, the loss registry) before any work."""
    from neurodeploy.data.encoding import ENCODINGS
    from neurodeploy.distill.losses import build_loss
    from neurodeploy.neurons import CubaParams
    n = recipe.student.neuron
    try:
        CubaParams(n.i_decay, n.v_decay, n.threshold)
    except ValueError as e:
        raise UserError(f"{where}: student.neuron: {e}") from None
    build_loss(recipe.distill.losses, f"{where}: distill", architecture(recipe))
    for i, spec in enumerate(recipe.distill.chain):
        if not isinstance(spec, dict) or set(spec) - {"conv", "hidden"}:
            raise UserError(f"{where}: distill.chain[{i}]: expected {{conv: [...], hidden: [...]}}"
                            f", got {spec!r}")
    for i, spec in enumerate(recipe.student.conv):
        allowed = {"channels", "kernel", "stride", "padding"}
        if not isinstance(spec, dict) or set(spec) - allowed or not {"channels", "kernel"} <= set(spec):
            raise UserError(f"{where}: student.conv[{i}]: expected {{channels, kernel[, stride, "
                            f"padding]}}, got {spec!r}")
    if recipe.encoding.name not in ENCODINGS:
        raise UserError(f"{where}: encoding.name: unknown encoding {recipe.encoding.name!r}; "
                        f"available: {', '.join(ENCODINGS)}")
    if recipe.encoding.levels < 1:
        raise UserError(f"{where}: encoding.levels must be >= 1")
    if recipe.encoding.timesteps < 1:
        raise UserError(f"{where}: encoding.timesteps must be >= 1")
