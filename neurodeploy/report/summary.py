"""report.json: what a deployment measured (accuracy, parity, events) and what it costs.

The counts are kept per layer and timestep, so `reprice` applies another energy preset to a
saved report without simulating again; simulate.json carries the same energy sections
(`energy_sections`), so it reprices the same way.
"""
from __future__ import annotations

import contextlib
import datetime
import json
from pathlib import Path

import numpy as np

from neurodeploy.parity import compare, compare_source   # the module, not api.parity
from neurodeploy.backends.float_mode import simulate_float
from neurodeploy.backends.record import SpikeRecord
from neurodeploy.energy import (accuracy_by_timestep, ann_baselines, count_events, dense_layers,
                                layer_table, load_preset, price)
from neurodeploy.energy.counting import GRADED_INPUT_NOTE, RESONATE_NOTE, count_messages
from neurodeploy.energy.neurobench import neurobench_metrics
from neurodeploy.energy.presets import Preset
from neurodeploy.energy.report_file import (PricedRecord, Record, Report, network_digest,
                                            read_report)
from neurodeploy.files import file_digest, versions
from neurodeploy.errors import UserError
from neurodeploy.neurons import IntNetwork
from neurodeploy.neurons.sigma_delta import SDNetwork
from neurodeploy.recipe import EnergyCfg
from neurodeploy.schema import written
from neurodeploy.report.plots import FIGURES, RECORD_FIGURES

DEFAULT_PRESET = EnergyCfg().preset   # what `run` prices with unless a recipe names another


def duration(us: float, micro: str = "µs") -> str:
    """A latency in the unit that reads: 950 µs, 1.58 ms, 2.1 s (not 1.58e+03 us)."""
    for unit, scale in (("s", 1e6), ("ms", 1e3)):
        if abs(us) >= scale:
            return f"{us / scale:.3g} {unit}"
    return f"{us:.3g} {micro}"


def report(net: IntNetwork, reference: SpikeRecord, deployed: SpikeRecord, labels: np.ndarray,
           preset_name: str, teacher_sizes: list[int] | None = None,
           extra: dict | None = None) -> dict:
    """report.json (energy.report_file.Report): accuracy, parity, counted events and their
    price, resources, baselines; `extra`: the caller's sections, declared by Report too.

    The counts (means per inference, per layer and timestep) are kept in the report, so
    `reprice` can apply another preset without simulating again.
    """
    par = compare(reference, deployed, labels)
    sections = energy_sections(net, deployed, labels, load_preset(preset_name), teacher_sizes)
    source = source_parity(net, deployed, labels)
    float_side = source.get("backends", [None])[0]          # whatever its record calls it
    return written(Report, {
        **(extra or {}),
        "samples": deployed.samples,
        "accuracy": {"student_torch": reference.accuracy(labels),
                     "student_deployed": deployed.accuracy(labels),   # on `backend`
                     "student_float": (source.get("accuracy") or {}).get(float_side),
                     **(extra or {}).get("accuracy", {})},
        "parity": {k: par[k] for k in ("spike_mismatches", "readout_voltage_mismatches",
                                       "prediction_agreement",
                                       "spike_mismatches_per_layer_timestep", "first_mismatch",
                                       "spikes_compared", "neuron_steps_compared",
                                       "backends")},
        "source_parity": source,
        "neurobench": neurobench_metrics(deployed, net, labels,
                                         np.asarray(sections["counts"]["synaptic_ops"])),
        "generated": generated(),
        "raster": {name: np.argwhere(s[0]).tolist()            # (t, neuron) of sample 0
                   for name, s in zip(deployed.layer_names, deployed.layers)},
        # a readout layer never spikes: it decides by its summed voltage, [T, classes] here
        **({"readout_voltage": deployed.readout[0].tolist()}
           if deployed.readout is not None else {}),
        **sections,
    })


