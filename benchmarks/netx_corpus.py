"""The trained netx files lava-dl publishes, deployed on every backend and compared.

For each file in tests/data/lava_dl/ and tests/data/intel_ndns/ (see SOURCES.md there): what it
holds (layers, neuron
types), whether neurodeploy reads it (or the one-line reason it refuses), and the same inputs
through the exact mode (torch), the emulator and Lava: mismatching spikes (CUBA, every layer and
step) or graded messages (sigma-delta), the wall time of each backend, and whether lava-dl's own
ground truth is reproduced where the repository has one. Rows are appended to
benchmarks/results/netx_corpus.json as they finish and kept while the file and the protocol are
unchanged, so a rerun measures only what changed.

    .venv/bin/python benchmarks/netx_corpus.py [--samples 2] [--timesteps 8]
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import platform
import subprocess
import time
from datetime import date
from pathlib import Path

import h5py
import numpy as np
import torch

from neurodeploy import simulation
from neurodeploy.backends.emulator import simulate_emulator_sdnn
from neurodeploy.backends.lava_sdnn import simulate_lava_sdnn
from neurodeploy.errors import UserError
from neurodeploy.files import write_json
from neurodeploy.netx import read_netx
from neurodeploy.netx.sdnn import is_sdnn, read_sdnn
from neurodeploy.neurons import run_exact
from neurodeploy.neurons.sigma_delta import activity, run_chip, run_stream
from neurodeploy.parity import message_mismatches
from neurodeploy.parity import compare

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "lava_dl"
RESULTS = ROOT / "benchmarks" / "results" / "netx_corpus.json"
CORPUS = {   # file -> where lava-dl keeps it
    "tiny.net": "tests/.../netx/tiny.net",
    "netx_mnist.net": "tutorials/.../netx/mnist/trained_mnist_network.net",
    "oxford.net": "tutorials/.../netx/oxford/Trained/network.net",
    "bootstrap_mnist.net": "tutorials/.../bootstrap/mnist/Trained/network.net",
    "pilotnet_lif.net": "tutorials/.../netx/pilotnet_snn/network.net",
    "pilotnet_sdnn.net": "tutorials/.../netx/pilotnet_sdnn/network.net",
    "pilotnet_sdnn_gts.net": "tests/.../netx/gts/pilotnet_sdnn/network.net",
    "pilotnet_sdnn_square.net": "tests/.../netx/gts/pilotnet_sdnn/square_network.net",
}
# Trained netx files in other public repositories that publish no license: measured here from a
# local copy (`--extra DIR`), never redistributed; their rows stay until the file changes.
EXTERNAL = {
    "pna_network.net": "deborshikun/PilotNetAttacks Trained/network.net",
    "pna_my_two_layer_network.net": "deborshikun/PilotNetAttacks Trained/my_two_layer_network.net",
    "pna_my_three_layer_network.net":
        "deborshikun/PilotNetAttacks Trained/my_three_layer_network.net",
    "lava_apps_network.net": "rhendz/lava-apps Trained/network.net",
}
# Intel's Neuromorphic Deep Noise Suppression baseline pair (MIT; tests/data/intel_ndns/): its
# inputs are STFT frames, 8 ms a step, run long enough (NDNS_STEPS) for its delays of up to 62.
NDNS = ROOT / "tests" / "data" / "intel_ndns"
NDNS_REPO = "IntelLabs/IntelNeuromorphicDNSChallenge baseline_solution/sdnn_delays/"
NDNS_FILES = {"ndns_delays.net": NDNS_REPO + "Trained/network.net",
              "ndns_nodelay.net": NDNS_REPO + "Trained_nodelay/network.net"}
NDNS_STEPS = 72
# track1_val_metricsboard.md, "Baseline SDNN solution (02/20/2023)": the network with delays
NDNS_PUBLISHED = {"power_proxy_mops_per_s": 14.54, "latency_total_ms": 32.03,
                  "latency_enc_dec_ms": 0.03, "params_thousands": 525}
NDNS_INPUTS = ("seeded synthetic noisy voice (harmonic 100-250 Hz tone with vibrato and "
               "syllable envelope + white noise, 6 dB SNR, -25 dBFS) encoded as the baseline "
               "does: |STFT| (n_fft 512, hop 128: 8 ms), minus 0.2, x64, rounded")
UNAVAILABLE = {   # Git LFS pointers in lava-dl's repository: the networks are not stored there
    "tests/.../netx/mnist.net": "Git LFS pointer",
    "tests/.../netx/gts/ntidigits/ntidigits.net": "Git LFS pointer",
    "tutorials/.../slayer/nmnist/Trained/network.net": "Git LFS pointer",
}


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else repr(p).encode())
    return h.hexdigest()[:16]


def _contents(path: Path) -> dict:
    """Layer types and neuron types as the file states them (before any reading of ours)."""
    layers, neurons = [], set()
    with h5py.File(path, "r") as f:
        for i in range(len(f["layer"])):
            g = f["layer"][str(i)]
            layers.append(g["type"][()].reshape(-1)[0].decode() if "type" in g else "?")
            if "neuron" in g:
                neurons.add(g["neuron/type"][()].decode() if isinstance(
                    g["neuron/type"][()], bytes) else str(g["neuron/type"][()]))
            elif layers[-1] in ("dense", "dense_rec"):
                neurons.add("none (netx default)")
    return {"layers": layers, "neuron_types": sorted(neurons)}


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t0, 3)


def _sdnn_inputs(net, samples: int, steps: int) -> tuple[np.ndarray, str]:
    """lava-dl's encoded PilotNet test frame (repeated) where the input shape fits it, with
    seeded small changes per step; otherwise seeded integer frames of the same range."""
    rng = np.random.default_rng(0)
    frame = np.load(DATA / "pilotnet_sdnn_gts_input.npy")[..., 0].transpose(2, 1, 0)
    if frame.shape == tuple(net.input_shape):
        base, what = frame.astype(np.int64), "lava-dl's PilotNet test frame + seeded changes"
    else:
        base, what = rng.integers(-52, 65, size=net.input_shape), "seeded integer frames"
    change = rng.integers(-8, 9, size=(samples, steps, *base.shape)) * (
        rng.random((samples, steps, *base.shape)) < 0.3)
    return base[None, None] + change, what


def ndns_frames(samples: int, steps: int, seed: int = 0) -> np.ndarray:
    """Integer frames [samples, steps, 257] as the N-DNS baseline's encoder makes them from
    16 kHz audio (lava_utils.Encoder: |torch.stft(n_fft=512)|, hop 128 = 8 ms, minus stft_mean
    0.2, times 1 << 6, rounded), from seeded synthetic audio: a voiced harmonic tone (100-250 Hz
    with vibrato, 2-4 Hz syllable envelope) plus white noise at 6 dB SNR, -25 dBFS overall. Not
    speech: no consonants, pauses or real noise spectra, so its activity is not the dataset's."""
    rng = np.random.default_rng(seed)
    n = 128 * (steps - 1)
    t = np.arange(n) / 16000
    out = []
    for _ in range(samples):
        f0 = rng.uniform(100, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))
        phase = 2 * np.pi * np.cumsum(f0) / 16000
        voice = sum(np.sin(k * phase) / k for k in range(1, 20)) * (
            1 + np.sin(2 * np.pi * rng.uniform(2, 4) * t))
        noise = rng.standard_normal(n)
        audio = voice / voice.std() + noise / noise.std() / 2          # 6 dB SNR
        audio *= 10 ** (-25 / 20) / audio.std()                          # -25 dBFS
        stft = torch.stft(torch.tensor(audio), n_fft=512, onesided=True, return_complex=True,
                          window=torch.ones(512, dtype=torch.float64)).abs()  # train_sdnn.py's
        out.append(np.round(64 * (stft.numpy().T - 0.2)).astype(np.int64))
    return np.stack(out)


