"""Sparse synapses (netx's `Network(..., sparse_fc_layer=True)`: dense layers built as Lava
Sparse synapses, what a pruned network maps to): the `lava-sparse` backend runs a pruned
network exactly as Lava's Dense build and the exact mode do, with delays, recurrence,
resonate-and-fire layers and sigma-delta networks too; inspect says which layers are pruned and
by how much; the Loihi 2 estimate stores a pruned layer's synapses dense or sparse."""
import dataclasses
import json

import h5py
import numpy as np
import pytest
import torch

from neurodeploy.backends.lava import simulate_lava
from neurodeploy.backends.lava_sdnn import simulate_lava_sdnn
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.cli import main
from neurodeploy.backends.lava_runtime import import_lava
from neurodeploy.energy import layer_table, load_preset, price, resource_estimate
from neurodeploy.energy.counting import KINDS
from neurodeploy.netx import read_netx, read_sdnn, write_netx
from neurodeploy.neurons.sigma_delta import run_stream
from neurodeploy.parity import message_mismatches
from slayer_export import export
from test_resonate import DATA as RF_DATA, held_out
from test_sdnn_delays import delayed_sdnn


def magnitude_pruned(path, fractions):
    """export/digits (64-256-10, trained) with the smallest |weights| of each layer zeroed."""
    net, meta = read_netx("export/digits/network.net")
    layers = []
    for layer, fraction in zip(net.layers, fractions):
        w = layer.weight.copy()
        w.flat[np.argsort(np.abs(w), axis=None, kind="stable")[:round(fraction * w.size)]] = 0
        layers.append(dataclasses.replace(layer, weight=w))
    pruned = dataclasses.replace(net, layers=tuple(layers))
    write_netx(pruned, path, {k: v for k, v in meta.items() if k != "architecture"})
    return pruned


@pytest.mark.lava
@pytest.mark.slow
def test_a_pruned_network_runs_on_lava_sparse_as_dense_and_exact(tmp_path, capsys):
    path = tmp_path / "pruned.net"
    net = magnitude_pruned(path, (0.7, 0.5))
    assert [round(float((layer.weight == 0).mean()), 2) for layer in net.layers] == [0.7, 0.5]
    code = main(["parity", str(path), "--backends", "torch,lava,lava-sparse", "--samples", "60",
                 "--out", str(tmp_path / "p")])
    assert code == 0, capsys.readouterr()
    result = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert result["spike_mismatches"] == 0 and result["readout_voltage_mismatches"] == 0
    assert len(result["comparisons"]) == 2 and result["samples"] == 60
    assert "lava-sparse" in result["accuracy"]
    assert min(result["accuracy"].values()) > 0.8      # pruned, it still reads digits


@pytest.mark.lava
def test_sparse_with_delays_recurrence_rf_and_graded_input(tmp_path):
    import_lava()
    from lava.lib.dl import slayer
    p = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03,
         "requires_grad": False}
    cuba = slayer.block.cuba
    torch.manual_seed(0)
    files = {"delay": export(tmp_path / "d.net", [cuba.Dense(p, 20, 16, weight_scale=2,
                                                             delay=True),
                                                  cuba.Dense(p, 16, 5, weight_scale=2)],
                             torch.zeros(1, 20, 4), {0: torch.arange(16.) % 5}),
             "recurrent": export(tmp_path / "r.net", [cuba.Recurrent(p, 20, 16, weight_scale=2),
                                                      cuba.Dense(p, 16, 5, weight_scale=2)],
                                 torch.zeros(1, 20, 4))}
    rng = np.random.default_rng(1)
    for name, path in files.items():
        net, _ = read_netx(path)
        w = net.layers[0].weight
        assert (w == 0).mean() < 0.5
        pruned = dataclasses.replace(net, layers=(dataclasses.replace(
            net.layers[0], weight=np.where(rng.random(w.shape) < 0.7, 0, w)),
            *net.layers[1:]))
        write_netx(pruned, path)
        x = (rng.random((6, 12, 20)) < 0.5).astype(np.uint8)
        sparse = simulate_lava(path, x, progress=False, sparse_synapses=True)
        assert sparse.info["sparse_fc_layer"] and sparse.backend == "lava-sparse"
        assert "Sparse synapses" in sparse.label
        for a, b in zip(sparse.layers, simulate_torch(pruned, x).layers):
            assert a.any(), name
            np.testing.assert_array_equal(a, b, err_msg=name)
    # graded input events through Sparse (netx's input_message_bits)
    x = rng.integers(0, 4, (4, 12, 20)).astype(np.int32)
    sparse = simulate_lava(files["delay"], x, progress=False, sparse_synapses=True,
                           input_bits=2)
    for a, b in zip(sparse.layers, simulate_torch(read_netx(files["delay"])[0], x).layers):
        np.testing.assert_array_equal(a, b)
    # a resonate-and-fire network: netx's ComplexDense takes Sparse real and imaginary synapses
    rf = RF_DATA / "rf_iz_digits.net"
    x = held_out(10)
    sparse = simulate_lava(rf, x, progress=False, sparse_synapses=True)
    for a, b in zip(sparse.layers, simulate_torch(read_netx(rf)[0], x).layers):
        assert a.any()
        np.testing.assert_array_equal(a, b)


