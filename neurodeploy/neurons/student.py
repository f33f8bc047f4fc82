"""The trainable student, and its conversion to and from the deployed integer network."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from neurodeploy.neurons.cuba import (THRESHOLD_MAX, CubaLIF, CubaParams, CubaReadout,
                                      QuantConv2d, QuantDense)
from neurodeploy.neurons.network import Conv, IntLayer, IntNetwork


class SpikingNet(nn.Module):
    """Trainable student: [Conv -> CUBA-LIF]* -> flatten -> [Dense -> CUBA-LIF]+.

    Every layer spikes (no hidden ReLU); the output is the last layer's spike counts.
    `conv` items are dicts {channels, kernel, stride, padding}; `hidden` are dense widths.
    With `readout`, the last layer is a non-spiking CUBA integrator (threshold THRESHOLD_MAX,
    the importer's convention for LI/CubaLI readouts) and the output is its voltage: spike
    counts of T steps saturate, a voltage does not. params[-1].threshold then only sets the
    readout synapse's weight scale (one weight unit = 1/threshold) and the logits' unit.
    `init_gain` multiplies the Kaiming-uniform initial weights: with wide fan-ins and small
    thresholds Kaiming's bound is below one 8-bit grid step, so most integer weights start at
    zero (see `zero_weight_fraction`).
    `recurrent=True` gives every hidden dense layer a synapse onto itself (n -> n, 8-bit grid,
    the layer's weight scale): its own spikes of step t-1 join its input at step t, which is
    run_exact's and netx `dense_rec`'s semantics, so a temporal task can be distilled and
    deployed as is. Dense-only students with a hidden layer; `from_integer` passes the indices
    of the layers that have such weights instead.
    """

    def __init__(self, input_shape: tuple[int, ...], classes: int, params: list[CubaParams],
                 conv: list[dict] = (), hidden: list[int] = (), slope: float = 10.0,
                 readout: bool = False, init_gain: float = 1.0,
                 recurrent: bool | Iterable[int] = False):
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
        if recurrent is True:
            if conv or not hidden:
                raise ValueError("student.recurrent: recurrence needs a dense-only student with "
                                 "a hidden layer (no conv); set student.recurrent: false or "
                                 "use student.hidden without student.conv")
            recurrent = range(len(hidden))
        # keyed by layer index; a missing key is a feed-forward layer (checkpoints stay as before)
        self.recurrent = nn.ModuleDict()
        for i in sorted(set(recurrent or ())):
            if not 0 <= i < len(self.synapses) or self.geometry[i] is not None \
                    or (self.readout and i == len(self.synapses) - 1):
                raise ValueError(f"student.recurrent: layer {i} is not a spiking dense layer; "
                                 "only those can have recurrent weights")
            n = self.out_shapes[i][0]
            self.recurrent[str(i)] = QuantDense(n, n, params[i].threshold)
        if init_gain != 1.0:
            with torch.no_grad():
                for synapse in [*self.synapses, *self.recurrent.values()]:
                    synapse.weight.mul_(init_gain)

    def forward(self, spikes: torch.Tensor) -> list[torch.Tensor]:
        """Input spikes [B, T, features] -> per-layer spikes [B, T, n] (float, differentiable);
        for a readout net the last entry is the readout's voltage per step (integer units)."""
        b, t = spikes.shape[:2]
        x = spikes.reshape(b, t, *self.input_shape)
        out = []
        for i, (synapse, geometry, neuron) in enumerate(zip(self.synapses, self.geometry,
                                                            self.neurons)):
            if geometry is None:
                x = x.reshape(b, t, -1)
            x = neuron(synapse(x), self.recurrent[str(i)] if str(i) in self.recurrent else None)
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
                     name=f"{'conv' if geo else 'fc'}{i}", conv=geo,
                     recurrent=self.recurrent[str(i)].integer_weight().cpu().numpy()
                     if str(i) in self.recurrent else None)
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
        recurrent = [i for i, layer in enumerate(net.layers) if layer.recurrent is not None]
        model = cls(net.input_shape, net.layers[-1].size, params, conv, hidden,
                    readout=net.readout, recurrent=recurrent)
        with torch.no_grad():
            for synapse, layer in zip(model.synapses, net.layers):
                synapse.weight.copy_(torch.as_tensor(layer.weight / synapse.scale))
            for i in recurrent:
                rec = model.recurrent[str(i)]
                rec.weight.copy_(torch.as_tensor(net.layers[i].recurrent / rec.scale))
        return model


def zero_weight_fraction(net: SpikingNet) -> list[float]:
    """Per layer, the fraction of the deployed (8-bit grid) weights that are exactly zero."""
    return [float((syn.integer_weight() == 0).double().mean()) for syn in net.synapses]
