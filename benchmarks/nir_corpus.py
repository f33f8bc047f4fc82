"""The NIR paper's graphs and the frameworks' NIR examples, deployed and compared.

For each graph in tests/data/nir_paper/ (see SOURCES.md there; plus `--extra DIR` for graphs
measured from a local copy and not redistributed): whether the nir library reads it, whether
neurodeploy deploys it (or the one-line reason it refuses), and on the same inputs the graph's
own float model (the float backend) against the deployed exact mode (prediction agreement),
the exact mode against Lava (spike mismatches, every layer and step), and the float model with
reset to zero (what deploys) against reset by subtraction (NIR cannot say which one a graph was
trained with). The paper's per-platform test accuracies stand beside the graphs they belong to.
For the recurrent (Braille) graphs also: per layer, the float model's decisions that 8-bit
rounding flips (the layer alone on the float model's own input spikes), and the same after a
per-layer scale headroom search (float_mode.search_headroom) calibrated on other seeded inputs.

Inputs: the paper's own LIF input (paper/01_lif, 1000 steps of 0.1 ms) where the graph is that
example; otherwise seeded inputs of the data's shape, *not the real test sets* (the Braille and
N-MNIST test sets are not in the paper's repository snapshot): Braille-shaped (12 channels, 256
steps, short bursts of events per channel) and N-MNIST-shaped (2 x 34 x 34, events along a few
random strokes). Their accuracy is meaningless (no labels), so only agreement is reported.

    .venv/bin/python benchmarks/nir_corpus.py [--samples 140] [--lava-samples 8] [--extra DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import nir
import numpy as np
import torch

from neurodeploy.backends.float_mode import layer_flips, search_headroom, simulate_float_nir
from neurodeploy.backends.lava import simulate_lava
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.errors import UserError
from neurodeploy.files import write_json
from neurodeploy.graph import lower_nir, read_nir
from neurodeploy.netx import write_netx
from neurodeploy.parity import compare

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "nir_paper"
RESULTS = ROOT / "benchmarks" / "results" / "nir_corpus.json"
PAPER_DT = 1e-4     # paper/01_lif/README.md: "We use a timestep of dt=0.0001"
# file -> (where its repository keeps it, inputs, the paper's accuracy key or None)
CORPUS = {
    "lif_norse.nir": ("NIR paper/01_lif/lif_norse.nir", "lif", None),
    "lif_rockpool.nir": ("NIR paper/01_lif/lif_rockpool.nir", "lif", None),
    "two_lif_neurons.nir": ("NIR paper/01_lif/debug_spike_representation/two_lif_neurons.nir",
                            "lif_input", None),
    "cnn_sinabs.nir": ("NIR paper/02_cnn/cnn_sinabs.nir", "nmnist", "cnn_sinabs"),
    "braille_noDelay_bias_zero.nir": ("NIR paper/03_rnn/braille_noDelay_bias_zero.nir",
                                      "braille", "braille_noDelay_bias_zero"),
    "braille_noDelay_noBias_subtract.nir": (
        "NIR paper/03_rnn/braille_noDelay_noBias_subtract.nir", "braille",
        "braille_noDelay_noBias_subtract"),
    "braille_noDelay_bias_zero_subgraph.nir": (
        "NIR paper/03_rnn/extras/braille_noDelay_bias_zero_subgraph.nir", "braille", None),
    "braille_noDelay_noBias_subtract_subgraph.nir": (
        "NIR paper/03_rnn/extras/braille_noDelay_noBias_subtract_subgraph.nir", "braille", None),
    "spyx_braille_noDelay_bias_zero_subgraph.nir": (
        "Spyx docs/examples/nir/rsnn/braille_noDelay_bias_zero_subgraph.nir", "braille",
        "braille_noDelay_bias_zero"),
    "spyx_braille_noDelay_noBias_subtract_subgraph.nir": (
        "Spyx docs/examples/nir/rsnn/braille_noDelay_noBias_subtract_subgraph.nir", "braille",
        "braille_noDelay_noBias_subtract"),
    "spyx_braille_subtract.nir": ("Spyx docs/examples/nir/rsnn/braille_subtract.nir (6a2d735)",
                                  "braille", None),
    "spyx_scnn_mnist_old.nir": ("Spyx docs/examples/nir/scnn_mnist.nir (f46316f)", "nmnist",
                                None),
    "spyx_shd.nir": ("Spyx research/paper/spyx_shd.nir", "rate", None),
    "nirtorch_braille.nir": ("NIRTorch tests/braille.nir", "braille", None),
    "nirtorch_feedback_graph.nir": ("NIRTorch tests/feedback_graph.nir", "rate", None),
}
# Published under AGPL-3.0: measured from a local copy (`--extra DIR`), never redistributed.
EXTERNAL = {"rockpool_braille.nir": ("Rockpool tests/tests_default/nir_graphs/braille.nir",
                                     "braille", None)}
SAME_AS = {   # byte-identical copies elsewhere, not measured twice
    "lif_norse.nir": "snnTorch tests/lif.nir, Spyx docs/examples/nir/single_neuron/lif_norse.nir, "
                     "NIRTorch tests/lif_norse.nir",
    "cnn_sinabs.nir": "snnTorch examples/scnn_mnist.nir, Spyx docs/examples/nir/scnn/scnn_mnist.nir",
    "braille_noDelay_noBias_subtract.nir": "Spyx docs/examples/nir/rsnn/"
                                           "braille_noDelay_noBias_subtract.nir",
}


def braille_shaped(samples: int, seed: int = 0, steps: int = 256) -> np.ndarray:
    """Seeded stand-ins for the Braille test set's event streams: 12 channels, 0-3 short
    bursts of events per channel and sample (about 2% of channel-steps active)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((samples, steps, 12), bool)
    for i in range(samples):
        for ch in range(12):
            for _ in range(rng.integers(0, 4)):
                start, length = rng.integers(0, steps - 20), rng.integers(1, 12)
                x[i, start:start + length:rng.integers(1, 4), ch] = True
    return x


