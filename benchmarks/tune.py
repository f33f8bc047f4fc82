"""Before / after `neurodeploy tune`: float models trained elsewhere, deployed on Loihi's grid.

Rows (each tuned on one set of inputs, reported on inputs not used for tuning):
- snnTorch models trained here with snnTorch's defaults (Leaky: reset by subtraction, one step
  late; BPTT on rate-coded inputs), exported by snnTorch's own NIR exporter: a digits MLP, a
  Fashion-MNIST conv net (two strided convs and a dense readout) and a recurrent digits net
  (RLeaky). Tuned with --reset subtract --reset-delay on (part of) the training split; the
  accuracies are on the test split: snnTorch itself, the untuned lowering, the tuned network.
- the NIR paper's Braille RSNNs (bias/zero-reset and no-bias/subtract-reset) and its N-MNIST
  CNN on seeded stand-in inputs (nir_corpus.braille_shaped / nmnist_shaped): tuned on seed 0,
  reported on seed 2 (agreement with the graph's own float model; no labels exist).
Each row: seconds on this machine (2 CPU cores), and a Lava check of the tuned network on a few
test samples (spike mismatches against the exact mode).

    .venv/bin/python benchmarks/tune.py [--only NAME ...]   # -> benchmarks/results/tune.json
Rows already in the results file are kept (resumable); --redo NAME runs one again.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "tune.json"
WORK = ROOT / "benchmarks" / ".work" / "tune"
PAPER = ROOT / "tests" / "data" / "nir_paper"
LAVA_SAMPLES = 8


def _leaky(shape, beta=0.9, **kw):
    """snnTorch's Leaky with its defaults (reset_mechanism="subtract", reset_delay=True) and
    per-neuron tensors, which its NIR exporter needs."""
    import snntorch as snn
    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape),
                     init_hidden=True, **kw)


def snntorch_model(kind: str, seed: int = 0):
    """(model, input shape) with snnTorch's default neuron settings."""
    import snntorch as snn
    torch.manual_seed(seed)
    if kind == "digits_mlp":
        return torch.nn.Sequential(torch.nn.Linear(64, 64), _leaky((64,)),
                                   torch.nn.Linear(64, 10), _leaky((10,))), (64,)
    if kind == "digits_rleaky":
        return torch.nn.Sequential(
            torch.nn.Linear(64, 48),
            snn.RLeaky(beta=0.9, linear_features=48, init_hidden=True),
            torch.nn.Linear(48, 10), _leaky((10,))), (64,)
    if kind == "fmnist_conv":
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 12, 5, stride=2, padding=2), _leaky((12, 14, 14)),
            torch.nn.Conv2d(12, 32, 5, stride=2, padding=2), _leaky((32, 7, 7)),
            torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 10), _leaky((10,))), (1, 28, 28)
    raise ValueError(kind)


def run_snntorch(net, x: np.ndarray, shape, batch: int = 500) -> np.ndarray:
    """Output spike counts [N, C] in snnTorch."""
    from snntorch import utils
    counts = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            utils.reset(net)
            xb = torch.as_tensor(x[i:i + batch], dtype=torch.float32)
            counts.append(torch.stack([net(xb[:, t].reshape(len(xb), *shape))
                                       for t in range(x.shape[1])], 1).sum(1))
    return torch.cat(counts).numpy()


def train_snntorch(net, shape, x, y, epochs: int, lr: float = 2e-3, seed: int = 0):
    """Plain BPTT on summed output spikes with cross-entropy (snnTorch's tutorials' recipe)."""
    from snntorch import utils
    torch.manual_seed(seed)
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(64):
            utils.reset(net)
            out = torch.stack([net(x[idx, t].reshape(len(idx), *shape))
                               for t in range(x.shape[1])], 1).sum(1)
            loss = torch.nn.functional.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def data(kind: str):
    """Rate-coded (train x, train y, test x, test y), x [N, T, features] 0/1, seeded."""
    from neurodeploy.data import load_dataset, rate_encode
    name, steps = ("fashion-mnist", 10) if kind.startswith("fmnist") else ("digits", 16)
    d = load_dataset(name)
    rng = np.random.default_rng(0)
    train = rng.permutation(len(d.train.y))[:12000]     # F-MNIST: a seeded 12,000 of 60,000
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    return (rate_encode(flat(d.train.x[train]), steps), d.train.y[train],
            rate_encode(flat(d.test.x), steps), d.test.y)
