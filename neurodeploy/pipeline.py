"""The pipeline's verbs as functions: distill -> export -> simulate -> parity/energy -> report.

Each verb reads and writes files in a run directory, so any stage can be rerun alone:
    checkpoint.pt   student (+ teacher) weights, the recipe and training history
    student.nir     the NIR graph (the boundary: everything downstream reads only this)
    network.net     netx HDF5 lowered from student.nir, integers only
    manifest.json   versions, hashes, quantization, timesteps, encoding, deployed accuracy
    report.json     accuracy per backend, parity, per-timestep events and energy
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from neurodeploy.backends.record import SpikeRecord, provenance
from neurodeploy.backends.registry import BACKENDS, backend as backend_named
from neurodeploy.checkpoint import (CHECKPOINT_FORMAT, _spiking, _student,  # noqa: F401
                                    load_checkpoint, save_checkpoint, torch_load)
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.inputs import encoded_test_split, load_inputs  # noqa: F401
from neurodeploy.preflight import check_backend, device_name, output_dir, resolve_device  # noqa: F401
from neurodeploy.data.datasets import load_data
from neurodeploy.data.npz import is_dataset_file
from neurodeploy.distill.losses import build_loss
from neurodeploy.distill.teacher_file import teacher_module, teacher_provenance
from neurodeploy.distill.teachers import CNNTeacher, mlp_teacher
from neurodeploy.distill.train import (barrier, distill_student, is_main, subset,
                                       teacher_outputs, train_teacher)
from neurodeploy.errors import UserError
from neurodeploy.files import (atomic_path, file_digest, package_versions, writable_dir,
                               write_json, zip_damage)
from neurodeploy.graph import (from_nir, lower_nir, read_nir, reset_assumption, to_nir,
                               write_nir)
from neurodeploy.graph.nir_io import graph_metadata
from neurodeploy.netx import read_netx, write_netx
from neurodeploy.netx.hdf5 import check_deployable
from neurodeploy.neurons import IntNetwork, SpikingNet
from neurodeploy.report import write_html
from neurodeploy.report.summary import priced, report, reprice  # noqa: F401 (re-exported)
from neurodeploy.recipe import Recipe, architecture, load_recipe, recipe_from_dict

def _digest(spec) -> str:
    """sha256 of a JSON-able spec (a recipe, a teacher's settings): what keys cached work."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _versions() -> dict:
    return package_versions(("neurodeploy", "torch", "nir", "lava-nc", "lava-dl", "numpy", "h5py"))


def _stages(channels: list[int]) -> list[dict]:
    """A spiking teacher's conv stages, one per entry of teacher.conv: 3x3, stride 2, padding 1
    (the same output sizes as the CNN teacher's stages)."""
    return [{"channels": c, "kernel": 3, "stride": 2, "padding": 1} for c in channels]


def _accuracy(model: torch.nn.Module, x: np.ndarray, spikes: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy of a teacher: spiking ones in float mode (teachers are not deployed)."""
    return float((teacher_outputs(model, x, spikes)[0].argmax(1).numpy() == y).mean())


def _teacher(recipe: Recipe, data) -> torch.nn.Module:
    if recipe.teacher.conv:
        if len(data.shape) != 3:
            raise UserError(f"recipe {recipe.name}: teacher.conv needs image data; "
                            f"{data.name} samples have shape {data.shape}")
        return CNNTeacher(data.shape, recipe.teacher.conv, data.num_classes)
    return mlp_teacher(data.features, recipe.teacher.hidden, data.num_classes)


def distill(recipe: Recipe, out_dir: Path, progress: bool = True,
            teachers: Path | None = None, teacher_model: torch.nn.Module | None = None,
            fresh: bool = False, device: str | None = None, place: str = "--out") -> Path:
    """Train the teacher, distill the student, write out_dir/checkpoint.pt (resumable).

    `teachers`: a directory where trained teachers are kept by their recipe, so runs that
    differ only in the student or the losses (a benchmark sweep) train each teacher once.
    `teacher_model`: a trained nn.Module to distill from (as teacher.file does from a file).
    A checkpoint.pt already in out_dir is reused when the same recipe made it from the same
    data and teacher, and another recipe's is refused (never overwritten) unless `fresh`,
    which also discards resumable training states; `place` names the option that moves the
    run elsewhere in that message. `device`: where to train (None: CUDA when available)."""
    device = resolve_device(device)
    out_dir = writable_dir(out_dir, place)
    data = subset(load_data(recipe.dataset), recipe.dataset.train_samples,
                  recipe.dataset.val_samples, recipe.dataset.split_seed)
    path = out_dir / "checkpoint.pt"
    given = teacher_model if teacher_model is not None else recipe.teacher.file
    try:
        sources = {"dataset": data.provenance(recipe.dataset.split_seed),
                   "teacher": teacher_provenance(given)}
    except OSError as e:        # teacher.file: missing or unreadable, said before any work
        from neurodeploy.distill.teacher_file import SAVE_HINT
        raise UserError(f"{given}: no such teacher file; {SAVE_HINT}"
                        if isinstance(e, FileNotFoundError) else
                        f"{given}: cannot read this teacher file ({e.strerror or e}); "
                        f"{SAVE_HINT}") from None
    if fresh:
        for state in out_dir.glob("*_state.pt"):     # no resuming either
            state.unlink()
    elif path.exists():
        why = _reuse(path, recipe, sources, place)
        if why is None:
            if is_main():
                print(f"reusing {path} (same recipe); delete it or pass --fresh to retrain",
                      file=sys.stderr)
            return path
        if is_main():
            print(f"retraining: {why}", file=sys.stderr)
    loss_fn = build_loss(recipe.distill.losses, f"recipe {recipe.name}: distill",
                         architecture(recipe))
    t0 = time.perf_counter()
    tc, dc = recipe.teacher, recipe.distill
    enc = recipe.encoding.metadata()
    train_enc = enc             # distill.timesteps: a longer window for training only
    if dc.timesteps and dc.timesteps != enc["timesteps"]:
        if data.timesteps:
            raise UserError(f"recipe {recipe.name}: distill.timesteps: {data.file} holds spike "
                            f"trains of {data.timesteps} steps; remove distill.timesteps")
        train_enc = {**enc, "timesteps": dc.timesteps}
    spikes = {"train": data.encoded("train", train_enc),
              **{name: data.encoded(name, enc) for name in ("val", "test")}}
    shape = data.input_shape(enc)

    recipe_key = _digest(recipe.to_dict())
    history, history_path = [], out_dir / "history.jsonl"
    history_path.unlink(missing_ok=True)        # an older run's curves must not pass for ours

    def log(stage: str, hist) -> None:
        """history.jsonl gets this stage's epochs (one JSON line each), rewritten atomically."""
        finite = lambda v: float(v) if np.isfinite(v) else None  # noqa: E731
        history.extend({"stage": stage, "epoch": epoch, "train_loss": finite(loss),
                        "val_accuracy": finite(acc)}
                       for epoch, (loss, acc) in enumerate(zip(hist.train_loss,
                                                               hist.val_accuracy)))
        if not is_main():
            return
        with atomic_path(history_path) as tmp:
            tmp.write_text("".join(json.dumps(row, allow_nan=False) + "\n" for row in history))

    def train_spiking(model, teacher, loss, seed, state, epochs=dc.epochs, lr=dc.lr,
                      batch_size=dc.batch_size):
        return distill_student(
            model, teacher, loss, train_spikes=spikes["train"], train_x=data.train.x,
            train_y=data.train.y, val_spikes=spikes["val"], val_y=data.val.y, epochs=epochs,
            lr=lr, batch_size=batch_size, seed=seed, weight_decay=dc.weight_decay,
            checkpoint=out_dir / state, progress=progress, key=f"{recipe_key}:{state}",
            validate_every=dc.validate_every, device=device)

    def new_teacher():
        if tc.spiking:          # a large SNN teacher, trained on labels in its float mode
            return _spiking(recipe, shape, data.num_classes, _stages(tc.conv), tc.hidden)
        return _teacher(recipe, data)

    def train_teacher_from_recipe(model):
        if tc.spiking:
            hist = train_spiking(model, None, build_loss([{"name": "ce"}], "teacher"), tc.seed,
                                 "teacher_state.pt", tc.epochs, tc.lr, tc.batch_size)
        else:
            model, hist = train_teacher(
                model, data.train.x, data.train.y, data.val.x, data.val.y,
                epochs=tc.epochs, lr=tc.lr, batch_size=tc.batch_size, seed=tc.seed,
                progress=progress, checkpoint=out_dir / "teacher_state.pt",
                key=f"{recipe_key}:teacher", weight_decay=tc.weight_decay,
                augment=tc.augment, schedule=tc.schedule, image_shape=data.shape,
                device=device)
        log("teacher", hist)
        return model, {"teacher_test_accuracy": _accuracy(model, data.test.x, spikes["test"],
                                                          data.test.y),
                       "teacher_best_val_accuracy": hist.best_val_accuracy}

    if given is None and (tc.features or tc.head):
        raise UserError(f"recipe {recipe.name}: teacher.features / teacher.head name layers of "
                        "a trained teacher; set teacher.file (or pass teacher= in Python)")
    if given is not None:   # trained elsewhere: measured, never trained
        teacher = teacher_module(given, data.shape, data.num_classes, tc.features, tc.head)
        teacher_metrics = {f"teacher_{key}_accuracy": _accuracy(
            teacher, getattr(data, split).x, spikes[split], getattr(data, split).y)
            for key, split in (("test", "test"), ("best_val", "val"))}
        loss_fn = build_loss(recipe.distill.losses, f"recipe {recipe.name}: distill",
                             architecture(recipe, teacher.channels))
    elif loss_fn.needs_teacher or dc.chain:
        torch.manual_seed(tc.seed)
        teacher, teacher_metrics = _cached(teachers, _teacher_key(recipe), new_teacher,
                                           train_teacher_from_recipe)
    else:                   # no loss reads a teacher: train none
        teacher, teacher_metrics = None, {"teacher_test_accuracy": None,
                                          "teacher_best_val_accuracy": None}
    first_teacher = teacher
    # multi-stage distillation (seed 004): teacher -> assistant(s) -> student
    for i, spec in enumerate(dc.chain):
        torch.manual_seed(dc.seed + i + 1)
        assistant = _spiking(recipe, shape, data.num_classes, spec.get("conv", []),
                             spec.get("hidden", []))
        stage_loss = build_loss(dc.losses, f"recipe {recipe.name}: distill.chain[{i}]",
                                {"student_channels": [c["channels"] for c in spec.get("conv", [])],
                                 "teacher_channels": []})
        log(f"assistant{i}", train_spiking(assistant, teacher, stage_loss, dc.seed + i + 1,
                                           f"assistant{i}_state.pt"))
        teacher = assistant
    torch.manual_seed(dc.seed)
    student = _student(recipe, shape, data.num_classes)
    hist = train_spiking(student, teacher, loss_fn, dc.seed, "distill_state.pt")
    log("student", hist)
    if not is_main():           # torchrun: rank 0 writes (and removes the training states)
        barrier()
        return path
    _remove_reports(out_dir)    # they describe what the previous checkpoint.pt made
    save_checkpoint(path, recipe, student, teacher=None if given is not None else (
        first_teacher and first_teacher.state_dict()),
        provenance={**sources, "training": {"device": device_name(device)}},
        metrics={**teacher_metrics, "student_best_val_accuracy": hist.best_val_accuracy,
                 "student_best_epoch": hist.best_epoch,
                 "student_val_curve": [a if np.isfinite(a) else None for a in hist.val_accuracy],
                 "train_seconds": time.perf_counter() - t0})
    for state in out_dir.glob("*_state.pt"):
        state.unlink()
    barrier()
    return path


def _reuse(path: Path, recipe: Recipe, sources: dict, place: str) -> str | None:
    """None when the checkpoint at `path` is what distilling `recipe` from `sources` (dataset
    and teacher provenance) would make; else why it must be trained again (the same recipe
    met other data or a teacher that cannot be identified). Another recipe's checkpoint, or
    one that cannot be read, is refused: a run is never overwritten by accident."""
    fix = (f"pass {place} to put this run elsewhere, or "
           f"{'--fresh' if place.startswith('--') else 'fresh=True'} to replace it")
    try:
        _, old, ckpt = load_checkpoint(path)
    except UserError as e:
        reason = str(e).removeprefix(f"{path}: ").split(";")[0]
        raise UserError(f"{path}: already there and not reusable ({reason}); it is not "
                        f"replaced unasked: {fix}") from None
    if old != recipe:
        diff = _differences(old.to_dict(), recipe.to_dict())
        more = f" and {len(diff) - 3} more" if len(diff) > 3 else ""
        raise UserError(f"{path} holds the student of another recipe (it differs in "
                        f"{', '.join(diff[:3])}{more}); it is not overwritten unasked: {fix}")
    had = ckpt.get("provenance") or {}
    if sources["teacher"] and "module" in sources["teacher"]:
        return (f"{path} was made by the same recipe, but the teacher is a module given from "
                "Python, which a checkpoint cannot tell from another")
    for key in ("dataset", "teacher"):
        if had.get(key) != sources[key]:
            now = sources[key] or {}
            return (f"{path} was made by the same recipe from another {key} "
                    f"({now.get('file') or now.get('name') or 'trained by the tool'} "
                    "changed since, or the checkpoint does not record it)")
    return None


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """`key: old -> new` for every setting two recipes (as dicts) set differently."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            a, b = (t if len(t := json.dumps(v)) <= 40 else t[:37] + "..." for v in (a, b))
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out


def _remove_reports(out_dir: Path, network_sha256: str | None = None) -> None:
    """Remove report.json, report.html and their figures from a run folder, unless report.json
    describes the network whose sha256 is given: a report never sits beside another network."""
    from neurodeploy.report.plots import FIGURES, RECORD_FIGURES
    if network_sha256 is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if json.loads((out_dir / "report.json").read_text())["network"]["sha256"] \
                    == network_sha256:
                return
    figures = {*FIGURES, *(name for kind in RECORD_FIGURES.values() for name in kind)}
    for name in ("report.json", "report.html", *(f"{f}.png" for f in sorted(figures))):
        (out_dir / name).unlink(missing_ok=True)


def _teacher_key(recipe: Recipe) -> str:
    """Everything a teacher's training reads from the recipe."""
    r = recipe.to_dict()
    spec = {k: r[k] for k in ("dataset", "teacher")}
    if recipe.teacher.spiking:
        spec |= {"encoding": r["encoding"], "neuron": r["student"]["neuron"],
                 "weight_decay": r["distill"]["weight_decay"]}
    return _digest(spec)[:16]


def _cached(directory: Path | None, key: str, new, train):
    """train(new()) -> (model, metrics), kept in directory/teacher-<key>.pt when one is given.

    The cache holds the state dict and plain metrics (read with weights_only=True): a cached
    file can never run code, and the model is rebuilt from the recipe."""
    if directory is None:
        return train(new())
    path = Path(directory) / f"teacher-{key}.pt"
    if path.exists():
        model = new()
        try:
            if damaged := zip_damage(path):
                raise ValueError(f"{damaged} fails its CRC-32 check")
            cached = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(cached["state_dict"])
            metrics = {k: float(cached["metrics"][k]) for k in ("teacher_test_accuracy",
                                                               "teacher_best_val_accuracy")}
        except Exception as e:
            raise UserError(f"{path}: not a usable cached teacher ({type(e).__name__}); delete "
                            "it to train the teacher again") from None
        return model.eval(), metrics
    model, metrics = train(new())
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "metrics": metrics}, tmp)
    return model, metrics


