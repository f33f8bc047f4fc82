"""netx constructs beyond plain dense/conv chains, in files written by lava-dl's own slayer
exporter: input layers with neurons, synaptic delays, recurrent layers. Each runs on Lava, the
emulator and the torch exact mode spike for spike; what netx cannot build is refused."""
import h5py
import numpy as np
import pytest
import torch

from neurodeploy.backends.lava import simulate_lava
from neurodeploy.backends.lava_runtime import import_lava
from neurodeploy.errors import UserError
from neurodeploy.netx import read_netx, write_netx
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork, run_exact
from slayer_export import export, lava_emulator_exact

P = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03,
     "scale_grad": 3, "requires_grad": False}


def slayer():
    import_lava()
    from lava.lib.dl import slayer as s
    return s


def three_way(path, samples=4, steps=12, seed=1):
    """Spikes of Lava, the emulator and the torch exact mode, checked equal; returns them."""
    net, _ = read_netx(path)
    x = (np.random.default_rng(seed).random((samples, steps, net.input_size)) < 0.4)
    x = x.astype(np.uint8)
    return net, x, lava_emulator_exact(path, x, net)[2]


@pytest.mark.lava
def test_input_layer_and_delays_match_lava(tmp_path):
    s = slayer()
    torch.manual_seed(0)
    blocks = [s.block.cuba.Input(P, weight=1.5, bias=0.25),
              s.block.cuba.Dense(P, 20, 16, weight_scale=2, delay=True),
              s.block.cuba.Dense(P, 16, 5, weight_scale=2)]
    export(tmp_path / "s.net", blocks, torch.zeros(1, 20, 4),
           {1: torch.arange(16.0) % 5 + 0.5})          # 0..4 steps once floored on export
    net, x, exact = three_way(tmp_path / "s.net")
    first, delayed = net.layers[0], net.layers[1]
    assert first.kind == "input" and first.weight[0] == 96 and first.bias[0] == 16
    assert delayed.delay.max() == 4 and "delays 0..4" in delayed.describe()
    # the delays and the input bias change the result: the check above could fail
    plain = IntNetwork(net.input_shape, (first, IntLayer(delayed.weight, delayed.params,
                                                         name="fc"), net.layers[2]))
    assert not np.array_equal(run_exact(plain, torch.as_tensor(x))[1].numpy(), exact.layers[1])


@pytest.mark.lava
def test_recurrent_layer_matches_lava(tmp_path):
    s = slayer()
    torch.manual_seed(2)
    blocks = [s.block.cuba.Recurrent(P, 12, 10, weight_scale=2),
              s.block.cuba.Dense(P, 10, 4, weight_scale=2)]
    export(tmp_path / "r.net", blocks, torch.zeros(1, 12, 4))
    net, x, exact = three_way(tmp_path / "r.net", samples=5)
    rec = net.layers[0]
    assert rec.kind == "dense_rec" and np.any(rec.recurrent)
    # samples are independent: the same sample alone gives the same spikes (Lava's recurrent
    # buffer would otherwise carry the previous sample's last spikes into the next one)
    alone = simulate_lava(tmp_path / "r.net", x[3:4], progress=False)
    np.testing.assert_array_equal(alone.layers[0][0], exact.layers[0][3])
    feed_forward = IntNetwork(net.input_shape, (IntLayer(rec.weight, rec.params, name="fc"),
                                                net.layers[1]))
    assert not np.array_equal(run_exact(feed_forward, torch.as_tensor(x))[0].numpy(),
                              exact.layers[0])


@pytest.mark.lava
def test_written_recurrent_and_delays_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    p = CubaParams(1024, 128, 80)
    net = IntNetwork((6,), (
        IntLayer(np.full(6, 70), p, name="input", bias=np.full(6, 3), input_shape=(6,)),
        IntLayer(rng.integers(-60, 100, (8, 6)), p, name="fc0",
                 recurrent=rng.integers(-50, 50, (8, 8))),
        IntLayer(rng.integers(-60, 100, (3, 8)), p, name="fc1",
                 delay=rng.integers(0, 6, (3, 8)))))
    write_netx(net, tmp_path / "w.net")
    back, _ = read_netx(tmp_path / "w.net")
    for a, b in zip(net.layers, back.layers):
        assert a.kind == b.kind
        for key in ("weight", "bias", "recurrent", "delay"):
            assert np.array_equal(getattr(a, key), getattr(b, key)) or getattr(a, key) is None
    three_way(tmp_path / "w.net", samples=3, steps=10)


def _edit(path, layer, key, value):
    with h5py.File(path, "r+") as f:
        g = f[f"layer/{layer}"]
        if key in g:
            del g[key]
        g.create_dataset(key, data=value)


