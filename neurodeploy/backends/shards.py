"""Whole test sets through slow backends: resumable chunks, shards for job arrays, merging.

A run is split into chunks of samples; each finished chunk is saved as a bit-packed record
(with its sample indices and labels) before the next starts, so a killed or timed-out run
resumes where it stopped. `--shard i/n` takes the i-th of n equal slices of the samples, so a
cluster job array can split a test set; `merge` joins the chunk records of all shards and checks
that every sample is present exactly once.

Every chunk carries its provenance (network hash, inputs hash, backend, T): a directory holding
chunks of another network, other inputs, another backend or another T is refused, never resumed,
and `merge` refuses to join chunks that disagree.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np

from neurodeploy.backends.record import SpikeRecord, inputs_digest, provenance_difference
from neurodeploy.errors import UserError
from neurodeploy.progress import Progress

log = logging.getLogger(__name__)


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
               timeout_s: float | None = None, progress: bool | None = True,
               provenance: dict | None = None) -> tuple[SpikeRecord, np.ndarray]:
    """Run this shard's samples chunk by chunk, reusing chunks already on disk (and saying
    so). `progress` (see progress.py): as lines, one per finished chunk with the rate and the
    time left, so a long run in a log is never silent.

    `provenance` (see record.provenance) is stored in every chunk; chunks on disk with any other
    provenance are refused. Without it, the inputs' hash alone is checked."""
    if chunk < 1:
        raise UserError(f"--chunk {chunk}: a chunk holds at least one sample")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prov = provenance or {"inputs_sha256": inputs_digest(spikes, labels),
                          "samples": int(len(spikes))}
    existing = sorted(out_dir.glob("chunk-*.npz"))
    for path in existing:
        if why := provenance_difference(prov, SpikeRecord.read_info(path).get("provenance")):
            raise UserError(f"{path}: this chunk belongs to another run ({why}); refusing to mix "
                            f"results: choose another --out or delete {out_dir}")
    lo, hi = shard_range(len(spikes), shard)
    bounds = [(s, min(s + chunk, hi)) for s in range(lo, hi, chunk)]
    paths = [out_dir / f"chunk-{start:07d}-{stop:07d}.npz" for start, stop in bounds]
    if reused := sum(p.exists() for p in paths):
        log.info(f"resuming: {reused} of {len(paths)} chunks already in {out_dir}")
    todo = sum(stop - start for (start, stop), p in zip(bounds, paths) if not p.exists())
    shown = Progress("chunks", todo, "sample", progress, every=0)
    if todo:
        shown.say(f"simulating {todo} samples in chunks of up to {chunk}; a line after each "
                  "chunk")
    records, indices = [], []
    simulated, started = 0, time.monotonic()
    with shown:
        for number, ((start, stop), path) in enumerate(zip(bounds, paths), 1):
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
                    raise UserError(f"{e}; {done} samples of this shard are kept in {out_dir}: "
                                    "run the same command again to resume") from None
                record.info = {**record.info, "provenance": prov}
                record.save(path, indices=np.arange(start, stop), labels=labels[start:stop],
                            total=np.array(len(spikes)))
                simulated += stop - start
                shown.update(simulated, head=f"chunk {number}/{len(paths)} done (samples "
                                             f"{start}..{stop - 1}): {simulated}/{todo} "
                                             "simulated")
            record, extra = SpikeRecord.load(path)
            _check_chunk(path, record, extra, start, stop)
            records.append(record)
            indices.append(extra["indices"])
    if not records:
        raise UserError(f"shard {shard[0]}/{shard[1]} of {len(spikes)} samples is empty; use "
                        "fewer shards")
    return _concat(records, paths), np.concatenate(indices)


def _check_chunk(path: Path, record: SpikeRecord, extra: dict, start: int | None = None,
                 stop: int | None = None) -> None:
    """A chunk's side arrays agree with its record (and with its file name when given):
    integer indices within `total`, one label per sample within the output layer's classes."""
    idx, lab, total = (np.asarray(extra.get(k)) if k in extra else None
                       for k in ("indices", "labels", "total"))
    integer = lambda a: a is not None and a.dtype != bool and np.issubdtype(a.dtype, np.integer)  # noqa
    ok = (integer(idx) and integer(lab) and integer(total) and idx.ndim == lab.ndim == 1
          and total.size == 1 and len(idx) == len(lab) == record.samples
          and (len(idx) == 0 or (idx.min() >= 0 and idx.max() < int(total) and lab.min() >= 0
                                 and lab.max() < record.layers[-1].shape[-1])))
    if ok and start is not None:
        ok = np.array_equal(idx, np.arange(start, stop))
    if not ok:
        raise UserError(f"{path}: its indices/labels/total do not match its spikes; delete the "
                        "file and simulate again")


