"""Every distillation method on the same spiking conv student, Fashion-MNIST, several seeds.

Each (method, seed) trains the student from scratch from models/fmnist_conv.yaml (a readout
student: summed voltage, not spike counts) with only the loss (and, for Distilling Spikes, the
teacher and chain) changed; teachers are trained once per seed and shared by the methods that use
the same one. Each student is exported and measured on the full test split in the exact integer
mode (which equals Lava spike for spike; checked in tests/ and benchmarks/backends.py): deployed
accuracy at the recipe's T = 4, and read out after every T' = 1..8 of one 8-step run (the input
frame repeats, so T' > T is defined; full_range_kd trains for every T'). The epoch is selected on
the validation split. Method `ann_ceiling` is a float ReLU ANN with the student's layers (on the
analog image), trained as long and selected the same way: what the architecture can reach.

Resumable: rows are appended to the results file one by one (seeds in the outer loop, so a
partial sweep has every method) and a rerun skips the rows it holds; each row names the machine
(CPU model or GPU, threads) that produced it. `--quick` is the same protocol for every method on
a seeded 10,000-sample training subset (2,000 validation), 3 epochs, measured on the first
2,000 test samples without writing exports, sized to finish all rows in
about an hour on 2 CPU cores; it writes its own results file.

    .venv/bin/python benchmarks/distill_fmnist.py [--quick] [--wide] [--methods a,b] [--seeds 3|0,1,2]
        [--epochs N] [--lava 1000]   # then: the validation-best student -> export/fmnist_conv
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch
from torch import nn

from neurodeploy.data import load_dataset
from neurodeploy.distill.teachers import CNNTeacher, mlp_teacher
from neurodeploy.distill.train import subset, train_teacher
from neurodeploy.energy import accuracy_by_timestep, count_events
from neurodeploy.energy.hardware import layer_table
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.files import write_json
from neurodeploy.netx import read_netx
from neurodeploy.parity import compare
from neurodeploy.artifacts import export
from neurodeploy.checkpoint import load_checkpoint
from neurodeploy.distill.run import _digest, distill
from neurodeploy.inputs import encoded_test_split
from neurodeploy.simulation import simulate
from neurodeploy.recipe import load_recipe, recipe_from_dict
from timing import timed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
OUT = {"full": RESULTS / "distill_fmnist_sweep.json", "quick": RESULTS / "distill_fmnist_quick.json"}
WORK = ROOT / "benchmarks" / ".work" / "distill_fmnist"
READOUT_STEPS = 8
IMAGE, CLASSES = torch.Size((1, 28, 28)), 10      # Fashion-MNIST, as the teachers read it
CE = {"name": "ce", "weight": 0.5}
KD = {"name": "logit_kd", "weight": 0.5, "temperature": 2.0}
SPIKING_TEACHER = {"spiking": True, "conv": [32, 64], "hidden": [], "epochs": 3, "lr": 0.005,
                   "augment": "none", "schedule": "constant", "weight_decay": 0.0}
ASSISTANT = [{"conv": [{"channels": 24, "kernel": 3, "stride": 2, "padding": 1},
                       {"channels": 48, "kernel": 3, "stride": 2, "padding": 1}]}]
METHODS = {       # name: (loss terms, teacher overrides, chain); full_range_kd also trains on
                  # READOUT_STEPS steps (distill.timesteps) so that every T' it is read at is trained
    "none": ([{"name": "ce"}], {}, []),
    "logit_kd": ([CE, KD], {}, []),
    "full_range_kd": ([{"name": "full_range_kd", "alpha": 0.2, "beta": 0.5,
                        "temperature": 3.0}], {}, []),
    "samd_nld": ([{"name": "ce"}, {"name": "samd"}, {"name": "nld"}], {}, []),
    "kdsnn": ([CE, KD, {"name": "feature_kd", "weight": 1.0}], {}, []),
    "lasnn": ([CE, KD, {"name": "attention", "weight": 1.0}], {}, []),
    # a readout student has no output spike train: Distilling Spikes keeps its spike-count
    # loss (logit KD from the spiking teacher, through the assistant) and drops spike_train
    "distilling_spikes": ([CE, KD], SPIKING_TEACHER, ASSISTANT),
}
ROW_ORDER = [*METHODS, "ann_ceiling"]    # how rows are stored (seeds first)
QUICK_TEST_SAMPLES = 2000     # --quick measures on the first 2,000 test samples
TEACHER = {"lr": 0.003, "schedule": "onecycle", "weight_decay": 0.05, "augment": "crop_flip"}
PROTOCOL = {   # what each protocol changes in models/fmnist_conv.yaml, for every method alike
    "full": {"distill": {"epochs": 15, "validate_every": 3},
             "teacher": {**TEACHER, "epochs": 15}},
    "quick": {"dataset": {"train_samples": 10000, "val_samples": 2000},
              "distill": {"epochs": 3, "validate_every": 1},
              # on the 10,000-sample subset, 15 epochs (first 2,000 test samples, 1 thread,
              # ~390 s): 88.55% without augmentation, 86.70% with crop_flip; 6 epochs: ~86.6%
              "teacher": {**TEACHER, "epochs": 15, "augment": "none"}},
}
# --wide: the same protocol on a student with twice the channels (about 3x the MACs)
WIDE = {"conv": [{"channels": 32, "kernel": 3, "stride": 2, "padding": 1},
                 {"channels": 64, "kernel": 3, "stride": 2, "padding": 1}]}
PROTOCOL |= {f"{name}_wide": {**spec, "student": WIDE} for name, spec in PROTOCOL.items()}
OUT |= {f"{name}_wide": path.with_name(path.stem + "_wide.json") for name, path in OUT.items()}


def machine() -> dict:
    """What produced a row: CPU model (or GPU name) and threads."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__, "platform": platform.platform()}


