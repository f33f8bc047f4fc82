"""NIR graphs beyond plain chains: pooling kept as convolutions, recurrent layers.

Exactness: where every parameter lands on Loihi's grid (weights that are binary fractions,
decays that are multiples of 1/4096, reset to zero) the deployed network reproduces the
source framework; what is left is Loihi's fixed-point voltage decay (round toward zero after
6 fractional bits), which the agreement numbers below measure.
"""
import nir
import numpy as np
import pytest
import torch

from neurodeploy.errors import UserError
from neurodeploy.graph import lower_nir
from neurodeploy.graph.kernels import apply_node as _apply
from neurodeploy.netx import write_netx
from neurodeploy.neurons import run_exact
from neurodeploy.backends.lava import simulate_lava

snn = pytest.importorskip("snntorch")


def _benchmark():
    """benchmarks/interop.py holds the networks and the agreement measure, defined once."""
    import interop
    return interop


def _dense_synapses(layer) -> tuple[int, int]:
    """(stored, non-zero) synapses of the same layer unrolled into a dense matrix."""
    basis = torch.eye(layer.in_size, dtype=torch.float64)
    dense = layer.synapse(basis).T
    return dense.numel(), int((dense != 0).sum())


@pytest.mark.lava
def test_snntorch_conv_avgpool_deploys_as_convolutions_exactly(tmp_path):
    """snnTorch Conv2d -> AvgPool2d -> Leaky: the pool folds into the conv (a 4x4 kernel of
    stride 2); Leaky -> AvgPool2d -> Leaky: the pool alone becomes a depthwise conv layer."""
    from snntorch.export_nir import export_to_nir
    bench = _benchmark()
    model, shape = bench.model("conv-avgpool", "grid")
    graph = export_to_nir(model, torch.zeros(1, *shape), ignore_dims=[0])
    net, report = lower_nir(graph, "graph")
    folded, pooled, dense = net.layers
    assert folded.conv and folded.weight.shape == (8, 1, 4, 4) and folded.conv.stride == (2, 2)
    assert pooled.conv and pooled.conv.groups == 8 and pooled.weight.shape == (8, 1, 2, 2)
    assert len(set(pooled.weight.reshape(-1).tolist())) == 1        # a fixed-weight average
    assert dense.conv is None
    # synapses: the composed kernel is stored once; a dense unroll stores every pair
    assert folded.weight.size == 128 and _dense_synapses(folded)[0] == 64 * 128
    assert _dense_synapses(folded)[1] > 10 * folded.weight.size
    assert pooled.weight.size == 32 and _dense_synapses(pooled) == (128 * 32, 128)
    assert all(row["weight_max_abs_error"] < 1e-3 for row in report)   # on the grid
    x = bench.inputs(shape, samples=200)
    reference = bench.snntorch_counts(model, x, shape)
    ours = run_exact(net, torch.as_tensor(x))[-1].sum(1).numpy()
    assert reference.sum() > 500
    assert (ours.argmax(1) == reference.argmax(1)).mean() == 1.0
    assert (ours == reference).mean() == 1.0
    write_netx(net, tmp_path / "p.net")
    lava = simulate_lava(tmp_path / "p.net", x[:4], progress=False)
    np.testing.assert_array_equal(lava.counts, ours[:4])


def _graph(*linear, shape=(2, 6, 6), neuron_shape=None, check=True):
    """Input -> linear nodes -> IF -> Output, by hand."""
    nodes = {"input": nir.Input(input_type=np.array(shape))}
    names = ["input"]
    for i, node in enumerate(linear):
        nodes[f"l{i}"] = node
        names.append(f"l{i}")
    nodes["if"] = nir.IF(r=np.ones(neuron_shape), v_threshold=np.full(neuron_shape, 2.0))
    nodes["output"] = nir.Output(output_type=np.array(neuron_shape))
    names += ["if", "output"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=check)


