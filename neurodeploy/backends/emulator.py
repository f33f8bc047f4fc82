"""The emulator: Lava's fixed-point rules on whole batches, stepping chip time.

An independent second implementation of what Lava computes (it shares only the netx reader
with the torch exact backend): it steps chip time as Lava does, with each synapse's one-step
output buffer (longer for synaptic delays, as Lava's DelayDense; recurrent synapses too),
netx's resets staggered by one step per layer, Lava's 24-bit conv wrap and the LIF model's integer arithmetic, and then reads each layer's window back out. Samples are
independent between resets, so a whole batch runs side by side. Tensors are torch's, on the
CPU or on CUDA when asked. Integers are carried in floating point where that is provably exact
and faster: synaptic sums in float32 when no sum can reach 2**24 (else float64), neuron state
in float64 (|u * decay| < 2**36, and dividing by 4096 is exact in binary floating point, so
trunc(u * (4096 - d) / 4096) is Lava's rounding toward zero, bit for bit).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.backends.record import SpikeRecord, record_inputs
from neurodeploy.errors import UserError
from neurodeploy.netx import read_netx, read_sdnn
from neurodeploy.neurons import IntLayer, IntNetwork
from neurodeploy.neurons.sigma_delta import SDLayer, SDNetwork
from neurodeploy.progress import Progress

U_WRAP, V_LIMIT, CONV_WRAP = 2 ** 23, 2 ** 23 - 1, 2 ** 23


def _exact_dtype(layer: IntLayer, peak: float = 1) -> torch.dtype:
    """float32 if no synaptic sum of events of at most `peak` (1: binary spikes) can reach
    2**24 (exact), else float64."""
    bound = max(np.abs(w).reshape(len(w), -1).sum(1).max() for w in layer.synapse_matrices()) \
        * peak
    return torch.float32 if bound < 2 ** 24 else torch.float64


def _synapse(x: torch.Tensor, layer: IntLayer, weight: torch.Tensor) -> torch.Tensor:
    """Integer synaptic input (as float64) of spikes x [B, in] for one chip step: [B, n]."""
    x = x.to(weight.dtype)
    if layer.input_shape:     # input layer: each neuron's gain on its own input, plus bias
        return x.to(torch.float64) * weight.to(torch.float64) + (
            0 if layer.bias is None else torch.as_tensor(layer.bias, dtype=torch.float64,
                                                         device=x.device))
    if layer.conv is None:
        return (x @ weight.T).to(torch.float64)
    c = layer.conv
    out = F.conv2d(x.reshape(len(x), *c.input_shape), weight, stride=c.stride,
                   padding=c.padding, dilation=c.dilation, groups=c.groups)
    out = out.reshape(len(x), -1).to(torch.float64)
    return torch.remainder(out + CONV_WRAP, 2 * CONV_WRAP) - CONV_WRAP  # Lava wraps to 24 bits


def _batch(net: IntNetwork, x: torch.Tensor) -> list[torch.Tensor]:
    """x: [B, T, in] spikes (or graded input events) -> per-layer window spikes [B, T, n],
    stepping chip time."""
    b, steps = x.shape[:2]
    peak = max(1.0, float(x.to(torch.float64).abs().max())) if x.numel() else 1.0
    dev = x.device
    new = lambda n, dtype=torch.float64: torch.zeros((b, n), dtype=dtype, device=dev)  # noqa
    # a resonate-and-fire layer: its real and imaginary synapses side by side (2n outputs)
    width = [layer.size * (2 if layer.resonate else 1) for layer in net.layers]
    u = [new(layer.size) for layer in net.layers]
    v = [new(layer.size) for layer in net.layers]
    # synapse outputs, one column per remaining delay step (Lava's DelayDense a_buff)
    depth = [1 + (0 if layer.delay is None else int(layer.delay.max())) for layer in net.layers]
    buffers = [torch.zeros((b, n, d), dtype=torch.float64, device=dev)
               for n, d in zip(width, depth)]
    spikes = [new(layer.size, torch.bool) for layer in net.layers]
    # (delay, weights with that delay) per layer; one group of all weights without delays
    groups = [[(d, torch.as_tensor(np.where(layer.delay == d, layer.weight, 0)
                                   if layer.delay is not None else
                                   np.vstack(layer.synapse_matrices()),
                                   dtype=_exact_dtype(layer, peak if i == 0 else 1),
                                   device=dev))
               for d in (np.unique(layer.delay) if layer.delay is not None else [0])]
              for i, layer in enumerate(net.layers)]
    rec = [None if layer.recurrent is None else
           torch.as_tensor(layer.recurrent.T, dtype=torch.float64, device=dev)
           for layer in net.layers]
    rec_buffers = [new(layer.size) for layer in net.layers]
    bias = [torch.as_tensor(layer.neuron_bias(dev), dtype=torch.float64, device=dev) * 64
            for layer in net.layers]
    windows = [torch.zeros((b, steps, layer.size), dtype=torch.bool, device=dev)
               for layer in net.layers]
    last = len(net.layers) - 1
    volts = torch.zeros((b, steps, net.layers[-1].size), dtype=torch.float64, device=dev)
    for tau in range(1, steps + len(net.layers) + 1):                   # chip time starts at 1
        for i, layer in enumerate(net.layers):
            # the synapse sends what it buffered for this step and buffers what the layer below
            # emits now, d steps further on (neuron -> synapse has no delay; synapse -> neuron
            # has one step plus the synapse's delay d)
            if tau == 1 + i:        # the Lava backend clears delay buffers before each window
                buffers[i][:, :, 1:] = 0
            if tau == 2 + i:        # ... and recurrent buffers
                rec_buffers[i].zero_()
            a_in = buffers[i][:, :, 0]
            if rec[i] is not None:
                a_in = a_in + rec_buffers[i]
            buffers[i] = torch.roll(buffers[i], -1, dims=2)
            buffers[i][:, :, -1] = 0
            presyn = (x[:, tau - 1] if tau - 1 < steps else None) if i == 0 \
                else spikes[i - 1]
            if presyn is not None:
                for d, weight in groups[i]:
                    buffers[i][:, :, d] += _synapse(presyn, layer, weight)
            if tau == 2 + i:                                            # netx's staggered reset
                u[i].zero_()
                v[i].zero_()
            p = layer.params
            if layer.resonate:           # u, v: its real and imaginary state
                spikes[i] = _rf_step(layer, u[i], v[i], a_in[:, :layer.size],
                                     a_in[:, layer.size:])
            else:
                decayed = torch.trunc(u[i] * (p.kept("i", u[i]) / 4096)) + a_in * 64
                wrapped = torch.where(decayed > U_WRAP, decayed - 2 * U_WRAP, decayed)
                u[i] = torch.where(wrapped <= -U_WRAP, decayed + 2 * U_WRAP, wrapped)
                v[i] = torch.trunc(v[i] * (p.kept("v", v[i]) / 4096)).add_(u[i]).add_(bias[i])
                v[i].clamp_(-V_LIMIT, V_LIMIT)
                spikes[i] = v[i] > (p.threshold * 64)
                v[i].masked_fill_(spikes[i], 0)
            if rec[i] is not None:                  # arrives at this layer's next step
                rec_buffers[i] = (spikes[i].to(rec[i].dtype) @ rec[i]).to(torch.float64)
            j = tau - 2 - i                                             # this layer's window step
            if 0 <= j < steps:
                windows[i][:, j] = spikes[i]
                if i == last:
                    volts[:, j] = v[i]
    return windows, volts.to(torch.int64)


def _rf_step(layer: IntLayer, re: torch.Tensor, im: torch.Tensor, a_re: torch.Tensor,
             a_im: torch.Tensor) -> torch.Tensor:
    """One chip step of Lava's fixed-point RF / RF_IZ model (lava/proc/rf/models.py,
    lava/proc/rf_iz/models.py) on float64 state, updated in place: products of 24-bit state and
    12-bit decays are exact in float64 and trunc(x / 4096) is its sign * (|x| >> 12)."""
    p = layer.params
    sin, cos = (torch.as_tensor(d, dtype=torch.float64, device=re.device) / 4096
                for d in p.decays())
    new_re = (torch.trunc(cos * re) - torch.trunc(sin * im) + a_re * 64).clamp(-V_LIMIT, V_LIMIT)
    new_im = (torch.trunc(sin * re) + torch.trunc(cos * im) + a_im * 64).clamp(-V_LIMIT, V_LIMIT)
    vth = p.threshold * 64
    if p.izhikevich:
        fired = new_im >= vth
        re.copy_(new_re.masked_fill(fired, 0))
        im.copy_(new_im.masked_fill(fired, vth - 1))
    else:
        fired = (new_re >= vth) & (new_im >= 0) & (im < 0)
        re.copy_(new_re)
        im.copy_(new_im)
    return fired


def simulate_emulator(network: str | Path | IntNetwork, spikes: np.ndarray,
                      batch_size: int = 1000, device: str = "cpu", progress: bool | None = False,
                      input_shape: tuple[int, ...] | None = None) -> SpikeRecord:
    """Run input spikes [N, T, n_in] (binary, or graded input events: non-negative integers,
    as Lava's Dense takes them with netx's input_message_bits) through a netx network (or an
    IntNetwork), batched."""
    net = network if isinstance(network, IntNetwork) else read_netx(network, input_shape)[0]
    n, steps = spikes.shape[:2]
    spikes = spikes.reshape(n, steps, -1)
    if spikes.shape[2] != net.input_size:
        raise UserError(f"inputs have {spikes.shape[2]} channels, the network expects "
                        f"{net.input_size}")
    graded = not np.isin(spikes, (0, 1)).all()
    if graded and (spikes.dtype.kind not in "iu" or spikes.min() < 0):
        raise UserError("inputs must be binary spikes (0 or 1) or graded input events "
                        "(non-negative integers); encode them first")
    chunks, volts = [], []
    with torch.no_grad(), Progress("emulator", n, "sample", progress) as shown:
        for i in range(0, n, batch_size):
            x = torch.as_tensor(spikes[i:i + batch_size], device=device)
            windows, v = _batch(net, x)
            chunks.append([w.cpu().numpy() for w in windows])
            volts.append(v.cpu().numpy())
            shown.update(min(n, i + batch_size))
    layers = [np.concatenate([c[i] for c in chunks]) for i in range(len(net.layers))]
    return SpikeRecord(backend="emulator", detail=device, inputs=record_inputs(spikes),
                       layers=layers, layer_names=[layer.name for layer in net.layers],
                       info={"batch_size": batch_size, "device": device},
                       readout=np.concatenate(volts) if net.readout else None)


# ---- sigma-delta networks -----------------------------------------------------------------

def _sd_neuron(layer: SDLayer, a_in: np.ndarray, state: dict, bias) -> np.ndarray:
    """One chip step of a sigma-delta layer in Lava's own int32 arithmetic (NumPy wraps as
    Lava's fixed-point models do): returns the message it sends."""
    if layer.kind == "sigma":
        state["sigma"] = state["sigma"] + a_in
        return state["sigma"]
    if layer.kind == "delta":
        act = np.left_shift(a_in, layer.scale_bits)
    else:
        state["sigma"] = state["sigma"] + a_in
        act = np.maximum(state["sigma"] + bias, 0)
    delta = act - state["act"] + state["residue"]
    sent = np.where(np.abs(delta) >= np.int32(layer.vth << layer.scale_bits), delta, 0)
    state["residue"] = (delta - sent).astype(np.int32)
    state["act"] = act
    return np.right_shift(sent, layer.state_exp).astype(np.int32)


