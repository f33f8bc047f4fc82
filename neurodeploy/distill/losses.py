"""Distillation losses, in one registry, composed by recipe.

A recipe lists terms as `{name: ..., weight: ..., <parameters>}`; the trainer sums
weight * loss. Every loss takes keyword arguments `student` (logits [B, C]), `teacher`
(logits [B, C]) and `labels` ([B]), plus its own parameters.
"""
from __future__ import annotations

import inspect
from typing import Callable

import torch
import torch.nn.functional as F

from neurodeploy.errors import UserError

LOSSES: dict[str, Callable[..., torch.Tensor]] = {}
_INPUTS = {"student", "teacher", "labels"}


def register(name: str):
    def add(fn):
        LOSSES[name] = fn
        return fn
    return add


@register("ce")
def cross_entropy(*, student, labels, **_):
    """Cross-entropy with the labels (no teacher)."""
    return F.cross_entropy(student, labels)


@register("logit_kd")
def logit_kd(*, student, teacher, temperature: float = 4.0, **_):
    """Hinton et al. 2015, "Distilling the Knowledge in a Neural Network": KL divergence
    between temperature-softened teacher and student distributions, scaled by T^2. The
    student's logits are its output spike counts over the window (time-averaged rate x T)."""
    t = temperature
    return F.kl_div(F.log_softmax(student / t, dim=1), F.softmax(teacher / t, dim=1),
                    reduction="batchmean") * t * t


def build_loss(terms: list[dict], where: str) -> Callable[..., torch.Tensor]:
    """Validate recipe terms against the registry and return the weighted sum as one loss."""
    built = []
    for i, term in enumerate(terms):
        term = dict(term)
        name = term.pop("name", None)
        weight = float(term.pop("weight", 1.0))
        if name not in LOSSES:
            raise UserError(f"{where}: losses[{i}]: unknown loss {name!r}; "
                            f"available: {', '.join(sorted(LOSSES))}")
        allowed = set(inspect.signature(LOSSES[name]).parameters) - _INPUTS - {"_"}
        unknown = set(term) - allowed
        if unknown:
            raise UserError(f"{where}: losses[{i}] ({name}): unknown parameter(s) "
                            f"{', '.join(sorted(unknown))}; allowed: "
                            f"{', '.join(sorted(allowed)) or 'none'}")
        built.append((LOSSES[name], weight, term))

    def loss(**inputs):
        return sum(w * fn(**inputs, **params) for fn, w, params in built)
    return loss
