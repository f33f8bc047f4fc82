"""`neurodeploy tune`: a graph trained elsewhere (real snnTorch, the NIR paper's Braille RSNN)
distilled onto Loihi's grid; its float teacher, its exact student, its files and its errors."""
from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

import tune as bench                      # benchmarks/tune.py: the snnTorch models and data
from neurodeploy.backends.float_mode import simulate_float_nir
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.cli import main
from neurodeploy.graph import from_nir, lower_nir, read_nir, to_nir
from neurodeploy.neurons import run_exact
from neurodeploy.neurons.tunable import TunableNet
from nir_corpus import braille_shaped

BRAILLE = Path(__file__).parent / "data" / "nir_paper" / "braille_noDelay_bias_zero.nir"


@pytest.fixture(scope="module")
def snntorch_digits(tmp_path_factory):
    """A digits MLP trained for one epoch in snnTorch with its default Leaky (reset by
    subtraction, one step late), exported by snnTorch's NIR exporter; its inputs as .npz."""
    from snntorch.export_nir import export_to_nir
    root = tmp_path_factory.mktemp("snntorch")
    x_train, y_train, x_test, y_test = bench.data("digits_mlp")
    net, shape = bench.snntorch_model("digits_mlp")
    bench.train_snntorch(net, shape, x_train[:600], y_train[:600], epochs=1)
    nir.write(root / "mlp.nir", export_to_nir(net, torch.zeros(1, *shape), ignore_dims=[0]))
    np.savez(root / "train.npz", x=x_train[:200], y=y_train[:200])
    np.savez(root / "unlabeled.npz", x=x_train[:200])
    return root, net, shape, x_test[:100]


@pytest.mark.slow
def test_the_float_teacher_is_what_snntorch_computes(snntorch_digits):
    """snnTorch's default Leaky (subtract, one step late) spike for spike; reset to zero or
    an immediate subtraction are other models, so the reset flags matter."""
    root, net, shape, x = snntorch_digits
    theirs = bench.run_snntorch(net, x, shape)
    same = simulate_float_nir(root / "mlp.nir", x, reset="subtract", reset_delay=True)
    assert np.array_equal(same.counts, theirs)
    other = simulate_float_nir(root / "mlp.nir", x)          # reset to zero: not snnTorch's
    assert not np.array_equal(other.counts, theirs)


def test_the_student_runs_the_exact_mode_bit_for_bit():
    """TunableNet's training forward (relay, always-on neuron, bias, recurrence) is the exact
    mode's arithmetic, so the loss sees the spikes the chip will produce."""
    net, _ = lower_nir(read_nir(BRAILLE), str(BRAILLE))
    x = braille_shaped(20)
    with torch.no_grad():
        ours = TunableNet(net)(torch.as_tensor(x, dtype=torch.float32))
    exact = run_exact(net, torch.as_tensor(x))
    assert all(torch.equal(a.bool(), b) for a, b in zip(ours, exact))
    back = TunableNet(net).to_integer()
    assert all(np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
               for a, b in zip(back.layers, net.layers) if a.bias is not None)


def test_a_bias_round_trips_through_our_nir_as_v_leak():
    net, _ = lower_nir(read_nir(BRAILLE), str(BRAILLE))
    assert any(layer.bias is not None for layer in net.layers)
    back = from_nir(to_nir(net))
    for a, b in zip(net.layers, back.layers):
        assert np.array_equal(a.weight, b.weight)
        assert (a.bias is None) == (b.bias is None)
        assert a.bias is None or np.array_equal(a.bias, b.bias)


