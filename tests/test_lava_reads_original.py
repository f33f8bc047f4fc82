"""Lava is the referee of our reader: it reads the user's own file, and a canonical copy only
where our reader normalised an encoding that lava-dl 0.6.0 cannot build (backends/lava.py,
`lava_reads`). Every file lava-dl publishes or its slayer exporter writes must reach Lava as it
is, or the parity tests on them would test our writer against our reader instead."""
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.backends.lava import lava_file, lava_reads, simulate_lava
from neurodeploy.backends.lava_sdnn import simulate_lava_sdnn
from neurodeploy.netx import read_netx
from neurodeploy.netx.sdnn import is_sdnn, read_sdnn, write_sdnn
from slayer_export import export
from test_netx_coverage import P, slayer
from test_sdnn import slayer_sdnn
from test_slayer_files import slayer_file

pytestmark = pytest.mark.lava

DATA = Path(__file__).parent / "data" / "lava_dl"


def _read(path, folder, input_shape=None) -> str:
    """What the backends decide for `path`: its canonical copy written as they write it."""
    if is_sdnn(path):
        write_sdnn(read_sdnn(path), folder / "network.net")
        return lava_reads(path, folder / "network.net")[1]
    net, metadata = read_netx(path, input_shape)
    return lava_reads(path, lava_file(net, metadata, path, folder))[1]


@pytest.mark.parametrize("path", sorted(DATA.glob("*.net")), ids=lambda p: p.stem)
def test_lava_dl_published_files_reach_lava_as_they_are(path, tmp_path):
    assert _read(path, tmp_path) == "original"


def _slayer_files(folder):
    s = slayer()
    for conv, shape in ((False, None), (True, (2, 8, 8))):
        slayer_file(folder / f"conv{conv}.net", conv)
        yield folder / f"conv{conv}.net", shape
    yield slayer_sdnn(folder / "sd_dense.net", conv=False, bias=True), None
    yield slayer_sdnn(folder / "sd_conv.net", conv=True), None
    torch.manual_seed(0)
    yield export(folder / "delays.net", [s.block.cuba.Input(P, weight=1.5, bias=0.25),
                                         s.block.cuba.Dense(P, 20, 16, delay=True),
                                         s.block.cuba.Dense(P, 16, 5)],
                 torch.zeros(1, 20, 4), {1: torch.arange(16.0) % 5 + 0.5}), None
    yield export(folder / "recurrent.net", [s.block.cuba.Recurrent(P, 12, 10),
                                            s.block.cuba.Dense(P, 10, 4)],
                 torch.zeros(1, 12, 4)), None
    yield export(folder / "conv_input.net", [s.block.cuba.Input(P, weight=2.0, bias=-0.125),
                                             s.block.cuba.Conv(P, 2, 3, 3, padding=1, stride=2),
                                             s.block.cuba.Flatten(),
                                             s.block.cuba.Dense(P, 3 * 4 * 4, 4)],
                 torch.zeros(1, 2, 8, 8, 4)), None


def test_slayer_exports_reach_lava_as_they_are(tmp_path):
    for path, shape in _slayer_files(tmp_path):
        folder = tmp_path / path.stem
        folder.mkdir()
        assert (path.name, _read(path, folder, shape)) == (path.name, "original")


def test_the_record_says_lava_read_the_original(tmp_path):
    slayer_file(tmp_path / "s.net", conv=False)
    spikes = (np.random.default_rng(0).random((2, 6, 20)) < 0.4).astype(np.uint8)
    assert simulate_lava(tmp_path / "s.net", spikes, progress=False).info["lava_read"] \
        == "original"
    x = np.random.default_rng(0).integers(0, 64, size=(1, 4, 12))
    record = simulate_lava_sdnn(slayer_sdnn(tmp_path / "sd.net", conv=False), x)
    assert record.info["lava_read"] == "original"
