"""Feed-forward spiking networks: the trainable student and its integer (deployed) form.

Time convention ("window time"). On Loihi and in Lava each Dense synapse delays spikes by one
step, and netx staggers each layer's reset by one step, so layer l processes sample k during
its own window of T steps that starts l steps after layer l-1's. Inside those windows layer l
at step j receives layer l-1's spikes of step j: the delays and the staggered resets cancel.
Both the training mode and the exact mode therefore run every layer over the same T window
steps; the Lava backend maps absolute chip time back onto these windows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from neurodeploy.neurons.cuba import (CubaLIF, CubaParams, QuantDense, WEIGHT_MAX, WEIGHT_MIN,
                                      exact_step)


@dataclass(frozen=True)
class IntLayer:
    """One deployed layer: integer weights (out, in), Loihi neuron constants, optional bias."""

    weight: np.ndarray
    params: CubaParams
    bias: np.ndarray | None = None
    name: str = ""

    def __post_init__(self):
        w = np.asarray(self.weight)
        if w.ndim != 2 or not np.issubdtype(w.dtype, np.integer):
            raise ValueError(f"layer {self.name!r}: weight must be a 2-D integer array, "
                             f"got {w.dtype} {w.shape}")
        if w.size and (w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX):
            raise ValueError(f"layer {self.name!r}: weights span [{w.min()}, {w.max()}], "
                             f"outside Loihi's [{WEIGHT_MIN}, {WEIGHT_MAX}]")
        if self.bias is not None and np.asarray(self.bias).shape != (w.shape[0],):
            raise ValueError(f"layer {self.name!r}: bias shape {np.shape(self.bias)} "
                             f"!= ({w.shape[0]},)")

    @property
    def size(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True)
class IntNetwork:
    """A chain of dense CUBA-LIF layers fed by binary input spikes of width `input_size`."""

    input_size: int
    layers: tuple[IntLayer, ...] = field(default_factory=tuple)

    def __post_init__(self):
        width = self.input_size
        for layer in self.layers:
            if layer.weight.shape[1] != width:
                raise ValueError(f"layer {layer.name!r} expects {layer.weight.shape[1]} inputs "
                                 f"but the previous layer has {width} neurons")
            width = layer.size

    @property
    def sizes(self) -> list[int]:
        return [self.input_size] + [layer.size for layer in self.layers]


def run_exact(net: IntNetwork, spikes: torch.Tensor) -> list[torch.Tensor]:
    """Exact integer mode: input spikes [B, T, in] -> per-layer spikes, each [B, T, n] (bool)."""
    device = spikes.device
    x = spikes.to(torch.float64)
    out = []
    for layer in net.layers:
        # Integer weights times binary spikes, summed in float64: exact, and supported on CUDA.
        w = torch.as_tensor(layer.weight, dtype=torch.float64, device=device)
        current = (x @ w.t()).to(torch.int64)
        bias = (torch.as_tensor(layer.bias, dtype=torch.int64, device=device)
                if layer.bias is not None else 0)
        u = torch.zeros_like(current[:, 0])
        v = torch.zeros_like(u)
        steps = []
        for t in range(current.shape[1]):
            u, v, s = exact_step(u, v, current[:, t], layer.params, bias)
            steps.append(s)
        layer_spikes = torch.stack(steps, dim=1)
        out.append(layer_spikes)
        x = layer_spikes.to(torch.float64)
    return out


class SpikingMLP(nn.Module):
    """Trainable student: Dense -> CUBA-LIF blocks; output = spike counts of the last layer."""

    def __init__(self, sizes: list[int], params: list[CubaParams], slope: float = 10.0):
        super().__init__()
        if len(params) != len(sizes) - 1:
            raise ValueError(f"{len(sizes) - 1} layers need {len(sizes) - 1} neuron settings, "
                             f"got {len(params)}")
        self.sizes = list(sizes)
        self.synapses = nn.ModuleList(QuantDense(i, o, p.threshold)
                                      for i, o, p in zip(sizes[:-1], sizes[1:], params))
        self.neurons = nn.ModuleList(CubaLIF(p, slope) for p in params)

    def forward(self, spikes: torch.Tensor) -> list[torch.Tensor]:
        """Input spikes [B, T, in] -> per-layer spikes [B, T, n] (float, differentiable)."""
        out, x = [], spikes
        for synapse, neuron in zip(self.synapses, self.neurons):
            x = neuron(synapse(x))
            out.append(x)
        return out

    @classmethod
    def from_integer(cls, net: IntNetwork) -> "SpikingMLP":
        """The float (training) mode of a deployed network: same weights, same constants."""
        if any(layer.bias is not None and np.any(layer.bias) for layer in net.layers):
            raise ValueError("the training mode has no bias; this network uses one")
        model = cls(net.sizes, [layer.params for layer in net.layers])
        with torch.no_grad():
            for synapse, layer in zip(model.synapses, net.layers):
                synapse.weight.copy_(torch.as_tensor(layer.weight / synapse.scale))
        return model

    def to_integer(self) -> IntNetwork:
        layers = tuple(IntLayer(weight=syn.integer_weight().cpu().numpy(), params=neu.params,
                                name=f"fc{i}")
                       for i, (syn, neu) in enumerate(zip(self.synapses, self.neurons)))
        return IntNetwork(input_size=self.sizes[0], layers=layers)
