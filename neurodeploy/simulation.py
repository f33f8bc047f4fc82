"""Running a network file: on one backend (`simulate`), on several compared spike for spike
(`parity`; a sigma-delta network message for message: `stream`), and the checks around a run:
options a file cannot do without, an output layer that never spiked, layers named as the
user's file names them."""
from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path

import nir
import numpy as np

from neurodeploy.artifacts import deployable
from neurodeploy.backends.float_mode import reset_sensitivity
from neurodeploy.backends.record import SpikeRecord, provenance
from neurodeploy.backends.registry import (BACKENDS, EXACT_BACKEND, SDNN_BACKENDS,
                                           backend as backend_named, listed)
from neurodeploy.data.npz import is_dataset_file
from neurodeploy.energy import load_preset
from neurodeploy.energy.presets import Preset
from neurodeploy.errors import NeurodeployWarning, UserError
from neurodeploy.files import file_digest
from neurodeploy.graph import UNITS, read_nir, reset_assumption
from neurodeploy.graph.importer import infer_dt
from neurodeploy.graph.nir_io import graph_metadata
from neurodeploy.neurons import IntNetwork
from neurodeploy.neurons.network import EXACT_BATCH
from neurodeploy.neurons.sigma_delta import SDNetwork, activity
from neurodeploy.parity import (compare, compare_reference, compare_source, message_mismatches,
                                read_reference)
from neurodeploy.preflight import check_backend, resolve_device
from neurodeploy.report.summary import DEFAULT_PRESET, energy_sections, generated


@dataclasses.dataclass(frozen=True)
class Execution:
    """How a network runs, whatever runs it: the options `simulate` and `parity` share, one
    object for the command line and the API. Checked when made (the device against this
    machine), so a mistake is one line before any work."""
    device: str = "cpu"              # of the torch, emulator and float backends: cpu, cuda:N
    timeout: float | None = None     # seconds before a Lava run is stopped
    progress: bool | None = False    # a bar, lines or nothing: see progress.py

    def __post_init__(self):
        object.__setattr__(self, "device", resolve_device(self.device))
        if self.timeout is not None and not 0 < self.timeout < float("inf"):
            raise UserError(f"timeout {self.timeout}: give a positive number of seconds "
                            "(--timeout S)")


def simulate(network: str | Path, spikes: np.ndarray, backend: str,
             progress: bool | None = True,
             timeout_s: float | None = None, device: str = "cpu", batch_size: int = EXACT_BATCH,
             input_shape: tuple[int, ...] | None = None, dt: float | None = None,
             input_bits: int | None = None) -> SpikeRecord:
    """Run input spikes [N, T, ...] through a netx file on one backend (`float`: any network
    file, in the semantics it was trained in; `dt` for a foreign NIR graph; `input_bits` N:
    the inputs are graded events of N bits, netx's input_message_bits; `progress`: see
    progress.py)."""
    chosen = backend_named(backend)
    device = resolve_device(device)
    return chosen.run(network, spikes, progress, timeout_s, device, batch_size, input_shape, dt,
                      input_bits)


def user_names(record: SpikeRecord, net: IntNetwork) -> SpikeRecord:
    """`record` with the layer names of `net` as read from the user's file (a NIR graph's node
    names): the netx file a graph is lowered to numbers its layers instead, and every verb
    must name a layer as `inspect` does."""
    if len(record.layer_names) == len(net.layers):
        record.layer_names = [layer.name for layer in net.layers]
    return record


def silent_output(records: list[SpikeRecord], source: str | Path) -> list[str]:
    """The result's `warnings`, each also warned (NeurodeployWarning): why the accuracy of
    these records says nothing, when their output layer never spiked (every prediction is then
    class 0; often a wrong --dt, threshold or input scale)."""
    silent = [r for r in records if r.readout is None and r.samples and not r.layers[-1].any()]
    if not silent:
        return []
    r = silent[0]
    message = (f"{source}: output layer '{r.layer_names[-1]}' never spiked in {r.samples} "
               f"samples x {r.timesteps} steps on {', '.join(s.label for s in silent)}, so "
               "every prediction is class 0 and the accuracy says nothing about the network; "
               f"check --dt, the thresholds and the input scale (`neurodeploy inspect {source}`)")
    warnings.warn(message, NeurodeployWarning, stacklevel=2)
    return [message]


def missing_options(network: str | Path, meta: dict | None, dt: float | None,
                    data: str | None, timesteps: int | None,
                    graph: nir.NIRGraph | None = None) -> None:
    """Refuse, in one message, every option a network cannot do without: --dt for a foreign
    NIR graph that does not record its time step, --data when its metadata names no dataset,
    --timesteps when nothing says how many steps to encode. `meta`: the network's metadata
    (None: from the .nir graph, `graph` or read here, before it is lowered, which needs dt)."""
    missing, path = [], Path(network)
    if meta is None:
        graph = read_nir(path) if graph is None else graph
        meta = graph_metadata(graph, str(path))
        units = (graph.metadata or {}).get("units")
        if dt is None and (units.decode(errors="replace") if isinstance(units, bytes)
                           else units) != UNITS:
            try:
                infer_dt(graph, None, str(path))
            except UserError as e:
                if "cannot be inferred" not in str(e):
                    raise               # a malformed graph: that error is the one to fix
                missing.append("--dt SECONDS (its time step; Norse 1.1.0 graphs: 1e-6)")
    if data is None and not meta.get("dataset"):
        missing.append("--data DATA (a dataset name, or a .npz with x and y)")
    spike_trains = data is not None and data.endswith(".npz") and not is_dataset_file(data)
    if timesteps is None and not meta.get("timesteps") and not spike_trains:
        missing.append("--timesteps N (steps per sample; not needed for a .npz of spike trains)")
    if missing:
        raise UserError(f"{path}: the file records too little to run it; pass "
                        f"{'; '.join(missing)}")


