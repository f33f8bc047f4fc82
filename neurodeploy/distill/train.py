"""Training loops: the teacher on labels, the student by distillation from the teacher.

Both select the epoch with the best *validation* accuracy (the student's measured in exact
integer mode, i.e. as deployed) and never look at the test split. Both loops write a resumable
checkpoint after every epoch; a killed run continues where it stopped, and a NaN loss stops
training with the last good checkpoint kept. Checkpoints hold only tensors and plain data and
are read with `weights_only=True`, so a file can never run code.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from neurodeploy.errors import UserError, atomic_path
from neurodeploy.neurons import SpikingNet, run_exact


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_val_accuracy: float = 0.0


def _load_state(path: Path | None, key: str | None) -> dict | None:
    """The resumable state saved by a previous (killed) run of the same training (`key`: a hash
    of everything it reads), or None to start fresh. A state of other training is refused."""
    if path is None or not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state["history"] = History(**state["history"])
    except Exception as e:      # damaged, foreign, or from an older neurodeploy
        raise UserError(f"{path}: cannot resume from this training state ({type(e).__name__}); "
                        "delete it to train from the start") from None
    if state.get("key") != key:
        raise UserError(f"{path}: this training state belongs to another recipe or stage; "
                        "delete it (or use another --out) to train from the start")
    return state


def _save_state(path: Path | None, key: str | None, **state) -> None:
    if path is not None:
        with atomic_path(path) as tmp:
            torch.save({**state, "key": key, "history": dataclasses.asdict(state["history"])},
                       tmp)


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def train_teacher(model: nn.Module, x_train, y_train, x_val, y_val, *, epochs: int, lr: float,
                  batch_size: int, seed: int, progress: bool = True,
                  checkpoint: Path | None = None,
                  key: str | None = None) -> tuple[nn.Module, History]:
    """An ANN teacher on labels; resumable from `checkpoint` like the student."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.as_tensor(x_train), torch.as_tensor(y_train)
    xv, yv = torch.as_tensor(x_val), torch.as_tensor(y_val)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist, best, start = History(), copy.deepcopy(model.state_dict()), 0
    if state := _load_state(checkpoint, key):
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        hist, best, start = state["history"], state["best"], state["epoch"] + 1
    for epoch in tqdm(range(start, epochs), desc="teacher", disable=not progress, leave=False):
        model.train()
        losses = []
        for idx in _batches(len(x), batch_size, gen):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            if not torch.isfinite(loss):
                raise UserError(f"teacher loss became {loss.item()} at epoch {epoch}: lower "
                                "teacher.lr in the recipe")
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            acc = (model(xv).argmax(1) == yv).float().mean().item()
        hist.train_loss.append(float(np.mean(losses)))
        hist.val_accuracy.append(acc)
        if acc > hist.best_val_accuracy or hist.best_epoch < 0:
            hist.best_epoch, hist.best_val_accuracy = epoch, acc
            best = copy.deepcopy(model.state_dict())
        _save_state(checkpoint, key, epoch=epoch, model=model.state_dict(), best=best,
                    optimizer=opt.state_dict(), generator=gen.get_state(), history=hist)
    model.load_state_dict(best)
    return model.eval(), hist


def teacher_outputs(teacher: nn.Module, x, spikes, batch: int = 256):
    """A teacher's logits [N, C] over a dataset, and for a spiking teacher also its output
    spikes [N, T, C] (else None). A spiking teacher reads the spikes (its logits are its output
    spike counts), an ANN the analog x. In batches: a whole split's activations need GBs."""
    with torch.no_grad():
        if isinstance(teacher, SpikingNet):
            teacher.eval()
            steps = torch.cat([teacher.step_logits(teacher(torch.as_tensor(
                spikes[i:i + batch], dtype=torch.float32))) for i in range(0, len(spikes), batch)])
            return steps.sum(1), steps
        return torch.cat([teacher(torch.as_tensor(x[i:i + batch]))
                          for i in range(0, len(x), batch)]), None


