"""Resonate-and-fire neurons (netx `RF_PHASE` -> Lava RF, `RF_IZHIKEVICH` -> Lava RF_IZ) as
lava-dl 0.6.0's netx builds them: networks trained on sklearn digits by slayer's own rf and
rf_iz blocks (tests/data/slayer_rf/train.py) run on Lava, the emulator and the exact mode spike
for spike; netx's float round trip of the decays matters; what netx cannot build or drops is
refused in one line."""
import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.cli import main
from neurodeploy.energy import count_events
from neurodeploy.errors import UserError
from neurodeploy.netx import read_netx
from neurodeploy.neurons import resonate
from slayer_export import lava_emulator_exact

DATA = Path(__file__).parent / "data" / "slayer_rf"
_spec = importlib.util.spec_from_file_location("rf_train", DATA / "train.py")
train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train)


def held_out(n: int) -> np.ndarray:
    """The first n held-out digits, rate coded as in training."""
    x, _ = train.digits()
    return train.code(x[train.TRAIN:train.TRAIN + n], 1)


@pytest.mark.lava
@pytest.mark.parametrize("name", ["rf_iz_digits.net", "rf_digits.net"])
def test_trained_rf_networks_match_lava_spike_for_spike(name):
    net, _ = read_netx(DATA / name)
    assert net.layers[0].resonate and net.layers[0].params.izhikevich == ("iz" in name)
    x = held_out(40)
    lava, _, exact = lava_emulator_exact(DATA / name, x, net)
    assert lava.info["lava_read"] == "original"
    # netx's float round trip moves some decays by one unit (train.py's layer 0: 10 of 40
    # sin decays of rf_iz): with the file's integers, the exact mode would not be Lava
    p = net.layers[0].params
    assert (np.array(p.decays()) != np.array([p.sin_decay, p.cos_decay])).any()
    raw = type(p).decays
    try:
        type(p).decays = lambda self: (np.array(self.sin_decay), np.array(self.cos_decay))
        naive = simulate_torch(net, x)
    finally:
        type(p).decays = raw
    assert any((a != b).any() for a, b in zip(naive.layers, lava.layers))
    # and the accuracy the provenance records is the exact mode's on the held-out digits
    acc = json.loads((DATA / "provenance.json").read_text())[name]["exact_mode_accuracy"]
    _, y = train.digits()
    full = simulate_torch(net, held_out(len(y) - train.TRAIN)).layers[-1].sum(1)
    assert round(float((full.argmax(1) == y[train.TRAIN:]).mean()), 4) == acc


@pytest.mark.lava
def test_float_decays_reach_lava_as_a_canonical_copy_and_rf_state_is_zeroed(tmp_path,
                                                                             monkeypatch):
    """sinDecay stored as floats (netx would run its round trip in float32): Lava gets our
    integer copy and still agrees; without zeroing RF state per sample it would not."""
    def floats(f):
        for key in ("sinDecay", "cosDecay"):
            value = f[f"layer/0/neuron/{key}"][()]
            del f[f"layer/0/neuron/{key}"]
            f[f"layer/0/neuron/{key}"] = value.astype(np.float32)
    path = _copy(tmp_path, floats)
    net, _ = read_netx(path)
    x = held_out(10)
    lava, _, _ = lava_emulator_exact(path, x, net)
    assert lava.info["lava_read"].startswith("canonical copy") and "sinDecay" in \
        lava.info["lava_read"]
    import neurodeploy.backends.lava as backend
    clears = backend._buffer_clears
    monkeypatch.setattr(backend, "_buffer_clears", lambda net, spec, n, t: {
        step: [v for v in vars_ if v.name not in ("real", "imag")]
        for step, vars_ in clears(net, spec, n, t).items()})
    carried = backend.simulate_lava(DATA / "rf_iz_digits.net", x, progress=False)
    assert any((a != b).any() for a, b in zip(carried.layers, lava.layers))


@pytest.mark.lava
def test_lava_decays_repeat_netx_round_trip():
    """Against netx's own code path (slayer's neuron_params, then Lava's RF.__init__)."""
    from neurodeploy.backends.lava_runtime import import_lava
    import_lava()
    from lava.lib.dl.slayer.neuron.rf import neuron_params
    from lava.proc.rf.process import RF
    rng = np.random.default_rng(0)
    sin, cos = rng.integers(1, 3000, 500), rng.integers(0, 3000, 500)
    p = neuron_params({"sinDecay": sin, "cosDecay": cos, "vThMant": 10})
    rf = RF(shape=(500,), period=p["period"], alpha=p["decay"], state_exp=6, decay_bits=12)
    got = resonate.lava_decays(sin, cos)
    np.testing.assert_array_equal(got[0], rf.sin_decay.init)
    np.testing.assert_array_equal(got[1], rf.cos_decay.init)


