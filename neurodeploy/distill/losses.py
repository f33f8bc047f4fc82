"""Distillation losses, in one registry, composed by recipe.

A recipe lists terms as `{name: ..., weight: ..., <parameters>}`; the trainer sums
weight * loss. Every loss takes keyword arguments `student` (logits [B, C]: output spike
counts over the window), `student_steps` (output spikes per timestep [B, T, C]; for a readout
student (student.readout) the per-step voltage / (threshold * T), so `student` is the mean
voltage and every loss, full_range_kd's running readouts included, reads it unchanged), `teacher`
(logits [B, C]) and `labels` ([B]); feature losses also take `student_maps` (each conv layer's
spikes [B, T, C, H, W]), `teacher_maps` (each teacher stage's output [B, C, H, W]) and
`teacher_cam` ([B, H, W]), which the trainer computes only when a loss asks for them;
layer losses take `student_layers` and `teacher_layers` (corresponding spiking layers' spikes
[B, T, n], given only when the teacher's layers map one to one onto the student's, as in
`tune`); plus
each loss's own parameters (see
shared/reference/distillation-methods.md for the papers' formulas and defaults).
"""
from __future__ import annotations

import inspect
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from neurodeploy.errors import UserError

LOSSES: dict[str, Callable[..., torch.Tensor]] = {}
_INPUTS = {"student", "student_steps", "teacher", "labels", "student_maps", "teacher_maps",
           "teacher_cam", "teacher_steps", "student_layers", "teacher_layers"}
FEATURE_INPUTS = {"student_maps", "teacher_maps", "teacher_cam"}
LAYER_INPUTS = {"student_layers", "teacher_layers"}


def register(name: str):
    def add(fn):
        LOSSES[name] = fn
        return fn
    return add


def _kd(student_logits, target_logits, temperature: float):
    """tau^2 KL(p_tau(target) || p_tau(student)), averaged over the batch."""
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, dim=-1),
                    F.softmax(target_logits / t, dim=-1), reduction="batchmean") * t * t


@register("ce")
def cross_entropy(*, student, labels, **_):
    """Cross-entropy with the labels (no teacher)."""
    return F.cross_entropy(student, labels)


@register("logit_kd")
def logit_kd(*, student, teacher, temperature: float = 4.0, **_):
    """Hinton et al. 2015, "Distilling the Knowledge in a Neural Network": KL divergence
    between temperature-softened teacher and student distributions, scaled by T^2. The
    student's logits are its output spike counts over the window (time-averaged rate x T)."""
    return _kd(student, teacher, temperature)


def readout_after_each_step(steps: torch.Tensor) -> torch.Tensor:
    """Logits when the output is read after t' = 1..T steps: spike counts so far, rescaled to
    the full window (counts * T / t') so that every t' is on the same scale. [B, T, C]"""
    T = steps.shape[1]
    scale = T / torch.arange(1, T + 1, dtype=steps.dtype, device=steps.device)
    return steps.cumsum(1) * scale[None, :, None]


@register("full_range_kd")
def full_range_kd(*, student_steps, teacher, labels, temperature: float = 3.0,
                  alpha: float = 0.2, beta: float = 0.5, **_):
    """Yu et al., ICML 2025 (seed 003): every readout time t' is supervised, by the labels, by
    the teacher (alpha) and by the student's own self-ensemble of correct readouts (beta), so
    one student deploys at any T' <= T. With spiking outputs, z_S(t') is the readout after t'
    steps (readout_after_each_step), which is exactly what a T'-step deployment reports."""
    z = readout_after_each_step(student_steps)                      # [B, T, C]
    b, steps, classes = z.shape
    flat = z.reshape(b * steps, classes)
    ce = F.cross_entropy(flat, labels.repeat_interleave(steps))
    to_teacher = _kd(flat, teacher.repeat_interleave(steps, 0), temperature)
    with torch.no_grad():
        correct = (z.argmax(-1) == labels[:, None]).to(z.dtype)     # [B, T]
        has = correct.sum(1) > 0
        ensemble = (z * correct[..., None]).sum(1) / correct.sum(1).clamp(min=1)[:, None]
    to_self = (_kd(z[has].reshape(-1, classes), ensemble[has].repeat_interleave(steps, 0),
                   temperature) if has.any() else z.sum() * 0)
    return ce + beta * to_self + alpha * to_teacher


