"""The verbs as functions: what the `neurodeploy` command runs, taking files or in-memory
objects (a recipe dict, a trained nn.Module teacher, a torch Dataset, a SpikingNet), with the
same one-line `UserError`s. The command line only parses arguments and prints what these return.

    from neurodeploy import api
    ckpt = api.distill({"name": "mine", "distill": {"epochs": 1}}, "runs/mine",
                       teacher="teacher.pt", data="data.npz")
    api.export(ckpt, "runs/mine")
    api.simulate("runs/mine/network.net", backend="lava", samples=5)["accuracy"]
    api.parity("runs/mine/network.net", backends=("torch", "lava"), samples=5)

`simulate` and `parity` write their files only when given `out` (a folder, or True: the one
the command line picks by default), `energy` when given a folder; each returns what it writes
(with the records, and `wrote`: the paths).

Nothing here prints (see neurodeploy/progress.py): a result to distrust is warned through
`warnings` (NeurodeployWarning), progress and notices (a reused checkpoint, resumed chunks)
are logged under the logger "neurodeploy". `progress` on the long verbs: True a tqdm bar,
False lines logged at INFO, None nothing.
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
from torch import nn

import neurodeploy.artifacts as artifacts
import neurodeploy.simulation as simulation
from neurodeploy.simulation import Execution
from neurodeploy.backends.record import provenance
from neurodeploy.backends.registry import (BACKENDS, DEFAULT_BACKEND, EXACT_BACKEND,
                                           PARITY_BACKENDS)
from neurodeploy.backends.shards import merge as merge_chunks, parse_shard, run_chunks, shard_range
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.checkpoint import save_checkpoint, student_recipe
from neurodeploy.data.datasets import dataset_of, input_source, save_dataset
from neurodeploy.distill import explore as exploring
from neurodeploy.distill import run as distilling
from neurodeploy.distill import tune as tuning
from neurodeploy.distill.tune import TuneOptions
from neurodeploy.energy import load_preset
from neurodeploy.energy.report_file import Priced, SigmaDeltaRecord
from neurodeploy.errors import UserError
from neurodeploy.files import writable_dir, write_json
from neurodeploy.graph import read_nir, reset_assumption
from neurodeploy.inputs import check_input_bits, encoded_test_split, load_frames, load_inputs
from neurodeploy.netx import read_netx
from neurodeploy.neurons import SpikingNet
from neurodeploy.neurons.sigma_delta import SDNetwork
from neurodeploy.parity import Parity
from neurodeploy.preflight import check_backend, default_out, output_dir, resolve_device
from neurodeploy.recipe import Recipe, load_recipe, override, recipe_from_dict
from neurodeploy.report import write_html, write_record_html
from neurodeploy.report.summary import (DEFAULT_PRESET, energy_sections, record_summary, report,
                                        reprice)
from neurodeploy.schema import written

__all__ = ["Execution", "distill", "energy", "explore", "export", "inspect", "merge", "parity",
           "report", "run", "simulate", "tune"]


def _recipe(recipe: Recipe | dict | str | Path | None, overrides: dict | None = None,
            data: str | Path | None = None, teacher: str | Path | None = None) -> Recipe:
    """A validated Recipe from a Recipe, a dict, a models/ name or a YAML path, with a dataset
    file and a teacher file (absolute paths) put in place of the recipe's own."""
    if isinstance(recipe, Recipe):
        spec, where = recipe.to_dict(), f"recipe {recipe.name}"
    elif isinstance(recipe, dict) or recipe is None:
        spec, where = dict(recipe or {}), "recipe"
    else:
        loaded = load_recipe(str(recipe), overrides)
        if data is None and teacher is None:
            return loaded
        spec, where, overrides = loaded.to_dict(), str(recipe), None
    if overrides:
        spec = override(spec, overrides, where)
    if data is not None:
        spec["dataset"] = {"split_seed": (spec.get("dataset") or {}).get("split_seed", 0),
                           "file": str(Path(data).resolve())}
    if teacher is not None:
        spec["teacher"] = {**(spec.get("teacher") or {}), "file": str(Path(teacher).resolve())}
    return recipe_from_dict(spec, where)


