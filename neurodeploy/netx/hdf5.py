"""lava-dl netx HDF5: the one place that reads and writes the deployable network file.

Layout written (what lava-dl 0.6.0's `netx.hdf5.Network` reads; see netx/README.md there):
    layer/0            type='input', shape=[n_in]            (documents the input width)
    layer/i (i >= 1)   type='dense', shape=[n], weight (n, n_prev) int,
                       neuron/{type='CUBA', iDecay, vDecay, vThMant, refDelay, gradedSpike}
                       optional bias (n,) int (netx feeds it to Lava's bias_mant, bias_exp=6)
netx reads weights with `.astype(int)` and silently clips, truncates or zeroes what does not
fit Loihi's synapse, so `check_deployable` refuses such networks before anything is written.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from neurodeploy.errors import UserError, atomic_path
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork
from neurodeploy.neurons.cuba import WEIGHT_MAX, WEIGHT_MIN

BIAS_LIMIT = 2 ** 12        # Loihi's bias mantissa is a signed 13-bit number


def check_deployable(net: IntNetwork, source: str) -> None:
    """Refuse anything netx/Lava would silently change; `source` names the file for messages."""
    for layer in net.layers:
        w = layer.weight
        where = f"{source}: layer {layer.name!r}"
        if not np.any(w):
            raise UserError(f"{where} has only zero weights, which netx cannot load "
                            "(OverflowError); remove the layer or retrain it")
        if w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX:
            raise UserError(f"{where} has weights in [{w.min()}, {w.max()}]; Loihi holds "
                            f"[{WEIGHT_MIN}, {WEIGHT_MAX}]: requantize the weights")
        if w.min() < -128 or w.max() > 127:
            if np.any(w % 2):
                raise UserError(f"{where} mixes odd weights with weights beyond [-128, 127]; "
                                "Loihi's 8-bit mantissa would truncate them: use even weights")
        if layer.bias is not None and (np.abs(layer.bias) >= BIAS_LIMIT).any():
            raise UserError(f"{where} has a bias beyond Loihi's 13-bit range "
                            f"[-{BIAS_LIMIT}, {BIAS_LIMIT - 1}]: rescale the layer")


def write_netx(net: IntNetwork, path: str | Path, metadata: dict | None = None) -> None:
    """Write `net` as a netx HDF5 file (integers only), atomically."""
    check_deployable(net, str(path))
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["neurodeploy"] = json.dumps(metadata or {})
        root = f.create_group("layer")
        inp = root.create_group("0")
        inp.create_dataset("type", (1,), "S10", [b"input"])
        inp.create_dataset("shape", data=np.array([net.input_size]))
        for i, layer in enumerate(net.layers, start=1):
            g = root.create_group(str(i))
            g.create_dataset("type", (1,), "S10", [b"dense"])
            g.create_dataset("shape", data=np.array([layer.size]))
            g.create_dataset("weight", data=layer.weight.astype(np.int32))
            if layer.bias is not None:
                g.create_dataset("bias", data=layer.bias.astype(np.int32))
            p = layer.params
            g.create_dataset("neuron/type", data="CUBA")
            g.create_dataset("neuron/iDecay", data=p.i_decay)
            g.create_dataset("neuron/vDecay", data=p.v_decay)
            g.create_dataset("neuron/vThMant", data=p.threshold)
            g.create_dataset("neuron/refDelay", data=1)
            g.create_dataset("neuron/gradedSpike", data=False)


def _text(dataset) -> str:
    value = dataset[()]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    return value.decode() if isinstance(value, bytes) else str(value)


def _scalar(group, key: str, where: str) -> int:
    if key not in group:
        raise UserError(f"{where}: neuron has no '{key}'; the file is not a CUBA netx layer")
    value = np.asarray(group[key][()]).reshape(-1)
    if value.size != 1 and np.unique(value).size != 1:
        raise UserError(f"{where}: per-neuron '{key}' values differ; Lava's LIF takes one "
                        "value per layer: use a uniform value")
    return int(value[0])


def read_netx(path: str | Path) -> tuple[IntNetwork, dict]:
    """Read a netx file into an `IntNetwork` plus the metadata we stored (empty if foreign)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such network file; run `neurodeploy export` first")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 netx file ({e}); re-export it") from None
    with f:
        if "layer" not in f:
            raise UserError(f"{path}: no 'layer' group, so not a netx network; re-export it")
        metadata = json.loads(f.attrs.get("neurodeploy", "{}"))
        groups = f["layer"]
        input_size, layers = None, []
        for i in range(len(groups)):
            if str(i) not in groups:
                raise UserError(f"{path}: layer groups must be numbered 0..{len(groups) - 1}; "
                                f"'{i}' is missing")
            g = groups[str(i)]
            where = f"{path}: layer {i}"
            kind = _text(g["type"]) if "type" in g else "?"
            if kind == "input" and "neuron" not in g and i == 0:
                input_size = int(np.prod(g["shape"][()]))
            elif kind == "dense" and "neuron" in g:
                neuron = g["neuron"]
                ntype = _text(neuron["type"]) if "type" in neuron else "?"
                if ntype not in ("CUBA", "LOIHI"):
                    raise UserError(f"{where}: neuron type {ntype!r} is not supported "
                                    "(supported: CUBA, LOIHI)")
                try:
                    params = CubaParams(_scalar(neuron, "iDecay", where),
                                        _scalar(neuron, "vDecay", where),
                                        _scalar(neuron, "vThMant", where))
                    bias = g["bias"][()].astype(np.int64) if "bias" in g else None
                    layers.append(IntLayer(weight=g["weight"][()].astype(np.int64),
                                           params=params, bias=bias, name=f"fc{len(layers)}"))
                except ValueError as e:
                    raise UserError(f"{where}: {e}") from None
            else:
                raise UserError(f"{where}: layer type {kind!r} is not supported yet "
                                "(supported: input without neuron, dense with CUBA neurons)")
    if not layers:
        raise UserError(f"{path}: the network has no dense layers")
    try:
        net = IntNetwork(input_shape=input_size or layers[0].weight.shape[1], layers=tuple(layers))
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    check_deployable(net, str(path))
    return net, metadata
