"""The NIR paper's own graphs (tests/data/nir_paper, see SOURCES.md there): nested graphs,
IF-only graphs without --dt, a bias on a decaying current, and the reset assumption."""
import json
from pathlib import Path

import nir
import nir_corpus                    # benchmarks/ (pytest puts it on the path)
import numpy as np
import pytest
import render

from neurodeploy.artifacts import inspect
from neurodeploy.graph import lower_nir, read_nir

DATA = Path(__file__).parent / "data" / "nir_paper"
SUBTRACT = DATA / "braille_noDelay_noBias_subtract.nir"
BIAS = DATA / "braille_noDelay_bias_zero.nir"
CNN = DATA / "cnn_sinabs.nir"


def _nested(flat: nir.NIRGraph) -> nir.NIRGraph:
    """The paper's flat Braille RSNN with its recurrent neuron wrapped in a nested NIRGraph
    node 'lif1' (Input -> lif -> w_rec -> lif, lif -> Output), as Spyx and the paper's
    *_subgraph.nir write it."""
    lif, rec = flat.nodes["lif1.lif"], flat.nodes["lif1.w_rec"]
    n = np.array([np.asarray(lif.tau_mem).size])
    inner = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=n), "lif": lif, "w_rec": rec,
               "output": nir.Output(output_type=n)},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        type_check=False)
    nodes = {k: v for k, v in flat.nodes.items() if not k.startswith("lif1.")}
    nodes["lif1"] = inner
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _lava_equals_exact(net, x, exact, path):
    """`net` written as netx and run on Lava gives the exact mode's spikes for the samples x."""
    from neurodeploy.backends.lava import simulate_lava
    from neurodeploy.netx import write_netx
    write_netx(net, path)
    lava = simulate_lava(path, x, progress=False)
    for a, b in zip(lava.layers, exact.layers):
        np.testing.assert_array_equal(a, b[:len(x)])


def test_nested_graph_is_flattened(tmp_path):
    """A nested NIRGraph node deploys as the flat graph it stands for (same integers)."""
    flat = nir.read(SUBTRACT)
    path = tmp_path / "nested.nir"
    nir.write(path, _nested(flat))
    graph = read_nir(path)
    assert "lif1.lif" in graph.nodes and not any(isinstance(v, nir.NIRGraph)
                                                 for v in graph.nodes.values())
    nested, _ = lower_nir(graph, str(path))
    want, _ = lower_nir(flat, str(SUBTRACT))
    assert len(nested.layers) == len(want.layers) == 2
    for a, b in zip(nested.layers, want.layers):
        assert np.array_equal(a.weight, b.weight) and a.params == b.params
        assert (a.recurrent is None) == (b.recurrent is None)
        if a.recurrent is not None:
            assert np.array_equal(a.recurrent, b.recurrent)
    # in memory too (lower_nir on a graph that did not come through read_nir)
    again, _ = lower_nir(nir.read(path), str(path))
    assert np.array_equal(again.layers[0].recurrent, want.layers[0].recurrent)


def test_spyx_nested_braille_graphs_deploy_as_the_flat_ones():
    """Spyx's own *_subgraph.nir (the recurrent neuron in a nested NIRGraph) lower to exactly
    the integers of the paper's flat graphs."""
    for nested, flat in (("spyx_braille_noDelay_noBias_subtract_subgraph.nir", SUBTRACT),
                         ("spyx_braille_noDelay_bias_zero_subgraph.nir", BIAS)):
        a, _ = lower_nir(read_nir(DATA / nested), nested)
        b, _ = lower_nir(read_nir(flat), str(flat))
        assert len(a.layers) == len(b.layers)
        for x, y in zip(a.layers, b.layers):
            assert np.array_equal(x.weight, y.weight) and x.params == y.params
            assert np.array_equal(x.recurrent if x.recurrent is not None else 0,
                                  y.recurrent if y.recurrent is not None else 0)


def test_paper_subgraph_file_is_refused_in_one_line():
    """The paper's own *_subgraph.nir names an inner node that does not exist ('lif'); the nir
    library cannot read it, and we say so in one line."""
    from neurodeploy.errors import UserError
    with pytest.raises(UserError, match="not a readable NIR graph"):
        read_nir(DATA / "braille_noDelay_bias_zero_subgraph.nir")