@contextlib.contextmanager
def deployable(network: str | Path, dt: float | None = None,
               input_shape: tuple[int, ...] | None = None
               ) -> Iterator[tuple[Path, dict, list, IntNetwork]]:
    """A netx file for `network`: the file itself for .net; for .nir (ours or another tool's)
    the graph lowered to Loihi integers in a temporary netx file. Yields (path, metadata,
    quantization report, the network as read)."""
    path = Path(network)
    if path.suffix != ".nir":
        net, meta = read_netx(path, input_shape)
        check_manifest(path)
        yield path, meta, [], net
        return
    graph = read_nir(path)
    net, quantization = lower_nir(graph, str(path), dt)
    meta = graph_metadata(graph, str(path))
    check_deployable(net, str(path))     # named by the user's file, not the temporary one
    with tempfile.TemporaryDirectory(prefix="neurodeploy-") as tmp:
        lowered = Path(tmp) / "network.net"
        write_netx(net, lowered, meta)
        yield lowered, meta, quantization, net


def export(checkpoint: str | Path, out_dir: str | Path) -> dict:
    """Checkpoint -> student.nir -> (read back) -> network.net + manifest.json.

    The three files are written as a set: built and hashed in a temporary directory, then
    renamed into place with the old manifest removed first and the new one last. A failed
    export never leaves a manifest that describes other files."""
    out_dir = writable_dir(out_dir)
    student, recipe, ckpt = load_checkpoint(checkpoint)
    integer = student.to_integer()
    meta = {"recipe": recipe.name, "timesteps": recipe.encoding.timesteps,
            "encoding": recipe.encoding.metadata(),
            "dataset": {"name": recipe.dataset.name, "split_seed": recipe.dataset.split_seed,
                        **{k: v for k, v in ((ckpt.get("provenance") or {}).get("dataset")
                                             or {}).items()
                           if k in ("file", "sha256") and v is not None}},
            "quantization": {
                "weights": "even integers in [-256, 254] (8-bit mantissa x 2)",
                "state": "24-bit current (wraps), 24-bit voltage (saturates), decays /4096",
                "layers": {layer.name: {"iDecay": layer.params.i_decay,
                                        "vDecay": layer.params.v_decay,
                                        "vThMant": layer.params.threshold}
                           for layer in integer.layers}}}
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp:
        nir_path, net_path = Path(tmp) / "student.nir", Path(tmp) / "network.net"
        write_nir(to_nir(integer, meta), nir_path)
        graph = read_nir(nir_path)                # NIR is the boundary: lower what was written
        net = from_nir(graph, str(nir_path))
        write_netx(net, net_path, graph_metadata(graph, str(nir_path)))
        spikes, labels = encoded_test_split(meta)
        deployed = simulate_torch(net, spikes)
        manifest = {
            **meta,
            "versions": _versions(),
            "files": {"student.nir": file_digest(nir_path), "network.net": file_digest(net_path)},
            "network": {"sizes": net.sizes, "neurons": sum(layer.size for layer in net.layers),
                        "synapses": int(sum((layer.weight != 0).sum() for layer in net.layers))},
            "training": (ckpt.get("provenance") or {}).get("training"),   # device, if known
            "execution": {"reset_interval": recipe.encoding.timesteps, "netx_reset_offset": 1,
                          "pipeline_delay_steps": len(net.layers)},
            "accuracy": {"split": "test", "samples": int(len(labels)),
                         "deployed_exact": deployed.accuracy(labels),
                         "teacher": ckpt["metrics"]["teacher_test_accuracy"]},
        }
        write_json(Path(tmp) / "manifest.json", manifest)
        (out_dir / "manifest.json").unlink(missing_ok=True)   # never describes other files
        _remove_reports(out_dir, manifest["files"]["network.net"])   # nor a report
        for name in manifest["files"]:                 # renames: the hashed bytes themselves
            os.replace(Path(tmp) / name, out_dir / name)
        os.replace(Path(tmp) / "manifest.json", out_dir / "manifest.json")
    return manifest


