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
  voltage, per-neuron thresholds, reset to zero, recurrent loops one step late, a bias as a
  current every step), with the float weights before quantization.
A readout layer's voltage is reported in the deployed backends' units (Lava's integer voltage,
<< 6), so voltages and predictions compare directly; float spikes are booleans as everywhere.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from neurodeploy.backends.record import SpikeRecord, record_inputs
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.errors import UserError
from neurodeploy.graph import UNITS, lower_nir, read_nir
from neurodeploy.graph.always_on import RELAY
from neurodeploy.graph.float_model import FloatGraph, Reset
from neurodeploy.netx import read_netx
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
    return SpikeRecord(backend=BACKEND, inputs=record_inputs(spikes.reshape(n, t, -1)),
                       layers=[s.astype(bool) if s.dtype != bool else s for s in layers],
                       layer_names=[layer.name for layer in net.layers],
                       info={"device": device, "mode": "training mode (SpikingNet.from_integer)"},
                       readout=readout)


def simulate_float_nir(path: str | Path, spikes: np.ndarray, dt: float | None = None,
                       device: str = "cpu", batch_size: int = 512,
                       reset: str = "zero", reset_delay: bool = False) -> SpikeRecord:
    """A foreign NIR graph in float, discretized as the importer documents (before quantizing;
    see graph/float_model.py), as a record that lines up with the deployed backends' records
    neuron by neuron: layer names are the deployed layers' names, and the neurons the
    deployment adds to carry a bias (the always-on relay layer, always-on neurons at the end
    of the layer before) are added here too, spiking every step. `reset`, `reset_delay`: how
    the source framework resets (NIR cannot say; default: as Loihi does)."""
    return float_record(FloatGraph.from_file(path, dt, Reset(reset, reset_delay)), spikes,
                        device, batch_size)


def float_record(model: FloatGraph, spikes: np.ndarray, device: str = "cpu",
                 batch_size: int = 512) -> SpikeRecord:
    """simulate_float_nir's record of a float model already built (tune's teacher)."""
    model = model.to(device)
    spikes = np.asarray(spikes)
    n, t = spikes.shape[:2]
    outs, last = [], len(model.blocks) - 1
    with torch.no_grad():       # spikes kept as bools batch by batch: float64 for every layer
        for start in range(0, n, batch_size):      # of 60,000 inputs took 19 GB
            x = torch.as_tensor(spikes[start:start + batch_size].reshape(-1, t, model.net.input_size))
            outs.append([o.cpu().numpy() if model.readout and i == last
                         else o.cpu().numpy().astype(bool)
                         for i, o in enumerate(model(x.to(device)))])
    layers = [np.concatenate([o[i] for o in outs]) for i in range(len(model.blocks))]
    readout = None
    if model.readout:        # deployed units: float voltage x the layer's weight scale x 64
        readout = layers[-1] * model.readout_scale * _UNIT
        layers[-1] = np.zeros(readout.shape, bool)
    layers = [layer.astype(bool, copy=False) for layer in layers]
    names = [b["name"] for b in model.blocks]
    net = model.net
    on = lambda k: np.ones((n, t, k), bool)  # noqa: E731
    if net.layers[0].name == RELAY:          # the relay repeats the inputs, plus its always-on
        layers.insert(0, spikes.reshape(n, t, -1).astype(bool))
        names.insert(0, RELAY)
    for i, layer in enumerate(net.layers):   # always-on neurons (a neuron or a channel) last
        if layers[i].shape[2] < layer.size:
            layers[i] = np.concatenate([layers[i], on(layer.size - layers[i].shape[2])], 2)
    return SpikeRecord(backend=BACKEND, inputs=spikes.reshape(n, t, -1).astype(bool),
                       layers=layers, layer_names=names,
                       info={"device": device, "reset": model.reset.mechanism,
                             "reset_delay": model.reset.delay,
                             "mode": f"float NIR semantics, dt={model.dt:g}, "
                                     f"{model.reset.describe()}"},
                       readout=readout)


def reset_sensitivity(path: str | Path, spikes: np.ndarray, zero: SpikeRecord,
                      dt: float | None = None, device: str = "cpu") -> dict:
    """The graph's own float model with reset by subtraction against `zero` (the same model
    with reset to zero, the float backend's record): how many predictions the reset
    assumption changes, since the .nir file cannot say which one it was trained with."""
    sub = simulate_float_nir(path, spikes, dt, device, reset="subtract")
    return {"assumed": "zero", "compared": "subtract",
            "prediction_agreement_zero_vs_subtract": float(
                (sub.predictions == zero.predictions).mean()),
            "samples": int(zero.samples)}


def layer_flips(net: IntNetwork, flt: SpikeRecord) -> list[dict]:
    """Per deployed layer, the decisions that 8-bit rounding flips: the layer alone in the
    exact mode, fed the float model's own spikes into it (so one layer's flips do not
    propagate into the next one's count), against the float model's spikes of that layer.
    A readout layer has no decisions to flip and is left out."""
    rows, prev = [], flt.inputs
    for i, layer in enumerate(net.layers):
        if net.readout and i == len(net.layers) - 1:
            break
        shape = tuple(layer.conv.input_shape) if layer.conv else (layer.in_size,)
        alone = simulate_torch(IntNetwork(input_shape=shape, layers=(layer,)), prev)
        rows.append({"layer": layer.name, "neuron_steps": int(flt.layers[i].size),
                     "float_spikes": int(flt.layers[i].sum()),
                     "flipped": int((alone.layers[0] != flt.layers[i]).sum())})
        prev = flt.layers[i]
    return rows


def search_headroom(path: str | Path, spikes: np.ndarray, dt: float | None = None,
                    candidates=(1.0, 1.5, 2.0, 3.0, 4.0),
                    flt: SpikeRecord | None = None) -> tuple[dict[str, float], list]:
    """Per layer, the scale headroom (quantize.quantize) whose 8-bit rounding flips the
    fewest of the float model's decisions on `spikes` (calibration inputs: measure the result
    on other ones). Layers are judged alone (`layer_flips`), so each layer's choice is
    independent of the others'; ties keep the smaller headroom (fewer clipped weights).
    `flt`: the float model's record on `spikes` (default: reset to zero, as deployed)."""
    graph, best, table = read_nir(path), {}, []
    flt = simulate_float_nir(path, spikes, dt) if flt is None else flt
    for k in candidates:
        names = [layer.name for layer in lower_nir(graph, str(path), dt)[0].layers]
        net, _ = lower_nir(graph, str(path), dt, {name: k for name in names})
        # the always-on relay layer is exact already: nothing to choose
        for row in [r for r in layer_flips(net, flt) if r["layer"] != RELAY]:
            table.append({**row, "headroom": k})
            if row["flipped"] < best.get(row["layer"], (None, np.inf))[1]:
                best[row["layer"]] = (k, row["flipped"])
    return {name: k for name, (k, _) in best.items()}, table


def is_foreign_nir(path: str | Path) -> bool:
    """A .nir graph of another tool (float units), as opposed to our own integer export."""
    if Path(path).suffix != ".nir":
        return False
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
        net, _ = lower_nir(read_nir(path), str(path), dt)
    else:
        net, _ = read_netx(path, input_shape)
    return simulate_float(net, spikes, device, batch_size, source=str(path))
