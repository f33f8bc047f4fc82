"""Graded input spikes into CUBA networks (netx's `Network(..., input_message_bits=N)`, as
NeuroBench deploys its keyword-spotting networks): files written by lava-dl's own slayer
exporter, integer events run on Lava, the emulator and the exact mode spike for spike, read
from --data with --input-bits, counted and priced, refused in one line where they cannot run."""
import json

import numpy as np
import pytest
import torch

from neurodeploy.backends.lava import simulate_lava
from neurodeploy.backends.record import SpikeRecord, inputs_digest
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.cli import main
from neurodeploy.backends.lava_runtime import import_lava
from neurodeploy.energy import count_events
from neurodeploy.errors import UserError
from neurodeploy.inputs import check_input_bits, load_inputs
from neurodeploy.netx import read_netx
from neurodeploy.neurons import run_exact
from slayer_export import export, lava_emulator_exact

P = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03,
     "scale_grad": 3, "requires_grad": False}


def slayer():
    import_lava()
    from lava.lib.dl import slayer as s
    return s


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    """A small slayer CUBA dense net shaped like NeuroBench's KWS input (20 channels)."""
    s = slayer()
    torch.manual_seed(0)
    blocks = [s.block.cuba.Dense(P, 20, 16, weight_scale=2),
              s.block.cuba.Dense(P, 16, 8, weight_scale=2)]
    return export(tmp_path_factory.mktemp("kws") / "kws.net", blocks, torch.zeros(1, 20, 4))


def events(n, t, width, high, seed=0):
    return np.random.default_rng(seed).integers(0, high + 1, size=(n, t, width))


@pytest.mark.lava
def test_cli_parity_of_2_bit_events_on_three_backends(kws, tmp_path):
    x = events(6, 12, 20, 3)
    np.savez(tmp_path / "ev.npz", x=x, y=np.arange(6) % 8)
    rc = main(["parity", str(kws), "--data", str(tmp_path / "ev.npz"), "--input-bits", "2",
               "--backends", "torch,emulator,lava", "--out", str(tmp_path / "p")])
    result = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert rc == 0 and result["spike_mismatches"] == 0
    assert result["provenance"]["input_bits"] == 2
    assert result["provenance"]["inputs_sha256"] != inputs_digest(x > 0, np.arange(6) % 8)
    net, _ = read_netx(kws)
    graded = run_exact(net, torch.as_tensor(x))
    binary = run_exact(net, torch.as_tensor(x > 0))
    assert graded[0].any() and graded[1].any()
    assert not torch.equal(graded[0], binary[0])     # the payloads matter: the check can fail


@pytest.mark.lava
def test_10_bit_events_through_delays_and_past_the_current_wrap(tmp_path):
    """Large events wrap the first layer's 24-bit current in Lava; delays shift them."""
    s = slayer()
    torch.manual_seed(0)
    blocks = [s.block.cuba.Dense(P, 20, 16, weight_scale=4, delay=True),
              s.block.cuba.Dense(P, 16, 8, weight_scale=2)]
    path = export(tmp_path / "d.net", blocks, torch.zeros(1, 20, 4),
                  {0: torch.arange(16.0) % 5 + 0.5})
    net, _ = read_netx(path)
    x = events(3, 12, 20, 1023, seed=1)
    x[x < 512] = 0
    assert net.layers[0].delay.max() == 4
    assert (np.abs(x @ net.layers[0].weight.T) * 64).max() >= 2 ** 23   # reaches the wrap
    lava, _, _ = lava_emulator_exact(path, x, net, input_bits=10)
    assert lava.info["input_message_bits"] == 10 and lava.inputs.dtype == np.int32


def test_graded_events_are_counted_as_spikes_and_the_proxy_is_said(kws, tmp_path, capsys):
    net, _ = read_netx(kws)
    x = events(4, 8, 20, 3, seed=2)
    record = simulate_torch(net, x)
    spikes = simulate_torch(net, (x > 0).astype(np.uint8))
    counted = count_events(record, net)
    # the first layer's ops are non-zero events x fan-out, whatever their payload
    fan = (net.layers[0].weight != 0).sum(0)
    assert np.allclose(counted["synaptic_ops"][0], ((x > 0) * fan).sum(2).mean(0))
    assert np.allclose(counted["synaptic_ops"][0], count_events(spikes, net)["synaptic_ops"][0])
    np.savez(tmp_path / "ev.npz", x=x, y=np.zeros(4, np.int64))
    assert main(["simulate", str(kws), "--data", str(tmp_path / "ev.npz"), "--input-bits", "2",
                 "--backend", "torch", "--out", str(tmp_path / "s")]) == 0
    assert "graded input events priced as spikes" in capsys.readouterr().out
    counts = json.loads((tmp_path / "s" / "simulate.json").read_text())["counts"]
    assert "no per-op energy of a graded message is published" in counts["graded_inputs"]


def test_a_record_of_graded_events_saves_and_loads_them(kws, tmp_path):
    net, _ = read_netx(kws)
    record = simulate_torch(net, events(2, 5, 20, 3))
    record.save(tmp_path / "r.npz")
    back, _ = SpikeRecord.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.inputs, record.inputs)
    assert back.inputs.max() == 3


@pytest.mark.parametrize("x,bits,words", [
    (events(2, 4, 20, 3), None, "pass --input-bits N"),
    (events(2, 4, 20, 9), 3, "event 9, outside the 3-bit graded input range 0..7"),
    (-events(2, 4, 20, 3), 2, "event -3, outside the 2-bit graded input range 0..3"),
    (-events(2, 4, 20, 3), None, "graded input events (non-negative integers"),
])
def test_events_that_do_not_fit_are_refused_in_one_line(kws, tmp_path, x, bits, words):
    np.savez(tmp_path / "ev.npz", x=x, y=np.zeros(2, np.int64))
    with pytest.raises(UserError) as e:
        load_inputs({}, str(tmp_path / "ev.npz"), input_size=20, input_bits=bits)
    assert words in str(e.value) and "ev.npz" in str(e.value) and "\n" not in str(e.value)


def test_input_bits_that_netx_cannot_take_are_refused(kws, tmp_path, capsys):
    net, _ = read_netx(kws)
    with pytest.raises(UserError, match="1..24 bits"):
        check_input_bits(25, net)
    with pytest.raises(UserError, match="overflow Lava's 32-bit synaptic sums"):
        check_input_bits(24, net, str(kws))
    check_input_bits(8, net)
    with pytest.raises(UserError, match="--input-bits"):         # Lava must be told the width
        simulate_lava(kws, events(1, 4, 20, 3), progress=False)
    np.savez(tmp_path / "ev.npz", x=events(2, 4, 20, 3), y=np.zeros(2, np.int64))
    rc = main(["simulate", str(kws), "--data", str(tmp_path / "ev.npz"), "--input-bits", "24",
               "--backend", "torch", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "layer 'fc0'" in err and len(err.splitlines()) == 1
