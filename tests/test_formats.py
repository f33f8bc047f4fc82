"""NIR and netx: round trips, and refusals of what would deploy wrongly."""
import h5py
import nir
import numpy as np
import pytest

from neurodeploy.errors import UserError
from neurodeploy.graph import from_nir, read_nir, to_nir, write_nir
from neurodeploy.netx import read_netx, write_netx
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork


def assert_same(a: IntNetwork, b: IntNetwork):
    assert a.input_size == b.input_size and len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers):
        np.testing.assert_array_equal(x.weight, y.weight)
        assert x.params == y.params


def test_nir_write_read_round_trip(net, tmp_path):
    write_nir(to_nir(net, {"timesteps": 16}), tmp_path / "s.nir")
    graph = nir.read(tmp_path / "s.nir")            # stock reader, with type checking
    assert {type(n).__name__ for n in graph.nodes.values()} == {"Input", "Affine", "CubaLIF",
                                                                "Output"}
    lif = graph.nodes["lif0"]
    assert lif.tau_syn.shape == (5,) and lif.v_threshold.shape == (5,)   # per neuron, unbatched
    np.testing.assert_array_equal(graph.nodes["fc0"].weight, net.layers[0].weight)
    assert_same(from_nir(graph), net)


def test_netx_write_read_round_trip(net, tmp_path):
    write_netx(net, tmp_path / "n.net", {"timesteps": 16})
    back, meta = read_netx(tmp_path / "n.net")
    assert_same(back, net)
    assert meta["timesteps"] == 16
    assert meta["architecture"] == {"input_shape": [6], "classes": 3, "layers": [
        {"name": "fc0", "type": "dense", "shape": [5]}, {"name": "fc1", "type": "dense", "shape": [3]}]}
    with h5py.File(tmp_path / "n.net") as f:     # integers only
        assert all(np.issubdtype(f[f"layer/{i}/weight"].dtype, np.integer) for i in (1, 2))


def _graph(net, changes):
    g = to_nir(net)
    for (node, field), value in changes.items():
        setattr(g.nodes[node], field, value)
    return g


def test_unsupported_nodes_are_named(net):
    g = to_nir(net)
    g.nodes["pool"] = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                    padding=np.array([0, 0]))
    with pytest.raises(UserError, match=r"unsupported NIR node\(s\) 'pool' \(SumPool2d\)"):
        from_nir(g, "x.nir")


@pytest.mark.parametrize("change, message", [
    ({("fc0", "weight"): np.full((5, 6), 0.5, np.float32)}, "fc0': weights are not integers"),
    ({("lif0", "v_threshold"): np.arange(5.0) + 1}, "lif0': v_threshold differs between"),
    ({("lif1", "v_leak"): np.ones(3)}, "lif1': v_leak must be 0"),
    ({("lif0", "tau_syn"): np.full(5, 3.3e-4)}, "lif0': w_in \\* dt / tau"),
    ({("fc1", "weight"): np.full((3, 5), 300.0, np.float32)}, "outside Loihi's"),
    ({("fc0", "bias"): np.ones(5, np.float32)}, "non-zero bias is an input current"),
])
def test_graphs_that_would_not_deploy_exactly_are_refused(net, change, message):
    with pytest.raises(UserError, match=message):
        from_nir(_graph(net, change), "x.nir")


def test_dangling_edges_and_cycles_are_refused(net):
    g = to_nir(net)
    g.edges.append(("lif1", "ghost"))
    with pytest.raises(UserError, match="'ghost'"):
        from_nir(g, "x.nir")
    g = to_nir(net)
    g.edges = [e for e in g.edges if e != ("lif1", "output")] + [("lif1", "fc0")]
    with pytest.raises(UserError, match="fans out|cycle"):
        from_nir(g, "x.nir")


@pytest.mark.parametrize("weights, message", [
    (np.zeros((3, 6), np.int64), "only zero weights"),
    (np.array([[255] + [2] * 5] * 3), "Loihi holds"),
    (np.array([[200, 3, 0, 0, 0, 0]] * 3), "odd weights"),
])
def test_netx_refuses_what_netx_would_silently_change(weights, message, tmp_path):
    layer = IntLayer.__new__(IntLayer)      # bypass construction checks to reach the writer's
    object.__setattr__(layer, "weight", weights)
    object.__setattr__(layer, "params", CubaParams(1, 1, 1))
    object.__setattr__(layer, "bias", None)
    object.__setattr__(layer, "name", "fc0")
    object.__setattr__(layer, "conv", None)
    net = IntNetwork.__new__(IntNetwork)
    object.__setattr__(net, "input_shape", (6,))
    object.__setattr__(net, "layers", (layer,))
    with pytest.raises(UserError, match=message):
        write_netx(net, tmp_path / "bad.net")
    assert not list(tmp_path.iterdir()), "nothing may be written half-way"


def test_corrupt_and_foreign_files_are_user_errors(tmp_path):
    junk = tmp_path / "junk.net"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="junk.net: not a readable HDF5"):
        read_netx(junk)
    with pytest.raises(UserError, match="junk.nir: not a readable NIR"):
        read_nir(junk.rename(tmp_path / "junk.nir"))
    with h5py.File(tmp_path / "pool.net", "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"pool"])
    with pytest.raises(UserError, match="layer 0: layer type 'pool' is not supported"):
        read_netx(tmp_path / "pool.net")


def test_conv_network_round_trips_through_nir_and_netx(tmp_path):
    from neurodeploy.neurons import Conv
    rng = np.random.default_rng(4)
    conv = IntLayer(rng.integers(-128, 128, (3, 1, 3, 3)) * 2, CubaParams(1024, 256, 100),
                    name="conv0", conv=Conv((1, 8, 8), stride=(2, 2), padding=(1, 1)))
    dense = IntLayer(rng.integers(-128, 128, (4, conv.size)) * 2, CubaParams(1024, 256, 90),
                     name="fc1")
    net = IntNetwork((1, 8, 8), (conv, dense))
    write_nir(to_nir(net), tmp_path / "c.nir")
    graph = nir.read(tmp_path / "c.nir")
    assert {type(n).__name__ for n in graph.nodes.values()} >= {"Conv2d", "Flatten"}
    back = from_nir(graph)
    assert_same(back, net)
    assert back.layers[0].conv == net.layers[0].conv
    write_netx(back, tmp_path / "c.net")
    assert_same(read_netx(tmp_path / "c.net")[0], net)
