"""`distill` as a stage: train (or take) the teacher, distill the student, write checkpoint.pt.

Cached work is keyed by what made it: a checkpoint.pt of the same recipe, data and teacher is
reused, another recipe's is refused (never overwritten); trained teachers may be kept by their
recipe so runs that differ only in the student train each teacher once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from neurodeploy.checkpoint import _spiking, _student, load_checkpoint, save_checkpoint
from neurodeploy.data.datasets import load_data
from neurodeploy.distill.losses import build_loss
from neurodeploy.distill.teacher_file import SAVE_HINT, teacher_module, teacher_provenance
from neurodeploy.distill.teachers import CNNTeacher, mlp_teacher
from neurodeploy.distill.train import (barrier, distill_student, is_main, subset,
                                       teacher_outputs, train_teacher)
from neurodeploy.errors import UserError
from neurodeploy.files import atomic_path, writable_dir, zip_damage
from neurodeploy.preflight import device_name, resolve_device
from neurodeploy.recipe import Recipe, architecture
from neurodeploy.report.summary import remove_reports

logger = logging.getLogger(__name__)


def _digest(spec) -> str:
    """sha256 of a JSON-able spec (a recipe, a teacher's settings): what keys cached work."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _stages(channels: list[int]) -> list[dict]:
    """A spiking teacher's conv stages, one per entry of teacher.conv: 3x3, stride 2, padding 1
    (the same output sizes as the CNN teacher's stages)."""
    return [{"channels": c, "kernel": 3, "stride": 2, "padding": 1} for c in channels]


def _accuracy(model: torch.nn.Module, x: np.ndarray, spikes: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy of a teacher: spiking ones in float mode (teachers are not deployed)."""
    return float((teacher_outputs(model, x, spikes)[0].argmax(1).numpy() == y).mean())


def _teacher(recipe: Recipe, data) -> torch.nn.Module:
    if recipe.teacher.conv:
        if len(data.shape) != 3:
            raise UserError(f"recipe {recipe.name}: teacher.conv needs image data; "
                            f"{data.name} samples have shape {data.shape}")
        return CNNTeacher(data.shape, recipe.teacher.conv, data.num_classes)
    return mlp_teacher(data.features, recipe.teacher.hidden, data.num_classes)


def distill(recipe: Recipe, out_dir: Path, progress: bool | None = True,
            teachers: Path | None = None, teacher_model: torch.nn.Module | None = None,
            fresh: bool = False, device: str | None = None, place: str = "--out") -> Path:
    """Train the teacher, distill the student, write out_dir/checkpoint.pt (resumable).

    `teachers`: a directory where trained teachers are kept by their recipe, so runs that
    differ only in the student or the losses (a benchmark sweep) train each teacher once.
    `teacher_model`: a trained nn.Module to distill from (as teacher.file does from a file).
    A checkpoint.pt already in out_dir is reused when the same recipe made it from the same
    data and teacher, and another recipe's is refused (never overwritten) unless `fresh`,
    which also discards resumable training states; `place` names the option that moves the
    run elsewhere in that message (both said through logging). `device`: where to train (None:
    CUDA when available); `progress`: a bar, a line or nothing per epoch (see progress.py)."""
    device = resolve_device(device)
    out_dir = writable_dir(out_dir, place)
    data = subset(load_data(recipe.dataset), recipe.dataset.train_samples,
                  recipe.dataset.val_samples, recipe.dataset.split_seed)
    path = out_dir / "checkpoint.pt"
    given = teacher_model if teacher_model is not None else recipe.teacher.file
    try:
        sources = {"dataset": data.provenance(recipe.dataset.split_seed),
                   "teacher": teacher_provenance(given)}
    except OSError as e:        # teacher.file: missing or unreadable, said before any work
        raise UserError(f"{given}: no such teacher file; {SAVE_HINT}"
                        if isinstance(e, FileNotFoundError) else
                        f"{given}: cannot read this teacher file ({e.strerror or e}); "
                        f"{SAVE_HINT}") from None
    if fresh:
        for state in out_dir.glob("*_state.pt"):     # no resuming either
            state.unlink()
    elif path.exists():
        why = _reuse(path, recipe, sources, place)
        if why is None:
            if is_main():
                logger.info(f"reusing {path} (same recipe); delete it or pass --fresh to retrain")
            return path
        if is_main():
            logger.info(f"retraining: {why}")
    loss_fn = build_loss(recipe.distill.losses, f"recipe {recipe.name}: distill",
                         architecture(recipe))
    t0 = time.perf_counter()
    tc, dc = recipe.teacher, recipe.distill
    enc = recipe.encoding.metadata()
    train_enc = enc             # distill.timesteps: a longer window for training only
    if dc.timesteps and dc.timesteps != enc["timesteps"]:
        if data.timesteps:
            raise UserError(f"recipe {recipe.name}: distill.timesteps: {data.file} holds spike "
                            f"trains of {data.timesteps} steps; remove distill.timesteps")
        train_enc = {**enc, "timesteps": dc.timesteps}
    spikes = {"train": data.encoded("train", train_enc),
              **{name: data.encoded(name, enc) for name in ("val", "test")}}
    shape = data.input_shape(enc)

    recipe_key = _digest(recipe.to_dict())
    history, history_path = [], out_dir / "history.jsonl"
    history_path.unlink(missing_ok=True)        # an older run's curves must not pass for ours

    def log(stage: str, hist) -> None:
        """history.jsonl gets this stage's epochs (one JSON line each), rewritten atomically."""
        finite = lambda v: float(v) if np.isfinite(v) else None  # noqa: E731
        history.extend({"stage": stage, "epoch": epoch, "train_loss": finite(loss),
                        "val_accuracy": finite(acc)}
                       for epoch, (loss, acc) in enumerate(zip(hist.train_loss,
                                                               hist.val_accuracy)))
        if not is_main():
            return
        with atomic_path(history_path) as tmp:
            tmp.write_text("".join(json.dumps(row, allow_nan=False) + "\n" for row in history))

    def train_spiking(model, teacher, loss, seed, state, epochs=dc.epochs, lr=dc.lr,
                      batch_size=dc.batch_size):
        return distill_student(
            model, teacher, loss, train_spikes=spikes["train"], train_x=data.train.x,
            train_y=data.train.y, val_spikes=spikes["val"], val_y=data.val.y, epochs=epochs,
            lr=lr, batch_size=batch_size, seed=seed, weight_decay=dc.weight_decay,
            checkpoint=out_dir / state, progress=progress, key=f"{recipe_key}:{state}",
            validate_every=dc.validate_every, device=device)

    def new_teacher():
        if tc.spiking:          # a large SNN teacher, trained on labels in its float mode
            return _spiking(recipe, shape, data.num_classes, _stages(tc.conv), tc.hidden)
        return _teacher(recipe, data)

    def train_teacher_from_recipe(model):
        if tc.spiking:
            hist = train_spiking(model, None, build_loss([{"name": "ce"}], "teacher"), tc.seed,
                                 "teacher_state.pt", tc.epochs, tc.lr, tc.batch_size)
        else:
            model, hist = train_teacher(
                model, data.train.x, data.train.y, data.val.x, data.val.y,
                epochs=tc.epochs, lr=tc.lr, batch_size=tc.batch_size, seed=tc.seed,
                progress=progress, checkpoint=out_dir / "teacher_state.pt",
                key=f"{recipe_key}:teacher", weight_decay=tc.weight_decay,
                augment=tc.augment, schedule=tc.schedule, image_shape=data.shape,
                device=device)
        log("teacher", hist)
        return model, {"teacher_test_accuracy": _accuracy(model, data.test.x, spikes["test"],
                                                          data.test.y),
                       "teacher_best_val_accuracy": hist.best_val_accuracy}

    if given is None and (tc.features or tc.head):
        raise UserError(f"recipe {recipe.name}: teacher.features / teacher.head name layers of "
                        "a trained teacher; set teacher.file (or pass teacher= in Python)")
    if given is not None:   # trained elsewhere: measured, never trained
        teacher = teacher_module(given, data.shape, data.num_classes, tc.features, tc.head)
        teacher_metrics = {f"teacher_{key}_accuracy": _accuracy(
            teacher, getattr(data, split).x, spikes[split], getattr(data, split).y)
            for key, split in (("test", "test"), ("best_val", "val"))}
        loss_fn = build_loss(recipe.distill.losses, f"recipe {recipe.name}: distill",
                             architecture(recipe, teacher.channels))
    elif loss_fn.needs_teacher or dc.chain:
        torch.manual_seed(tc.seed)
        teacher, teacher_metrics = _cached(teachers, _teacher_key(recipe), new_teacher,
                                           train_teacher_from_recipe)
    else:                   # no loss reads a teacher: train none
        teacher, teacher_metrics = None, {"teacher_test_accuracy": None,
                                          "teacher_best_val_accuracy": None}
    first_teacher = teacher
    # multi-stage distillation (seed 004): teacher -> assistant(s) -> student
    for i, spec in enumerate(dc.chain):
        torch.manual_seed(dc.seed + i + 1)
        assistant = _spiking(recipe, shape, data.num_classes, spec.get("conv", []),
                             spec.get("hidden", []))
        stage_loss = build_loss(dc.losses, f"recipe {recipe.name}: distill.chain[{i}]",
                                {"student_channels": [c["channels"] for c in spec.get("conv", [])],
                                 "teacher_channels": []})
        log(f"assistant{i}", train_spiking(assistant, teacher, stage_loss, dc.seed + i + 1,
                                           f"assistant{i}_state.pt"))
        teacher = assistant
    torch.manual_seed(dc.seed)
    student = _student(recipe, shape, data.num_classes)
    hist = train_spiking(student, teacher, loss_fn, dc.seed, "distill_state.pt")
    log("student", hist)
    if not is_main():           # torchrun: rank 0 writes (and removes the training states)
        barrier()
        return path
    remove_reports(out_dir)     # they describe what the previous checkpoint.pt made
    save_checkpoint(path, recipe, student, teacher=None if given is not None else (
        first_teacher and first_teacher.state_dict()),
        provenance={**sources, "training": {"device": device_name(device)}},
        metrics={**teacher_metrics, "student_best_val_accuracy": hist.best_val_accuracy,
                 "student_best_epoch": hist.best_epoch,
                 "student_val_curve": [a if np.isfinite(a) else None for a in hist.val_accuracy],
                 "train_seconds": time.perf_counter() - t0})
    for state in out_dir.glob("*_state.pt"):
        state.unlink()
    barrier()
    return path


def _reuse(path: Path, recipe: Recipe, sources: dict, place: str) -> str | None:
    """None when the checkpoint at `path` is what distilling `recipe` from `sources` (dataset
    and teacher provenance) would make; else why it must be trained again (the same recipe
    met other data or a teacher that cannot be identified). Another recipe's checkpoint, or
    one that cannot be read, is refused: a run is never overwritten by accident."""
    fix = (f"pass {place} to put this run elsewhere, or "
           f"{'--fresh' if place.startswith('--') else 'fresh=True'} to replace it")
    try:
        _, old, ckpt = load_checkpoint(path)
    except UserError as e:
        reason = str(e).removeprefix(f"{path}: ").split(";")[0]
        raise UserError(f"{path}: already there and not reusable ({reason}); it is not "
                        f"replaced unasked: {fix}") from None
    if old != recipe:
        diff = _differences(old.to_dict(), recipe.to_dict())
        more = f" and {len(diff) - 3} more" if len(diff) > 3 else ""
        raise UserError(f"{path} holds the student of another recipe (it differs in "
                        f"{', '.join(diff[:3])}{more}); it is not overwritten unasked: {fix}")
    had = ckpt.get("provenance") or {}
    if sources["teacher"] and "module" in sources["teacher"]:
        return (f"{path} was made by the same recipe, but the teacher is a module given from "
                "Python, which a checkpoint cannot tell from another")
    for key in ("dataset", "teacher"):
        if had.get(key) != sources[key]:
            now = sources[key] or {}
            return (f"{path} was made by the same recipe from another {key} "
                    f"({now.get('file') or now.get('name') or 'trained by the tool'} "
                    "changed since, or the checkpoint does not record it)")
    return None


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """`key: old -> new` for every setting two recipes (as dicts) set differently."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            a, b = (t if len(t := json.dumps(v)) <= 40 else t[:37] + "..." for v in (a, b))
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out


def _teacher_key(recipe: Recipe) -> str:
    """Everything a teacher's training reads from the recipe."""
    r = recipe.to_dict()
    spec = {k: r[k] for k in ("dataset", "teacher")}
    if recipe.teacher.spiking:
        spec |= {"encoding": r["encoding"], "neuron": r["student"]["neuron"],
                 "weight_decay": r["distill"]["weight_decay"]}
    return _digest(spec)[:16]


def _cached(directory: Path | None, key: str, new, train):
    """train(new()) -> (model, metrics), kept in directory/teacher-<key>.pt when one is given.

    The cache holds the state dict and plain metrics (read with weights_only=True): a cached
    file can never run code, and the model is rebuilt from the recipe."""
    if directory is None:
        return train(new())
    path = Path(directory) / f"teacher-{key}.pt"
    if path.exists():
        model = new()
        try:
            if damaged := zip_damage(path):
                raise ValueError(f"{damaged} fails its CRC-32 check")
            cached = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(cached["state_dict"])
            metrics = {k: float(cached["metrics"][k]) for k in ("teacher_test_accuracy",
                                                               "teacher_best_val_accuracy")}
        except Exception as e:
            raise UserError(f"{path}: not a usable cached teacher ({type(e).__name__}); delete "
                            "it to train the teacher again") from None
        return model.eval(), metrics
    model, metrics = train(new())
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "metrics": metrics}, tmp)
    return model, metrics
