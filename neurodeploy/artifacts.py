"""The files a deployment is made of: `export` writes student.nir, network.net and
manifest.json from a checkpoint; `deployable` opens a network file for a backend (a NIR graph
lowered on the fly, a netx file checked against its manifest); `inspect` describes any of them.

    checkpoint.pt   student (+ teacher) weights, the recipe and training history
    student.nir     the NIR graph (the boundary: everything downstream reads only this)
    network.net     netx HDF5 lowered from student.nir, integers only
    manifest.json   versions, hashes, quantization, timesteps, encoding, deployed accuracy
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Iterator

import nir
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.checkpoint import load_checkpoint
from neurodeploy.energy import storage_estimates
from neurodeploy.errors import UserError
from neurodeploy.files import file_digest, versions, writable_dir, write_json
from neurodeploy.graph import from_nir, lower_nir, read_nir, reset_assumption, to_nir, write_nir
from neurodeploy.graph.nir_io import graph_metadata
from neurodeploy.inputs import encoded_test_split
from neurodeploy.netx import read_network, write_netx
from neurodeploy.netx.metadata import (Metadata, check_metadata, execution, network_metadata,
                                       without_copies_of_t)
from neurodeploy.netx.write import check_deployable
from neurodeploy.neurons import IntNetwork
from neurodeploy.neurons.sigma_delta import SDNetwork, describe
from neurodeploy.report.summary import remove_reports
from neurodeploy.schema import Section, Timesteps, first_problem, written

_OPEN = ConfigDict(strict=True, extra="allow")


class NetworkSize(BaseModel):
    model_config = _OPEN
    sizes: list[int]
    neurons: int
    synapses: int                                 # non-zero weights


class Execution(BaseModel):
    """How to run network.net on netx as the Lava backend does (netx.metadata.execution)."""
    model_config = _OPEN
    reset_interval: Timesteps                     # a copy of `timesteps`, for netx's readers
    netx_reset_offset: int
    pipeline_delay_steps: int


class Manifest(Metadata):
    """manifest.json, as `export` and `tune` write it next to student.nir and network.net (the
    network's metadata, plus what the files are), and as `check_manifest` reads it back: only
    `files` is required of a manifest, the rest is checked where present."""
    versions: dict[str, str | None] = None        # files.versions()
    files: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]]   # name: sha256
    network: NetworkSize = None
    execution: Execution = None
    accuracy: Section = None                      # export: the deployed (exact) test accuracy
    training: Section | None = None               # export: how the checkpoint was trained
    source: Section = None                        # export_graph, tune: the foreign NIR graph
    quantization_report: list[Section] = None     # export_graph: what lowering rounded
    inputs: Section = None                        # tune: the spike trains it tuned on
    tune: Section = None                          # tune: split, losses, training, kept

    @model_validator(mode="before")
    @classmethod
    def _one_t(cls, data):
        """Refuse a copy of T as Metadata does, but keep the copies: the manifest writes them
        for whoever runs network.net on netx directly."""
        without_copies_of_t(data)
        return data


@contextlib.contextmanager
def deployable(network: str | Path, dt: float | None = None,
               input_shape: tuple[int, ...] | None = None, graph: nir.NIRGraph | None = None
               ) -> Iterator[tuple[Path, dict, list, IntNetwork | SDNetwork]]:
    """A netx file for `network`: the file itself for .net (of either kind: read_network);
    for .nir (ours or another tool's) the graph (`graph`: already read from it) lowered to
    Loihi integers in a temporary netx file. Yields (path, metadata, quantization report,
    the network as read)."""
    path = Path(network)
    if path.suffix != ".nir":
        net, meta = read_network(path, input_shape)
        check_manifest(path)
        yield path, meta, [], net
        return
    graph = read_nir(path) if graph is None else graph
    net, quantization = lower_nir(graph, str(path), dt)
    meta = graph_metadata(graph, str(path))
    check_deployable(net, str(path))     # named by the user's file, not the temporary one
    with tempfile.TemporaryDirectory(prefix="neurodeploy-") as tmp:
        lowered = Path(tmp) / "network.net"
        write_netx(net, lowered, meta)
        yield lowered, meta, quantization, net


def export(checkpoint: str | Path, out_dir: str | Path) -> dict:
    """Checkpoint -> student.nir -> (read back) -> network.net + manifest.json, with the
    deployed (exact) accuracy on the test split the recipe names."""
    student, recipe, ckpt = load_checkpoint(checkpoint)
    integer = student.to_integer()
    meta = network_metadata(recipe, integer, ckpt.get("provenance"))
    spikes, labels = encoded_test_split(meta)

    def accuracy(net: IntNetwork) -> dict:
        return {"split": "test", "samples": int(len(labels)),
                "deployed_exact": simulate_torch(net, spikes).accuracy(labels),
                "teacher": ckpt["metrics"]["teacher_test_accuracy"]}
    return write_deployment(integer, meta, out_dir,
                            {"training": (ckpt.get("provenance") or {}).get("training")},
                            accuracy)


def export_graph(graph: str | Path, out_dir: str | Path, timesteps: int,
                 dt: float | None = None) -> dict:
    """A foreign NIR graph, lowered as it is (untuned; `tune` recovers what rounding costs), as
    the same three files, with the source graph's sha256 and the quantization report."""
    source = Path(graph)
    net, quantization = lower_nir(read_nir(source), str(source), dt)
    meta = check_metadata({"timesteps": timesteps}, str(source))
    return write_deployment(net, meta, out_dir, {
        "source": {"file": str(source.resolve()), "sha256": file_digest(source), "tuned": False,
                   "reset": reset_assumption(source, str(source))},
        "quantization_report": quantization})


def write_deployment(integer: IntNetwork, meta: dict, out_dir: str | Path, extra: dict,
                     accuracy=None) -> dict:
    """student.nir -> (read back) -> network.net + manifest.json for an integer network.

    The three files are written as a set: built and hashed in a temporary directory, then
    renamed into place with the old manifest removed first and the new one last. A failed
    export never leaves a manifest that describes other files. `accuracy(net)`: the
    manifest's accuracy section for the network as read back."""
    out_dir = writable_dir(out_dir)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp:
        nir_path, net_path = Path(tmp) / "student.nir", Path(tmp) / "network.net"
        write_nir(to_nir(integer, meta), nir_path)
        graph = read_nir(nir_path)                # NIR is the boundary: lower what was written
        net = from_nir(graph, str(nir_path))
        write_netx(net, net_path, graph_metadata(graph, str(nir_path)))
        manifest = written(Manifest, {
            **meta,
            "versions": versions(),
            "files": {"student.nir": file_digest(nir_path), "network.net": file_digest(net_path)},
            "network": {"sizes": net.sizes, "neurons": sum(layer.size for layer in net.layers),
                        "synapses": int(sum((layer.weight != 0).sum() for layer in net.layers))},
            **extra,
            "execution": execution(meta, net),
            **({"accuracy": accuracy(net)} if accuracy is not None else {}),
        })
        write_json(Path(tmp) / "manifest.json", manifest)
        (out_dir / "manifest.json").unlink(missing_ok=True)   # never describes other files
        remove_reports(out_dir, manifest["files"]["network.net"])   # nor a report
        for name in manifest["files"]:                 # renames: the hashed bytes themselves
            os.replace(Path(tmp) / name, out_dir / name)
        os.replace(Path(tmp) / "manifest.json", out_dir / "manifest.json")
    return manifest


def check_manifest(network: Path) -> None:
    """Refuse a network whose own manifest.json (next to it) lists another hash for it: the
    manifest's accuracy would then describe a different network. A manifest.json of another
    tool (no `files` mapping) is none of our business; a damaged one of ours is refused."""
    path = network.parent / "manifest.json"
    if not path.is_file():
        return
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise UserError(f"{path}: not readable JSON ({type(e).__name__}) next to {network.name}; "
                        "export again, or move the network out of that directory") from None
    if not isinstance(manifest, dict) or "files" not in manifest:
        return
    files = manifest["files"]
    if isinstance(files, dict) and network.name not in files:
        return                   # the manifest describes other files, not this one
    listed = files.get(network.name) if isinstance(files, dict) else None
    if not isinstance(listed, str) or len(listed) != 64:
        raise UserError(f"{path}: field files.{network.name} is not a sha256 hex digest; the "
                        "manifest is damaged: export again")
    if listed != file_digest(network):
        raise UserError(f"{network}: its sha256 differs from the one {path} lists "
                        f"(field files.{network.name}); the two come from different exports: "
                        "export again, or move the network out of that directory")
    try:
        Manifest.model_validate(manifest)
    except ValidationError as e:
        field, what = first_problem(e, Manifest)
        raise UserError(f"{path}: {f'field {field}: ' if field else ''}{what}; the manifest is "
                        "damaged: export again") from None


def inspect(path: str | Path, dt: float | None = None) -> dict:
    """What a .nir, .net or checkpoint .pt holds: kind, metadata (recipe and metrics for a
    checkpoint; value ranges per NIR node), each layer's shape, weights, neuron constants and
    what netx adds (recurrence, delays, input neurons), what quantization cost (NIR) and the
    Loihi 2 resource estimate; a sigma-delta netx file, each layer as `describe` gives it."""
    path = Path(path)
    info, quantization = {"file": str(path)}, []
    if path.suffix == ".nir":
        graph = read_nir(path)
        net, quantization = lower_nir(graph, str(path), dt)
        nodes = {}
        for name, node in graph.nodes.items():
            arrays = {k: v for k, v in vars(node).items() if isinstance(v, np.ndarray)
                      and v.size > 1 and k not in ("input_type", "output_type")
                      and np.issubdtype(v.dtype, np.number)}
            nodes[name] = {"type": type(node).__name__,
                           "arrays": {k: {"shape": list(v.shape),
                                          "range": [float(v.min()), float(v.max())]}
                                      for k, v in arrays.items()}}
        info |= {"kind": "nir", "nodes": nodes, "edges": len(graph.edges),
                 "reset": reset_assumption(graph, str(path))}
    elif path.suffix == ".pt":
        student, recipe, ckpt = load_checkpoint(path)
        net = student.to_integer()
        info |= {"kind": "checkpoint", "recipe": recipe.to_dict(), "metrics": ckpt["metrics"],
                 "provenance": ckpt.get("provenance", {})}
    else:
        net, meta = read_network(path)
        if isinstance(net, SDNetwork):
            return info | {"kind": "sigma-delta", "layers": describe(net),
                           "warnings": list(net.notes), **storage_estimates(net)}
        info |= {"kind": "netx", "metadata": meta}
    layers, shape = [], list(net.input_shape)
    for layer in net.layers:
        w = np.concatenate([m.reshape(-1) for m in layer.synapse_matrices()])
        p = layer.params
        layers.append({"name": layer.name, "type": layer.kind, "input_shape": shape,
                       "shape": list(layer.shape),
                       "kernel": ([int(layer.weight.shape[2]), int(layer.weight.shape[3])]
                                  if layer.conv else None),
                       "stride": list(layer.conv.stride) if layer.conv else None,
                       "weight_range": [int(w.min()), int(w.max())],
                       "nonzero_weights": int((w != 0).sum()),
                       **({"neuron": p.kind} if layer.resonate else
                          {"i_decay": p.i_decay, "v_decay": p.v_decay}),
                       "threshold": p.threshold, "describe": layer.describe()})
        shape = list(layer.shape)
    return info | {"layers": layers, "quantization": quantization, **storage_estimates(net)}
