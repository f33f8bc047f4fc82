"""A bias into a decaying current (tau_syn > dt) is a current every step, which Loihi's bias
(added to v) cannot make; it deploys exactly as a synapse, whose weight is the bias, from
neurons that spike every step: a relay first layer (`_relay`) or neurons appended to the layer
before (`_add_always_on`)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.graph.quantize import BIAS_MAX
from neurodeploy.neurons import Conv, CubaParams, IntLayer
from neurodeploy.neurons.cuba import DECAY_UNITY

RELAY = "always_on_input"


def bias_as_synapse(layers: list[IntLayer], input_shape: tuple[int, ...], name: str, conv,
                    weight, bias, source: str):
    """The bias of the layer about to be built (its first linear node `name`) as a synapse from
    neurons that spike every step: `layers` gains them in place (the relay as the first layer,
    or always-on neurons appended to the last layer); returns the layer's (weight, conv) that
    read them and the kernel tap `where` they are read at (None for a dense layer)."""
    prev = layers[-1] if layers else None
    where = _always_on_where(name, conv, weight, prev, source)
    if prev is None:
        layers.append(_relay(input_shape, conv is not None))
    else:
        layers[-1] = _add_always_on(prev, source)
    weight, conv = _bias_synapse(weight, bias, conv, layers[-1], where)
    return weight, conv, where


def bias_report(layers: list[IntLayer], layer: IntLayer, row: dict, weight, conv, where) -> dict:
    """The report's "bias_as_synapse" entry for `layer` (not yet in `layers`), quantized into
    `row` from the float `weight` that `bias_as_synapse` returned: the layer before it and the
    largest error of the deployed bias weights."""
    pick = (lambda w: w[:, -1, where[0], where[1]]) if conv else (lambda w: w[:, -1])
    return {"from": layers[-2].name if len(layers) > 1 else layers[-1].name,
            "max_abs_error": float(np.abs(pick(layer.weight) / row["scale"]
                                          - pick(weight) * _channel(row["row_scale"],
                                                                    weight)).max())}


def _relay(input_shape: tuple[int, ...], conv: bool = False) -> IntLayer:
    """A first layer that repeats each input spike in the same window step (weight 2 over
    threshold 1, no current or voltage memory) plus neurons that spike every step (bias 2,
    no inputs): the always-on source a bias into the first layer's decaying current needs.
    Dense: one always-on neuron after the n inputs. Before a convolution: a 1x1 convolution,
    the inputs' C channels repeated plus one always-on channel. Exact in window time; it costs
    one layer (one chip step of latency), the relay neurons and their synapses. An always-on
    *input channel* would save them but is a contract the netx file cannot state (every
    runtime would have to append it to the user's inputs)."""
    if conv:
        c = input_shape[0]
        weight = np.zeros((c + 1, c, 1, 1), dtype=np.int64)
        weight[np.arange(c), np.arange(c)] = 2
        bias = np.zeros(c + 1, dtype=np.int64)
        bias[-1] = 2
        return IntLayer(weight=weight, params=CubaParams(DECAY_UNITY, DECAY_UNITY, 1),
                        bias=bias, name=RELAY,
                        conv=Conv(tuple(input_shape), (1, 1), (0, 0), (1, 1), 1))
    n = int(np.prod(input_shape))
    weight = np.zeros((n + 1, n), dtype=np.int64)
    weight[np.arange(n), np.arange(n)] = 2
    bias = np.zeros(n + 1, dtype=np.int64)
    bias[-1] = 2
    return IntLayer(weight=weight, params=CubaParams(DECAY_UNITY, DECAY_UNITY, 1), bias=bias,
                    name=RELAY)


def _always_on_where(name, conv, weight, prev, source):
    """Where the bias synapse can sit, or a one-line refusal: for a convolution, a kernel tap
    that reads an in-range pixel of the always-on channel at every output position (padding
    zeros there would drop the bias at the border), as (row, column); None for a dense layer.
    A grouped convolution on either side, or a dense layer feeding a convolution, is refused."""
    why = None
    if conv is not None and conv.groups != 1:
        why = f"its convolution has groups = {conv.groups}"
    elif prev is not None and prev.conv is not None and prev.conv.groups != 1:
        why = f"layer '{prev.name}' before it is a grouped convolution"
    elif conv is not None and prev is not None and prev.conv is None:
        why = f"layer '{prev.name}' before it is dense, not a convolution"
    tap = None
    if why is None and conv is not None:
        tap = _tap(conv, weight.shape[2:])
        if tap is None:
            why = "no kernel tap reads an in-range pixel at every output position (padding)"
    if why:
        raise UserError(f"{source}: node '{name}': a bias into a decaying current (tau_syn > dt) "
                        "deploys as a synapse from neurons that spike every step, which "
                        f"cannot be built here: {why}; remove the bias or set tau_syn = dt")
    return tap


def _tap(conv: Conv, kernel: tuple[int, int]) -> tuple[int, int] | None:
    """The first kernel tap (row, column) that lands inside the input at every output
    position of `conv` with a kernel of size `kernel`."""
    found = []
    for axis in (0, 1):
        size, k = conv.input_shape[1 + axis], int(kernel[axis])
        s, p, d = conv.stride[axis], conv.padding[axis], conv.dilation[axis]
        outputs = (size + 2 * p - d * (k - 1) - 1) // s + 1
        ok = [j for j in range(k) if all(0 <= i * s - p + j * d < size for i in range(outputs))]
        if not ok:
            return None
        found.append(ok[0])
    return tuple(found)


def _bias_synapse(weight, bias, conv, source_layer: IntLayer, where):
    """The layer's weights with the bias as the synapse from the always-on neurons that
    `source_layer` (relay or previous layer, already extended) ends with: a dense layer reads
    the last of them, a convolution the always-on channel at tap `where`."""
    extra = source_layer.size - (weight.shape[1] if conv is None
                                 else int(np.prod(conv.input_shape)))
    if conv is None:
        cols = np.zeros((weight.shape[0], extra))
        cols[:, -1] = bias
        return np.concatenate([weight, cols], axis=1), None
    channel = np.zeros((weight.shape[0], 1, *weight.shape[2:]))
    channel[:, 0, where[0], where[1]] = bias
    c, h, w = conv.input_shape
    return np.concatenate([weight, channel], axis=1), replace(conv, input_shape=(c + 1, h, w))


def _channel(row_scale: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A layer's per-neuron row scale, one value per output row of `weight`."""
    return row_scale.reshape(weight.shape[0], -1)[:, 0]


def _add_always_on(layer: IntLayer, source: str) -> IntLayer:
    """`layer` with neurons that spike every step, last: one neuron for a dense layer, one
    channel for a convolution; no input weights, no recurrence, and a bias one above the
    threshold (after each reset to zero its voltage is the bias again). The next layer reads
    them as the source of its bias current."""
    th = int(layer.params.threshold)
    if th + 1 > BIAS_MAX:
        raise UserError(f"{source}: node '{layer.name}': an always-on neuron needs a bias above "
                        f"its layer's threshold {th}, beyond Loihi's bias range {BIAS_MAX}; "
                        "remove the next layer's bias or set its tau_syn = dt")
    m = layer.weight.shape[0]
    bias = np.zeros(m + 1, dtype=np.int64) if layer.bias is None else np.append(layer.bias, 0)
    bias[-1] = th + 1
    recurrent = None
    if layer.recurrent is not None:
        recurrent = np.zeros((m + 1, m + 1), dtype=np.int64)
        recurrent[:m, :m] = layer.recurrent
    zero = np.zeros((1, *layer.weight.shape[1:]), dtype=np.int64)
    return replace(layer, weight=np.concatenate([layer.weight, zero]), bias=bias,
                   recurrent=recurrent)