@register("nld")
def noise_smoothed_logit_kd(*, student, teacher, temperature: float = 2.0, noise: float = 0.1,
                            variant: str = "paper", mix: float = 0.9, **_):
    """Noise-smoothed logit distillation (NLD, seed 000). Spike-count logits are sparse and
    discrete; smoothing them with noise before matching the teacher helps.
    variant "paper" (default): z~ = z_S + noise * eps, eps ~ N(mean(z_S), std(z_S)^2) per sample;
    variant "code" (the authors' public code): p~ = mix * p_tau(z_S) + (1 - mix) * p_tau(mu +
    sigma^2 n), n ~ N(0, 1). Loss: tau^2 KL(p_tau(z_T) || p~)."""
    mu = student.mean(1, keepdim=True)
    sigma = student.std(1, keepdim=True)
    t = temperature
    if variant == "paper":
        eps = mu + sigma * torch.randn_like(student)
        return _kd(student + noise * eps, teacher, t)
    if variant == "code":
        noisy = F.softmax((mu + sigma ** 2 * torch.randn_like(student)) / t, dim=-1)
        mixed = mix * F.softmax(student / t, dim=-1) + (1 - mix) * noisy
        return F.kl_div(mixed.clamp_min(1e-12).log(), F.softmax(teacher / t, dim=-1),
                        reduction="batchmean") * t * t
    raise UserError(f"nld: variant must be 'paper' or 'code', got {variant!r}")


@register("spike_train")
def spike_train_kd(*, student_steps, teacher_steps=None, **_):
    """Distilling Spikes (Kushawaha et al., ICPR 2020, seed 004): match the spiking teacher's
    output spike train step by step (mean squared error). Its spike-count loss is `logit_kd`
    with a spiking teacher, whose logits are its output spike counts."""
    if teacher_steps is None:
        raise UserError("spike_train needs a spiking teacher (teacher.spiking: true, or a "
                        "distill.chain assistant)")
    if teacher_steps.shape != student_steps.shape:
        raise UserError(f"spike_train: teacher output {tuple(teacher_steps.shape[1:])} and "
                        f"student output {tuple(student_steps.shape[1:])} differ (T, classes)")
    return F.mse_loss(student_steps, teacher_steps)


@register("layer_spikes")
def layer_spike_kd(*, student_layers=None, teacher_layers=None, window: int = 1, **_):
    """Every hidden layer's spike train matched to the teacher's (mean squared error, mean
    over layers): Distilling Spikes' spike-train loss (seed 004) applied at each layer, where
    KDSNN (seed 001) matches features; possible when layers correspond neuron for neuron, as
    between a float model and its own deployment. `window` > 1 compares spike counts over
    windows of that many steps (rates) instead of single steps, at most all T of them."""
    if student_layers is None or teacher_layers is None:
        raise UserError("layer_spikes needs a teacher whose layers correspond to the "
                        "student's one to one (`neurodeploy tune`)")
    losses = []
    for s, t in zip(student_layers, teacher_layers):
        window = min(window, s.shape[1])            # a window longer than T: the whole of T
        if window > 1:
            steps = s.shape[1] // window * window
            s = s[:, :steps].reshape(s.shape[0], -1, window, s.shape[2]).mean(2)
            t = t[:, :steps].reshape(t.shape[0], -1, window, t.shape[2]).mean(2)
        losses.append(F.mse_loss(s, t.to(s.dtype)))
    return torch.stack(losses).mean() if losses else torch.zeros(())


