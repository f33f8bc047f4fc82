"""Energy: counting by hand, presets, repricing, resources, baselines, NeuroBench cross-check."""
import json

import numpy as np
import pytest
import torch

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.cli import main
from neurodeploy.energy import (accuracy_by_timestep, ann_baselines, count_events, dense_layers,
                                layer_table,
                                load_preset, price, resource_estimate)
from neurodeploy.errors import UserError
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork

P = CubaParams(1, 1, 1)


@pytest.fixture
def hand():
    w0 = np.array([[2, 0, 4], [0, 0, 2]])          # input fan-out: 1, 0, 2
    w1 = np.array([[2, 2]])
    net = IntNetwork(3, (IntLayer(w0, P, name="fc0"), IntLayer(w1, P, name="fc1")))
    inputs = np.array([[[1, 1, 0], [0, 0, 1]]], bool)      # 1 sample, 2 steps
    hidden = np.array([[[1, 0], [1, 1]]], bool)
    out = np.array([[[0], [1]]], bool)
    return net, SpikeRecord("hand", inputs, [hidden, out], ["fc0", "fc1"])


def test_counts_follow_fan_out_and_activity(hand):
    net, rec = hand
    c = count_events(rec, net)
    np.testing.assert_array_equal(c["synaptic_ops"], [[1, 2], [1, 2]])
    np.testing.assert_array_equal(c["neuron_active"], [[1, 2], [1, 1]])
    np.testing.assert_array_equal(c["neuron_inactive"], [[1, 0], [0, 0]])
    np.testing.assert_array_equal(c["spikes"], [[1, 2], [0, 1]])


def test_pricing_is_counts_times_cited_figures(hand):
    net, rec = hand
    preset = load_preset("loihi2-proxy")
    out = price(count_events(rec, net), layer_table(net), preset, [0.0, 1.0])
    step0 = out["per_timestep"][0]
    assert step0["dynamic_pj"] == pytest.approx(2 * 23.6 + 2 * 81 + 1 * 52 + 1 * 1.7)
    # one core per layer; the slowest layer's work plus the barrier sets the step time
    fc0_ns = 1 * 3.5 + 1 * 8.4 + 1 * 5.3 + 1 * 2.1
    assert step0["step_us"] == pytest.approx((fc0_ns + 113) / 1e3)
    assert step0["static_pj"] == pytest.approx(0.232 * (fc0_ns + 113) * 1e3)
    e = out["energy"]
    assert e["per_inference_pj"] == pytest.approx(e["dynamic_pj"] + e["static_pj"])
    assert "PROXY" in e["note"] and "Davies" in e["source"] and "PilotNet" in e["source"]
    assert [s["T"] for s in out["timestep_sweep"]] == [1, 2]
    assert out["timestep_sweep"][-1]["energy_pj"] == pytest.approx(e["per_inference_pj"])


def test_accuracy_by_timestep_reads_the_output_early():
    """Three classes over four steps, worked out by hand: the answer changes at T' = 2 and 3,
    so reading one step too early or too late gives another list."""
    out = np.zeros((3, 4, 3), bool)                # [sample, t, class]
    out[0, 0, 0] = out[0, 1, 2] = out[0, 2, 2] = True   # label 2: 0, tie -> 0, 2, 2
    out[1, 0, 1] = out[1, 1, 0] = out[1, 2, 0] = out[1, 3, 1] = True   # label 1: 1, 0, 0, 0
    labels = np.array([2, 1, 0])                   # sample 2 never spikes: class 0 (ties low)
    rec = SpikeRecord("hand", np.zeros((3, 4, 1), bool), [out], ["fc0"])
    assert accuracy_by_timestep(rec, labels) == pytest.approx([2 / 3, 1 / 3, 2 / 3, 2 / 3])
    volts = np.zeros((3, 4, 3), np.int64)          # a readout layer: summed voltage decides
    volts[0, :, 2] = [-5, 1, 1, 1]                 # sums -5, -4, -3, -2 against class 0's 0
    volts[1, :, 1] = [3, -4, 0, 0]                 # 3, -1, -1, -1
    volts[2, :, 0] = [0, 0, 0, 9]
    readout = SpikeRecord("hand", rec.inputs, [np.zeros_like(out)], ["fc0"], readout=volts)
    assert accuracy_by_timestep(readout, labels) == pytest.approx([2 / 3, 1 / 3, 1 / 3, 1 / 3])


def test_resource_estimate_says_when_a_network_does_not_fit():
    small = resource_estimate([{"name": "a", "neurons": 100, "synapses": 1000, "fan_in": 10}])
    assert small["fits_one_chip"] and small["cores"] == 1
    huge = resource_estimate([{"name": "big", "neurons": 2_000_000, "synapses": 10**9,
                               "fan_in": 500}])
    assert not huge["fits_one_chip"] and "does NOT fit" in huge["verdict"]
    assert huge["layers"][0]["cores"] == 1067 and huge["layers"][0]["bound_by"] == "synapses"


