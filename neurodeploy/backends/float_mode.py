"""The float backend: the model as trained (or as its own framework defines it), not as deployed.

Parity's second question is how far the deployed network is from the model the user trained.
This backend answers the "trained" side with the same SpikeRecord the deployed backends return:
- our networks (netx, or our own NIR export): `SpikingNet.from_integer(net)`, the student's
  training mode (float CUBA-LIF, same integer weights and constants, no fixed-point rounding,
  wrap or saturation; recurrent dense layers included). Its limits are from_integer's: no
  bias, no delays, square conv kernels with equal strides and padding, no dilation or groups,
  no recurrence onto a readout; such a network is refused with one line.
- a foreign NIR graph (snnTorch, Norse, ...): its float semantics under the importer's
  discretization (neurodeploy/graph/importer.py: forward Euler, the updated current drives the
  voltage, per-neuron thresholds, reset to zero), with the float weights before quantization.
A readout layer's voltage is reported in the deployed backends' units (Lava's integer voltage,
<< 6), so voltages and predictions compare directly; float spikes are booleans as everywhere.
"""
from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import torch

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.errors import UserError
from neurodeploy.neurons import CubaParams, IntNetwork, SpikingNet
from neurodeploy.neurons.cuba import STATE_SHIFT

BACKEND = "float"
_UNIT = float(1 << STATE_SHIFT)      # Lava's voltage = integer voltage << 6


def _trainable(net: IntNetwork) -> None:
    """Refuse what SpikingNet has no float counterpart for (from_integer would ignore it)."""
    for layer in net.layers:
        for name in ("delay", "input_shape"):
            if getattr(layer, name, None) is not None:
                raise ValueError(f"layer {layer.name}: it has {name.replace('_shape', '')} "
                                 "weights/settings, which the training mode has no counterpart for")
        if not isinstance(layer.params, CubaParams):
            raise ValueError(f"layer {layer.name}: {type(layer.params).__name__} neurons are "
                             "not CUBA-LIF")


def simulate_float(net: IntNetwork, spikes: np.ndarray, device: str = "cpu",
                   batch_size: int = 512, source: str = "the network") -> SpikeRecord:
    """Our training mode of a deployed network over input spikes [N, T, ...]."""
    try:
        _trainable(net)
        model = SpikingNet.from_integer(net)
    except ValueError as e:
        raise UserError(f"{source}: the float backend runs our training mode, which cannot "
                        f"express this network ({e}); compare the deployed backends only, or "
                        "pass the original .nir graph") from None
    model = model.double().to(device).eval()
    spikes = np.asarray(spikes)
    n, t = spikes.shape[:2]
    outs: list[list[np.ndarray]] = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            x = torch.as_tensor(spikes[start:start + batch_size].reshape(-1, t, net.input_size),
                                dtype=torch.float64, device=device)
            outs.append([o.cpu().numpy() for o in model(x)])
    layers = [np.concatenate([o[i] for o in outs]) for i in range(len(net.layers))]
    readout = None
    if net.readout:
        readout = layers[-1] * _UNIT
        layers[-1] = np.zeros(readout.shape, bool)
    return SpikeRecord(backend=BACKEND, inputs=spikes.reshape(n, t, -1).astype(bool),
                       layers=[s.astype(bool) if s.dtype != bool else s for s in layers],
                       layer_names=[layer.name for layer in net.layers],
                       info={"device": device, "mode": "training mode (SpikingNet.from_integer)"},
                       readout=readout)


