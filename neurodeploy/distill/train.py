"""Training loops: the teacher on labels, the student by distillation from the teacher.

Both select the epoch with the best *validation* accuracy (the student's measured in exact
integer mode, i.e. as deployed) and never look at the test split. Both loops write a resumable
checkpoint after every epoch; a killed run continues where it stopped, and a NaN loss stops
training with the last good checkpoint kept. Checkpoints hold only tensors and plain data and
are read with `weights_only=True`, so a file can never run code.

Under `torchrun --nproc_per_node N` both loops are data-parallel (DistributedDataParallel; gloo
on CPU, nccl on CUDA): every rank starts from the same seeds, takes its shard of every batch,
validates its shard of the validation split, and only rank 0 writes files.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from neurodeploy.errors import UserError
from neurodeploy.files import atomic_path, zip_damage
from neurodeploy.neurons import SpikingNet, run_exact
from neurodeploy.neurons.network import EXACT_BATCH
from neurodeploy.progress import Progress


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)   # NaN: epoch not validated
    best_epoch: int = -1
    best_val_accuracy: float = 0.0


def init_distributed() -> tuple[int, int]:
    """(rank, world size): joins the process group torchrun describes (WORLD_SIZE > 1 in the
    environment) on first use; (0, 1) for an ordinary single process."""
    if dist.is_available() and not dist.is_initialized() \
            and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True in the process that writes files (rank 0, or the only process)."""
    return init_distributed()[0] == 0


def barrier() -> None:
    if init_distributed()[1] > 1:
        dist.barrier()


def _device(device: str | torch.device | None = None) -> torch.device:
    """Where to train: `device` (a bare "cuda" is this rank's GPU), by default this rank's
    accelerator when torch sees one, else the CPU. Under torchrun the device must be the
    process group's (nccl on CUDA, gloo on the CPU), or DDP fails deep inside torch."""
    auto = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) \
        if torch.cuda.is_available() else torch.device("cpu")
    chosen = auto if device is None else torch.device(device)
    if chosen.type == "cuda" and chosen.index is None:
        chosen = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if init_distributed()[1] > 1 and chosen.type != auto.type:
        raise UserError(f"--device {device}: under torchrun the device follows the process "
                        f"group, which uses {auto.type} here; leave --device out (or hide the "
                        "GPUs with CUDA_VISIBLE_DEVICES= to train on the CPU)")
    return chosen


def _check_divides(batch_size: int, world: int, field_name: str) -> None:
    if batch_size % world:
        raise UserError(f"recipe {field_name}: {batch_size} is not divisible by the {world} "
                        f"processes of torchrun; set {field_name} to a multiple of {world} "
                        f"(e.g. {batch_size // world * world or world}) or change --nproc_per_node")


def _load_state(path: Path | None, key: str | None) -> dict | None:
    """The resumable state saved by a previous (killed) run of the same training (`key`: a hash
    of everything it reads), or None to start fresh. A state of other training is refused."""
    if path is None or not path.exists():
        return None
    try:
        if damaged := zip_damage(path):
            raise ValueError(f"{damaged} fails its CRC-32 check")
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
    if path is not None and is_main():
        with atomic_path(path) as tmp:
            torch.save({**state, "key": key, "history": dataclasses.asdict(state["history"])},
                       tmp)


def _batches(n: int, batch_size: int, generator: torch.Generator):
    """One epoch's batches (the same on every rank: same generator), each cut to this rank's
    shard; a batch too small to give every rank a sample is dropped."""
    rank, world = init_distributed()
    order = torch.randperm(n, generator=generator)
    out = []
    for i in range(0, n, batch_size):
        idx = order[i:i + batch_size]
        idx = idx[:len(idx) // world * world][rank::world]
        if len(idx):
            out.append(idx)
    return out


def _sync_grads(params) -> None:
    """Average gradients over ranks for parameters outside DDP (learned loss terms)."""
    world = init_distributed()[1]
    for p in params:
        if world > 1 and p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def augment_images(x: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator,
                   pad: int = 2, flip: bool = True) -> torch.Tensor:
    """Per-sample random crop of the zero-padded image (shift by up to `pad` pixels) and, with
    `flip`, a random horizontal flip; seeded by `generator`. x: [B, C*H*W] -> same shape."""
    b, (c, h, w) = len(x), shape
    img = x.reshape(b, c, h, w)
    if pad:
        padded = F.pad(img, (pad,) * 4)
        oy, ox = torch.randint(0, 2 * pad + 1, (2, b), generator=generator)
        rows = (oy[:, None] + torch.arange(h))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w))[:, None, None, :]
        img = padded[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None],
                     rows, cols]
    if flip:
        flipped = torch.rand(b, generator=generator) < 0.5
        img = torch.where(flipped[:, None, None, None], img.flip(-1), img)
    return img.reshape(b, -1)