def _conv(cin, cout, k, stride=1, padding=0, dilation=1, groups=1, seed=0):
    w = np.random.default_rng(seed).integers(-3, 4, (cout, cin // groups, k, k)) / 4
    return nir.Conv2d(input_shape=None, weight=w, stride=stride, padding=padding,
                      dilation=dilation, groups=groups, bias=np.zeros(cout))


@pytest.mark.slow
@pytest.mark.parametrize("nodes, out, kernel", [
    ((_conv(2, 4, 3, padding=1), nir.SumPool2d(np.array([2, 2]), np.array([2, 2]),
                                              np.array([0, 0]))), (4, 3, 3), (4, 2, 4, 4)),
    ((_conv(2, 4, 2, dilation=2, groups=2), nir.AvgPool2d(
        np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))), (4, 2, 2), (4, 1, 4, 4)),
    ((_conv(2, 4, 3, stride=2, padding=1), nir.AvgPool2d(
        np.array([2, 2]), np.array([1, 1]), np.array([0, 0]))), (4, 2, 2), (4, 2, 5, 5)),
    ((nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])), _conv(2, 4, 3)),
     (4, 1, 1), (4, 2, 6, 6)),
    ((nir.SumPool2d(np.array([3, 3]), np.array([3, 3]), np.array([1, 1])),), (2, 2, 2),
     (2, 1, 3, 3)),
])
def test_conv_and_pool_runs_compose_into_one_exact_convolution(nodes, out, kernel):
    """Each composition must give the nodes' own output (the importer checks it and would
    otherwise fall back to a dense matrix, which this test would see)."""
    x_shape = (2, 6, 6)
    net, _ = lower_nir(_graph(*nodes, shape=x_shape, neuron_shape=out), "g", dt=1e-4)
    layer = net.layers[0]
    assert layer.conv is not None and layer.weight.shape == kernel and layer.shape == out
    x = (np.random.default_rng(1).random((50, 6, 72)) < 0.5)
    spikes = torch.as_tensor(x, dtype=torch.float64).reshape(300, *x_shape)
    want = spikes
    for node in nodes:
        want = _apply(node, want)
    got = layer.synapse(spikes.reshape(300, -1))
    scale = got.abs().max() / want.abs().max()
    torch.testing.assert_close(got, want.reshape(300, -1) * scale)


def test_a_pool_with_padding_after_a_conv_is_not_folded_but_stays_exact():
    """Padding pads the conv's output with zeros, which no kernel reproduces: dense."""
    nodes = (_conv(2, 2, 3), nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([1, 1])))
    net, _ = lower_nir(_graph(*nodes, neuron_shape=(2, 3, 3)), "g", dt=1e-4)
    assert net.layers[0].conv is None and net.layers[0].weight.shape == (18, 72)


def test_a_pool_that_does_not_fit_names_the_node():
    nodes = (nir.SumPool2d(np.array([8, 8]), np.array([1, 1]), np.array([0, 0])),)
    with pytest.raises(UserError, match="node 'l0'"):
        lower_nir(_graph(*nodes, neuron_shape=(2, 1, 1), check=False), "g", dt=1e-4)


@pytest.mark.lava
@pytest.mark.parametrize("kind", ["rleaky", "rleaky-one-to-one"])
def test_snntorch_rleaky_deploys_onto_a_recurrent_layer_exactly(kind):
    """RLeaky's loop lif -> w_rec -> lif becomes IntLayer.recurrent; on the grid the deployed
    network reproduces snnTorch's spikes, and Lava (RecurrentDense) the exact mode's."""
    row = _benchmark().measure(kind, "grid", samples=150, lava_samples=4)
    assert row["layers"] == ["dense_rec", "dense"] and row["reference_spikes"] > 500
    assert row["weight_rel_rms_error"] < 1e-9
    assert row["prediction_agreement"] == 1.0 and row["count_agreement"] == 1.0, row
    assert row["lava_equals_exact"]


