"""The Python API: each `neurodeploy` verb as a function taking files or in-memory objects
(a recipe dict, a trained nn.Module teacher, a torch Dataset, a SpikingNet), with the CLI's
semantics and its one-line `UserError`s. Thin: the work is done in `neurodeploy.pipeline`.

    from neurodeploy import api
    ckpt = api.distill({"name": "mine", "distill": {"epochs": 1}}, "runs/mine",
                       teacher="teacher.pt", data="data.npz")
    api.export(ckpt, "runs/mine")
    api.simulate("runs/mine/network.net", backend="lava", samples=5)["accuracy"]
    api.parity("runs/mine/network.net", backends=("torch", "lava"), samples=5)
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from torch import nn

from neurodeploy import pipeline, sdnn_verbs
from neurodeploy.backends.record import SpikeRecord
from neurodeploy.backends.registry import backend as backend_named
from neurodeploy.data.datasets import dataset_of, save_dataset
from neurodeploy.energy import load_preset
from neurodeploy.errors import UserError
from neurodeploy.files import writable_dir
from neurodeploy.neurons import SpikingNet
from neurodeploy.recipe import Recipe, load_recipe, override, recipe_from_dict
from neurodeploy.report.summary import DEFAULT_PRESET, energy_sections

report = pipeline.report        # report.json's content from records (see report/summary.py)
run = pipeline.run              # the whole pipeline for a recipe: distill, export, Lava, report

__all__ = ["distill", "energy", "export", "inspect", "parity", "report", "run", "simulate"]


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
        spec, where, overrides = loaded.to_dict(), str(recipe), None
    if overrides:
        spec = override(spec, overrides, where)
    if data is not None:
        spec["dataset"] = {"split_seed": (spec.get("dataset") or {}).get("split_seed", 0),
                           "file": str(Path(data).resolve())}
    if teacher is not None:
        spec["teacher"] = {**(spec.get("teacher") or {}), "file": str(Path(teacher).resolve())}
    return recipe_from_dict(spec, where)


def distill(recipe: Recipe | dict | str | Path | None, out: str | Path,
            teacher: nn.Module | str | Path | None = None, data=None,
            overrides: dict | None = None, progress: bool = False, fresh: bool = False,
            device: str | None = None) -> Path:
    """`neurodeploy distill`: distill the recipe's student into out/checkpoint.pt (returned).

    `recipe`: a dict of recipe sections, a Recipe, a models/ name or a YAML path.
    `teacher`: a trained nn.Module, or a TorchScript / torch.export file (else the recipe's
    teacher). `data`: a dataset .npz path, or a torch Dataset / DataLoader / (train, test) pair
    / {train, test[, val]} dict, materialized as out/data.npz so export and every backend read
    the same fixed splits (its sha256 goes into the checkpoint). A checkpoint.pt already in
    `out` is reused when the same recipe made it from the same data and teacher file, another
    recipe's is refused unless `fresh` (see pipeline.distill). `device`: where to train, e.g.
    "cpu" or "cuda" (default: CUDA when available)."""
    device = pipeline.resolve_device(device)       # before `out` or data.npz is written
    out = writable_dir(out)
    module = teacher if isinstance(teacher, nn.Module) else None
    parsed = _recipe(recipe, overrides, None, None if module is not None else teacher)
    if data is not None:
        if not isinstance(data, (str, Path)):
            data = save_dataset(data, out / "data.npz", parsed.dataset.split_seed)
        parsed = _recipe(parsed, data=data)
    return pipeline.distill(parsed, out, progress, teacher_model=module, fresh=fresh,
                            device=device, place="another `out`")


def export(network: str | Path | SpikingNet, out: str | Path,
           recipe: Recipe | dict | str | Path | None = None, data: str | Path | None = None,
           fresh: bool = False) -> dict:
    """`neurodeploy export`: a checkpoint.pt, or a SpikingNet built in Python, to
    out/student.nir, network.net and manifest.json; returns the manifest.

    For a SpikingNet, `recipe` supplies the encoding and dataset (default: the digits recipe's)
    and `data` a dataset .npz to use instead; the net is saved as out/checkpoint.pt first, so
    the export is the same as a distilled student's. A checkpoint.pt already in `out` (another
    run's) is never overwritten unless `fresh`."""
    if isinstance(network, SpikingNet):
        base = _recipe(recipe if recipe is not None else "digits", data=data)
        spec = pipeline.student_recipe(network, base)
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
        checkpoint = pipeline.save_checkpoint(
            out / "checkpoint.pt", spec, network,
            metrics={"teacher_test_accuracy": None, "teacher_best_val_accuracy": None},
            provenance={"dataset": dataset.provenance(spec.dataset.split_seed)},
            input_shape=shape)
        return pipeline.export(checkpoint, out)
    return pipeline.export(network, out)


def _inputs(inputs, net, meta: dict, samples: int | None, source: str, folder: Path):
    """Spikes and labels for a network: its own test split (None), a dataset name or .npz, or
    an (x, y) pair of arrays (checked as a .npz of inputs is: see data/npz.py)."""
    if isinstance(inputs, tuple):
        x, y = (np.asarray(v) for v in inputs)
        inputs = str(folder / "inputs.npz")
        np.savez(inputs, x=x, y=y)
    return pipeline.load_inputs(meta, None if inputs is None else str(inputs), samples,
                                classes=net.layers[-1].size, input_size=net.input_size,
                                source=source)


def _frames(inputs):
    """A sigma-delta network's inputs: frames, or the x of an (x, y) pair, or an .npz path."""
    return inputs[0] if isinstance(inputs, tuple) else inputs


def simulate(network: str | Path, inputs=None, backend: str = "torch",
             samples: int | None = None, timesteps: int | None = None,
             dt: float | None = None, progress: bool = False,
             preset: str = DEFAULT_PRESET) -> dict:
    """`neurodeploy simulate`: run a .net (or any .nir, lowered) on one backend (torch,
    emulator, lava, loihi2, float). `inputs`: None (the test split it was exported for), a
    dataset name or .npz path, or an (x, y) pair. Returns backend, samples, timesteps,
    accuracy, warnings (e.g. an output layer that never spiked), labels, the SpikeRecord
    (spikes of every layer at every step, named as the file names them) and, priced by
    `preset` (a name or a preset YAML file; `run`'s default), simulate.json's energy sections:
    energy, per_timestep, timestep_sweep, resources, counts, layers.
    A sigma-delta netx file takes integer frames (an [N, T, ...] array, an (x, y) pair or an
    .npz with x) and returns simulate.json's content (sdnn_verbs.run)."""
    if sdnn_verbs.is_sdnn_file(network):
        return sdnn_verbs.run(network, _frames(inputs), [backend], preset, samples)
    try:                                  # a wrong preset fails before the simulation
        prices = load_preset(preset)
    except UserError as e:
        raise UserError(f"preset: {e}") from None
    with tempfile.TemporaryDirectory(prefix="neurodeploy-") as folder, \
            pipeline.deployable(network, dt) as (path, meta, quantization, net):
        if timesteps:
            meta = {**meta, "timesteps": timesteps}
        spikes, labels = _inputs(inputs, net, meta, samples, str(network), Path(folder))
        record: SpikeRecord = pipeline.user_names(pipeline.simulate(
            network if backend_named(backend).reads == "own" else path, spikes, backend,
            progress), net)
    warnings = [w for w in [pipeline.silent_output([record], network)] if w]
    for warning in warnings:
        print(f"neurodeploy: warning: {warning}", file=sys.stderr)
    return {"backend": record.backend, "samples": record.samples,
            "timesteps": record.timesteps, "accuracy": record.accuracy(labels),
            "warnings": warnings,
            "quantization": quantization, "labels": labels, "record": record,
            **energy_sections(net, record, labels, prices)}


def parity(network: str | Path, inputs=None, backends=("torch", "emulator", "lava"),
           samples: int | None = None, dt: float | None = None,
           progress: bool = False, reference: str | Path | None = None) -> dict:
    """`neurodeploy parity`: the same inputs through several backends, compared spike for
    spike (and `float`, the model as trained, against the deployed ones). Returns parity.json's
    content; `spike_mismatches` is 0 when the backends agree exactly. `reference`: another
    framework's predictions/output counts for the same inputs (.npz), compared too.
    A sigma-delta netx file is compared message for message on integer frames (as simulate)."""
    if sdnn_verbs.is_sdnn_file(network):
        return sdnn_verbs.run(network, _frames(inputs), list(backends), samples=samples)
    with tempfile.TemporaryDirectory(prefix="neurodeploy-") as folder:
        return pipeline.parity(
            network, lambda meta, net: _inputs(inputs, net, meta, samples, str(network),
                                               Path(folder)),
            list(backends), progress, dt=dt, reference=reference)[0]


def inspect(path: str | Path, dt: float | None = None) -> dict:
    """`neurodeploy inspect`: what a .nir, .net or checkpoint .pt holds, as a dict."""
    return pipeline.inspect(path, dt)


def energy(report: str | Path, preset: str = "loihi2-proxy",
           network: str | Path | None = None) -> dict:
    """`neurodeploy energy`: a run's report.json or a simulate.json repriced with another
    energy preset (no simulation); `network`: check the record was made with this .net file."""
    return pipeline.reprice(report, preset, network)