def exact_accuracy(student: SpikingNet, spikes: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy as deployed: exact integer mode, argmax of output spike counts (of the summed
    voltage for a readout student, as the backends decode it)."""
    with torch.no_grad():
        if getattr(student, "readout", False):
            _, out = run_exact(student.to_integer(), torch.as_tensor(spikes), voltage=True)
        else:
            out = run_exact(student.to_integer(), torch.as_tensor(spikes))[-1]
    return float((out.sum(1).argmax(1).numpy() == labels).mean())


def distill_student(student: SpikingNet, teacher: nn.Module, loss_fn, *, train_spikes,
                    train_x, train_y, val_spikes, val_y, epochs: int, lr: float,
                    batch_size: int, seed: int, weight_decay: float = 0.0,
                    checkpoint: Path | None = None, progress: bool = True,
                    key: str | None = None) -> History:
    """Distill `teacher` (reads analog features) into `student` (reads spikes)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    learned = list(loss_fn.parameters()) if isinstance(loss_fn, nn.Module) else []
    opt = torch.optim.AdamW(list(student.parameters()) + learned, lr=lr,
                            weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    hist, best, start = History(), copy.deepcopy(student.state_dict()), 0
    if state := _load_state(checkpoint, key):
        student.load_state_dict(state["student"])
        if learned:
            loss_fn.load_state_dict(state["loss"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        hist, best, start = state["history"], state["best"], state["epoch"] + 1
    s_train = torch.as_tensor(train_spikes, dtype=torch.float32)
    y_train = torch.as_tensor(train_y)
    x_train = torch.as_tensor(train_x)
    features = getattr(loss_fn, "needs_features", False)
    if features and not hasattr(teacher, "cam"):
        raise UserError("a feature loss (attention, samd, feature_kd) needs an ANN conv teacher: "
                        "set teacher.conv in the recipe, e.g. [32, 64], and teacher.spiking: false")
    teacher_logits, teacher_steps = (teacher_outputs(teacher, x_train, s_train)
                                     if teacher is not None else (None, None))
    bar = tqdm(range(start, epochs), desc="distill", disable=not progress, leave=False)
    for epoch in bar:
        student.train()
        losses = []
        for idx in _batches(len(s_train), batch_size, gen):
            outputs = student(s_train[idx])
            steps = student.step_logits(outputs)    # spikes or scaled voltage [B, T, C]
            extra = {}
            if features:        # per batch: a whole dataset of feature maps would not fit
                with torch.no_grad():
                    logits, maps = teacher(x_train[idx], features=True)
                    extra = {"teacher_maps": maps, "teacher_cam": teacher.cam(maps[-1], logits)}
                extra["student_maps"] = student.conv_maps(outputs)
            if teacher_steps is not None:
                extra["teacher_steps"] = teacher_steps[idx]
            loss = loss_fn(student=steps.sum(dim=1), student_steps=steps,
                           teacher=None if teacher_logits is None else teacher_logits[idx],
                           labels=y_train[idx], **extra)
            if not torch.isfinite(loss):
                raise UserError(f"distillation loss became {loss.item()} at epoch {epoch}; "
                                f"the last good checkpoint is kept"
                                f"{f' in {checkpoint}' if checkpoint else ''}: lower distill.lr")
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
        acc = exact_accuracy(student, val_spikes, val_y)
        hist.train_loss.append(float(np.mean(losses)))
        hist.val_accuracy.append(acc)
        if acc > hist.best_val_accuracy:
            hist.best_epoch, hist.best_val_accuracy = epoch, acc
            best = copy.deepcopy(student.state_dict())
        bar.set_postfix(loss=f"{hist.train_loss[-1]:.3f}", val=f"{acc:.3f}")
        _save_state(checkpoint, key, epoch=epoch, student=student.state_dict(), best=best,
                    loss=loss_fn.state_dict() if learned else None, optimizer=opt.state_dict(),
                    scheduler=sched.state_dict(), generator=gen.get_state(), history=hist)
    student.load_state_dict(best)
    return hist
