"""lava-dl netx HDF5: the one place that reads and writes the deployable network file.

Layout written (what lava-dl 0.6.0's `netx.hdf5.Network` reads; see netx/README.md there):
    layer/0     type='input', shape=[n] or [C, H, W]          (documents the input shape)
                or, for an input layer with neurons, also weight, bias (one value each) and a
                neuron group (see IntLayer; netx 0.6.0 reads them but does not apply them: the
                Lava backend wires the layer itself)
    layer/i     type='dense', shape=[n], weight (n, n_prev) int, optional delay (n, n_prev)
                in steps 0..62 (Lava's DelayDense), or
                type='dense_rec', as dense plus weight_rec (n, n) (Lava's RecurrentDense), or
                type='conv', shape=[C, H, W], weight (out, in, kH, kW) int, stride, padding,
                dilation (each [H, W]), groups; both with
                neuron/{type='CUBA', iDecay, vDecay, vThMant, refDelay, gradedSpike} and an
                optional bias (netx feeds it to Lava's bias_mant with bias_exp=6)
                type='flatten' between a conv and a dense layer (CHW order, as PyTorch)
netx reads weights with `.astype(int)` and silently clips, truncates or zeroes what does not
fit Loihi's synapse, so `check_deployable` refuses such networks before anything is written.
Reading also refuses what netx would drop or cannot build (see _neuron_params, NETX_CANNOT).
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.files import atomic_path
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork
from neurodeploy.neurons.network import INPUT_LIMIT, MAX_DELAY, Conv
from neurodeploy.data.encoding import ENCODINGS
from neurodeploy.neurons.cuba import (DECAY_UNITY, NETX_DEFAULT_THRESHOLD, THRESHOLD_MAX,
                                      WEIGHT_MAX, WEIGHT_MIN)

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


def architecture(net: IntNetwork) -> dict:
    """What a file must contain to be this network: read back and compared by `read_netx`, so
    a deleted or altered layer is refused instead of silently giving a smaller network."""
    return {"input_shape": [int(v) for v in net.input_shape],
            "layers": [{"name": layer.name, "type": layer.kind,
                        "shape": [int(v) for v in layer.shape]} for layer in net.layers],
            "classes": int(net.layers[-1].size)}


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
        if net.layers[0].input_shape:          # an input layer with neurons (see _read_input)
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


def _write_neuron(g, p: CubaParams) -> None:
    g.create_dataset("neuron/type", data="CUBA")
    g.create_dataset("neuron/iDecay", data=p.i_decay)
    g.create_dataset("neuron/vDecay", data=p.v_decay)
    g.create_dataset("neuron/vThMant", data=p.threshold)
    g.create_dataset("neuron/refDelay", data=1)
    g.create_dataset("neuron/gradedSpike", data=False)


# ---- reading: every value is checked before it becomes a number --------------------------

REEXPORT = "re-export the network with `neurodeploy export`"
# Keys of a layer group that netx reads and this reader models; anything else (conv 'delay',
# recurrent 'weight_rec', complex weights, ...) would make Lava compute something else.
LAYER_KEYS = {"dense": {"type", "shape", "weight", "bias", "neuron", "inFeatures", "outFeatures",
                        "delay"},
              "dense_rec": {"type", "shape", "weight", "weight_rec", "bias", "neuron",
                            "inFeatures", "outFeatures"},
              "conv": {"type", "shape", "weight", "bias", "neuron", "stride", "padding",
                       "dilation", "groups", "inChannels", "outChannels", "kernelSize"}}
# slayer writes its training parameters beside the neuron constants; netx 0.6.0 reads none of
# them (`get_neuron_params` takes vThMant, iDecay, vDecay for CUBA and LOIHI alike), so Lava
# runs the same neuron whatever they say.
TRAINING_ONLY = {"scaleRho", "tauRho", "theta", "wgtExp"}
NEURON_KEYS = {"type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike",
               "messageBits"} | TRAINING_ONLY
# What netx 0.6.0 builds for a dense layer without a 'neuron' group (`create_dense`): its
# "non-leaky integrator", CUBA with iDecay 0 (the current never decays), vDecay 4096 (the
# voltage is the current plus bias every step) and vThMant `1 << 18 - 1` (= 1 << 17: it never
# fires). Its voltage is the layer's output, so such a last layer is read out like ours.
NETX_DEFAULT_NEURON = CubaParams(0, DECAY_UNITY, NETX_DEFAULT_THRESHOLD)
LAYER_KINDS = ("input", "dense", "dense_rec", "conv")   # IntLayer.kind, as the metadata records
NETX_CANNOT = {    # layer types lava-dl 0.6.0's netx.hdf5.Network refuses, and what to do instead
    "pool": "use a strided convolution instead of pooling",
    "average": "use a strided convolution instead of average pooling",
    "convT": "use a convolution (no transposed convolutions)",
    "unpool": "remove the unpooling layer",
    "concat": "use one chain of layers (no concatenation)",
    "dense_comp": "use real weights (netx 0.6.0 lacks create_complex_dense)",
}
MAX_SIZE = 2 ** 31 - 1      # neurons per layer or input values; beyond it shapes overflow


def _read(group, key: str, where: str, fix: str = REEXPORT):
    """The value of dataset `key`, refusing a missing key, a group, or an unreadable value."""
    try:
        item = group.get(key)
        if not isinstance(item, h5py.Dataset):
            what = "is missing" if item is None else "is a group, not a dataset"
            raise UserError(f"{where}: '{key}' {what}; {fix}")
        return item[()]
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise UserError(f"{where}: '{key}' cannot be read ({type(e).__name__}); {fix}") \
            from None


def _ints(value, where: str, key: str, lo: int, hi: int, fix: str = REEXPORT) -> np.ndarray:
    """`value` as int64, refusing bools, text, NaN/inf, fractions (netx's astype(int) would
    truncate them) and values outside [lo, hi]. Floats holding exact integers are accepted:
    lava-dl's own exporter writes weights as float32."""
    a = np.asarray(value)
    if a.dtype.kind not in "iuf":
        raise UserError(f"{where}: '{key}' holds {a.dtype} values, not integers; {fix}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise UserError(f"{where}: '{key}' holds NaN or infinity; {fix}")
        if (a != np.round(a)).any():
            bad = a[a != np.round(a)].flat[0]
            raise UserError(f"{where}: '{key}' holds the fraction {bad:g}; netx would truncate "
                            f"it: store integers ({fix})")
    if a.size and (a.min() < lo or a.max() > hi):
        raise UserError(f"{where}: '{key}' spans [{a.min():g}, {a.max():g}], outside its range "
                        f"[{lo}, {hi}]; {fix}")
    return a.astype(np.int64)


def _text(group, key: str, where: str) -> str:
    item = group.get(key)
    if not isinstance(item, h5py.Dataset):
        return "?"
    value = np.asarray(_read(group, key, where)).reshape(-1)
    if value.size != 1 or not isinstance(value[0], (bytes, str)):
        return "?"
    try:
        return value[0].decode() if isinstance(value[0], bytes) else str(value[0])
    except UnicodeDecodeError:
        return "?"


def _shape(group, where: str, key: str = "shape") -> tuple[int, ...]:
    shape = _ints(_read(group, key, where), where, key, 1, MAX_SIZE).reshape(-1)
    if len(shape) not in (1, 3) or np.prod(shape, dtype=np.float64) > MAX_SIZE:
        raise UserError(f"{where}: '{key}' is {shape.tolist()}; a netx shape is [n] or [C, H, W] "
                        f"with at most {MAX_SIZE} values; {REEXPORT}")
    return tuple(int(v) for v in shape)


def _scalar(group, key: str, where: str, lo: int, hi: int) -> int:
    value = _ints(_read(group, key, where), where, key, lo, hi).reshape(-1)
    if value.size == 0 or (value != value[0]).any():
        raise UserError(f"{where}: '{key}' must be one value for the layer (Lava's LIF takes one "
                        f"per layer), got {value.size} differing values; use a uniform value")
    return int(value[0])


def _unknown(group, allowed: set, where: str) -> None:
    extra = sorted(set(group.keys()) - allowed)
    if extra:
        raise UserError(f"{where}: '{extra[0]}' is not supported (netx would use it, this reader "
                        f"would not model it); supported keys: {', '.join(sorted(allowed))}")


def _neuron_params(g, where: str, size: int | None = None) -> CubaParams:
    """The layer's CUBA/LOIHI neuron constants; refuses what netx 0.6.0 would drop or Lava's
    LIF cannot send, instead of running something else than what was trained."""
    if "neuron" not in g:
        return NETX_DEFAULT_NEURON
    neuron = g["neuron"]
    if not isinstance(neuron, h5py.Group):
        raise UserError(f"{where}: 'neuron' is not a group; {REEXPORT}")
    _unknown(neuron, NEURON_KEYS, f"{where}: neuron")
    ntype = _text(neuron, "type", where)
    if ntype not in ("CUBA", "LOIHI"):
        raise UserError(f"{where}: neuron type {ntype!r} is not supported (supported: CUBA, LOIHI)")
    if "messageBits" in neuron and _scalar(neuron, "messageBits", where, 0, 32) != 0:
        raise UserError(f"{where}: 'neuron/messageBits' asks for graded spikes, but Lava's LIF "
                        "(netx's CUBA/LOIHI neuron) sends 1-bit spikes whatever it says: set it "
                        "to 0 or remove it")
    graded = np.asarray(_read(neuron, "gradedSpike", where) if "gradedSpike" in neuron else 0)
    if graded.dtype.kind not in "biuf" or graded.size != 1:
        raise UserError(f"{where}: 'neuron/gradedSpike' must be one true/false value; {REEXPORT}")
    if graded.reshape(-1)[0]:
        raise UserError(f"{where}: 'neuron/gradedSpike' is true, but netx 0.6.0 ignores it and "
                        "Lava's LIF sends 1-bit spikes: retrain with binary spikes or set it "
                        "false")
    if "refDelay" in neuron and _scalar(neuron, "refDelay", where, 0, 2 ** 16) > 1:
        raise UserError(f"{where}: 'neuron/refDelay' asks for a refractory period, which netx "
                        "0.6.0 does not read (Lava's LIF has none): retrain with refDelay 1")
    return CubaParams(_decay(neuron, "iDecay", where, size),
                      _decay(neuron, "vDecay", where, size),
                      _scalar(neuron, "vThMant", where, 1, THRESHOLD_MAX))


def _decay(neuron, key: str, where: str, size: int | None) -> int | tuple[int, ...]:
    """One decay for the layer, or one per neuron (Lava's LIF applies an array element-wise);
    `size` is the layer's neuron count where per-neuron values are possible (dense layers)."""
    value = _ints(_read(neuron, key, where), where, key, 0, DECAY_UNITY).reshape(-1)
    if value.size and (value == value[0]).all():
        return int(value[0])
    if size is None or value.size != size:
        raise UserError(f"{where}: 'neuron/{key}' has {value.size} differing values; give one "
                        f"per layer{'' if size is None else f' or one per neuron ({size})'}"
                        f"{'' if size else ' (per-neuron decays are read for dense layers only)'}")
    return tuple(int(v) for v in value)


def _read_input(g, name: str, where: str) -> IntLayer:
    """An `input` layer with a neuron: netx reads one `weight` (default 64) and one `bias`
    (default 0) for the whole layer; each neuron receives weight * x + bias (see IntLayer)."""
    _unknown(g, {"type", "shape", "weight", "bias", "neuron"}, where)
    params = _neuron_params(g, where)
    shape = _shape(g, where)
    lim = INPUT_LIMIT - 1
    gain = _scalar(g, "weight", where, -lim, lim) if "weight" in g else 64
    bias = _scalar(g, "bias", where, -lim, lim) if "bias" in g else 0
    n = int(np.prod(shape))
    try:
        return IntLayer(weight=np.full(n, gain, dtype=np.int64), params=params, name=name,
                        bias=np.full(n, bias, dtype=np.int64) if bias else None,
                        input_shape=shape)
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None


def _read_layer(g, kind: str, in_shape, name: str, where: str) -> IntLayer:
    if kind == "conv" and "delay" in g:
        raise UserError(f"{where}: netx 0.6.0 ignores a conv layer's 'delay' (Lava would run the "
                        "layer without it): retrain without delays or remove the dataset")
    if kind == "dense_rec" and "delay" in g:
        raise UserError(f"{where}: netx 0.6.0 builds delays on a recurrent layer with the input "
                        "delays on the recurrent synapse and without the weight exponent: "
                        "retrain without delays or remove the dataset")
    _unknown(g, LAYER_KEYS[kind], where)
    params = _neuron_params(g, where, None if kind == "conv" else int(np.prod(_shape(g, where))))
    conv = None
    if kind == "conv":
        if in_shape is None or len(in_shape) != 3:
            raise UserError(f"{where}: a conv layer needs a [C, H, W] input and the file has no "
                            "'input' layer: pass --input-shape C,H,W")

        def pair(key, default, lo):
            if key not in g:
                return (default, default)
            v = _ints(_read(g, key, where), where, key, lo, 4096).reshape(-1)
            if v.size not in (1, 2):
                raise UserError(f"{where}: '{key}' has {v.size} values; give one or two [H, W]")
            return tuple(int(x) for x in np.broadcast_to(v, (2,)))

        def single(v):
            if v.size != 1:
                raise UserError(f"{where}: 'groups' has {v.size} values; store one integer")
            return int(v.reshape(-1)[0])
        conv = Conv(input_shape=tuple(in_shape), stride=pair("stride", 1, 1),
                    padding=pair("padding", 0, 0), dilation=pair("dilation", 1, 1),
                    groups=single(_ints(_read(g, "groups", where), where, "groups", 1, 4096))
                    if "groups" in g else 1)
    declared = _shape(g, where)
    if conv is None:                  # netx sizes a dense layer by prod(shape): slayer writes
        declared = (int(np.prod(declared)),)          # [n, 1, 1] after a flatten layer
    weight = _ints(_read(g, "weight", where), where, "weight", WEIGHT_MIN, WEIGHT_MAX)
    if conv and weight.ndim == 5 and weight.shape[4] == 1:
        weight = weight[..., 0]       # slayer's time axis; netx drops it (reshape to 4-D)
    if conv is None and weight.ndim == 1 and len(declared) == 1 and weight.size % declared[0] == 0:
        weight = weight.reshape(declared[0], -1)        # lava-dl writes (n, 1) as (n,)
    if weight.ndim != (4 if conv else 2) or 0 in weight.shape:
        raise UserError(f"{where}: 'weight' has shape {list(weight.shape)}; a {kind} layer needs "
                        f"a non-empty {4 if conv else 2}-D array; {REEXPORT}")
    if conv and weight.shape[0] % conv.groups:
        raise UserError(f"{where}: {weight.shape[0]} output channels cannot be split into "
                        f"'groups' = {conv.groups}; {REEXPORT}")
    recurrent = delay = None
    if kind == "dense_rec":
        recurrent = _ints(_read(g, "weight_rec", where), where, "weight_rec", WEIGHT_MIN,
                          WEIGHT_MAX)
        if recurrent.size != weight.shape[0] ** 2:
            raise UserError(f"{where}: 'weight_rec' has {recurrent.size} values; a recurrent "
                            f"layer of {weight.shape[0]} neurons needs ({weight.shape[0]}, "
                            f"{weight.shape[0]}); {REEXPORT}")
        recurrent = recurrent.reshape(weight.shape[0], weight.shape[0])
    if "delay" in g:
        delay = _delay(_read(g, "delay", where), weight.shape, where)
    bias = None
    if "bias" in g:
        bias = _ints(_read(g, "bias", where), where, "bias", 1 - BIAS_LIMIT, BIAS_LIMIT - 1)
        if bias.size != weight.shape[0]:
            raise UserError(f"{where}: 'bias' has {bias.size} values for {weight.shape[0]} "
                            f"{'channels' if conv else 'neurons'}; {REEXPORT}")
        bias = bias.reshape(-1)
    try:
        layer = IntLayer(weight=weight, params=params, bias=bias, name=name, conv=conv,
                         recurrent=recurrent, delay=delay)
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None
    if declared != layer.shape:
        raise UserError(f"{where}: declared shape {list(declared)} does not match the shape its "
                        f"weights and input give, {list(layer.shape)}; {REEXPORT}")
    return layer


def _delay(value, shape: tuple, where: str) -> np.ndarray:
    """netx's `delay` as an (out, in) matrix, expanded as netx expands it: one value for all,
    one per output neuron (checked first, as netx does), one per input, or the full matrix.
    Delays beyond MAX_DELAY are refused: netx would clip them to it with only a warning."""
    d = np.asarray(value)
    if d.dtype.kind == "f" and np.isfinite(d).all():
        d = np.floor(d)                   # netx's astype(int) on lava-dl's floored delays
    d = _ints(d, where, "delay", 0, 2 ** 31 - 1)
    if d.size and d.max() > MAX_DELAY:
        raise UserError(f"{where}: 'delay' reaches {d.max()} steps; Loihi 2 through netx holds "
                        f"0..{MAX_DELAY} (netx would clip it silently): retrain with shorter "
                        "delays")
    out, inp = shape
    if d.size == 1:
        return np.full(shape, int(d.reshape(-1)[0]), dtype=np.int64)
    if d.ndim == 1 and d.size == out:
        return np.repeat(d.reshape(-1, 1), inp, axis=1)
    if d.ndim == 1 and d.size == inp:
        return np.repeat(d.reshape(1, -1), out, axis=0)
    if d.shape == tuple(shape):
        return d
    raise UserError(f"{where}: 'delay' has shape {list(d.shape)}; netx takes one value, one per "
                    f"output ({out}), one per input ({inp}) or ({out}, {inp}); {REEXPORT}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_metadata(meta, source: str) -> dict:
    """Refuse neurodeploy metadata whose known fields have the wrong type or value (unknown
    fields pass, for files from newer versions); `source` names the file for messages."""
    def bad(field, want):
        return UserError(f"{source}: metadata field '{field}' must be {want}; fix it or "
                         f"{REEXPORT}")
    if not isinstance(meta, dict):
        raise UserError(f"{source}: the neurodeploy metadata is a JSON {type(meta).__name__}, "
                        f"not an object; {REEXPORT}")
    if "timesteps" in meta and not (_is_int(meta["timesteps"]) and 0 < meta["timesteps"] <= 4096):
        raise bad("timesteps", "an integer in 1..4096 (as recipes allow)")
    for key in ("recipe", "discretization"):
        if key in meta and not isinstance(meta[key], str):
            raise bad(key, "a string")
    if "readout" in meta and not isinstance(meta["readout"], bool):
        raise bad("readout", "true or false")
    if "encoding" in meta:
        enc = meta["encoding"]
        if not isinstance(enc, dict):
            raise bad("encoding", "an object {name, timesteps[, levels]}")
        if enc.get("name", "rate") not in ENCODINGS:
            raise bad("encoding.name", f"one of {', '.join(ENCODINGS)} "
                                       f"(got {enc.get('name')!r})")
        if "timesteps" in enc and not (_is_int(enc["timesteps"]) and 0 < enc["timesteps"] <= 4096):
            raise bad("encoding.timesteps", "an integer in 1..4096")
        if enc.get("name") == "thermometer" and not (_is_int(enc.get("levels"))
                                                     and 0 < enc["levels"] <= 256):
            raise bad("encoding.levels", "an integer in 1..256 (thermometer encoding)")
    if "dataset" in meta:
        ds = meta["dataset"]
        if not isinstance(ds, dict) or not isinstance(ds.get("name"), str) \
                or not _is_int(ds.get("split_seed", 0)):
            raise bad("dataset", "an object {name: string, split_seed: integer}")
        from neurodeploy.data.datasets import DATASETS
        if ds["name"] not in DATASETS:
            raise bad("dataset.name", f"one of {', '.join(sorted(DATASETS))} "
                                      f"(got {ds['name']!r})")
    layers = (meta.get("quantization") or {}).get("layers", {}) \
        if isinstance(meta.get("quantization", {}), dict) else None
    if not isinstance(layers, dict) or not all(
            isinstance(v, dict) and all(_is_int(v.get(k)) for k in ("iDecay", "vDecay", "vThMant"))
            for v in layers.values()):
        raise bad("quantization.layers", "an object {layer: {iDecay, vDecay, vThMant: integers}}")
    if "architecture" in meta:
        arch = meta["architecture"]
        shapes = lambda v: isinstance(v, list) and all(_is_int(x) for x in v)  # noqa: E731
        if not (isinstance(arch, dict) and isinstance(arch.get("layers"), list) and all(
                isinstance(layer, dict) and layer.get("type") in LAYER_KINDS
                and shapes(layer.get("shape")) for layer in arch["layers"])
                and shapes(arch.get("input_shape"))):
            raise bad("architecture", "an object {input_shape, layers: [{name, type, shape}], "
                                      "classes}")
    return meta


def _metadata(f, path: Path) -> dict:
    raw = f.attrs.get("neurodeploy", "{}")
    if isinstance(raw, np.ndarray) and raw.size == 1:
        raw = raw.reshape(-1)[0]
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        if not isinstance(text, str):
            raise TypeError
        meta = json.loads(text)
    except (TypeError, ValueError, RecursionError):   # includes Unicode and JSON decode errors
        raise UserError(f"{path}: the 'neurodeploy' attribute is not JSON text; {REEXPORT}") \
            from None
    return check_metadata(meta, str(path))


def check_architecture(net: IntNetwork, meta: dict, source: str) -> None:
    """Refuse a network whose layers disagree with what its own metadata records: the
    architecture written by `write_netx`, or, in older files, the per-layer neuron constants
    that `export` writes under quantization.layers."""
    found = architecture(net)
    if "architecture" in meta:
        listed = meta["architecture"]
        if listed["input_shape"] != found["input_shape"]:
            raise UserError(f"{source}: the input is {found['input_shape']} but the metadata "
                            f"records {listed['input_shape']}; the file was altered: {REEXPORT}")
        pairs = [(a["type"], list(a["shape"])) for a in listed["layers"]]
        have = [(a["type"], a["shape"]) for a in found["layers"]]
    else:
        q = (meta.get("quantization") or {}).get("layers")
        if not q:
            return
        pairs = [(name, [v["iDecay"], v["vDecay"], v["vThMant"]]) for name, v in q.items()]
        have = [(layer.name, [layer.params.i_decay, layer.params.v_decay, layer.params.threshold])
                for layer in net.layers]
    for i, (want, got) in enumerate(zip(pairs, have)):
        if want != got:
            raise UserError(f"{source}: layer {i + 1} of {len(pairs)} is {got[0]} {got[1]} but "
                            f"the metadata records {want[0]} {want[1]}; the file was altered: "
                            f"{REEXPORT}")
    if len(pairs) != len(have):
        i = min(len(pairs), len(have)) + 1
        raise UserError(f"{source}: layer {i} {'missing' if len(have) < len(pairs) else 'extra'}:"
                        f" the metadata lists {len(pairs)} layers, the file has {len(have)}; "
                        f"the file was altered: {REEXPORT}")


# What h5py raises, anywhere while reading, on a damaged file: a broken B-tree is a
# RuntimeError ("Unable to get group info"), a broken attribute type a TypeError.
H5PY_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


@contextlib.contextmanager
def open_hdf5(path: str | Path, fix: str) -> Iterator[h5py.File]:
    """The one way a user's HDF5 file is opened for reading: whatever h5py raises on a damaged
    file, while opening or while reading inside the block, becomes one line naming the file
    and `fix`, never a traceback."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 netx file ({e}); {fix}") from None
    try:
        with f:
            yield f
    except UserError:
        raise
    except H5PY_ERRORS as e:
        raise UserError(f"{path}: the HDF5 file is damaged ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:80] if str(e) else 'unreadable'}); {fix}") \
            from None


def read_netx(path: str | Path,
              input_shape: tuple[int, ...] | None = None) -> tuple[IntNetwork, dict]:
    """Read a netx file into an `IntNetwork` plus the metadata we stored (empty if foreign).

    `input_shape` (C, H, W) is needed only for files without an 'input' layer that start with
    a convolution (lava-dl's slayer exports them so; netx then needs it too). Every malformed
    or altered file raises a one-line `UserError` naming the file, the layer and the field."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such network file; run `neurodeploy export` first")
    from neurodeploy.netx.sdnn import uses_sdnn
    with open_hdf5(path, REEXPORT) as f:
        if uses_sdnn(f):
            raise UserError(f"{path}: a sigma-delta (SDNN) network, not a CUBA one: run it "
                            "with `neurodeploy simulate|parity|inspect` and --data frames.npz")
        groups = f.get("layer")
        if not isinstance(groups, h5py.Group):
            raise UserError(f"{path}: no 'layer' group, so not a netx network; re-export it")
        metadata = _metadata(f, path)
        given = tuple(input_shape) if input_shape else None
        input_shape, layers, shape = None, [], given
        for i in range(len(groups)):
            g = groups.get(str(i))
            if not isinstance(g, h5py.Group):
                raise UserError(f"{path}: layer groups must be numbered 0..{len(groups) - 1}; "
                                f"'{i}' is missing")
            where = f"{path}: layer {i}"
            kind = _text(g, "type", where)
            if kind == "input" and "neuron" not in g and i == 0:
                input_shape = shape = _shape(g, where)
            elif kind == "input" and i == 0:
                layers.append(_read_input(g, "input", where))
                input_shape = shape = layers[-1].shape
            elif kind == "flatten":
                shape = (int(np.prod(shape)),) if shape else shape
            elif kind in ("dense", "dense_rec", "conv") and ("neuron" in g or kind != "conv"):
                if kind != "conv" and shape is not None and len(shape) == 3:
                    raise UserError(f"{where}: a dense layer after a [C, H, W] shape needs a "
                                    f"'flatten' layer before it (netx connects no other way);"
                                    f" {REEXPORT}")
                name = f"{'conv' if kind == 'conv' else 'fc'}{len(layers)}"
                if "neuron" not in g and "architecture" in metadata:
                    raise UserError(f"{where}: the {kind} layer has no 'neuron' group, which "
                                    f"`neurodeploy export` always writes: the file was "
                                    f"altered; {REEXPORT}")
                layers.append(_read_layer(g, kind, shape, name, where))
                shape = layers[-1].shape
            elif kind == "conv":
                raise UserError(f"{where}: the conv layer has no 'neuron' group, which netx "
                                f"0.6.0 cannot build (it has a default for dense layers "
                                f"only); {REEXPORT}")
            elif kind == "?":
                raise UserError(f"{where}: 'type' is missing or not text; {REEXPORT}")
            elif kind in NETX_CANNOT:
                raise UserError(f"{where}: layer type {kind!r} is not supported: lava-dl 0.6.0's "
                                f"netx cannot build it; {NETX_CANNOT[kind]}")
            elif kind == "input":
                raise UserError(f"{where}: an 'input' layer must be layer 0 (netx feeds the "
                                f"network through it); {REEXPORT}")
            else:
                raise UserError(f"{where}: layer type {kind!r} is not supported (supported: "
                                "input, dense, dense_rec and conv with CUBA/LOIHI neurons, "
                                "flatten)")
    if not layers:
        raise UserError(f"{path}: the network has no dense layers")
    # A last layer that cannot fire (netx's default integrator) or fires only at the top of
    # Loihi's threshold range (slayer's PilotNet output) integrates: it is read out by voltage.
    readout = metadata.get("readout", False) or layers[-1].params.threshold >= THRESHOLD_MAX
    try:
        net = IntNetwork(input_shape=input_shape or given or (layers[0].in_size,),
                         layers=tuple(layers), readout=bool(readout))
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    check_deployable(net, str(path))
    check_architecture(net, metadata, str(path))
    return net, metadata