def test_if_only_graph_needs_no_dt():
    """Sinabs's N-MNIST CNN has IF neurons only: dt changes nothing, so none is demanded."""
    plain = inspect(CNN)
    assert plain["layers"] == inspect(CNN, dt=1.0)["layers"]
    assert [row["type"] for row in plain["layers"]] == ["conv", "conv", "conv", "dense", "dense"]


def _biased_graph(seed=0, n_in=6, hidden=5, out=3):
    """Input -> Affine(bias) -> CubaLIF (recurrent, tau_syn > dt) -> Affine(bias) -> CubaLIF:
    biases on decaying currents in the first and in a hidden layer, values on binary
    fractions so the 8-bit grid holds them exactly (the mapping itself is then exact)."""
    rng = np.random.default_rng(seed)
    grid = lambda *s: rng.integers(-8, 9, s) / 16.0  # noqa: E731
    dt, ones = 1e-4, lambda n: np.ones(n)  # noqa: E731

    def lif(n, du, dv):
        return nir.CubaLIF(tau_syn=ones(n) * dt / du, tau_mem=ones(n) * dt / dv,
                           r=ones(n) / dv, v_leak=0 * ones(n), v_threshold=ones(n),
                           v_reset=0 * ones(n), w_in=ones(n) / du)
    nodes = {"input": nir.Input(input_type=np.array([n_in])),
             "fc1": nir.Affine(weight=grid(hidden, n_in), bias=grid(hidden) + 0.25),
             "lif1": lif(hidden, 0.5, 0.25),
             "rec": nir.Linear(weight=grid(hidden, hidden)),
             "fc2": nir.Affine(weight=grid(out, hidden), bias=grid(out) + 0.125),
             "lif2": lif(out, 0.25, 0.5),
             "output": nir.Output(output_type=np.array([out]))}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec"), ("rec", "lif1"),
             ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt})


@pytest.mark.lava
def test_bias_on_a_decaying_current_deploys_through_always_on_sources(tmp_path):
    """The first layer's bias becomes a synapse from the always-on neuron of a relay layer,
    the hidden layer's from an always-on neuron added to the layer before it; float (the
    graph's own semantics), the exact mode and Lava agree."""
    from neurodeploy.backends.float_mode import simulate_float_nir
    from neurodeploy.backends.torch_exact import simulate_torch
    from neurodeploy.graph.always_on import RELAY
    path = tmp_path / "biased.nir"
    nir.write(path, _biased_graph())
    net, report = lower_nir(read_nir(path), str(path))
    relay, hidden, last = net.layers
    assert relay.name == RELAY and relay.size == 7 and relay.bias[-1] > relay.params.threshold
    assert hidden.size == 6 and hidden.bias[-1] > hidden.params.threshold      # always-on
    assert not hidden.weight[-1].any() and not hidden.recurrent[-1].any() \
        and not hidden.recurrent[:, -1].any()
    assert hidden.weight.shape[1] == 7 and last.weight.shape[1] == 6
    assert hidden.params.i_decay < 4096 and last.params.i_decay < 4096
    assert all(row["bias_as_synapse"]["max_abs_error"] == 0 for row in report)
    x = np.random.default_rng(1).random((40, 24, 6)) < 0.3
    exact = simulate_torch(net, x)
    assert exact.layers[0][..., -1].all() and exact.layers[1][..., -1].all()
    np.testing.assert_array_equal(exact.layers[0][..., :6], x)                 # the relay
    flt = simulate_float_nir(path, x)
    assert [s.shape for s in flt.layers] == [s.shape for s in exact.layers]
    assert flt.layer_names == exact.layer_names == [RELAY, "fc1", "fc2"]
    assert (flt.predictions == exact.predictions).mean() >= 0.95
    assert exact.layers[-1].sum() > 50
    _lava_equals_exact(net, x[:4], exact, tmp_path / "b.net")


def test_paper_braille_graph_with_bias_deploys():
    """braille_noDelay_bias_zero.nir (recurrent CubaLIF, biases everywhere): refused before
    (the paper's Lava case), now deployed; the float backend runs it (recurrent) too."""
    from neurodeploy.backends.float_mode import simulate_float_nir
    from neurodeploy.backends.torch_exact import simulate_torch
    net, report = lower_nir(read_nir(BIAS), str(BIAS))
    assert [layer.size for layer in net.layers] == [13, 39, 7]
    assert net.layers[1].recurrent is not None
    x = np.random.default_rng(0).random((8, 64, 12)) < 0.05
    flt, exact = simulate_float_nir(BIAS, x), simulate_torch(net, x)
    assert [s.shape for s in flt.layers] == [s.shape for s in exact.layers]


