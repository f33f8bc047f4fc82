"""Trained networks that lava-dl itself publishes (tests/data/lava_dl/, see SOURCES.md there),
read as netx 0.6.0 builds them and run on every backend: spike for spike, message for message,
and against lava-dl's own ground-truth outputs."""
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neurodeploy import simulation
from neurodeploy.backends.emulator import simulate_emulator_sdnn
from neurodeploy.backends.lava_sdnn import simulate_lava_sdnn
from neurodeploy.energy import load_preset, price
from neurodeploy.errors import UserError
from neurodeploy.netx import read_netx, write_netx
from neurodeploy.netx.sdnn import read_sdnn
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork, run_exact
from neurodeploy.neurons.sigma_delta import run_chip, run_stream
from neurodeploy.parity import message_mismatches

pytestmark = pytest.mark.lava

DATA = Path(__file__).parent / "data" / "lava_dl"
CUBA = ["tiny", "netx_mnist", "oxford", "bootstrap_mnist", "pilotnet_lif"]
SDNN = ["pilotnet_sdnn_gts", "pilotnet_sdnn_square"]


def _spikes(net, n, t, rate=0.3, seed=0):
    return np.random.default_rng(seed).random((n, t, net.input_size)) < rate


@pytest.mark.parametrize("name", CUBA)
def test_cuba_networks_match_lava_spike_for_spike(name):
    path = DATA / f"{name}.net"
    net, _ = read_netx(path)
    spikes = _spikes(net, 2, 8)
    labels = np.zeros(2, dtype=np.int64)
    result, records = simulation.parity(path, lambda meta, n: (spikes, labels),
                                      ["torch", "emulator", "lava"])
    assert result["spike_mismatches"] == 0
    assert result["readout_voltage_mismatches"] == 0
    hidden = records[0].layers[:-1] if net.readout else records[0].layers
    assert sum(int(np.asarray(s).sum()) for s in hidden) > 0     # something was compared


def test_loihi_neurons_are_read_as_netx_builds_them():
    """netx 0.6.0 treats LOIHI exactly as CUBA and never reads slayer's scaleRho, tauRho, theta
    or wgtExp; slayer's PilotNet declares its dense layers [n, 1, 1] after a flatten."""
    net, _ = read_netx(DATA / "tiny.net")
    assert {layer.params for layer in net.layers} == {CubaParams(4096, 1024, 25)}
    pilot, _ = read_netx(DATA / "pilotnet_lif.net")
    assert [layer.shape for layer in pilot.layers[-4:]] == [(100,), (50,), (10,), (1,)]
    assert pilot.readout        # vThMant 131071, vDecay 0: an integrator read out by voltage


def test_a_dense_layer_without_neuron_is_netx_default_integrator():
    net, _ = read_netx(DATA / "bootstrap_mnist.net")
    assert net.layers[-1].params == CubaParams(0, 4096, 2 ** 17)   # `1 << 18 - 1` in netx
    assert net.readout


def test_a_conv_layer_without_neuron_is_refused_in_one_line(tmp_path):
    path = tmp_path / "tiny.net"
    shutil.copy(DATA / "tiny.net", path)
    with h5py.File(path, "a") as f:
        del f["layer/1/neuron"]
    with pytest.raises(UserError, match="layer 1: the conv layer has no 'neuron' group"):
        read_netx(path)


def test_tiny_network_reproduces_lava_dl_ground_truth():
    """lava-dl's test_tinynet: the frame is the input layer's bias (no input spikes); its
    ground truth is compared one step late (`output[..., 2:17]` vs `gt[..., 1:]`)."""
    net, _ = read_netx(DATA / "tiny.net")
    frame = np.load(DATA / "tiny_gts_input_bias.npy").transpose(2, 1, 0).reshape(-1)
    first = dataclasses.replace(net.layers[0], bias=frame.astype(np.int64))
    net = dataclasses.replace(net, layers=(first, *net.layers[1:]))
    out = run_exact(net, torch.zeros(1, 17, net.input_size))[-1][0].numpy().T
    truth = np.load(DATA / "tiny_gts_output.npy")[0].reshape(36, 16)
    assert truth.sum() > 0
    assert np.array_equal(out[:, :15], truth[:, 1:])


def test_pilotnet_sdnn_reproduces_lava_dl_ground_truth():
    """lava-dl's test_pilotnet_sdnn: one frame repeated for 9 chip steps; the output of the
    first 8 is sent before the frame reaches the last layer, by neurons whose bias is above
    threshold. Both the exact mode (window time, padded) and the emulator (chip time) give it."""
    net = read_sdnn(DATA / "pilotnet_sdnn_gts.net")
    frame = np.load(DATA / "pilotnet_sdnn_gts_input.npy")[..., 0].transpose(2, 1, 0)
    truth = np.load(DATA / "pilotnet_sdnn_gts_output.npy")[0]
    steps = len(net.layers)
    frames = np.repeat(frame[None, None], steps, axis=1)
    exact = run_chip(net, torch.as_tensor(frames))[-1][0, :steps, 0].numpy()
    assert np.array_equal(exact, truth) and np.count_nonzero(truth[:-1])
    # the emulator's record is in window time: its last layer's first window step is chip 9
    emulated = simulate_emulator_sdnn(DATA / "pilotnet_sdnn_gts.net", frames)
    assert emulated.layers[-1][0, 0, 0] == truth[-1]


@pytest.mark.parametrize("name", SDNN)
def test_sdnn_networks_match_lava_message_for_message(name):
    path = DATA / f"{name}.net"
    net = read_sdnn(path)
    x = np.random.default_rng(0).integers(-50, 64, size=(1, 5, *net.input_shape))
    exact = run_stream(net, x)
    for other in (simulate_emulator_sdnn(path, x), simulate_lava_sdnn(path, x)):
        m = message_mismatches(exact, other.layers)
        assert m["total"] == 0, (other.backend, m["first"])
    assert np.count_nonzero(exact[-1])


