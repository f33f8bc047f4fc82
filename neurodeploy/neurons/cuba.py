"""Loihi's current-based LIF neuron, defined once, in two modes.

`exact_step` follows Lava's bit-accurate fixed-point model (lava-nc 0.10.0,
`lava/proc/lif/models.py::AbstractPyLifModelFixed`) bit for bit:

    u <- rtz(u * (4096 - i_decay), 12) + (a << 6)         current, then 24-bit wrap
    v <- rtz(v * (4096 - v_decay), 12) + u + (bias << 6)  voltage, then saturate to +-(2**23 - 1)
    spike where v > (threshold << 6); there v <- 0        strict threshold, reset to zero, u kept

`float_step` is the same recurrence without the shifts, rounding, wrap and clip, in units where
one weight step is one integer; its spike has a surrogate gradient so it can be trained. The
two differ only by sub-integer rounding, which is why a student trained in float mode deploys
with nearly the same accuracy, and why the deployed (exact) accuracy is the one we report.
All arithmetic is integer (weights times binary spikes are summed in float64, which is exact
below 2**53), so the exact mode gives the same integers on CPU and CUDA.
"""
from __future__ import annotations

import math

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

DECAY_UNITY = 4096          # 12-bit decays: 4096 means "lose everything each step"
STATE_SHIFT = 6             # Loihi MSB-aligns input, bias and threshold by 6 bits
U_WRAP = 2 ** 23            # current is a 24-bit two's-complement register
V_LIMIT = 2 ** 23 - 1       # voltage saturates instead of wrapping
THRESHOLD_MAX = 2 ** 17 - 1
# netx 0.6.0's default neuron for a dense layer without one writes `vThMant: 1 << 18 - 1`,
# which Python reads as 1 << 17: one above Loihi's 17-bit field, and out of reach of the
# saturated voltage. Lava's CPU model takes it, so the exact mode must too.
NETX_DEFAULT_THRESHOLD = 2 ** 17
WEIGHT_MIN, WEIGHT_MAX = -256, 254   # 8-bit signed mantissa x 2: the grid slayer and netx use
WEIGHT_STEP = 2


@dataclass(frozen=True)
class CubaParams:
    """Per-layer neuron constants as Loihi stores them (netx's iDecay, vDecay, vThMant).

    A decay is one integer for the layer or, as slayer saves some layers and Lava's LIF
    applies them, a tuple of one integer per neuron (a tuple keeps the constants hashable)."""

    i_decay: int | tuple[int, ...]
    v_decay: int | tuple[int, ...]
    threshold: int

    def __post_init__(self):
        for name, value, lo, hi in (("i_decay", self.i_decay, 0, DECAY_UNITY),
                                    ("v_decay", self.v_decay, 0, DECAY_UNITY),
                                    ("threshold", self.threshold, 1,
                                     NETX_DEFAULT_THRESHOLD)):
            for v in (value if isinstance(value, tuple) and name != "threshold" else (value,)):
                if isinstance(v, bool) or not isinstance(v, (int, float, np.integer,
                                                             np.floating)) \
                        or not math.isfinite(v) or int(v) != v or not lo <= v <= hi:
                    raise ValueError(f"{name}={v} is outside Loihi's integer range [{lo}, {hi}]")

    def kept(self, which: str, like: torch.Tensor):
        """4096 - decay of `which` ('i' or 'v'): a number, or per neuron a tensor that
        broadcasts over the layer's state [B, n] `like`."""
        decay = self.i_decay if which == "i" else self.v_decay
        if isinstance(decay, tuple):
            return DECAY_UNITY - torch.as_tensor(decay, dtype=like.dtype, device=like.device)
        return DECAY_UNITY - decay


def _decay(x: torch.Tensor, kept) -> torch.Tensor:
    """x * kept / 4096 rounded toward zero, as Loihi's decay multiplier does. On float64 state
    this is exact: |x| < 2**24 and kept <= 4096 keep the product within 37 bits, and dividing
    by 4096 only moves the exponent."""
    if x.is_floating_point():
        return torch.trunc(x * (kept / DECAY_UNITY))
    return torch.div(x * kept, DECAY_UNITY, rounding_mode="trunc")


def exact_step(u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, p: CubaParams,
               bias: torch.Tensor | int = 0):
    """One fixed-point step, the reference rules (network.run_exact is held to them by the
    tests). State and input are integers held in int64 or, exactly too, in float64; `a` is
    this step's synaptic input."""
    decayed = _decay(u, p.kept("i", u)) + a * 2 ** STATE_SHIFT
    if bool((decayed.abs() >= U_WRAP).any()):
        # Lava wraps once (not modulo): the second test reads the already-wrapped value but
        # corrects the unwrapped one, exactly as lava/proc/lif/models.py does.
        wrapped = torch.where(decayed > U_WRAP, decayed - 2 * U_WRAP, decayed)
        decayed = torch.where(wrapped <= -U_WRAP, decayed + 2 * U_WRAP, wrapped)
    u = decayed
    v = _decay(v, p.kept("v", v)).add_(u)
    if not isinstance(bias, int) or bias:
        v = v.add_(bias * 2 ** STATE_SHIFT)
    v = v.clamp_(-V_LIMIT, V_LIMIT)
    spikes = v > (p.threshold << STATE_SHIFT)
    return u, v.masked_fill_(spikes, 0), spikes


