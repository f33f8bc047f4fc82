"""A deployed network's metadata, one schema (neurodeploy/netx/metadata.py): every file written
before still reads as it did, T is stored once (older files' copies of it are accepted when they
agree and refused when they do not), its bound is the same wherever T is given, and what export
builds is what the shipped exports hold."""
import ast
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from neurodeploy.energy.report_file import PricedReport
from neurodeploy.errors import UserError
from neurodeploy.graph import graph_metadata, lower_nir, read_nir, to_nir, write_nir
from neurodeploy.netx import read_netx, write_netx
from neurodeploy.netx.metadata import (MAX_TIMESTEPS, Metadata, check_metadata, execution,
                                       input_encoding, network_metadata)
from neurodeploy.recipe import load_recipe, recipe_from_dict

ROOT = Path(__file__).resolve().parent.parent
EXPORTS = [ROOT / "export" / name for name in ("digits", "fmnist_conv")]
BUILT = ("recipe", "timesteps", "encoding", "dataset", "quantization")   # what export builds


@pytest.mark.parametrize("folder", EXPORTS, ids=lambda p: p.name)
def test_shipped_exports_read_as_written(folder):
    """network.net, student.nir and manifest.json of the shipped exports carry T three times
    (timesteps, encoding.timesteps, execution.reset_interval); all agree, so all are read."""
    manifest = json.loads((folder / "manifest.json").read_text())
    net, meta = read_netx(folder / "network.net")
    graph = read_nir(folder / "student.nir")
    for held in (meta, graph_metadata(graph, "student.nir")):
        assert {k: held[k] for k in BUILT} == {k: manifest[k] for k in BUILT}
    lower_nir(graph, str(folder / "student.nir"))
    assert check_metadata(manifest, "manifest.json") is manifest
    assert manifest["encoding"]["timesteps"] == manifest["execution"]["reset_interval"] == \
        manifest["timesteps"]


@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "data" / "lava_dl").glob("*.net")),
                         ids=lambda p: p.name)
def test_other_tools_netx_files_have_no_metadata_and_still_read(path):
    from neurodeploy.netx import is_sdnn, read_sdnn
    if is_sdnn(path):
        assert read_sdnn(path).layers
    else:
        assert read_netx(path)[1] == {}


@pytest.mark.parametrize("folder", EXPORTS, ids=lambda p: p.name)
def test_export_builds_what_the_shipped_exports_hold(folder):
    """`network_metadata` and `execution` give, key for key and in order, the metadata and the
    manifest's `execution` that the shipped exports were written with."""
    manifest = json.loads((folder / "manifest.json").read_text())
    net, _ = read_netx(folder / "network.net")
    recipe = load_recipe("digits") if folder.name == "digits" else recipe_from_dict(
        {"name": manifest["recipe"], "dataset": manifest["dataset"],
         "encoding": manifest["encoding"]}, "fmnist_conv")
    built = network_metadata(recipe, net)
    assert json.dumps(built) == json.dumps({k: manifest[k] for k in BUILT})
    assert execution(built, net) == manifest["execution"]


def test_a_users_dataset_file_is_recorded_by_path_and_hash(net):
    recipe = recipe_from_dict({"name": "mine", "encoding": {"timesteps": 8}}, "mine")
    built = network_metadata(recipe, net, {"dataset": {"file": "/d.npz", "sha256": "ab",
                                                       "samples": {"test": 3}}})
    assert built["dataset"] == {"name": "digits", "split_seed": 0, "file": "/d.npz",
                                "sha256": "ab"}
    assert built["timesteps"] == built["encoding"]["timesteps"] == 8   # derived, for old readers


@pytest.mark.parametrize("meta, field", [
    ({"timesteps": 16, "encoding": {"name": "rate", "timesteps": 8}}, "encoding.timesteps"),
    ({"timesteps": 4, "encoding": {"name": "thermometer", "levels": 3, "timesteps": 5}},
     "encoding.timesteps"),
    ({"timesteps": 16, "execution": {"reset_interval": 15}}, "execution.reset_interval"),
    ({"encoding": {"name": "rate", "timesteps": 0}}, "encoding.timesteps"),
    ({"timesteps": 16, "encoding": {"name": "rate", "timesteps": True}}, "encoding.timesteps"),
])
def test_copies_of_t_that_disagree_are_refused_in_one_line(meta, field, net, tmp_path):
    with pytest.raises(UserError) as e:
        check_metadata(meta, "manifest.json")
    assert field in str(e.value) and "\n" not in str(e.value)
    write_netx(net, tmp_path / "n.net", meta)
    write_nir(to_nir(net, meta), tmp_path / "s.nir")
    for path in ("n.net", "s.nir"):
        with pytest.raises(UserError) as e:
            read_netx(tmp_path / path) if path == "n.net" else \
                lower_nir(read_nir(tmp_path / path), str(tmp_path / path))
        message = str(e.value)
        assert str(tmp_path / path) in message and field in message and "\n" not in message
        assert "re-export the network with `neurodeploy export`" in message