def _pairs(student_maps, teacher_maps):
    """Stage-aligned (student, teacher) maps; the larger map is average-pooled to the smaller."""
    if not student_maps or not teacher_maps:
        raise UserError("feature losses need a conv student (student.conv) and a conv teacher "
                        "(teacher.conv) in the recipe")
    for s, t in zip(student_maps, teacher_maps):
        size = tuple(min(a, b) for a, b in zip(s.shape[-2:], t.shape[-2:]))
        yield (F.adaptive_avg_pool2d(s.flatten(0, 1), size).reshape(*s.shape[:3], *size),
               F.adaptive_avg_pool2d(t, size))


@register("attention")
def attention_kd(*, student_maps, teacher_maps, p: float = 2.0, **_):
    """Layer-wise attention distillation (LaSNN, seed 002): A(F) = sum_c |F_c|^p, flattened
    and L2-normalised, matched stage by stage: mean over stages of ||A_T/|A_T| - A_S/|A_S|||.
    The student's F is its time-averaged spike map. (The map definition is our reading of the
    abstract; all stages are trained jointly rather than stage by stage.)"""
    losses = []
    for s, t in _pairs(student_maps, teacher_maps):
        a_s = F.normalize(s.mean(1).abs().pow(p).sum(1).flatten(1), dim=1)
        a_t = F.normalize(t.abs().pow(p).sum(1).flatten(1), dim=1)
        losses.append((a_t - a_s).norm(dim=1).mean())
    return torch.stack(losses).mean()


@register("samd")
def saliency_activation_map_kd(*, student_maps, teacher_maps, teacher_cam,
                               temperature: float = 2.0, **_):
    """SAMD (seed 000): the student's spike activation map at its last conv stage,
    M_S = sum_t sum_c S[t, c], against the teacher's class activation map of the predicted
    class; both min-max normalised; KL(softmax(M_T / tau) || softmax(M_S / tau)) over H x W."""
    (s, _), = list(_pairs(student_maps[-1:], teacher_maps[-1:]))
    m_s = s.sum((1, 2))                                                  # [B, h, w]
    m_t = F.adaptive_avg_pool2d(teacher_cam[:, None], m_s.shape[-2:])[:, 0]

    def unit(m):
        flat = m.flatten(1)
        lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
        return (flat - lo) / (hi - lo).clamp(min=1e-6)
    return F.kl_div(F.log_softmax(unit(m_s) / temperature, dim=1),
                    F.softmax(unit(m_t) / temperature, dim=1), reduction="batchmean")


@register("feature_kd")
class FeatureKD(nn.Module):
    """KDSNN (Xu et al., CVPR 2023, seed 001): beta ||F_T - r(mean_t F_S)||^2 at one conv
    stage, r a learned 1x1 conv from the student's channels to the teacher's, trained jointly
    with the student (its parameters join the optimiser). Stage -1 is the last conv stage."""

    def __init__(self, stage: int = -1, *, student_channels: list[int],
                 teacher_channels: list[int]):
        super().__init__()
        if not student_channels or not teacher_channels:
            raise UserError("feature_kd needs a conv student (student.conv) and a conv teacher "
                            "(teacher.conv) in the recipe")
        try:
            c_s, c_t = student_channels[stage], teacher_channels[stage]
        except IndexError:
            raise UserError(f"feature_kd: stage {stage} does not exist in both the student "
                            f"({len(student_channels)} conv stages) and the teacher "
                            f"({len(teacher_channels)})") from None
        self.stage = stage
        self.regressor = nn.Conv2d(c_s, c_t, 1)

    def forward(self, *, student_maps, teacher_maps, **_):
        (s, t), = list(_pairs(student_maps[self.stage:][:1], teacher_maps[self.stage:][:1]))
        return (t - self.regressor(s.mean(1))).pow(2).mean()


class CompositeLoss(nn.Module):
    """The weighted sum of a recipe's loss terms; holds the parameters of learned terms."""

    def __init__(self, terms: list[tuple[Callable, float, dict]]):
        super().__init__()
        self.terms = terms
        self.learned = nn.ModuleList(fn for fn, _, _ in terms if isinstance(fn, nn.Module))
        inputs = set().union(*(inspect.signature(fn.forward if isinstance(fn, nn.Module)
                                                 else fn).parameters for fn, _, _ in terms))
        self.needs_features = bool(FEATURE_INPUTS & inputs)
        self.needs_layers = bool(LAYER_INPUTS & inputs)
        self.needs_teacher = bool({"teacher", "teacher_steps", *FEATURE_INPUTS} & inputs)

    def forward(self, **inputs) -> torch.Tensor:
        return sum(w * fn(**inputs, **params) for fn, w, params in self.terms)