def _concat(records: list[SpikeRecord], paths: list[Path]) -> SpikeRecord:
    """One record of several chunks' samples (readout voltages included: without them a
    readout network's predictions would silently fall back to its never-firing spikes)."""
    first = records[0]
    for path, r in zip(paths, records):
        if (r.readout is None) != (first.readout is None):
            raise UserError(f"{path}: {'records no' if r.readout is None else 'records'} readout "
                            f"voltages, unlike {paths[0]}: the chunks come from different "
                            f"networks; delete {path.parent} and simulate again")
    readout = (None if first.readout is None
               else np.concatenate([r.readout for r in records]))
    return SpikeRecord(first.backend, np.concatenate([r.inputs for r in records]),
                       [np.concatenate([r.layers[i] for r in records])
                        for i in range(len(first.layers))], first.layer_names, first.info,
                       readout, first.detail)


def merge(dirs: list[str | Path]) -> tuple[SpikeRecord, np.ndarray, np.ndarray]:
    """Join the chunk records found in `dirs` (chunks/ folders, or the `simulate --out` folders
    holding them), in sample order; refuse gaps, overlaps and chunks of different provenance
    (network, inputs, backend, T)."""
    for d in dirs:
        if not Path(d).is_dir():
            raise UserError(f"{d}: no such directory of chunks; pass the --out directories "
                            "of `neurodeploy simulate --backend lava --out DIR` (or their "
                            "chunks/)")
    files = sorted(f for d in dirs for f in (sorted(Path(d).glob("chunk-*.npz"))
                                             or Path(d, "chunks").glob("chunk-*.npz")))
    if not files:
        raise UserError(f"no chunk-*.npz records in {', '.join(map(str, dirs))} (nor in their "
                        "chunks/); run `neurodeploy simulate ... --backend lava --out DIR` first")
    loaded = [SpikeRecord.load(f) for f in files]
    first = loaded[0][0].info.get("provenance")
    for f, (record, extra) in zip(files, loaded):
        _check_chunk(f, record, extra)
        if why := provenance_difference(first, record.info.get("provenance")):
            raise UserError(f"{f}: this chunk comes from another run than {files[0]} ({why}); "
                            "merge only the shards of one simulation")
        if record.layer_names != loaded[0][0].layer_names or \
                [s.shape[1:] for s in record.layers] != [s.shape[1:] for s in loaded[0][0].layers]:
            raise UserError(f"{f}: its layers differ from those of {files[0]}; merge only the "
                            "shards of one simulation")
    indices = np.concatenate([extra["indices"] for _, extra in loaded])
    labels = np.concatenate([extra["labels"] for _, extra in loaded])
    order = np.argsort(indices, kind="stable")
    indices = indices[order]
    owners = np.concatenate([np.full(len(extra["indices"]), i) for i, (_, extra)
                             in enumerate(loaded)])[order]
    if len(np.unique(indices)) != len(indices):
        twice = int(indices[np.flatnonzero(np.diff(indices) == 0)[0]])
        first, second = (files[i] for i in owners[indices == twice][:2])
        raise UserError(f"{second}: sample {twice} is also in {first}; the records overlap: "
                        "merge each shard's directory once")
    totals = {int(extra["total"]) for _, extra in loaded}
    if len(totals) != 1:
        raise UserError(f"{', '.join(map(str, dirs))}: the chunks disagree on the number of "
                        f"samples ({sorted(totals)}); merge only the shards of one simulation")
    total = totals.pop()
    if len(indices) != total:
        missing = sorted(set(range(total)) - set(indices.tolist()))[:5]
        raise UserError(f"{', '.join(map(str, dirs))}: the records have gaps (e.g. samples "
                        f"{missing}); run the missing shards first")
    record = _concat([r for r, _ in loaded], files)
    record.inputs = record.inputs[order]
    record.layers = [layer[order] for layer in record.layers]
    if record.readout is not None:
        record.readout = record.readout[order]
    return record, indices, labels[order]