def check_manifest(network: Path) -> None:
    """Refuse a network whose own manifest.json (next to it) lists another hash for it: the
    manifest's accuracy would then describe a different network. A manifest.json of another
    tool (no `files` mapping) is none of our business; a damaged one of ours is refused."""
    path = network.parent / "manifest.json"
    if not path.is_file():
        return
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise UserError(f"{path}: not readable JSON ({type(e).__name__}) next to {network.name}; "
                        "export again, or move the network out of that directory") from None
    if not isinstance(manifest, dict) or "files" not in manifest:
        return
    files = manifest["files"]
    if isinstance(files, dict) and network.name not in files:
        return                   # the manifest describes other files, not this one
    listed = files.get(network.name) if isinstance(files, dict) else None
    if not isinstance(listed, str) or len(listed) != 64:
        raise UserError(f"{path}: field files.{network.name} is not a sha256 hex digest; the "
                        "manifest is damaged: export again")
    if listed != file_digest(network):
        raise UserError(f"{network}: its sha256 differs from the one {path} lists "
                        f"(field files.{network.name}); the two come from different exports: "
                        "export again, or move the network out of that directory")


def simulate(network: str | Path, spikes: np.ndarray, backend: str, progress: bool = True,
             timeout_s: float | None = None, device: str = "cpu", batch_size: int = 256,
             input_shape: tuple[int, ...] | None = None, dt: float | None = None) -> SpikeRecord:
    """Run input spikes [N, T, ...] through a netx file on one backend (`float`: any network
    file, in the semantics it was trained in; `dt` for a foreign NIR graph)."""
    chosen = backend_named(backend)
    device = resolve_device(device)
    return chosen.run(network, spikes, progress, timeout_s, device, batch_size, input_shape, dt)


