"""Feed-forward spiking networks in their integer (deployed) form, and the exact mode that runs them.

Time convention ("window time"). On Loihi and in Lava each Dense synapse delays spikes by one
step, and netx staggers each layer's reset by one step, so layer l processes sample k during
its own window of T steps that starts l steps after layer l-1's. Inside those windows layer l
at step j receives layer l-1's spikes of step j: the delays and the staggered resets cancel.
Both the training mode and the exact mode therefore run every layer over the same T window
steps; the Lava backend maps absolute chip time back onto these windows.
In window time a synaptic delay d (netx `delay`, Lava's DelayDense) makes input spikes of step
j arrive at step j + d, and a recurrent connection of a layer onto itself (netx `dense_rec`,
Lava's RecurrentDense: a second Dense from the neuron back to itself) adds the layer's own
spikes of step j - 1 at step j; inputs from before a sample's window (step < 0) are zero: the
Lava backend clears those synapse buffers at every reset so that samples stay independent.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from neurodeploy.neurons.cuba import (DECAY_UNITY, STATE_SHIFT, U_WRAP, V_LIMIT, WEIGHT_MAX,
                                      WEIGHT_MIN, CubaParams)
from neurodeploy.neurons.resonate import RFParams, run_rf


CONV_WRAP = 2 ** 23   # Lava's fixed-point Conv wraps its output to signed 24 bits
# Samples per run_exact call: the exact mode's fastest batch on the 2-core CPU measured
# (benchmarks/backends.py); at 512 the conv export's currents and state leave the 32 MB L3
# cache and throughput halves.
EXACT_BATCH = 256
INPUT_LIMIT = 2 ** 15  # an input layer's gain * x + bias reaches LIF's 16-bit a_in directly
MAX_DELAY = 62        # netx builds DelayDense with max_delay=62 and clips longer delays to it


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
    output channel. Input layer with neurons (`input_shape` given, netx `input` with a neuron):
    weight (n,) is each neuron's gain on its own input value (one-to-one, no synapse matrix)
    and `bias` is added to that input current every step, as slayer's Input block trains it
    (neuron(x * weight + bias)), not to the voltage as a dense or conv layer's bias is.
    Inputs and outputs are flattened in CHW order, as PyTorch and netx do.
    Dense only: `recurrent` (n, n) weights of the layer onto itself (one step late, see the
    module docstring) and `delay` (out, in) synaptic delays in steps, 0..MAX_DELAY.
    Resonate-and-fire (`params` an RFParams, netx's complex dense layer): `weight` is the real
    part and `weight_imag` the imaginary part, two synapses onto the same neurons, as netx's
    ComplexDense builds them; netx gives such a layer no bias, delay or recurrence.
    """

    weight: np.ndarray
    params: CubaParams | RFParams
    bias: np.ndarray | None = None
    name: str = ""
    conv: Conv | None = None
    recurrent: np.ndarray | None = None
    delay: np.ndarray | None = None
    input_shape: tuple[int, ...] | None = None
    weight_imag: np.ndarray | None = None

    def __post_init__(self):
        w = np.asarray(self.weight)
        if self.resonate != (self.weight_imag is not None) or self.resonate and (
                self.conv or self.input_shape or self.bias is not None
                or self.recurrent is not None or self.delay is not None):
            raise ValueError(f"layer {self.name!r}: resonate-and-fire neurons take a dense "
                             "layer's real and imaginary weights and nothing else (netx's "
                             "ComplexDense)")
        if self.resonate and (np.shape(self.weight_imag) != w.shape
                              or {len(self.params.sin_decay), len(self.params.cos_decay)}
                              - {1, len(w)}
                              or np.min(self.weight_imag) < WEIGHT_MIN
                              or np.max(self.weight_imag) > WEIGHT_MAX):
            raise ValueError(f"layer {self.name!r}: imaginary weights "
                             f"{np.shape(self.weight_imag)} and {len(self.params.sin_decay)} "
                             f"decays (1 or one per neuron) for real weights {w.shape}, or "
                             "imaginary weights outside Loihi's range")
        ndim = 4 if self.conv else 1 if self.input_shape else 2
        if self.conv and self.input_shape:
            raise ValueError(f"layer {self.name!r}: an input layer has no convolution")
        if self.input_shape and w.shape != (int(np.prod(self.input_shape)),):
            raise ValueError(f"layer {self.name!r}: an input layer's gains must have shape "
                             f"({int(np.prod(self.input_shape))},), got {w.shape}")
        for key, want in (("recurrent", (w.shape[0], w.shape[0])), ("delay", w.shape)):
            extra = getattr(self, key)
            if extra is None:
                continue
            a = np.asarray(extra)
            if self.conv or self.input_shape:
                raise ValueError(f"layer {self.name!r}: '{key}' is supported on dense layers "
                                 "only (netx reads it nowhere else)")
            if a.shape != want or not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"layer {self.name!r}: '{key}' must be an integer array of "
                                 f"shape {want}, got {a.dtype} {a.shape}")
        if self.recurrent is not None and self.recurrent.size and (
                self.recurrent.min() < WEIGHT_MIN or self.recurrent.max() > WEIGHT_MAX):
            raise ValueError(f"layer {self.name!r}: recurrent weights span "
                             f"[{self.recurrent.min()}, {self.recurrent.max()}], outside "
                             f"Loihi's [{WEIGHT_MIN}, {WEIGHT_MAX}]")
        if self.delay is not None and self.delay.size and (
                self.delay.min() < 0 or self.delay.max() > MAX_DELAY):
            raise ValueError(f"layer {self.name!r}: delays span [{self.delay.min()}, "
                             f"{self.delay.max()}] steps; Loihi 2 via netx holds 0..{MAX_DELAY}")
        if w.ndim != ndim or not np.issubdtype(w.dtype, np.integer):
            raise ValueError(f"layer {self.name!r}: weight must be a {ndim}-D integer array, "
                             f"got {w.dtype} {w.shape}")
        lo, hi = (-INPUT_LIMIT, INPUT_LIMIT - 1) if self.input_shape else (WEIGHT_MIN, WEIGHT_MAX)
        if self.input_shape and self.bias is not None and (
                np.abs(w).max() + np.abs(self.bias).max() >= INPUT_LIMIT):
            raise ValueError(f"layer {self.name!r}: gain + input bias reach Lava's 16-bit "
                             f"neuron input limit {INPUT_LIMIT}")
        if w.size and (w.min() < lo or w.max() > hi):
            raise ValueError(f"layer {self.name!r}: weights span [{w.min()}, {w.max()}], "
                             f"outside {'LIF input' if self.input_shape else 'Loihi'}'s "
                             f"[{lo}, {hi}]")
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
        if self.input_shape:
            return tuple(self.input_shape)
        return self.conv.output_shape(self.weight) if self.conv else (self.weight.shape[0],)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def in_size(self) -> int:
        if self.input_shape:
            return self.size
        return int(np.prod(self.conv.input_shape)) if self.conv else self.weight.shape[1]

    @property
    def kind(self) -> str:
        return "input" if self.input_shape else "conv" if self.conv else \
            "dense_rec" if self.recurrent is not None else "dense"

    @property
    def resonate(self) -> bool:
        return isinstance(self.params, RFParams)

    def synapse_matrices(self) -> list[np.ndarray]:
        """The weight matrices onto this layer's neurons, each one synapse per entry on the chip
        (an RF layer's real and imaginary parts; not the recurrent weights)."""
        return [self.weight] + ([self.weight_imag] if self.resonate else [])

    def describe(self) -> str:
        """One line for `inspect`: kind, shape, synapses, and what netx adds (delays, graded
        spikes, recurrence)."""
        parts = [f"{self.name or '?'}: {self.kind} {list(self.shape)}",
                 f"{sum(int(np.count_nonzero(w)) for w in self.synapse_matrices())} synapses"
                 + (" (real and imaginary)" if self.resonate else "")]
        if self.recurrent is not None:
            parts.append(f"recurrent {int(np.count_nonzero(self.recurrent))} synapses "
                         "(one step late)")
        if self.delay is not None:
            d = self.delay[self.weight != 0]
            parts.append(f"delays {int(d.min()) if d.size else 0}..{int(d.max()) if d.size else 0}"
                         " steps")
        if self.bias is not None:
            parts.append("bias")
        p = self.params
        if self.resonate:
            return ", ".join(parts + [p.describe()])
        span = lambda d: f"{min(d)}..{max(d)} per neuron" if isinstance(d, tuple) else d  # noqa
        parts.append(f"iDecay {span(p.i_decay)} vDecay {span(p.v_decay)} vThMant {p.threshold}, "
                     "binary spikes")
        return ", ".join(parts)

    def input_bound(self, weight: np.ndarray | None = None, peak: float = 1) -> float:
        """The largest |synaptic input| one neuron can get in one step from input events of
        at most `peak` (1: binary spikes; graded input spikes carry larger integers)."""
        if weight is None and self.resonate:
            return max(self.input_bound(w, peak) for w in self.synapse_matrices())
        w = np.abs(np.asarray(self.weight if weight is None else weight))
        if self.input_shape:
            return float(w.max() * peak + (0 if self.bias is None else np.abs(self.bias).max()))
        return float(w.reshape(len(w), -1).sum(1).max()) * peak if w.size else 0.0

    def synapse(self, x: torch.Tensor, weight: np.ndarray | None = None,
                peak: float = 1) -> torch.Tensor:
        """Synaptic input of flat events [B, in] (spikes, or graded input events of at most
        `peak`): [B, size] float64 holding exact integers (the weights only: no delays, no
        recurrence, no input layer bias)."""
        return self._sum(x, weight, peak).to(torch.float64)

    def _sum(self, x: torch.Tensor, weight: np.ndarray | None = None,
             peak: float = 1) -> torch.Tensor:
        """As `synapse`, in float32 when no sum of events of at most `peak` can reach 2**24
        (then every partial sum is an exact integer), else in float64 (exact below 2**53)."""
        w = np.asarray(self.weight if weight is None else weight)
        if self.input_shape:
            return x.to(torch.float64) * torch.as_tensor(w, dtype=torch.float64,
                                                         device=x.device)
        dtype = torch.float32 if self.input_bound(w, peak) < 2 ** 24 else torch.float64
        w = torch.as_tensor(w, dtype=dtype, device=x.device)
        x = x.to(dtype)
        if not self.conv:
            return x @ w.t()
        c = self.conv
        out = torch.nn.functional.conv2d(x.reshape(-1, *c.input_shape), w, stride=c.stride,
                                         padding=c.padding, dilation=c.dilation, groups=c.groups)
        return out.reshape(x.shape[0], -1)

    def neuron_bias(self, device) -> torch.Tensor | int:
        if self.bias is None or self.input_shape:       # an input layer's bias is a current
            return 0
        bias = torch.as_tensor(self.bias, dtype=torch.int64, device=device)
        return bias.repeat_interleave(self.size // self.weight.shape[0]) if self.conv else bias

    def window_input(self, x: torch.Tensor, peak: float = 1,
                     weight: np.ndarray | None = None) -> torch.Tensor:
        """Feed-forward synaptic input of events x [T, B, in] (step-major; spikes, or graded
        input events of at most `peak`) in window time:
        [T, B, n] exact integers in float32 or float64 (see `_sum`; each delay group's spikes
        shifted by its delay; conv outputs wrapped as Lava does, where they can reach the wrap);
        `weight`: other weights of the same shape (an RF layer's imaginary part)."""
        steps, batch = x.shape[:2]
        if self.input_shape and self.bias is not None:     # input current: gain * x + bias
            return (self._sum(x.reshape(steps, batch, -1), peak=peak)
                    + torch.as_tensor(self.bias, dtype=torch.float64, device=x.device))
        if self.delay is None:
            current = self._sum(x.reshape(steps * batch, -1), weight, peak=peak)
            if self.conv and self.input_bound(peak=peak) >= CONV_WRAP:    # in float64: exact up there
                current = torch.remainder(current.to(torch.float64) + CONV_WRAP,
                                          2 * CONV_WRAP) - CONV_WRAP
            return current.reshape(steps, batch, -1)
        current = torch.zeros((steps, batch, self.size), dtype=torch.float64, device=x.device)
        for d in np.unique(self.delay[self.weight != 0]):
            if d >= steps:
                continue
            part = self._sum(x[:steps - d].reshape(-1, self.in_size),
                             np.where(self.delay == d, self.weight, 0), peak)
            current[d:] += part.reshape(steps - d, batch, -1)
        return current


@dataclass(frozen=True)
class IntNetwork:
    """A chain of CUBA-LIF layers (an optional input layer, then dense or conv) fed by binary
    input spikes of `input_shape`.

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
        for i, layer in enumerate(self.layers):
            if layer.input_shape and i:
                raise ValueError(f"layer {layer.name!r}: an input layer must come first")
            expected = layer.conv.input_shape if layer.conv else tuple(layer.input_shape) \
                if layer.input_shape else (layer.weight.shape[1],)
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
    Input events may be graded (non-negative integers, netx's input_message_bits): the first
    synapse multiplies each by its weight, as Lava's Dense does with graded spikes.

    With `voltage`, also returns the last layer's voltage after every step, [B, T, n] int64
    (Lava's units: the integer voltage << 6), which is the output of a readout layer.
    Everything runs step-major ([T, B, n]: each step reads and writes contiguous memory), and
    a layer's 0/1 spikes feed the next layer's synapses as they are, in the state's float type.
    Synaptic sums run in float32 where that is exact (IntLayer._sum), the neuron state in
    float32 or float64 holding exact integers (`_state_plan`), by cuba.exact_step's rules, to
    which the tests hold this loop."""
    batch, steps = spikes.shape[:2]
    x = spikes.reshape(batch, steps, -1).transpose(0, 1)
    out, volts = [], None
    peak = _peak(x)
    for index, layer in enumerate(net.layers):
        if layer.resonate:
            if voltage and index == len(net.layers) - 1:
                raise ValueError(f"layer {layer.name!r}: a resonate-and-fire layer has no "
                                 "voltage readout")
            x = run_rf(layer.params, layer.window_input(x, max(peak, 1.0)),
                       layer.window_input(x, max(peak, 1.0), layer.weight_imag))
            peak = 1.0
            out.append(x.transpose(0, 1))
            continue
        current = layer.window_input(x, max(peak, 1.0)).mul_(2 ** STATE_SHIFT)
        if voltage and index == len(net.layers) - 1:
            volts = torch.empty(current.shape, dtype=torch.int64, device=current.device)
        x = _run_layer(layer, current, volts, max(peak, 1.0))
        peak = 1.0
        out.append(x.transpose(0, 1).bool())
    return (out, None if volts is None else volts.transpose(0, 1)) if voltage else out


def _peak(x: torch.Tensor) -> float:
    """The largest |input event|: 1 for spikes; read in the events' own type (a float64 copy
    of a test set's inputs cost more than the simulation's first layer)."""
    if not x.numel() or x.dtype == torch.bool:
        return 1.0
    low, high = torch.aminmax(x)
    return max(float(high), -float(low), 0.0)


def _odd_part(decay) -> int:
    """The largest odd factor of kept = 4096 - decay (over neurons, for per-neuron decays): a
    state x times kept/4096 is exact in float32 when |x| * odd part < 2**24 (the power of two
    only moves the exponent)."""
    values = decay if isinstance(decay, tuple) else (decay,)
    return max((k // (k & -k) if k else 1) for k in (DECAY_UNITY - int(d) for d in values))


def _state_plan(layer: IntLayer, steps: int, bias_peak: float,
                input_peak: float = 1) -> tuple[torch.dtype, bool, bool]:
    """How `_run_layer` may hold this layer's state exactly: (dtype, may_wrap, may_saturate).

    Geometric bounds of the current and voltage over `steps` (inputs at their largest every
    step): below Lava's 24-bit wrap and saturation those tests (a reduction every step) are
    skipped, and when every value the step forms, decay products included, stays below 2**24
    the state is float32 (half the memory traffic of float64), else float64 (exact below
    2**53: |x| < 2**24 times kept <= 4096 is within 37 bits)."""
    p = layer.params
    bound = layer.input_bound(peak=input_peak)
    peak = (min(bound, CONV_WRAP) if layer.conv else bound) * 2 ** STATE_SHIFT
    if layer.recurrent is not None:
        peak += float(np.abs(layer.recurrent).sum(1).max()) * 2 ** STATE_SHIFT
    i_decay = min(p.i_decay) if isinstance(p.i_decay, tuple) else p.i_decay
    v_decay = min(p.v_decay) if isinstance(p.v_decay, tuple) else p.v_decay
    u_peak = peak * (steps if i_decay == 0 else min(steps, DECAY_UNITY / i_decay))
    v_peak = (min(u_peak, U_WRAP) + bias_peak) * (
        steps if v_decay == 0 else min(steps, DECAY_UNITY / v_decay))
    may_wrap, may_saturate = u_peak >= U_WRAP - 1, v_peak >= V_LIMIT
    narrow = (not (may_wrap or may_saturate) and u_peak * _odd_part(p.i_decay) < 2 ** 24
              and v_peak * _odd_part(p.v_decay) < 2 ** 24)
    return (torch.float32 if narrow else torch.float64), may_wrap, may_saturate


def _run_layer(layer: IntLayer, current: torch.Tensor, volts: torch.Tensor | None = None,
               input_peak: float = 1) -> torch.Tensor:
    """One layer's neurons over T steps of input current [T, B, n] (<< 6 already): spikes
    [T, B, n] as 0/1 in the state's type; the voltage after each step into `volts` if given.

    Only cheap vectorised ops (torch's trunc, comparisons and masked_fill are several times
    slower on the CPU): trunc(x) is x - frac(x), exact in floating point; the reset multiplies
    v by keep = clamp(threshold + 1 - v, 0, 1), which is exactly 1 where v <= threshold and 0
    where it fires (integers, and rounding cannot move a value across 0 or 1)."""
    steps, batch, n = current.shape
    p = layer.params
    bias = layer.neuron_bias(current.device)
    bias = bias.to(torch.float64) * 2 ** STATE_SHIFT if torch.is_tensor(bias) else None
    dtype, may_wrap, may_saturate = _state_plan(
        layer, steps, 0.0 if bias is None else float(bias.abs().max()), input_peak)
    bias = None if bias is None else bias.to(dtype)
    current = current.to(dtype)
    rec = None if layer.recurrent is None else torch.as_tensor(
        layer.recurrent.T * 2 ** STATE_SHIFT, dtype=dtype, device=current.device)
    u = torch.zeros((batch, n), dtype=dtype, device=current.device)
    v, scratch = torch.zeros_like(u), torch.empty_like(u)
    spikes = torch.empty(current.shape, dtype=dtype, device=current.device)
    ki, kv = p.kept("i", u) / DECAY_UNITY, p.kept("v", u) / DECAY_UNITY
    over = float((p.threshold << STATE_SHIFT) + 1)
    for t in range(steps):
        u.mul_(ki).sub_(torch.frac(u, out=scratch)).add_(current[t])
        if rec is not None and t:        # own spikes of the previous step
            u.add_(spikes[t - 1] @ rec)
        if may_wrap:
            wrapped = torch.where(u > U_WRAP, u - 2 * U_WRAP, u)
            u = torch.where(wrapped <= -U_WRAP, u + 2 * U_WRAP, wrapped)
        v.mul_(kv).sub_(torch.frac(v, out=scratch)).add_(u)
        if bias is not None:
            v.add_(bias)
        if may_saturate:
            v.clamp_(-V_LIMIT, V_LIMIT)
        keep = torch.sub(over, v, out=scratch).clamp_(0, 1)
        torch.sub(1, keep, out=spikes[t])
        v.mul_(keep)
        if volts is not None:
            volts[t] = v
    return spikes
