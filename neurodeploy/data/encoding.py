"""Deterministic rate code: an intensity x in [0, 1] becomes round(x*T) evenly spaced spikes.

Why this encoding: it has no random numbers, so every backend (and every rerun) sees the same
spike trains, which parity checking needs; and it is plain binary spike events, which is how
Loihi 2 receives input from its host or embedded processors. Spike at step t iff
floor((t+1)*c/T) > floor(t*c/T) with c = round(x*T): integer arithmetic only. For the digits'
16 grey levels and T = 16, each pixel value v becomes exactly v spikes.
"""
from __future__ import annotations

import numpy as np


def rate_encode(x: np.ndarray, timesteps: int) -> np.ndarray:
    """[N, F] intensities in [0, 1] -> [N, T, F] uint8 spikes."""
    counts = np.rint(np.clip(x, 0.0, 1.0) * timesteps).astype(np.int64)[:, None, :]
    t = np.arange(timesteps, dtype=np.int64)[None, :, None]
    return (((t + 1) * counts) // timesteps > (t * counts) // timesteps).astype(np.uint8)