def base(protocol: str, seed: int, epochs: int | None) -> dict:
    recipe = load_recipe("fmnist_conv").to_dict()
    for section, values in PROTOCOL[protocol].items():
        recipe[section].update(values)
    recipe["teacher"]["seed"] = recipe["distill"]["seed"] = seed
    if epochs:
        recipe["distill"]["epochs"] = epochs
    return recipe


def variant(method: str, seed: int, protocol: str, epochs: int | None = None):
    recipe = base(protocol, seed, epochs)
    losses, teacher, chain = METHODS[method]
    recipe["name"] = f"fmnist_{protocol}_{method}_s{seed}"
    spiking_epochs = 2 if protocol.startswith("quick") else teacher.get("epochs")
    recipe["teacher"].update(teacher, **({"epochs": spiking_epochs} if teacher else {}))
    recipe["distill"].update(losses=losses, chain=chain)
    if method == "full_range_kd":
        recipe["distill"]["timesteps"] = READOUT_STEPS
    return recipe_from_dict(recipe, f"benchmark {method}")


def row_digest(method: str, seed: int, protocol: str, epochs: int | None) -> str:
    """What produced a row: its recipe (with the seed) and the test samples it was measured on.
    A row whose digest no longer matches is stale and is measured again."""
    recipe = (base(protocol, seed, epochs) if method == "ann_ceiling"
              else variant(method, seed, protocol, epochs).to_dict())
    return _digest({"method": method, "recipe": recipe, "test_samples": test_samples(protocol)})


def test_samples(protocol: str) -> int | None:
    return QUICK_TEST_SAMPLES if protocol.startswith("quick") else None


class AnnTwin(nn.Module):
    """The student's layers as a float ReLU ANN on the analog image: the accuracy ceiling of
    the architecture (same convs, same dense widths, no spikes, no 8-bit grid)."""

    def __init__(self, student: dict, shape=IMAGE, classes=CLASSES):
        super().__init__()
        self.shape, layers, c = tuple(shape), [], shape[0]
        for spec in student["conv"]:
            layers += [nn.Conv2d(c, spec["channels"], spec["kernel"], spec.get("stride", 1),
                                 spec.get("padding", 0)), nn.ReLU()]
            c = spec["channels"]
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            width = self.convs(torch.zeros(1, *self.shape)).numel()
        dense = []
        for h in student["hidden"]:
            dense += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.dense = nn.Sequential(nn.Flatten(), *dense, nn.Linear(width, classes))

    def forward(self, x):
        return self.dense(self.convs(x.reshape(len(x), *self.shape)))


