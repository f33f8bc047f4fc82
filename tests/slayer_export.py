"""Files written by lava-dl's own exporter, shared by the tests that compare them with Lava."""
import h5py
import numpy as np
import torch

from neurodeploy.backends.emulator import simulate_emulator
from neurodeploy.backends.lava import simulate_lava
from neurodeploy.backends.torch_exact import simulate_torch


def export(path, blocks, x, delays=None):
    """lava-dl's own export: slayer learns neuron (and delay) shapes on a first forward pass,
    after which `delays` {block index: per-neuron delays} are set."""
    with torch.no_grad():
        for block in blocks:
            x = block(x)
        for i, d in (delays or {}).items():
            blocks[i].delay.delay.data = d
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(f"{i}"))
    return path


def lava_emulator_exact(path, x, net, input_bits=None):
    """Records of Lava, the emulator and the torch exact mode of netx file `path` (read as
    `net`) over inputs x, checked equal layer by layer and no layer silent; returns them."""
    lava = simulate_lava(path, x, progress=False, input_bits=input_bits)
    emulated = simulate_emulator(path, x)
    exact = simulate_torch(net, x)
    for i, (a, b, c) in enumerate(zip(lava.layers, emulated.layers, exact.layers)):
        assert a.any(), f"layer {i} is silent: the comparison would prove nothing"
        np.testing.assert_array_equal(a, b, err_msg=f"layer {i}: emulator vs Lava")
        np.testing.assert_array_equal(a, c, err_msg=f"layer {i}: torch vs Lava")
    return lava, emulated, exact