def _scheduler(opt, schedule: str, lr: float, total_steps: int):
    """The per-batch learning-rate schedule: constant, cosine to zero, or one-cycle."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, total_steps))
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(2, total_steps))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def train_teacher(model: nn.Module, x_train, y_train, x_val, y_val, *, epochs: int, lr: float,
                  batch_size: int, seed: int, progress: bool | None = True,
                  checkpoint: Path | None = None, key: str | None = None,
                  weight_decay: float = 0.0, augment: str = "none", schedule: str = "constant",
                  image_shape: tuple[int, ...] | None = None,
                  device: str | None = None) -> tuple[nn.Module, History]:
    """An ANN teacher on labels (AdamW; optional augmentation of image inputs and a per-batch
    lr schedule); resumable from `checkpoint` like the student. `device`: see _device."""
    rank, world = init_distributed()
    _check_divides(batch_size, world, "teacher.batch_size")
    if augment != "none" and (image_shape is None or len(image_shape) != 3):
        raise UserError(f"recipe teacher.augment: {augment!r} shifts and flips images, and these "
                        f"samples have shape {image_shape}; set teacher.augment: none")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = _device(device)
    model = model.to(device)
    x, y = torch.as_tensor(x_train), torch.as_tensor(y_train)
    xv, yv = torch.as_tensor(x_val), torch.as_tensor(y_val)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = len(_batches(len(x), batch_size, torch.Generator().manual_seed(0)))
    sched = _scheduler(opt, schedule, lr, epochs * steps)
    hist, best, start = History(), copy.deepcopy(model.state_dict()), 0
    if state := _load_state(checkpoint, key):
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        hist, best, start = state["history"], state["best"], state["epoch"] + 1
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    shown = Progress("teacher", epochs, "epoch", progress if is_main() else None, start,
                     every=0)
    for epoch in range(start, epochs):
        net.train()
        losses = []
        for idx in _batches(len(x), batch_size, gen):
            xb = x[idx]
            if augment != "none":
                xb = augment_images(xb, image_shape, gen, flip=augment == "crop_flip")
            loss = F.cross_entropy(net(xb.to(device)), y[idx].to(device))
            if not torch.isfinite(loss):
                raise UserError(f"teacher loss became {loss.item()} at epoch {epoch}: lower "
                                "teacher.lr in the recipe")
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        if world > 1:           # BatchNorm statistics: rank 0's, so every rank selects alike
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(xv[i:i + 1024].to(device)).argmax(1).cpu()
                              for i in range(0, len(xv), 1024)])
            acc = (pred == yv).float().mean().item()
        hist.train_loss.append(float(np.mean(losses)))
        hist.val_accuracy.append(acc)
        if acc > hist.best_val_accuracy or hist.best_epoch < 0:
            hist.best_epoch, hist.best_val_accuracy = epoch, acc
            best = copy.deepcopy(model.state_dict())
        shown.update(epoch + 1, loss=f"{hist.train_loss[-1]:.3f}", validation=f"{acc:.3f}")
        _save_state(checkpoint, key, epoch=epoch, model=model.state_dict(), best=best,
                    optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                    generator=gen.get_state(), history=hist)
    shown.close()
    model.load_state_dict(best)
    return model.cpu().eval(), hist


def teacher_outputs(teacher: nn.Module, x, spikes, batch: int = 256):
    """A teacher's logits [N, C] over a dataset, and for a spiking teacher also its output
    spikes [N, T, C] (else None). A spiking teacher reads the spikes (its logits are its output
    spike counts), an ANN the analog x. In batches: a whole split's activations need GBs."""
    device = next(teacher.parameters(), torch.empty(0)).device
    with torch.no_grad():
        if hasattr(teacher, "step_logits"):          # a spiking teacher
            teacher.eval()
            steps = torch.cat([teacher.step_logits(teacher(torch.as_tensor(
                spikes[i:i + batch], dtype=torch.float32, device=device))).cpu()
                for i in range(0, len(spikes), batch)])
            return steps.sum(1), steps
        return torch.cat([teacher(torch.as_tensor(x[i:i + batch], device=device)).cpu()
                          for i in range(0, len(x), batch)]), None


