"""Teacher networks, trained by the tool itself (no downloads)."""
from __future__ import annotations

from torch import nn


def mlp_teacher(features: int, hidden: list[int], classes: int) -> nn.Sequential:
    """A ReLU MLP on the analog features: the ANN the spiking student learns from."""
    layers, width = [], features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))