def ann_ceiling(seed: int, protocol: str, epochs: int | None) -> dict:
    recipe = recipe_from_dict({**base(protocol, seed, epochs), "name": "ceiling"}, "benchmark")
    d = recipe.dataset
    data = subset(load_dataset(d.name, d.split_seed), d.train_samples, d.val_samples, d.split_seed)
    torch.manual_seed(seed)
    model, hist = train_teacher(AnnTwin(recipe.student.model_dump()), data.train.x,
                                data.train.y, data.val.x, data.val.y,
                                epochs=recipe.distill.epochs, lr=recipe.distill.lr,
                                batch_size=recipe.distill.batch_size, seed=seed, progress=False,
                                schedule="cosine")
    x, y = data.test.x[:test_samples(protocol)], data.test.y[:test_samples(protocol)]
    with torch.no_grad():
        pred = torch.cat([model(torch.as_tensor(x[i:i + 1000])).argmax(1)
                          for i in range(0, len(x), 1000)]).numpy()
    return {"accuracy_deployed": None, "accuracy_float": float((pred == y).mean()),
            "test_samples": int(len(y)),
            "val_accuracy": hist.best_val_accuracy, "epoch_selected": hist.best_epoch,
            "T": recipe.encoding.timesteps, "epochs": recipe.distill.epochs,
            "student": {"params": sum(p.numel() for p in model.parameters())}}


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


def measure(recipe, work: Path, test_samples: int | None = None) -> dict:
    """Export the student and measure it as deployed (exact integer mode = Lava). With
    `test_samples` (--quick), the checkpoint's integer network (what export writes, bit for
    bit: tests/test_readout.py) on the first test samples, without writing the export."""
    student, _, ckpt = load_checkpoint(work / "checkpoint.pt")
    meta = {"dataset": recipe.dataset.model_dump(), "encoding": recipe.encoding.metadata(),
            "timesteps": READOUT_STEPS}
    if test_samples:
        net = student.to_integer()
        spikes, labels = encoded_test_split(meta)
        spikes, labels = spikes[:test_samples], labels[:test_samples]
        record = simulate_torch(net, spikes)
        teacher_accuracy = ckpt["metrics"]["teacher_test_accuracy"]
    else:
        teacher_accuracy = export(work / "checkpoint.pt", work)["accuracy"]["teacher"]
        net, meta = read_netx(work / "network.net")
        spikes, labels = encoded_test_split({**meta, "timesteps": READOUT_STEPS})
        record = simulate(work / "network.net", spikes, "torch", progress=False)
    by_t = accuracy_by_timestep(record, labels)
    steps = recipe.encoding.timesteps
    table = layer_table(net)
    synops = count_events(record, net)["synaptic_ops"][:, :steps].sum()
    return {"T": steps, "accuracy_deployed": by_t[steps - 1], "accuracy_by_readout_T": by_t,
            "val_accuracy": ckpt["metrics"]["student_best_val_accuracy"],
            "epoch_selected": ckpt["metrics"]["student_best_epoch"],
            "teacher_accuracy": teacher_accuracy, "test_samples": int(len(labels)),
            "teacher": teacher_size(recipe, ckpt["teacher"]),
            "student": {"params": sum(r["synapses"] for r in table),
                        "synapses": sum(r["nonzero_synapses"] for r in table),
                        "macs_as_ann": sum(r["macs"] for r in table) * steps,
                        "synaptic_ops": float(synops)},
            "epochs": recipe.distill.epochs, "train_timesteps": recipe.distill.timesteps or steps}