def parity(network: str | Path, inputs, backends: list[str], run: Execution = Execution(),
           dt: float | None = None, input_shape: tuple[int, ...] | None = None,
           reference: str | Path | None = None,
           input_bits: int | None = None) -> tuple[dict, list[SpikeRecord]]:
    """Run the same input spikes through several backends of one network file and compare:
    the deployed backends spike for spike against the first, `float` (the model as trained,
    read from the user's own file, so a foreign NIR graph keeps its float semantics) against
    each deployed one, and every backend against `reference` (another framework's predictions
    and output counts, a .npz). `inputs(metadata, net) -> (spikes, labels)` picks the inputs
    once the network is open, so it is read once. Returns parity.json's content and the
    records."""
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise UserError(f"--backends: unknown backend {unknown[0]!r}; choose from "
                        f"{', '.join(BACKENDS)}")
    twice = [b for i, b in enumerate(backends) if b in backends[:i]]
    if twice:            # its records would share one name, and one key in parity.json
        raise UserError(f"--backends: {twice[0]} is given twice; name each backend once")
    own = {b: backend_named(b).reads == "own" for b in backends}   # float: the file as trained
    if len(backends) < 2 and not reference:
        raise UserError("--backends needs at least two backends (e.g. torch,emulator,lava or "
                        "float,torch), or one with --reference")
    for backend in backends:
        check_backend(backend)
    with deployable(network, dt, input_shape) as (lowered, meta, _, net):
        spikes, labels = inputs(meta, net)
        if isinstance(net, SDNetwork):
            if reference:
                raise UserError(f"--reference {reference}: a sigma-delta network makes no "
                                "predictions to compare; drop it")
            return stream(network, net, spikes, backends, load_preset(DEFAULT_PRESET), run)
        ref = read_reference(reference, len(labels), net.layers[-1].size) if reference else None
        records = [user_names(simulate(network if own[b] else lowered, spikes, b,
                                       run.progress, run.timeout, run.device,
                                       input_shape=input_shape,
                                       dt=dt, input_bits=input_bits), net)
                   for b in backends]
    silent = silent_output(records, network)
    reset = reset_assumption(network)                    # None unless a foreign NIR graph
    floats = [r for b, r in zip(backends, records) if own[b]]
    if reset and floats:                                 # how much the assumption matters
        reset = {"note": reset, **reset_sensitivity(network, spikes, floats[0], dt,
                                                    run.device)}
    deployed = [r for b, r in zip(backends, records) if not own[b]]
    pairs = [compare(deployed[0], other, labels) for other in deployed[1:]]
    result = {"network": str(network), "samples": len(labels),
              "provenance": provenance(network, spikes, labels, ",".join(backends), dt=dt,
                                       input_shape=input_shape, input_bits=input_bits),
              "accuracy": {r.backend: r.accuracy(labels) for r in records},
              "comparisons": pairs,
              "source": [compare_source(f, d, labels) for f in floats for d in deployed],
              "reference": ([compare_reference(ref, r, labels, Path(reference).name)
                             for r in records] if ref is not None else []),
              "spike_mismatches": sum(p["spike_mismatches"] for p in pairs),
              "readout_voltage_mismatches": sum(p["readout_voltage_mismatches"] or 0
                                                for p in pairs),
              "warnings": silent, "reset": reset, "generated": generated()}
    if ref is not None:
        result["accuracy"][Path(reference).name] = float((ref["predictions"] == labels).mean())
    return result, records


def stream(network: str | Path, net: SDNetwork, frames: np.ndarray, backends: list[str],
           prices: Preset, run: Execution = Execution()) -> tuple[dict, list[SpikeRecord]]:
    """Integer frames through a sigma-delta network on each backend: the samples stream back
    to back through one state (Lava cannot reset sigma-delta neurons), every backend is
    compared message for message with the first, and the first one's messages are counted and
    priced. Returns simulate.json's or parity.json's content (`comparisons` and
    `message_mismatches` when there is more than one backend) and the records."""
    unknown = [b for b in backends if b not in SDNN_BACKENDS]
    if unknown:
        raise UserError(f"{network}: a sigma-delta network runs on the backends "
                        f"{listed(SDNN_BACKENDS, phrases=True)}, not {unknown[0]!r}")
    records = [simulate(net if b == EXACT_BACKEND else network, frames, b, run.progress,
                        run.timeout)
               for b in backends]
    first = records[0]
    steps = int(frames.shape[1])
    result = {"network": str(network), "kind": "sigma-delta", "samples": len(frames),
              "timesteps": steps,
              "provenance": {"network_sha256": file_digest(network),
                             "inputs_sha256": hashlib.sha256(
                                 repr(frames.shape).encode()
                                 + np.ascontiguousarray(frames, dtype=np.int64).tobytes()
                             ).hexdigest(),
                             "backends": list(backends), "timesteps": steps,
                             "samples": len(frames)},
              "warnings": list(net.notes),
              "activity": activity(net, first.layers),
              "messages_per_layer": {name: int(np.count_nonzero(m))
                                     for name, m in zip(first.layer_names, first.layers)},
              **energy_sections(net, first, None, prices)}
    pairs = {other: message_mismatches(first.layers, r.layers)
             for other, r in zip(backends[1:], records[1:])}
    if pairs:                     # each backend against the first, message for message
        result["comparisons"] = {f"{backends[0]}-{other}": m for other, m in pairs.items()}
        result["message_mismatches"] = {
            "total": sum(m["total"] for m in pairs.values()),
            "compared": sum(m["compared"] for m in pairs.values()),
            "first": next((m["first"] for m in pairs.values() if m["first"]), None)}
    return result, records