def _spike_npz(path, samples=12, steps=64, channels=12, seed=0):
    rng = np.random.default_rng(seed)
    np.savez(path, x=(rng.random((samples, steps, channels)) < 0.05).astype(np.uint8),
             y=rng.integers(0, 7, samples))
    return path


@pytest.mark.slow
def test_reset_assumption_is_said_by_inspect_simulate_and_parity(tmp_path, capsys):
    """NIR has no reset field: every verb on a foreign graph says reset to zero was assumed,
    and parity with the float backend measures zero against subtraction on the same model."""
    import json
    from neurodeploy.cli import main
    data = _spike_npz(tmp_path / "x.npz")
    assert main(["inspect", str(SUBTRACT)]) == 0
    out = capsys.readouterr().out
    assert "no field for the reset mechanism" in out and "reset to zero is assumed" in out
    assert main(["simulate", str(SUBTRACT), "--backend", "torch", "--data", str(data),
                 "--out", str(tmp_path / "s")]) == 0
    err = capsys.readouterr().err
    assert "neurodeploy: note:" in err and "reset to zero is assumed" in err
    assert "reset to zero" in json.loads((tmp_path / "s" / "simulate.json").read_text())["reset"]
    assert main(["parity", str(SUBTRACT), "--backends", "float,torch", "--data", str(data),
                 "--out", str(tmp_path / "p")]) == 0
    captured = capsys.readouterr()
    assert "reset to zero is assumed" in captured.err
    assert "reset to zero (assumed) vs by subtraction: predictions agree" in captured.out
    reset = json.loads((tmp_path / "p" / "parity.json").read_text())["reset"]
    assert reset["assumed"] == "zero" and reset["samples"] == 12
    assert 0 <= reset["prediction_agreement_zero_vs_subtract"] <= 1
    # our own exports state their reset in metadata/reset: no note
    assert main(["inspect", str(Path(__file__).parent.parent / "export" / "digits"
                                / "student.nir")]) == 0
    assert "reset mechanism" not in capsys.readouterr().out


def test_float_subtraction_differs_from_zero_only_after_a_spike():
    """reset="subtract" keeps v - threshold after a spike; before the first spike of a layer
    the two float models are the same step for step."""
    from neurodeploy.backends.float_mode import simulate_float_nir
    x = np.random.default_rng(0).random((6, 48, 12)) < 0.05
    zero = simulate_float_nir(SUBTRACT, x)
    sub = simulate_float_nir(SUBTRACT, x, reset="subtract")
    first = zero.layers[0].any(2).argmax(1)            # first step any hidden neuron spiked
    for i, t in enumerate(first):
        np.testing.assert_array_equal(zero.layers[0][i, :t + 1], sub.layers[0][i, :t + 1])
    assert sub.info["reset"] == "subtract" and zero.info["reset"] == "zero"
    assert not np.array_equal(zero.layers[0], sub.layers[0])


@pytest.mark.slow
def test_float_backend_runs_recurrent_graphs_as_deployed():
    """The float backend runs a recurrent graph in its own semantics (loop one step late):
    on a graph whose values the grid holds exactly it equals the exact mode spike for spike,
    and on the paper's subtract-reset Braille RSNN most predictions agree."""
    from neurodeploy.backends.float_mode import simulate_float_nir
    from neurodeploy.backends.torch_exact import simulate_torch
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.nir"
        nir.write(path, _biased_graph(seed=3))
        net, _ = lower_nir(read_nir(path), str(path))
        x = np.random.default_rng(2).random((30, 32, 6)) < 0.3
        flt, exact = simulate_float_nir(path, x), simulate_torch(net, x)
        for a, b in zip(flt.layers, exact.layers):
            np.testing.assert_array_equal(a, b)
    x = nir_corpus.braille_shaped(60)       # the corpus's seeded Braille-shaped inputs
    net, _ = lower_nir(read_nir(SUBTRACT), str(SUBTRACT))
    flt, exact = simulate_float_nir(SUBTRACT, x), simulate_torch(net, x)
    assert (flt.predictions == exact.predictions).mean() >= 0.9


