"""Whole test sets: resumable chunks, shards and merging, input files, the parity verb."""
import json

import numpy as np
import pytest

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.backends.shards import merge, parse_shard, run_chunks, shard_range
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.cli import main
from neurodeploy.errors import UserError
from neurodeploy.netx import write_netx
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork


@pytest.fixture
def net():
    rng = np.random.default_rng(0)
    return IntNetwork(6, (IntLayer(rng.integers(-128, 128, (5, 6)) * 2, CubaParams(900, 300, 60),
                                   name="fc0"),
                          IntLayer(rng.integers(-128, 128, (3, 5)) * 2, CubaParams(900, 300, 60),
                                   name="fc1")))


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    return (rng.random((23, 5, 6)) < 0.5).astype(np.uint8), rng.integers(0, 3, 23)


def test_shard_specs(capsys):
    assert parse_shard("1/4") == (1, 4) and shard_range(10, (3, 4)) == (7, 10)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(bad)


def test_chunks_resume_and_shards_merge(net, data, tmp_path):
    spikes, labels = data
    calls = []

    def sim(x, timeout_s=None):
        calls.append(len(x))
        return simulate_torch(net, x)

    whole = simulate_torch(net, spikes)
    for i in range(3):
        run_chunks(sim, spikes, labels, tmp_path / f"s{i}", chunk=4, shard=(i, 3), progress=False)
    assert sum(calls) == 23
    calls.clear()
    record, indices = run_chunks(sim, spikes, labels, tmp_path / "s1", chunk=4, shard=(1, 3),
                                 progress=False)
    assert calls == [] and list(indices) == list(range(7, 15))   # resumed: nothing recomputed
    merged, idx, merged_labels = merge([tmp_path / f"s{i}" for i in range(3)])
    assert list(idx) == list(range(23)) and (merged_labels == labels).all()
    for a, b in zip(merged.layers, whole.layers):
        np.testing.assert_array_equal(a, b)
    # the folders `simulate --out` writes (their chunks/ inside) merge the same
    for i in range(3):
        (tmp_path / f"out{i}").mkdir()
        (tmp_path / f"s{i}").rename(tmp_path / f"out{i}" / "chunks")
    again, idx_again, _ = merge([tmp_path / f"out{i}" for i in range(3)])
    assert list(idx_again) == list(range(23)) and all(
        (a == b).all() for a, b in zip(again.layers, merged.layers))
    for i in range(3):
        (tmp_path / f"out{i}" / "chunks").rename(tmp_path / f"s{i}")
    with pytest.raises(UserError, match="nor in their chunks/"):
        merge([tmp_path / "out0"])
    with pytest.raises(UserError, match="gaps"):
        merge([tmp_path / "s0", tmp_path / "s2"])
    with pytest.raises(UserError, match="overlap"):
        merge([tmp_path / "s0", tmp_path / "s0", tmp_path / "s1", tmp_path / "s2"])


def test_a_failed_chunk_keeps_the_finished_ones(net, data, tmp_path):
    spikes, labels = data

    def dies_on_second(x, timeout_s=None):
        if (tmp_path / "c").exists() and len(list((tmp_path / "c").glob("*.npz"))) == 1:
            raise UserError("the Lava run exceeded its 1 s timeout")
        return simulate_torch(net, x)

    with pytest.raises(UserError, match="4 samples of this shard are kept in .*run the same"):
        run_chunks(dies_on_second, spikes, labels, tmp_path / "c", chunk=4, progress=False)
    assert len(list((tmp_path / "c").glob("chunk-*.npz"))) == 1


@pytest.mark.slow
def test_simulate_and_parity_verbs_on_an_npz(net, data, tmp_path, capsys):
    spikes, labels = data
    write_netx(net, tmp_path / "n.net")
    np.savez(tmp_path / "spikes.npz", x=spikes, y=labels)
    assert main(["simulate", str(tmp_path / "n.net"), "--backend", "emulator", "--data",
                 str(tmp_path / "spikes.npz"), "--out", str(tmp_path / "sim"), "-q"]) == 0
    result = json.loads((tmp_path / "sim" / "simulate.json").read_text())
    assert len(result["predictions"]) == 23
    assert result["predictions"] == simulate_torch(net, spikes).predictions.tolist()
    assert main(["parity", str(tmp_path / "n.net"), "--backends", "torch,emulator", "--data",
                 str(tmp_path / "spikes.npz"), "--out", str(tmp_path), "-q"]) == 0
    assert json.loads((tmp_path / "parity.json").read_text())["spike_mismatches"] == 0


@pytest.mark.parametrize("x, message", [
    (np.full((4, 7), 0.5, np.float32), "bad.npz: inputs have 7 channels per step, the network expects 6"),
    (np.full((4, 6), 3.0, np.float32), "analog inputs must lie in"),
    (np.full((4, 6), 2, np.int64), "x must be float intensities"),
])
def test_bad_inputs_are_user_errors(net, tmp_path, capsys, x, message):
    write_netx(net, tmp_path / "n.net")
    np.savez(tmp_path / "bad.npz", x=x, y=np.zeros(4, int))
    code = main(["simulate", str(tmp_path / "n.net"), "--backend", "emulator", "--data",
                 str(tmp_path / "bad.npz"), "--out", str(tmp_path), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_record_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    rec = SpikeRecord("x", rng.random((3, 4, 11)) < 0.5, [rng.random((3, 4, 9)) < 0.5], ["a"])
    rec.save(tmp_path / "r.npz")
    back, _ = SpikeRecord.load(tmp_path / "r.npz")
    assert (back.inputs == rec.inputs).all() and (back.layers[0] == rec.layers[0]).all()


def test_float_spike_trains_are_read_as_spikes_as_training_data_is(tmp_path):
    """--data holding 0/1 spike trains as float32 (what a torch pipeline saves) runs as the
    same spikes in uint8, as the training-data reader takes them, not as 64 x T analog
    channels to encode."""
    from pathlib import Path
    digits = Path(__file__).resolve().parent.parent / "export" / "digits" / "network.net"
    rng = np.random.default_rng(0)
    spikes, y = rng.random((12, 8, 64)) < 0.3, rng.integers(0, 10, 12)
    runs = {}
    for dtype in (np.uint8, np.float32):
        data = tmp_path / f"{np.dtype(dtype).name}.npz"
        np.savez(data, x=spikes.astype(dtype), y=y)
        out = tmp_path / np.dtype(dtype).name
        assert main(["simulate", str(digits), "--backend", "torch", "--data", str(data),
                     "--out", str(out), "-q"]) == 0
        runs[dtype] = json.loads((out / "simulate.json").read_text())
    assert runs[np.float32]["predictions"] == runs[np.uint8]["predictions"]
    assert runs[np.float32]["timesteps"] == 8