def simulate_float_nir(path: str | Path, spikes: np.ndarray, dt: float | None = None,
                       device: str = "cpu", batch_size: int = 512) -> SpikeRecord:
    """A foreign NIR graph in float, discretized as the importer documents (before quantizing).

    Layer names are the deployed layers' names (the first linear node of each block), so the
    record lines up with the deployed backends' records layer by layer."""
    from neurodeploy.graph import lower_nir, read_nir
    from neurodeploy.graph.importer import (LINEAR, READOUTS, _neuron, _synapse, chain,
                                            infer_dt)
    from neurodeploy.graph.nir_io import shape_of
    source = str(path)
    graph = read_nir(path)
    _, quantization = lower_nir(graph, source, dt)       # refuses what cannot deploy
    dt = infer_dt(graph, dt, source)
    nodes = chain(graph, source)
    shape = shape_of(nodes[0][1].output_type["output"], nodes[0][0], source)
    blocks, block = [], []
    for name, node in nodes[1:]:
        if isinstance(node, LINEAR):
            block.append((name, node))
        elif not isinstance(node, nir.Output):
            conv, weight, bias, out_shape = _synapse(block, shape, source)
            neuron = _neuron(name, node, dt, source, int(np.prod(out_shape)))
            blocks.append((block[0][0], conv, weight, bias, neuron, isinstance(node, READOUTS)))
            shape, block = out_shape, []
    spikes = np.asarray(spikes)
    n, t = spikes.shape[:2]
    x = torch.as_tensor(spikes.reshape(n, t, -1), dtype=torch.float64, device=device)
    layers, readout = [], None
    with torch.no_grad():
        for name, conv, weight, bias, neuron, is_readout in blocks:
            w = torch.as_tensor(weight, dtype=torch.float64, device=device)
            b = torch.as_tensor(bias, dtype=torch.float64, device=device)
            gain = torch.as_tensor(neuron.gain, dtype=torch.float64, device=device)
            v_bias = torch.as_tensor(neuron.bias, dtype=torch.float64, device=device)
            threshold = torch.as_tensor(neuron.threshold, dtype=torch.float64, device=device)
            flat = x.reshape(n * t, -1)
            if conv:
                a = torch.nn.functional.conv2d(flat.reshape(-1, *conv.input_shape), w, b,
                                               stride=conv.stride, padding=conv.padding,
                                               dilation=conv.dilation, groups=conv.groups)
            else:
                a = flat @ w.t() + b
            a = a.reshape(n, t, -1) * gain
            u = v = torch.zeros_like(a[:, 0])
            out, volts = [], []
            for step in range(t):
                u = u * (1 - neuron.du) + a[:, step]
                v = v * (1 - neuron.dv) + u + v_bias
                s = torch.zeros_like(v, dtype=torch.bool) if is_readout else v > threshold
                v = torch.where(s, torch.zeros_like(v), v)
                out.append(s)
                volts.append(v)
            layers.append(torch.stack(out, 1).cpu().numpy())
            if is_readout:     # deployed units: float voltage x the layer's weight scale x 64
                readout = torch.stack(volts, 1).cpu().numpy() * quantization[-1]["scale"] * _UNIT
            x = torch.stack(out, 1).to(torch.float64)
    return SpikeRecord(backend=BACKEND, inputs=spikes.reshape(n, t, -1).astype(bool),
                       layers=layers, layer_names=[b[0] for b in blocks],
                       info={"device": device, "mode": f"float NIR semantics, dt={dt:g}"},
                       readout=readout)


def is_foreign_nir(path: str | Path) -> bool:
    """A .nir graph of another tool (float units), as opposed to our own integer export."""
    if Path(path).suffix != ".nir":
        return False
    from neurodeploy.graph import UNITS, read_nir
    units = (read_nir(path).metadata or {}).get("units")
    return (units.decode(errors="replace") if isinstance(units, bytes) else units) != UNITS


def simulate_float_file(path: str | Path, spikes: np.ndarray, device: str = "cpu",
                        batch_size: int = 512, input_shape: tuple[int, ...] | None = None,
                        dt: float | None = None) -> SpikeRecord:
    """The float backend for a file: a foreign .nir in its own float semantics, anything else
    (netx, our own .nir) in our training mode."""
    if is_foreign_nir(path):
        return simulate_float_nir(path, spikes, dt, device, batch_size)
    if Path(path).suffix == ".nir":
        from neurodeploy.graph import lower_nir, read_nir
        net, _ = lower_nir(read_nir(path), str(path), dt)
    else:
        from neurodeploy.netx import read_netx
        net, _ = read_netx(path, input_shape)
    return simulate_float(net, spikes, device, batch_size, source=str(path))