@pytest.mark.parametrize("layer, key, value, message", [
    (1, "delay", np.full(16, 63.0), "reaches 63 steps; Loihi 2 through netx holds 0..62"),
    (1, "delay", np.zeros(7), "'delay' has shape [7]"),
    (1, "neuron/gradedSpike", True, "'neuron/gradedSpike' is true"),
    (1, "neuron/messageBits", 8, "'neuron/messageBits' asks for graded spikes"),
    (1, "neuron/refDelay", 3, "'neuron/refDelay' asks for a refractory period"),
    (0, "weight", np.array([1.5]), "'weight' holds the fraction 1.5"),
])
def test_what_netx_would_change_is_refused(tmp_path, layer, key, value, message):
    s = slayer()
    blocks = [s.block.cuba.Input(P, weight=1.0),
              s.block.cuba.Dense(P, 20, 16, weight_scale=2, delay=True)]
    export(tmp_path / "s.net", blocks, torch.zeros(1, 20, 4))
    _edit(tmp_path / "s.net", layer, key, value)
    with pytest.raises(UserError, match="layer 0|layer 1") as e:
        read_netx(tmp_path / "s.net")
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.lava
def test_conv_input_layer_matches_lava(tmp_path):
    s = slayer()
    torch.manual_seed(3)
    blocks = [s.block.cuba.Input(P, weight=2.0, bias=-0.125),
              s.block.cuba.Conv(P, 2, 3, 3, padding=1, stride=2, weight_scale=2),
              s.block.cuba.Flatten(),
              s.block.cuba.Dense(P, 3 * 4 * 4, 4, weight_scale=2)]
    export(tmp_path / "c.net", blocks, torch.zeros(1, 2, 8, 8, 4))
    net, _, _ = three_way(tmp_path / "c.net", samples=3, steps=10)
    assert net.input_shape == (2, 8, 8) and net.layers[0].bias[0] == -8


def test_conv_delays_are_refused(tmp_path):
    s = slayer()
    blocks = [s.block.cuba.Conv(P, 2, 3, 3, weight_scale=2, delay=True)]
    export(tmp_path / "d.net", blocks, torch.zeros(1, 2, 8, 8, 2))
    with pytest.raises(UserError, match="layer 0: netx 0.6.0 ignores a conv layer's 'delay'"):
        read_netx(tmp_path / "d.net", (2, 8, 8))


@pytest.mark.parametrize("kind", ["pool", "average", "convT", "unpool", "concat"])
def test_layer_types_netx_cannot_build_are_refused(tmp_path, kind):
    s = slayer()
    blocks = [s.block.cuba.Conv(P, 2, 4, 3, padding=1, weight_scale=2),
              s.block.cuba.Pool(P, 2, weight_scale=2)]
    export(tmp_path / "p.net", blocks, torch.zeros(1, 2, 8, 8, 2))
    if kind != "pool":
        _edit(tmp_path / "p.net", 1, "type", np.array([kind.encode()], dtype="S10"))
    with pytest.raises(UserError, match=f"layer 1: layer type '{kind}' is not supported: lava-dl "
                                        "0.6.0's netx cannot build it"):
        read_netx(tmp_path / "p.net", (2, 8, 8))


def test_intlayer_refuses_bad_fields():
    p = CubaParams(1024, 128, 80)
    w = np.ones((3, 4), dtype=np.int64)
    with pytest.raises(ValueError, match="'recurrent' must be an integer array of shape"):
        IntLayer(w, p, recurrent=np.ones((4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="delays span"):
        IntLayer(w, p, delay=np.full((3, 4), 63))
    with pytest.raises(ValueError, match="recurrent weights span"):
        IntLayer(w, p, recurrent=np.full((3, 3), 300))


def test_energy_counts_recurrent_and_delayed_synapses():
    from neurodeploy.backends.record import SpikeRecord
    from neurodeploy.energy import layer_table
    from neurodeploy.energy.counting import count_events
    p = CubaParams(0, 4096, 1000)                   # a silent layer: only its inputs count
    w = np.array([[1, 0], [2, 3]])
    rec = np.array([[0, 5], [6, 7]])
    layer = IntLayer(w, p, name="r", recurrent=rec, delay=np.array([[1, 0], [2, 2]]))
    net = IntNetwork((2,), (layer,))
    x = np.zeros((1, 4, 2), dtype=bool)
    x[0, 0] = True                                  # both inputs spike at step 0
    own = np.zeros((1, 4, 2), dtype=bool)
    own[0, 1, 0] = True                             # the layer's neuron 0 spikes at step 1
    record = SpikeRecord(backend="test", inputs=x, layers=[own], layer_names=["r"], info={})
    counts = count_events(record, net)
    # step 0: 3 input ops; step 1: neuron 0's spike reads one recurrent synapse (to neuron 1)
    assert counts["synaptic_ops"][0].tolist() == [3, 1, 0, 0]
    # delivered: step 1 input 0 -> neuron 0 (delay 1); step 2 inputs 0, 1 -> neuron 1 (delay 2)
    # and the recurrent event of step 1 -> neuron 1
    assert counts["neuron_active"][0].tolist() == [0, 1, 1, 0]
    row = layer_table(net)[0]
    assert row["synapses"] == 8 and row["recurrent_synapses"] == 3 and row["max_delay"] == 2
    assert row["fan_in"] == 4
