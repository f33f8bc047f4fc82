"""Deterministic spike encodings of intensities x in [0, 1]; no random numbers, so every backend
(and every rerun) sees the same spike trains, which parity checking needs, and plain binary spike
events, which is how Loihi 2 receives input from its host or embedded processors.

- rate: round(x*T) evenly spaced spikes; spike at step t iff floor((t+1)*c/T) > floor(t*c/T)
  with c = round(x*T) (integer arithmetic only). For the digits' pixel values 0..16 and T = 16,
  each pixel value v becomes exactly v spikes.
- thermometer: each input becomes `levels` binary channels, channel k spiking at every step iff
  round(x*levels) > k. The first layer sees the (quantized) intensity at every timestep, as with
  the direct/analog input encoding of the SNN literature (e.g. Fang et al., ICCV 2021), but the
  chip still receives only spikes; the input grows to levels x C channels. Because the frame
  repeats, the same network can be read out at any T' (the full-range method, seed 003).
"""
from __future__ import annotations

import numpy as np

ENCODINGS = ("rate", "thermometer")


def encoding_spec(name: str, timesteps: int, levels: int | None = None) -> dict:
    """{name, timesteps[, levels]}: what `encode` takes, and how files record an encoding."""
    return {"name": name, "timesteps": timesteps,
            **({"levels": levels} if name == "thermometer" else {})}


def rate_encode(x: np.ndarray, timesteps: int) -> np.ndarray:
    """[N, F] intensities in [0, 1] -> [N, T, F] uint8 spikes."""
    counts = np.rint(np.clip(x, 0.0, 1.0) * timesteps).astype(np.int64)[:, None, :]
    t = np.arange(timesteps, dtype=np.int64)[None, :, None]
    return (((t + 1) * counts) // timesteps > (t * counts) // timesteps).astype(np.uint8)


def thermometer_encode(x: np.ndarray, timesteps: int, levels: int) -> np.ndarray:
    """[N, F] intensities in [0, 1] -> [N, T, levels*F] uint8 spikes (level-major, so a
    [C, H, W] input becomes [levels*C, H, W])."""
    q = np.rint(np.clip(x, 0.0, 1.0) * levels).astype(np.int64)
    frame = (q[:, None, :] > np.arange(levels)[None, :, None]).reshape(len(x), -1)
    return np.repeat(frame.astype(np.uint8)[:, None, :], timesteps, axis=1)


def encode(x: np.ndarray, encoding: dict) -> np.ndarray:
    """Encode [N, ...] intensities as an exported network's metadata says
    ({name, timesteps[, levels]})."""
    steps = int(encoding["timesteps"])
    flat = x.reshape(len(x), -1).astype(np.float32)
    if encoding.get("name", "rate") == "thermometer":
        return thermometer_encode(flat, steps, int(encoding["levels"]))
    return rate_encode(flat, steps)


def encoded_shape(shape: tuple[int, ...], encoding: dict) -> tuple[int, ...]:
    """The per-timestep input shape after encoding a sample of `shape`."""
    if encoding.get("name", "rate") != "thermometer":
        return tuple(shape)
    levels = int(encoding["levels"])
    return (levels * shape[0], *shape[1:]) if len(shape) == 3 else (levels * int(np.prod(shape)),)