def lava_check(results: dict, samples: int, protocol: str) -> dict:
    """The validation-selected best student becomes export/fmnist_conv and runs through Lava on
    the first `samples` test samples; every spike is compared with the exact mode."""
    best = max((r for r in results["runs"] if r["method"] != "ann_ceiling"),
               key=lambda r: r["val_accuracy"])
    work = WORK / f"fmnist_{protocol}_{best['method']}_s{best['seed']}"
    export(work / "checkpoint.pt", work)      # --quick rows measure without exporting
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
            "readout_voltage_mismatches": result["readout_voltage_mismatches"],
            "spikes_compared": result["spikes_compared"],
            "accuracy_lava": lava.accuracy(labels), "accuracy_exact": exact.accuracy(labels)}


def run_row(method: str, seed: int, protocol: str, epochs: int | None) -> dict:
    if method == "ann_ceiling":
        return ann_ceiling(seed, protocol, epochs)
    recipe = variant(method, seed, protocol, epochs)
    work = WORK / recipe.name
    ckpt = work / "checkpoint.pt"
    if not (ckpt.exists() and load_checkpoint(ckpt)[1] == recipe):
        ckpt.unlink(missing_ok=True)    # another protocol's (distill refuses to overwrite it)
        distill(recipe, work, progress=False, teachers=WORK / "teachers")
    return measure(recipe, work, test_samples(protocol))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(ROW_ORDER))
    ap.add_argument("--seeds", default="3", help="a count (0..N-1) or a comma list")
    ap.add_argument("--quick", action="store_true", help="the ~1 hour protocol (see above)")
    ap.add_argument("--wide", action="store_true", help="the student with 32 and 64 channels")
    ap.add_argument("--epochs", type=int, help="override the protocol's distillation epochs")
    ap.add_argument("--max-rows", type=int, help="stop after this many new rows")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--out", help="results file (default: per protocol, in benchmarks/results)")
    ap.add_argument("--lava", type=int, metavar="N",
                    help="afterwards, run the validation-best student through Lava on N samples")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    protocol = ("quick" if args.quick else "full") + ("_wide" if args.wide else "")
    out = Path(args.out) if args.out else OUT[protocol]
    seeds = ([int(s) for s in args.seeds.split(",")] if "," in args.seeds
             else list(range(int(args.seeds))))
    results = json.loads(out.read_text()) if out.exists() else {"runs": []}
    results.update(protocol=protocol, recipe=base(protocol, 0, args.epochs))
    fresh = []
    for row in results["runs"]:
        key = (row["method"], row["seed"])
        if row.get("recipe_digest") == row_digest(*key, protocol, args.epochs):
            fresh.append(row)
        else:
            print(f"stale row {key} (its recipe or test samples changed): measured again")
    results["runs"] = fresh
    done = {(r["method"], r["seed"]) for r in results["runs"]}
    new = 0
    for seed in seeds:
        for method in args.methods.split(","):
            if (method, seed) in done or (args.max_rows is not None and new >= args.max_rows):
                continue
            # a row that resumes a cut-off run's training times only the rest of it
            resumed = method != "ann_ceiling" and (
                WORK / variant(method, seed, protocol, args.epochs).name
                / "distill_state.pt").exists()
            t0, cpu0 = time.perf_counter(), time.process_time()
            row = run_row(method, seed, protocol, args.epochs)
            entry = {"method": method, "seed": seed, "protocol": protocol, **row,
                     "recipe_digest": row_digest(method, seed, protocol, args.epochs),
                     "seconds": time.perf_counter() - t0,
                     "cpu_seconds": time.process_time() - cpu0,   # shared hosts
                     **({"resumed": True} if resumed else {}), "machine": machine()}
            results["runs"] = sorted([*results["runs"], entry],
                                     key=lambda r: (r["seed"], ROW_ORDER.index(r["method"])))
            write_json(out, results)           # after every row: a killed sweep resumes
            new += 1
            print(json.dumps(entry), flush=True)
    if args.lava:
        results["lava_check"] = lava_check(results, args.lava, protocol)
        write_json(out, results)
        print(results["lava_check"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
