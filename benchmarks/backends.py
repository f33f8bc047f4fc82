"""Backends side by side: the same network and the same samples on every backend, one run.

For the digits dense student and the Fashion-MNIST conv student (export/), times the emulator at
batch 1 / 100 / 1000, the torch exact mode on the CPU and Lava's streaming CPU simulation, and
checks that all of them produced identical spikes. "api.simulate end to end" is what a user
calls (`neurodeploy simulate`): the file read and checked, the test split decoded (from the
dataset cache, warmed by one call first) and encoded, the exact simulation, and the events
counted and priced; beside the engine rows it shows what the path around the engine costs.
The "limit" row is the network's synapses as dense float32 ops on the same samples in the same
run (`synapses_only`): every backend's throughput is also given as a share of it. Lava is timed
end to end (build, compile, run, read back), as a user experiences it.

A user's own model beside its framework: the snnTorch Fashion-MNIST conv net of
benchmarks/tune.py (snnTorch's default Leaky, trained there the same way, exported by snnTorch's
NIR exporter), 1,000 test samples of 10 steps, in snnTorch's own float forward and through
`api.simulate` of its NIR graph (lowered onto Loihi's grid, exact mode, events priced).

    .venv/bin/python benchmarks/backends.py [--full]   # writes benchmarks/results/backends.json
--full also streams the whole Fashion-MNIST test set (10,000 samples) through Lava, timed.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import torch

from neurodeploy import api
from neurodeploy.files import write_json
from timing import timed
from neurodeploy.netx import read_netx
from neurodeploy.parity import compare
from neurodeploy.inputs import load_inputs
from neurodeploy.neurons.network import EXACT_BATCH
from neurodeploy.simulation import simulate

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "backends.json"
LIMIT = "limit: synapses as dense float32 ops (best batch)"
BATCHES = (128, 256, 512, 1000)
NETWORKS = {"digits dense 64-256-10": ("digits", 360, 360),
            "fmnist conv 4x28x28-16c3s2-32c3s2-10": ("fmnist_conv", 2000, 200)}
SNNTORCH = "snnTorch fmnist conv 1x28x28-12c5s2-32c5s2-10 (benchmarks/tune.py)"


def synapses_only(net, spikes, batch: int = 1000) -> None:
    """What any exact simulation of `net` must at least compute: every layer's synapses as
    dense float32 matrix products or convolutions of 0/1 inputs, at every step, with a
    threshold to make the next layer's 0/1 input (no neuron dynamics, no exactness checks)."""
    weights = [torch.as_tensor(layer.weight, dtype=torch.float32) for layer in net.layers]
    with torch.no_grad():
        for start in range(0, len(spikes), batch):
            x = torch.as_tensor(spikes[start:start + batch])
            h = x.reshape(-1, x.shape[-1]).to(torch.float32)
            for layer, w in zip(net.layers, weights):
                if layer.input_shape:
                    h = h * w
                elif layer.conv:
                    c = layer.conv
                    h = torch.nn.functional.conv2d(
                        h.reshape(-1, *c.input_shape), w, stride=c.stride, padding=c.padding,
                        dilation=c.dilation, groups=c.groups).reshape(len(h), -1)
                else:
                    h = h @ w.T
                h = (h > 0).to(torch.float32)


def snntorch_rows(samples: int = 1000) -> list[dict]:
    """snnTorch's float forward of its own model and api.simulate of the model's NIR graph,
    on the same spike trains."""
    import nir
    from snntorch.export_nir import export_to_nir

    import tune
    x_train, y_train, x_test, y_test = tune.data("fmnist_conv")
    model, shape = tune.snntorch_model("fmnist_conv")
    tune.train_snntorch(model, shape, x_train, y_train, 3)      # as the tune row trains it
    x, y = x_test[:samples], y_test[:samples]
    graph = ROOT / "benchmarks" / ".work" / "backends" / "snntorch_fmnist_conv.nir"
    graph.parent.mkdir(parents=True, exist_ok=True)
    nir.write(graph, export_to_nir(model, torch.zeros(1, *shape), ignore_dims=[0]))
    _, float_s = timed(lambda: tune.run_snntorch(model, x, shape), 3)
    spikes = x.reshape(len(x), x.shape[1], *shape)
    api.simulate(graph, (spikes, y))                 # warm-up: imports, caches, allocator
    _, api_s = timed(lambda: api.simulate(graph, (spikes, y)), 3)
    return [{"network": SNNTORCH, "backend": "snnTorch float forward (its own)", "batch": 500,
             "samples": samples, "samples_per_s": samples / float_s},
            {"network": SNNTORCH, "backend": "api.simulate end to end (its NIR graph, exact)",
             "batch": EXACT_BATCH, "samples": samples, "samples_per_s": samples / api_s}]


