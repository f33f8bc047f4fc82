"""Feed-forward spiking networks in their integer (deployed) form, and the exact mode that runs them.

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

from neurodeploy.neurons.cuba import CubaParams, WEIGHT_MAX, WEIGHT_MIN, exact_step


CONV_WRAP = 2 ** 23   # Lava's fixed-point Conv wraps its output to signed 24 bits


@dataclass(frozen=True)
class Conv:
    """Geometry of a 2-D convolution, PyTorch conventions: (H, W) pairs, CHW input."""

    input_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def output_shape(self, weight: np.ndarray) -> tuple[int, int, int]:
        _, h, w = self.input_shape
        kh, kw = weight.shape[2:]
        out = [(size + 2 * p - d * (k - 1) - 1) // s + 1 for size, p, d, k, s in
               zip((h, w), self.padding, self.dilation, (kh, kw), self.stride)]
        return (weight.shape[0], *out)


@dataclass(frozen=True)
class IntLayer:
    """One deployed layer: integer weights, Loihi neuron constants, optional bias.

    Dense: weight (out, in). Conv (`conv` given): weight (out, in/groups, kH, kW), bias per
    output channel. Inputs and outputs are flattened in CHW order, as PyTorch and netx do.
    """

    weight: np.ndarray
    params: CubaParams
    bias: np.ndarray | None = None
    name: str = ""
    conv: Conv | None = None

    def __post_init__(self):
        w = np.asarray(self.weight)
        ndim = 4 if self.conv else 2
        if w.ndim != ndim or not np.issubdtype(w.dtype, np.integer):
            raise ValueError(f"layer {self.name!r}: weight must be a {ndim}-D integer array, "
                             f"got {w.dtype} {w.shape}")
        if w.size and (w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX):
            raise ValueError(f"layer {self.name!r}: weights span [{w.min()}, {w.max()}], "
                             f"outside Loihi's [{WEIGHT_MIN}, {WEIGHT_MAX}]")
        if self.conv and (self.conv.groups < 1 or w.shape[0] % self.conv.groups):
            raise ValueError(f"layer {self.name!r}: groups={self.conv.groups} must divide its "
                             f"{w.shape[0]} output channels")
        if self.conv and self.conv.input_shape[0] != w.shape[1] * self.conv.groups:
            raise ValueError(f"layer {self.name!r}: kernel expects {w.shape[1] * self.conv.groups}"
                             f" input channels, input has {self.conv.input_shape[0]}")
        if self.conv and min(self.shape) < 1:
            raise ValueError(f"layer {self.name!r}: the kernel does not fit the input "
                             f"{self.conv.input_shape}")
        if self.bias is not None and np.asarray(self.bias).shape != (w.shape[0],):
            raise ValueError(f"layer {self.name!r}: bias shape {np.shape(self.bias)} "
                             f"!= ({w.shape[0]},)")

    @property
    def shape(self) -> tuple[int, ...]:
        return self.conv.output_shape(self.weight) if self.conv else (self.weight.shape[0],)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def in_size(self) -> int:
        return int(np.prod(self.conv.input_shape)) if self.conv else self.weight.shape[1]

    def synapse(self, x: torch.Tensor, weight: np.ndarray | None = None) -> torch.Tensor:
        """Synaptic input of flat spikes [B, in] in float64 (exact for integer sums): [B, size]."""
        w = torch.as_tensor(self.weight if weight is None else weight, dtype=torch.float64,
                            device=x.device)
        if not self.conv:
            return x @ w.t()
        c = self.conv
        out = torch.nn.functional.conv2d(x.reshape(-1, *c.input_shape), w, stride=c.stride,
                                         padding=c.padding, dilation=c.dilation, groups=c.groups)
        return out.reshape(x.shape[0], -1)

    def neuron_bias(self, device) -> torch.Tensor | int:
        if self.bias is None:
            return 0
        bias = torch.as_tensor(self.bias, dtype=torch.int64, device=device)
        return bias.repeat_interleave(self.size // self.weight.shape[0]) if self.conv else bias


@dataclass(frozen=True)
class IntNetwork:
    """A chain of dense or conv CUBA-LIF layers fed by binary input spikes of `input_shape`.

    With `readout`, the last layer is a non-spiking integrator (its threshold is out of reach)
    and its voltage, not its spikes, is the network's output.
    """

    input_shape: tuple[int, ...]
    layers: tuple[IntLayer, ...] = field(default_factory=tuple)
    readout: bool = False

    def __post_init__(self):
        if isinstance(self.input_shape, (int, np.integer)):
            object.__setattr__(self, "input_shape", (int(self.input_shape),))
        shape = tuple(self.input_shape)
        for layer in self.layers:
            expected = layer.conv.input_shape if layer.conv else (layer.weight.shape[1],)
            if int(np.prod(expected)) != int(np.prod(shape)) or (
                    layer.conv and tuple(expected) != shape):
                raise ValueError(f"layer {layer.name!r} expects input {expected} but the "
                                 f"previous layer gives {shape}")
            shape = layer.shape

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def sizes(self) -> list[int]:
        return [self.input_size] + [layer.size for layer in self.layers]


def run_exact(net: IntNetwork, spikes: torch.Tensor, voltage: bool = False):
    """Exact integer mode: input spikes [B, T, in] -> per-layer spikes, each [B, T, n] (bool).

    With `voltage`, also returns the last layer's voltage after every step, [B, T, n] int64
    (Lava's units: the integer voltage << 6), which is the output of a readout layer."""
    batch, steps = spikes.shape[:2]
    x = spikes.reshape(batch, steps, -1).to(torch.float64)
    out = []
    for layer in net.layers:
        current = layer.synapse(x.reshape(batch * steps, -1)).to(torch.int64)
        if layer.conv:
            current = (current + CONV_WRAP) % (2 * CONV_WRAP) - CONV_WRAP
        current = current.reshape(batch, steps, -1)
        bias = layer.neuron_bias(x.device)
        u = torch.zeros_like(current[:, 0])
        v = torch.zeros_like(u)
        states, volts = [], []
        for t in range(steps):
            u, v, s = exact_step(u, v, current[:, t], layer.params, bias)
            states.append(s)
            volts.append(v)
        layer_spikes = torch.stack(states, dim=1)
        out.append(layer_spikes)
        x = layer_spikes.to(torch.float64)
    return (out, torch.stack(volts, dim=1)) if voltage else out