def distill(recipe: Recipe | dict | str | Path | None, out: str | Path | None = None,
            teacher: nn.Module | str | Path | None = None, data=None,
            overrides: dict | None = None, progress: bool | None = False,
            fresh: bool = False, device: str | None = None, *,
            place: str = "another `out`") -> Path:
    """`neurodeploy distill`: distill the recipe's student into out/checkpoint.pt (returned;
    `out` by default runs/<recipe name>).

    `recipe`: a dict of recipe sections, a Recipe, a models/ name or a YAML path.
    `teacher`: a trained nn.Module, or a TorchScript / torch.export file (else the recipe's
    teacher). `data`: a dataset .npz path, or a torch Dataset / DataLoader / (train, test) pair
    / {train, test[, val]} dict, materialized as out/data.npz so export and every backend read
    the same fixed splits (its sha256 goes into the checkpoint). A checkpoint.pt already in
    `out` is reused when the same recipe made it from the same data and teacher file, another
    recipe's is refused unless `fresh` (see distill.run.distill; `place` names the option that
    moves the run elsewhere in that message). `device`: where to train, e.g. "cpu" or "cuda"
    (default: CUDA when available)."""
    device = resolve_device(device)       # before `out` or data.npz is written
    module = teacher if isinstance(teacher, nn.Module) else None
    parsed = _recipe(recipe, overrides, None, None if module is not None else teacher)
    with output_dir(out or Path("runs") / parsed.name) as out:   # none left empty on failure
        if data is not None:
            if not isinstance(data, (str, Path)):
                data = save_dataset(data, out / "data.npz", parsed.dataset.split_seed)
            parsed = _recipe(parsed, data=data)
        return distilling.distill(parsed, out, progress, teacher_model=module, fresh=fresh,
                                  device=device, place=place)


def export(network: str | Path | SpikingNet, out: str | Path | None = None,
           recipe: Recipe | dict | str | Path | None = None, data: str | Path | None = None,
           fresh: bool = False, timesteps: int | None = None, dt: float | None = None) -> dict:
    """`neurodeploy export`: a checkpoint.pt, a SpikingNet built in Python, or a NIR graph
    trained elsewhere (lowered as it is: `tune` recovers what rounding costs) to
    out/student.nir, network.net and manifest.json; returns the manifest.

    A NIR graph needs `timesteps` (T, the steps per sample netx resets after) and, where the
    graph does not record it, `dt`; `out` defaults to runs/export/<graph>-<sha8>.

    For a SpikingNet, `recipe` supplies the encoding and dataset (default: the digits recipe's)
    and `data` a dataset .npz to use instead; the net is saved as out/checkpoint.pt first, so
    the export is the same as a distilled student's. A checkpoint.pt already in `out` (another
    run's) is never overwritten unless `fresh`."""
    if not isinstance(network, SpikingNet) and Path(network).suffix == ".nir":
        if timesteps is None:
            raise UserError(f"{network}: exporting a NIR graph needs the steps per sample: "
                            "pass --timesteps T (timesteps=T)")
        if not Path(network).is_file():
            raise UserError(f"{network}: no such NIR file")
        with output_dir(out or default_out("export", network)) as folder:
            return {**artifacts.export_graph(network, folder, timesteps, dt),
                    "output": str(folder)}
    if not isinstance(network, SpikingNet):
        folder = out if out is not None else Path(network).parent
        return {**artifacts.export(network, folder), "output": str(folder)}
    base = _recipe(recipe if recipe is not None else "digits", data=data)
    spec = student_recipe(network, base)
    dataset = dataset_of(spec.dataset.model_dump())
    shape = dataset.input_shape(spec.encoding.metadata())
    flat = not network.conv_specs and np.prod(network.input_shape) == np.prod(shape)
    if not (flat or tuple(network.input_shape) == tuple(shape)) \
            or network.classes != dataset.num_classes:
        raise UserError(f"student: input {list(network.input_shape)} and "
                        f"{network.classes} classes do not fit {dataset.file or dataset.name} "
                        f"with encoding {spec.encoding.name} ({list(shape)}, "
                        f"{dataset.num_classes} classes); build it for that data")
    out = writable_dir(out)
    if (out / "checkpoint.pt").exists() and not fresh:
        raise UserError(f"{out / 'checkpoint.pt'}: already holds a student; export into "
                        "another folder, or pass fresh=True to replace it")
    checkpoint = save_checkpoint(
        out / "checkpoint.pt", spec, network,
        metrics={"teacher_test_accuracy": None, "teacher_best_val_accuracy": None},
        provenance={"dataset": dataset.provenance(spec.dataset.split_seed)}, input_shape=shape)
    return {**artifacts.export(checkpoint, out), "output": str(out)}


