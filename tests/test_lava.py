"""Lava is the referee: exact mode vs Lava's fixed_pt simulation, spike for spike.

These tests really run Lava (Loihi2SimCfg, fixed_pt) and also cover the 3.11 shims and the
runtime's lifecycle (stopped on success, error and interrupt).
"""
import dataclasses
import sys

import numpy as np
import pytest
import torch

from neurodeploy.backends.emulator import simulate_emulator
from neurodeploy.backends.lava import LavaTimeout, loihi2_missing, simulate_lava
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.backends.lava_runtime import import_lava, running
from neurodeploy.errors import UserError
from neurodeploy.netx import read_netx, write_netx
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork, exact_step
from neurodeploy.neurons.cuba import U_WRAP, V_LIMIT

pytestmark = pytest.mark.lava


def random_net(rng, sizes, params, weight_range=(-128, 128), even=True):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.integers(*weight_range, size=(n_out, n_in))
        layers.append(IntLayer(w * 2 if even else w, params[i], name=f"fc{i}"))
    return IntNetwork(sizes[0], tuple(layers))


def stress_counts(net, spikes):
    """How often the exact mode hit current wrap-around and voltage saturation."""
    wraps = sats = 0
    x = torch.as_tensor(spikes, dtype=torch.float64)
    for layer in net.layers:
        a = (x @ torch.as_tensor(layer.weight, dtype=torch.float64).t()).long()
        u = v = torch.zeros_like(a[:, 0])
        out = []
        for t in range(a.shape[1]):
            pre = torch.sign(u * (4096 - layer.params.i_decay)) * (
                (u * (4096 - layer.params.i_decay)).abs() >> 12) + (a[:, t] << 6)
            wraps += int(((pre > U_WRAP) | (pre <= -U_WRAP)).sum())
            u, v, s = exact_step(u, v, a[:, t], layer.params)
            sats += int((v.abs() == V_LIMIT).sum())
            out.append(s)
        x = torch.stack(out, 1).double()
    return wraps, sats


CASES = {
    "leaky": ([24, 32, 10], [CubaParams(1024, 256, 128), CubaParams(2048, 512, 64)], 0.3, True),
    "odd-weights-no-decay": ([20, 16, 8], [CubaParams(0, 0, 300), CubaParams(4096, 4096, 50)],
                             0.3, False),
    # i_decay = 0 lets the current grow until it wraps; a huge threshold with v_decay = 0 lets
    # the voltage run into saturation
    "wrap-and-saturate": ([64, 12, 6], [CubaParams(0, 0, 2 ** 17 - 1), CubaParams(1, 0, 2000)],
                          0.9, True),
}


@pytest.mark.parametrize("case", CASES)
def test_exact_mode_matches_lava_bit_for_bit(case, tmp_path):
    sizes, params, rate, even = CASES[case]
    rng = np.random.default_rng(len(case))
    weight_range = (0, 128) if case == "wrap-and-saturate" else (-128, 128)
    net = random_net(rng, sizes, params, weight_range, even)
    spikes = (rng.random((12, 24, sizes[0])) < rate).astype(np.uint8)
    write_netx(net, tmp_path / "net.net")
    lava = simulate_lava(tmp_path / "net.net", spikes, progress=False)
    exact = simulate_torch(read_netx(tmp_path / "net.net")[0], spikes)
    emulated = simulate_emulator(tmp_path / "net.net", spikes, batch_size=5)
    for a, b in zip(emulated.layers, exact.layers):
        np.testing.assert_array_equal(a, b)
    if case == "wrap-and-saturate":
        wraps, sats = stress_counts(net, spikes)
        assert wraps > 0 and sats > 0, "the stress case must exercise wrap and saturation"
    for a, b in zip(lava.layers, exact.layers):
        assert a.any(), "a test without spikes proves nothing"
        np.testing.assert_array_equal(a, b)


