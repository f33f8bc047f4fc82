"""The emulator: Lava's fixed-point rules on whole batches, in NumPy, in chip time.

An independent second implementation (it shares only the netx reader with the torch backend):
it steps chip time as Lava does, with each synapse's one-step output buffer, netx's resets
staggered by one step per layer, Lava's 24-bit conv wrap and the LIF model's arithmetic, and
then reads each layer's window back out. Samples are independent between resets, so a batch
runs side by side instead of one after another. It runs any netx file `read_netx` accepts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tqdm import tqdm

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.errors import UserError
from neurodeploy.netx import read_netx
from neurodeploy.neurons import IntLayer, IntNetwork

U_WRAP, V_LIMIT, CONV_WRAP = 2 ** 23, 2 ** 23 - 1, 2 ** 23


def _conv(x: np.ndarray, layer: IntLayer) -> np.ndarray:
    """Cross-correlation of [B, C, H, W] integer spikes with the PyTorch-layout kernel."""
    c = layer.conv
    w = layer.weight
    (ph, pw), (sh, sw), (dh, dw) = c.padding, c.stride, c.dilation
    kh, kw = w.shape[2:]
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw, ::dh, ::dw]                   # [B, C, Ho, Wo, kh, kw]
    per_group = w.shape[1]
    outs = []
    for g in range(c.groups):
        wg = w[g * (w.shape[0] // c.groups):(g + 1) * (w.shape[0] // c.groups)]
        xg = windows[:, g * per_group:(g + 1) * per_group]
        outs.append(np.einsum("bchwij,ocij->bohw", xg, wg, optimize=True))
    return np.concatenate(outs, axis=1)


def _synapse(x: np.ndarray, layer: IntLayer) -> np.ndarray:
    if layer.conv is None:
        return x.reshape(len(x), -1) @ layer.weight.T
    out = _conv(x.reshape(len(x), *layer.conv.input_shape), layer).reshape(len(x), -1)
    return (out + CONV_WRAP) % (2 * CONV_WRAP) - CONV_WRAP                # signed 24-bit wrap


def _rtz(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * (np.abs(x) >> 12)


def _batch(net: IntNetwork, x: np.ndarray) -> list[np.ndarray]:
    """x: [B, T, in] spikes -> per-layer window spikes [B, T, n], stepping chip time."""
    b, steps = x.shape[:2]
    depth = len(net.layers)
    u = [np.zeros((b, layer.size), np.int64) for layer in net.layers]
    v = [np.zeros((b, layer.size), np.int64) for layer in net.layers]
    buffers = [np.zeros((b, layer.size), np.int64) for layer in net.layers]   # synapse outputs
    spikes = [np.zeros((b, layer.size), bool) for layer in net.layers]
    bias = [(np.repeat(layer.bias, layer.size // len(layer.bias)) if layer.bias is not None
             else np.zeros(layer.size, np.int64)).astype(np.int64) << 6 for layer in net.layers]
    windows = [np.zeros((b, steps, layer.size), bool) for layer in net.layers]
    zeros_in = np.zeros((b, x.shape[2]), np.int64)
    for tau in range(1, steps + depth + 1):                            # chip time starts at 1
        source = x[:, tau - 1].astype(np.int64) if tau - 1 < steps else zeros_in
        for i, layer in enumerate(net.layers):
            # the synapse sends what it buffered last step, and buffers what the layer below
            # emits now (neuron -> synapse has no delay; synapse -> neuron has one step)
            a_in = buffers[i]
            buffers[i] = _synapse(source if i == 0 else spikes[i - 1], layer)
            if tau == 2 + i:                                           # netx's staggered reset
                u[i][:] = 0
                v[i][:] = 0
            p = layer.params
            decayed = _rtz(u[i] * (4096 - p.i_decay)) + (a_in << 6)
            wrapped = np.where(decayed > U_WRAP, decayed - 2 * U_WRAP, decayed)
            u[i] = np.where(wrapped <= -U_WRAP, decayed + 2 * U_WRAP, wrapped)
            v[i] = np.clip(_rtz(v[i] * (4096 - p.v_decay)) + u[i] + bias[i], -V_LIMIT, V_LIMIT)
            fired = v[i] > (p.threshold << 6)
            v[i][fired] = 0
            spikes[i] = fired
            j = tau - 2 - i                                            # this layer's window step
            if 0 <= j < steps:
                windows[i][:, j] = fired
    return windows


def simulate_emulator(network: str | Path | IntNetwork, spikes: np.ndarray,
                      batch_size: int = 1000, progress: bool = False) -> SpikeRecord:
    """Run input spikes [N, T, n_in] through a netx network (or an IntNetwork), batched."""
    net = network if isinstance(network, IntNetwork) else read_netx(network)[0]
    n, steps = spikes.shape[:2]
    spikes = spikes.reshape(n, steps, -1)
    if spikes.shape[2] != net.input_size:
        raise UserError(f"inputs have {spikes.shape[2]} channels, the network expects "
                        f"{net.input_size}")
    if not np.isin(spikes, (0, 1)).all():
        raise UserError("inputs must be binary spikes (0 or 1); encode them first")
    chunks = [_batch(net, spikes[i:i + batch_size])
              for i in tqdm(range(0, n, batch_size), desc="emulator", disable=not progress,
                            leave=False)]
    layers = [np.concatenate([c[i] for c in chunks]) for i in range(len(net.layers))]
    return SpikeRecord(backend="emulator (numpy)", inputs=spikes.astype(bool), layers=layers,
                       layer_names=[layer.name for layer in net.layers],
                       info={"batch_size": batch_size})
