"""Read lava-dl netx HDF5 files of sigma-delta networks (neuron type 'SDNN') into `SDNetwork`.

What lava-dl 0.6.0's `netx.hdf5.Network` builds from such a file (and so what we model):
layer 0 'input' with an SDNN neuron -> Lava `Delta`; 'dense'/'conv' with an SDNN neuron ->
`SigmaDelta` (ReLU, bias << 12), or `Sigma` when 'neuron/sigma_output' is present (netx tests
presence, not value); 'flatten' between conv and dense. A dense layer's 'delay' (per neuron,
per input or per synapse: IntelLabs' N-DNS baseline has per-neuron axonal delays) makes its
synapse a DelayDense; netx clamps delays beyond 62 to 62 with a warning, and so does the
reader, saying so in `SDNetwork.notes` (inspect and every record show it). netx passes vth = vThMant,
spike_exp = state_exp = 6 and never cum_error, and reads 'messageBits' (default 16) only to
make messages graded. Anything netx would ignore or model differently is refused here with
one line naming the file, the layer, the field and the fix. `write_sdnn` writes what the reader
read (integers only): the canonical copy the Lava backend hands to netx where our reader had
to normalise a field netx reads (elsewhere Lava reads the user's own file: backends/lava.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

import neurodeploy.netx.fields as fields
from neurodeploy.errors import UserError
from neurodeploy.files import atomic_path
from neurodeploy.netx.fields import read, shape, text, unknown
from neurodeploy.neurons.cuba import THRESHOLD_MAX, WEIGHT_MAX, WEIGHT_MIN
from neurodeploy.neurons.network import MAX_DELAY
from neurodeploy.neurons.sigma_delta import ACTIVATIONS, MESSAGE_BITS, SDLayer, SDNetwork

FIX = "re-export it with lava-dl's slayer (block.export_hdf5)"
SPIKE_EXP = STATE_EXP = 6       # netx.hdf5.Network's defaults, which it passes to every neuron
LAYER_KEYS = {"input": {"type", "shape", "neuron"},
              "dense": {"type", "shape", "weight", "bias", "neuron", "inFeatures", "outFeatures",
                        "delay"},
              "conv": {"type", "shape", "weight", "bias", "neuron", "stride", "padding",
                       "dilation", "groups", "inChannels", "outChannels", "kernelSize"}}
NEURON_KEYS = {"type", "activation", "vThMant", "sigma_output", "messageBits"}


def _ints(g, key: str, where: str, lo: int, hi: int) -> np.ndarray:
    return fields.ints(read(g, key, where, FIX), where, key, lo, hi, FIX)


def _scalar(g, key: str, where: str, lo: int, hi: int) -> int:
    """One integer (not a per-neuron array, even of equal values)."""
    v = _ints(g, key, where, lo, hi).reshape(-1)
    if v.size != 1:
        raise UserError(f"{where}: '{key}' must be one integer, got {v.size} values; {FIX}")
    return int(v[0])


def _neuron(g, where: str) -> h5py.Group:
    n = g.get("neuron")
    if not isinstance(n, h5py.Group):
        raise UserError(f"{where}: 'neuron' is {'missing' if n is None else 'not a group'}; {FIX}")
    return n


def is_sdnn(path: str | Path) -> bool:
    """Whether a readable netx file uses sigma-delta neurons (for dispatch; reads no weights).
    A damaged file counts as no: the CUBA reader then says, in one line, what is wrong."""
    try:
        with fields.open_hdf5(path, FIX) as f:
            return uses_sdnn(f)
    except UserError:
        return False


def uses_sdnn(f: h5py.File) -> bool:
    """Whether an open netx file has a sigma-delta neuron; unreadable parts count as no."""
    try:
        layers = f.get("layer")
        if not isinstance(layers, h5py.Group):
            return False
        for name in layers:
            n = layers[name].get("neuron") if isinstance(layers[name], h5py.Group) else None
            if isinstance(n, h5py.Group) and text(n, "type", "", FIX) == "SDNN":
                return True
    except (UserError, *fields.H5PY_ERRORS):       # h5py's RuntimeError on broken B-trees too
        return False
    return False


def _neuron_fields(n: h5py.Group, kind: str, where: str) -> dict:
    w = f"{where}: neuron"
    unknown(n, NEURON_KEYS, w)
    if (ntype := text(n, "type", w, FIX)) != "SDNN":
        raise UserError(f"{w}: type {ntype!r} is not 'SDNN'; a netx file mixing neuron types is "
                        f"not supported: {FIX}")
    fields = {"spike_exp": SPIKE_EXP, "state_exp": STATE_EXP}
    if "messageBits" in n:
        bits = _scalar(n, "messageBits", w, -2 ** 31, 2 ** 31 - 1)
        if not MESSAGE_BITS[0] <= bits <= MESSAGE_BITS[1]:
            raise UserError(f"{w}: 'messageBits' = {bits} is out of range; sigma-delta messages "
                            f"are graded with {MESSAGE_BITS[0]}..{MESSAGE_BITS[1]} bits: set it "
                            "in that range or remove it (netx then uses 16)")
        fields["message_bits"] = bits
    if kind == "sigma_delta":
        act = text(n, "activation", w, FIX)
        if act is None:
            raise UserError(f"{w}: 'activation' is missing; a sigma-delta layer needs it (Lava "
                            f"applies {ACTIVATIONS[0]}): add neuron/activation='relu' or {FIX}")
        if act not in ACTIVATIONS:
            raise UserError(f"{w}: activation {act!r} is not supported (Lava's SigmaDelta as netx "
                            f"builds it applies {', '.join(ACTIVATIONS)}); retrain with ReLU")
        fields["activation"] = act
    if kind != "sigma":
        fields["vth"] = _scalar(n, "vThMant", w, 0, THRESHOLD_MAX)
    return fields


def _layer(g, kind: str, in_shape, index: int, where: str, notes: list) -> SDLayer:
    if kind == "input" and (key := next((k for k in ("weight", "bias") if k in g), None)):
        raise UserError(f"{where}: '{key}' on the input layer: netx's Input block drops it, so "
                        "Lava would not apply it; scale or shift the inputs instead and remove it")
    if kind == "conv" and "delay" in g:
        raise UserError(f"{where}: netx 0.6.0 ignores a conv layer's 'delay' (Lava would run the "
                        "layer without it): retrain without delays or remove the dataset")
    unknown(g, LAYER_KEYS[kind], where)
    n = _neuron(g, where)
    declared = shape(g, where, FIX)
    if kind == "input":
        return SDLayer(kind="delta", shape=declared, name="input",
                       **_neuron_fields(n, "delta", where))
    neuron_kind = "sigma" if "sigma_output" in n else "sigma_delta"
    if neuron_kind == "sigma" and not bool(np.asarray(read(n, "sigma_output", where, FIX))):
        raise UserError(f"{where}: neuron/sigma_output is false, but netx makes any layer that "
                        "has it a Sigma layer; remove it for a sigma-delta layer or set it true")
    conv = None
    if kind == "conv":
        if in_shape is None or len(in_shape) != 3:
            raise UserError(f"{where}: a conv layer needs a [C, H, W] input before it; {FIX}")
        conv = fields.conv(g, in_shape, where, FIX)
    weight = fields.weight(g, where, declared[0] if not conv and len(declared) == 1 else None,
                           WEIGHT_MIN, WEIGHT_MAX, FIX)
    if weight.ndim != (4 if conv else 2) or 0 in weight.shape or not weight.any():
        raise UserError(f"{where}: 'weight' has shape {list(weight.shape)} (or only zeros, which "
                        f"netx cannot load); a {kind} layer needs a non-zero "
                        f"{4 if conv else 2}-D array; {FIX}")
    bias = None
    if "bias" in g:
        if neuron_kind == "sigma":
            raise UserError(f"{where}: 'bias' on a sigma (output) layer: Lava's Sigma takes none "
                            "and netx would fail; remove it or fold it into the readout")
        limit = 2 ** (31 - SPIKE_EXP - STATE_EXP)        # Lava holds bias << 12 in int32
        bias = _ints(g, "bias", where, 1 - limit, limit - 1).reshape(-1)
        if bias.size != weight.shape[0]:
            raise UserError(f"{where}: 'bias' has {bias.size} values for {weight.shape[0]} "
                            f"{'channels' if conv else 'neurons'}; {FIX}")
    delay = None
    if "delay" in g:
        delay, clamped = fields.netx_delays(read(g, "delay", where, FIX), weight.shape, where,
                                            MAX_DELAY, FIX)
        if clamped:
            notes.append(f"{where.split(': ')[-1]}: {clamped}")
    name = f"{'conv' if conv else 'fc'}{index}"
    try:
        return SDLayer(kind=neuron_kind, shape=declared, weight=weight, bias=bias, conv=conv,
                       name=name, delay=delay, **_neuron_fields(n, neuron_kind, where))
    except ValueError as e:
        raise UserError(f"{where}: {e}; {FIX}") from None


def read_sdnn(path: str | Path) -> SDNetwork:
    """Read a netx SDNN file; every malformed file raises a one-line `UserError`."""
    path = Path(path)
    layers: list[SDLayer] = []
    notes: list[str] = []
    with fields.open_layers(path, FIX) as (_, groups):
        dims = None
        for i in range(len(groups)):
            g = fields.layer_group(groups, i, path)
            where = f"{path}: layer {i}"
            kind = text(g, "type", where, FIX)
            if i == 0 and kind != "input" or i > 0 and kind == "input":
                raise UserError(f"{where}: an SDNN file starts with one 'input' layer with "
                                f"an SDNN neuron (netx's Delta encoder); {FIX}")
            if kind == "flatten":
                dims = (int(np.prod(dims)),)
                continue
            if kind not in LAYER_KEYS:
                raise UserError(f"{where}: layer type {kind!r} is not supported for SDNN "
                                "(supported: input, conv, flatten, dense)")
            if kind == "dense" and len(dims) == 3:
                raise UserError(f"{where}: a dense layer after a [C, H, W] shape needs a "
                                f"'flatten' layer before it; {FIX}")
            layers.append(_layer(g, kind, dims, len(layers), where, notes))
            dims = tuple(layers[-1].shape)
    if len(layers) < 2:
        raise UserError(f"{path}: the network has no dense or conv layer after its input; {FIX}")
    try:
        return SDNetwork(input_shape=tuple(layers[0].shape), layers=tuple(layers),
                         notes=tuple(notes))
    except ValueError as e:
        raise UserError(f"{path}: {e}; {FIX}") from None


def write_sdnn(net: SDNetwork, path: str | Path, metadata: dict | None = None) -> None:
    """Write `net` in netx's SDNN layout, as read_sdnn reads it, atomically. 'messageBits' is
    not written: netx 0.6.0 cannot compile it, and without it netx uses 16 (the Lava backend
    refuses files that give it)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["neurodeploy"] = json.dumps(metadata or {}, allow_nan=False)
        root = f.create_group("layer")
        index, dims = 0, None
        for layer in net.layers:
            if layer.kind != "delta" and len(dims) == 3 and layer.conv is None:
                root.create_group(str(index)).create_dataset("type", (1,), "S10", [b"flatten"])
                index += 1
            g = root.create_group(str(index))
            index += 1
            kind = "input" if layer.kind == "delta" else "conv" if layer.conv else "dense"
            g.create_dataset("type", (1,), "S10", [kind.encode()])
            g.create_dataset("shape", data=np.array(layer.shape, dtype=np.int64))
            g.create_dataset("neuron/type", data="SDNN")
            if layer.kind == "sigma":
                g.create_dataset("neuron/sigma_output", data=True)
            else:
                g.create_dataset("neuron/vThMant", data=int(layer.vth))
            if layer.kind == "sigma_delta":
                g.create_dataset("neuron/activation", data=layer.activation)
            if layer.weight is not None:
                g.create_dataset("weight", data=np.asarray(layer.weight).astype(np.int32))
            if layer.bias is not None:
                g.create_dataset("bias", data=np.asarray(layer.bias).astype(np.int32))
            if layer.delay is not None:           # clamped already: netx warns no more
                g.create_dataset("delay", data=np.asarray(layer.delay).astype(np.int32))
            if layer.conv is not None:
                for key in ("stride", "padding", "dilation"):
                    g.create_dataset(key, data=np.array(getattr(layer.conv, key)))
                g.create_dataset("groups", data=int(layer.conv.groups))
            dims = tuple(layer.shape)
