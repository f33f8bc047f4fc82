"""`student.recurrent`: hidden dense layers that also receive their own spikes one step late.

Why: a temporal task needs memory beyond a neuron's decay; IntLayer.recurrent (netx
`dense_rec`) already deploys it bit-exactly, so the trainable student must train the same
recurrence and hand it over unchanged. These tests hold the float (training) step to run_exact's
semantics, the integer weights to an exact round trip, and a distilled recurrent student to 0
spike mismatches on torch exact and Lava after NIR export.
"""
import json

import nir
import numpy as np
import pytest
import torch

from neurodeploy.backends.float_mode import simulate_float
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.cli import main
from neurodeploy.errors import UserError
from neurodeploy.graph import lower_nir
from neurodeploy.graph.nir_io import read_nir
from neurodeploy.netx import read_netx, write_netx
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork, SpikingNet, run_exact
from neurodeploy.recipe import recipe_from_dict


def _grid(rng, shape, lo=-40, hi=40):
    return (rng.integers(lo // 2, hi // 2 + 1, shape) * 2).astype(np.int64)


def _integer_net(i_decay: int, v_decay: int, seed: int = 0) -> IntNetwork:
    """Two recurrent hidden layers and a spiking output, weights on the grid; threshold 64 (a
    power of two) keeps weight / scale exact in float, so only the decays could round."""
    rng = np.random.default_rng(seed)
    p = CubaParams(i_decay, v_decay, 64)
    return IntNetwork(20, (
        IntLayer(_grid(rng, (16, 20)), p, name="fc0", recurrent=_grid(rng, (16, 16))),
        IntLayer(_grid(rng, (12, 16)), p, name="fc1", recurrent=_grid(rng, (12, 12))),
        IntLayer(_grid(rng, (5, 12)), p, name="fc2")))


def _spikes(n=32, t=10, width=20, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, t, width)) < 0.4


@pytest.mark.parametrize("decays", [(4096, 4096), (0, 4096), (4096, 0), (0, 0)])
def test_float_step_is_run_exact_when_the_decays_do_not_round(decays):
    """Decays of 0 or 4096 make the float step exact: every spike of every layer, and so every
    prediction, must equal run_exact's; and the recurrence must matter for that to mean much."""
    net = _integer_net(*decays)
    model = SpikingNet.from_integer(net).double().eval()
    assert sorted(model.recurrent) == ["0", "1"]
    x = torch.as_tensor(_spikes())
    with torch.no_grad():
        floating = model(x.double())
    exact = run_exact(net, x)
    for f, e in zip(floating, exact):
        assert torch.equal(f.bool(), e)
    assert torch.equal(floating[-1].sum(1).argmax(1), exact[-1].sum(1).long().argmax(1))
    assert exact[0].any() and not exact[0].all()
    without = IntNetwork(20, tuple(IntLayer(x.weight, x.params, name=x.name) for x in net.layers))
    assert not all(torch.equal(a, b) for a, b in zip(run_exact(without, x), exact))
    again = model.to_integer()
    for a, b in zip(net.layers, again.layers):
        assert np.array_equal(a.weight, b.weight)
        assert (a.recurrent is None and b.recurrent is None) or np.array_equal(a.recurrent,
                                                                               b.recurrent)


def test_recurrent_weights_train_and_deploy_on_the_grid():
    """recurrent=True: every hidden dense layer (never the output) gets an n x n synapse on the
    layer's weight scale; gradients reach it; to_integer fills IntLayer.recurrent."""
    p = CubaParams(1024, 256, 100)
    torch.manual_seed(0)
    model = SpikingNet((20,), 5, [p, p, p], hidden=[16, 8], recurrent=True, init_gain=3.0)
    assert sorted(model.recurrent) == ["0", "1"]
    assert model.recurrent["1"].weight.shape == (8, 8) and model.recurrent["1"].scale == 100
    out = model(torch.as_tensor(_spikes(8, 6), dtype=torch.float32))
    out[-1].sum().backward()
    assert model.recurrent["0"].weight.grad.abs().sum() > 0
    net = model.to_integer()
    assert [layer.kind for layer in net.layers] == ["dense_rec", "dense_rec", "dense"]
    assert net.layers[0].recurrent.dtype == np.int64 and np.all(net.layers[0].recurrent % 2 == 0)
    assert sorted(SpikingNet((20,), 5, [p, p, p], hidden=[16, 8]).state_dict()) == \
        ["synapses.0.weight", "synapses.1.weight", "synapses.2.weight"]   # checkpoints unchanged


def test_recurrence_is_refused_where_there_is_no_hidden_dense_layer():
    p = CubaParams(1024, 256, 100)
    with pytest.raises(ValueError, match=r"^student\.recurrent: .*conv"):
        SpikingNet((1, 8, 8), 5, [p, p], conv=[{"channels": 2, "kernel": 3}], recurrent=True)
    with pytest.raises(ValueError, match=r"^student\.recurrent: "):
        SpikingNet((20,), 5, [p], recurrent=True)
    for student in ({"recurrent": True, "hidden": []},
                    {"recurrent": True, "conv": [{"channels": 4, "kernel": 3}]}):
        with pytest.raises(UserError) as e:
            recipe_from_dict({"name": "x", "student": student}, "r.yaml")
        msg = str(e.value)
        assert msg.startswith("r.yaml: student: recurrent:") and "\n" not in msg
    assert recipe_from_dict({"name": "x"}, "r.yaml").student.recurrent is False


def test_float_backend_runs_recurrent_networks(tmp_path):
    """The float backend (our training mode) now expresses recurrence: on exact decays it is
    the exact mode, and `parity --backends float,torch` on the netx file agrees."""
    net = _integer_net(0, 4096)
    spikes = _spikes(12, 8)
    floating, exact = simulate_float(net, spikes), simulate_torch(net, spikes)
    for f, e in zip(floating.layers, exact.layers):
        assert np.array_equal(f, e)
    assert np.array_equal(floating.predictions, exact.predictions)
    write_netx(net, tmp_path / "rec.net")
    np.savez(tmp_path / "x.npz", x=spikes.astype(np.uint8), y=np.arange(12) % 5)
    assert main(["parity", str(tmp_path / "rec.net"), "--backends", "float,torch",
                 "--data", str(tmp_path / "x.npz"), "--out", str(tmp_path / "p"), "-q"]) == 0
    source = json.loads((tmp_path / "p" / "parity.json").read_text())["source"][0]
    assert source["backends"] == ["float", "torch"]
    assert source["prediction_agreement"] == 1.0 and source["divergence_starts_at"] is None


TINY = """
name: tiny-recurrent
encoding: {timesteps: 8}
teacher: {hidden: [64], epochs: 3}
student: {hidden: [32], recurrent: true}
distill: {epochs: 2}
"""


@pytest.mark.lava
@pytest.mark.slow
def test_a_distilled_recurrent_student_deploys_exactly_on_lava(tmp_path, run_recipe):
    """End to end: distill a recurrent student, export it through NIR (the lif -> rec -> lif
    edge), lower it to netx dense_rec, run torch exact and Lava: 0 spike mismatches."""
    run = run_recipe(TINY, tmp_path)
    graph = read_nir(run / "student.nir")
    loops = [(a, b) for a, b in graph.edges if isinstance(graph.nodes[a], nir.Linear)
             and isinstance(graph.nodes[b], (nir.CubaLIF, nir.LIF))
             and (b, a) in graph.edges]
    assert loops, "student.nir has no recurrent edge"
    lowered, _ = lower_nir(graph, "student.nir")
    netx, _ = read_netx(run / "network.net")
    assert [layer.kind for layer in netx.layers] == ["dense_rec", "dense"]
    assert np.array_equal(netx.layers[0].recurrent, lowered.layers[0].recurrent)
    assert np.any(netx.layers[0].recurrent)
    report = json.loads((run / "report.json").read_text())
    assert report["parity"]["spike_mismatches"] == 0
    assert report["accuracy"]["student_deployed"] > 0.3          # 10 classes: chance is 0.1
    assert main(["parity", str(run / "network.net"), "--backends", "torch,lava",
                 "--samples", "6", "--out", str(tmp_path / "parity"), "-q"]) == 0
    parity = json.loads((tmp_path / "parity" / "parity.json").read_text())
    assert parity["comparisons"][0]["spike_mismatches"] == 0


def test_a_python_built_recurrent_student_is_described_by_its_recipe():
    """api.distill/export describe a SpikingNet built in Python by a recipe; the recurrent
    weights must survive that (strict load), and a partial recurrence is refused in one line."""
    from neurodeploy.checkpoint import _student, student_recipe
    p = CubaParams(1024, 256, 100)
    model = SpikingNet((20,), 5, [p, p], hidden=[16], recurrent=True)
    recipe = student_recipe(model, recipe_from_dict({"name": "x"}, "r.yaml"))
    assert recipe.student.recurrent is True
    _student(recipe, (20,), 5).load_state_dict(model.state_dict())
    partial = SpikingNet((20,), 5, [p, p, p], hidden=[16, 8], recurrent=[1])
    with pytest.raises(UserError, match="student.recurrent"):
        student_recipe(partial, recipe_from_dict({"name": "x"}, "r.yaml"))
