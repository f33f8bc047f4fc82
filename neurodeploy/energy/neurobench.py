"""NeuroBench's metrics (neurobench 2.3.0) under their own names, computed from a SpikeRecord.

Definitions, as neurobench/metrics/ computes them on a torch model run step by step:
- ClassificationAccuracy: mean of predictions == labels.
- SynapticOperations, per sample (totals over layers and timesteps / samples):
  Effective_ACs: for a layer whose input is binary (spikes), the number of (non-zero input,
  non-zero weight) pairs, i.e. presynaptic spikes x non-zero fan-out; Effective_MACs: the same
  for a layer whose input is not binary (here only a first layer fed graded input events,
  netx's input_message_bits; every other layer of ours receives spikes); Dense: the same count with every weight and every input set to one (for a conv layer,
  the kernel taps that fall inside the unpadded input), whatever the activity.
- ActivationSparsity: zeros / all outputs of the spiking neuron layers, over layers, timesteps
  and samples (inputs are not activations).
- ConnectionSparsity: zero weights / all weights of the connection (Linear, Conv) layers;
  NeuroBench rounds it to 4 decimals, we do not.
- Footprint: bytes of the model's parameters and buffers (for snnTorch neurons the buffers
  include their hidden state, sized by the last batch run: a NeuroBench quirk we omit).

Where our deployed network differs from a torch model, and what we do:
- A readout layer (IntNetwork.readout) does not spike: its record holds no activations, so it
  is left out of ActivationSparsity (NeuroBench would hook whatever module the user marks).
- Footprint counts what the deployed network stores: weights at 1 byte (Loihi's 8-bit weight
  mantissa; NeuroBench counts a float32 torch model's 4 bytes per weight), biases at 2 bytes
  (Loihi's 13-bit bias mantissa), and per layer 3 neuron constants (iDecay, vDecay, vThMant)
  at 4 bytes, where a torch model would hold its neuron constants as buffers of its own size.
  `footprint(net, weight_bytes=4, constant_bytes=0)` is the float32 weights-only figure.
"""
from __future__ import annotations

import numpy as np
import torch

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.energy.counting import count_events
from neurodeploy.neurons import IntLayer, IntNetwork

VERSION = "2.3.0"


def dense_ops(layer: IntLayer) -> int:
    """NeuroBench's Dense count for one layer and step: all weights and all inputs set to one."""
    ones = torch.ones(1, layer.in_size, dtype=torch.float64)
    recurrent = 0 if layer.recurrent is None else layer.recurrent.size   # n x n, every step
    return int(layer.synapse(ones, weight=np.ones_like(layer.weight)).sum()) \
        * len(layer.synapse_matrices()) + recurrent


def _recurrent(layer: IntLayer) -> np.ndarray:
    """The weights besides `weight`: recurrent ones, a resonate-and-fire layer's imaginary ones."""
    return np.concatenate([np.zeros(0)] + [np.ravel(w) for w in layer.synapse_matrices()[1:]]
                          + ([] if layer.recurrent is None else [layer.recurrent.ravel()]))


def footprint(net: IntNetwork, weight_bytes: int = 1, bias_bytes: int = 2,
              constant_bytes: int = 4) -> int:
    """Bytes the deployed network stores (see the module docstring for the widths)."""
    return int(sum((layer.weight.size + _recurrent(layer).size) * weight_bytes
                   + (layer.bias.size * bias_bytes if layer.bias is not None else 0)
                   + 3 * constant_bytes for layer in net.layers))


def neurobench_metrics(record: SpikeRecord, net: IntNetwork, labels: np.ndarray,
                       synaptic_ops: np.ndarray | None = None) -> dict:
    """report.json's `neurobench` section. `synaptic_ops`: count_events' means per inference
    [layers, T], when the caller has them already (they are the Effective_ACs)."""
    if synaptic_ops is None:
        synaptic_ops = count_events(record, net)["synaptic_ops"]
    spiking = record.layers[:-1] if net.readout else record.layers
    outputs = sum(s.size for s in spiking)
    weights = sum(layer.weight.size + _recurrent(layer).size for layer in net.layers)
    graded = float(np.sum(synaptic_ops[0])) if record.inputs.dtype != bool else 0.0
    return {
        "version": VERSION,
        "ClassificationAccuracy": record.accuracy(labels),
        "SynapticOperations": {
            "Effective_MACs": graded,        # a first layer fed graded input events
            "Effective_ACs": float(np.sum(synaptic_ops)) - graded,
            "Dense": float(sum(dense_ops(layer) for layer in net.layers) * record.timesteps)},
        "ActivationSparsity": (float(1 - sum(int(s.sum()) for s in spiking) / outputs)
                               if outputs else 0.0),
        "ConnectionSparsity": float(sum(int((layer.weight == 0).sum())
                                        + int((_recurrent(layer) == 0).sum())
                                        for layer in net.layers) / weights),
        "Footprint": footprint(net),
        "notes": "NeuroBench 2.3.0 definitions on the deployed record (energy/neurobench.py); "
                 "Footprint in bytes at deployed widths (8-bit weights), not float32",
    }