def user_names(record: SpikeRecord, net: IntNetwork) -> SpikeRecord:
    """`record` with the layer names of `net` as read from the user's file (a NIR graph's node
    names): the netx file a graph is lowered to numbers its layers instead, and every verb
    must name a layer as `inspect` does."""
    if len(record.layer_names) == len(net.layers):
        record.layer_names = [layer.name for layer in net.layers]
    return record


def silent_output(records: list[SpikeRecord], source: str | Path) -> str | None:
    """Why the accuracy of these records says nothing, when their output layer never spiked:
    every prediction is then class 0 (often a wrong --dt, threshold or input scale)."""
    silent = [r for r in records if r.readout is None and r.samples and not r.layers[-1].any()]
    if not silent:
        return None
    r = silent[0]
    return (f"{source}: output layer '{r.layer_names[-1]}' never spiked in {r.samples} samples "
            f"x {r.timesteps} steps on {', '.join(s.backend for s in silent)}, so every "
            "prediction is class 0 and the accuracy says nothing about the network; check --dt, "
            f"the thresholds and the input scale (`neurodeploy inspect {source}`)")


def missing_options(network: str | Path, meta: dict | None, dt: float | None,
                    data: str | None, timesteps: int | None) -> None:
    """Refuse, in one message, every option a network cannot do without: --dt for a foreign
    NIR graph that does not record its time step, --data when its metadata names no dataset,
    --timesteps when nothing says how many steps to encode. `meta`: the network's metadata
    (None: read the .nir graph here, before it is lowered, which needs dt)."""
    from neurodeploy.graph import UNITS
    from neurodeploy.graph.importer import infer_dt
    missing, path = [], Path(network)
    if meta is None:
        graph = read_nir(path)
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


