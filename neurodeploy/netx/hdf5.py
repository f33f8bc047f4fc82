"""lava-dl netx HDF5: the one place that reads and writes the deployable network file.

Layout written (what lava-dl 0.6.0's `netx.hdf5.Network` reads; see netx/README.md there):
    layer/0     type='input', shape=[n] or [C, H, W]          (documents the input shape)
    layer/i     type='dense', shape=[n], weight (n, n_prev) int, or
                type='conv', shape=[C, H, W], weight (out, in, kH, kW) int, stride, padding,
                dilation (each [H, W]), groups; both with
                neuron/{type='CUBA', iDecay, vDecay, vThMant, refDelay, gradedSpike} and an
                optional bias (netx feeds it to Lava's bias_mant with bias_exp=6)
                type='flatten' between a conv and a dense layer (CHW order, as PyTorch)
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
from neurodeploy.neurons.network import Conv
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
        f.attrs["neurodeploy"] = json.dumps({**(metadata or {}),
                                             **({"readout": True} if net.readout else {})})
        root = f.create_group("layer")
        inp = root.create_group("0")
        inp.create_dataset("type", (1,), "S10", [b"input"])
        inp.create_dataset("shape", data=np.array(net.input_shape))
        shape, index = tuple(net.input_shape), 1
        for layer in net.layers:
            if len(shape) == 3 and not layer.conv:
                flat = root.create_group(str(index))
                flat.create_dataset("type", (1,), "S10", [b"flatten"])
                index += 1
            g = root.create_group(str(index))
            index += 1
            shape = layer.shape
            g.create_dataset("type", (1,), "S10", [b"conv" if layer.conv else b"dense"])
            g.create_dataset("shape", data=np.array(shape))
            g.create_dataset("weight", data=layer.weight.astype(np.int32))
            if layer.conv:
                for key in ("stride", "padding", "dilation"):
                    g.create_dataset(key, data=np.array(getattr(layer.conv, key)))
                g.create_dataset("groups", data=layer.conv.groups)
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


def _read_layer(g, kind: str, in_shape, name: str, where: str) -> IntLayer:
    neuron = g["neuron"]
    ntype = _text(neuron["type"]) if "type" in neuron else "?"
    if ntype not in ("CUBA", "LOIHI"):
        raise UserError(f"{where}: neuron type {ntype!r} is not supported (supported: CUBA, LOIHI)")
    conv = None
    if kind == "conv":
        if in_shape is None or len(in_shape) != 3:
            raise UserError(f"{where}: a conv layer needs a [C, H, W] input and the file has no "
                            "'input' layer: pass --input-shape C,H,W")
        pair = lambda key, default: tuple(int(v) for v in np.broadcast_to(  # noqa: E731
            np.atleast_1d(g[key][()]) if key in g else default, (2,)))
        conv = Conv(input_shape=tuple(in_shape), stride=pair("stride", 1),
                    padding=pair("padding", 0), dilation=pair("dilation", 1),
                    groups=int(np.atleast_1d(g["groups"][()])[0]) if "groups" in g else 1)
    try:
        params = CubaParams(_scalar(neuron, "iDecay", where), _scalar(neuron, "vDecay", where),
                            _scalar(neuron, "vThMant", where))
        bias = g["bias"][()].astype(np.int64).reshape(-1) if "bias" in g else None
        weight = g["weight"][()].astype(np.int64)
        if conv is None and weight.ndim == 1:
            weight = weight.reshape(int(np.prod(g["shape"][()])), -1)
        layer = IntLayer(weight=weight, params=params, bias=bias, name=name, conv=conv)
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None
    if tuple(int(v) for v in np.atleast_1d(g["shape"][()])) != layer.shape:
        raise UserError(f"{where}: declared shape {list(g['shape'][()])} does not match the "
                        f"shape its weights and input give, {list(layer.shape)}")
    return layer


def read_netx(path: str | Path,
              input_shape: tuple[int, ...] | None = None) -> tuple[IntNetwork, dict]:
    """Read a netx file into an `IntNetwork` plus the metadata we stored (empty if foreign).

    `input_shape` (C, H, W) is needed only for files without an 'input' layer that start with
    a convolution (lava-dl's slayer exports them so; netx then needs it too)."""
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
        given = tuple(input_shape) if input_shape else None
        input_shape, layers, shape = None, [], given
        for i in range(len(groups)):
            if str(i) not in groups:
                raise UserError(f"{path}: layer groups must be numbered 0..{len(groups) - 1}; "
                                f"'{i}' is missing")
            g = groups[str(i)]
            where = f"{path}: layer {i}"
            kind = _text(g["type"]) if "type" in g else "?"
            if kind == "input" and "neuron" not in g and i == 0:
                input_shape = shape = tuple(int(v) for v in np.atleast_1d(g["shape"][()]))
            elif kind == "flatten":
                shape = (int(np.prod(shape)),) if shape else shape
            elif kind in ("dense", "conv") and "neuron" in g:
                name = f"{'conv' if kind == 'conv' else 'fc'}{len(layers)}"
                layers.append(_read_layer(g, kind, shape, name, where))
                shape = layers[-1].shape
            else:
                raise UserError(f"{where}: layer type {kind!r} is not supported yet "
                                "(supported: input without neuron, dense and conv with CUBA "
                                "neurons, flatten)")
    if not layers:
        raise UserError(f"{path}: the network has no dense layers")
    try:
        net = IntNetwork(input_shape=input_shape or given or (layers[0].in_size,),
                         layers=tuple(layers),
                         readout=bool(metadata.get("readout", False)))
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    check_deployable(net, str(path))
    return net, metadata
