"""Every distillation method on the same spiking conv student, Fashion-MNIST, several seeds.

Each (method, seed) trains the student from scratch from models/fmnist_conv.yaml with only the
loss (and, for Distilling Spikes, the teacher and chain) changed; teachers are trained once per
seed and shared by the methods that use the same one. Each student is exported and measured on
the full test split in the exact integer mode (which equals Lava spike for spike; checked in
tests/ and benchmarks/backends.py): deployed accuracy at the recipe's T, and read out after every
T' = 1..8 of one 8-step run (the input frame repeats, so T' > T is defined). The epoch is
selected on the validation split. Seeds run in the outer loop, so a partial sweep has every
method; results are appended to the JSON after every run and each run keeps resumable
checkpoints, so a killed sweep continues where it stopped.

    .venv/bin/python benchmarks/distill_fmnist.py [--methods a,b] [--seeds 0,1,2] [--epochs N]
        [--lava 1000]   # then: the validation-best student -> export/fmnist_conv, run on Lava
    .venv/bin/python benchmarks/render.py        # README table from the results
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from neurodeploy.distill.teachers import CNNTeacher, mlp_teacher
from neurodeploy.energy import accuracy_by_timestep, count_events
from neurodeploy.energy.hardware import layer_table
from neurodeploy.errors import write_json
from neurodeploy.netx import read_netx
from neurodeploy.parity import compare
from neurodeploy.pipeline import distill, encoded_test_split, export, load_checkpoint, simulate
from neurodeploy.recipe import load_recipe, recipe_from_dict
from timing import timed

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "distill_fmnist.json"
WORK = ROOT / "benchmarks" / ".work" / "distill_fmnist"
READOUT_STEPS = 8
IMAGE, CLASSES = torch.Size((1, 28, 28)), 10      # Fashion-MNIST, as the teachers read it
MACHINE = {"platform": platform.platform(), "torch": torch.__version__, "cpus": os.cpu_count(),
           "threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
CE = {"name": "ce", "weight": 0.5}
KD = {"name": "logit_kd", "weight": 0.5, "temperature": 2.0}
METHODS = {       # name: (loss terms, teacher overrides, chain)
    "none": ([{"name": "ce"}], {}, []),
    "logit_kd": ([CE, KD], {}, []),
    "full_range_kd": ([{"name": "full_range_kd", "alpha": 0.2, "beta": 0.5,
                        "temperature": 3.0}], {}, []),
    "samd_nld": ([{"name": "ce"}, {"name": "samd"}, {"name": "nld"}], {}, []),
    "kdsnn": ([CE, KD, {"name": "feature_kd", "weight": 1.0}], {}, []),
    "lasnn": ([CE, KD, {"name": "attention", "weight": 1.0}], {}, []),
    "distilling_spikes": ([CE, KD, {"name": "spike_train", "weight": 1.0}],
                          {"spiking": True, "conv": [32, 64], "hidden": [], "epochs": 3, "lr": 0.005},
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


def teacher_size(recipe, state: dict | None) -> dict:
    """Parameters and, for ANN teachers, multiply-accumulates per inference."""
    if state is None:
        return {}
    params = sum(v.numel() for k, v in state.items()
                 if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    if recipe.teacher.spiking:
        return {"kind": "SNN", "params": params}
    model = (CNNTeacher(IMAGE, recipe.teacher.conv, CLASSES) if recipe.teacher.conv
             else mlp_teacher(IMAGE.numel(), recipe.teacher.hidden, CLASSES))
    macs = []                       # one MAC per weight per output element
    hooks = [m.register_forward_hook(lambda m, _, y: macs.append(y.numel() * m.weight[0].numel()))
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, IMAGE.numel()))
    for h in hooks:
        h.remove()
    return {"kind": "CNN" if recipe.teacher.conv else "MLP", "params": params, "macs": sum(macs)}


def measure(recipe, work: Path, method: str, seed: int, seconds: float) -> dict:
    """Export the student and measure it as deployed (exact integer mode = Lava)."""
    manifest = export(work / "checkpoint.pt", work)
    net, meta = read_netx(work / "network.net")
    spikes, labels = encoded_test_split({**meta, "timesteps": READOUT_STEPS})
    record = simulate(work / "network.net", spikes, "torch", progress=False)
    by_t = accuracy_by_timestep(record, labels)
    steps = recipe.encoding.timesteps
    _, _, ckpt = load_checkpoint(work / "checkpoint.pt")
    table = layer_table(net)
    synops = count_events(record, net)["synaptic_ops"][:, :steps].sum()
    return {"method": method, "seed": seed, "T": steps, "accuracy_deployed": by_t[steps - 1],
            "accuracy_by_readout_T": by_t,
            "val_accuracy": ckpt["metrics"]["student_best_val_accuracy"],
            "epoch_selected": ckpt["metrics"]["student_best_epoch"],
            "teacher_accuracy": manifest["accuracy"]["teacher"],
            "teacher": teacher_size(recipe, ckpt["teacher"]),
            "student": {"params": sum(r["synapses"] for r in table),
                        "synapses": sum(r["nonzero_synapses"] for r in table),
                        "macs_as_ann": sum(r["macs"] for r in table) * steps,
                        "synaptic_ops": float(synops)},
            "epochs": recipe.distill.epochs, "seconds": seconds}


def lava_check(results: dict, samples: int) -> dict:
    """The validation-selected best student becomes export/fmnist_conv and runs through Lava on
    the first `samples` test samples; every spike is compared with the exact mode."""
    best = max(results["runs"], key=lambda r: r["val_accuracy"])
    work = WORK / f"fmnist_{best['method']}_s{best['seed']}"
    target = ROOT / "export" / "fmnist_conv"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("student.nir", "network.net", "manifest.json"):
        shutil.copyfile(work / name, target / name)
    _, meta = read_netx(target / "network.net")
    spikes, labels = encoded_test_split(meta)
    spikes, labels = spikes[:samples], labels[:samples]
    lava, seconds = timed(lambda: simulate(target / "network.net", spikes, "lava"), 1)
    exact = simulate(target / "network.net", spikes, "torch")
    result = compare(exact, lava, labels)
    return {"method": best["method"], "seed": best["seed"], "val_accuracy": best["val_accuracy"],
            "samples": samples, "lava_seconds": seconds,
            "spike_mismatches": result["spike_mismatches"],
            "spikes_compared": result["spikes_compared"],
            "accuracy_lava": lava.accuracy(labels), "accuracy_exact": exact.accuracy(labels)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, help="override the recipe's distillation epochs")
    ap.add_argument("--teacher-epochs", type=int, help="override the teachers' epochs")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--lava", type=int, metavar="N",
                    help="afterwards, run the validation-best student through Lava on N samples")
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"runs": []}
    done = {(r["method"], r["seed"]) for r in results["runs"]}
    for seed in (int(s) for s in args.seeds.split(",")):
        for method in args.methods.split(","):
            if (method, seed) in done:
                continue
            recipe = variant(method, seed, args.epochs, args.teacher_epochs)
            work = WORK / recipe.name
            t0 = time.perf_counter()
            ckpt = work / "checkpoint.pt"
            if not (ckpt.exists() and load_checkpoint(ckpt)[1] == recipe):
                distill(recipe, work, teachers=WORK / "teachers")
            results["runs"].append(measure(recipe, work, method, seed, time.perf_counter() - t0))
            results["recipe"] = load_recipe("fmnist_conv").to_dict()    # what made the runs
            results["machine"] = MACHINE
            write_json(out, results)           # after every run: a killed sweep resumes
            print(results["runs"][-1], flush=True)
    if args.lava:
        results["lava_check"] = lava_check(results, args.lava)
        write_json(out, results)
        print(results["lava_check"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