def test_copies_that_agree_pass_and_the_file_reads_as_written(net, tmp_path):
    meta = {"timesteps": 6, "encoding": {"name": "thermometer", "timesteps": 6, "levels": 2},
            "execution": {"reset_interval": 6}, "newer": {"field": 1}}
    write_netx(net, tmp_path / "n.net", meta)
    back = read_netx(tmp_path / "n.net")[1]
    assert {k: v for k, v in back.items() if k != "architecture"} == meta


def test_inputs_are_encoded_with_t_from_its_one_place():
    """`--timesteps` replaces `timesteps`; a stale copy under encoding is not read."""
    meta = {"timesteps": 8, "encoding": {"name": "thermometer", "timesteps": 4, "levels": 3}}
    assert input_encoding(meta) == {"name": "thermometer", "timesteps": 8, "levels": 3}
    assert input_encoding({"timesteps": 5}) == {"name": "rate", "timesteps": 5}
    with pytest.raises(UserError, match="no 'name'"):
        input_encoding({"timesteps": 5, "encoding": {"timesteps": 5}})


@pytest.mark.parametrize("t", [0, 1, MAX_TIMESTEPS, MAX_TIMESTEPS + 1])
def test_the_timestep_bound_is_the_same_wherever_t_is_given(t):
    """Recipes (encoding and distill), network metadata and priced reports share one bound."""
    ok = 1 <= t <= MAX_TIMESTEPS
    checks = [
        lambda: recipe_from_dict({"name": "x", "encoding": {"timesteps": t}}, "recipe"),
        lambda: recipe_from_dict({"name": "x", "encoding": {"timesteps": 1, "name": "thermometer"},
                                  "distill": {"timesteps": t}}, "recipe"),
        lambda: check_metadata({"timesteps": t}, "n.net"),
        lambda: check_metadata({"encoding": {"name": "rate", "timesteps": t}}, "n.net"),
        lambda: PricedReport.model_validate({
            "timesteps": t, "layers": [{"name": "fc0", "neurons": 1, "synapses": 1}],
            "counts": {"layers": ["fc0"], **{k: [[0.0] * t] for k in (
                "synaptic_ops", "neuron_active", "neuron_inactive", "spikes")}},
            "accuracy_by_timestep": None, "ann_baselines": []}),
    ]
    for check in checks:
        if ok:
            check()
        else:
            with pytest.raises((UserError, ValidationError)):
                check()


def test_metadata_model_holds_t_once():
    held = Metadata.model_validate({"timesteps": 4, "encoding": {"name": "rate", "timesteps": 4},
                                    "execution": {"reset_interval": 4, "netx_reset_offset": 1}})
    assert held.timesteps == 4 and "timesteps" not in held.encoding.model_dump()
    assert held.model_extra["execution"] == {"netx_reset_offset": 1}


def test_netx_modules_import_no_private_names_and_form_no_cycle():
    """The netx readers share field helpers through fields.py, not each other's internals."""
    folder = ROOT / "neurodeploy" / "netx"
    graph = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("neurodeploy"):
                assert not [a.name for a in node.names if a.name.startswith("_")], path.name
                if node.module.startswith("neurodeploy.netx."):
                    deps.add(node.module.rsplit(".", 1)[1])
                elif node.module == "neurodeploy.netx":
                    deps |= {a.name for a in node.names if (folder / f"{a.name}.py").exists()}
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and (folder / f"{node.value.id}.py").exists():
                assert not node.attr.startswith("_"), f"{path.name}: {node.value.id}.{node.attr}"
        graph[path.stem] = deps - {path.stem}
    graph.pop("__init__")

    def visit(name, seen):
        assert name not in seen, f"import cycle through {' -> '.join([*seen, name])}"
        for dep in graph.get(name, ()):
            visit(dep, [*seen, name])
    for name in graph:
        visit(name, [])