def _data(inputs, folder: Path) -> str | None:
    """What to read inputs from: None (the network's own test split), a dataset name or .npz
    path, or an (x, y) pair of arrays saved as a .npz (checked as one: see data/npz.py); an
    array (a sigma-delta network's frames) is read where the network's kind is known."""
    if isinstance(inputs, tuple):
        x, y = (np.asarray(v) for v in inputs)
        np.savez(folder / "inputs.npz", x=x, y=y)
        return str(folder / "inputs.npz")
    return None if inputs is None or isinstance(inputs, np.ndarray) else input_source(str(inputs))


def _inputs(meta: dict, net, data: str | None, samples: int | None, timesteps: int | None,
            network, input_bits: int | None, inputs) -> tuple[np.ndarray, np.ndarray | None]:
    """(inputs, labels) for `net`: a CUBA network's spikes and labels, or a sigma-delta one's
    integer frames (`inputs` as given: an array, an (x, y) pair or an .npz) and no labels."""
    if isinstance(net, SDNetwork):
        if input_bits is not None:
            raise UserError(f"{network}: a sigma-delta network takes integer frames as they are; "
                            "--input-bits (graded input spikes) is for CUBA networks: drop it")
        return load_frames(inputs, net.input_size, samples, network), None
    if isinstance(inputs, np.ndarray):
        raise UserError(f"{network}: inputs without labels; pass an (x, y) pair or a .npz "
                        "with x and y")
    if timesteps:
        meta = {**meta, "timesteps": timesteps}
    check_input_bits(input_bits, net, str(network))
    return load_inputs(meta, data, samples, classes=net.layers[-1].size,
                       input_size=net.input_size, source=str(network), input_bits=input_bits)


def _folder(out, verb: str, network, backend: str | None = None):
    """output_dir of `out` (True: the verb's default folder), or no folder for a false `out`."""
    if not out:
        return contextlib.nullcontext()
    return output_dir(default_out(verb, network, backend) if out is True else out)


def _write(verb: str, result: dict, folder: Path | None) -> list[Path]:
    """<verb>.json and its report.html into `folder` (none: nothing written)."""
    if not folder:
        return []
    write_json(folder / f"{verb}.json", result)
    return [folder / f"{verb}.json", write_record_html(verb, result, folder)]


def _execution(execution: Execution | None, device: str, timeout: float | None,
               progress: bool | None) -> Execution:
    """`execution` as given (the command line gives one), or one of the keywords of the same
    names (a call that sets one or two); both at once is refused: which wins would be a guess."""
    if execution is None:
        return Execution(device, timeout, progress)
    if (device, timeout, progress) != ("cpu", None, False):
        raise UserError("device, timeout and progress: give them in `execution` or as "
                        "keywords, not both")
    return execution