def nmnist_shaped(samples: int, seed: int = 0, steps: int = 32) -> np.ndarray:
    """Seeded stand-ins for N-MNIST event frames [2, 34, 34]: events along three random thick
    strokes per sample, each stroke pixel firing with probability 0.3 per step, polarity
    random. Not digits."""
    rng = np.random.default_rng(seed)
    x = np.zeros((samples, steps, 2, 34, 34), bool)
    yy, xx = np.mgrid[:34, :34]
    for i in range(samples):
        mask = np.zeros((34, 34), bool)
        for _ in range(3):
            (y0, x0), (y1, x1) = rng.integers(4, 30, (2, 2))
            for a in np.linspace(0, 1, 24):
                mask |= (yy - (y0 + a * (y1 - y0))) ** 2 + (xx - (x0 + a * (x1 - x0))) ** 2 < 3
        events = rng.random((steps, 34, 34)) < 0.3
        polarity = rng.random((steps, 34, 34)) < 0.5
        x[i, :, 0] = events & mask & polarity
        x[i, :, 1] = events & mask & ~polarity
    return x


def lif_input() -> np.ndarray:
    """The paper's LIF example input: column 0 of paper/01_lif/lif_exact.csv, [1, 1000, 1]."""
    table = np.loadtxt(DATA / "lif_exact.csv", delimiter=",")
    return (table[:, 0] != 0).reshape(1, -1, 1)


def paper_lif_spikes() -> list[int]:
    table = np.loadtxt(DATA / "lif_exact.csv", delimiter=",")
    return np.nonzero(table[:, 2])[0].tolist()


def _inputs(kind: str, net, samples: int) -> tuple[np.ndarray, str]:
    if kind in ("lif", "lif_input"):
        return lif_input(), "the paper's LIF input (paper/01_lif, 1000 steps)"
    if kind == "braille":
        return braille_shaped(samples), "seeded Braille-shaped (12 ch, 256 steps; not the test set)"
    if kind == "nmnist":
        return nmnist_shaped(samples), "seeded N-MNIST-shaped (2x34x34 strokes, 32 steps; not the test set)"
    rng = np.random.default_rng(0)
    return rng.random((samples, 64, net.input_size)) < 0.05, "seeded binary spikes (rate 0.05, 64 steps)"


def _dt(graph: nir.NIRGraph, kind: str) -> tuple[float | None, str]:
    """None (the graph states or implies it) or the paper's dt for its LIF examples."""
    from neurodeploy.graph.importer import infer_dt
    try:
        infer_dt(graph, None, "graph")
        return None, "from the graph"
    except UserError:
        return PAPER_DT, "1e-4 (the paper's, for graphs that do not state it)"