def test_cli_runs_sdnn_parity_on_three_backends_and_estimates_cores(tmp_path):
    net = read_sdnn(DATA / "pilotnet_sdnn_square.net")
    np.savez(tmp_path / "x.npz",
             x=np.random.default_rng(1).integers(-50, 64, size=(1, 4, *net.input_shape)))
    cli = [sys.executable, "-m", "neurodeploy"]
    done = subprocess.run([*cli, "parity", str(DATA / "pilotnet_sdnn_square.net"),
                           "--backends", "torch,emulator,lava", "--data",
                           str(tmp_path / "x.npz"), "--out", str(tmp_path / "p")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "emulator vs torch: 0 message mismatches" in done.stdout
    assert "lava vs torch: 0 message mismatches" in done.stdout
    result = json.loads((tmp_path / "p" / "parity.json").read_text())
    counts = result["counts"]                  # priced from the same messages it compared
    assert sum(map(sum, counts["spikes"])) == sum(result["messages_per_layer"].values())
    assert result["energy"]["per_inference_pj"] > 0 and result["resources"]["cores"] > 0
    repriced = subprocess.run([*cli, "energy", str(tmp_path / "p" / "parity.json"),
                               "--preset", "loihi1-sanafe", "--out", str(tmp_path / "e")],
                              capture_output=True, text=True)
    assert repriced.returncode == 0, repriced.stderr
    shown = subprocess.run([*cli, "inspect", str(DATA / "pilotnet_sdnn_square.net")],
                           capture_output=True, text=True)
    assert "Loihi 2: fits one Loihi 2 chip" in shown.stdout


def _per_neuron_decays(path):
    rng = np.random.default_rng(0)
    layers = (IntLayer(weight=rng.integers(-60, 80, size=(6, 5)) * 2,
                       params=CubaParams(1024, 512, 60), name="fc0"),
              IntLayer(weight=rng.integers(-20, 90, size=(3, 6)) * 2,
                       params=CubaParams(1024, 512, 60), name="fc1"))
    write_netx(IntNetwork(input_shape=(5,), layers=layers), path)
    with h5py.File(path, "a") as f:      # as slayer saves a layer with per-neuron decays
        del f.attrs["neurodeploy"], f["layer/1/neuron/iDecay"], f["layer/1/neuron/vDecay"]
        f["layer/1/neuron/iDecay"] = np.array([0, 100, 1000, 2000, 3000, 4096])
        f["layer/1/neuron/vDecay"] = np.array([4096, 3000, 2000, 1000, 100, 0])
    return path


def test_per_neuron_decays_match_lava(tmp_path):
    path = _per_neuron_decays(tmp_path / "decays.net")
    net, _ = read_netx(path)
    assert net.layers[0].params.i_decay == (0, 100, 1000, 2000, 3000, 4096)
    spikes = _spikes(net, 4, 16)
    result, records = simulation.parity(path, lambda meta, n: (spikes, np.zeros(4, np.int64)),
                                      ["torch", "emulator", "lava"])
    assert result["spike_mismatches"] == 0
    one = dataclasses.replace(net.layers[0], params=CubaParams(0, 4096, 60))
    uniform = run_exact(dataclasses.replace(net, layers=(one, net.layers[1])),
                        torch.as_tensor(spikes))
    assert not np.array_equal(uniform[0].numpy(), records[0].layers[0])   # the decays matter


def test_per_neuron_decays_on_a_conv_layer_are_refused(tmp_path):
    path = tmp_path / "tiny.net"
    shutil.copy(DATA / "tiny.net", path)
    with h5py.File(path, "a") as f:
        del f["layer/1/neuron/iDecay"]
        f["layer/1/neuron/iDecay"] = np.arange(24 * 6 * 6) % 4096
    with pytest.raises(UserError, match="per-neuron decays are read for dense layers only"):
        read_netx(path)


def test_pilotnet_calibrated_preset_still_matches_the_measurement_it_was_fitted_to():
    """loihi2-pilotnet-calibrated holds two factors fitted by benchmarks/silicon.py; if counting,
    pricing or the mapping change, the fit goes stale and this fails (rerun the benchmark)."""
    import silicon                   # benchmarks/silicon.py
    events, layers = silicon.counts()
    priced = price(events, layers, load_preset("loihi2-pilotnet-calibrated"))
    m = silicon.MEASURED
    assert priced["resources"]["mapping"] == "compiler"
    assert priced["energy"]["dynamic_pj"] / 1e9 == pytest.approx(m["dynamic_mj"], rel=1e-4)
    assert priced["energy"]["per_inference_pj"] / 1e9 == pytest.approx(m["total_mj"], rel=1e-4)
    assert priced["energy"]["latency_us"] / 16 == pytest.approx(m["step_us"], rel=1e-4)
    default = price(events, layers, load_preset("loihi2-proxy"))      # the default is not fitted
    assert default["resources"]["mapping"] == "brief"


def test_the_python_api_runs_a_sigma_delta_network():
    from neurodeploy import api
    path = DATA / "pilotnet_sdnn_square.net"
    x = np.random.default_rng(2).integers(-50, 64, size=(1, 4, *read_sdnn(path).input_shape))
    simulated = api.simulate(path, x, backend="torch")
    assert simulated["kind"] == "sigma-delta" and simulated["energy"]["per_inference_pj"] > 0
    checked = api.parity(path, (x, None), backends=("torch", "emulator"))
    assert checked["message_mismatches"]["total"] == 0 and checked["message_mismatches"]["compared"]
