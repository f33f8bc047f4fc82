"""`explore`: which student to deploy. A grid of recipe variants (student widths, T, losses,
thresholds ...) is distilled, deployed exactly and priced, and the variants that no other beats
on both accuracy and energy (or latency) form the front.

Each (variant, seed) is a normal run folder under the output folder (checkpoint.pt, the
export, report.json and report.html) made by the same distill and export as `run`, so a rerun
reuses what is finished: a folder whose explore.json matches its recipe is not touched again,
a finished checkpoint is not retrained, and an interrupted training resumes from its state.
Teachers are kept in <out>/teachers by what trains them (distill.run._teacher_key), so
variants that change only the student share one; the first variant of each teacher trains
before the others start, so parallel jobs never train the same teacher twice.

Accuracy is the deployed network's (exact integer mode, which Lava matches spike for spike:
a Lava sample of every run checks it) on the whole test split, at the epoch validation
selected; mean ± std over the seeds (distill.seed; the teacher is shared across seeds).
A student trained with full_range_kd is read out at several T' (powers of two up to its
longest trained window): one point per T'.
"""
from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel

from neurodeploy import artifacts
from neurodeploy.backends.record import SpikeRecord, provenance
from neurodeploy.backends.registry import EXACT_BACKEND
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.checkpoint import load_checkpoint
from neurodeploy.distill.losses import build_loss
from neurodeploy.distill.run import _digest, _teacher_key, distill
from neurodeploy.energy import load_preset
from neurodeploy.errors import UserError
from neurodeploy.files import write_json
from neurodeploy.inputs import encoded_test_split
from neurodeploy.netx import read_netx
from neurodeploy.parity import compare
from neurodeploy.recipe import Recipe, architecture, override, recipe_from_dict
from neurodeploy.report import write_html
from neurodeploy.report.front import Front, write_front
from neurodeploy.report.summary import energy_sections, generated, priced, report
from neurodeploy.schema import OPEN, Section, written
from neurodeploy.simulation import simulate

COSTS = {"energy": "energy_pj", "latency": "latency_us"}    # what a front point minimises


class Readout(BaseModel):
    """The deployed student read out at one T'."""
    model_config = OPEN
    accuracy: float
    energy_pj: dict[str, float]                   # per inference, by preset
    latency_us: dict[str, float | None]           # None: the preset models no latency


class LavaCheck(BaseModel):
    """The Lava sample that checks the exact mode spike for spike."""
    model_config = OPEN
    samples: int
    spike_mismatches: int
    backend: str | None = None
    readout_voltage_mismatches: int | None = None


class Measured(BaseModel):
    """What `measure` finds of one trained run; what the front reads is required."""
    model_config = OPEN
    T: int
    test_samples: int
    by_readout: dict[str, Readout]                # T' (as text): the student read out there
    val_accuracy: float | None
    cores: int
    chips: int
    backend: str
    lava: LavaCheck
    accuracy_deployed: float | None = None        # at T, from the manifest
    epoch_selected: int | None = None             # the validation-best epoch kept
    synapses: int | None = None
    sizes: list[int] | None = None
    training: Section | None = None
    train_seconds: float | None = None
    measure_seconds: float | None = None


class ExploreRun(BaseModel):
    """explore.json, one per run folder: the run's variant and what was measured, and `key`
    (what it was measured from: recipe, presets, Lava samples), so a rerun skips it."""
    model_config = OPEN
    key: str
    variant: str
    settings: dict[str, Any]
    seed: int
    folder: str
    recipe_digest: str
    measured: Measured

DERIVED = {"name": "each run's name is <recipe>-<variant>-s<seed>",
           "distill.seed": "pass seeds (--seeds N) instead"}


def check_grid(grid: dict[str, list]) -> None:
    """One line naming the key and the fix for a grid that cannot make recipes: none at all,
    a key the recipe schema does not have (or a section given as one setting), no values,
    a value given twice."""
    if not grid:
        raise UserError("explore: the grid is empty; give at least one --grid KEY=V1,V2 (e.g. "
                        "--grid encoding.timesteps=4,8)")
    for key, values in grid.items():
        if key in DERIVED:
            raise UserError(f"--grid {key}: not a grid setting ({DERIVED[key]})")
        model, parts = Recipe, key.split(".")
        for i, part in enumerate(parts):
            where = ".".join(parts[:i]) or "a recipe"
            fields = model.model_fields if isinstance(model, type) and issubclass(
                model, BaseModel) else None
            if fields is None:
                raise UserError(f"--grid {key}: {where} is one setting, not a section; vary "
                                f"it whole: --grid {where}=V1,V2")
            if part not in fields:
                raise UserError(f"--grid {key}: {where} has no setting {part!r}; it has "
                                f"{', '.join(fields)} (see models/digits.yaml)")
            model = fields[part].annotation
        if not isinstance(values, (list, tuple)) or not values:
            raise UserError(f"--grid {key}: no values; give them comma-separated, e.g. "
                            f"--grid {key}=V1,V2")
        seen = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(seen)) != len(seen):
            raise UserError(f"--grid {key}: a value is given twice ({', '.join(seen)}); "
                            "give each once")


