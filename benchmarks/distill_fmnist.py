"""Every distillation method on the same spiking conv student, Fashion-MNIST, several seeds.

Each (method, seed) trains a teacher and the student from scratch from models/fmnist_conv.yaml
with only the loss (and, for Distilling Spikes, the teacher and chain) changed, exports it, and
measures deployed accuracy on the full test split in the exact integer mode (which equals Lava
spike for spike; checked in tests/ and benchmarks/backends.py), at every readout time T' <= T.
The epoch is selected on the validation split. Results are appended to the JSON after every run,
and each run keeps resumable checkpoints, so a killed sweep continues where it stopped.

    .venv/bin/python benchmarks/distill_fmnist.py [--methods a,b] [--seeds 0,1,2] [--epochs N]
    .venv/bin/python benchmarks/render.py        # README table from the results
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import torch

from neurodeploy.errors import write_json
from neurodeploy.netx import read_netx
from neurodeploy.pipeline import distill, encoded_test_split, export, load_checkpoint, simulate
from neurodeploy.energy import accuracy_by_timestep
from neurodeploy.recipe import load_recipe, recipe_from_dict

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "distill_fmnist.json"
WORK = ROOT / "benchmarks" / ".work" / "distill_fmnist"
CE = {"name": "ce", "weight": 0.5}
KD = {"name": "logit_kd", "weight": 0.5, "temperature": 2.0}
METHODS = {       # name: (loss terms, teacher overrides, chain)
    "none": ([{"name": "ce"}], {}, []),
    "logit_kd": ([CE, KD], {}, []),
    "full_range_kd": ([{"name": "full_range_kd", "alpha": 0.2, "beta": 0.5,
                        "temperature": 3.0}], {}, []),
    "samd_nld": ([{"name": "ce"}, {"name": "samd"}, {"name": "nld"}], {"conv": [32, 64]}, []),
    "kdsnn": ([CE, KD, {"name": "feature_kd", "weight": 1.0}], {"conv": [32, 64]}, []),
    "lasnn": ([CE, KD, {"name": "attention", "weight": 1.0}], {"conv": [32, 64]}, []),
    "distilling_spikes": ([CE, KD, {"name": "spike_train", "weight": 1.0}],
                          {"spiking": True, "conv": [32, 64], "hidden": []},
                          [{"conv": [{"channels": 24, "kernel": 3, "stride": 2, "padding": 1},
                                     {"channels": 48, "kernel": 3, "stride": 2, "padding": 1}]}]),
}


def variant(method: str, seed: int, epochs: int | None, teacher_epochs: int | None = None):
    base = load_recipe("fmnist_conv").to_dict()
    losses, teacher, chain = METHODS[method]
    base["name"] = f"fmnist_{method}_s{seed}"
    base["teacher"].update(teacher, seed=seed)
    base["distill"].update(losses=losses, chain=chain, seed=seed)
    if epochs:
        base["distill"]["epochs"] = epochs
    if teacher_epochs:
        base["teacher"]["epochs"] = teacher_epochs
    return recipe_from_dict(base, f"benchmark {method}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, help="override the recipe's distillation epochs")
    ap.add_argument("--teacher-epochs", type=int, help="override the teachers' epochs")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"runs": []}
    done = {(r["method"], r["seed"]) for r in results["runs"]}
    for method in args.methods.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            if (method, seed) in done:
                continue
            recipe = variant(method, seed, args.epochs, args.teacher_epochs)
            work = WORK / recipe.name
            t0 = time.perf_counter()
            ckpt = work / "checkpoint.pt"
            if not (ckpt.exists() and load_checkpoint(ckpt)[1] == recipe):
                distill(recipe, work)
            manifest = export(ckpt, work)
            net, meta = read_netx(work / "network.net")
            spikes, labels = encoded_test_split(meta)
            record = simulate(work / "network.net", spikes, "torch")
            results["runs"].append({
                "method": method, "seed": seed, "T": recipe.encoding.timesteps,
                "accuracy_deployed": record.accuracy(labels),
                "accuracy_by_readout_T": accuracy_by_timestep(record, labels),
                "teacher_accuracy": manifest["accuracy"]["teacher"],
                "student_synapses": manifest["network"]["synapses"],
                "epochs": recipe.distill.epochs, "seconds": time.perf_counter() - t0})
            results["machine"] = {"platform": platform.platform(), "torch": torch.__version__,
                                  "cuda": torch.cuda.is_available()}
            write_json(out, results)           # after every run: a killed sweep resumes
            print(results["runs"][-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