def _row(path: Path, source: str, kind: str, paper_key: str | None, args,
         accuracy: dict) -> dict:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    row = {"file": path.name, "source": source, "sha256": digest, "inputs_kind": kind,
           "same_as": SAME_AS.get(path.name), "redistributed": path.parent == DATA,
           "paper_accuracy": ({k: v["accuracy"] for k, v in accuracy[paper_key].items()}
                              if paper_key else None)}
    try:
        graph = read_nir(path)
    except UserError as e:
        return {**row, "status": "unreadable", "reason": str(e).split(": ", 1)[1]}
    dt, dt_from = _dt(graph, kind)
    try:
        net, quantization = lower_nir(graph, str(path), dt)
    except UserError as e:
        return {**row, "status": "refused", "reason": str(e).split(": ", 1)[1], "dt": dt_from}
    x, described = _inputs(kind, net, args.samples)
    x = x.reshape(len(x), x.shape[1], -1)                 # every backend's layout
    started = time.perf_counter()
    flt = simulate_float_nir(path, x, dt)
    sub = simulate_float_nir(path, x, dt, reset="subtract")
    exact = simulate_torch(net, x)
    with tempfile.TemporaryDirectory() as tmp:
        write_netx(net, Path(tmp) / "n.net")
        lava = simulate_lava(Path(tmp) / "n.net", x[:args.lava_samples], progress=False)
    exact_head = simulate_torch(net, x[:args.lava_samples])
    lava_vs_exact = compare(exact_head, lava)
    row |= {"status": "deployed", "dt": dt_from, "inputs": described, "samples": len(x),
            "timesteps": int(x.shape[1]),
            "layers": [f"{layer.name}: {layer.describe()}" for layer in net.layers],
            "neurons": int(sum(layer.size for layer in net.layers)),
            "always_on_bias": [r["layer"] for r in quantization if "bias_as_synapse" in r],
            "quantization": [{"layer": r["layer"], "scale": r["scale"],
                              "weight_rel_rms_error": r["weight_rel_rms_error"]}
                             for r in quantization],
            "float_vs_exact_prediction_agreement": float((flt.predictions
                                                          == exact.predictions).mean()),
            "float_vs_exact_output_spikes_per_sample": [
                float(flt.layers[-1].sum() / len(x)), float(exact.layers[-1].sum() / len(x))],
            "float_top_class_lead_median": float(np.median(np.diff(np.sort(
                flt.layers[-1].sum(1), axis=1)[:, -2:], axis=1))) if net.layers[-1].size > 1
            else None,    # output spikes by which the top class leads the next: ties flip
            "reset_zero_vs_subtract_prediction_agreement": float((flt.predictions
                                                                  == sub.predictions).mean()),
            "lava_samples": int(min(len(x), args.lava_samples)),
            "exact_vs_lava_spike_mismatches": lava_vs_exact["spike_mismatches"],
            "exact_vs_lava_neuron_steps": lava_vs_exact["spikes_compared"],
            "seconds": round(time.perf_counter() - started, 1)}
    if kind == "braille":     # recurrent: how many decisions rounding flips, and a search
        row["layer_flips"] = layer_flips(net, flt)
        choice, _ = search_headroom(path, braille_shaped(args.samples, seed=1), dt)
        tuned, _ = lower_nir(graph, str(path), dt, choice)
        row["headroom_search"] = {
            "calibration": "seeded Braille-shaped, seed 1 (the reported inputs are seed 0)",
            "choice": choice,
            "layer_flips": layer_flips(tuned, flt),
            "float_vs_exact_prediction_agreement": float(
                (simulate_torch(tuned, x).predictions == flt.predictions).mean())}
    if kind == "lif":
        steps = lambda rec: np.nonzero(rec.layers[-1][0].any(1))[0].tolist()  # noqa: E731
        row["lif_spike_steps"] = {"paper exact": paper_lif_spikes(), "float": steps(flt),
                                  "exact": steps(exact), "lava": steps(lava)}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=140,
                        help="seeded samples per graph (the Braille test set has 140)")
    parser.add_argument("--lava-samples", type=int, default=8)
    parser.add_argument("--extra", type=Path, help="folder with the EXTERNAL graphs")
    parser.add_argument("--only", help="measure this file only (others keep their rows)")
    args = parser.parse_args()
    torch.manual_seed(0)
    accuracy = json.loads((DATA / "paper_accuracy.json").read_text())
    old = {r["file"]: r for r in json.loads(RESULTS.read_text())["rows"]} \
        if RESULTS.exists() else {}
    jobs = [(DATA / f, *spec) for f, spec in CORPUS.items()]
    if args.extra:
        jobs += [(args.extra / f, *spec) for f, spec in EXTERNAL.items()
                 if (args.extra / f).exists()]
    rows = []
    for path, source, kind, key in jobs:
        if args.only and path.name != args.only:
            if path.name in old:
                rows.append(old[path.name])
            continue
        print(f"{path.name} ...", flush=True)
        rows.append(_row(path, source, kind, key, args, accuracy))
        print(f"  {rows[-1]['status']}: " + (rows[-1].get("reason") or json.dumps(
            {k: rows[-1][k] for k in ("float_vs_exact_prediction_agreement",
                                      "exact_vs_lava_spike_mismatches")})), flush=True)
    write_json(RESULTS, {**_header(args), "paper_accuracy_source": accuracy["source"],
                         "rows": rows})


def _header(args) -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    return {"date": str(date.today()), "commit": commit, "nir": nir.__version__,
            "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform(),
                        "processor": platform.processor() or platform.machine()},
            "protocol": {"samples": args.samples, "lava_samples": args.lava_samples}}


if __name__ == "__main__":
    main()