def _sdnn_row(path: Path, samples: int, steps: int) -> dict:
    net = read_sdnn(path)
    x, what = ((ndns_frames(samples, steps), NDNS_INPUTS) if path.name in NDNS_FILES
               else _sdnn_inputs(net, samples, steps))
    exact, t_exact = _timed(lambda: run_stream(net, x))
    emulated, t_emu = _timed(lambda: simulate_emulator_sdnn(path, x).layers)
    lava, t_lava = _timed(lambda: simulate_lava_sdnn(path, x).layers)
    row = {"inputs": what, "unit": "graded messages",
           "compared": message_mismatches(exact, lava)["compared"],
           "mismatches": {"exact-emulator": message_mismatches(exact, emulated)["total"],
                          "exact-lava": message_mismatches(exact, lava)["total"]},
           "seconds": {"exact": t_exact, "emulator": t_emu, "lava": t_lava},
           "nonzero_output_messages": int(np.count_nonzero(exact[-1]))}
    if path.name in NDNS_FILES:
        ops = sum(map(sum, activity(net, exact)["synaptic_ops"])) / (samples * steps)
        row["synaptic_ops_per_step"] = round(ops)
        row["notes"] = net.notes
        if path.name == "ndns_delays.net":
            row["published"] = NDNS_PUBLISHED
    if path.name == "pilotnet_sdnn_gts.net":      # lava-dl's test_pilotnet_sdnn
        truth = np.load(DATA / "pilotnet_sdnn_gts_output.npy")[0]
        frames = np.repeat(np.load(DATA / "pilotnet_sdnn_gts_input.npy")[..., 0]
                           .transpose(2, 1, 0)[None, None], len(net.layers), axis=1)
        out = run_chip(net, torch.as_tensor(frames))[-1][0, :len(net.layers), 0].numpy()
        row["ground_truth"] = "reproduced" if np.array_equal(out, truth) else "DIFFERS"
    return row