def energy_sections(net: IntNetwork | SDNetwork, record: SpikeRecord, labels: np.ndarray | None,
                    preset: Preset, teacher_sizes: list[int] | None = None) -> dict:
    """The energy part of a record of `net`: what pricing reads (timesteps, layers, counts,
    accuracy_by_timestep, ann_baselines) and what it gives (`priced`). `run`'s report.json and
    `simulate`'s and `parity`'s JSON all come from here, so one record prices the same in
    each, and `reprice` reads them back. A sigma-delta network's graded messages are counted as
    spikes; its samples stream unreset, so it has no accuracy per timestep."""
    sigma_delta = isinstance(net, SDNetwork)
    if sigma_delta:
        counts, accuracy_by_t = count_messages(net, record.inputs, record.layers), None
    else:
        counts = count_events(record, net)
        accuracy_by_t = accuracy_by_timestep(record, labels)
    layers = layer_table(net, sparse=bool(record.info.get("sparse_fc_layer")))
    measured = {
        "timesteps": record.timesteps,
        "accuracy_by_timestep": accuracy_by_t,
        "layers": layers,
        "counts": {"layers": record.layer_names, "counted_from": record.backend,
                   **{k: v.tolist() for k, v in counts.items()},
                   **({"graded_inputs": GRADED_INPUT_NOTE}
                      if not sigma_delta and record.inputs.dtype != bool else {}),
                   **({"resonate_and_fire": RESONATE_NOTE}
                      if any(getattr(layer, "resonate", False) for layer in net.layers)
                      else {})},
        "ann_baselines": (
            ann_baselines("student architecture as", [
                {"macs": r["macs"], "weights": r["synapses"], "inputs": r["inputs"],
                 "outputs": r["neurons"]} for r in layers])
            + (ann_baselines("teacher", dense_layers(teacher_sizes)) if teacher_sizes else [])),
    }
    return {**measured, **priced(measured, preset)}


def source_parity(net: IntNetwork, deployed: SpikeRecord, labels: np.ndarray) -> dict:
    """The deployed record against the student's training mode (float backend) on the same
    inputs: prediction agreement, accuracy gap, per-layer spike counts; or why it cannot run."""
    try:
        source = simulate_float(net, deployed.inputs)
    except UserError as e:
        return {"skipped": str(e)}
    return compare_source(source, deployed, labels)


def record_summary(record: SpikeRecord, labels: np.ndarray, **extra) -> dict:
    """simulate.json (of `simulate` and `merge`): the record's accuracy, spikes per layer (and
    per timestep, for the page's figure), predictions and labels, with `extra` sections; a
    PricedRecord when they are the energy sections, else a Record (energy.report_file)."""
    per_step = {n: s.sum(axis=(0, 2)) for n, s in zip(record.layer_names, record.layers)}
    return written(PricedRecord if "counts" in extra else Record, {
        "backend": record.backend, "samples": record.samples, "timesteps": record.timesteps,
        "accuracy": record.accuracy(labels), **extra, "generated": generated(),
        "spikes_per_layer": {n: int(s.sum()) for n, s in per_step.items()},
        "spikes_per_layer_timestep": {   # mean per inference, for the page's figure
            n: (s / max(1, record.samples)).tolist() for n, s in per_step.items()},
        "predictions": record.predictions.tolist(), "labels": np.asarray(labels).tolist()})


def remove_reports(out_dir: Path, network_sha256: str | None = None) -> None:
    """Remove report.json, report.html and their figures from a run folder, unless report.json
    describes the network whose sha256 is given: a report never sits beside another network."""
    if network_sha256 is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if json.loads((out_dir / "report.json").read_text())["network"]["sha256"] \
                    == network_sha256:
                return
    figures = {*FIGURES, *(name for kind in RECORD_FIGURES.values() for name in kind)}
    for name in ("report.json", "report.html", *(f"{f}.png" for f in sorted(figures))):
        (out_dir / name).unlink(missing_ok=True)


def deployed_accuracy(report: dict) -> float:
    """The deployed student's accuracy in a report.json (`student_lava` before it was named
    for whichever backend ran it)."""
    acc = report["accuracy"]
    return acc["student_deployed"] if "student_deployed" in acc else acc["student_lava"]


def generated() -> dict:
    """When and with what a report was made (its provenance block shows it)."""
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": versions()}


def priced(result: dict, preset) -> dict:
    """The sections of a report that depend on the energy preset."""
    counts = {k: result["counts"][k] for k in ("synaptic_ops", "neuron_active",
                                                "neuron_inactive", "spikes")}
    out = price(counts, result["layers"], preset, result["accuracy_by_timestep"])
    out["energy"]["ann_baselines"] = result["ann_baselines"]
    return out


def reprice(report_path: str | Path, preset_name: str, network: str | Path | None = None) -> dict:
    """Apply another energy preset to a saved report.json or simulate.json (validated first);
    no simulation."""
    result = read_report(report_path)
    if network is not None:
        if not Path(network).is_file():
            raise UserError(f"{network}: no such network file")
        if file_digest(network) != network_digest(result):
            raise UserError(f"{report_path}: this record was made with a different network than "
                            f"{network} (sha256 differs); simulate {network} to get its record")
    return {**result, **priced(result, load_preset(preset_name))}
