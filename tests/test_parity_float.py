"""Parity against the source: the float backend (the model as trained) against deployed
backends, and a framework's own results (--reference) against ours.

Why: bit-exact parity between deployed backends says nothing about how far deployment moved
the network from what the user trained; these tests hold the float side to its definition
(our training mode; a foreign NIR graph's own float semantics) and the comparison to what it
must report."""
import json

import nir
import numpy as np
import pytest
import torch

from neurodeploy.backends.float_mode import simulate_float, simulate_float_nir
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.cli import main
from neurodeploy.errors import UserError
from neurodeploy.netx import write_netx
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork, SpikingNet
from neurodeploy.parity import compare_source, read_reference

P = CubaParams(1024, 256, 128)


def _student(readout=False, seed=0) -> SpikingNet:
    torch.manual_seed(seed)
    return SpikingNet((20,), 5, [P, P], hidden=[16], readout=readout).eval()


def _spikes(n=12, t=8, width=20, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, t, width)) < 0.4


@pytest.mark.parametrize("readout", [False, True])
def test_float_backend_is_the_students_training_mode(readout):
    model = _student(readout)
    spikes = _spikes()
    record = simulate_float(model.to_integer(), spikes)
    with torch.no_grad():
        expected = model(torch.as_tensor(spikes, dtype=torch.float32))
    hidden = expected[0].numpy().astype(bool)
    assert hidden.any() and np.array_equal(record.layers[0], hidden)
    exact = simulate_torch(model.to_integer(), spikes)
    if readout:     # voltages in the deployed units (<< 6): close to the exact mode's
        assert np.allclose(record.readout, expected[-1].numpy() * 64, rtol=1e-4, atol=1e-2)
        assert np.abs(record.readout - exact.readout).mean() < 0.05 * np.abs(exact.readout).mean()
    else:
        assert np.array_equal(record.layers[1], expected[1].numpy().astype(bool))
    assert (record.predictions == exact.predictions).mean() >= 0.8


def test_float_backend_refuses_what_the_training_mode_cannot_express():
    layer = IntLayer(np.full((3, 4), 2), P, bias=np.array([1, 0, 0]), name="fc0")
    with pytest.raises(UserError) as e:
        simulate_float(IntNetwork(4, (layer,)), _spikes(2, 3, 4), source="b.net")
    assert "b.net" in str(e.value) and "bias" in str(e.value) and "\n" not in str(e.value)
    delayed = IntLayer(np.full((3, 4), 2), P, name="fc0", delay=np.ones((3, 4), int))
    with pytest.raises(UserError, match="fc0: it has delay"):
        simulate_float(IntNetwork(4, (delayed,)), _spikes(2, 3, 4))


def _foreign_graph(path):
    """A float LIF -> LI graph as another framework would write it (dt = 1e-3)."""
    rng = np.random.default_rng(4)
    w0, w1 = rng.normal(0, 0.6, (12, 20)), rng.normal(0, 0.5, (4, 12))
    nodes = {"input": nir.Input(input_type=np.array([20])),
             "fc0": nir.Affine(weight=w0, bias=np.zeros(12)),
             "lif0": nir.LIF(tau=np.full(12, 5e-3), r=np.full(12, 5.0), v_leak=np.zeros(12),
                             v_threshold=np.full(12, 1.0), v_reset=np.zeros(12)),
             "fc1": nir.Linear(weight=w1),
             "li1": nir.LI(tau=np.full(4, 4e-3), r=np.full(4, 4.0), v_leak=np.zeros(4)),
             "output": nir.Output(output_type=np.array([4]))}
    edges = [("input", "fc0"), ("fc0", "lif0"), ("lif0", "fc1"), ("fc1", "li1"),
             ("li1", "output")]
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}))
    return w0, w1


def test_a_foreign_graph_runs_in_its_own_float_semantics(tmp_path):
    """Checked against forward Euler written out here from NIR's equations, not the importer."""
    w0, w1 = _foreign_graph(tmp_path / "g.nir")
    spikes = _spikes(10, 12)
    record = simulate_float_nir(tmp_path / "g.nir", spikes)
    v0, v1 = np.zeros((10, 12)), np.zeros((10, 4))
    hidden, volts = [], []
    for t in range(12):
        v0 = v0 + 0.2 * (0 - v0 + 5.0 * spikes[:, t] @ w0.T)       # dt/tau = 1e-3 / 5e-3
        s = v0 > 1.0
        v0[s] = 0
        v1 = v1 + 0.25 * (0 - v1 + 4.0 * s @ w1.T)
        hidden.append(s)
        volts.append(v1.copy())
    hidden = np.stack(hidden, 1)
    assert hidden.any() and np.array_equal(record.layers[0], hidden)
    assert record.layer_names == ["fc0", "fc1"]
    ratio = record.readout / np.stack(volts, 1)        # deployed units: one positive scale
    assert np.allclose(ratio[np.isfinite(ratio)], ratio.flat[np.argmax(np.abs(volts))])


def _net_file(tmp_path, seed=0):
    net = _student(seed=seed).to_integer()
    write_netx(net, tmp_path / "n.net")
    spikes = _spikes(16, 8)
    np.savez(tmp_path / "x.npz", x=spikes.astype(np.uint8), y=np.arange(16) % 5)
    return net, spikes