def main() -> int:
    rows, checks, load = [], [], os.getloadavg()[0]
    rows += snntorch_rows()
    print(rows, flush=True)
    for label, (name, samples, batch1_samples) in NETWORKS.items():
        network = ROOT / "export" / name / "network.net"
        _, meta = read_netx(network)
        spikes, labels = load_inputs(meta, samples=samples)
        lava, lava_s = timed(lambda: simulate(network, spikes, "lava", progress=False), 1)
        rows.append({"network": label, "backend": "lava (CPU, streaming)", "batch": 1,
                     "samples": samples, "samples_per_s": samples / lava_s})
        net, _ = read_netx(network)
        # the limit at its best batch (throughput swings several-fold with the batch size)
        limit_s, best = min((timed(lambda: synapses_only(net, spikes, b), 3)[1], b)
                            for b in BATCHES)
        rows.append({"network": label, "backend": LIMIT, "batch": best, "samples": samples,
                     "samples_per_s": samples / limit_s})
        for batch in (256, 1000):
            reference, torch_s = timed(lambda: simulate(network, spikes, "torch",
                                                        batch_size=batch), 3)
            rows.append({"network": label, "backend": "torch exact (CPU)", "batch": batch,
                         "samples": samples, "samples_per_s": samples / torch_s})
        api.simulate(network, samples=samples)          # builds the dataset cache once
        _, api_s = timed(lambda: api.simulate(network, samples=samples), 3)
        rows.append({"network": label, "backend": "api.simulate end to end",
                     "batch": EXACT_BATCH, "samples": samples, "samples_per_s": samples / api_s})
        for batch in (1, 100, 1000):
            n = batch1_samples if batch == 1 else samples
            record, emu_s = timed(lambda: simulate(network, spikes[:n], "emulator",
                                                   batch_size=batch), 1 if batch == 1 else 3)
            rows.append({"network": label, "backend": "emulator (CPU)", "batch": batch,
                         "samples": n, "samples_per_s": n / emu_s})
            if batch == 1000:
                lava_vs, emulator_vs = compare(reference, lava), compare(reference, record)
                checks.append({"network": label, "samples": samples,
                               "lava_vs_torch": lava_vs["spike_mismatches"],
                               "emulator_vs_torch": emulator_vs["spike_mismatches"],
                               # a readout layer decides by voltage, not spikes
                               "lava_vs_torch_voltage": lava_vs["readout_voltage_mismatches"],
                               "emulator_vs_torch_voltage":
                                   emulator_vs["readout_voltage_mismatches"]})
        print(rows[-8:], checks[-1], flush=True)
    # without --full the committed full-test-set measurement is kept while it is of this network
    network = ROOT / "export" / "fmnist_conv" / "network.net"
    digest = hashlib.sha256(network.read_bytes()).hexdigest()
    full = json.loads(OUT.read_text()).get("lava_full_fmnist") if OUT.exists() else None
    if full and full.get("network_sha256") != digest:
        full = None
    if "--full" in sys.argv:     # the whole Fashion-MNIST test set through Lava (~9 min)
        _, meta = read_netx(network)
        spikes, labels = load_inputs(meta)
        lava, lava_s = timed(lambda: simulate(network, spikes, "lava", progress=False), 1)
        reference = simulate(network, spikes, "torch")
        full = {"network_sha256": digest, "samples": len(labels), "seconds": lava_s, "accuracy": lava.accuracy(labels),
                "spike_mismatches_vs_torch": compare(reference, lava)["spike_mismatches"]}
        print(full, flush=True)
    speedups, ours = {}, [r for r in rows if r["network"] == SNNTORCH]
    snntorch_ratio = ours[1]["samples_per_s"] / ours[0]["samples_per_s"]
    for label in NETWORKS:
        by = {(r["backend"], r["batch"]): r["samples_per_s"] for r in rows if r["network"] == label}
        speedups[label] = by[("emulator (CPU)", 1000)] / by[("lava (CPU, streaming)", 1)]
        limit = next(r["samples_per_s"] for r in rows
                     if r["network"] == label and r["backend"] == LIMIT)
        for r in rows:
            if r["network"] == label:
                r["share_of_limit"] = r["samples_per_s"] / limit
    write_json(OUT, {
        "benchmark": "backends",
        "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform(),
                    "python": sys.version.split()[0],     # other jobs on the cores: above
                    "load_average_at_start": load,      # the cpus, the rows are not comparable
                    "load_average_at_end": os.getloadavg()[0]},
        "rows": rows, "spike_mismatches": checks,
        "emulator_batch1000_over_lava": speedups,
        "api_simulate_over_snntorch_forward": snntorch_ratio,
        **({"lava_full_fmnist": full} if full else {}),
    })
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