@pytest.mark.lava
def test_a_pruned_sigma_delta_network_on_lava_sparse(tmp_path):
    path = delayed_sdnn(tmp_path / "sd.net")
    rng = np.random.default_rng(0)
    with h5py.File(path, "a") as f:           # 70% of the delayed layers' weights pruned
        for i in (1, 2):
            w = f[f"layer/{i}/weight"]
            w[...] = np.where(rng.random(w.shape) < 0.7, 0, w[()])
    net = read_sdnn(path)
    x = rng.integers(0, 256, size=(2, 40, 12))
    lava = simulate_lava_sdnn(path, x, sparse_synapses=True)
    assert lava.info["sparse_fc_layer"]
    assert message_mismatches(lava.layers, run_stream(net, x))["total"] == 0


def test_inspect_says_which_layers_are_pruned_and_both_storages(tmp_path, capsys):
    path = tmp_path / "pruned.net"
    net = magnitude_pruned(path, (0.7, 0.0))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    kept = int((net.layers[0].weight != 0).sum())
    assert kept == 16384 - round(0.7 * 16384)
    assert f"pruned: fc0: 70% of weights zero: 16384 synapses stored dense, {kept} sparse " \
           "(--backend lava-sparse)" in out
    assert f"storing {kept + int((net.layers[1].weight != 0).sum())} of 18944 synapses" in out
    assert "pruned: fc1" not in out and "Loihi 2 (sparse synapses, netx sparse_fc_layer)" in out
    dense, sparse = layer_table(net), layer_table(net, sparse=True)
    assert "stored_synapses" not in dense[0] and sparse[0]["stored_synapses"] == kept
    assert sparse[1]["stored_synapses"] == sparse[1]["nonzero_synapses"]
    # the compiler mapping stores words: pruning 70% of fc0 frees synaptic memory
    words = [resource_estimate(t, "compiler")["layers"][0]["synapses_per_core"]
             for t in (dense, sparse)]
    assert words == [16384, kept]
    assert resource_estimate(sparse)["synapse_storage"] == "sparse"
    assert "no packing" in resource_estimate(sparse)["storage_source"]
    assert main(["inspect", "export/digits/network.net"]) == 0
    assert "pruned" not in capsys.readouterr().out


@pytest.mark.lava
def test_simulate_on_lava_sparse_prices_sparse_storage(tmp_path):
    path = tmp_path / "pruned.net"
    magnitude_pruned(path, (0.7, 0.5))
    assert main(["simulate", str(path), "--backend", "lava-sparse", "--samples", "5",
                 "--preset", "loihi1-sanafe", "--out", str(tmp_path / "s")]) == 0
    result = json.loads((tmp_path / "s" / "simulate.json").read_text())
    assert [row["stored_synapses"] for row in result["layers"]] == \
        [row["nonzero_synapses"] for row in result["layers"]]
    assert result["resources"]["synapse_storage"] == "sparse"
    # SANA-FE's sparse synapse figure (33.6 pJ, 4.7 ns a spike) prices the sparse layers
    assert result["energy"]["sparse_synaptic_op"] == [33.6, 4.7]
    assert "33.6 pJ sparse" in (tmp_path / "s" / "report.html").read_text()
    counts = {k: result["counts"][k] for k in KINDS}
    dense = [{k: v for k, v in row.items() if k != "stored_synapses"} for row in result["layers"]]
    priced = [price(counts, rows, load_preset("loihi1-sanafe"))["energy"]["dynamic_pj"]
              for rows in (result["layers"], dense)]
    ops = sum(map(sum, counts["synaptic_ops"]))
    assert priced[0] - priced[1] == pytest.approx(ops * (33.6 - 35.5))
    assert main(["energy", str(tmp_path / "s" / "simulate.json"), "--preset",
                 "loihi1-sanafe"]) == 0
