"""Writing a netx HDF5 file (the layout is described in hdf5.py), and what any netx file must
satisfy to run on Loihi as it says: netx reads weights with `.astype(int)` and silently clips,
truncates or zeroes what does not fit Loihi's synapse, so `check_deployable` refuses such
networks before anything is written, and after anything is read."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.files import atomic_path
from neurodeploy.netx.metadata import architecture
from neurodeploy.neurons import CubaParams, IntNetwork
from neurodeploy.neurons.cuba import WEIGHT_MAX, WEIGHT_MIN
from neurodeploy.neurons.resonate import RFParams

BIAS_LIMIT = 2 ** 12        # Loihi's bias mantissa is a signed 13-bit number
def check_deployable(net: IntNetwork, source: str) -> None:
    """Refuse anything netx/Lava would silently change; `source` names the file for messages."""
    for layer in net.layers:
        w = layer.weight
        where = f"{source}: layer {layer.name!r}"
        if layer.input_shape:
            if np.any(w != w[0]) or (layer.bias is not None and np.any(layer.bias != layer.bias[0])):
                raise UserError(f"{where}: an input layer's gain and bias must be uniform (netx "
                                "reads one 'weight' and one 'bias' for it): use one value each")
            continue
        for w in layer.synapse_matrices():  # netx fits each its own weight format
            if not np.any(w):
                raise UserError(f"{where} has only zero weights, which netx cannot load "
                                "(OverflowError); remove the layer or retrain it")
            if w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX:
                raise UserError(f"{where} has weights in [{w.min()}, {w.max()}]; Loihi holds "
                                f"[{WEIGHT_MIN}, {WEIGHT_MAX}]: requantize the weights")
            if (w.min() < -128 or w.max() > 127) and np.any(w % 2):
                raise UserError(f"{where} mixes odd weights with weights beyond [-128, 127]; "
                                "Loihi's 8-bit mantissa would truncate them: use even weights")
        if layer.recurrent is not None:
            both = np.hstack([w, layer.recurrent])   # netx fits one weight format to both
            if (both.min() < -128 or both.max() > 127) and np.any(both % 2):
                raise UserError(f"{where} mixes odd weights with weights beyond [-128, 127] "
                                "across its input and recurrent weights (netx gives both one "
                                "8-bit mantissa): use even weights")
            if layer.delay is not None and np.any(layer.delay):
                raise UserError(f"{where} has both delays and a recurrent connection; netx "
                                "0.6.0 builds that with the input delays on the recurrent "
                                "synapse and without its weight exponent: drop the delays")
        if layer.bias is not None and (np.abs(layer.bias) >= BIAS_LIMIT).any():
            raise UserError(f"{where} has a bias beyond Loihi's 13-bit range "
                            f"[-{BIAS_LIMIT}, {BIAS_LIMIT - 1}]: rescale the layer")


def write_netx(net: IntNetwork, path: str | Path, metadata: dict | None = None) -> None:
    """Write `net` as a netx HDF5 file (integers only), atomically; the metadata records its
    architecture."""
    check_deployable(net, str(path))
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["neurodeploy"] = json.dumps({**(metadata or {}), "architecture": architecture(net),
                                             **({"readout": True} if net.readout else {})},
                                            allow_nan=False)
        root = f.create_group("layer")
        inp = root.create_group("0")
        inp.create_dataset("type", (1,), "S10", [b"input"])
        inp.create_dataset("shape", data=np.array(net.input_shape))
        shape, index = tuple(net.input_shape), 1
        if net.layers[0].input_shape:          # an input layer with neurons (see hdf5.py)
            first = net.layers[0]
            inp.create_dataset("weight", data=int(first.weight[0]))
            if first.bias is not None:
                inp.create_dataset("bias", data=int(first.bias[0]))
            _write_neuron(inp, first.params)
        for layer in net.layers[1 if net.layers[0].input_shape else 0:]:
            if len(shape) == 3 and not layer.conv:
                flat = root.create_group(str(index))
                flat.create_dataset("type", (1,), "S10", [b"flatten"])
                index += 1
            g = root.create_group(str(index))
            index += 1
            shape = layer.shape
            g.create_dataset("type", (1,), "S10", [layer.kind.encode()])
            g.create_dataset("shape", data=np.array(shape))
            if layer.resonate:
                g.create_dataset("weight/real", data=layer.weight.astype(np.int32))
                g.create_dataset("weight/imag", data=layer.weight_imag.astype(np.int32))
            else:
                g.create_dataset("weight", data=layer.weight.astype(np.int32))
            if layer.recurrent is not None:
                g.create_dataset("weight_rec", data=layer.recurrent.astype(np.int32))
            if layer.delay is not None:
                g.create_dataset("delay", data=layer.delay.astype(np.int32))
            if layer.conv:
                for key in ("stride", "padding", "dilation"):
                    g.create_dataset(key, data=np.array(getattr(layer.conv, key)))
                g.create_dataset("groups", data=layer.conv.groups)
            if layer.bias is not None:
                g.create_dataset("bias", data=layer.bias.astype(np.int32))
            _write_neuron(g, layer.params)


def _write_neuron(g, p: CubaParams | RFParams) -> None:
    if isinstance(p, RFParams):     # as slayer's rf/rf_iz blocks write them
        g.create_dataset("neuron/type", data=p.netx_type)
        for key, value in (("sinDecay", p.sin_decay), ("cosDecay", p.cos_decay)):
            g.create_dataset(f"neuron/{key}", data=np.array(value if len(value) > 1
                                                            else value[0], dtype=np.int64))
        g.create_dataset("neuron/vThMant", data=p.threshold)
        g.create_dataset("neuron/gradedSpike", data=False)
        return
    g.create_dataset("neuron/type", data="CUBA")
    g.create_dataset("neuron/iDecay", data=p.i_decay)
    g.create_dataset("neuron/vDecay", data=p.v_decay)
    g.create_dataset("neuron/vThMant", data=p.threshold)
    g.create_dataset("neuron/refDelay", data=1)
    g.create_dataset("neuron/gradedSpike", data=False)