def run(recipe_name: str | None = None, runs_dir: str | Path = "runs",
        progress: bool = True, backend: str = "lava", overrides: dict | None = None,
        fresh: bool = False, device: str | None = None) -> tuple[dict, Path]:
    """The whole pipeline for one recipe; returns the report and the run directory.

    A checkpoint.pt of the same recipe is reused (and said so on stderr) unless `fresh`, and
    another recipe's is refused, never overwritten (see distill); `overrides`: dotted recipe
    keys set before validation (see recipe.override); `device`: where to train."""
    recipe = load_recipe(recipe_name, overrides)
    device = resolve_device(device)         # before any folder exists or any work is done
    check_backend(backend)
    with output_dir(Path(runs_dir) / recipe.name, "--runs-dir") as out:
        timing = {}
        t0 = time.perf_counter()
        ckpt = distill(recipe, out, progress, fresh=fresh, device=device, place="--runs-dir")
    timing["distill_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    manifest = export(ckpt, out)
    timing["export_s"] = time.perf_counter() - t0
    net, _ = read_netx(out / "network.net")
    spikes, labels = encoded_test_split(manifest)
    reference = simulate_torch(net, spikes)
    t0 = time.perf_counter()
    deployed = simulate(out / "network.net", spikes, backend, progress)
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


def student_recipe(student: SpikingNet, base: Recipe) -> Recipe:
    """`base` with its student section describing `student` (a SpikingNet built in Python), so
    it exports like a distilled one; decays must be shared by all layers, as a recipe's are."""
    params = [n.params for n in student.neurons]
    if len({(p.i_decay, p.v_decay) for p in params}) > 1:
        raise UserError("student: layers with different i_decay/v_decay cannot be described by "
                        "one recipe; give every layer the same decays")
    thresholds = [p.threshold for p in params[:-1]] + [
        int(student.readout_scale) if student.readout else params[-1].threshold]
    recurrent = sorted(int(i) for i in student.recurrent)
    if recurrent and (student.conv_specs or recurrent != list(range(len(student.hidden)))):
        raise UserError("student: recurrent weights on only some layers cannot be described by "
                        "a recipe's student.recurrent; build it with recurrent=True")
    spec = base.to_dict()
    spec["student"] = {**spec["student"], "conv": student.conv_specs, "hidden": student.hidden,
                       "readout": student.readout, "recurrent": bool(recurrent),
                       "neuron": {"i_decay": params[0].i_decay, "v_decay": params[0].v_decay,
                                  "threshold": thresholds[-1]},
                       "thresholds": thresholds if len(set(thresholds)) > 1 else []}
    return recipe_from_dict(spec, "student")


def inspect(path: str | Path, dt: float | None = None) -> dict:
    """What a .nir, .net or checkpoint .pt holds: kind, metadata (recipe and metrics for a
    checkpoint; value ranges per NIR node), each layer's shape, weights, neuron constants and
    what netx adds (recurrence, delays, input neurons), what quantization cost (NIR) and the
    Loihi 2 resource estimate."""
    from neurodeploy.energy import layer_table, resource_estimate
    path = Path(path)
    info, quantization = {"file": str(path)}, []
    if path.suffix == ".nir":
        graph = read_nir(path)
        net, quantization = lower_nir(graph, str(path), dt)
        nodes = {}
        for name, node in graph.nodes.items():
            arrays = {k: v for k, v in vars(node).items() if isinstance(v, np.ndarray)
                      and v.size > 1 and k not in ("input_type", "output_type")
                      and np.issubdtype(v.dtype, np.number)}
            nodes[name] = {"type": type(node).__name__,
                           "arrays": {k: {"shape": list(v.shape),
                                          "range": [float(v.min()), float(v.max())]}
                                      for k, v in arrays.items()}}
        info |= {"kind": "nir", "nodes": nodes, "edges": len(graph.edges),
                 "reset": reset_assumption(graph, str(path))}
    elif path.suffix == ".pt":
        student, recipe, ckpt = load_checkpoint(path)
        net = student.to_integer()
        info |= {"kind": "checkpoint", "recipe": recipe.to_dict(), "metrics": ckpt["metrics"],
                 "provenance": ckpt.get("provenance", {})}
    else:
        net, meta = read_netx(path)
        info |= {"kind": "netx", "metadata": meta}
    layers, shape = [], list(net.input_shape)
    for layer in net.layers:
        w = layer.weight
        layers.append({"name": layer.name, "type": layer.kind, "input_shape": shape,
                       "shape": list(layer.shape),
                       "kernel": ([int(w.shape[2]), int(w.shape[3])] if layer.conv else None),
                       "stride": list(layer.conv.stride) if layer.conv else None,
                       "weight_range": [int(w.min()), int(w.max())],
                       "nonzero_weights": int((w != 0).sum()),
                       "i_decay": layer.params.i_decay, "v_decay": layer.params.v_decay,
                       "threshold": layer.params.threshold, "describe": layer.describe()})
        shape = list(layer.shape)
    return info | {"layers": layers, "quantization": quantization,
                   "loihi2": resource_estimate(layer_table(net))}


def parity(network: str | Path, inputs, backends: list[str], progress: bool = False,
           timeout_s: float | None = None, dt: float | None = None,
           input_shape: tuple[int, ...] | None = None, device: str = "cpu",
           reference: str | Path | None = None) -> tuple[dict, list[SpikeRecord]]:
    """Run the same input spikes through several backends of one network file and compare:
    the deployed backends spike for spike against the first, `float` (the model as trained,
    read from the user's own file, so a foreign NIR graph keeps its float semantics) against
    each deployed one, and every backend against `reference` (another framework's predictions
    and output counts, a .npz). `inputs(metadata, net) -> (spikes, labels)` picks the inputs
    once the network is open, so it is read once. Returns parity.json's content and the
    records."""
    from neurodeploy.parity import compare, compare_reference, compare_source, read_reference
    from neurodeploy.report.summary import generated
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise UserError(f"--backends: unknown backend {unknown[0]!r}; choose from "
                        f"{', '.join(BACKENDS)}")
    own = {b: backend_named(b).reads == "own" for b in backends}   # float: the file as trained
    if len(backends) < 2 and not reference:
        raise UserError("--backends needs at least two backends (e.g. torch,emulator,lava or "
                        "float,torch), or one with --reference")
    device = resolve_device(device)
    for backend in backends:
        check_backend(backend)
    with deployable(network, dt, input_shape) as (lowered, meta, _, net):
        spikes, labels = inputs(meta, net)
        ref = read_reference(reference, len(labels), net.layers[-1].size) if reference else None
        records = [user_names(simulate(network if own[b] else lowered, spikes, b,
                                       progress, timeout_s, device, input_shape=input_shape,
                                       dt=dt), net)
                   for b in backends]
    warnings = [w for w in [silent_output(records, network)] if w]
    for warning in warnings:
        print(f"neurodeploy: warning: {warning}", file=sys.stderr)
    reset = reset_assumption(network)                    # None unless a foreign NIR graph
    if reset and "float" in backends:                    # how much the assumption matters
        from neurodeploy.backends.float_mode import reset_sensitivity
        reset = {"note": reset, **reset_sensitivity(network, spikes, records[
            backends.index("float")], dt, device)}
    deployed = [r for b, r in zip(backends, records) if not own[b]]
    floats = [r for b, r in zip(backends, records) if own[b]]
    pairs = [compare(deployed[0], other, labels) for other in deployed[1:]]
    result = {"network": str(network), "samples": len(labels),
              "provenance": provenance(network, spikes, labels, ",".join(backends), dt=dt,
                                       input_shape=input_shape),
              "accuracy": {r.backend: r.accuracy(labels) for r in records},
              "comparisons": pairs,
              "source": [compare_source(f, d, labels) for f in floats for d in deployed],
              "reference": ([compare_reference(ref, r, labels, Path(reference).name)
                             for r in records] if ref is not None else []),
              "spike_mismatches": sum(p["spike_mismatches"] for p in pairs),
              "readout_voltage_mismatches": sum(p["readout_voltage_mismatches"] or 0
                                                for p in pairs),
              "warnings": warnings, "reset": reset, "generated": generated()}
    if ref is not None:
        result["accuracy"][Path(reference).name] = float((ref["predictions"] == labels).mean())
    return result, records
