"""The outside fuzz's netx mutations that our reader accepts (it normalises them) but that
lava-dl 0.6.0's netx cannot build: whole-number floats, a per-layer value given per neuron or
twice, one value for [H, W], float groups and shapes. Before the Lava backend handed lava-dl a
canonical copy, some made a Lava worker die and the run hang forever, others ended in a
traceback from netx's reader. Each runs here on Lava, really, and must give exactly what the
emulator gives for the same file: every backend reads one network. Lava reads the canonical
copy where our reader normalised what netx reads, the mutated file itself otherwise.
"""
import h5py
import numpy as np
import pytest

from neurodeploy.backends.emulator import simulate_emulator
from neurodeploy.backends.lava import simulate_lava
from neurodeploy.netx import read_netx, write_netx
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork
from neurodeploy.neurons.network import Conv

pytestmark = pytest.mark.lava


def _dense(rng) -> IntNetwork:
    fc0 = IntLayer(rng.integers(-60, 61, (5, 6)) * 2, CubaParams(1024, 256, 90),
                   bias=rng.integers(0, 20, 5), name="fc0")
    fc1 = IntLayer(rng.integers(-60, 61, (3, 5)) * 2, CubaParams(512, 1024, 60), name="fc1")
    return IntNetwork(6, (fc0, fc1))


def _conv(rng) -> IntNetwork:
    conv = Conv((2, 5, 5), stride=(2, 2), padding=(1, 1), groups=2)
    c0 = IntLayer(rng.integers(-100, 101, (4, 1, 3, 3)) * 2, CubaParams(1024, 256, 80),
                  name="conv0", conv=conv)
    fc1 = IntLayer(rng.integers(-60, 61, (3, c0.size)) * 2, CubaParams(512, 512, 60), name="fc1")
    return IntNetwork((2, 5, 5), (c0, fc1))


def _float(v):
    return np.asarray(v, dtype=np.float64)


# (network, dataset, new value from the old): layer/0 is the input layer; the conv net's dense
# layer is layer/3, after a flatten layer
MUTATIONS = {
    "iDecay-float": ("dense", "layer/1/neuron/iDecay", _float),
    "vDecay-float": ("dense", "layer/2/neuron/vDecay", _float),
    "vThMant-float": ("dense", "layer/1/neuron/vThMant", _float),
    "vDecay-twice": ("dense", "layer/1/neuron/vDecay", lambda v: np.array([v, v])),
    "iDecay-per-neuron": ("dense", "layer/1/neuron/iDecay", lambda v: np.full(5, v)),
    "refDelay-float": ("dense", "layer/2/neuron/refDelay", _float),
    "shape-float": ("dense", "layer/1/shape", _float),
    "input-shape-float": ("dense", "layer/0/shape", _float),
    "weight-float": ("dense", "layer/1/weight", lambda v: np.asarray(v, dtype=np.float32)),
    "bias-float": ("dense", "layer/1/bias", _float),
    "padding-one-value": ("conv", "layer/1/padding", lambda v: np.asarray(v)[:1]),
    "stride-scalar": ("conv", "layer/1/stride", lambda v: np.asarray(v)[0]),
    "groups-float": ("conv", "layer/1/groups", _float),
    "conv-shape-float": ("conv", "layer/1/shape", _float),
    "conv-input-shape-float": ("conv", "layer/0/shape", _float),
    "conv-vThMant-float": ("conv", "layer/1/neuron/vThMant", _float),
}
# netx never reads refDelay, and lava-dl's own files hold float weights and biases: Lava reads
# these mutated files as they are
AS_THEY_ARE = {"refDelay-float", "weight-float", "bias-float"}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_a_mutation_the_reader_accepts_runs_on_lava_as_the_emulator_reads_it(name, tmp_path):
    kind, key, change = MUTATIONS[name]
    rng = np.random.default_rng(3)
    net = _dense(rng) if kind == "dense" else _conv(rng)
    path = tmp_path / "mutated.net"
    write_netx(net, path)
    with h5py.File(path, "r+") as f:
        value = change(f[key][()])
        del f[key]
        f[key] = value
    back, _ = read_netx(path)                         # accepted: the same network
    assert [layer.shape for layer in back.layers] == [layer.shape for layer in net.layers]
    spikes = (rng.random((3, 8, net.input_size)) < 0.4).astype(np.uint8)
    lava = simulate_lava(path, spikes, progress=False)
    read = lava.info["lava_read"]
    assert read == "original" if name in AS_THEY_ARE else read.startswith("canonical copy"), read
    emulated = simulate_emulator(path, spikes)
    for a, b in zip(lava.layers, emulated.layers):
        np.testing.assert_array_equal(a, b)
    assert lava.layers[-1].any(), "the output layer never fired: the comparison proves little"