def _slug(value) -> str:
    """A value as a folder-name part: 4, 32x16 (a list of widths), ce.logit_kd (loss terms),
    16x32 (conv stages' channels); anything else by its digest. Recipe names allow only
    letters, digits and . _ -."""
    items = value if isinstance(value, list) else [value]
    if all(isinstance(v, dict) and "name" in v for v in items):
        text = ".".join(str(v["name"]) for v in items)
    elif all(isinstance(v, dict) and "channels" in v for v in items):
        text = "x".join(str(v["channels"]) for v in items)
    elif all(isinstance(v, (int, float, str, bool)) for v in items):
        text = "x".join(str(v) for v in items) or "none"
    else:
        text = "v" + _digest(value)[:6]
    text = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    return text if len(text) <= 28 else "v" + _digest(value)[:6]


def variants(base: Recipe, grid: dict[str, list], seeds: list[int]) -> list[dict]:
    """Every (grid point, seed) as a validated recipe with its name and folder, seeds outer
    (a grid stopped halfway has every variant once); a bad value is the schema's one-line
    error naming the --grid setting."""
    check_grid(grid)
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UserError(f"explore: seeds {seeds}: give distinct seeds >= 0 (--seeds N: 0..N-1)")
    out = []
    for seed, combo in itertools.product(seeds, itertools.product(*grid.values())):
        settings = dict(zip(grid, combo))
        label = "_".join(f"{key.rsplit('.', 1)[-1]}-{_slug(v)}" for key, v in settings.items())
        name = f"{base.name}-{label}-s{seed}"[:100]
        where = "explore --grid " + " --grid ".join(
            f"{k}={json.dumps(v)}" for k, v in settings.items())
        spec = override(base.to_dict(), {**settings, "name": name, "distill.seed": seed}, where)
        out.append({"variant": label, "settings": settings, "seed": seed,
                    "recipe": recipe_from_dict(spec, where), "folder": name})
    return out


def _train(spec: dict, folder: str, teachers: str, device: str, threads: int) -> str:
    """One run's distillation (in a worker process when jobs > 1)."""
    torch.set_num_threads(threads)
    recipe = recipe_from_dict(spec, "explore")
    return str(distill(recipe, Path(folder), progress=None, teachers=Path(teachers),
                       device=device))


def _teacher_trained(recipe: Recipe) -> str | None:
    """The cache key of the teacher this run trains (as distill.run decides), or None."""
    if recipe.teacher.file or not (recipe.distill.chain or build_loss(
            recipe.distill.losses, "explore", architecture(recipe)).needs_teacher):
        return None
    return _teacher_key(recipe)


def _window(record: SpikeRecord, steps: int, samples: int | None = None) -> SpikeRecord:
    """The first `samples` samples and `steps` steps of a record: what a run of that length
    on those inputs records (a neuron's first steps do not depend on later inputs)."""
    n = slice(None, samples)
    return SpikeRecord(record.backend, record.inputs[n, :steps],
                       [s[n, :steps] for s in record.layers], record.layer_names, record.info,
                       None if record.readout is None else record.readout[n, :steps],
                       record.detail)


def readout_steps(recipe: Recipe) -> list[int]:
    """Where a student is read out: at its T, or for full_range_kd at powers of two up to its
    longest trained window (and T)."""
    steps = recipe.encoding.timesteps
    if not any(term["name"] == "full_range_kd" for term in recipe.distill.losses):
        return [steps]
    longest = max(steps, recipe.distill.timesteps or steps)
    return sorted({2 ** i for i in range(longest.bit_length()) if 2 ** i <= longest}
                  | {steps, longest})


