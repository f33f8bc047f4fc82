"""Feed-forward spiking networks: the trainable student and its integer (deployed) form.

Time convention ("window time"). On Loihi and in Lava each Dense synapse delays spikes by one
step, and netx staggers each layer's reset by one step, so layer l processes sample k during
its own window of T steps that starts l steps after layer l-1's. Inside those windows layer l
at step j receives layer l-1's spikes of step j: the delays and the staggered resets cancel.
Both the training mode and the exact mode therefore run every layer over the same T window
steps; the Lava backend maps absolute chip time back onto these windows.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from neurodeploy.neurons.cuba import (THRESHOLD_MAX, CubaLIF, CubaParams, CubaReadout,
                                      QuantConv2d, QuantDense, WEIGHT_MAX, WEIGHT_MIN, exact_step)


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


class SpikingNet(nn.Module):
    """Trainable student: [Conv -> CUBA-LIF]* -> flatten -> [Dense -> CUBA-LIF]+.

    Every layer spikes (no hidden ReLU); the output is the last layer's spike counts.
    `conv` items are dicts {channels, kernel, stride, padding}; `hidden` are dense widths.
    With `readout`, the last layer is a non-spiking CUBA integrator (threshold THRESHOLD_MAX,
    the importer's convention for LI/CubaLI readouts) and the output is its voltage: spike
    counts of T steps saturate, a voltage does not. params[-1].threshold then only sets the
    readout synapse's weight scale (one weight unit = 1/threshold) and the logits' unit.
    """

    def __init__(self, input_shape: tuple[int, ...], classes: int, params: list[CubaParams],
                 conv: list[dict] = (), hidden: list[int] = (), slope: float = 10.0,
                 readout: bool = False):
        super().__init__()
        self.readout = bool(readout)
        self.input_shape = tuple(input_shape)
        self.conv_specs, self.hidden, self.classes = [dict(c) for c in conv], list(hidden), classes
        if len(params) != len(conv) + len(hidden) + 1:
            raise ValueError(f"{len(conv) + len(hidden) + 1} layers need as many neuron "
                             f"settings, got {len(params)}")
        self.synapses, self.geometry, self.out_shapes = nn.ModuleList(), [], []
        shape = self.input_shape
        for spec, p in zip(conv, params):
            syn = QuantConv2d(shape[0], spec["channels"], spec["kernel"], p.threshold,
                              spec.get("stride", 1), spec.get("padding", 0))
            geometry = Conv(input_shape=shape, stride=syn.stride, padding=syn.padding)
            self.synapses.append(syn)
            self.geometry.append(geometry)
            shape = geometry.output_shape(syn.weight)
            self.out_shapes.append(shape)
        width = int(np.prod(shape))
        for out, p in zip([*hidden, classes], params[len(conv):]):
            self.synapses.append(QuantDense(width, out, p.threshold))
            self.geometry.append(None)
            self.out_shapes.append((out,))
            width = out
        self.neurons = nn.ModuleList(CubaLIF(p, slope) for p in params)
        self.readout_scale = float(params[-1].threshold)
        if self.readout:
            self.neurons[-1] = CubaReadout(replace(params[-1], threshold=THRESHOLD_MAX))

    def forward(self, spikes: torch.Tensor) -> list[torch.Tensor]:
        """Input spikes [B, T, features] -> per-layer spikes [B, T, n] (float, differentiable);
        for a readout net the last entry is the readout's voltage per step (integer units)."""
        b, t = spikes.shape[:2]
        x = spikes.reshape(b, t, *self.input_shape)
        out = []
        for synapse, geometry, neuron in zip(self.synapses, self.geometry, self.neurons):
            if geometry is None:
                x = x.reshape(b, t, -1)
            x = neuron(synapse(x))
            out.append(x.reshape(b, t, -1))
        return out

    def step_logits(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Per-step contributions to the logits, [B, T, C]; the logits are their sum over T.

        Spiking output: the spikes (logits = spike counts). Readout: voltage / (threshold * T),
        so the logits are the window's mean voltage in units of the layer's threshold scale:
        independent of T and of the order of an ANN's logits, so a KD temperature keeps its
        meaning, and argmax is the deployed argmax of the summed voltage."""
        last = outputs[-1]
        return last / (self.readout_scale * last.shape[1]) if self.readout else last

    def conv_maps(self, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The conv layers' spikes from `forward`'s outputs, as maps [B, T, C, H, W]."""
        return [o.reshape(*o.shape[:2], *shape) for o, geo, shape in
                zip(outputs, self.geometry, self.out_shapes) if geo is not None]

    def to_integer(self) -> IntNetwork:
        layers = tuple(
            IntLayer(weight=syn.integer_weight().cpu().numpy(), params=neu.params,
                     name=f"{'conv' if geo else 'fc'}{i}", conv=geo)
            for i, (syn, geo, neu) in enumerate(zip(self.synapses, self.geometry, self.neurons)))
        # a dense-only network reads flat input: no Flatten node for NIR tools to apply to a batch
        shape = self.input_shape if self.conv_specs else (int(np.prod(self.input_shape)),)
        return IntNetwork(input_shape=shape, layers=layers, readout=self.readout)

    @classmethod
    def from_integer(cls, net: IntNetwork) -> "SpikingNet":
        """The float (training) mode of a deployed network: same weights, same constants."""
        if any(layer.bias is not None and np.any(layer.bias) for layer in net.layers):
            raise ValueError("the training mode has no bias; this network uses one")
        conv, hidden = [], []
        for layer in net.layers[:-1]:
            if layer.conv:
                c = layer.conv
                if c.dilation != (1, 1) or c.groups != 1 or len(set(c.stride)) > 1 \
                        or len(set(c.padding)) > 1 or layer.weight.shape[2] != layer.weight.shape[3]:
                    raise ValueError(f"layer {layer.name}: the training mode supports square "
                                     "kernels with equal strides/padding, no dilation or groups")
                conv.append({"channels": layer.weight.shape[0], "kernel": layer.weight.shape[2],
                             "stride": c.stride[0], "padding": c.padding[0]})
            else:
                hidden.append(layer.size)
        params = [layer.params for layer in net.layers]
        if net.readout:   # the readout's threshold is out of reach: scale by the layer before
            scale = (net.layers[-2].params.threshold if len(net.layers) > 1
                     else max(1, int(np.abs(net.layers[-1].weight).max())))
            params[-1] = replace(params[-1], threshold=scale)
        model = cls(net.input_shape, net.layers[-1].size, params, conv, hidden,
                    readout=net.readout)
        with torch.no_grad():
            for synapse, layer in zip(model.synapses, net.layers):
                synapse.weight.copy_(torch.as_tensor(layer.weight / synapse.scale))
        return model