def test_headroom_clips_and_search_flips_fewer_decisions():
    """A scale headroom > 1 clips the largest weights (counted in the report) for finer
    steps elsewhere; the per-layer search picks, on its calibration inputs, a headroom that
    flips no more of the float model's decisions than 1 does, layer by layer."""
    from neurodeploy.backends.float_mode import layer_flips, search_headroom, simulate_float_nir
    graph = read_nir(BIAS)
    _, plain = lower_nir(graph, str(BIAS))
    _, wide = lower_nir(graph, str(BIAS), None, {"fc1": 4.0})
    assert plain[0]["clipped_weights"] == 0 and wide[0]["clipped_weights"] > 0
    assert wide[0]["scale"] == pytest.approx(4 * plain[0]["scale"], rel=0.01)
    assert wide[1]["scale"] == plain[1]["scale"] and wide[0]["headroom"] == 4.0
    x = np.random.default_rng(5).random((16, 96, 12)) < 0.03
    choice, table = search_headroom(BIAS, x, candidates=(1.0, 2.0, 4.0))
    assert set(choice) == {"fc1", "fc2"}
    tuned, _ = lower_nir(graph, str(BIAS), None, choice)
    flt = simulate_float_nir(BIAS, x)
    base = {r["layer"]: r["flipped"] for r in layer_flips(lower_nir(graph, str(BIAS))[0], flt)}
    for row in layer_flips(tuned, flt):
        assert row["flipped"] <= base[row["layer"]]
    assert base["always_on_input"] == 0                 # the relay repeats its input exactly


def test_always_on_sources_are_counted_in_energy_and_resources(tmp_path):
    """The relay layer and the always-on neurons are ordinary neurons and synapses: the
    resource table holds them and every step's synaptic ops include the bias synapses."""
    from neurodeploy.backends.torch_exact import simulate_torch
    from neurodeploy.energy import layer_table
    from neurodeploy.energy.counting import count_events
    from neurodeploy.graph.always_on import RELAY
    path = tmp_path / "biased.nir"
    nir.write(path, _biased_graph())
    net, _ = lower_nir(read_nir(path), str(path))
    table = layer_table(net)
    assert [row["name"] for row in table][0] == RELAY
    assert [row["neurons"] for row in table] == [7, 6, 3]
    x = np.zeros((3, 10, 6), bool)                       # no input at all: only the bias
    counts = count_events(simulate_torch(net, x), net)
    assert (counts["spikes"][0] == 1).all()              # the relay's always-on neuron
    bias_fanout = [int((net.layers[i].weight[:, -1] != 0).sum()) for i in (1, 2)]
    assert (counts["synaptic_ops"][1] >= bias_fanout[0]).all() and bias_fanout[0] > 0
    assert (counts["synaptic_ops"][2] >= bias_fanout[1]).all()


def test_readme_nir_corpus_block_is_the_rendered_results_file():
    """The NIR corpus numbers of the manual's results page come from
    benchmarks/results/nir_corpus.json only."""
    root = Path(__file__).parent.parent
    data = json.loads((root / "benchmarks" / "results" / "nir_corpus.json").read_text())
    table = render.nir_corpus_table(data)
    readme = next(t for t in (p.read_text() for p in render.pages())
                  if "<!-- nir_corpus:begin -->" in t)
    block = readme.split("<!-- nir_corpus:begin -->\n")[1].split("<!-- nir_corpus:end -->")[0]
    assert block == table + "\n"
    bias = next(r for r in data["rows"] if r["file"] == "braille_noDelay_bias_zero.nir")
    assert bias["status"] == "deployed" and bias["exact_vs_lava_spike_mismatches"] == 0