def simulate(network: str | Path, inputs=None, backend: str = EXACT_BACKEND,
             samples: int | None = None, timesteps: int | None = None,
             dt: float | None = None, progress: bool | None = False,
             preset: str = DEFAULT_PRESET, *, device: str = "cpu",
             input_shape: tuple[int, ...] | None = None,
             timeout: float | None = None, shard: str | None = None, chunk: int = 1000,
             out: str | Path | bool | None = None, quiet: bool = False,
             input_bits: int | None = None, execution: Execution | None = None) -> dict:
    """`neurodeploy simulate`: run a .net (or any .nir, lowered) on one backend (see
    backends/registry.py). `inputs`: None (the test split it was exported for), a dataset name
    or .npz path, or an (x, y) pair. `preset`: the energy preset that prices the counted events
    (a name or a preset YAML file; default `run`'s). `shard`: "i/n", the i-th of n equal slices.
    Returns simulate.json's content (backend, samples, timesteps, accuracy, warnings such as an
    output layer that never spiked, the energy sections ...) with the labels, the SpikeRecord
    (spikes of every layer at every step, named as the file names them) and `wrote`: the files
    written into `out`, where a resumable backend also keeps its chunks (a rerun resumes them).
    `progress`: True a bar, False lines through logging, None (or `quiet`) nothing: see
    neurodeploy/progress.py; `execution`: device, timeout and progress as one Execution (see
    _execution). An output layer that never spiked is also warned (NeurodeployWarning). `input_bits` N: integer inputs are graded input spikes of
    N bits (netx's input_message_bits), events in 0..2**N - 1, on every backend.
    A sigma-delta netx file takes integer frames (an [N, T, ...] array, an (x, y) pair or an
    .npz with x) and returns simulate.json's content (simulation.stream) with its record."""
    shard = parse_shard(shard)
    run = _execution(execution, device, timeout, None if quiet else progress)   # first
    check_backend(backend)
    with tempfile.TemporaryDirectory(prefix="neurodeploy-") as tmp:
        data = _data(inputs, Path(tmp))
        graph = read_nir(network) if Path(network).suffix == ".nir" else None   # read once
        if graph is not None:                   # every missing option at once, before lowering
            simulation.missing_options(network, None, dt, data, timesteps, graph)
        try:                                    # a wrong preset fails before the simulation
            prices = load_preset(preset or DEFAULT_PRESET)
        except UserError as e:
            raise UserError(f"--preset: {e}") from None
        with artifacts.deployable(network, dt, input_shape, graph) as (path, meta, quantization,
                                                                      net), \
                _folder(out, "simulate", network, backend) as folder:
            if isinstance(net, SDNetwork):
                frames, _ = _inputs(meta, net, data, samples, timesteps, network, input_bits,
                                    inputs)
                result, records = simulation.stream(network, net, frames, [backend], prices,
                                                    run)
                return {**result, "record": records[0],
                        "wrote": _write("simulate", written(SigmaDeltaRecord, result), folder)}
            simulation.missing_options(network, meta, dt, data, timesteps)
            spikes, labels = _inputs(meta, net, data, samples, timesteps, network, input_bits,
                                     inputs)
            prov = provenance(network, spikes, labels, backend, dt=dt, input_shape=input_shape,
                              input_bits=input_bits)
            own = BACKENDS[backend].reads == "own"

            def run_on(x, timeout_s=None):       # the exact mode runs the net read above
                source = network if own else net if backend == EXACT_BACKEND else path
                return simulation.simulate(source, x, backend, run.progress,
                                           timeout_s, run.device, input_shape=input_shape, dt=dt,
                                           input_bits=input_bits)
            if folder and BACKENDS[backend].resumable:      # slow: resumable chunks on disk
                record, indices = run_chunks(run_on, spikes, labels, folder / "chunks", chunk,
                                             shard, run.timeout, progress=run.progress,
                                             provenance=prov)
                labels = labels[indices]
            else:
                lo, hi = shard_range(len(spikes), shard)
                record, labels = run_on(spikes[lo:hi], timeout_s=run.timeout), labels[lo:hi]
    simulation.user_names(record, net)
    warnings = simulation.silent_output([record], network)
    result = record_summary(record, labels, shard=f"{shard[0]}/{shard[1]}",
                            quantization=quantization, provenance=prov, network=str(network),
                            warnings=warnings,
                            reset=None if graph is None else reset_assumption(graph,
                                                                              str(network)),
                            **energy_sections(net, record, labels, prices))
    return {**result, "labels": labels, "record": record,
            "wrote": _write("simulate", result, folder)}


def merge(dirs: list[str | Path], out: str | Path | None = None) -> dict:
    """`neurodeploy merge`: join the chunk records of several shards of one simulation into
    out/record.npz and simulate.json (`out` by default runs/merge/<network sha8>-<inputs
    sha8>); returns simulate.json's content with the labels, the record and `wrote`."""
    record, _, labels = merge_chunks(dirs)
    prov = record.info.get("provenance") or {}
    folder = writable_dir(out or Path("runs") / "merge" / "-".join(
        [prov.get("network_sha256", "unknown")[:8], prov.get("inputs_sha256", "unknown")[:8]]))
    record.save(folder / "record.npz", labels=labels)
    result = record_summary(record, labels, merged=[str(d) for d in dirs], provenance=prov)
    write_json(folder / "simulate.json", result)
    return {**result, "labels": labels, "record": record,
            "wrote": [folder / "record.npz", folder / "simulate.json"]}


