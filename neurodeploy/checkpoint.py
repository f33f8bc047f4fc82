"""checkpoint.pt: the format `distill` writes and `export` reads, and the student it holds.

A checkpoint holds only tensors and plain data (read with weights_only=True, so a file can never
run code), its zip members' CRC-32s are checked before loading (bytes damaged on disk are
refused, never loaded as other weights), and every field goes through its schema: the student
is rebuilt from the checkpoint's own recipe and must accept the stored weights.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neurodeploy.data import encoded_shape
from neurodeploy.data.datasets import DATASETS
from neurodeploy.errors import UserError
from neurodeploy.files import atomic_path, zip_damage
from neurodeploy.neurons import CubaParams, SpikingNet
from neurodeploy.recipe import Recipe, recipe_from_dict
from neurodeploy.schema import one_line

CHECKPOINT_FORMAT = "neurodeploy-checkpoint/2"


def _spiking(recipe: Recipe, input_shape: tuple[int, ...], classes: int, conv: list[dict],
             hidden: list[int], readout: bool = False, thresholds: list[int] = (),
             init_gain: float = 1.0, recurrent: bool = False) -> SpikingNet:
    n = recipe.student.neuron
    layers = len(conv) + len(hidden) + 1
    params = [CubaParams(n.i_decay, n.v_decay, th) for th in thresholds or [n.threshold] * layers]
    return SpikingNet(input_shape, classes, params, conv=conv, hidden=hidden, readout=readout,
                      init_gain=init_gain, recurrent=recurrent)


def _student(recipe: Recipe, input_shape: tuple[int, ...], classes: int) -> SpikingNet:
    s = recipe.student
    return _spiking(recipe, input_shape, classes, s.conv, s.hidden, s.readout, s.thresholds,
                    s.init_gain, s.recurrent)


def student_recipe(student: SpikingNet, base: Recipe) -> Recipe:
    """`base` with its student section describing `student` (a SpikingNet built in Python), so
    it exports like a distilled one; decays must be shared by all layers, as a recipe's are."""
    params = [n.params for n in student.neurons]
    if len({(p.i_decay, p.v_decay) for p in params}) > 1:
        raise UserError("student: layers with different i_decay/v_decay cannot be described by "
                        "one recipe; give every layer the same decays")
    thresholds = [p.threshold for p in params[:-1]] + [
        int(student.readout_scale) if student.readout else params[-1].threshold]
    recurrent = sorted(int(i) for i in student.recurrent)
    if recurrent and (student.conv_specs or recurrent != list(range(len(student.hidden)))):
        raise UserError("student: recurrent weights on only some layers cannot be described by "
                        "a recipe's student.recurrent; build it with recurrent=True")
    spec = base.to_dict()
    spec["student"] = {**spec["student"], "conv": student.conv_specs, "hidden": student.hidden,
                       "readout": student.readout, "recurrent": bool(recurrent),
                       "neuron": {"i_decay": params[0].i_decay, "v_decay": params[0].v_decay,
                                  "threshold": thresholds[-1]},
                       "thresholds": thresholds if len(set(thresholds)) > 1 else []}
    return recipe_from_dict(spec, "student")