def test_parity_cli_reports_the_distance_from_the_model_as_trained(tmp_path, capsys):
    net, spikes = _net_file(tmp_path)
    exact = simulate_torch(net, spikes)
    np.savez(tmp_path / "ref.npz", predictions=exact.predictions, counts=exact.counts)
    code = main(["parity", str(tmp_path / "n.net"), "--backends", "float,torch,emulator",
                 "--data", str(tmp_path / "x.npz"), "--reference", str(tmp_path / "ref.npz"),
                 "--out", str(tmp_path / "p"), "-q"])
    assert code == 0
    result = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert [c["backends"][0] for c in result["comparisons"]] == ["torch"]
    source = result["source"][0]
    assert source["backends"] == ["float", "torch"]
    ours = compare_source(simulate_float(net, spikes), exact, np.arange(16) % 5)
    assert source["layers"] == json.loads(json.dumps(ours["layers"]))
    assert [r["layer"] for r in source["layers"]] == ["fc0", "fc1"]
    assert set(source) >= {"prediction_agreement", "gap", "divergence_starts_at"}
    ref = {r["backends"][1]: r for r in result["reference"]}
    assert ref["torch"]["prediction_agreement"] == 1.0
    assert ref["torch"]["output_counts"]["samples_identical"] == 1.0
    assert (tmp_path / "p" / "report.html").exists()
    assert "as trained" in capsys.readouterr().out


def test_divergence_starts_where_the_first_layer_differs():
    model = _student()
    spikes = _spikes()
    a = simulate_float(model.to_integer(), spikes)
    b = simulate_float(model.to_integer(), spikes)
    assert compare_source(a, b)["divergence_starts_at"] is None
    b.layers[1] = b.layers[1].copy()
    b.layers[1][0, 0, 0] ^= True
    got = compare_source(a, b)
    assert got["divergence_starts_at"] == "fc1" and got["layers"][1]["neuron_steps_differing"] == 1


@pytest.mark.parametrize("arrays, words", [
    ({"counts": np.full((16, 5), np.nan)}, ["'counts'", "NaN"]),
    ({"predictions": np.zeros(15, int)}, ["'predictions'", "15 samples"]),
    ({"counts": np.zeros((16, 4))}, ["'counts'", "[16, 5]"]),
    ({"predictions": np.full(16, 7)}, ["'predictions'", "0..4"]),
    ({"labels": np.zeros(16)}, ["neither"]),
])
def test_a_bad_reference_is_one_line_naming_file_and_field(tmp_path, capsys, arrays, words):
    _net_file(tmp_path)
    np.savez(tmp_path / "ref.npz", **arrays)
    code = main(["parity", str(tmp_path / "n.net"), "--backends", "float,torch", "--data",
                 str(tmp_path / "x.npz"), "--reference", str(tmp_path / "ref.npz"),
                 "--out", str(tmp_path / "p"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "ref.npz" in err
    assert all(w in err for w in words), err


def test_read_reference_derives_predictions_from_counts(tmp_path):
    counts = np.eye(5)[[4, 0, 2]] * 3
    np.savez(tmp_path / "r.npz", counts=counts)
    assert read_reference(tmp_path / "r.npz", 3, 5)["predictions"].tolist() == [4, 0, 2]


@pytest.mark.lava
def test_float_against_lava_on_a_few_samples(tmp_path):
    """Lava really runs: the float side compared with the referee, as report.json does."""
    pytest.importorskip("lava")
    net = _student(readout=True).to_integer()    # float and exact voltages differ a little
    write_netx(net, tmp_path / "n.net")
    spikes, labels = _spikes(6, 6), np.arange(6) % 5
    np.savez(tmp_path / "x.npz", x=spikes.astype(np.uint8), y=labels)
    assert main(["parity", str(tmp_path / "n.net"), "--backends", "float,torch,lava", "--data",
                 str(tmp_path / "x.npz"), "--out", str(tmp_path / "p"), "-q"]) == 0
    result = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert result["comparisons"][0]["spike_mismatches"] == 0
    lava = [s for s in result["source"] if "lava" in s["backends"][1].lower()]
    assert len(lava) == 1
    # Lava computes what the exact mode computes, so float-vs-Lava is float-vs-exact, which is
    # computed here from the two records, not taken from parity.json
    floated, exact = simulate_float(net, spikes), simulate_torch(net, spikes)
    assert lava[0]["prediction_agreement"] == (floated.predictions == exact.predictions).mean()
    expected = compare_source(floated, exact, labels)
    assert lava[0]["layers"] == json.loads(json.dumps(expected["layers"]))
    assert lava[0]["accuracy"]["float"] == floated.accuracy(labels)
    difference = lava[0]["readout_voltage_relative_difference"]
    assert difference > 0 and difference == pytest.approx(
        expected["readout_voltage_relative_difference"], rel=1e-9)


@pytest.mark.slow
def test_parity_of_a_foreign_graph_compares_its_float_semantics_with_the_deployment(tmp_path):
    _foreign_graph(tmp_path / "g.nir")
    np.savez(tmp_path / "x.npz", x=_spikes(20, 12).astype(np.uint8), y=np.arange(20) % 4)
    assert main(["parity", str(tmp_path / "g.nir"), "--backends", "float,torch", "--data",
                 str(tmp_path / "x.npz"), "--out", str(tmp_path / "p"), "-q"]) == 0
    source = json.loads((tmp_path / "p" / "parity.json").read_text())["source"][0]
    assert [r["layer"] for r in source["layers"]] == ["fc0", "fc1"]
    # 8-bit weights move the voltages a little, in the same units on both sides
    assert 0 < source["readout_voltage_relative_difference"] < 0.2
    assert source["prediction_agreement"] >= 0.8
