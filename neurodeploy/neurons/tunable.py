"""Any deployed network in training mode: the student that `tune` fine-tunes.

`SpikingNet` is the student `distill` builds from a recipe (plain conv and dense stacks);
`TunableNet` is made from an `IntNetwork` as it is, whatever the lowering of a foreign graph
produced: biases, grouped, dilated or rectangular convolutions, recurrent layers, a readout,
the always-on neurons that carry a bias into a decaying current. Its parameters are the
integer weights and biases themselves (one unit = one integer), rounded onto Loihi's grid in
the forward pass with a straight-through estimator; decays and thresholds stay as lowered
(weights are relative to the threshold, so a trainable threshold would only add range).
The neuron is cuba.exact_ste_step: the exact mode's arithmetic itself (decays rounded toward
zero, reset to zero as Loihi runs it) in float64, with straight-through roundings and a
surrogate spike, so the loss is measured on the spikes the chip will produce (the float
training mode's sub-integer differences flip 4% of the Braille RSNN's output decisions).
`to_integer` is the deployed network, which the exact mode and Lava run bit for bit.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from neurodeploy.neurons.cuba import STATE_SHIFT, exact_ste_step, quantize_weight
from neurodeploy.neurons.network import IntLayer, IntNetwork

BIAS_LIMIT = 2 ** 12 - 1        # Loihi's bias mantissa is a signed 13-bit number


def _ste(w: torch.Tensor, grid) -> torch.Tensor:
    """grid(w) forward, identity backward (straight-through estimator)."""
    return w + (grid(w) - w).detach()


def _round_bias(b: torch.Tensor) -> torch.Tensor:
    return torch.round(b).clamp(-BIAS_LIMIT, BIAS_LIMIT)


class TunableLayer(nn.Module):
    """One IntLayer with trainable weights (and bias, recurrent weights). `fixed_rows`: the
    neurons from this index on (always-on neurons the lowering appended) keep their weights;
    `frozen`: the whole layer does (the always-on relay)."""

    def __init__(self, layer: IntLayer, fixed_rows: int | None = None, frozen: bool = False,
                 slope: float = 10.0, latent: dict | None = None):
        super().__init__()
        if layer.input_shape is not None or layer.delay is not None:
            raise ValueError(f"layer {layer.name}: input layers and synaptic delays have no "
                             "training mode here")
        self.layer, self.slope = layer, slope
        latent = latent or {}

        def start(key):
            """The integer values, with the leading block replaced by the latent values
            before rounding where given (always-on neurons appended later keep theirs)."""
            values = np.asarray(getattr(layer, key), dtype=np.float64).copy()
            if latent.get(key) is not None:
                found = np.asarray(latent[key], dtype=np.float64)
                values[tuple(slice(0, k) for k in found.shape)] = found
            return nn.Parameter(torch.as_tensor(values), requires_grad=not frozen)
        self.weight = start("weight")
        self.bias = None if layer.bias is None else start("bias")
        self.recurrent = None if layer.recurrent is None else start("recurrent")
        mask = torch.ones(layer.weight.shape[0])
        if fixed_rows is not None:
            mask[fixed_rows:] = 0
        self.register_buffer("mask", mask)
        if not frozen and fixed_rows is not None:
            for p in (self.weight, self.bias, self.recurrent):
                if p is not None:
                    p.register_hook(lambda g, m=mask: g * m.reshape(-1, *[1] * (g.ndim - 1)))

    def integer(self) -> IntLayer:
        """The deployed layer: weights on the 8-bit grid, biases on integers."""
        w = lambda p: quantize_weight(p.detach()).cpu().numpy().astype(np.int64)  # noqa: E731
        return replace(self.layer, weight=w(self.weight),
                       bias=None if self.bias is None
                       else _round_bias(self.bias.detach()).cpu().numpy().astype(np.int64),
                       recurrent=None if self.recurrent is None else w(self.recurrent))

    def forward(self, x: torch.Tensor, readout: bool = False) -> torch.Tensor:
        """Spikes [B, T, in] -> spikes [B, T, n] (a readout: voltage after each step)."""
        b, t = x.shape[:2]
        x = x.to(torch.float64)
        w = _ste(self.weight, quantize_weight)
        c = self.layer.conv
        if c:
            a = nn.functional.conv2d(x.reshape(b * t, *c.input_shape), w, stride=c.stride,
                                     padding=c.padding, dilation=c.dilation, groups=c.groups)
            a = a.reshape(b, t, -1)
        else:
            a = x.reshape(b, t, -1) @ w.t()
        bias = 0.0
        if self.bias is not None:
            bias = _ste(self.bias, _round_bias)
            if c:
                bias = bias.repeat_interleave(self.layer.size // w.shape[0])
        rec = None if self.recurrent is None else _ste(self.recurrent, quantize_weight).t()
        params = self.layer.params
        u = v = s = torch.zeros_like(a[:, 0])
        out = []
        for step in range(t):
            current = a[:, step] if rec is None else a[:, step] + s @ rec
            u, v, s = exact_ste_step(u, v, current, params, bias, self.slope)
            out.append(v / 2 ** STATE_SHIFT if readout else s)
        return torch.stack(out, 1)


class TunableNet(nn.Module):
    """An IntNetwork in training mode; forward gives each layer's output [B, T, n] as
    SpikingNet does, so the distillation trainer and its losses take it unchanged.

    `fixed_rows[i]`: layer i's neurons from that index on are always-on neurons (frozen);
    `frozen`: names of layers that stay as they are (the always-on relay); `latent`: per
    layer name, weights before rounding to start from (graph.lower_nir's `latent`), so that
    small steps already move the weights near a rounding boundary across it."""

    def __init__(self, net: IntNetwork, fixed_rows: list[int | None] | None = None,
                 frozen: tuple[str, ...] = (), slope: float = 10.0,
                 latent: dict[str, dict] | None = None):
        super().__init__()
        fixed_rows = fixed_rows or [None] * len(net.layers)
        latent = latent or {}
        self.net, self.readout = net, net.readout
        self.layers = nn.ModuleList(
            TunableLayer(layer, rows, layer.name in frozen, slope, latent.get(layer.name))
            for layer, rows in zip(net.layers, fixed_rows))
        self.logit_unit = 1.0     # a readout's logits: voltage / (logit_unit * T)
        self.matched = [(i, layer.size) for i, layer in enumerate(net.layers)
                        if not (net.readout and i == len(net.layers) - 1)]

    def forward(self, spikes: torch.Tensor) -> list[torch.Tensor]:
        out, x = [], spikes
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, readout=self.readout and i == last)
            out.append(x)
        return out

    def spiking_layers(self, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The layers that correspond to a teacher's spiking layers (`matched`: (layer index,
        neurons) pairs; always-on neurons come last and are left out)."""
        return [outputs[i][..., :n] for i, n in self.matched]

    def step_logits(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """As SpikingNet.step_logits: output spikes, or voltage / (logit_unit * T)."""
        last = outputs[-1]
        return last / (self.logit_unit * last.shape[1]) if self.readout else last

    def to_integer(self) -> IntNetwork:
        return replace(self.net, layers=tuple(layer.integer() for layer in self.layers))