def measure(recipe: Recipe, folder: Path, presets: list[str], lava_samples: int,
            device: str = "cpu") -> dict:
    """Export a trained run, run it exactly on the whole test split, price it with every
    preset, check a Lava sample spike for spike, and write the run's report.json/html (the
    page `run` writes, its parity section that Lava sample)."""
    manifest = artifacts.export(folder / "checkpoint.pt", folder)
    net, meta = read_netx(folder / "network.net")
    steps = recipe.encoding.timesteps
    reads = readout_steps(recipe)
    spikes, labels = encoded_test_split({**meta, "timesteps": reads[-1]})
    exact = simulate_torch(net, spikes, device=device)
    deployed = _window(exact, steps)
    n = min(lava_samples, len(labels))
    lava = simulate(folder / "network.net", deployed.inputs[:n], "lava", progress=None)
    checked = compare(_window(deployed, steps, n), lava, labels[:n])
    result = report(net, deployed, deployed, labels, presets[0], extra={
        "recipe": recipe.name, "dataset": manifest["dataset"], "encoding": manifest["encoding"],
        "network": {**manifest["network"], "sha256": manifest["files"]["network.net"]},
        "backend": deployed.backend, "training": manifest["training"],
        "provenance": provenance(folder / "network.net", deployed.inputs, labels,
                                 EXACT_BACKEND),     # the registry's name, as run's
        "accuracy": {"teacher": manifest["accuracy"]["teacher"]},
        "artifacts": {"checkpoint": "checkpoint.pt", "nir": "student.nir",
                      "netx": "network.net", "manifest": "manifest.json"}})
    result["parity"] = {**{k: checked[k] for k in result["parity"]}, "samples": n,
                        "accuracy": checked["accuracy"]}
    write_json(folder / "report.json", result)
    write_html(result, folder)
    sections = (result if reads[-1] == steps else       # priced past T as well
                energy_sections(net, exact, labels, load_preset(presets[0])))
    sweeps = {name: priced(sections, load_preset(name))["timestep_sweep"] for name in presets}
    metrics = load_checkpoint(folder / "checkpoint.pt")[2]["metrics"]
    return {"T": steps, "test_samples": int(len(labels)),
            "accuracy_deployed": manifest["accuracy"]["deployed_exact"],
            "by_readout": {str(t): {
                "accuracy": sections["accuracy_by_timestep"][t - 1],
                "energy_pj": {p: s[t - 1]["energy_pj"] for p, s in sweeps.items()},
                "latency_us": {p: s[t - 1]["latency_us"] for p, s in sweeps.items()}}
                for t in reads},
            "val_accuracy": metrics.get("student_best_val_accuracy"),
            "epoch_selected": metrics.get("student_best_epoch"),
            "cores": result["resources"]["cores"], "chips": result["resources"]["chips"],
            "synapses": manifest["network"]["synapses"], "sizes": manifest["network"]["sizes"],
            "backend": deployed.backend, "training": manifest["training"],
            "train_seconds": metrics.get("train_seconds"),
            "lava": {"samples": n, "backend": lava.backend,
                     "spike_mismatches": checked["spike_mismatches"],
                     "readout_voltage_mismatches": checked["readout_voltage_mismatches"]}}


def _key(recipe: Recipe, presets: list[str], lava_samples: int) -> str:
    """What a run's explore.json was measured from: a different one is measured again."""
    return _digest({"recipe": recipe.to_dict(), "presets": presets, "lava": lava_samples})


def _done(folder: Path, key: str) -> dict | None:
    """The run's explore.json when it is one (ExploreRun) measured from `key`; else None, and
    the run is measured again."""
    try:
        found = json.loads((folder / "explore.json").read_text())
        ExploreRun.model_validate(found)
    except (OSError, ValueError):          # a ValidationError is a ValueError
        return None
    return found if found["key"] == key else None


