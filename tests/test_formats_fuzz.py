"""Mutated netx and NIR files: every read either refuses with one line naming the file, or gives
a network that is exactly what the file says (no truncated fraction, no lost layer) and runs.

Each example starts from a valid small file written by our own writers and changes one thing:
a dataset deleted, retyped, reshaped or set to NaN/inf/huge/negative/fractional values, a group
(layer, neuron, node, metadata) deleted, or the metadata corrupted.
"""
import json
import tempfile
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.errors import UserError
from neurodeploy.graph import lower_nir, read_nir, to_nir, write_nir
from neurodeploy.netx import read_netx, write_netx
from neurodeploy.netx.metadata import architecture
from neurodeploy.neurons import Conv, CubaParams, IntLayer, IntNetwork

pytestmark = pytest.mark.fuzz

ACTIONS = ("delete", "nan", "inf", "-inf", "huge", "negative", "fraction", "bool", "text",
           "float", "int", "empty", "flatten", "add_axis", "first")
BAD_METADATA = ("{not json", "[1, 2]", "5", '"text"', "null", '{"timesteps": -1}',
                '{"timesteps": "16"}', '{"timesteps": true}', '{"encoding": {"name": "poisson"}}',
                '{"encoding": "rate"}', '{"encoding": {"name": "thermometer"}}',
                '{"dataset": {"name": 3}}', '{"dataset": {"name": "digits", "split_seed": 0.5}}',
                '{"readout": "yes"}', '{"quantization": {"layers": {"fc0": {"iDecay": "x"}}}}',
                '{"architecture": {"layers": 3}}', '{"timesteps": NaN}')
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def networks(draw) -> IntNetwork:
    """A small valid network: dense 2-3 layers, or a conv layer followed by a dense one."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    params = lambda: CubaParams(int(rng.integers(0, 4097)), int(rng.integers(0, 4097)),  # noqa
                                int(rng.integers(1, 300)))
    weights = lambda *shape: rng.integers(-128, 128, shape) * 2 | 2     # no zero rows  # noqa
    if draw(st.booleans()):
        conv = Conv((2, 5, 5), stride=(2, 2), padding=(1, 1))
        first = IntLayer(weights(3, 2, 3, 3), params(), name="conv0", conv=conv)
        return IntNetwork((2, 5, 5), (first, IntLayer(weights(3, first.size), params(),
                                                      name="fc1")))
    sizes = [draw(st.integers(2, 6)) for _ in range(draw(st.integers(3, 4)))]
    return IntNetwork(sizes[0], tuple(IntLayer(weights(b, a), params(), name=f"fc{i}")
                                      for i, (a, b) in enumerate(zip(sizes, sizes[1:]))))


def _mutated(value, action: str):
    v = np.asarray(value)
    num = v.astype(np.float64) if v.dtype.kind in "biuf" else np.ones(max(v.size, 1))
    return {"nan": np.full_like(num, np.nan), "inf": np.full_like(num, np.inf),
            "-inf": np.full_like(num, -np.inf), "huge": num * 0 + 1e30, "negative": -num - 1,
            "fraction": num + 0.5, "bool": num > 0, "text": np.bytes_(b"x"), "float": num,
            "int": np.round(num).astype(np.int64), "empty": np.zeros(0), "flatten": v.reshape(-1),
            "add_axis": v[None], "first": v.reshape(-1)[:1] if v.size else v}[action]


def _mutate(path: Path, data) -> str:
    """Apply one drawn mutation to the HDF5 file at `path`; returns what was done."""
    with h5py.File(path, "r+") as f:
        datasets, groups = [], []
        f.visititems(lambda name, obj: (datasets if isinstance(obj, h5py.Dataset)
                                        else groups).append(name))
        # values that become numbers (weights, decays, taus, shapes) are drawn most often
        values = [n for n in datasets if f[n].dtype.kind in "biuf" and "edges" not in n]
        kind = data.draw(st.sampled_from(["value", "value", "value", "dataset", "group",
                                          "metadata"]))
        if kind == "group":
            name = data.draw(st.sampled_from(sorted(groups)))
            del f[name]
            return f"delete group {name}"
        if kind == "metadata":
            text = data.draw(st.sampled_from(BAD_METADATA))
            if "node/metadata/neurodeploy" in f:            # NIR keeps it as a dataset
                del f["node/metadata/neurodeploy"]
                f["node/metadata/neurodeploy"] = text
            else:
                f.attrs["neurodeploy"] = np.bytes_(text.encode()) if data.draw(st.booleans()) \
                    else text
            return f"metadata {text}"
        name = data.draw(st.sampled_from(sorted(values if kind == "value" else datasets)))
        action = data.draw(st.sampled_from(ACTIONS))
        value = f[name][()]
        del f[name]
        if action != "delete":
            f[name] = _mutated(value, action)
        return f"{action} {name}"


def _refusal_is_one_line(error: UserError, path: Path):
    message = str(error)
    assert "\n" not in message and str(path) in message, message


def _runs(net: IntNetwork):
    spikes = (np.random.default_rng(0).random((4, 5, net.input_size)) < 0.5).astype(np.uint8)
    record = simulate_torch(net, spikes)
    assert [layer.shape for layer in record.layers] == [(4, 5, layer.size) for layer in net.layers]
    if record.readout is not None:
        assert np.isfinite(record.readout).all()


def _netx_values(path: Path) -> list[dict]:
    """The raw numbers of each neuron layer of a netx file, as stored."""
    out = []
    with h5py.File(path) as f:
        for i in range(len(f["layer"])):
            g = f[f"layer/{i}"]
            if "neuron" in g:
                out.append({k: np.asarray(g[k][()], np.float64) for k in ("weight",)} |
                           {k: np.asarray(g[f"neuron/{k}"][()], np.float64)
                            for k in ("iDecay", "vDecay", "vThMant")})
    return out


@SETTINGS
@given(net=networks(), data=st.data())
def test_mutated_netx_is_refused_in_one_line_or_read_exactly(net, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "n.net"
        write_netx(net, path, {"timesteps": 5, "encoding": {"name": "rate", "timesteps": 5},
                               "dataset": {"name": "digits", "split_seed": 0}})
        done = _mutate(path, data)
        try:
            back, meta = read_netx(path)
        except UserError as e:
            _refusal_is_one_line(e, path)
            return
        assert architecture(back) == architecture(net), done     # no layer lost or reshaped
        for layer, raw in zip(back.layers, _netx_values(path)):  # nothing truncated or cast
            np.testing.assert_array_equal(layer.weight, raw["weight"].reshape(layer.weight.shape))
            p = layer.params
            assert [p.i_decay, p.v_decay, p.threshold] == [
                float(raw[k].reshape(-1)[0]) for k in ("iDecay", "vDecay", "vThMant")], done
        assert isinstance(meta, dict)
        _runs(back)


@SETTINGS
@given(net=networks(), data=st.data())
def test_mutated_nir_is_refused_in_one_line_or_lowered_exactly(net, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.nir"
        write_nir(to_nir(net, {"timesteps": 5, "encoding": {"name": "rate", "timesteps": 5}}),
                  path)
        done = _mutate(path, data)
        try:
            graph = read_nir(path)
            back, report = lower_nir(graph, str(path))
        except UserError as e:
            _refusal_is_one_line(e, path)
            return
        if not report:        # lowered as ours: exactly the integers in the file, every layer
            assert architecture(back) == architecture(net), done
            synapses = [n for n in graph.nodes.values() if isinstance(n, (nir.Affine, nir.Conv2d))]
            for a, b, node in zip(back.layers, net.layers, synapses):
                np.testing.assert_array_equal(a.weight, np.asarray(node.weight), done)
                assert a.params == b.params or "lif" in done, done   # a changed lif changes them
        else:                 # lost our metadata entirely: a foreign float graph, re-quantized
            assert "neurodeploy" not in (graph.metadata or {}), done
        _runs(back)


ISSUE_CASES = [("layer/1/neuron/iDecay", "inf"), ("layer/1/neuron/vDecay", "nan"),
               ("layer/1/neuron/iDecay", "fraction"), ("layer/2/weight", "fraction"),
               ("layer/1/weight", "bool"), ("layer/2/neuron/vThMant", "delete"),
               ("layer/1/shape", "delete"), ("layer/1/type", "delete"),
               ("layer/1/weight", "delete"), ("layer/1/weight", "first")]


@pytest.mark.parametrize("dataset, action", ISSUE_CASES)
def test_mutations_reported_in_the_issue_are_refused(dataset, action, tmp_path):
    net = IntNetwork(4, (IntLayer(np.full((3, 4), 6), CubaParams(1024, 256, 10), name="fc0"),
                         IntLayer(np.full((2, 3), 8), CubaParams(1024, 256, 10), name="fc1")))
    write_netx(net, tmp_path / "n.net")
    with h5py.File(tmp_path / "n.net", "r+") as f:
        value = f[dataset][()]
        del f[dataset]
        if action != "delete":
            f[dataset] = _mutated(value, action)
    with pytest.raises(UserError) as e:
        read_netx(tmp_path / "n.net")
    _refusal_is_one_line(e.value, tmp_path / "n.net")


def _old_format_copy(name: str, tmp_path: Path) -> Path:
    """A committed export as files written before the architecture field existed."""
    path = tmp_path / f"{name}.net"
    path.write_bytes((Path(__file__).parent.parent / "export" / name / "network.net").read_bytes())
    with h5py.File(path, "r+") as f:
        meta = json.loads(f.attrs["neurodeploy"])
        meta.pop("architecture", None)
        f.attrs["neurodeploy"] = json.dumps(meta)
    return path


def test_committed_exports_still_load(tmp_path):
    """The committed exports load, and so do files written before the architecture field
    existed: those are checked against the per-layer constants their metadata lists."""
    for name in ("digits", "fmnist_conv"):
        export = Path(__file__).parent.parent / "export" / name
        net, meta = read_netx(export / "network.net")
        assert len(net.layers) == len(meta["quantization"]["layers"])
        old, old_meta = read_netx(_old_format_copy(name, tmp_path))
        assert "architecture" not in old_meta and architecture(old) == architecture(net)
        ours, _ = lower_nir(read_nir(export / "student.nir"), str(export / "student.nir"))
        assert architecture(ours) == architecture(net)


def test_deleted_output_layer_is_refused_even_in_old_files(tmp_path):
    path = _old_format_copy("digits", tmp_path)
    with h5py.File(path, "r+") as f:
        del f[f"layer/{len(f['layer']) - 1}"]
    try:
        read_netx(path)
    except UserError as e:
        assert "layer 2 missing: the metadata lists 2 layers, the file has 1" in str(e)
    else:
        raise AssertionError("a network without its output layer was accepted")


def test_our_graph_without_units_is_refused_not_requantized(tmp_path):
    net = IntNetwork(4, (IntLayer(np.full((3, 4), 6), CubaParams(1024, 256, 10), name="fc0"),))
    write_nir(to_nir(net, {"timesteps": 4}), tmp_path / "s.nir")
    with h5py.File(tmp_path / "s.nir", "r+") as f:
        del f["node/metadata/units"]
    try:
        lower_nir(read_nir(tmp_path / "s.nir"), str(tmp_path / "s.nir"))
    except UserError as e:
        assert "metadata/units" in str(e) and "s.nir" in str(e)
    else:
        raise AssertionError("our graph without units was silently re-quantized")


def test_lava_dl_float_weights_holding_integers_are_accepted(tmp_path):
    """lava-dl's exporter writes weights as float32; exact integers in floats are fine."""
    net = IntNetwork(4, (IntLayer(np.full((3, 4), 6), CubaParams(1024, 256, 10), name="fc0"),))
    write_netx(net, tmp_path / "n.net")
    with h5py.File(tmp_path / "n.net", "r+") as f:
        w = f["layer/1/weight"][()]
        del f["layer/1/weight"]
        f["layer/1/weight"] = w.astype(np.float32)
        f.attrs["neurodeploy"] = json.dumps({})
    back, _ = read_netx(tmp_path / "n.net")
    np.testing.assert_array_equal(back.layers[0].weight, net.layers[0].weight)
