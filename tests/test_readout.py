"""`student.readout`: a non-spiking last layer whose summed voltage is the prediction.

Why it exists: with T steps an output neuron's spike count saturates (on Fashion-MNIST, T = 4,
91% of samples hit the top count), so CE and KD on counts cannot rank classes; a voltage does
not saturate. These tests hold the option to what deployment needs: exact on Lava, exactly
round-tripped through NIR and netx, and spike-count students unchanged when it is off.
"""
import json

import nir
import numpy as np
import pytest
import torch

from neurodeploy.cli import main
from neurodeploy.distill.train import exact_accuracy
from neurodeploy.graph import lower_nir
from neurodeploy.graph.nir_io import from_nir, read_nir, to_nir, write_nir
from neurodeploy.netx import read_netx, write_netx
from neurodeploy.neurons import CubaParams, SpikingNet, run_exact
from neurodeploy.neurons.cuba import THRESHOLD_MAX, CubaLIF
from neurodeploy.recipe import recipe_from_dict

P = CubaParams(1024, 256, 128)

TINY = """
name: tiny-readout
encoding: {timesteps: 8}
teacher: {hidden: [64], epochs: 5}
student: {hidden: [32], readout: true}
distill: {epochs: 2}
"""


def _net(readout: bool, seed: int = 0) -> SpikingNet:
    torch.manual_seed(seed)
    return SpikingNet((20,), 5, [P, P], hidden=[16], readout=readout)


def _inputs(seed: int = 1) -> torch.Tensor:
    return (torch.rand(64, 6, 20, generator=torch.Generator().manual_seed(seed)) < 0.4).float()


def test_readout_float_mode_tracks_exact_voltage():
    """The float readout voltage is the exact one up to sub-integer rounding, and the logits'
    argmax is the deployed argmax of the summed exact voltage."""
    net = _net(True)
    x = _inputs()
    with torch.no_grad():
        out = net(x)
    integer = net.to_integer()
    assert integer.readout and integer.layers[-1].params.threshold == THRESHOLD_MAX
    _, volts = run_exact(integer, x, voltage=True)
    assert volts.abs().max() > 0
    exact = volts.double() / 64
    assert (out[-1].double() - exact).abs().max() <= 0.05 * exact.abs().max()
    logits = net.step_logits(out).sum(1)
    agree = (logits.argmax(1) == volts.sum(1).argmax(1)).double().mean().item()
    assert agree >= 0.9
    labels = volts.sum(1).argmax(1).numpy()
    assert exact_accuracy(net, x.numpy(), labels) == 1.0   # validation decodes the voltage


def test_spike_count_students_are_unchanged():
    """readout off (the default): a spiking last layer, spike counts as logits, no readout."""
    assert recipe_from_dict({"name": "x"}, "<t>").student.readout is False
    net = _net(False)
    assert isinstance(net.neurons[-1], CubaLIF) and not net.to_integer().readout
    x = _inputs()
    with torch.no_grad():
        out = net(x)
    assert torch.equal(net.step_logits(out), out[-1])
    assert set(out[-1].unique().tolist()) <= {0.0, 1.0}
    graph = to_nir(net.to_integer())
    assert not any(isinstance(n, nir.CubaLI) for n in graph.nodes.values())


def test_recipe_readout_is_a_strict_bool():
    from neurodeploy.errors import UserError
    with pytest.raises(UserError, match="readout"):
        recipe_from_dict({"name": "x", "student": {"readout": "yes"}}, "<t>")


def test_readout_round_trips_exactly_through_nir_and_netx(tmp_path):
    net = _net(True).to_integer()
    write_nir(to_nir(net, {}), tmp_path / "s.nir")
    graph = read_nir(tmp_path / "s.nir")                 # readable by nir.read
    assert isinstance(graph.nodes["lif1"], nir.CubaLI)
    back = from_nir(graph, "s.nir")
    lowered, report = lower_nir(graph, "s.nir")
    assert report == []
    write_netx(back, tmp_path / "n.net")
    netx, meta = read_netx(tmp_path / "n.net")
    assert meta["readout"] is True
    for other in (back, lowered, netx):
        assert other.readout
        for a, b in zip(net.layers, other.layers):
            assert a.params == b.params and np.array_equal(a.weight, b.weight)
    # and the training mode rebuilt from the deployed file gives the same integers
    again = SpikingNet.from_integer(netx).to_integer()
    assert again.readout and all(np.array_equal(a.weight, b.weight)
                                 for a, b in zip(net.layers, again.layers))


@pytest.mark.lava
@pytest.mark.slow
def test_readout_recipe_runs_on_lava_bit_exactly(tmp_path, run_recipe):
    """End to end: distill a readout student, export, run on Lava; no spike and no readout
    voltage differs from the exact mode, and the float mode predicts like the deployed net."""
    run = run_recipe(TINY, tmp_path)
    report = json.loads((run / "report.json").read_text())
    assert report["parity"]["spike_mismatches"] == 0
    assert report["parity"]["prediction_agreement"] == 1.0
    assert report["accuracy"]["student_deployed"] > 0.5          # 10 classes: chance is 0.1
    assert json.loads((run / "manifest.json").read_text())["accuracy"]["deployed_exact"] == \
        report["accuracy"]["student_deployed"]
    # readout voltages, compared one by one (exit 1 on any mismatch)
    assert main(["parity", str(run / "network.net"), "--backends", "torch,lava",
                 "--samples", "60", "--out", str(tmp_path / "parity"), "-q"]) == 0
    parity = json.loads((tmp_path / "parity" / "parity.json").read_text())
    assert parity["readout_voltage_mismatches"] == 0
    assert parity["comparisons"][0]["readout_voltage_mismatches"] == 0
    # float (training) mode vs exact mode on the test split
    from neurodeploy.checkpoint import load_checkpoint
    from neurodeploy.inputs import encoded_test_split
    student, _, _ = load_checkpoint(run / "checkpoint.pt")
    assert student.readout and isinstance(from_nir(read_nir(run / "student.nir")).readout, bool)
    spikes, _ = encoded_test_split(json.loads((run / "manifest.json").read_text()))
    x = torch.as_tensor(spikes[:200], dtype=torch.float32)
    with torch.no_grad():
        floating = student.step_logits(student(x)).sum(1).argmax(1)
    _, volts = run_exact(student.to_integer(), torch.as_tensor(spikes[:200]), voltage=True)
    assert (floating == volts.sum(1).argmax(1)).double().mean().item() >= 0.95


def test_the_report_plots_a_readout_layers_voltage_not_an_empty_raster():
    """A readout layer never spikes: report.json keeps its voltage for the first sample, and
    the raster's last panel draws it (an empty spike panel said nothing)."""
    from neurodeploy.backends.torch_exact import simulate_torch
    from neurodeploy.report.plots import raster
    from neurodeploy.report.summary import DEFAULT_PRESET, report
    net = _net(True).to_integer()
    record = simulate_torch(net, _inputs().numpy().astype(np.uint8))
    labels = record.predictions
    result = json.loads(json.dumps(report(net, record, record, labels, DEFAULT_PRESET)))
    assert np.array_equal(result["readout_voltage"], record.readout[0])
    assert result["raster"][record.layer_names[-1]] == []          # what the panel showed
    assert raster(result).startswith(b"\x89PNG")
    plain = _net(False).to_integer()
    assert "readout_voltage" not in report(plain, simulate_torch(plain, record.inputs),
                                           simulate_torch(plain, record.inputs), labels,
                                           DEFAULT_PRESET)
