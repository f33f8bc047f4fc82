"""Sigma-delta networks (lava-dl SDNN, e.g. PilotNet) in their integer form, run exactly.

A netx SDNN file holds a Delta input layer, then dense/conv layers of SigmaDelta neurons
(ReLU), optionally ending in a Sigma layer (a plain accumulator). Neurons exchange graded
messages: a neuron sends only when its activation changed by at least the threshold, and
then the change itself. `run_exact` follows Lava's fixed-point models bit for bit (lava-nc
0.10.0 `lava/proc/sdn/models.py`: `PyDeltaModelFixed`, `PySigmaDeltaModelFixed`,
`PySigmaModelFixed`; netx builds them with spike_exp = state_exp = 6):

    delta input:  a = x << (spike_exp + state_exp)             (x: the integer input)
    sigma-delta:  sigma += a_in;  a = relu(sigma + (bias << (spike_exp + state_exp)))
    both:         d = a - act + residue;  s = d where |d| >= vth << 12, else 0
                  residue = d - s;  act = a;  message = s >> state_exp   (floor)
    sigma:        sigma += a_in;  message = sigma
    synapse:      a_in = W @ message (Dense, exact); Conv output wraps to signed 24 bits
    delays:       a dense synapse with netx's `delay` (Lava's DelayDense) adds each message
                  of a synapse with delay d to its neuron d steps later (0..62 steps)

Lava keeps these states in int32 NumPy arrays, so every state and message wraps at 32 bits
(`_wrap32`) as NumPy does. Time follows the project's window convention (see
neurons/network.py): layer l at step t sees layer l-1's messages of step t. Unlike CUBA
layers, Lava cannot reset sigma-delta neurons (netx ignores `reset_interval` for them), so a
deeper layer also runs, from zero state, during the steps before the input reaches it, and
sends what its bias alone makes it send (`run_chip`): a batch row here is one stream from the
start of a Lava run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from neurodeploy.neurons.cuba import THRESHOLD_MAX, WEIGHT_MAX, WEIGHT_MIN
from neurodeploy.neurons.network import CONV_WRAP, MAX_DELAY, Conv

KINDS = ("delta", "sigma_delta", "sigma")
ACTIVATIONS = ("relu",)        # the only one netx gives Lava's SigmaDelta (its default, RELU)
MESSAGE_BITS = (1, 24)         # graded payloads on Loihi 2 are at most 24 bits
EXP_RANGE = (0, 7)             # Lava stores spike_exp / state_exp in 3 bits
_I32 = 2 ** 31


def _wrap32(x: torch.Tensor) -> torch.Tensor:
    """int64 -> the value NumPy's int32 arithmetic would hold (two's-complement wrap)."""
    return (x + _I32) % (2 * _I32) - _I32


def _abs32(x: torch.Tensor) -> torch.Tensor:
    """np.abs on int32: -2**31 stays negative."""
    return torch.where(x == -_I32, x, x.abs())


@dataclass(frozen=True)
class SDLayer:
    """One sigma-delta layer. `delta`: the input layer (no synapse). `sigma_delta`: ReLU
    neurons behind a dense (weight (out, in)) or conv (`conv` given, weight (out, in/groups,
    kH, kW)) synapse, with an optional bias per neuron (dense) or channel (conv). `sigma`: an
    accumulator behind a synapse, no bias. `vth` is netx's vThMant (Lava scales it by 2**12)."""

    kind: str
    shape: tuple[int, ...]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    conv: Conv | None = None
    vth: int = 0
    spike_exp: int = 6
    state_exp: int = 6
    message_bits: int = 16
    activation: str | None = "relu"
    name: str = ""
    delay: np.ndarray | None = None     # (out, in) steps, dense only (netx's DelayDense)

    def __post_init__(self):
        def bad(msg):
            raise ValueError(f"layer {self.name!r}: {msg}")
        if self.kind not in KINDS:
            bad(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not MESSAGE_BITS[0] <= self.message_bits <= MESSAGE_BITS[1]:
            bad(f"message_bits={self.message_bits} outside [{MESSAGE_BITS[0]}, {MESSAGE_BITS[1]}]")
        for key in ("spike_exp", "state_exp"):
            if not EXP_RANGE[0] <= getattr(self, key) <= EXP_RANGE[1]:
                bad(f"{key}={getattr(self, key)} outside {list(EXP_RANGE)}")
        if self.kind != "sigma" and not 0 <= self.vth <= THRESHOLD_MAX:
            bad(f"vth={self.vth} outside [0, {THRESHOLD_MAX}]")
        if self.kind == "sigma_delta" and self.activation not in ACTIVATIONS:
            bad(f"activation {self.activation!r} is not supported (Lava's SigmaDelta applies "
                f"{', '.join(ACTIVATIONS)})")
        if self.kind == "delta":
            if self.weight is not None or self.bias is not None or self.conv is not None:
                bad("a delta (input) layer has no synapse and no bias")
            return
        if self.kind == "sigma" and self.bias is not None:
            bad("a sigma layer takes no bias (Lava's Sigma has none)")
        w = np.asarray(self.weight)
        ndim = 4 if self.conv else 2
        if self.weight is None or w.ndim != ndim or not np.issubdtype(w.dtype, np.integer):
            bad(f"weight must be a {ndim}-D integer array")
        if w.size and (w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX):
            bad(f"weights span [{w.min()}, {w.max()}], outside [{WEIGHT_MIN}, {WEIGHT_MAX}]")
        if (w.min() < -128 or w.max() > 127) and np.any(w % 2):
            bad("odd weights beside weights beyond [-128, 127] would be truncated by Loihi's "
                "8-bit mantissa")
        out = self.conv.output_shape(w) if self.conv else (w.shape[0],)
        if tuple(out) != tuple(self.shape):
            bad(f"shape {list(self.shape)} does not match what the weights give, {list(out)}")
        if self.bias is not None and np.shape(self.bias) != (w.shape[0],):
            bad(f"bias shape {np.shape(self.bias)} != ({w.shape[0]},)")
        if self.delay is not None:
            d = np.asarray(self.delay)
            if self.conv is not None:
                bad("delays are read on dense layers only (netx ignores a conv layer's)")
            if d.shape != w.shape or not np.issubdtype(d.dtype, np.integer):
                bad(f"delay must be an integer array of shape {list(w.shape)}")
            if d.size and (d.min() < 0 or d.max() > MAX_DELAY):
                bad(f"delays span [{d.min()}, {d.max()}]; netx builds 0..{MAX_DELAY}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def in_size(self) -> int:
        if self.kind == "delta":
            return self.size
        return int(np.prod(self.conv.input_shape)) if self.conv else self.weight.shape[1]

    @property
    def scale_bits(self) -> int:
        return self.spike_exp + self.state_exp

    def fanout_counts(self) -> np.ndarray:
        """Non-zero weights leaving each input neuron (flat, CHW): synaptic ops per message."""
        nz = (np.asarray(self.weight) != 0)
        if not self.conv:
            return nz.sum(axis=0).astype(np.int64)
        c = self.conv
        ones = torch.ones(1, *c.input_shape, dtype=torch.float64, requires_grad=True)
        out = torch.nn.functional.conv2d(ones, torch.as_tensor(nz, dtype=torch.float64),
                                         stride=c.stride, padding=c.padding,
                                         dilation=c.dilation, groups=c.groups)
        out.sum().backward()       # d(sum of outputs)/d(input) = uses of each input
        return ones.grad.reshape(-1).round().to(torch.int64).numpy()

    def synapse(self, msg: torch.Tensor) -> torch.Tensor:
        """Synaptic input [B, size] (int64) of flat graded messages [B, in] (int64), exact.

        Sums run in float64 (CPU and CUDA), exact while below 2**53; for larger messages the
        messages are split into high and low 16-bit halves, each summed exactly."""
        w = torch.as_tensor(np.asarray(self.weight), dtype=torch.float64, device=msg.device)

        def apply(x: torch.Tensor) -> torch.Tensor:
            x = x.to(torch.float64)
            if not self.conv:
                return (x @ w.t()).round().to(torch.int64)
            c = self.conv
            out = torch.nn.functional.conv2d(x.reshape(-1, *c.input_shape), w, stride=c.stride,
                                             padding=c.padding, dilation=c.dilation,
                                             groups=c.groups)
            return out.reshape(x.shape[0], -1).round().to(torch.int64)
        peak = float(msg.abs().max()) if msg.numel() else 0.0
        if peak * float(w.abs().max()) * w[0].numel() < 2 ** 53:
            out = apply(msg)
        else:
            out = (apply(msg >> 16) << 16) + apply(msg & 0xFFFF)
        if self.conv:
            out = (out + CONV_WRAP) % (2 * CONV_WRAP) - CONV_WRAP
        return _wrap32(out)

    def drive(self, msgs: torch.Tensor) -> torch.Tensor:
        """Synaptic input [B, P, size] (int64) of messages [B, P, in] over P steps: step p
        gets the messages of step p - d through the synapses of delay d (0 without delays),
        summed as Lava's DelayDense accumulates them in int32."""
        b, steps = msgs.shape[:2]
        flat = msgs.reshape(b * steps, -1)
        if self.delay is None:
            return self.synapse(flat).reshape(b, steps, -1)
        out = torch.zeros((b, steps, self.size), dtype=torch.int64, device=msgs.device)
        for d in np.unique(self.delay[np.asarray(self.weight) != 0]):
            if d >= steps:
                continue
            part = dataclasses.replace(self, delay=None,
                                       weight=np.where(self.delay == d, self.weight, 0))
            out[:, d:] += part.synapse(flat).reshape(b, steps, -1)[:, :steps - d]
        return _wrap32(out)

    def neuron_bias(self, device) -> torch.Tensor | int:
        """Lava's scaled bias per flat neuron (bias << (spike_exp + state_exp), int32)."""
        if self.bias is None:
            return 0
        bias = torch.as_tensor(np.asarray(self.bias), dtype=torch.int64, device=device)
        if self.conv:
            bias = bias.repeat_interleave(self.size // len(bias))
        return _wrap32(bias << self.scale_bits)


@dataclass(frozen=True)
class SDNetwork:
    """A chain of sigma-delta layers; layer 0 is the delta input layer of `input_shape`."""

    input_shape: tuple[int, ...]
    layers: tuple[SDLayer, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = ()    # what the reader changed as netx does (clamped delays)

    def __post_init__(self):
        if not self.layers or self.layers[0].kind != "delta":
            raise ValueError("an SDNN starts with a delta (input) layer")
        if tuple(self.layers[0].shape) != tuple(self.input_shape):
            raise ValueError(f"input layer shape {list(self.layers[0].shape)} != input_shape "
                             f"{list(self.input_shape)}")
        shape = tuple(self.input_shape)
        for i, layer in enumerate(self.layers[1:], 1):
            if layer.kind == "delta":
                raise ValueError(f"layer {layer.name!r}: only layer 0 can be a delta layer")
            if self.layers[i - 1].kind == "sigma":
                raise ValueError(f"layer {layer.name!r}: nothing may follow a sigma layer "
                                 "(its output is the network's)")
            if layer.conv and tuple(layer.conv.input_shape) != shape:
                raise ValueError(f"layer {layer.name!r} expects input "
                                 f"{list(layer.conv.input_shape)} but the previous layer gives "
                                 f"{list(shape)}")
            if layer.in_size != int(np.prod(shape)):
                raise ValueError(f"layer {layer.name!r} expects {layer.in_size} inputs but the "
                                 f"previous layer gives {int(np.prod(shape))}")
            shape = tuple(layer.shape)

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def sizes(self) -> list[int]:
        return [layer.size for layer in self.layers]


def describe(net: SDNetwork) -> list[dict]:
    """One JSON-ready row per layer (what `inspect` shows): name, kind, shape, synapse,
    synapses (non-zero weights), vth (vThMant), message_bits, bias and max_delay (steps)."""
    rows = []
    for layer in net.layers:
        rows.append({"name": layer.name, "kind": layer.kind, "shape": list(layer.shape),
                     "synapse": None if layer.kind == "delta" else
                     ("conv" if layer.conv else "dense"),
                     "synapses": int(layer.fanout_counts().sum()) if layer.weight is not None
                     else 0,
                     "vth": None if layer.kind == "sigma" else layer.vth,
                     "message_bits": layer.message_bits, "bias": layer.bias is not None,
                     "max_delay": None if layer.delay is None else int(layer.delay.max())})
    return rows


def _delta(a: torch.Tensor, state: dict, vth: int) -> torch.Tensor:
    """Lava's delta encoder (cum_error off: netx never turns it on) on scaled activations
    `a`; updates `state`, returns the scaled s_out."""
    d = _wrap32(a - state["act"] + state["residue"])
    s = torch.where(_abs32(d) >= vth, d, torch.zeros_like(d))
    state["residue"] = _wrap32(d - s)
    state["act"] = a
    return s


def exact_step(layer: SDLayer, a_in: torch.Tensor, state: dict, bias=0) -> torch.Tensor:
    """One Lava timestep of `layer`'s neurons: input [B, n] int64 -> graded messages [B, n].

    For a delta layer `a_in` is the network input; otherwise the synaptic input. `state` holds
    sigma, act, residue ([B, n] int64, zero at start) and is updated in place."""
    vth = layer.vth << layer.scale_bits
    if layer.kind == "delta":
        a = _wrap32(a_in << layer.scale_bits)
        return _delta(a, state, vth) >> layer.state_exp
    state["sigma"] = _wrap32(state["sigma"] + a_in)
    if layer.kind == "sigma":
        return state["sigma"]
    a = torch.clamp(_wrap32(state["sigma"] + bias), min=0)          # relu
    return _delta(a, state, vth) >> layer.state_exp


def run_chip(net: SDNetwork, inputs: torch.Tensor) -> list[torch.Tensor]:
    """Exact integer mode in chip time: integer inputs [B, T, *input_shape] -> per-layer
    messages, each [B, L + T, n] int64, where L = len(net.layers) - 1 synapses.

    On Lava every layer runs from chip step 1, but input step j reaches layer l only at chip
    step j + 1 + l (one step per synapse). So layer l first runs l steps with nothing arriving,
    and a neuron whose bias is above threshold sends messages then, which the layers after it
    receive. Here every layer's row is padded with L leading steps: index p of layer l is chip
    step p - L + 1 + l, i.e. window step p - L; layer l starts at index L - l (chip step 1)
    from zero state, and before that sends nothing."""
    if inputs.is_floating_point() and not torch.equal(inputs, inputs.round()):
        raise ValueError("SDNN inputs must be integers (Lava's Delta takes int32)")
    batch, steps = inputs.shape[:2]
    depth = len(net.layers) - 1
    x = inputs.reshape(batch, steps, -1).to(torch.int64)
    if x.shape[2] != net.input_size:
        raise ValueError(f"inputs have {x.shape[2]} values per step, the network expects "
                         f"{net.input_size}")
    x = torch.cat([x.new_zeros(batch, depth, x.shape[2]), x], dim=1)
    out = []
    for index, layer in enumerate(net.layers):
        drive = x if layer.kind == "delta" else layer.drive(x)
        zeros = torch.zeros_like(drive[:, 0])
        state = {k: zeros.clone() for k in ("sigma", "act", "residue")}
        bias = layer.neuron_bias(x.device)
        start = depth - index if index else 0
        msgs = [zeros] * start + [exact_step(layer, drive[:, p], state, bias)
                                  for p in range(start, depth + steps)]
        x = torch.stack(msgs, dim=1)
        out.append(x)
    return out


def run_exact(net: SDNetwork, inputs: torch.Tensor) -> list[torch.Tensor]:
    """Exact integer mode in window time: integer inputs [B, T, *input_shape] -> per-layer
    messages, each [B, T, n] int64 (layer 0 is the delta input layer); step j of layer l is
    what it sends for input step j, including the effect of what the layers before it sent
    before the input reached them (see `run_chip`). Each batch row is one stream from the
    start of a Lava run; to compare with one Lava stream of N samples, pass them as one row of
    N*T."""
    depth = len(net.layers) - 1
    return [m[:, depth:] for m in run_chip(net, inputs)]


def run_stream(net: SDNetwork, inputs: np.ndarray) -> list[np.ndarray]:
    """The exact counterpart of the Lava backend: N samples [N, T, ...] streamed back to back
    through one state (Lava cannot reset sigma-delta neurons) -> per layer [N, T, n] int64."""
    n, t = inputs.shape[:2]
    out = run_exact(net, torch.as_tensor(np.asarray(inputs)).reshape(1, n * t, -1))
    return [m.reshape(n, t, -1).numpy() for m in out]


def activity(net: SDNetwork, messages: list) -> dict:
    """Activity per layer and timestep, summed over the batch, from any run's messages (each
    [B, T, n]: `run_exact`, `run_stream` or the Lava backend's record).

    Returns {"messages": [L][T], "synaptic_ops": [L][T], "neurons": [L]} as lists of ints:
    `messages` counts non-zero graded messages a layer sends at each step; `synaptic_ops` of
    layer l at step t counts the synaptic operations its input messages cause, i.e. the sum
    over non-zero messages of layer l-1 at step t of that neuron's non-zero outgoing weights
    into layer l (0 for the input layer, which has no synapse). A sigma layer's output counts
    as messages at every step it is non-zero, though on a chip it would be read, not sent.

    Pricing: a graded message costs, as a binary spike does, one synaptic op per non-zero
    outgoing weight plus one message out; its payload (up to 24 bits) is multiplied into the
    weight in the synapse. /work/shared/reference/energy-sources.md has no figure for graded
    messages (its per-op table is Loihi 1's, for binary spikes, and no Loihi 2 per-op table
    is published), so pricing graded ops at the spike figures is an assumption, to be
    labelled a proxy like every Loihi 2 per-op figure.
    """
    nonzero = [torch.as_tensor(np.asarray(m) if not torch.is_tensor(m) else m) != 0
               for m in messages]
    counts = [nz.sum(dim=(0, 2)).tolist() for nz in nonzero]
    ops = [[0] * len(counts[0])]
    for i, layer in enumerate(net.layers[1:], 1):
        fan = torch.as_tensor(layer.fanout_counts(), dtype=torch.int64,
                              device=nonzero[i - 1].device)
        ops.append((nonzero[i - 1].to(torch.int64) * fan).sum(dim=(0, 2)).tolist())
    return {"messages": counts, "synaptic_ops": ops, "neurons": net.sizes}
