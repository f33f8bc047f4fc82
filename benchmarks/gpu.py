"""The GPU campaign: what a borrowed GPU must measure, prepared so its minutes go to measuring.

    .venv/bin/python benchmarks/gpu.py             # <= 8 min on one GPU -> results/gpu.json
    .venv/bin/python benchmarks/gpu.py --sweep     # <= 9 min: distill_fmnist rows in parallel
    .venv/bin/python benchmarks/gpu.py --dry-run   # the same plumbing on the CPU, tiny sizes

The campaign: the shipped exports and the netx corpus on the CUDA exact mode against the CPU
exact mode and Lava (spikes or graded messages, every layer and step: 0 mismatches expected),
the emulator on CUDA against the CPU, the float backend's CUDA predictions against its CPU
ones, the throughput of every backend on both devices in the same run, `tune` of the NIR
paper's Braille RSNN on both devices (seconds, agreement), and a one-process nccl
DistributedDataParallel smoke of `distill`. Each check is appended to the results file
as it finishes, so a run cut off by the GPU's time limit keeps what it measured; the machine
is named in the file. `--sweep` runs benchmarks/distill_fmnist.py (all methods, full data,
validation-selected) as one process per method on the one GPU, each into its own resumable
results file under benchmarks/results/gpu_sweep/, and benchmarks/explore.py fmnist (the
accuracy-energy front, into results/explore_fmnist.json) beside them, until the deadline.
`--dry-run` (in the test suite) runs everything on the CPU as the "GPU", at tiny sizes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neurodeploy.backends.emulator import simulate_emulator_sdnn
from neurodeploy.files import write_json
from neurodeploy.netx import read_netx
from neurodeploy.netx.sdnn import is_sdnn, read_sdnn
from neurodeploy.neurons.sigma_delta import run_exact as sdnn_exact
from neurodeploy.parity import message_mismatches
from neurodeploy.parity import compare
from neurodeploy.inputs import load_inputs
from neurodeploy.simulation import simulate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CORPUS = ROOT / "tests" / "data" / "lava_dl"
EXPORTS = {"digits": 360, "fmnist_conv": 2000}     # test samples per export (full run)
METHODS = ("none", "logit_kd", "kdsnn", "full_range_kd", "ann_ceiling")


def machine(device: str) -> dict:
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    return {"device": device, "gpu": gpu, "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "platform": platform.platform()}


class Log:
    """Results appended check by check (a run cut off keeps what it measured)."""

    def __init__(self, path: Path, header: dict):
        self.path, self.data = path, {**header, "checks": []}
        write_json(path, self.data)

    def add(self, check: dict) -> None:
        self.data["checks"].append(check)
        write_json(self.path, self.data)
        print(json.dumps(check), flush=True)


def _timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def exports(log: Log, device: str, dry: bool) -> None:
    for name, samples in EXPORTS.items():
        path = ROOT / "export" / name / "network.net"
        _, meta = read_netx(path)
        n = 20 if dry else samples
        spikes, labels = load_inputs(meta, samples=n)
        runs, rates = {}, {}
        for backend in ("torch", "emulator", "float"):
            for where, dev in (("cpu", "cpu"), ("gpu", device)):
                record, seconds = _timed(lambda: simulate(path, spikes, backend, progress=False,
                                                          device=dev))
                runs[backend, where], rates[f"{backend} ({where})"] = record, n / seconds
        lava_n = 4 if dry else 200
        lava, seconds = _timed(lambda: simulate(path, spikes[:lava_n], "lava", progress=False))
        rates["lava (cpu)"] = lava_n / seconds
        first = runs["torch", "gpu"]
        cut = type(first)(backend=first.backend, inputs=first.inputs[:lava_n],
                          layers=[s[:lava_n] for s in first.layers],
                          layer_names=first.layer_names,
                          readout=None if first.readout is None else first.readout[:lava_n])
        pairs = {"torch gpu vs cpu": compare(runs["torch", "cpu"], first, labels),
                 "emulator gpu vs torch gpu": compare(first, runs["emulator", "gpu"], labels),
                 "emulator cpu vs torch gpu": compare(first, runs["emulator", "cpu"], labels),
                 "lava vs torch gpu": compare(cut, lava, labels[:lava_n])}
        float_agree = float(np.mean(runs["float", "cpu"].predictions
                                    == runs["float", "gpu"].predictions))
        log.add({"check": f"export/{name}", "samples": n, "lava_samples": lava_n,
                 "mismatches": {k: p["spike_mismatches"] + (p["readout_voltage_mismatches"] or 0)
                                for k, p in pairs.items()},
                 "float_prediction_agreement_gpu_vs_cpu": float_agree,
                 "samples_per_s": rates})


def corpus(log: Log, device: str, dry: bool) -> None:
    rng = np.random.default_rng(0)
    for path in sorted(CORPUS.glob("*.net")):
        if dry and path.stat().st_size > 600_000:
            continue
        if is_sdnn(path):
            net = read_sdnn(path)
            x = rng.integers(-50, 64, size=(1, 2 if dry else 16, *net.input_shape))
            cpu = sdnn_exact(net, torch.as_tensor(x))
            gpu = sdnn_exact(net, torch.as_tensor(x, device=device))
            emulated = simulate_emulator_sdnn(path, x)
            as_np = lambda run: [m.cpu().numpy() for m in run]  # noqa: E731
            mism = {"exact gpu vs cpu": message_mismatches(as_np(cpu), as_np(gpu))["total"],
                    "emulator vs exact gpu": message_mismatches(
                        as_np(gpu), [m.reshape(1, -1, m.shape[-1]) for m in emulated.layers]
                    )["total"]}
        else:
            net, _ = read_netx(path)
            spikes = rng.random((4 if dry else 64, 8, net.input_size)) < 0.3
            labels = np.zeros(len(spikes), dtype=np.int64)
            cpu, gpu = (simulate(path, spikes, "torch", progress=False, device=d)
                        for d in ("cpu", device))
            pair = compare(cpu, gpu, labels)
            mism = {"exact gpu vs cpu": pair["spike_mismatches"]
                    + (pair["readout_voltage_mismatches"] or 0)}
        log.add({"check": f"corpus/{path.name}", "mismatches": mism})


def tune_check(log: Log, device: str, dry: bool) -> None:
    """`tune` of the NIR paper's subtract-reset Braille RSNN (benchmarks/tune.py's row, fewer
    epochs) on the CPU and on the GPU, same seed and inputs: seconds on each, and the
    agreement of each tuned network with the float model on inputs not used for tuning."""
    from nir_corpus import braille_shaped       # benchmarks/, this script's folder
    from tune import PAPER, _deployed

    from neurodeploy import api
    from neurodeploy.backends.float_mode import simulate_float_nir
    graph = PAPER / "braille_noDelay_noBias_subtract.nir"
    samples, reported, epochs = (48, 16, 1) if dry else (1600, 400, 3)
    reference = braille_shaped(reported, seed=2)
    flt = simulate_float_nir(graph, reference, reset="subtract").predictions
    with tempfile.TemporaryDirectory() as work:
        inputs = Path(work) / "inputs.npz"
        np.savez(inputs, x=braille_shaped(samples, seed=0))
        check = {"check": "tune braille_noDelay_noBias_subtract", "samples": samples,
                 "epochs": epochs, "reported_on": reported}
        for where, dev in (("cpu", "cpu"), ("gpu", device)):
            report, seconds = _timed(lambda: api.tune(
                graph, inputs, Path(work) / where, reset="subtract", epochs=epochs, lr=0.01,
                device=dev))
            check[where] = {"seconds": seconds, "kept": report["kept"], "agreement": _deployed(
                Path(work) / where / "network.net", reference, flt)["agreement"]}
        log.add(check)


def ddp_smoke(log: Log, device: str, dry: bool) -> None:
    """`distill` under torchrun with one process: nccl on CUDA, gloo on the CPU."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "1", "-m", "neurodeploy", "distill", "digits", "--out", out,
               "--set", "distill.epochs=1", "--set", "teacher.epochs=1", "-q"]
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "CUDA_VISIBLE_DEVICES": "" if dry else
                                   os.environ.get("CUDA_VISIBLE_DEVICES", "0")})
        log.add({"check": "ddp distill (1 process)", "backend": "gloo" if dry else "nccl",
                 "exit": done.returncode, "seconds": time.perf_counter() - started,
                 "checkpoint": (Path(out) / "checkpoint.pt").exists(),
                 "stderr_tail": done.stderr.strip().splitlines()[-3:]})