def _mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (0 for one seed), as every results table gives."""
    return {"mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "per_seed": [float(v) for v in values]}


def _dominated(point: dict, others: list[dict], cost: str) -> bool:
    """Another point at least as accurate and at most as costly, better in one of the two."""
    a, c = point["accuracy"]["mean"], point[cost]
    return any(o[cost] is not None and o["accuracy"]["mean"] >= a and o[cost] <= c
               and (o["accuracy"]["mean"] > a or o[cost] < c) for o in others if o is not point)


def front(runs: list[dict], presets: list[str]) -> list[dict]:
    """Points (variant, read-out T') over their seeds, the front marked per cost, priced by
    the first preset (every preset's figures are kept)."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        for t in run["measured"]["by_readout"]:
            groups.setdefault((run["variant"], int(t)), []).append(run)
    points = []
    for (variant, t), members in groups.items():
        at = [m["measured"]["by_readout"][str(t)] for m in members]
        energy = {p: float(np.mean([a["energy_pj"][p] for a in at])) for p in presets}
        latency = {p: (None if any(a["latency_us"][p] is None for a in at)
                       else float(np.mean([a["latency_us"][p] for a in at]))) for p in presets}
        first = members[0]["measured"]
        points.append({
            "variant": variant, "settings": members[0]["settings"], "readout_T": t,
            "label": ", ".join(map(_slug, members[0]["settings"].values())),   # for plots
            "T": first["T"], "seeds": [m["seed"] for m in members],
            "accuracy": _mean_std([a["accuracy"] for a in at]),
            "val_accuracy": _mean_std([m["measured"]["val_accuracy"] for m in members]),
            "energy_pj": energy[presets[0]], "latency_us": latency[presets[0]],
            "energy_pj_by_preset": energy, "latency_us_by_preset": latency,
            "cores": max(m["measured"]["cores"] for m in members),
            "fits_one_chip": all(m["measured"]["chips"] == 1 for m in members),
            "lava_spike_mismatches": sum(m["measured"]["lava"]["spike_mismatches"]
                                         for m in members),
            "lava_samples": sum(m["measured"]["lava"]["samples"] for m in members),
            "runs": [m["folder"] for m in members],
            "recipe_digests": [m["recipe_digest"] for m in members],
            "backend": first["backend"], "test_samples": first["test_samples"]})
    for p in points:
        p["front"] = {cost: None if p[key] is None else not _dominated(p, points, key)
                      for cost, key in COSTS.items()}
    return sorted(points, key=lambda p: (p["energy_pj"], -p["accuracy"]["mean"]))


def explore(base: Recipe, grid: dict[str, list], out: Path, *, seeds: list[int] = (0,),
            jobs: int = 1, presets: list[str] | None = None, lava_samples: int = 50,
            device: str = "cpu", say=lambda line: None) -> dict:
    """Train, deploy and price every variant into `out` (made by the caller, checked before:
    see `variants`); write front.json and front.html; return front.json's content."""
    todo = variants(base, grid, list(seeds))
    presets = list(presets or [base.energy.preset])
    for run in todo:
        run["key"] = _key(run["recipe"], presets, lava_samples)
        run["recipe_digest"] = _digest(run["recipe"].to_dict())
    pending = [r for r in todo if _done(out / r["folder"], r["key"]) is None]
    say(f"explore: {len(todo)} runs ({len(todo) - len(pending)} already measured) "
        f"in {out}")
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    train = [(r["recipe"].to_dict(), str(out / r["folder"]), str(out / "teachers"), device,
              threads) for r in pending]
    firsts, seen = [], set()           # one run per teacher first: no teacher trains twice
    for i, r in enumerate(pending):
        if (k := _teacher_trained(r["recipe"])) and k not in seen:
            seen.add(k)
            firsts.append(i)
    waves = [firsts, [i for i in range(len(pending)) if i not in firsts]]
    if jobs > 1 and len(pending) > 1:
        with ProcessPoolExecutor(min(jobs, len(pending)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            for wave in waves:
                for i, _ in zip(wave, pool.map(_train_star, [train[i] for i in wave])):
                    _measured(pending[i], out, presets, lava_samples, device, say)
    else:                               # one at a time: in grid order (seeds outer)
        for i in range(len(pending)):
            _train(*train[i])
            _measured(pending[i], out, presets, lava_samples, device, say)
    runs = [{**r, **_done(out / r["folder"], r["key"])} for r in todo]
    result = {"recipe": base.name, "recipe_digest": _digest(base.to_dict()),
              "grid": grid, "seeds": list(seeds), "presets": presets,
              "front_preset": presets[0], "lava_samples": lava_samples,
              "points": front(runs, presets), "generated": generated(),
              "selection": "each run's checkpoint is its validation-best epoch; accuracy on "
                           "the whole test split, exact integer mode (= Lava)"}
    write_json(out / "front.json", written(Front, result))
    write_front(result, out)
    return result


def _train_star(args: tuple) -> str:
    return _train(*args)


def _measured(run: dict, out: Path, presets: list[str], lava_samples: int, device: str,
              say) -> None:
    folder, started = out / run["folder"], time.perf_counter()
    measured = measure(run["recipe"], folder, presets, lava_samples, device)
    measured["measure_seconds"] = time.perf_counter() - started
    write_json(folder / "explore.json", written(ExploreRun, {
        "key": run["key"], "variant": run["variant"], "settings": run["settings"],
        "seed": run["seed"], "folder": run["folder"], "recipe_digest": run["recipe_digest"],
        "measured": measured}))
    t = str(measured["T"])
    say(f"  {run['folder']}: deployed {measured['accuracy_deployed']:.4f}, "
        f"{measured['by_readout'][t]['energy_pj'][presets[0]] / 1e6:.3g} uJ, "
        f"{measured['cores']} cores, Lava {measured['lava']['spike_mismatches']} mismatches "
        f"on {measured['lava']['samples']} samples")