def test_inhibitory_only_layer_with_bias_matches_lava(tmp_path):
    """netx re-scales single-sign weight matrices differently; the bias enters as bias_mant."""
    rng = np.random.default_rng(5)
    net = IntNetwork(16, (
        IntLayer(rng.integers(-128, 128, (12, 16)) * 2, CubaParams(512, 128, 100), name="fc0"),
        IntLayer(rng.integers(-40, 0, (6, 12)) * 2, CubaParams(4096, 1024, 150),
                 bias=rng.integers(100, 300, 6), name="fc1")))
    spikes = (rng.random((10, 16, 16)) < 0.4).astype(np.uint8)
    write_netx(net, tmp_path / "inh.net")
    lava = simulate_lava(tmp_path / "inh.net", spikes, progress=False)
    exact = simulate_torch(read_netx(tmp_path / "inh.net")[0], spikes)
    for a, b in zip(lava.layers, exact.layers):
        assert a.any()
        np.testing.assert_array_equal(a, b)


def test_stock_lava_dl_loads_our_netx_file(tmp_path):
    lava = import_lava()
    rng = np.random.default_rng(1)
    net = random_net(rng, [10, 7, 3], [CubaParams(100, 200, 90)] * 2)
    write_netx(net, tmp_path / "n.net")
    loaded = lava.netx.hdf5.Network(net_config=str(tmp_path / "n.net"))
    assert len(loaded) == 2
    assert loaded.inp.shape == (10,) and loaded.out.shape == (3,)
    neuron = loaded.layers[0].neuron
    assert int(neuron.vth.init) == 90 and int(neuron.du.init) == 99 and int(neuron.dv.init) == 200


def test_shims_are_scoped_to_lava():
    import_lava()
    assert dataclasses.dataclass.__module__ == "dataclasses"   # restored for everyone else
    assert "lava.lib.dl.slayer.object_detection" in sys.modules

    @dataclasses.dataclass
    class Plain:
        x: int = 0
    assert Plain.__hash__ is None                               # ordinary semantics kept


def _tiny(tmp_path):
    lava = import_lava()
    net = IntNetwork(4, (IntLayer(np.full((3, 4), 40), CubaParams(0, 0, 50), name="fc0"),))
    write_netx(net, tmp_path / "t.net")
    return lava, lava.netx.hdf5.Network(net_config=str(tmp_path / "t.net"))


