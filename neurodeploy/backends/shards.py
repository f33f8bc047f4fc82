"""Whole test sets through slow backends: resumable chunks, shards for job arrays, merging.

A run is split into chunks of samples; each finished chunk is saved as a bit-packed record
(with its sample indices and labels) before the next starts, so a killed or timed-out run
resumes where it stopped. `--shard i/n` takes the i-th of n equal slices of the samples, so a
cluster job array can split a test set; `merge` joins the chunk records of all shards and checks
that every sample is present exactly once.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.errors import UserError


def parse_shard(spec: str | None) -> tuple[int, int]:
    if spec is None:
        return 0, 1
    try:
        i, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise UserError(f"--shard {spec!r}: expected i/n, e.g. 0/4 for the first of four") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {spec}: i must be in 0..{n - 1} for n = {n}")
    return i, n


def shard_range(samples: int, shard: tuple[int, int]) -> tuple[int, int]:
    i, n = shard
    return samples * i // n, samples * (i + 1) // n


def run_chunks(simulate: Callable[..., SpikeRecord], spikes: np.ndarray, labels: np.ndarray,
               out_dir: str | Path, chunk: int = 1000, shard: tuple[int, int] = (0, 1),
               timeout_s: float | None = None, progress: bool = True) -> tuple[SpikeRecord, np.ndarray]:
    """Run this shard's samples chunk by chunk, reusing chunks already on disk."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lo, hi = shard_range(len(spikes), shard)
    started = time.monotonic()
    records, indices = [], []
    bounds = [(s, min(s + chunk, hi)) for s in range(lo, hi, chunk)]
    for start, stop in tqdm(bounds, desc="chunks", unit="chunk", disable=not progress,
                            leave=False):
        path = out_dir / f"chunk-{start:07d}-{stop:07d}.npz"
        if not path.exists():
            remaining = None
            if timeout_s is not None:
                remaining = timeout_s - (time.monotonic() - started)
            try:
                if remaining is not None and remaining <= 0:
                    raise UserError("time is up")
                record = simulate(spikes[start:stop], timeout_s=remaining)
            except UserError as e:
                done = sum(len(r.layers[0]) for r in records)
                raise UserError(f"{e}; {done} samples of this shard are kept in {out_dir}: run "
                                "the same command again to resume") from None
            record.save(path, indices=np.arange(start, stop), labels=labels[start:stop],
                        total=np.array(len(spikes)))
        record, extra = SpikeRecord.load(path)
        records.append(record)
        indices.append(extra["indices"])
    return _concat(records), np.concatenate(indices) if indices else np.zeros(0, int)


def _concat(records: list[SpikeRecord]) -> SpikeRecord:
    first = records[0]
    return SpikeRecord(first.backend, np.concatenate([r.inputs for r in records]),
                       [np.concatenate([r.layers[i] for r in records])
                        for i in range(len(first.layers))], first.layer_names, first.info)


def merge(dirs: list[str | Path]) -> tuple[SpikeRecord, np.ndarray, np.ndarray]:
    """Join the chunk records found in `dirs`, in sample order; refuse gaps and overlaps."""
    files = sorted(f for d in dirs for f in Path(d).glob("chunk-*.npz"))
    if not files:
        raise UserError(f"no chunk-*.npz records in {', '.join(map(str, dirs))}; run "
                        "`neurodeploy simulate ... --out DIR` first")
    loaded = [SpikeRecord.load(f) for f in files]
    indices = np.concatenate([extra["indices"] for _, extra in loaded])
    labels = np.concatenate([extra["labels"] for _, extra in loaded])
    order = np.argsort(indices, kind="stable")
    indices = indices[order]
    if len(np.unique(indices)) != len(indices):
        raise UserError("the records overlap: some samples appear in more than one chunk; "
                        "merge each shard's directory once")
    total = int(loaded[0][1]["total"])
    if len(indices) != total:
        missing = sorted(set(range(total)) - set(indices.tolist()))[:5]
        raise UserError(f"the records have gaps (e.g. samples {missing}); run the missing "
                        "shards first")
    record = _concat([r for r, _ in loaded])
    record.inputs = record.inputs[order]
    record.layers = [layer[order] for layer in record.layers]
    return record, indices, labels[order]