def test_inspect_simulate_energy_on_an_rf_network(tmp_path, capsys):
    path = DATA / "rf_iz_digits.net"
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "RF_IZ (resonate-and-fire), period" in out and "(real and imaginary)" in out
    np.savez(tmp_path / "x.npz", x=held_out(8), y=train.digits()[1][train.TRAIN:][:8])
    assert main(["simulate", str(path), "--backend", "torch", "--data", str(tmp_path / "x.npz"),
                 "--out", str(tmp_path / "s")]) == 0
    assert "resonate-and-fire neurons priced as CUBA neurons" in capsys.readouterr().out
    result = json.loads((tmp_path / "s" / "simulate.json").read_text())
    assert "no energy or neuron memory" in result["counts"]["resonate_and_fire"]
    fc0 = result["layers"][0]
    assert fc0["neuron"] == "RF_IZ" and fc0["synapses"] == 2 * 40 * 64
    assert main(["energy", str(tmp_path / "s" / "simulate.json"), "--preset", "loihi1-sanafe"]) == 0
    # each input spike costs one op per non-zero real and per non-zero imaginary weight
    net, _ = read_netx(path)
    x = held_out(8)
    fanout = sum((w != 0).sum(0) for w in net.layers[0].synapse_matrices())
    ops = count_events(simulate_torch(net, x), net, totals=True)["synaptic_ops"][0].sum()
    assert ops == (x.sum((0, 1)) * fanout).sum() > (x.sum((0, 1)) * (net.layers[0].weight != 0)
                                                    .sum(0)).sum()


def _copy(tmp_path, edit, name="rf_iz_digits.net"):
    path = tmp_path / name
    path.write_bytes((DATA / name).read_bytes())
    with h5py.File(path, "a") as f:
        edit(f)
    return path


@pytest.mark.parametrize("edit, words", [
    (lambda f: f["layer/0"].create_dataset("bias", data=np.zeros(40)),
     "'bias' on a resonate-and-fire layer, which netx 0.6.0 builds without it"),
    (lambda f: f["layer/1"].create_dataset("delay", data=np.ones(10)),
     "'delay' on a resonate-and-fire layer"),
    (lambda f: (f["layer/0/type"].__setitem__(0, b"conv")),
     "a resonate-and-fire conv layer, which netx 0.6.0 cannot build"),
    (lambda f: (f["layer/1/neuron"].__delitem__("type"),
                f["layer/1/neuron"].create_dataset("type", data="CUBA")),
     "complex weights ('weight/real', 'weight/imag') need a resonate-and-fire neuron"),
    (lambda f: (f["layer/1/neuron"].__delitem__("vThMant"),
                f["layer/1/neuron"].create_dataset("vThMant", data=np.arange(1, 11))),
     "'vThMant' must be one value for the layer"),
    (lambda f: (f["layer/1/neuron"].__delitem__("gradedSpike"),
                f["layer/1/neuron"].create_dataset("gradedSpike", data=True)),
     "'neuron/gradedSpike' is true, but netx 0.6.0 ignores it and Lava's RF_IZ sends 1-bit"),
    (lambda f: (f["layer/0/neuron"].__delitem__("sinDecay"),
                f["layer/0/neuron"].create_dataset("sinDecay", data=np.ones(7))),
     "'neuron/sinDecay' has 7 values; give one or one per neuron (40)"),
    (lambda f: (f["layer/0"].__delitem__("weight"),
                f["layer/0"].create_dataset("weight", data=np.ones((40, 64)))),
     "a resonate-and-fire neuron needs complex weights"),
])
def test_what_netx_cannot_build_or_drops_is_refused_in_one_line(tmp_path, capsys, edit, words):
    path = _copy(tmp_path, edit)
    with pytest.raises(UserError) as e:
        read_netx(path)
    assert words in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err


def test_an_rf_input_layer_is_refused(tmp_path):
    def add_input(f):
        f.move("layer/1", "layer/2")
        f.move("layer/0", "layer/1")
        g = f.create_group("layer/0")
        g.create_dataset("type", (1,), "S10", [b"input"])
        g.create_dataset("shape", data=np.array([64]))
        g.create_dataset("neuron/type", data="RF_IZHIKEVICH")
    with pytest.raises(UserError, match="resonate-and-fire .* input layer, which netx 0.6.0 "
                                        "cannot build"):
        read_netx(_copy(tmp_path, add_input))
