"""The torch backend: the exact integer mode of the student's own neuron code, batched."""
from __future__ import annotations

import numpy as np
import torch

from neurodeploy.backends.record import SpikeRecord, record_inputs
from neurodeploy.neurons import IntNetwork, run_exact
from neurodeploy.neurons.network import EXACT_BATCH
from neurodeploy.neurons.sigma_delta import SDNetwork, run_stream


def simulate_torch(net: IntNetwork, spikes: np.ndarray, device: str = "cpu",
                   batch_size: int = EXACT_BATCH) -> SpikeRecord:
    """Run input spikes [N, T, n_in] through `net` in exact mode on `device` (cpu or cuda)."""
    chunks, volts = [], []
    with torch.no_grad():
        for start in range(0, len(spikes), batch_size):
            x = torch.as_tensor(spikes[start:start + batch_size], device=device)
            out = run_exact(net, x, voltage=net.readout)
            if net.readout:
                out, v = out
                volts.append(v.cpu().numpy())
            chunks.append([s.cpu().numpy() for s in out])
    layers = [np.concatenate([c[i] for c in chunks]) for i in range(len(net.layers))]
    return SpikeRecord(backend="torch", detail=f"exact mode, {device}",
                       inputs=record_inputs(spikes), layers=layers,
                       layer_names=[layer.name for layer in net.layers],
                       info={"device": device},
                       readout=np.concatenate(volts) if net.readout else None)


def simulate_torch_sdnn(net: SDNetwork, frames: np.ndarray) -> SpikeRecord:
    """Integer frames [N, T, ...] streamed through a sigma-delta network in exact mode, back to
    back through one state as Lava runs them (it cannot reset sigma-delta neurons)."""
    frames = np.asarray(frames)
    return SpikeRecord(backend="torch", detail="exact mode, cpu",
                       inputs=frames.reshape(*frames.shape[:2], -1),
                       layers=run_stream(net, frames),
                       layer_names=[layer.name for layer in net.layers], info={"stream": True})