@pytest.mark.lava
@pytest.mark.slow
def test_tune_end_to_end_writes_a_deployment_that_lava_runs(snntorch_digits, tmp_path):
    """The verb as a user runs it: files, provenance, before/after on held-out inputs, and a
    tuned network.net that Lava runs spike for spike as the exact mode does."""
    root, _, _, x = snntorch_digits
    out = tmp_path / "tuned"
    assert main(["tune", str(root / "mlp.nir"), "--data", str(root / "train.npz"),
                 "--reset", "subtract", "--reset-delay", "--epochs", "2", "--out", str(out),
                 "-q"]) == 0
    for name in ("student.nir", "network.net", "manifest.json", "tune.json", "tune.html",
                 "tune_state.pt"):
        assert (out / name).is_file(), name
    report = json.loads((out / "tune.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["sha256"] == report["source"]["sha256"]
    assert manifest["inputs"]["sha256"] == report["inputs"]["sha256"]
    assert report["split"]["held_out"] == 50 and report["split"]["tuned_on"] == 150
    assert report["reset"] == {**report["reset"], "assumed": "subtract", "delay": True,
                               "exact_on_loihi": False}
    # never worse than the untuned lowering on the held-out inputs (that is kept otherwise)
    assert report["after"]["prediction_agreement"] >= report["before"]["prediction_agreement"]
    assert report["after"]["accuracy"] is not None
    assert "loihi2-proxy" in report["after"]["energy"]
    assert "reset_mechanism=&quot;zero&quot;, reset_delay=False" in (out / "tune.html").read_text()
    from neurodeploy.backends.lava import simulate_lava
    from neurodeploy.netx import read_netx
    net, _ = read_netx(out / "network.net")
    lava = simulate_lava(out / "network.net", x[:4], progress=False)
    exact = simulate_torch(net, x[:4])
    assert all(np.array_equal(a, b) for a, b in zip(lava.layers, exact.layers))
    # the same run again resumes from its state (nothing left to train) and gives the same file
    digest = manifest["files"]["network.net"]
    assert main(["tune", str(root / "mlp.nir"), "--data", str(root / "train.npz"),
                 "--reset", "subtract", "--reset-delay", "--epochs", "2", "--out", str(out),
                 "-q"]) == 0
    assert json.loads((out / "manifest.json").read_text())["files"]["network.net"] == digest


@pytest.mark.slow
def test_unlabeled_inputs_are_enough(snntorch_digits, tmp_path):
    root, *_ = snntorch_digits
    assert main(["tune", str(root / "mlp.nir"), "--data", str(root / "unlabeled.npz"),
                 "--epochs", "1", "--redraw", "0.1", "--out", str(tmp_path / "t"), "-q"]) == 0
    report = json.loads((tmp_path / "t" / "tune.json").read_text())
    assert report["after"]["accuracy"] is None and report["inputs"]["labels"] is False
    assert report["training"]["redraw"] == 0.1


@pytest.mark.slow
def test_export_of_a_foreign_graph_writes_the_untuned_deployment(snntorch_digits, tmp_path):
    root, *_ = snntorch_digits
    assert main(["export", str(root / "mlp.nir"), "--timesteps", "16",
                 "--out", str(tmp_path / "e")]) == 0
    manifest = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert manifest["source"]["tuned"] is False and manifest["timesteps"] == 16
    assert (tmp_path / "e" / "network.net").is_file()


def _bad(tmp_path, **arrays) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("case, message", [
    ("shape", "the graph expects 64"),
    ("few", "each part needs at least 10"),
    ("label", "holds label 10"),
    ("analog", "must be 0/1 spike trains"),
    ("netx", "nothing to recover"),
    ("ours", "neurodeploy export"),
    ("no_timesteps", "--timesteps"),
])
def test_bad_input_is_one_line_and_leaves_no_folder(snntorch_digits, tmp_path, capsys, case,
                                                    message):
    root, *_ = snntorch_digits
    graph, rng = root / "mlp.nir", np.random.default_rng(0)
    spikes = lambda n, w=64: (rng.random((n, 16, w)) < 0.2).astype(np.uint8)  # noqa: E731
    out = tmp_path / "never"
    verb = ["tune", str(graph), "--data"]
    if case == "shape":
        args = verb + [str(_bad(tmp_path, x=spikes(40, 63)))]
    elif case == "few":
        args = verb + [str(_bad(tmp_path, x=spikes(12)))]
    elif case == "label":
        args = verb + [str(_bad(tmp_path, x=spikes(40), y=np.full(40, 10)))]
    elif case == "analog":
        args = verb + [str(_bad(tmp_path, x=rng.random((40, 16, 64))))]
    elif case == "netx":
        args = ["tune", "export/digits/network.net", "--data", str(root / "train.npz")]
    elif case == "ours":
        args = ["tune", "export/digits/student.nir", "--data", str(root / "train.npz")]
    else:
        args = ["export", str(graph)]
    assert main(args + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_a_conv_graph_with_biases_starts_from_its_unrounded_weights():
    """snnTorch's Conv2d carries a bias per channel: the student starts from the weights and
    biases before rounding, and rounds them back to exactly the lowering's integers."""
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=2, padding=1),
                                bench._leaky((4, 4, 4)), torch.nn.Flatten(),
                                torch.nn.Linear(64, 5), bench._leaky((5,)))
    graph = export_to_nir(model, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
    latent = {}
    net, _ = lower_nir(graph, "conv.nir", None, None, latent)
    assert any(layer.conv is not None and layer.bias is not None for layer in net.layers)
    student = TunableNet(net, latent=latent)
    assert not all(np.array_equal(np.round(p.detach().numpy()), p.detach().numpy())
                   for p in student.parameters())          # not the integers themselves
    for a, b in zip(student.to_integer().layers, net.layers):
        assert np.array_equal(a.weight, b.weight)
        assert (a.bias is None and b.bias is None) or np.array_equal(a.bias, b.bias)
    x = (np.random.default_rng(0).random((6, 5, 64)) < 0.3).astype(np.uint8)
    with torch.no_grad():
        ours = student(torch.as_tensor(x, dtype=torch.float32))
    assert all(torch.equal(a.bool(), b) for a, b in zip(ours, run_exact(net, torch.as_tensor(x))))


def test_redrawn_events_keep_each_channels_rate_and_move_the_asked_fraction():
    from neurodeploy.distill.tune import redraw_events
    spikes = torch.as_tensor(bench.data("digits_mlp")[0][:300], dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    redrawn = redraw_events(spikes, 0.25, gen)
    assert set(redrawn.unique().tolist()) <= {0.0, 1.0}
    sparse = spikes.mean(1, keepdim=True) <= 0.5        # at most half the steps: 25% move
    kept = (redrawn * spikes * sparse).sum() / (spikes * sparse).sum()
    assert abs(float(kept) - 0.75) < 0.01
    rate, new_rate = spikes.mean((0, 1)), redrawn.mean((0, 1))
    assert (rate - new_rate).abs().max() < 0.02       # per channel: 4,800 steps each
    assert torch.equal(redraw_events(spikes, 0.0, gen), spikes)
    assert torch.equal(redraw_events(spikes, 0.25, torch.Generator().manual_seed(0)), redrawn)
