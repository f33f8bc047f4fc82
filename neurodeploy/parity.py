"""Parity's two questions: do two backends compute the same spikes (a sigma-delta network's
graded messages: `message_mismatches`), layer by layer and step by step (deployed vs deployed:
exact equality), and how far is the deployed network from the model as trained or from another
framework's own results (float vs deployed: counts and predictions)?"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.errors import UserError
from neurodeploy.schema import OPEN, Generated, Section


class Parity(BaseModel):
    """parity.json, as `parity` writes it: simulation.parity computes it, api.parity writes
    the dump of this model (schema.written) of it."""
    model_config = OPEN
    network: str                                  # the file compared, as given
    samples: int
    provenance: Section                           # backends.record.provenance
    accuracy: dict[str, float]                    # per backend (and --reference file)
    comparisons: list[Section]                    # compare: each deployed backend vs the first
    source: list[Section]                         # compare_source: float vs each deployed one
    reference: list[Section]                      # compare_reference: each vs --reference
    spike_mismatches: int                         # over the comparisons: 0 is exact parity
    readout_voltage_mismatches: int
    warnings: list[str]
    reset: str | Section | None                   # a foreign graph's reset assumption
    generated: Generated


def message_mismatches(a: list[np.ndarray], b: list[np.ndarray]) -> dict:
    """Parity of two runs' graded messages (each per layer [N, T, n]): mismatching messages per
    layer and timestep, their total, and the first one as (layer, sample, step, neuron)."""
    if [x.shape for x in a] != [y.shape for y in b]:
        raise ValueError(f"the runs differ in shape: {[x.shape for x in a]} vs "
                         f"{[y.shape for y in b]}")
    diff = [np.asarray(x) != np.asarray(y) for x, y in zip(a, b)]
    first = next(((i, *map(int, np.argwhere(d)[0])) for i, d in enumerate(diff) if d.any()), None)
    per = [d.sum(axis=(0, 2)).astype(int).tolist() for d in diff]
    return {"per_layer_step": per, "total": int(sum(map(sum, per))),
            "compared": int(sum(d.size for d in diff)), "first": first}


def compare(a: SpikeRecord, b: SpikeRecord, labels: np.ndarray | None = None) -> dict:
    if a.inputs.shape != b.inputs.shape or not np.array_equal(a.inputs, b.inputs):
        raise ValueError("parity needs both backends to see the same input spikes")
    per_layer = [(x != y).sum(axis=(0, 2)) for x, y in zip(a.layers, b.layers)]   # [T] each
    first = None
    for name, x, y in zip(a.layer_names, a.layers, b.layers):
        diff = np.argwhere(x != y)
        if len(diff):
            n, t, i = (int(v) for v in diff[0])
            first = {"layer": name, "sample": n, "t": t, "neuron": i,
                     a.backend: bool(x[n, t, i]), b.backend: bool(y[n, t, i])}
            break
    readout = None
    if a.readout is not None or b.readout is not None:
        readout = (int((a.readout != b.readout).sum())
                   if a.readout is not None and b.readout is not None else None)
    compared = int(sum(x.size for x in a.layers))
    result = {
        "backends": [a.backend, b.backend],
        "readout_voltage_mismatches": readout,
        "spike_mismatches": int(sum(m.sum() for m in per_layer)),
        "spike_mismatches_per_layer_timestep": {
            name: [int(v) for v in m] for name, m in zip(a.layer_names, per_layer)},
        "first_mismatch": first,
        "prediction_agreement": float((a.predictions == b.predictions).mean()),
        "spikes_compared": compared,   # kept for older readers
        "neuron_steps_compared": compared,
    }
    if labels is not None:
        result["accuracy"] = {a.backend: a.accuracy(labels), b.backend: b.accuracy(labels)}
    return result


def compare_source(source: SpikeRecord, deployed: SpikeRecord,
                   labels: np.ndarray | None = None) -> dict:
    """How far the deployed network is from the model as trained (the float backend).

    Float and exact legitimately differ (sub-integer rounding, wrap, saturation), so exact
    spike equality is not the question: per layer, spike counts per inference on both sides
    and their difference, the share of neuron-steps that differ, and the first layer where
    anything differs (where divergence starts; later layers inherit it)."""
    if source.inputs.shape != deployed.inputs.shape \
            or not np.array_equal(source.inputs, deployed.inputs):
        raise ValueError("parity needs both backends to see the same input spikes")
    n = source.samples
    layers, start = [], None
    for name, x, y in zip(deployed.layer_names, source.layers, deployed.layers):
        differ = int((x != y).sum())
        a, b = x.sum() / n, y.sum() / n
        per_sample = np.abs(x.sum(axis=1).astype(np.int64) - y.sum(axis=1)).sum(axis=1)
        layers.append({"layer": name, "float_spikes_per_inference": float(a),
                       "deployed_spikes_per_inference": float(b),
                       "count_difference_per_inference": float(b - a),
                       "relative_count_difference": float((b - a) / a) if a else None,
                       "abs_count_difference_per_inference": float(per_sample.mean()),
                       "neuron_steps_differing": differ,
                       "neuron_steps_differing_share": differ / x.size if x.size else 0.0})
        if start is None and differ:
            start = name
    result = {
        "backends": [source.backend, deployed.backend],
        "float_model": source.info.get("mode"),      # what the float side computed
        "prediction_agreement": float((source.predictions == deployed.predictions).mean()),
        "divergence_starts_at": start,
        "layers": layers,
        "neuron_steps_compared": int(sum(x.size for x in deployed.layers)),
    }
    if source.readout is not None and deployed.readout is not None:
        diff = np.abs(source.readout - deployed.readout).mean()
        scale = np.abs(deployed.readout).mean()
        result["readout_voltage_relative_difference"] = float(diff / scale) if scale else None
    if labels is not None:
        acc_s, acc_d = source.accuracy(labels), deployed.accuracy(labels)
        result["accuracy"] = {source.backend: acc_s, deployed.backend: acc_d}
        result["gap"] = acc_d - acc_s      # deployed minus float
    return result


def read_reference(path: str | Path, samples: int, classes: int) -> dict[str, np.ndarray]:
    """Another framework's own results for the same inputs: `predictions` [N] and/or `counts`
    [N, classes] in a .npz, validated (shape, finiteness, length) with one-line errors."""
    path = Path(path)
    fix = "save it with np.savez(path, predictions=..., counts=...)"
    if not path.is_file():
        raise UserError(f"{path}: no such reference file; {fix}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("predictions", "counts") if k in z.files}
    except Exception as e:      # not a zip, truncated, pickled objects, ...
        raise UserError(f"{path}: not a readable .npz ({type(e).__name__}); {fix}") from None
    if not arrays:
        raise UserError(f"{path}: holds neither 'predictions' [N] nor 'counts' [N, C]; {fix}")
    for key, arr in arrays.items():
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
            raise UserError(f"{path}: field '{key}' holds {arr.dtype}, not numbers; {fix}")
        if not np.isfinite(arr).all():
            raise UserError(f"{path}: field '{key}' holds NaN or infinite values; store the "
                            "framework's finite outputs")
        if len(arr) != samples:
            raise UserError(f"{path}: field '{key}' has {len(arr)} samples, this run has "
                            f"{samples}; give one row per input sample, in the same order")
    pred = arrays.get("predictions")
    if pred is not None and (pred.ndim != 1 or not np.issubdtype(pred.dtype, np.integer)
                             or pred.min() < 0 or pred.max() >= classes):
        raise UserError(f"{path}: field 'predictions' must be [N] integer classes in "
                        f"0..{classes - 1}, got {pred.dtype} {list(pred.shape)}; store argmax "
                        "indices")
    counts = arrays.get("counts")
    if counts is not None and counts.shape != (samples, classes):
        raise UserError(f"{path}: field 'counts' has shape {list(counts.shape)}, expected "
                        f"[{samples}, {classes}] (samples x classes)")
    if pred is None:
        arrays["predictions"] = counts.argmax(axis=1)
    return arrays


def compare_reference(reference: dict[str, np.ndarray], record: SpikeRecord,
                      labels: np.ndarray | None = None, name: str = "reference") -> dict:
    """A record against another framework's predictions (and output spike counts)."""
    pred = reference["predictions"]
    result = {"backends": [name, record.backend],
              "prediction_agreement": float((pred == record.predictions).mean())}
    if labels is not None:
        result["accuracy"] = {name: float((pred == labels).mean()),
                              record.backend: record.accuracy(labels)}
        result["gap"] = result["accuracy"][record.backend] - result["accuracy"][name]
    if "counts" in reference and record.readout is None:
        diff = np.abs(reference["counts"] - record.counts)
        result["output_counts"] = {
            "reference_per_inference": float(reference["counts"].sum(axis=1).mean()),
            "record_per_inference": float(record.counts.sum(axis=1).mean()),
            "abs_difference_per_inference": float(diff.sum(axis=1).mean()),
            "samples_identical": float((diff.sum(axis=1) == 0).mean())}
    return result