def test_recurrent_weights_share_the_feed_forward_scale():
    from snntorch.export_nir import export_to_nir
    net, shape = _benchmark().model("rleaky", "grid")
    graph = export_to_nir(net, torch.zeros(1, *shape), ignore_dims=[0])
    deployed, report = lower_nir(graph, "graph")
    layer, scale = deployed.layers[0], report[0]["scale"]
    np.testing.assert_allclose(layer.recurrent / scale, net[1].recurrent.weight.detach().numpy(),
                               atol=1e-7)
    np.testing.assert_allclose(layer.weight / scale, net[0].weight.detach().numpy(), atol=1e-7)
    assert report[0]["recurrent_synapses"] == np.count_nonzero(layer.recurrent)


def _recurrent_net():
    from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork
    rng = np.random.default_rng(0)
    return IntNetwork(input_shape=(6,), layers=(
        IntLayer(weight=rng.integers(-60, 60, (5, 6)) * 2, params=CubaParams(1024, 512, 100),
                 name="fc0", recurrent=rng.integers(-40, 40, (5, 5)) * 2),
        IntLayer(weight=rng.integers(-60, 60, (3, 5)) * 2, params=CubaParams(4096, 512, 90),
                 name="fc1")))


def test_our_recurrent_export_round_trips(tmp_path):
    from neurodeploy.graph import from_nir, read_nir, to_nir, write_nir
    net = _recurrent_net()
    graph = to_nir(net)
    assert ("lif0", "rec0") in graph.edges and ("rec0", "lif0") in graph.edges
    write_nir(graph, tmp_path / "r.nir")
    for back in (from_nir(read_nir(tmp_path / "r.nir")), lower_nir(graph, "r.nir")[0]):
        assert back.layers[0].kind == "dense_rec" and back.layers[1].recurrent is None
        np.testing.assert_array_equal(back.layers[0].recurrent, net.layers[0].recurrent)
        np.testing.assert_array_equal(back.layers[0].weight, net.layers[0].weight)
    x = torch.as_tensor(np.random.default_rng(1).random((20, 12, 6)) < 0.5)
    for a, b in zip(run_exact(net, x), run_exact(from_nir(graph), x)):
        assert torch.equal(a, b)


def _edit(graph, add=(), drop=(), nodes=None):
    edges = [tuple(e) for e in graph.edges if tuple(e) not in set(drop)] + list(add)
    return nir.NIRGraph(nodes={**graph.nodes, **(nodes or {})}, edges=edges,
                        metadata={k: v for k, v in graph.metadata.items() if k != "neurodeploy"},
                        type_check=False)


@pytest.mark.parametrize("change, message", [
    ({"add": [("lif1", "rec0")], "drop": [("lif0", "rec0")]},
     "recurrent edge from 'lif1' back through 'rec0'"),
    ({"add": [("fc1", "loop"), ("loop", "fc1")], "nodes": {"loop": nir.Linear(np.eye(3))}},
     "recurrent edge from 'fc1' back through 'loop'"),       # not a neuron's: no step delay
    ({"add": [("lif0", "extra")], "nodes": {"extra": nir.Output(np.array([5]))}},
     "branch: node 'lif0' feeds 'fc1', 'extra'"),
    ({"add": [("input", "skip"), ("skip", "lif1")],
      "nodes": {"skip": nir.Linear(np.ones((3, 6)))}},
     "skip connection: 'input' reaches 'lif1' along two paths"),
])
def test_other_structures_are_refused_by_name_in_one_line(change, message):
    from neurodeploy.graph import to_nir
    graph = _edit(to_nir(_recurrent_net()), **change)
    from neurodeploy.graph import import_graph
    for lower in (lambda g: lower_nir(g, "r.nir"), lambda g: import_graph(g, "r.nir")):
        # our own integer graphs (from_nir) and foreign float graphs (the importer) alike
        with pytest.raises(UserError, match=message) as e:
            lower(graph)
        assert "\n" not in str(e.value) and str(e.value).startswith("r.nir: ")
