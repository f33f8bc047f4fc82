"""lava-dl netx HDF5 of CUBA networks, the deployable network file: its layout, and reading it;
`read_network` reads a file of either kind (CUBA here, sigma-delta in sdnn.py). Writing is in
write.py, the metadata it carries in metadata.py, field readers in fields.py (shared with
sdnn.py).

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
                type='dense' with weight/real and weight/imag (n, n_prev) and
                neuron/{type='RF_PHASE' or 'RF_IZHIKEVICH', sinDecay, cosDecay (one or one per
                neuron), vThMant}: resonate-and-fire, as slayer's rf/rf_iz Dense blocks write
                it and netx builds it (ComplexDense; see neurons/resonate.py); read, not written
                by `export`
Reading refuses what netx would silently change (`check_deployable`), drop or cannot build
(see _neuron_params, NETX_CANNOT).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

import neurodeploy.netx.fields as fields
from neurodeploy.errors import UserError
from neurodeploy.netx.fields import REEXPORT, ints, read, shape, text, unknown
from neurodeploy.netx.metadata import check_architecture, metadata_from_json
from neurodeploy.netx.sdnn import is_sdnn, read_sdnn, uses_sdnn
from neurodeploy.netx.write import BIAS_LIMIT, check_deployable
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork
from neurodeploy.neurons.network import INPUT_LIMIT, MAX_DELAY
from neurodeploy.neurons.cuba import (DECAY_UNITY, NETX_DEFAULT_THRESHOLD, THRESHOLD_MAX,
                                      WEIGHT_MAX, WEIGHT_MIN)
from neurodeploy.neurons.resonate import KINDS as RF_KINDS, RFParams
from neurodeploy.neurons.sigma_delta import SDNetwork

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
NETX_CANNOT = {    # layer types lava-dl 0.6.0's netx.hdf5.Network refuses, and what to do instead
    "pool": "use a strided convolution instead of pooling",
    "average": "use a strided convolution instead of average pooling",
    "convT": "use a convolution (no transposed convolutions)",
    "unpool": "remove the unpooling layer",
    "concat": "use one chain of layers (no concatenation)",
    "dense_comp": "use real weights (netx 0.6.0 lacks create_complex_dense)",
}
# A resonate-and-fire layer as slayer's rf/rf_iz Dense block writes it (netx: ComplexDense).
RF_LAYER_KEYS = {"type", "shape", "weight", "neuron", "inFeatures", "outFeatures"}
RF_NEURON_KEYS = {"type", "sinDecay", "cosDecay", "vThMant", "gradedSpike", "messageBits"}


def _scalar(group, key: str, where: str, lo: int, hi: int) -> int:
    value = ints(read(group, key, where), where, key, lo, hi).reshape(-1)
    if value.size == 0 or (value != value[0]).any():
        raise UserError(f"{where}: '{key}' must be one value for the layer (netx gives Lava one "
                        f"per layer), got {value.size} differing values; use a uniform value")
    return int(value[0])


def _neuron_params(g, where: str, size: int | None = None) -> CubaParams:
    """The layer's CUBA/LOIHI neuron constants; refuses what netx 0.6.0 would drop or Lava's
    LIF cannot send, instead of running something else than what was trained."""
    if "neuron" not in g:
        return NETX_DEFAULT_NEURON
    neuron = g["neuron"]
    if not isinstance(neuron, h5py.Group):
        raise UserError(f"{where}: 'neuron' is not a group; {REEXPORT}")
    ntype = text(neuron, "type", where) or "?"
    if ntype in RF_KINDS:           # dense and conv layers are read by _read_rf
        raise UserError(f"{where}: a resonate-and-fire ({ntype}) input layer, which netx 0.6.0 "
                        "cannot build (its Input block feeds a_in, which Lava's RF lacks): "
                        "start with rf.Dense and no rf.Input")
    unknown(neuron, NEURON_KEYS, f"{where}: neuron")
    if ntype not in ("CUBA", "LOIHI"):
        raise UserError(f"{where}: neuron type {ntype!r} is not supported (supported: CUBA, "
                        f"LOIHI, and {', '.join(RF_KINDS)} on dense layers)")
    _binary_spikes(neuron, where, "Lava's LIF (netx's CUBA/LOIHI neuron)")
    if "refDelay" in neuron and _scalar(neuron, "refDelay", where, 0, 2 ** 16) > 1:
        raise UserError(f"{where}: 'neuron/refDelay' asks for a refractory period, which netx "
                        "0.6.0 does not read (Lava's LIF has none): retrain with refDelay 1")
    return CubaParams(_decay(neuron, "iDecay", where, size),
                      _decay(neuron, "vDecay", where, size),
                      _scalar(neuron, "vThMant", where, 1, THRESHOLD_MAX))


def _binary_spikes(neuron, where: str, who: str) -> None:
    """Refuse graded output spikes, which netx 0.6.0 reads but `who` never sends."""
    if "messageBits" in neuron and _scalar(neuron, "messageBits", where, 0, 32) != 0:
        raise UserError(f"{where}: 'neuron/messageBits' asks for graded spikes, but {who} sends "
                        "1-bit spikes whatever it says: set it to 0 or remove it")
    graded = np.asarray(read(neuron, "gradedSpike", where) if "gradedSpike" in neuron else 0)
    if graded.dtype.kind not in "biuf" or graded.size != 1:
        raise UserError(f"{where}: 'neuron/gradedSpike' must be one true/false value; {REEXPORT}")
    if graded.reshape(-1)[0]:
        raise UserError(f"{where}: 'neuron/gradedSpike' is true, but netx 0.6.0 ignores it and "
                        f"{who} sends 1-bit spikes: retrain with binary spikes or set it false")


def _is_rf(g, where: str) -> bool:
    """Whether a layer is meant as resonate-and-fire: complex weights or an RF neuron type."""
    neuron = g.get("neuron")
    return isinstance(g.get("weight"), h5py.Group) or isinstance(neuron, h5py.Group) and (
        text(neuron, "type", where) or "") in RF_KINDS


def _read_rf(g, kind: str, name: str, where: str) -> IntLayer:
    """A resonate-and-fire dense layer as netx 0.6.0 builds it (ComplexDense: a real and an
    imaginary Dense synapse onto Lava's RF or RF_IZ; see neurons/resonate.py). What netx would
    drop or cannot build is refused."""
    if kind != "dense":
        raise UserError(f"{where}: a resonate-and-fire {kind} layer, which netx 0.6.0 cannot "
                        "build (its ComplexDense is dense and feed-forward only): use rf.Dense")
    for key in ("bias", "delay"):
        if key in g:
            raise UserError(f"{where}: '{key}' on a resonate-and-fire layer, which netx 0.6.0 "
                            f"builds without it (Lava would run the layer without): retrain "
                            f"without it or remove the dataset")
    unknown(g, RF_LAYER_KEYS, where)
    neuron = g.get("neuron")
    if not isinstance(neuron, h5py.Group) or (text(neuron, "type", where) or "") not in RF_KINDS:
        raise UserError(f"{where}: complex weights ('weight/real', 'weight/imag') need a "
                        f"resonate-and-fire neuron (neuron/type {' or '.join(RF_KINDS)}); "
                        f"{REEXPORT}")
    weights = g["weight"]
    if not isinstance(weights, h5py.Group):
        raise UserError(f"{where}: a resonate-and-fire neuron needs complex weights "
                        "('weight/real' and 'weight/imag'), as slayer's rf.Dense writes them")
    unknown(weights, {"real", "imag"}, f"{where}: weight")
    unknown(neuron, RF_NEURON_KEYS, f"{where}: neuron")
    rows = int(np.prod(shape(g, where)))
    real, imag = (fields.weight(g, where, rows, WEIGHT_MIN, WEIGHT_MAX, key=f"weight/{part}")
                  for part in ("real", "imag"))
    if real.ndim != 2 or real.shape != imag.shape or real.shape[0] != rows:
        raise UserError(f"{where}: 'weight/real' {list(real.shape)} and 'weight/imag' "
                        f"{list(imag.shape)} must both be ({rows}, inputs); {REEXPORT}")
    ntype = text(neuron, "type", where)
    _binary_spikes(neuron, where, f"Lava's {RF_KINDS[ntype]}")
    decays = []
    for key in ("sinDecay", "cosDecay"):
        d = ints(read(neuron, key, where), where, key, -DECAY_UNITY, DECAY_UNITY).reshape(-1)
        if d.size not in (1, rows):
            raise UserError(f"{where}: 'neuron/{key}' has {d.size} values; give one or one per "
                            f"neuron ({rows}); {REEXPORT}")
        decays.append(tuple(int(v) for v in d))
    params = RFParams(*decays, _scalar(neuron, "vThMant", where, 0, THRESHOLD_MAX),
                      izhikevich=RF_KINDS[ntype] == "RF_IZ")
    try:
        return IntLayer(weight=real, weight_imag=imag, params=params, name=name)
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None


def _decay(neuron, key: str, where: str, size: int | None) -> int | tuple[int, ...]:
    """One decay for the layer, or one per neuron (Lava's LIF applies an array element-wise);
    `size` is the layer's neuron count where per-neuron values are possible (dense layers)."""
    value = ints(read(neuron, key, where), where, key, 0, DECAY_UNITY).reshape(-1)
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
    unknown(g, {"type", "shape", "weight", "bias", "neuron"}, where)
    params = _neuron_params(g, where)
    dims = shape(g, where)
    lim = INPUT_LIMIT - 1
    gain = _scalar(g, "weight", where, -lim, lim) if "weight" in g else 64
    bias = _scalar(g, "bias", where, -lim, lim) if "bias" in g else 0
    n = int(np.prod(dims))
    try:
        return IntLayer(weight=np.full(n, gain, dtype=np.int64), params=params, name=name,
                        bias=np.full(n, bias, dtype=np.int64) if bias else None,
                        input_shape=dims)
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None


def _read_layer(g, kind: str, in_shape, name: str, where: str) -> IntLayer:
    if _is_rf(g, where):
        return _read_rf(g, kind, name, where)
    if kind == "conv" and "delay" in g:
        raise UserError(f"{where}: netx 0.6.0 ignores a conv layer's 'delay' (Lava would run the "
                        "layer without it): retrain without delays or remove the dataset")
    if kind == "dense_rec" and "delay" in g:
        raise UserError(f"{where}: netx 0.6.0 builds delays on a recurrent layer with the input "
                        "delays on the recurrent synapse and without the weight exponent: "
                        "retrain without delays or remove the dataset")
    unknown(g, LAYER_KEYS[kind], where)
    params = _neuron_params(g, where, None if kind == "conv" else int(np.prod(shape(g, where))))
    conv = None
    if kind == "conv":
        if in_shape is None or len(in_shape) != 3:
            raise UserError(f"{where}: a conv layer needs a [C, H, W] input and the file has no "
                            "'input' layer: pass --input-shape C,H,W")
        conv = fields.conv(g, in_shape, where)
    declared = shape(g, where)
    if conv is None:                  # netx sizes a dense layer by prod(shape): slayer writes
        declared = (int(np.prod(declared)),)          # [n, 1, 1] after a flatten layer
    weight = fields.weight(g, where, None if conv else declared[0], WEIGHT_MIN, WEIGHT_MAX)
    if weight.ndim != (4 if conv else 2) or 0 in weight.shape:
        raise UserError(f"{where}: 'weight' has shape {list(weight.shape)}; a {kind} layer needs "
                        f"a non-empty {4 if conv else 2}-D array; {REEXPORT}")
    if conv and weight.shape[0] % conv.groups:
        raise UserError(f"{where}: {weight.shape[0]} output channels cannot be split into "
                        f"'groups' = {conv.groups}; {REEXPORT}")
    recurrent = delay = None
    if kind == "dense_rec":
        recurrent = ints(read(g, "weight_rec", where), where, "weight_rec", WEIGHT_MIN,
                         WEIGHT_MAX)
        if recurrent.size != weight.shape[0] ** 2:
            raise UserError(f"{where}: 'weight_rec' has {recurrent.size} values; a recurrent "
                            f"layer of {weight.shape[0]} neurons needs ({weight.shape[0]}, "
                            f"{weight.shape[0]}); {REEXPORT}")
        recurrent = recurrent.reshape(weight.shape[0], weight.shape[0])
    if "delay" in g:
        delay = _delay(read(g, "delay", where), weight.shape, where)
    bias = None
    if "bias" in g:
        bias = ints(read(g, "bias", where), where, "bias", 1 - BIAS_LIMIT, BIAS_LIMIT - 1)
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


def _delay(value, dims: tuple, where: str) -> np.ndarray:
    """netx's `delay` as an (out, in) matrix, expanded as netx expands it: one value for all,
    one per output neuron (checked first, as netx does), one per input, or the full matrix.
    Delays beyond MAX_DELAY are refused: netx would clip them to it with only a warning."""
    d = np.asarray(value)
    if d.dtype.kind == "f" and np.isfinite(d).all():
        d = np.floor(d)                   # netx's astype(int) on lava-dl's floored delays
    d = ints(d, where, "delay", 0, 2 ** 31 - 1)
    if d.size and d.max() > MAX_DELAY:
        raise UserError(f"{where}: 'delay' reaches {d.max()} steps; Loihi 2 through netx holds "
                        f"0..{MAX_DELAY} (netx would clip it silently): retrain with shorter "
                        "delays")
    out, inp = dims
    if d.size == 1:
        return np.full(dims, int(d.reshape(-1)[0]), dtype=np.int64)
    if d.ndim == 1 and d.size == out:
        return np.repeat(d.reshape(-1, 1), inp, axis=1)
    if d.ndim == 1 and d.size == inp:
        return np.repeat(d.reshape(1, -1), out, axis=0)
    if d.shape == tuple(dims):
        return d
    raise UserError(f"{where}: 'delay' has shape {list(d.shape)}; netx takes one value, one per "
                    f"output ({out}), one per input ({inp}) or ({out}, {inp}); {REEXPORT}")


def read_network(path: str | Path, input_shape: tuple[int, ...] | None = None
                 ) -> tuple[IntNetwork | SDNetwork, dict]:
    """A netx file of either kind with the metadata we stored: the one place that chooses
    between the CUBA reader (`read_netx`) and the sigma-delta one (`read_sdnn`), so every verb
    and backend takes the network it returns."""
    if is_sdnn(path):
        return read_sdnn(path), {}
    return read_netx(path, input_shape)


def read_netx(path: str | Path,
              input_shape: tuple[int, ...] | None = None) -> tuple[IntNetwork, dict]:
    """Read a netx file into an `IntNetwork` plus the metadata we stored (empty if foreign).

    `input_shape` (C, H, W) is needed only for files without an 'input' layer that start with
    a convolution (lava-dl's slayer exports them so; netx then needs it too). Every malformed
    or altered file raises a one-line `UserError` naming the file, the layer and the field."""
    path = Path(path)
    with fields.open_layers(path, REEXPORT) as (f, groups):
        if uses_sdnn(f):
            raise UserError(f"{path}: a sigma-delta (SDNN) network, not a CUBA one: run it "
                            "with `neurodeploy simulate|parity|inspect` and --data frames.npz")
        metadata = metadata_from_json(f.attrs.get("neurodeploy", "{}"), str(path),
                                      "the 'neurodeploy' attribute")
        given = tuple(input_shape) if input_shape else None
        input_shape, layers, dims = None, [], given
        for i in range(len(groups)):
            g = fields.layer_group(groups, i, path)
            where = f"{path}: layer {i}"
            kind = text(g, "type", where) or "?"
            if kind == "input" and "neuron" not in g and i == 0:
                input_shape = dims = shape(g, where)
            elif kind == "input" and i == 0:
                layers.append(_read_input(g, "input", where))
                input_shape = dims = layers[-1].shape
            elif kind == "flatten":
                dims = (int(np.prod(dims)),) if dims else dims
            elif kind in ("dense", "dense_rec", "conv") and ("neuron" in g or kind != "conv"):
                if kind != "conv" and dims is not None and len(dims) == 3:
                    raise UserError(f"{where}: a dense layer after a [C, H, W] shape needs a "
                                    f"'flatten' layer before it (netx connects no other way);"
                                    f" {REEXPORT}")
                name = f"{'conv' if kind == 'conv' else 'fc'}{len(layers)}"
                if "neuron" not in g and "architecture" in metadata:
                    raise UserError(f"{where}: the {kind} layer has no 'neuron' group, which "
                                    f"`neurodeploy export` always writes: the file was "
                                    f"altered; {REEXPORT}")
                layers.append(_read_layer(g, kind, dims, name, where))
                dims = layers[-1].shape
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
    readout = metadata.get("readout", False) or not layers[-1].resonate and \
        layers[-1].params.threshold >= THRESHOLD_MAX
    try:
        net = IntNetwork(input_shape=input_shape or given or (layers[0].in_size,),
                         layers=tuple(layers), readout=bool(readout))
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    check_deployable(net, str(path))
    check_architecture(net, metadata, str(path))
    return net, metadata