def parity(network: str | Path, inputs=None, backends=PARITY_BACKENDS,
           samples: int | None = None, dt: float | None = None, progress: bool | None = False,
           reference: str | Path | None = None, *, timesteps: int | None = None,
           input_shape: tuple[int, ...] | None = None, device: str = "cpu",
           timeout: float | None = None, out: str | Path | bool | None = None,
           input_bits: int | None = None, execution: Execution | None = None) -> dict:
    """`neurodeploy parity`: the same inputs through several backends, compared spike for
    spike (and the backend that runs the model as trained against the deployed ones). Returns
    parity.json's content; `spike_mismatches` is 0 when the backends agree exactly. `reference`:
    another framework's predictions/output counts for the same inputs (.npz), compared too.
    With the records and `wrote`: parity.json and report.html, when given `out`.
    A sigma-delta netx file is compared message for message on integer frames (as simulate:
    simulation.stream). `execution`: device, timeout and progress as one Execution."""
    run = _execution(execution, device, timeout, progress)
    backends = list(backends)
    folder = None
    with tempfile.TemporaryDirectory(prefix="neurodeploy-") as tmp, \
            contextlib.ExitStack() as stack:
        data = _data(inputs, Path(tmp))

        def chosen(meta, net):  # the network is open and valid: check `out`, then read inputs
            nonlocal folder
            folder = stack.enter_context(_folder(out, "parity", network))
            return _inputs(meta, net, data, samples, timesteps, network, input_bits, inputs)
        result, records = simulation.parity(network, chosen, backends, run, dt, input_shape,
                                            reference, input_bits)
        streamed = result.get("kind") == "sigma-delta"
        wrote = _write("parity", written(SigmaDeltaRecord if streamed else Parity, result), folder)
    return {**result, "records": records, "wrote": wrote}


def tune(source: str | Path, inputs: str | Path, out: str | Path | None = None, *,
         reset: str = "zero", reset_delay: bool = False, dt: float | None = None,
         epochs: int = TuneOptions.epochs, lr: float = TuneOptions.lr,
         held_out: float = TuneOptions.held_out, seed: int = 0,
         headroom: str | float = "auto", losses: list[dict] | None = None,
         redraw: float = TuneOptions.redraw, presets: tuple[str, ...] = TuneOptions.presets,
         device: str | None = None,
         progress: bool | None = False, fresh: bool = False) -> dict:
    """`neurodeploy tune`: distill a NIR graph trained elsewhere onto Loihi's grid (see
    distill/tune.py) with the spike trains of `inputs` (a .npz with x [N, T, ...] and, when
    known, labels y); writes student.nir, network.net, manifest.json, tune.json and tune.html
    into `out` (default runs/tune/<graph>-<sha8>) and returns tune.json's content.

    `reset`, `reset_delay`: how the source framework resets a neuron (NIR cannot say;
    snnTorch's default Leaky is reset="subtract", reset_delay=True); `held_out`: the seeded
    fraction of the inputs kept out of tuning, on which everything is reported; `redraw`: the
    fraction of each input channel's events drawn anew in every training batch."""
    if not Path(source).is_file():
        raise UserError(f"{source}: no such NIR file")
    options = TuneOptions(reset=reset, reset_delay=reset_delay, dt=dt, epochs=epochs, lr=lr,
                          held_out=held_out, seed=seed, headroom=headroom, redraw=redraw,
                          losses=tuple(losses) if losses else TuneOptions.losses,
                          presets=tuple(presets), device=resolve_device(device))
    for name in options.presets:
        load_preset(name)                        # refused before any folder is made
    with output_dir(out or default_out("tune", source)) as folder:
        return {**tuning.tune(source, inputs, folder, options, progress, fresh),
                "output": str(folder)}


def inspect(path: str | Path, dt: float | None = None) -> dict:
    """`neurodeploy inspect`: what a .nir, .net (CUBA or sigma-delta) or checkpoint .pt holds."""
    return artifacts.inspect(path, dt)


def energy(report: str | Path, preset: str = DEFAULT_PRESET,
           network: str | Path | None = None, out: str | Path | None = None) -> dict:
    """`neurodeploy energy`: a run's report.json or a simulate.json repriced with another
    energy preset (no simulation); `network`: check the record was made with this .net file;
    `out`: a folder for energy-<preset>.json (listed in `wrote`)."""
    folder = writable_dir(out) if out else None
    result = reprice(report, preset, network)
    wrote = []
    if folder:
        wrote = [folder / f"energy-{Path(result['energy']['preset']).stem}.json"]
        write_json(wrote[0], written(Priced, {k: result[k] for k in Priced.model_fields}))
    return {**result, "wrote": wrote}