def sweep(deadline_s: float, dry: bool) -> int:
    """benchmarks/distill_fmnist.py, one process per method, each resumable on its own."""
    folder = RESULTS / ("gpu_sweep_dry" if dry else "gpu_sweep")
    folder.mkdir(parents=True, exist_ok=True)
    extra = ["--quick", "--epochs", "1", "--max-rows", "1", "--seeds", "1"] if dry else []
    procs = [subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "distill_fmnist.py"),
                               "--methods", m, "--out", str(folder / f"{m}.json"), *extra],
                              cwd=ROOT) for m in (METHODS[:1] if dry else METHODS)]
    if not dry:                     # the Fashion-MNIST front (benchmarks/explore.py), resumable
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "explore.py"),
                                       "fmnist"], cwd=ROOT))
    started = time.monotonic()
    while any(p.poll() is None for p in procs) and time.monotonic() - started < deadline_s:
        time.sleep(1)
    for p in procs:                 # rows already written stay; a rerun resumes after them
        if p.poll() is None:
            p.terminate()
    return max(p.wait() for p in procs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU as the GPU, tiny sizes")
    ap.add_argument("--sweep", action="store_true", help="the distillation sweep instead")
    ap.add_argument("--deadline", type=float, default=510, help="seconds for --sweep")
    ap.add_argument("--out", type=Path, help="results file (default: results/gpu.json, or "
                                             "gpu_dry.json for --dry-run)")
    args = ap.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device here: run with --dry-run, or on a GPU machine", file=sys.stderr)
        return 2
    if args.sweep:
        return sweep(args.deadline, args.dry_run)
    device = "cpu" if args.dry_run else "cuda"
    out = args.out or RESULTS / ("gpu_dry.json" if args.dry_run else "gpu.json")
    log = Log(out, {"machine": machine(device), "dry_run": args.dry_run,
                    "date": time.strftime("%Y-%m-%d")})
    for part in (exports, corpus, tune_check, ddp_smoke):
        part(log, device, args.dry_run)
    bad = [c["check"] for c in log.data["checks"]
           if any(c.get("mismatches", {}).values()) or c.get("exit", 0)]
    print(f"{len(log.data['checks'])} checks, {len(bad)} with mismatches or failures: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