def test_runtime_is_stopped_when_the_body_raises(tmp_path):
    lava, proc = _tiny(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with running(proc):
            proc.run(condition=lava.RunSteps(num_steps=3),
                     run_cfg=lava.Loihi2SimCfg(select_tag="fixed_pt"))
            raise RuntimeError("boom")
    assert not proc.runtime._is_started


def test_runtime_is_stopped_on_interrupt(tmp_path):
    lava, proc = _tiny(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with running(proc):
            proc.run(condition=lava.RunSteps(num_steps=2),
                     run_cfg=lava.Loihi2SimCfg(select_tag="fixed_pt"))
            raise KeyboardInterrupt
    assert not proc.runtime._is_started


def test_wrong_input_width_is_a_user_error(tmp_path):
    rng = np.random.default_rng(2)
    write_netx(random_net(rng, [5, 3], [CubaParams(1, 1, 10)]), tmp_path / "n.net")
    with pytest.raises(UserError, match="inputs have 4 channels, the network expects 5"):
        simulate_lava(tmp_path / "n.net", np.zeros((2, 3, 4), np.uint8), progress=False)


def test_loihi2_backend_says_what_is_missing():
    missing = loihi2_missing()
    if missing is None:
        pytest.skip("lava-loihi is installed: hardware_tests/ exercise it")
    assert "lava-loihi" in missing and "ncproc_compiler" in missing


def conv_net(rng, groups=1):
    from neurodeploy.neurons.network import Conv
    c0 = Conv((2, 9, 8), stride=(2, 1), padding=(1, 0))
    l0 = IntLayer(rng.integers(-128, 128, (4, 2, 3, 3)) * 2, CubaParams(1024, 256, 100),
                  name="conv0", conv=c0)
    c1 = Conv(l0.shape, stride=(1, 2), padding=(1, 1), dilation=(1, 2) if groups == 1 else (1, 1),
              groups=groups)
    l1 = IntLayer(rng.integers(-128, 128, (6, 4 // groups, 3, 2)) * 2, CubaParams(2048, 512, 80),
                  bias=rng.integers(0, 30, 6), name="conv1", conv=c1)
    l2 = IntLayer(rng.integers(-128, 128, (5, l1.size)) * 2, CubaParams(512, 128, 150), name="fc2")
    return IntNetwork((2, 9, 8), (l0, l1, l2))


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_networks_match_lava_bit_for_bit(groups, tmp_path):
    """Strided, padded, dilated or grouped conv -> conv (+bias) -> flatten -> dense."""
    rng = np.random.default_rng(groups)
    net = conv_net(rng, groups)
    write_netx(net, tmp_path / "conv.net")
    back, _ = read_netx(tmp_path / "conv.net")
    assert [layer.shape for layer in back.layers] == [layer.shape for layer in net.layers]
    spikes = (rng.random((8, 8, 2 * 9 * 8)) < 0.4).astype(np.uint8)
    lava = simulate_lava(tmp_path / "conv.net", spikes, progress=False)
    exact = simulate_torch(back, spikes)
    emulated = simulate_emulator(tmp_path / "conv.net", spikes, batch_size=3)
    for a, b, c in zip(lava.layers, exact.layers, emulated.layers):
        np.testing.assert_array_equal(c, b)
        assert a.any()
        np.testing.assert_array_equal(a, b)


class _Clock:
    """A monotonic clock that advances one second per reading: the watchdog's timeout fires
    after a few of its looks, however fast or loaded the machine is."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        self.now += 1.0
        return self.now


def test_a_lava_run_past_its_timeout_is_stopped_and_reported(tmp_path, monkeypatch):
    """The watchdog ends the run mid-chunk (one chunk here would take seconds)."""
    import neurodeploy.backends.watchdog as watchdog
    from neurodeploy.backends import lava_runtime
    rng = np.random.default_rng(7)
    write_netx(random_net(rng, [8, 4], [CubaParams(100, 100, 50)]), tmp_path / "n.net")
    spikes = (rng.random((400, 16, 8)) < 0.3).astype(np.uint8)
    monkeypatch.setattr(watchdog, "time", _Clock())
    with pytest.raises(LavaTimeout, match=r"exceeded its 2\.5 s timeout after \d+ of 400 samples"):
        simulate_lava(tmp_path / "n.net", spikes, progress=False, timeout_s=2.5)
    assert not lava_runtime._live, "the timed-out runtime was not stopped"


def test_readout_voltages_match_lava(tmp_path):
    """A non-spiking last layer: its voltage after every step, on Lava and in the exact mode."""
    rng = np.random.default_rng(11)
    hidden = IntLayer(rng.integers(-128, 128, (12, 10)) * 2, CubaParams(1024, 256, 90), name="fc0")
    readout = IntLayer(rng.integers(-128, 128, (4, 12)) * 2, CubaParams(2048, 512, 2 ** 17 - 1),
                       name="fc1")
    net = IntNetwork(10, (hidden, readout), readout=True)
    write_netx(net, tmp_path / "r.net")
    back, _ = read_netx(tmp_path / "r.net")
    assert back.readout
    spikes = (rng.random((9, 12, 10)) < 0.4).astype(np.uint8)
    lava = simulate_lava(tmp_path / "r.net", spikes, progress=False)
    exact = simulate_torch(back, spikes)
    emulated = simulate_emulator(back, spikes)
    assert np.abs(exact.readout).max() > 0 and not exact.layers[-1].any()
    np.testing.assert_array_equal(lava.readout, exact.readout)
    np.testing.assert_array_equal(emulated.readout, exact.readout)
    assert (lava.predictions == exact.readout.sum(1).argmax(1)).all()


def test_simulate_without_a_terminal_prints_a_line_per_chunk(tmp_path, capsys):
    """No progress bar in a log or CI (stderr is no terminal), yet a long Lava run is never
    silent: one plain line per finished chunk, none with -q."""
    from pathlib import Path
    from neurodeploy.cli import main
    net = Path(__file__).parent.parent / "export" / "digits" / "network.net"
    args = ["simulate", str(net), "--backend", "lava", "--samples", "5", "--chunk", "2"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err          # plain lines, no bar
    done = [line for line in err.splitlines() if line.startswith("chunk ")]
    assert [line.split(" done")[0] for line in done] == ["chunk 1/3", "chunk 2/3", "chunk 3/3"]
    assert "samples 4..4" in done[-1] and "5/5 simulated" in done[-1]
    assert "about" in done[0] and "left" in done[0]
    assert main([*args, "--out", str(tmp_path / "q"), "-q"]) == 0
    assert capsys.readouterr().err == ""
