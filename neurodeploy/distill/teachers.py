"""Teacher networks, trained by the tool itself (no downloads)."""
from __future__ import annotations

import torch
from torch import nn


def mlp_teacher(features: int, hidden: list[int], classes: int) -> nn.Sequential:
    """A ReLU MLP on the analog features: the ANN the spiking student learns from."""
    layers, width = [], features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))


class CNNTeacher(nn.Module):
    """Stages of two 3x3 convs (stride 1, then stride 2) with BatchNorm + ReLU, global average
    pooling, one linear layer.

    Stride-2 stages line up with the conv students' stages, so feature losses can compare them
    stage by stage; global pooling + linear gives class activation maps (Zhou et al., CVPR 2016)
    for SAMD. `forward(x, features=True)` also returns every stage's output.
    """

    def __init__(self, input_shape: tuple[int, ...], channels: list[int], classes: int):
        super().__init__()
        self.input_shape = tuple(input_shape)
        stages, width = [], input_shape[0]
        for c in channels:
            stages.append(nn.Sequential(nn.Conv2d(width, c, 3, padding=1), nn.BatchNorm2d(c),
                                        nn.ReLU(), nn.Conv2d(c, c, 3, stride=2, padding=1),
                                        nn.BatchNorm2d(c), nn.ReLU()))
            width = c
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor, features: bool = False):
        x = x.reshape(len(x), *self.input_shape)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        logits = self.head(x.mean((2, 3)))
        return (logits, maps) if features else logits

    def cam(self, last_map: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Class activation map of each sample's predicted class, [B, H, W]."""
        weights = self.head.weight[logits.argmax(1)]                     # [B, C]
        return torch.einsum("bc,bchw->bhw", weights, last_map)