def _exact_correct(student: SpikingNet, spikes, labels) -> int:
    """How many samples the deployed (exact integer) network classifies correctly; the
    argmax of output spike counts, or of the summed voltage for a readout student."""
    if not len(labels):
        return 0
    net, readout, correct = student.to_integer(), getattr(student, "readout", False), 0
    with torch.no_grad():
        for i in range(0, len(labels), EXACT_BATCH):
            x = torch.as_tensor(spikes[i:i + EXACT_BATCH])
            out = run_exact(net, x, voltage=True)[1] if readout else run_exact(net, x)[-1]
            correct += int((out.sum(1).argmax(1).numpy()
                            == np.asarray(labels[i:i + EXACT_BATCH])).sum())
    return correct


def exact_accuracy(student: SpikingNet, spikes: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy as deployed: exact integer mode, argmax of output spike counts (of the summed
    voltage for a readout student, as the backends decode it). Under torchrun each rank runs
    its shard and the counts are summed."""
    rank, world = init_distributed()
    correct = _exact_correct(student, spikes[rank::world], labels[rank::world])
    if world > 1:
        total = torch.tensor([correct], dtype=torch.float64, device=_device())
        dist.all_reduce(total)
        correct = int(total.item())
    return correct / len(labels)


def distill_student(student: SpikingNet, teacher: nn.Module, loss_fn, *, train_spikes,
                    train_x, train_y, val_spikes, val_y, epochs: int, lr: float,
                    batch_size: int, seed: int, weight_decay: float = 0.0,
                    checkpoint: Path | None = None, progress: bool | None = True,
                    key: str | None = None, validate_every: int = 1,
                    device: str | None = None, keep_start: bool = False,
                    augment=None) -> History:
    """Distill `teacher` (reads analog features) into `student` (reads spikes).

    The deployed (exact-mode) validation accuracy is measured every `validate_every` epochs
    and after the last one; the best validated epoch is kept, or with `keep_start` the
    student as given when no epoch beats it (tune: its start is a deployable network already).
    `augment(spikes, generator)`: a fresh perturbation of each training batch, read by a
    spiking teacher and the student alike (tune: function matching needs the teacher asked
    near its inputs too, Beyer et al. 2022). `device`: see _device."""
    rank, world = init_distributed()
    _check_divides(batch_size, world, "distill.batch_size")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = _device(device)
    student.to(device)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
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
    layers = getattr(loss_fn, "needs_layers", False)
    if features and not hasattr(teacher, "cam"):
        raise UserError("a feature loss (attention, samd, feature_kd) needs an ANN conv teacher: "
                        "set teacher.conv in the recipe, e.g. [32, 64], and teacher.spiking: false")
    if teacher is not None:
        teacher.to(device)
    spiking = hasattr(teacher, "step_logits")
    if augment is not None and not spiking:
        raise ValueError("augment needs a teacher that reads the student's spikes")
    per_batch = spiking and (layers or augment is not None)
    # without augmentation, the teacher's outputs over the training set, once
    teacher_logits, teacher_steps = (teacher_outputs(teacher, x_train, s_train)
                                     if teacher is not None and augment is None
                                     else (None, None))
    if keep_start and start == 0:
        hist.best_val_accuracy = exact_accuracy(student, val_spikes, val_y)
    net = nn.parallel.DistributedDataParallel(student) if world > 1 else student
    shown = Progress("distill", epochs, "epoch", progress if is_main() else None, start,
                     every=0)
    for epoch in range(start, epochs):
        student.train()
        losses = []
        for idx in _batches(len(s_train), batch_size, gen):
            spikes = s_train[idx] if augment is None else augment(s_train[idx], gen)
            outputs = net(spikes.to(device))
            steps = student.step_logits(outputs)    # spikes or scaled voltage [B, T, C]
            extra, teacher_batch = {}, None
            if per_batch:
                with torch.no_grad():
                    taught = teacher(spikes.to(device))
                if augment is not None:
                    taught_steps = teacher.step_logits(taught)
                    teacher_batch = taught_steps.sum(1)
                    extra["teacher_steps"] = taught_steps
            if layers:          # corresponding layers (tune: a float model and its deployment)
                extra["teacher_layers"] = teacher.spiking_layers(taught)
                extra["student_layers"] = student.spiking_layers(outputs)
            if features:        # per batch: a whole dataset of feature maps would not fit
                with torch.no_grad():
                    logits, maps = teacher(x_train[idx].to(device), features=True)
                    extra = {"teacher_maps": maps, "teacher_cam": teacher.cam(maps[-1], logits)}
                extra["student_maps"] = student.conv_maps(outputs)
            if teacher_steps is not None:
                extra["teacher_steps"] = teacher_steps[idx].to(device)
            if teacher_logits is not None:
                teacher_batch = teacher_logits[idx].to(device)
            loss = loss_fn(student=steps.sum(dim=1), student_steps=steps, teacher=teacher_batch,
                           labels=y_train[idx].to(device), **extra)
            if not torch.isfinite(loss):
                raise UserError(f"distillation loss became {loss.item()} at epoch {epoch}; "
                                f"the last good checkpoint is kept"
                                f"{f' in {checkpoint}' if checkpoint else ''}: lower the learning "
                                "rate (distill.lr in a recipe, --lr of tune)")
            opt.zero_grad()
            loss.backward()
            _sync_grads(learned)
            opt.step()
            losses.append(loss.item())
        sched.step()
        validate = (epoch + 1) % validate_every == 0 or epoch == epochs - 1
        acc = exact_accuracy(student, val_spikes, val_y) if validate else math.nan
        hist.train_loss.append(float(np.mean(losses)))
        hist.val_accuracy.append(acc)
        if validate and (acc > hist.best_val_accuracy or (hist.best_epoch < 0
                                                          and not keep_start)):
            hist.best_epoch, hist.best_val_accuracy = epoch, acc
            best = copy.deepcopy(student.state_dict())
        shown.update(epoch + 1, loss=f"{hist.train_loss[-1]:.3f}",
                     **({"validation": f"{acc:.3f}"} if validate else {}))
        _save_state(checkpoint, key, epoch=epoch, student=student.state_dict(), best=best,
                    loss=loss_fn.state_dict() if learned else None, optimizer=opt.state_dict(),
                    scheduler=sched.state_dict(), generator=gen.get_state(), history=hist)
    shown.close()
    student.load_state_dict(best)
    for module in (student, teacher, loss_fn):
        if isinstance(module, nn.Module):
            module.cpu()
    return hist


def subset(data, train: int | None, val: int | None, seed: int):
    """`data` with its train and validation splits cut to seeded random subsets of `train` and
    `val` samples (None: the whole split); the test split is kept whole, so accuracies stay
    comparable with full runs."""
    def cut(split, n, offset):
        if n is None or n >= len(split):
            return split
        keep = np.sort(np.random.default_rng(seed + offset).permutation(len(split))[:n])
        return dataclasses.replace(split, **{f.name: getattr(split, f.name)[keep]
                                             for f in dataclasses.fields(split)
                                             if getattr(split, f.name) is not None})
    return dataclasses.replace(data, train=cut(data.train, train, 0), val=cut(data.val, val, 1))
