"""netx files written by lava-dl's own slayer exporter run on every backend, spike for spike."""
import numpy as np
import pytest
import torch

from neurodeploy.backends.emulator import simulate_emulator
from neurodeploy.backends.lava import simulate_lava
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.backends.lava_runtime import import_lava
from neurodeploy.netx import read_netx
from slayer_export import export

pytestmark = pytest.mark.lava


def slayer_file(path, conv: bool):
    import_lava()
    from lava.lib.dl import slayer
    p = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03,
         "scale_grad": 3, "requires_grad": False}
    torch.manual_seed(0)
    if conv:
        blocks = [slayer.block.cuba.Conv(p, 2, 4, 3, padding=1, stride=2, weight_scale=2,
                                         weight_norm=False),
                  slayer.block.cuba.Flatten(),
                  slayer.block.cuba.Dense(p, 4 * 4 * 4, 5, weight_scale=2, weight_norm=False)]
        x = torch.zeros(1, 2, 8, 8, 4)
    else:
        blocks = [slayer.block.cuba.Dense(p, 20, 16, weight_scale=2, weight_norm=False),
                  slayer.block.cuba.Dense(p, 16, 5, weight_scale=2, weight_norm=False)]
        x = torch.zeros(1, 20, 4)
    export(path, blocks, x)


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_slayer_exports_match_lava(conv, tmp_path):
    slayer_file(tmp_path / "s.net", conv)
    shape = (2, 8, 8) if conv else None          # slayer writes no input layer
    net, _ = read_netx(tmp_path / "s.net", shape)
    spikes = (np.random.default_rng(0).random((6, 10, net.input_size)) < 0.4).astype(np.uint8)
    lava = simulate_lava(tmp_path / "s.net", spikes, progress=False, input_shape=shape)
    emulated = simulate_emulator(tmp_path / "s.net", spikes, input_shape=shape)
    exact = simulate_torch(net, spikes)
    for a, b, c in zip(lava.layers, emulated.layers, exact.layers):
        assert a.any()
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