def _biased_conv_graph(seed=0):
    """Input [2,6,6] -> Conv2d(bias, padding 1) -> CubaLIF -> Conv2d(bias, stride 2) -> CubaLIF
    -> Flatten -> Affine(bias) -> CubaLIF, every current decaying, values on binary fractions."""
    rng = np.random.default_rng(seed)
    grid = lambda *s: rng.integers(-8, 9, s) / 16.0  # noqa: E731
    dt = 1e-4

    def lif(shape, du, dv):
        ones = np.ones(shape)
        return nir.CubaLIF(tau_syn=ones * dt / du, tau_mem=ones * dt / dv, r=ones / dv,
                           v_leak=0 * ones, v_threshold=ones, v_reset=0 * ones, w_in=ones / du)
    conv = lambda cin, cout, hw, stride, pad: nir.Conv2d(  # noqa: E731
        input_shape=hw, weight=grid(cout, cin, 3, 3), stride=stride, padding=pad, dilation=1,
        groups=1, bias=grid(cout) + 0.125)
    nodes = {"input": nir.Input(input_type=np.array([2, 6, 6])),
             "c1": conv(2, 3, (6, 6), 1, 1), "l1": lif((3, 6, 6), 0.5, 0.25),
             "c2": conv(3, 4, (6, 6), 2, 0), "l2": lif((4, 2, 2), 0.25, 0.5),
             "flat": nir.Flatten(input_type={"input": np.array([4, 2, 2])}, start_dim=0,
                                 end_dim=-1),
             "fc": nir.Affine(weight=grid(3, 16), bias=grid(3) + 0.25), "l3": lif(3, 0.5, 0.5),
             "output": nir.Output(output_type=np.array([3]))}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])),
                        metadata={"dt": dt}, type_check=False)


@pytest.mark.lava
def test_bias_on_decaying_currents_around_convolutions(tmp_path):
    """Around convolutions the always-on source is a channel: a 1x1 relay convolution with one
    always-on channel before the first conv, an always-on channel appended to a conv layer
    before the next conv or dense layer; the bias sits on a kernel tap that reads an in-range
    pixel everywhere. The exact mode and Lava agree spike for spike; the float model differs
    only where fixed-point truncation of a decayed state tips a neuron (under 0.1%)."""
    from neurodeploy.backends.float_mode import simulate_float_nir
    from neurodeploy.backends.torch_exact import simulate_torch
    from neurodeploy.graph.always_on import RELAY
    path = tmp_path / "conv.nir"
    nir.write(path, _biased_conv_graph())
    net, report = lower_nir(read_nir(path), str(path))
    relay, c1, c2, fc = net.layers
    assert relay.name == RELAY and relay.conv and relay.shape == (3, 6, 6)
    assert c1.conv.input_shape == (3, 6, 6) and c1.shape == (4, 6, 6)   # + always-on channel
    assert c2.conv.input_shape == (4, 6, 6) and c2.shape == (5, 2, 2)
    assert fc.weight.shape == (3, 20) and not fc.weight[:, 16:19].any()
    assert [row["bias_as_synapse"]["max_abs_error"] for row in report] == [0, 0, 0]
    x = np.random.default_rng(4).random((12, 16, 72)) < 0.3
    exact, flt = simulate_torch(net, x), simulate_float_nir(path, x)
    assert exact.layers[1].reshape(12, 16, 4, 36)[:, :, 3].all()          # always-on channel
    assert [a.shape for a in flt.layers] == [b.shape for b in exact.layers]
    for a, b in zip(flt.layers, exact.layers):
        assert (a != b).mean() < 1e-3
    assert exact.layers[-1].sum() > 20
    _lava_equals_exact(net, x[:3], exact, tmp_path / "c.net")


def test_bias_where_no_tap_reaches_every_output_is_refused_in_one_line():
    """A convolution whose padding leaves no kernel tap inside the input at every output
    position cannot carry the bias exactly: refused, naming the node and the fix."""
    from neurodeploy.errors import UserError
    g = _biased_conv_graph()
    g.nodes["c1"] = nir.Conv2d(input_shape=(6, 6), weight=np.full((3, 2, 1, 1), 0.25),
                               stride=1, padding=1, dilation=1, groups=1, bias=np.full(3, 0.25))
    ones = np.ones((3, 8, 8))                    # a 1x1 kernel with padding 1: 8 x 8 out
    g.nodes["l1"] = nir.CubaLIF(tau_syn=2e-4 * ones, tau_mem=4e-4 * ones, r=4 * ones,
                                v_leak=0 * ones, v_threshold=ones, v_reset=0 * ones,
                                w_in=2 * ones)
    with pytest.raises(UserError, match=r"node 'c1': a bias into a decaying current .*no "
                                        r"kernel tap.*remove the bias or set tau_syn = dt"):
        lower_nir(g, "g")