# Ranges of the loss parameters a recipe may set; a value outside turns into NaN or a
# meaningless objective during training, so it is refused when the recipe is read.
RANGES = {"weight": (0.0, 1e3), "temperature": (1e-3, 1e3), "alpha": (0.0, 1e3),
           "beta": (0.0, 1e3), "noise": (0.0, 1e3), "mix": (0.0, 1.0), "p": (1e-3, 16.0),
           "stage": (-64, 63), "window": (1, 100_000)}
_CHOICES = {"variant": ("paper", "code")}


def _check_value(key: str, value, default) -> None:
    """One parameter against its default's type (str, int or float) and its range."""
    if isinstance(default, str):
        if value not in _CHOICES.get(key, (value,)) or not isinstance(value, str):
            raise ValueError(f"{key} must be one of {', '.join(_CHOICES.get(key, ['a string']))}"
                             f", got {value!r}")
        return
    wants_int = isinstance(default, int) and not isinstance(default, bool)
    numeric = isinstance(value, int) if wants_int else isinstance(value, (int, float))
    if isinstance(value, bool) or not numeric or not math.isfinite(value):
        kind = "an integer" if wants_int else "a finite number"
        raise ValueError(f"{key} must be {kind}, got {value!r}")
    lo, hi = RANGES.get(key, (-1e6, 1e6))
    if not lo <= value <= hi:
        raise ValueError(f"{key} must be in [{lo:g}, {hi:g}], got {value!r}")


def check_term(term) -> dict:
    """Validate one recipe loss entry {name, weight, <parameters>} against the registry.

    Raises ValueError with a message relative to the entry; returns the entry unchanged."""
    if not isinstance(term, dict):
        raise ValueError(f"expected a mapping like {{name: ce, weight: 0.5}}, got {term!r}")
    name = term.get("name")
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(sorted(LOSSES))}")
    entry = LOSSES[name]
    learned = isinstance(entry, type)
    signature = inspect.signature(entry.__init__ if learned else entry).parameters
    params = {k: v.default for k, v in signature.items()
              if k not in _INPUTS | {"_", "self", "student_channels", "teacher_channels"}
              and v.kind is not inspect.Parameter.VAR_KEYWORD}
    unknown = set(term) - set(params) - {"name", "weight"}
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {', '.join(sorted(map(str, unknown)))}; "
                         f"allowed: {', '.join(sorted(params)) or 'none'}")
    for key, value in term.items():
        if key != "name":
            _check_value(key, value, 1.0 if key == "weight" else params[key])
    return term


def build_loss(terms: list[dict], where: str, architecture: dict | None = None) -> CompositeLoss:
    """Validate recipe terms against the registry and return their weighted sum as one loss.

    `architecture` ({student_channels, teacher_channels}) sizes learned terms such as
    feature_kd's regressor; without it they cannot be built."""
    if not isinstance(terms, list):
        raise UserError(f"{where}: losses: expected a list of {{name: ..., weight: ...}}, "
                        f"got {terms!r}")
    built = []
    for i, term in enumerate(terms):
        try:
            check_term(term)
        except ValueError as e:
            raise UserError(f"{where}: losses[{i}]: {e}") from None
        params = {k: v for k, v in term.items() if k not in ("name", "weight")}
        name, weight = term["name"], float(term.get("weight", 1.0))
        entry = LOSSES[name]
        if isinstance(entry, type):
            arch = architecture or {"student_channels": [], "teacher_channels": []}
            try:
                built.append((entry(**params, **arch), weight, {}))
            except UserError as e:
                raise UserError(f"{where}: losses[{i}] ({name}): {e}") from None
        else:
            built.append((entry, weight, params))
    return CompositeLoss(built)
