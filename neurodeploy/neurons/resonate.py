"""Resonate-and-fire neurons (netx `RF_PHASE` -> Lava `RF`, `RF_IZHIKEVICH` -> Lava `RF_IZ`),
defined once: the constants as netx 0.6.0 derives them and the fixed-point step Lava runs.

netx (`lava/lib/dl/netx/hdf5.py`, get_neuron_params) does not hand the file's integer
`sinDecay`/`cosDecay` to Lava: slayer's `neuron.rf.neuron_params` turns them into a period and
a decay in float (decay = 1 - |z|, period = 2 pi / arg z, z = (cos + i sin) / 4096), and Lava's
`RF.__init__` (`lava/proc/rf/process.py`) turns those back into integers with
`np.int32((1 - decay) * sin(2 pi / period) * 4096)`, i.e. truncated toward zero. The round
trip can move a decay by one unit, so `lava_decays` repeats that float arithmetic step for step
(numpy float64, as netx computes from slayer's int64 fields). netx passes state_exp = 6,
decay_bits = 12 and vth = vThMant, which RF scales to vThMant << 6.

The step (`lava/proc/rf/models.py`, PyRFModelFixed; `lava/proc/rf_iz/models.py`), with
rtz(x) = sign(x) * (|x| >> 12) and inputs a << 6:
    re' = rtz(cos * re) - rtz(sin * im) + (a_re << 6)   both clipped to +-(2**23 - 1)
    im' = rtz(sin * re) + rtz(cos * im) + (a_im << 6)
    RF:    spike where re' >= vth and im' >= 0 and im < 0 (the phase crosses zero); no reset
    RF_IZ: spike where im' >= vth; there re' <- 0 and im' <- vth - 1
netx builds no bias, no delay, no reset for them (its reset_interval reaches LIF only): the
Lava backend zeroes their state at each sample's window as it empties synapse buffers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DECAY_BITS = 12                 # netx's decay_bits
STATE_EXP = 6                   # netx's state_exp
RF_LIMIT = 2 ** 23 - 1          # Lava clips real and imaginary state to 24 bits
KINDS = {"RF_PHASE": "RF", "RF_IZHIKEVICH": "RF_IZ"}   # slayer's neuron type -> Lava process


def lava_decays(sin_field, cos_field) -> tuple[np.ndarray, np.ndarray]:
    """The integer (sin, cos) decays Lava's RF holds for a file's sinDecay/cosDecay (int64
    arrays), through netx's float round trip (slayer.neuron.rf.neuron_params, then RF.__init__)
    in the same order of operations."""
    sin = np.asarray(sin_field, dtype=np.int64) / (1 << 12)
    cos = np.asarray(cos_field, dtype=np.int64) / (1 << 12)
    with np.errstate(divide="ignore"):
        decay = 1 - np.sqrt(sin ** 2 + cos ** 2)
        period = 1 / (np.arctan2(sin, cos) / 2 / np.pi)
        angle = np.pi * 2 * 1 / period
    return (np.int32((1 - decay) * np.sin(angle) * (1 << DECAY_BITS)).astype(np.int64),
            np.int32((1 - decay) * np.cos(angle) * (1 << DECAY_BITS)).astype(np.int64))


@dataclass(frozen=True)
class RFParams:
    """A layer of resonate-and-fire neurons: the file's sinDecay/cosDecay (one for the layer or
    one per neuron, as the file gives them; tuples keep the constants hashable), its vThMant,
    and whether it is RF_IZ."""

    sin_decay: tuple[int, ...]
    cos_decay: tuple[int, ...]
    threshold: int
    izhikevich: bool = False

    @property
    def kind(self) -> str:
        return "RF_IZ" if self.izhikevich else "RF"

    @property
    def netx_type(self) -> str:
        return "RF_IZHIKEVICH" if self.izhikevich else "RF_PHASE"

    def decays(self) -> tuple[np.ndarray, np.ndarray]:
        """What Lava multiplies by (see lava_decays)."""
        return lava_decays(self.sin_decay, self.cos_decay)

    def periods(self) -> np.ndarray:
        """Each neuron's period in steps, as netx reads it (for inspect)."""
        with np.errstate(divide="ignore"):
            return 2 * np.pi / np.arctan2(np.asarray(self.sin_decay, dtype=np.float64),
                                          np.asarray(self.cos_decay, dtype=np.float64))

    def describe(self) -> str:
        p = self.periods()
        return (f"{self.kind} (resonate-and-fire), period {p.min():.1f}..{p.max():.1f} steps, "
                f"vThMant {self.threshold}, binary spikes")


def _rtz(x: torch.Tensor) -> torch.Tensor:
    """x >> 12 rounded toward zero, as Lava's scale_volt (x: int64)."""
    return torch.sign(x) * (x.abs() >> DECAY_BITS)


def run_rf(params: RFParams, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
    """Window-time run of one layer over synaptic inputs real, imag [T, B, n] (integers, not
    yet << 6): spikes [T, B, n] bool, in Lava's int64 arithmetic (exact on CPU and CUDA)."""
    sin, cos = (torch.as_tensor(d, device=real.device) for d in params.decays())
    vth = params.threshold << STATE_EXP
    steps, batch, n = real.shape
    re = torch.zeros((batch, n), dtype=torch.int64, device=real.device)
    im = torch.zeros_like(re)
    out = torch.empty(real.shape, dtype=torch.bool, device=real.device)
    a_re = real.to(torch.int64) << STATE_EXP
    a_im = imag.to(torch.int64) << STATE_EXP
    for t in range(steps):
        new_re = (_rtz(cos * re) - _rtz(sin * im) + a_re[t]).clamp_(-RF_LIMIT, RF_LIMIT)
        new_im = (_rtz(sin * re) + _rtz(cos * im) + a_im[t]).clamp_(-RF_LIMIT, RF_LIMIT)
        if params.izhikevich:
            out[t] = new_im >= vth
            re = new_re.masked_fill(out[t], 0)
            im = new_im.masked_fill(out[t], vth - 1)
        else:
            out[t] = (new_re >= vth) & (new_im >= 0) & (im < 0)
            re, im = new_re, new_im
    return out