def test_ann_baselines_price_macs_and_memory():
    rows = {r["name"]: r for r in ann_baselines("x", dense_layers([64, 256, 10]))}
    macs = 64 * 256 + 256 * 10
    assert rows["x ANN, FP32 compute only"]["per_inference_pj"] == pytest.approx(macs * 4.6)
    assert rows["x ANN, INT8 compute only"]["per_inference_pj"] == pytest.approx(macs * 0.23)
    assert rows["x ANN, INT8 memory-aware"]["per_inference_pj"] > macs * 0.23
    assert all("Horowitz" in r["source"] or "Lemaire" in r["source"] for r in rows.values())


@pytest.mark.parametrize("text, message", [
    ("name: mine\nsource: me\n", "missing field 'synaptic_op_pj'"),
    ("name: mine\nsource: me\nsynaptic_op_pj: -1\n", "synaptic_op_pj must be a number >= 0"),
    ("name: mine\nsource: me\nsynaptic_op_pj: 1\nfoo: 2\n", "unknown field 'foo'"),
])
def test_user_presets_are_validated(tmp_path, text, message):
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(UserError, match=message):
        load_preset(str(tmp_path / "p.yaml"))


def test_a_valid_user_preset_and_unknown_names(tmp_path):
    (tmp_path / "p.yaml").write_text("name: mine\nsource: my lab, 2026\nsynaptic_op_pj: 5\n")
    assert load_preset(str(tmp_path / "p.yaml")).synaptic_op_pj == 5
    with pytest.raises(UserError, match="unknown energy preset 'loihi9'"):
        load_preset("loihi9")


def test_neurobench_counts_the_same_synaptic_operations():
    """NeuroBench's SynapticOperations counter (effective ACs) on the same activity."""
    from neurobench.metrics.utils.layers.macs import single_layer_MACs

    rng = np.random.default_rng(0)
    w0 = rng.integers(-128, 128, (20, 12)) * 2 * (rng.random((20, 12)) < 0.6)
    w1 = rng.integers(-128, 128, (5, 20)) * 2
    net = IntNetwork(12, (IntLayer(w0, P, name="fc0"), IntLayer(w1, P, name="fc1")))
    spikes = [rng.random((7, 6, n)) < 0.3 for n in (12, 20, 5)]
    rec = SpikeRecord("random", spikes[0], spikes[1:], ["fc0", "fc1"])
    ours = count_events(rec, net, totals=True)["synaptic_ops"]
    for i, layer in enumerate(net.layers):
        linear = torch.nn.Linear(layer.weight.shape[1], layer.size, bias=False)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(layer.weight, dtype=torch.float32))
        for t in range(6):
            acs, spiking = single_layer_MACs(torch.as_tensor(spikes[i][:, t], dtype=torch.float32),
                                             linear)
            assert spiking and acs == ours[i, t]


def test_energy_verb_reprices_a_saved_report(tmp_path, capsys):
    from neurodeploy.report.summary import report
    net = IntNetwork(3, (IntLayer(np.array([[2, 2, 2]]), P, name="fc0"),))
    rec = SpikeRecord("x", np.ones((2, 3, 3), bool), [np.ones((2, 3, 1), bool)], ["fc0"])
    saved = report(net, rec, rec, np.zeros(2, int), "loihi1-davies2018",
                   extra={"network": {"sha256": "abc"}})
    (tmp_path / "report.json").write_text(json.dumps(saved))
    assert main(["energy", str(tmp_path / "report.json"), "--preset", "loihi2-proxy"]) == 0
    repriced = json.loads((tmp_path / "energy-loihi2-proxy.json").read_text())
    assert repriced["energy"]["static_pj"] > 0 == saved["energy"]["static_pj"]
    assert repriced["energy"]["dynamic_pj"] == pytest.approx(saved["energy"]["dynamic_pj"])
    (tmp_path / "other.net").write_bytes(b"x")
    assert main(["energy", str(tmp_path / "report.json"), "--network",
                 str(tmp_path / "other.net")]) == 2
    assert "made with a different network" in capsys.readouterr().err


def test_conv_synaptic_operations_match_neurobench():
    from neurobench.metrics.utils.layers.macs import single_layer_MACs

    from neurodeploy.neurons.network import Conv
    rng = np.random.default_rng(3)
    conv = Conv((2, 7, 6), stride=(2, 1), padding=(1, 1))
    w = rng.integers(-128, 128, (3, 2, 3, 3)) * 2 * (rng.random((3, 2, 3, 3)) < 0.7)
    layer = IntLayer(w, P, name="conv0", conv=conv)
    net = IntNetwork((2, 7, 6), (layer,))
    inputs = rng.random((4, 5, 2 * 7 * 6)) < 0.3
    rec = SpikeRecord("random", inputs, [rng.random((4, 5, layer.size)) < 0.2], ["conv0"])
    ours = count_events(rec, net, totals=True)["synaptic_ops"][0]
    torch_conv = torch.nn.Conv2d(2, 3, 3, stride=(2, 1), padding=(1, 1), bias=False)
    with torch.no_grad():
        torch_conv.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
    for t in range(5):
        x = torch.as_tensor(inputs[:, t].reshape(4, 2, 7, 6), dtype=torch.float32)
        acs, _ = single_layer_MACs(x, torch_conv)
        assert acs == ours[t]