def _cuba_row(path: Path, samples: int, steps: int) -> dict:
    net, _ = read_netx(path)
    spikes = np.random.default_rng(0).random((samples, steps, net.input_size)) < 0.3
    labels = np.zeros(samples, dtype=np.int64)
    records, seconds = {}, {}
    for name, backend in (("exact", "torch"), ("emulator", "emulator"), ("lava", "lava")):
        records[name], seconds[name] = _timed(
            lambda: simulation.simulate(path, spikes, backend, progress=False))
    pairs = {f"exact-{b}": compare(records["exact"], records[b], labels)
             for b in ("emulator", "lava")}
    row = {"inputs": "seeded binary spikes (rate 0.3)", "unit": "spikes",
           "compared": int(sum(np.asarray(s).size for s in records["exact"].layers)),
           "mismatches": {k: p["spike_mismatches"] + (p["readout_voltage_mismatches"] or 0)
                          for k, p in pairs.items()},
           "readout": net.readout, "seconds": seconds,
           "spikes": int(sum(np.asarray(s).sum() for s in records["exact"].layers))}
    if path.name == "tiny.net":     # lava-dl's test_tinynet: the frame as input-layer bias
        frame = np.load(DATA / "tiny_gts_input_bias.npy").transpose(2, 1, 0).reshape(-1)
        first = dataclasses.replace(net.layers[0], bias=frame.astype(np.int64))
        framed = dataclasses.replace(net, layers=(first, *net.layers[1:]))
        out = run_exact(framed, torch.zeros(1, 17, net.input_size))[-1][0].numpy().T
        truth = np.load(DATA / "tiny_gts_output.npy")[0].reshape(-1, 16)
        row["ground_truth"] = ("reproduced" if np.array_equal(out[:, :15], truth[:, 1:])
                               else "DIFFERS")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--timesteps", type=int, default=8)
    ap.add_argument("--extra", type=Path, help="a folder holding the EXTERNAL files (not "
                                               "redistributed here)")
    args = ap.parse_args()
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"rows": []}
    kept = {r["digest"]: r for r in old["rows"]}
    rows = []
    files = [(DATA / name, source) for name, source in CORPUS.items()] + [
        ((args.extra or DATA) / name, source) for name, source in EXTERNAL.items()] + [
        (NDNS / name, source) for name, source in NDNS_FILES.items()]
    for path, source in files:
        name = path.name
        steps = NDNS_STEPS if name in NDNS_FILES else args.timesteps
        if not path.exists():        # an external file not at hand: keep its last row
            rows += [r for r in old["rows"] if r["file"] == name]
            continue
        digest = _digest(path.read_bytes(), args.samples, steps, "v1")
        if digest in kept:
            rows.append(kept[digest])
            continue
        row = {"file": name, "source": source, "digest": digest, "samples": args.samples,
               "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
               "redistributed": name not in EXTERNAL,
               "publisher": "lava-dl" if name in CORPUS else "Intel N-DNS" if name in NDNS_FILES
               else "other", "timesteps": steps, **_contents(path),
               "kind": "sigma-delta" if is_sdnn(path) else "CUBA"}
        try:
            row.update(_sdnn_row(path, args.samples, steps) if row["kind"] == "sigma-delta"
                       else _cuba_row(path, args.samples, steps))
            row["status"] = "deployed"
        except UserError as e:
            row["status"], row["reason"] = "refused", str(e)
        print(json.dumps({k: row.get(k) for k in ("file", "status", "mismatches", "seconds",
                                                  "ground_truth", "reason")}), flush=True)
        rows.append(row)
        write_json(RESULTS, {**_header(args), "rows": rows, "unavailable": UNAVAILABLE})
    write_json(RESULTS, {**_header(args), "rows": rows, "unavailable": UNAVAILABLE})


def _header(args) -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    return {"date": str(date.today()), "commit": commit,
            "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform(),
                        "processor": platform.processor() or platform.machine()},
            "protocol": {"samples": args.samples, "timesteps": args.timesteps}}


if __name__ == "__main__":
    main()
