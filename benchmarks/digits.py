"""Digits benchmark: deployed accuracy over seeds, parity, energy, and backend speed.

For each seed, trains the default recipe's teacher and student from scratch (seeded), exports
through NIR to netx, runs the full test split on Lava and on the exact torch mode in the same
process, and records accuracy (validation-selected epoch; test split used once at the end),
spike mismatches, energy per inference and samples/s of both backends side by side.

    .venv/bin/python benchmarks/digits.py            # writes benchmarks/results/digits.json
    .venv/bin/python benchmarks/digits.py --threads 1   # adds accuracy when trained on 1 thread
    .venv/bin/python benchmarks/render.py            # refreshes the README tables
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.files import write_json
from timing import timed
from neurodeploy.netx import read_netx
from neurodeploy.artifacts import export
from neurodeploy.distill.run import distill
from neurodeploy.inputs import encoded_test_split
from neurodeploy.report.summary import report
from neurodeploy.simulation import simulate
from neurodeploy.recipe import load_recipe

SEEDS = (0, 1, 2)
OUT = Path(__file__).parent / "results" / "digits.json"


def trained(seed: int, tmp: str):
    """The default recipe distilled and exported under `seed` in tmp/seed<seed>: (recipe, its
    folder, the export manifest, the network and metadata read back, training seconds)."""
    recipe = load_recipe("digits", {"teacher.seed": seed, "distill.seed": seed})
    out = Path(tmp) / f"seed{seed}"
    t0 = time.perf_counter()
    distill(recipe, out, progress=False)
    train_s = time.perf_counter() - t0
    manifest = export(out / "checkpoint.pt", out)
    return (recipe, out, manifest, *read_netx(out / "network.net"), train_s)


def by_threads(threads: int) -> int:
    """Training on another number of threads changes float summation order, so every seed is
    trained again under `threads` and its deployed (exact mode) test accuracy is added to
    digits.json's by_threads; the main runs are kept."""
    torch.set_num_threads(threads)
    accuracies = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in SEEDS:
            manifest = trained(seed, tmp)[2]       # export measured it on the test split
            accuracies.append(manifest["accuracy"]["deployed_exact"])
            print(f"threads {threads} seed {seed}: {accuracies[-1]:.4f}", flush=True)
    data = json.loads(OUT.read_text())
    data.setdefault("by_threads", {})[str(threads)] = {
        "seeds": list(SEEDS), "accuracy_deployed": accuracies,
        "mean": statistics.mean(accuracies), "std": statistics.stdev(accuracies)}
    write_json(OUT, data)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, help="only retrain every seed on this many threads "
                                                "and add its accuracy to the results")
    args = ap.parse_args()
    if args.threads:
        return by_threads(args.threads)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in SEEDS:
            recipe, out, manifest, net, meta, train_s = trained(seed, tmp)
            spikes, labels = encoded_test_split(meta)
            exact, torch_s = timed(lambda: simulate_torch(net, spikes))
            t0 = time.perf_counter()
            lava = simulate(out / "network.net", spikes, "lava", progress=False)
            lava_s = time.perf_counter() - t0
            rep = report(net, exact, lava, labels, recipe.energy.preset)
            runs.append({
                "seed": seed, "T": recipe.encoding.timesteps, "samples": len(labels),
                "teacher_accuracy": manifest["accuracy"]["teacher"],
                "accuracy_deployed": rep["accuracy"]["student_deployed"],
                "accuracy_torch_exact": rep["accuracy"]["student_torch"],
                "spike_mismatches": rep["parity"]["spike_mismatches"],
                "energy_per_inference_uj": rep["energy"]["per_inference_pj"] / 1e6,
                "synaptic_ops_per_inference": sum(e["synaptic_ops"] for e in rep["per_timestep"]),
                "train_s": train_s,
                "torch_exact_samples_per_s": len(labels) / torch_s,
                "lava_samples_per_s": len(labels) / lava_s,
            })
            print(runs[-1], flush=True)

    def stat(key):
        values = [r[key] for r in runs]
        return {"mean": statistics.mean(values), "std": statistics.stdev(values)}

    write_json(OUT, {
        "benchmark": "digits", "recipe": "models/digits.yaml", "seeds": list(SEEDS),
        "machine": {"cpu_count": torch.get_num_threads(), "platform": platform.platform(),
                    "python": sys.version.split()[0], "torch": torch.__version__},
        "selection": "validation-selected epoch; test split evaluated once",
        "runs": runs,
        "summary": {k: stat(k) for k in ("teacher_accuracy", "accuracy_deployed",
                                         "energy_per_inference_uj", "torch_exact_samples_per_s",
                                         "lava_samples_per_s")},
    })
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