def save_checkpoint(path: Path, recipe: Recipe, student: SpikingNet, metrics: dict,
                    teacher: dict | None = None, provenance: dict | None = None,
                    input_shape: tuple[int, ...] | None = None) -> Path:
    """checkpoint.pt for a student (what `export` reads), written atomically: only tensors and
    plain data, so it loads with weights_only=True. `input_shape`: the data's, when a
    dense-only student was built for the same inputs flat."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "recipe": recipe.to_dict(),
                    "input_shape": list(input_shape or student.input_shape),
                    "classes": student.classes,
                    "student": student.state_dict(), "teacher": teacher,
                    "provenance": provenance or {}, "metrics": metrics}, tmp)
    return path


def load_checkpoint(path: str | Path) -> tuple[SpikingNet, Recipe, dict]:
    """A distilled student from checkpoint.pt, validated: read with weights_only=True (a file
    can never run code), every field present and typed, every tensor finite and shaped as the
    recipe's student."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint; run `neurodeploy distill` first")
    ckpt = torch_load(path, "checkpoint", "re-run `neurodeploy distill`")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not a neurodeploy checkpoint (format "
                        f"{ckpt.get('format') if isinstance(ckpt, dict) else '?'!r}); "
                        "re-run `neurodeploy distill`")
    for key, kind in (("recipe", dict), ("input_shape", list), ("classes", int),
                      ("student", dict), ("metrics", dict)):
        if not isinstance(ckpt.get(key), kind) or isinstance(ckpt.get(key), bool):
            raise UserError(f"{path}: field '{key}' is missing or not a {kind.__name__}; the "
                            "checkpoint is damaged: re-run `neurodeploy distill`")
    shape = ckpt["input_shape"]
    if not (1 <= len(shape) <= 3 and all(type(v) is int and 1 <= v <= 1 << 20 for v in shape)) \
            or not 2 <= ckpt["classes"] <= 1 << 16:
        raise UserError(f"{path}: fields 'input_shape' {shape} / 'classes' {ckpt['classes']} are "
                        "out of range; the checkpoint is damaged: re-run `neurodeploy distill`")
    try:                         # metrics are plain numbers (and lists of them)
        json.dumps(ckpt["metrics"], allow_nan=False)
    except (TypeError, ValueError) as e:
        raise UserError(f"{path}: field 'metrics' holds a value that is not a finite number "
                        f"({str(e)[:60]}); the checkpoint is damaged: re-run `neurodeploy "
                        "distill`") from None
    try:
        CheckpointProvenance.model_validate(ckpt.get("provenance", {}))
    except ValidationError as e:
        raise UserError(one_line(e, f"{path}: field provenance", CheckpointProvenance)
                        + "; the checkpoint is damaged: re-run `neurodeploy distill`") from None
    teacher = ckpt.get("teacher")
    if teacher is not None and not (isinstance(teacher, dict) and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in teacher.items())):
        raise UserError(f"{path}: field 'teacher' is neither null nor a mapping of tensors; the "
                        "checkpoint is damaged: re-run `neurodeploy distill`")
    teacher_acc = ckpt["metrics"].get("teacher_test_accuracy", "missing")
    if teacher_acc is not None and not (isinstance(teacher_acc, float) and 0 <= teacher_acc <= 1):
        raise UserError(f"{path}: field 'metrics.teacher_test_accuracy' is {teacher_acc!r}, not "
                        "an accuracy in [0, 1] or null; re-run `neurodeploy distill`")
    recipe = recipe_from_dict(ckpt["recipe"], f"{path}: recipe")
    expected = encoded_shape(DATASETS[recipe.dataset.name].shape or shape,
                             recipe.encoding.metadata())   # a file's: checked at export
    if recipe.dataset.file is None and tuple(shape) != tuple(expected):
        raise UserError(f"{path}: field 'input_shape' {shape} is not what its recipe's dataset "
                        f"and encoding give, {list(expected)}; the checkpoint is damaged: "
                        "re-run `neurodeploy distill`")
    student = _student(recipe, tuple(shape), ckpt["classes"])
    for name, tensor in ckpt["student"].items():
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() \
                or tensor.numel() == 0 or not torch.isfinite(tensor).all():
            raise UserError(f"{path}: student tensor '{name}' is not a finite, non-empty float "
                            "tensor; the checkpoint is damaged: re-run `neurodeploy distill`")
        if name.endswith("weight") and tensor.abs().max() > _WEIGHT_SANITY:
            raise UserError(f"{path}: student tensor '{name}' reaches {tensor.abs().max():.3g} "
                            f"thresholds, far beyond Loihi's 8-bit weights (which clip it); the "
                            "checkpoint is damaged: re-run `neurodeploy distill`")
    try:
        student.load_state_dict(ckpt["student"])
    except (RuntimeError, TypeError, ValueError) as e:
        first = str(e).replace("\n", " ").split(". ")[0][:160]
        raise UserError(f"{path}: the student weights do not fit the recipe's student ({first}); "
                        "re-run `neurodeploy distill`") from None
    return student.eval(), recipe, ckpt


def torch_load(path: Path, what: str, fix: str):
    """A .pt file of ours read as plain data (weights_only: it can never run code), after the
    CRC-32 of every member of its zip archive is checked: torch does not check them, so bytes
    damaged on disk would otherwise load as other weights, silently."""
    try:
        damaged = zip_damage(path)
        if damaged is None:
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:       # corrupt, truncated, or holding objects that are not plain data
        raise UserError(f"{path}: not a readable {what} ({type(e).__name__}); {fix}") from None
    member = damaged.split("/", 1)[-1]   # torch roots the archive at the name it was saved
    raise UserError(f"{path}: its bytes were damaged after it was written (its member {member} "
                    f"fails its CRC-32 check); {fix}")   # under: our writer's temporary file


def training_device(path: Path) -> str:
    """Where the student in checkpoint.pt was trained, as reports name it."""
    ckpt = torch_load(path, "checkpoint", "re-run `neurodeploy distill`")
    return ((ckpt.get("provenance") or {}).get("training") or {}).get("device",
                                                                      "an unrecorded device")


Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Text = Annotated[str, Field(min_length=1, max_length=4096)]
_PLAIN = ConfigDict(strict=True, extra="forbid")


class DatasetProvenance(BaseModel):
    """The data a checkpoint was trained on (data.datasets.Dataset.provenance)."""
    model_config = _PLAIN
    name: Text
    split_seed: Annotated[int, Field(ge=0, le=2 ** 32 - 1)]
    file: Text | None = None
    sha256: Sha256 | None = None
    samples: dict[Literal["train", "val", "test"], Annotated[int, Field(ge=0)]] = {}


class TeacherProvenance(BaseModel):
    """A teacher trained elsewhere: its file and sha256, or the class of a Python module."""
    model_config = _PLAIN
    file: Text | None = None
    sha256: Sha256 | None = None
    module: Text | None = None


class TrainingProvenance(BaseModel):
    model_config = _PLAIN
    device: Text


class CheckpointProvenance(BaseModel):
    """checkpoint.pt's `provenance`: export copies the dataset's file and sha256 into the
    manifest, so a value of any other shape must be refused here, not crash there."""
    model_config = _PLAIN
    dataset: DatasetProvenance | None = None
    teacher: TeacherProvenance | None = None
    training: TrainingProvenance | None = None


# A weight parameter is in threshold units (see QuantDense); Loihi's grid ends at 254 integer
# units, i.e. 254 / threshold thresholds. Training never drives weights far past the clip, so
# anything beyond this bound is a damaged file, not a student.
_WEIGHT_SANITY = 1e4
