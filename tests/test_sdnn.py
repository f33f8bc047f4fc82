"""Sigma-delta (SDNN) networks exported by lava-dl's slayer: our exact mode against Lava,
message for message; malformed files refused in one line; activity counted correctly."""
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neurodeploy.backends.lava_sdnn import simulate_lava_sdnn
from neurodeploy.backends.lava_runtime import import_lava
from slayer_export import export
from neurodeploy.errors import UserError
from neurodeploy.netx.sdnn import is_sdnn, read_sdnn
from neurodeploy.neurons.sigma_delta import SDLayer, activity, describe, run_exact, run_stream
from neurodeploy.parity import message_mismatches


def slayer_sdnn(path, conv: bool, threshold: float = 0.1, bias: bool = False):
    """A small SDNN of slayer's sigma-delta blocks, random weights, exported by slayer."""
    import_lava()
    from lava.lib.dl import slayer
    sd = slayer.block.sigma_delta
    p = {"threshold": threshold, "activation": torch.nn.functional.relu,
         "requires_grad": False}
    torch.manual_seed(1 if conv else 0)
    if conv:
        blocks = [sd.Input(p), sd.Conv(p, 2, 4, 3, stride=2, padding=1, weight_scale=2),
                  sd.Flatten(), sd.Dense(p, 4 * 4 * 4, 6, weight_scale=2), sd.Output(p, 6, 3)]
        x = torch.rand(1, 2, 8, 8, 3)
    else:
        blocks = [sd.Input(p), sd.Dense(p, 12, 10, weight_scale=2),
                  sd.Dense(p, 10, 8, weight_scale=2), sd.Output(p, 8, 4)]
        x = torch.rand(1, 12, 3)
    export(path, blocks, x)
    if bias:                     # slayer's SD blocks export none; netx reads a dense 'bias'
        with h5py.File(path, "a") as f:
            f["layer/1/bias"] = np.random.default_rng(0).integers(-3, 4, size=10)
    return path