class _Spike(torch.autograd.Function):
    """Heaviside forward, fast-sigmoid surrogate backward (Zenke & Ganguli 2018)."""

    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (1 + ctx.slope * x.abs()) ** 2, None


def float_step(u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, p: CubaParams,
               bias: torch.Tensor | float = 0.0, slope: float = 10.0):
    """The training-mode step: exact_step's recurrence in float, with a surrogate spike."""
    u = u * (p.kept("i", u) / DECAY_UNITY) + a
    v = v * (p.kept("v", v) / DECAY_UNITY) + u + bias
    spikes = _Spike.apply((v - p.threshold) / p.threshold, slope)
    v = v * (1 - spikes.detach())   # reset to zero; no gradient through the reset
    return u, v, spikes


def _trunc_ste(x: torch.Tensor) -> torch.Tensor:
    """Rounding toward zero forward, identity backward."""
    return x + (torch.trunc(x) - x).detach()


def exact_ste_step(u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, p: CubaParams,
                   bias: torch.Tensor | float = 0.0, slope: float = 10.0):
    """exact_step's arithmetic (state << 6, decays rounded toward zero, reset to zero) with
    gradients: the roundings pass gradients straight through and the spike has float_step's
    surrogate. Its spikes are the exact mode's wherever the state stays below Lava's 24-bit
    wrap and saturation (not modelled here) and the float type holds the products exactly
    (float64 does: see _decay). `u`, `v` in Lava's units (<< 6); `a`, `bias` in integers."""
    u = _trunc_ste(u * (p.kept("i", u) / DECAY_UNITY)) + a * 2 ** STATE_SHIFT
    v = _trunc_ste(v * (p.kept("v", v) / DECAY_UNITY)) + u + bias * 2 ** STATE_SHIFT
    threshold = p.threshold << STATE_SHIFT
    spikes = _Spike.apply((v - threshold) / threshold, slope)
    v = v * (1 - spikes.detach())
    return u, v, spikes


def quantize_weight(w: torch.Tensor) -> torch.Tensor:
    """Round to Loihi's weight grid (even integers in [-256, 254])."""
    return (torch.round(w / WEIGHT_STEP) * WEIGHT_STEP).clamp(WEIGHT_MIN, WEIGHT_MAX)


class QuantDense(nn.Module):
    """Bias-free dense synapse whose weights are trained on Loihi's 8-bit grid (STE).

    The parameter lives in threshold units (1.0 = one threshold) so ordinary initialisation
    and learning rates apply; `scale` (the target layer's integer threshold) maps it to integers.
    """

    def __init__(self, in_features: int, out_features: int, scale: int):
        super().__init__()
        self.scale = float(scale)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def integer_weight(self) -> torch.Tensor:
        return quantize_weight(self.weight.detach() * self.scale).to(torch.int64)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale
        w_q = w + (quantize_weight(w) - w).detach()   # straight-through estimator
        return spikes @ w_q.t()


class QuantConv2d(nn.Module):
    """Bias-free conv synapse with weights on Loihi's grid (STE), over [B, T, C, H, W] spikes."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, scale: int,
                 stride: int = 1, padding: int = 0):
        super().__init__()
        self.scale = float(scale)
        self.stride, self.padding = (stride, stride), (padding, padding)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel, kernel))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def integer_weight(self) -> torch.Tensor:
        return quantize_weight(self.weight.detach() * self.scale).to(torch.int64)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale
        w_q = w + (quantize_weight(w) - w).detach()
        b, t = spikes.shape[:2]
        out = nn.functional.conv2d(spikes.flatten(0, 1), w_q, stride=self.stride,
                                   padding=self.padding)
        return out.reshape(b, t, *out.shape[1:])


class CubaLIF(nn.Module):
    """A layer of training-mode CUBA-LIF neurons over a [batch, time, neurons] input current."""
    readout = False

    def __init__(self, params: CubaParams, slope: float = 10.0):
        super().__init__()
        self.params = params
        self.slope = slope

    def forward(self, current: torch.Tensor, recurrent: nn.Module | None = None) -> torch.Tensor:
        """[B, T, ...] input current -> [B, T, ...] spikes. `recurrent` (a synapse n -> n)
        adds the layer's own spikes of the previous step to its input, zero before the first
        step, as run_exact adds IntLayer.recurrent."""
        u = v = s = torch.zeros_like(current[:, 0])
        out = []
        for t in range(current.shape[1]):
            a = current[:, t] if recurrent is None else current[:, t] + recurrent(s)
            u, v, s = float_step(u, v, a, self.params, slope=self.slope)
            out.append(v if self.readout else s)
        return torch.stack(out, dim=1)


class CubaReadout(CubaLIF):
    """A non-spiking CUBA layer (Loihi runs it as a CUBA neuron whose threshold is out of
    reach): the same recurrence as CubaLIF, but its output is the voltage after every step,
    [B, T, ...], in integer units, which is what the exact mode and Lava record (>> 6)."""
    readout = True