def simulate_emulator_sdnn(network: str | Path | SDNetwork, inputs: np.ndarray) -> SpikeRecord:
    """Stream integer inputs [N, T, ...] through a sigma-delta netx file as Lava does: every
    layer steps from chip step 1, each synapse delays by one step (so deeper layers run, and
    biased neurons send, before the input reaches them), no state is reset. The second,
    chip-time opinion beside the exact mode's window-time `run_chip`. A delayed synapse
    (netx `delay`, Lava's DelayDense) holds each message in a buffer column per step of delay,
    as DelayDense's a_buff does."""
    net = network if isinstance(network, SDNetwork) else read_sdnn(network)
    inputs = np.asarray(inputs)
    n, t = inputs.shape[:2]
    rows = inputs.reshape(n * t, -1).astype(np.int32)
    depth = len(net.layers) - 1
    steps = n * t + depth
    zeros = [np.zeros(layer.size, dtype=np.int32) for layer in net.layers]
    state = [{k: z.copy() for k in ("sigma", "act", "residue")} for z in zeros]
    bias = [np.asarray(layer.neuron_bias("cpu"), dtype=np.int64).astype(np.int32)
            for layer in net.layers]
    sent = list(zeros)
    chip = [np.zeros((steps, layer.size), dtype=np.int64) for layer in net.layers]
    # per delayed layer: (delay, synapse of that delay) and arrivals still due, by steps ahead
    groups = [[(int(d), dataclasses.replace(layer, delay=None, weight=np.where(
                  layer.delay == d, layer.weight, 0)))
               for d in np.unique(layer.delay)] if layer.delay is not None else None
              for layer in net.layers]
    due = [np.zeros((1 + int(layer.delay.max()), layer.size), dtype=np.int64)
           if layer.delay is not None else None for layer in net.layers]
    with np.errstate(over="ignore"):
        for c in range(steps):                       # chip step c + 1
            now = []
            for i, layer in enumerate(net.layers):
                if i == 0:
                    a_in = rows[c] if c < n * t else zeros[0]
                elif groups[i] is None:              # what the layer below sent last step
                    a_in = layer.synapse(torch.as_tensor(sent[i - 1][None].astype(np.int64))
                                         )[0].numpy().astype(np.int32)
                else:                                # ... d steps later through delay d
                    msg = torch.as_tensor(sent[i - 1][None].astype(np.int64))
                    for d, part in groups[i]:
                        due[i][d] += part.synapse(msg)[0].numpy()
                    a_in = due[i][0].astype(np.int32)
                    due[i] = np.roll(due[i], -1, axis=0)
                    due[i][-1] = 0
                now.append(_sd_neuron(layer, a_in, state[i], bias[i]))
                chip[i][c] = now[-1]
            sent = now
    # input step j reaches layer i at chip step j + 1 + i (row j + i)
    layers = [m[i:i + n * t].reshape(n, t, -1) for i, m in enumerate(chip)]
    return SpikeRecord(backend="emulator", detail="chip time, SDNN", inputs=rows.reshape(n, t, -1),
                       layers=layers, layer_names=[layer.name for layer in net.layers],
                       info={"chip_steps": steps, "stream": True})
