"""Sigma-delta networks with axonal and synaptic delays (as IntelLabs' N-DNS baseline SDNN):
files written by lava-dl's slayer, delays read and clamped as netx 0.6.0 builds them, run on
the exact mode, the emulator and Lava message for message; the clamp said in inspect and in
every record; what netx ignores refused in one line."""
import json

import h5py
import numpy as np
import pytest
import torch

from neurodeploy.backends.emulator import simulate_emulator_sdnn
from neurodeploy.backends.lava_sdnn import simulate_lava_sdnn
from neurodeploy.cli import main
from neurodeploy.backends.lava_runtime import import_lava
from neurodeploy.errors import UserError
from neurodeploy.netx.sdnn import read_sdnn
from neurodeploy.neurons.sigma_delta import activity, run_stream
from neurodeploy.parity import message_mismatches
from slayer_export import export

CLAMPED = "layer 1: 2 delays of 63-64 clamped to 62, as netx does"


def delayed_sdnn(path):
    """slayer SDNN 12-10-8-4 with per-neuron (axonal) delays on layer 1, two of them beyond
    netx's 62 as in the N-DNS baseline (slayer itself stores at most 62, so they are set in
    the file), and per-synapse delays on layer 2 (netx's full (out, in) form)."""
    import_lava()
    from lava.lib.dl import slayer
    sd = slayer.block.sigma_delta
    p = {"threshold": 0.1, "activation": torch.nn.functional.relu, "requires_grad": False}
    torch.manual_seed(0)
    blocks = [sd.Input(p), sd.Dense(p, 12, 10, weight_scale=2, delay=True),
              sd.Dense(p, 10, 8, weight_scale=2, delay=True), sd.Output(p, 8, 4)]
    export(path, blocks, torch.rand(1, 12, 3),
           {1: torch.tensor([0., 1, 2, 3, 4, 5, 6, 7, 8, 9]), 2: torch.zeros(8)})
    with h5py.File(path, "a") as f:
        f["layer/1/delay"][8:] = [63, 64]
        del f["layer/2/delay"]
        f["layer/2/delay"] = np.random.default_rng(3).integers(0, 5, (8, 10)).astype(np.float32)
    return path


@pytest.mark.lava
def test_delays_match_lava_message_for_message(tmp_path):
    path = delayed_sdnn(tmp_path / "sd.net")
    net = read_sdnn(path)
    assert net.notes == (CLAMPED,)
    assert net.layers[1].delay[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 62, 62]
    assert net.layers[2].delay.shape == (8, 10) and net.layers[2].delay.max() == 4
    x = np.random.default_rng(0).integers(0, 256, size=(2, 40, 12))
    lava = simulate_lava_sdnn(path, x)
    exact = run_stream(net, x)
    emulated = simulate_emulator_sdnn(path, x).layers
    for name, other in (("exact", exact), ("emulator", emulated)):
        parity = message_mismatches(lava.layers, other)
        assert parity["total"] == 0, (name, parity["first"])
    assert all(m.any() for m in lava.layers), "a silent layer would prove nothing"
    assert activity(net, lava.layers) == activity(net, exact)
    # the delays change what Lava computes: the comparison above can fail
    plain = type(net)(net.input_shape, tuple(
        layer if layer.delay is None else type(layer)(**{**layer.__dict__, "delay": None})
        for layer in net.layers))
    assert message_mismatches(lava.layers, run_stream(plain, x))["total"] > 0
    late = np.argwhere(net.layers[1].delay[:, 0] == 62)[:, 0]       # clamped neurons' inputs
    assert (exact[1][:, :, late] != 0).any()


def test_inspect_and_records_say_what_netx_clamped(tmp_path, capsys):
    path = delayed_sdnn(tmp_path / "sd.net")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"warning: {CLAMPED}" in out and "delays up to 62 steps" in out
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(1).integers(0, 256, (1, 70, 12)))
    assert main(["simulate", str(path), "--backend", "emulator", "--data",
                 str(tmp_path / "x.npz"), "--out", str(tmp_path / "s")]) == 0
    result = json.loads((tmp_path / "s" / "simulate.json").read_text())
    assert result["warnings"] == [CLAMPED]
    assert [row.get("max_delay", 0) for row in result["layers"]] == [0, 62, 4, 0]
    assert CLAMPED in capsys.readouterr().out


@pytest.mark.parametrize("edit,words", [
    (lambda f: f["layer/2"].create_dataset("delay_x", data=1), "'delay_x' is not supported"),
    (lambda f: (f["layer/2"].__delitem__("delay"),
                f["layer/2"].create_dataset("delay", data=np.zeros(3))),
     "'delay' has shape [3]; netx takes one value"),
    (lambda f: (f["layer/2"].__delitem__("delay"),
                f["layer/2"].create_dataset("delay", data=np.full(8, 1.5e12))),
     "'delay' spans"),
])
def test_malformed_delays_are_refused_in_one_line(tmp_path, edit, words):
    path = delayed_sdnn(tmp_path / "sd.net")
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(UserError) as e:
        read_sdnn(path)
    assert words in str(e.value) and "layer 2" in str(e.value) and "\n" not in str(e.value)