def run(recipe_name: str | None = None, runs_dir: str | Path = "runs",
        progress: bool | None = True, backend: str = DEFAULT_BACKEND, overrides: dict | None = None,
        fresh: bool = False, device: str | None = None) -> tuple[dict, Path]:
    """`neurodeploy run`: the whole pipeline for one recipe (distill, export, simulate,
    report); returns the report and the run directory.

    A checkpoint.pt of the same recipe is reused (and said so through logging) unless `fresh`, and
    another recipe's is refused, never overwritten (see distill); `overrides`: dotted recipe
    keys set before validation (see recipe.override); `device`: where to train."""
    recipe = load_recipe(recipe_name, overrides)
    device = resolve_device(device)         # before any folder exists or any work is done
    check_backend(backend)
    with output_dir(Path(runs_dir) / recipe.name, "--runs-dir") as out:
        timing = {}
        t0 = time.perf_counter()
        ckpt = distilling.distill(recipe, out, progress, fresh=fresh, device=device,
                                  place="--runs-dir")
    timing["distill_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    manifest = artifacts.export(ckpt, out)
    timing["export_s"] = time.perf_counter() - t0
    net, _ = read_netx(out / "network.net")
    spikes, labels = encoded_test_split(manifest)
    reference = simulate_torch(net, spikes)
    t0 = time.perf_counter()
    deployed = simulation.simulate(out / "network.net", spikes, backend, progress)
    timing["simulate_s"] = time.perf_counter() - t0
    timing["simulate_samples_per_s"] = len(labels) / timing["simulate_s"]
    teacher_sizes = (None if recipe.teacher.conv or recipe.teacher.file   # no baseline yet
                     else [net.input_size, *recipe.teacher.hidden, net.layers[-1].size])
    result = report(net, reference, deployed, labels, recipe.energy.preset, teacher_sizes, extra={
        "recipe": recipe.name, "dataset": manifest["dataset"], "encoding": manifest["encoding"],
        "network": {**manifest["network"], "sha256": manifest["files"]["network.net"]},
        "backend": deployed.backend,
        "provenance": provenance(out / "network.net", spikes, labels, backend),
        "accuracy": {"teacher": manifest["accuracy"]["teacher"]}, "timing": timing,
        "training": manifest["training"],
        "artifacts": {"checkpoint": "checkpoint.pt", "nir": "student.nir",
                      "netx": "network.net", "manifest": "manifest.json"}})
    write_json(out / "report.json", result)
    write_html(result, out)
    return result, out


def explore(recipe: Recipe | dict | str | Path | None, grid: dict[str, list],
            out: str | Path, *, overrides: dict | None = None, seeds: int | list[int] = 1,
            jobs: int = 1, presets: list[str] | None = None, lava_samples: int = 50,
            device: str | None = None, say=None) -> dict:
    """`neurodeploy explore`: every variant of `recipe` the grid names ({"student.hidden":
    [[32], [64]], "encoding.timesteps": [4, 8]}: dotted recipe keys, each with its values),
    over `seeds` (a count: 0..N-1, or a list), distilled into resumable run folders under
    `out` (`jobs` at a time), deployed exactly with a Lava sample of `lava_samples` checked,
    priced by `presets` (default: the recipe's); writes front.json and front.html and returns
    front.json's content (see distill/explore.py). Everything is checked before `out` is
    made; `say(line)` hears one line per finished run."""
    device = resolve_device(device)
    base = _recipe(recipe, overrides)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    exploring.variants(base, grid, seeds)            # a bad grid fails before any folder
    for name in presets or []:
        try:
            load_preset(name)
        except UserError as e:
            raise UserError(f"--preset: {e}") from None
    for name, value in (("jobs", jobs), ("lava_samples", lava_samples)):
        if value < 1:
            raise UserError(f"explore: {name} {value}: give 1 or more")
    with output_dir(out) as folder:
        return exploring.explore(base, grid, folder, seeds=seeds, jobs=jobs, presets=presets,
                                 lava_samples=lava_samples, device=device,
                                 say=say or (lambda line: None))