def inputs(shape, n, t, high, seed=0):
    """Integer frames in which some values repeat, so some deltas stay below threshold."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, high, size=(n, t, *shape))
    keep = rng.random((n, t, *shape)) < 0.5
    for j in range(1, t):
        x[:, j] = np.where(keep[:, j], x[:, j - 1], x[:, j])
    return x


@pytest.mark.lava
@pytest.mark.parametrize("conv,high,bias", [(False, 256, True), (True, 256, False),
                                            (True, 2 ** 14, False)],
                         ids=["dense-bias", "conv", "conv-large-wraps"])
def test_exact_mode_matches_lava_message_for_message(conv, high, bias, tmp_path):
    path = slayer_sdnn(tmp_path / "sd.net", conv, bias=bias)
    net = read_sdnn(path)
    n, t = 2, 6
    x = inputs(net.input_shape, n, t, high)
    lava = simulate_lava_sdnn(path, x)
    exact = run_stream(net, x)
    assert len(lava.layers) == len(exact) == len(net.layers)
    parity = message_mismatches(lava.layers, exact)
    assert parity["per_layer_step"] == [[0] * t] * len(net.layers), parity["first"]
    for i, a in enumerate(lava.layers):
        assert a.any(), f"layer {i} sent nothing: the comparison would prove nothing"
    assert (exact[1] == 0).any(), "sigma-delta layers should stay silent where nothing changed"
    assert activity(net, lava.layers) == activity(net, exact)
    if high > 2 ** 12:           # the conv's sums really passed Lava's signed 24-bit wrap
        c = net.layers[1].conv
        msgs = torch.as_tensor(exact[0]).reshape(-1, *c.input_shape).double()
        raw = torch.nn.functional.conv2d(msgs, torch.as_tensor(net.layers[1].weight).double(),
                                         stride=c.stride, padding=c.padding)
        assert raw.abs().max() >= 2 ** 23


@pytest.fixture(scope="module")
def dense_file(tmp_path_factory):
    return slayer_sdnn(tmp_path_factory.mktemp("sd") / "d.net", conv=False)


def test_batched_rows_equal_single_runs(dense_file):
    """Each batch row is its own stream from zero state: equal to running it alone."""
    net = read_sdnn(dense_file)
    x = torch.as_tensor(inputs(net.input_shape, 3, 5, 256, seed=3))
    together = run_exact(net, x)
    for row in range(3):
        alone = run_exact(net, x[row:row + 1])
        for a, b in zip(together, alone):
            assert torch.equal(a[row:row + 1], b)


def test_synapse_sums_are_exact_beyond_float64():
    """int32 messages into a fan-in of 2**16 give sums beyond 2**53, where float64 rounds
    (odd terms, odd-length blocks); the split sums stay exact."""
    fan_in = 2 ** 16
    rng = np.random.default_rng(5)
    weight = rng.integers(-128, 128, size=(3, fan_in))
    weight[0] = 127
    weight[0, rng.integers(0, fan_in, size=7)] = 0
    weight[0, :5] = 126
    layer = SDLayer(kind="sigma", shape=(3,), weight=weight, name="wide")
    msg = rng.integers(-2 ** 31, 2 ** 31, size=(2, fan_in))
    msg[0] = 2 ** 31 - 1
    msg[0, 100:103] = 2 ** 31 - 2
    wide = msg @ weight.T
    assert abs(wide).max() > 2 ** 53
    want = (wide + 2 ** 31) % 2 ** 32 - 2 ** 31    # as NumPy's int32 port would hold it
    np.testing.assert_array_equal(layer.synapse(torch.as_tensor(msg)).numpy(), want)


def test_activity_counts_messages_and_synaptic_ops(tmp_path):
    path = slayer_sdnn(tmp_path / "c.net", conv=True)
    net = read_sdnn(path)
    x = torch.as_tensor(inputs(net.input_shape, 2, 4, 256))
    msgs = run_exact(net, x)
    act = activity(net, msgs)
    assert act["neurons"] == [2 * 8 * 8, 4 * 4 * 4, 6, 3]
    for i, layer in enumerate(net.layers):
        assert act["messages"][i] == (msgs[i] != 0).sum(dim=(0, 2)).tolist()
        if i == 0:
            assert act["synaptic_ops"][0] == [0] * 4
            continue
        # independent count: products of a non-zero message and a non-zero weight
        nz_in = (msgs[i - 1] != 0).to(torch.float64)
        w_nz = torch.as_tensor(layer.weight != 0, dtype=torch.float64)
        if layer.conv:
            c = layer.conv
            per = torch.nn.functional.conv2d(nz_in.reshape(-1, *c.input_shape), w_nz,
                                             stride=c.stride, padding=c.padding)
            per = per.reshape(2, 4, -1)
        else:
            per = nz_in @ w_nz.t()
        assert act["synaptic_ops"][i] == per.sum(dim=(0, 2)).round().long().tolist()
    assert sum(act["synaptic_ops"][1]) > 0


def test_describe_lists_every_layer(dense_file):
    rows = describe(read_sdnn(dense_file))
    assert [r["kind"] for r in rows] == ["delta", "sigma_delta", "sigma_delta", "sigma"]
    assert [r["shape"] for r in rows] == [[12], [10], [8], [4]]
    assert rows[0]["synapses"] == 0 and rows[1]["synapse"] == "dense"
    w = read_sdnn(dense_file).layers[1].weight
    assert rows[1]["synapses"] == int((w != 0).sum())
    assert rows[3]["vth"] is None and rows[1]["vth"] == 6 and rows[1]["message_bits"] == 16


def test_message_mismatches_locates_the_first_difference():
    a = [np.zeros((2, 3, 4), dtype=np.int64), np.zeros((2, 3, 2), dtype=np.int64)]
    b = [x.copy() for x in a]
    b[1][1, 2, 0] = 64
    b[1][0, 2, 1] = -64
    got = message_mismatches(a, b)
    assert got["per_layer_step"] == [[0, 0, 0], [0, 0, 2]]
    assert got["total"] == 2 and got["compared"] == 36 and got["first"] == (1, 0, 2, 1)
    assert message_mismatches(a, a)["first"] is None


def _put(f, key, value):
    if key in f:
        del f[key]
    f[key] = value


def _edit(src, dst, fn):
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "a") as f:
        fn(f)
    return dst


@pytest.mark.parametrize("edit,words", [
    (lambda f: f.__delitem__("layer/1/neuron/activation"), ["layer 1", "'activation'", "relu"]),
    (lambda f: _put(f, "layer/1/neuron/activation", "tanh"), ["layer 1", "tanh"]),
    (lambda f: _put(f, "layer/2/neuron/messageBits", 0), ["layer 2", "messageBits", "0"]),
    (lambda f: _put(f, "layer/2/neuron/messageBits", 30), ["layer 2", "messageBits"]),
    (lambda f: _put(f, "layer/3/bias", np.ones(4)), ["layer 3", "bias", "Sigma"]),
    (lambda f: _put(f, "layer/0/weight", 2.0), ["layer 0", "'weight'", "Input block drops it"]),
    (lambda f: _put(f, "layer/1/neuron/cum_error", True), ["layer 1", "cum_error"]),
    (lambda f: _put(f, "layer/1/neuron/sigma_output", False), ["layer 1", "sigma_output"]),
    (lambda f: f.__delitem__("layer/1/neuron/vThMant"), ["layer 1", "vThMant", "missing"]),
    (lambda f: f["layer/1/weight"].__setitem__((0, 0), 0.5), ["layer 1", "'weight'", "fraction"]),
    (lambda f: f["layer/2/neuron/type"].__setitem__((), "CUBA"), ["layer 2", "SDNN"]),
    (lambda f: f.__delitem__("layer/0"), ["'0' is missing"]),
], ids=["no-activation", "tanh", "bits-0", "bits-30", "sigma-bias", "input-weight",
        "cum-error", "sigma-output-false", "no-threshold", "fraction", "mixed-types",
        "no-input"])
def test_malformed_files_give_one_line_errors(dense_file, tmp_path, edit, words):
    bad = _edit(dense_file, tmp_path / "bad.net", edit)
    with pytest.raises(UserError) as e:
        read_sdnn(bad)
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg
    for word in words:
        assert word in msg, msg


def test_message_bits_in_range_are_read_but_lava_run_is_refused(dense_file, tmp_path):
    """netx 0.6.0 reads 'messageBits' as a group (a NetDict), so Lava cannot compile it: the
    file is valid for the exact mode and the Lava runner says why it refuses it."""
    path = _edit(dense_file, tmp_path / "bits.net",
                 lambda f: _put(f, "layer/1/neuron/messageBits", 12))
    assert read_sdnn(path).layers[1].message_bits == 12
    with pytest.raises(UserError, match="messageBits.*remove it"):
        simulate_lava_sdnn(path, np.zeros((1, 2, 12), dtype=np.int64))


def test_dispatch_recognises_sdnn_files(dense_file, tmp_path):
    assert is_sdnn(dense_file)
    assert not is_sdnn(tmp_path / "missing.net")
    plain = _edit(dense_file, tmp_path / "plain.net",
                  lambda f: [f[f"layer/{i}/neuron/type"].__setitem__((), "CUBA")
                             for i in range(4)])
    assert not is_sdnn(plain)


def test_bad_inputs_are_refused(dense_file):
    with pytest.raises(UserError, match="12"):
        simulate_lava_sdnn(dense_file, np.zeros((1, 2, 5), dtype=np.int64))
    with pytest.raises(UserError, match="integers"):
        simulate_lava_sdnn(dense_file, np.zeros((1, 2, 12), dtype=np.float32))


@pytest.mark.lava
def test_the_cli_runs_and_compares_an_sdnn_file(tmp_path, capsys):
    """`inspect`, `simulate` and `parity` route a sigma-delta file to its own exact mode and
    Lava runner; the parity record counts 0 message mismatches and keeps the provenance."""
    import json

    from neurodeploy.cli import main
    path = slayer_sdnn(tmp_path / "sd.net", conv=False, bias=True)
    x = inputs(read_sdnn(path).input_shape, 2, 5, 256)
    np.savez(tmp_path / "x.npz", x=x)
    assert main(["inspect", str(path)]) == 0
    assert "sigma-delta" in capsys.readouterr().out
    out = tmp_path / "par"
    assert main(["parity", str(path), "--backends", "torch,lava", "--data",
                 str(tmp_path / "x.npz"), "--out", str(out)]) == 0
    result = json.loads((out / "parity.json").read_text())
    assert result["message_mismatches"]["total"] == 0
    assert result["message_mismatches"]["compared"] > 0
    assert result["provenance"]["timesteps"] == 5
    assert sum(result["messages_per_layer"].values()) > 0
    assert main(["simulate", str(path), "--backend", "float", "--data",
                 str(tmp_path / "x.npz"), "--out", str(out)]) == 2
    assert "torch (exact mode), emulator, lava and lava-sparse" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", x=x[..., :3])
    assert main(["simulate", str(path), "--backend", "torch", "--data",
                 str(tmp_path / "bad.npz"), "--out", str(out)]) == 2
    assert "bad.npz: field x has" in capsys.readouterr().err


def test_a_record_of_graded_messages_saves_and_loads(tmp_path):
    """One record type for both kinds: a sigma-delta run's graded messages (and its integer
    frames) come back from SpikeRecord.save as they were, binary layers beside them packed."""
    from neurodeploy.backends.record import SpikeRecord
    from neurodeploy.backends.torch_exact import simulate_torch_sdnn
    net = read_sdnn(slayer_sdnn(tmp_path / "sd.net", conv=False, bias=True))
    record = simulate_torch_sdnn(net, inputs(net.input_shape, 2, 5, 256))
    assert any((m < 0).any() or (m > 1).any() for m in record.layers)      # graded, signed
    record.save(tmp_path / "record.npz")
    loaded, _ = SpikeRecord.load(tmp_path / "record.npz")
    assert loaded.layer_names == record.layer_names and loaded.backend == record.backend
    assert np.array_equal(loaded.inputs, record.inputs)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.layers, record.layers))


def test_either_kind_takes_only_the_inputs_it_can_run(dense_file, tmp_path):
    """One path, each kind's own inputs: a sigma-delta network makes no predictions to compare
    with a --reference, and a CUBA network's bare array of inputs has no labels; each is one
    line naming what to pass."""
    from neurodeploy import api
    x = inputs(read_sdnn(dense_file).input_shape, 2, 5, 256)
    np.savez(tmp_path / "ref.npz", predictions=np.zeros(2, dtype=np.int64))
    with pytest.raises(UserError, match="--reference .*a sigma-delta network makes no"):
        api.parity(dense_file, x, backends=("torch", "emulator"), reference=tmp_path / "ref.npz")
    cuba = Path(__file__).parents[1] / "export" / "digits" / "network.net"   # names its data
    with pytest.raises(UserError, match="network.net: inputs without labels; pass an .x, y. "):
        api.simulate(cuba, np.zeros((2, 16, 64), dtype=bool))


def test_sigma_delta_files_are_written_and_read_with_one_model(dense_file, tmp_path):
    """simulate.json and parity.json of a sigma-delta network are the dump of
    SigmaDeltaRecord, which `energy` reads back to reprice them."""
    import json

    from neurodeploy import api
    from neurodeploy.energy.report_file import Priced, SigmaDeltaRecord, read_report
    from neurodeploy.schema import written
    x = inputs(read_sdnn(dense_file).input_shape, 2, 5, 256)
    api.simulate(dense_file, x, out=tmp_path / "s")
    api.parity(dense_file, x, backends=("torch", "emulator"), out=tmp_path / "p")
    for path in (tmp_path / "s" / "simulate.json", tmp_path / "p" / "parity.json"):
        data = json.loads(path.read_text())
        assert read_report(path) == data == json.loads(json.dumps(written(SigmaDeltaRecord,
                                                                          data)))
    assert data["message_mismatches"]["total"] == 0
    with pytest.raises(ValueError, match=r"sections \['typo'\] are not declared"):
        written(SigmaDeltaRecord, {**data, "typo": 1})
    wrote = api.energy(tmp_path / "p" / "parity.json", "loihi2-proxy", out=tmp_path / "e")[
        "wrote"]
    priced = json.loads(wrote[0].read_text())         # energy-<preset>.json: Priced's sections
    assert list(priced) == list(Priced.model_fields) and written(Priced, priced) == priced
