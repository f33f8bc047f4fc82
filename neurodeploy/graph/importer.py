"""Deploying NIR graphs from other frameworks (snnTorch, Norse, ...): float -> Loihi integers.

Discretization (forward Euler with step dt; dt from the graph's metadata, the `dt` option, or
inferred from the snnTorch convention r = tau_mem / dt; otherwise refused):
    CubaLIF  I <- I (1 - dt/tau_syn) + (dt/tau_syn) w_in x
             v <- v (1 - dt/tau_mem) + (dt/tau_mem) (v_leak + r I)      (the *updated* I)
    LIF      v <- v (1 - dt/tau) + (dt/tau) (v_leak + r x)
    IF       v <- v + r x
    spike when v > v_threshold, then v <- 0 (Loihi resets to zero: v_reset must be 0;
    reset-by-subtraction models, such as snnTorch's default, do not map exactly).
    LI / CubaLI  as LIF / CubaLIF without spikes: allowed as the last layer, deployed as a
             neuron whose threshold is out of reach; its voltage is the output (predictions
             take the argmax of the voltage summed over the window).
On Loihi v <- v (1 - vDecay/4096) + u + bias with u <- u (1 - iDecay/4096) + W s, so each layer
becomes: iDecay = 4096 dt/tau_syn (4096 for LIF/IF: u = W s), vDecay = 4096 dt/tau_mem, the gains
(dt/tau_syn) w_in (dt/tau_mem) r folded into the weight rows, v_leak into the bias, and a
per-neuron threshold made uniform by rescaling each neuron's inputs. Linear nodes between two
neuron layers (Affine, Linear, Conv2d, Flatten, Scale, SumPool2d, AvgPool2d) are composed into
one synapse (kept as a convolution when it is a single Conv2d). Finally one scale per layer
puts the weights on Loihi's 8-bit grid; every rounding is reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.errors import UserError
from neurodeploy.graph.nir_io import graph_dt, groups, numbers, pair, shape_of
from neurodeploy.neurons import Conv, CubaParams, IntLayer, IntNetwork
from neurodeploy.neurons.cuba import DECAY_UNITY, THRESHOLD_MAX, WEIGHT_MAX

LINEAR = (nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten, nir.Scale, nir.SumPool2d,
          nir.AvgPool2d)
NEURONS = (nir.CubaLIF, nir.LIF, nir.IF)
READOUTS = (nir.CubaLI, nir.LI)          # non-spiking: only as the last layer
SUPPORTED = ("Input", "Output", *(c.__name__ for c in LINEAR + NEURONS + READOUTS))
BIAS_MAX = 2 ** 12 - 1


@dataclass
class _Neuron:
    du: float
    dv: float
    gain: np.ndarray        # per neuron: input -> u scale
    bias: np.ndarray        # per neuron: constant added to v each step
    threshold: np.ndarray   # per neuron


def _arr(value, n: int | None = None, where: tuple[str, str, str] = ("<graph>", "?", "?")):
    """A parameter as a flat per-neuron array (scalars are broadcast to n neurons); `where` is
    (source, node, field) for messages."""
    source, node, field = where
    a = numbers(value, node, field, source).reshape(-1)
    if n is None or a.size == n:
        return a
    if a.size == 1:
        return np.full(n, a[0])
    raise UserError(f"{source}: node '{node}': {field} has {a.size} values for {n} neurons; "
                    "give one per neuron or a single value")


def chain(graph: nir.NIRGraph, source: str) -> list[tuple[str, nir.NIRNode]]:
    """The graph's nodes from Input to Output; refuses what is not a simple chain."""
    bad = [f"'{k}' ({type(v).__name__})" for k, v in graph.nodes.items()
           if type(v).__name__ not in SUPPORTED]
    if bad:
        raise UserError(f"{source}: unsupported NIR node(s) {', '.join(bad)}; supported: "
                        f"{', '.join(SUPPORTED)}")
    successor = {}
    for pre, post in graph.edges:
        for end in (pre, post):
            if end not in graph.nodes:
                raise UserError(f"{source}: edge ({pre!r}, {post!r}) names node '{end}', which "
                                "does not exist: remove the edge or add the node")
        if pre in successor:
            raise UserError(f"{source}: node '{pre}' feeds several nodes; only chains deploy")
        successor[pre] = post
    inputs = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise UserError(f"{source}: expected exactly one Input node, found {len(inputs)}")
    order, name = [], inputs[0]
    while name is not None:
        if any(name == n for n, _ in order):
            raise UserError(f"{source}: the graph has a cycle through '{name}'")
        order.append((name, graph.nodes[name]))
        if isinstance(graph.nodes[name], nir.Output):
            break
        name = successor.get(name)
    if not isinstance(order[-1][1], nir.Output):
        raise UserError(f"{source}: the chain from '{inputs[0]}' ends at '{order[-1][0]}' "
                        "without reaching an Output node")
    return order


def infer_dt(graph: nir.NIRGraph, dt: float | None, source: str) -> float:
    if dt is not None:
        return float(dt)
    given = graph_dt(graph, source)
    if given is not None:
        return given
    candidates = set()
    for name, node in graph.nodes.items():
        if isinstance(node, (nir.CubaLIF, nir.LIF)):
            cuba = isinstance(node, nir.CubaLIF)
            tau = _arr(node.tau_mem if cuba else node.tau, None,
                       (source, name, "tau_mem" if cuba else "tau"))
            r = _arr(node.r, None, (source, name, "r"))
            if r.size and np.all(r > 1):
                candidates.add(float(f"{np.median(tau / r):.5g}"))   # float32 exports
    if len(candidates) == 1 and 0 < next(iter(candidates)) < np.inf:
        return candidates.pop()
    raise UserError(f"{source}: the time step dt cannot be inferred (no 'dt' in the metadata "
                    "and no r = tau/dt convention); pass it, e.g. --dt 1e-3 for Norse's default")


def _neuron(name: str, node: nir.NIRNode, dt: float, source: str, n: int) -> _Neuron:
    """Per-neuron terms for the n neurons fed by the synapse (scalar parameters broadcast)."""
    raw = np.asarray(node.output_type["output"]).reshape(-1)     # empty: scalar parameters
    declared = int(np.prod(shape_of(raw, name, source))) if raw.size else 1
    if declared not in (1, n):
        raise UserError(f"{source}: node '{name}' has {declared} neurons but its input has {n} "
                        "values: fix the graph's shapes")
    arr = lambda field, default=None: _arr(getattr(node, field, default), n,  # noqa: E731
                                          (source, name, field))
    if np.any(arr("v_reset", 0.0) != 0):
        raise UserError(f"{source}: node '{name}': v_reset must be 0 (Loihi resets to zero)")
    threshold = arr("v_threshold", 1.0)
    if not isinstance(node, READOUTS) and not (np.isfinite(threshold).all()
                                                and (threshold > 0).all()):
        raise UserError(f"{source}: node '{name}': v_threshold must be positive and finite; "
                        "fix the graph")
    if isinstance(node, nir.IF):
        r = arr("r")
        if not np.isfinite(r).all():
            raise UserError(f"{source}: node '{name}': r must be finite; fix the graph")
        return _Neuron(1.0, 0.0, r, np.zeros(n), threshold)
    if isinstance(node, (nir.LIF, nir.LI)):
        dv = dt / arr("tau")
        du, w_in = np.ones(n), np.ones(n)
    else:
        du, dv = dt / arr("tau_syn"), dt / arr("tau_mem")
        w_in = arr("w_in")
    for label, d in (("dt/tau_syn", du), ("dt/tau_mem", dv)):
        if not (np.all(d <= 1) and np.all(d >= 0) and np.all(d == d[0])):   # NaN too
            raise UserError(f"{source}: node '{name}': {label} must be one value in [0, 1] for "
                            "the whole layer (Loihi has one decay per layer)")
    gain = du * w_in * dv * arr("r") if not isinstance(node, (nir.LIF, nir.LI)) \
        else dv * arr("r")
    bias = dv * arr("v_leak")
    if not (np.isfinite(gain).all() and np.isfinite(bias).all()):
        raise UserError(f"{source}: node '{name}': w_in, r or v_leak is infinite; fix the graph")
    return _Neuron(float(du[0]), float(dv[0]), gain, bias, threshold)


def _apply(node: nir.NIRNode, x: torch.Tensor) -> torch.Tensor:
    t = lambda v: torch.as_tensor(np.asarray(v), dtype=torch.float64)  # noqa: E731
    pair = lambda v: tuple(int(i) for i in np.broadcast_to(np.asarray(v), (2,)))  # noqa: E731
    if isinstance(node, nir.Affine):
        return x.flatten(1) @ t(node.weight).T + t(node.bias)
    if isinstance(node, nir.Linear):
        return x.flatten(1) @ t(node.weight).T
    if isinstance(node, nir.Flatten):
        return x.flatten(1)
    if isinstance(node, nir.Scale):
        return x * t(node.scale)
    if isinstance(node, nir.Conv2d):
        return F.conv2d(x, t(node.weight), t(node.bias), stride=pair(node.stride),
                        padding=pair(node.padding), dilation=pair(node.dilation),
                        groups=int(node.groups))
    k, s, p = pair(node.kernel_size), pair(node.stride), pair(node.padding)
    pooled = F.avg_pool2d(x, k, s, p, count_include_pad=True)
    return pooled * (k[0] * k[1]) if isinstance(node, nir.SumPool2d) else pooled


def _synapse(block: list[tuple[str, nir.NIRNode]], in_shape: tuple[int, ...], source: str):
    """Compose a run of linear nodes into (conv geometry or None, weight, bias, out shape)."""
    nodes = [node for _, node in block if not isinstance(node, nir.Flatten)]
    if len(nodes) == 1 and isinstance(nodes[0], nir.Conv2d) and len(in_shape) == 3:
        c = nodes[0]
        name = block[0][0]
        if isinstance(c.padding, str):
            raise UserError(f"{source}: node '{name}': padding {c.padding!r} must be numeric")
        geometry = Conv(tuple(in_shape), pair(c.stride, name, "stride", source, 1),
                        pair(c.padding, name, "padding", source, 0),
                        pair(c.dilation, name, "dilation", source, 1),
                        groups(c.groups, name, source))
        weight = numbers(c.weight, name, "weight", source)
        bias = numbers(c.bias if c.bias is not None else 0.0, name, "bias", source)
        if weight.ndim != 4 or weight.shape[0] % geometry.groups or bias.size not in (
                1, weight.shape[0]) or weight.shape[1] * geometry.groups != in_shape[0]:
            raise UserError(f"{source}: node '{name}': Conv2d weight {list(weight.shape)} or bias "
                            f"does not fit input {list(in_shape)} with groups = {geometry.groups}")
        out_shape = geometry.output_shape(weight)
        return geometry, weight, np.broadcast_to(bias, out_shape[:1]).copy(), out_shape
    size = int(np.prod(in_shape))
    if size > 50_000:
        raise UserError(f"{source}: the linear block at '{block[0][0]}' has {size} inputs, too "
                        "many to compose into one dense synapse")
    with torch.no_grad():
        def run(x):
            for name, node in block:
                try:
                    x = _apply(node, x)
                except (ValueError, TypeError, RuntimeError) as e:   # shapes that do not chain
                    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                    raise UserError(f"{source}: node '{name}' ({type(node).__name__}) cannot "
                                    f"take an input of shape {list(x.shape[1:])}: {reason}; "
                                    "fix the graph's shapes") from None
            return x
        zero = run(torch.zeros(1, *in_shape, dtype=torch.float64))
        basis = run(torch.eye(size, dtype=torch.float64).reshape(size, *in_shape))
    out_shape = tuple(zero.shape[1:])
    weight = (basis - zero).reshape(size, -1).T.numpy()
    return None, weight, zero.reshape(-1).numpy(), out_shape


def import_graph(graph: nir.NIRGraph, source: str = "<graph>",
                 dt: float | None = None) -> tuple[IntNetwork, list[dict]]:
    """Lower a float NIR graph to Loihi integers; returns the network and a quantization report."""
    dt = infer_dt(graph, dt, source)
    nodes = chain(graph, source)
    input_shape = shape_of(nodes[0][1].output_type["output"], nodes[0][0], source)
    shape, block, layers, report, readout = input_shape, [], [], [], False
    for index, (name, node) in enumerate(nodes[1:], start=1):
        if isinstance(node, LINEAR):
            block.append((name, node))
            continue
        if isinstance(node, nir.Output):
            if block:
                raise UserError(f"{source}: the graph ends with linear node(s) "
                                f"{', '.join(n for n, _ in block)} after its last neuron layer; "
                                "Loihi outputs spikes: end with a spiking layer (LIF, CubaLIF, IF)")
            break
        if not block:
            raise UserError(f"{source}: node '{name}' follows another neuron layer directly; "
                            "put a synapse (Affine, Linear, Conv2d) between them")
        readout = isinstance(node, READOUTS)
        if readout and not isinstance(nodes[index + 1][1], nir.Output):
            raise UserError(f"{source}: non-spiking node '{name}' ({type(node).__name__}) can "
                            "only be the last layer, right before the Output")
        conv, weight, bias, out_shape = _synapse(block, shape, source)
        neuron = _neuron(name, node, dt, source, int(np.prod(out_shape)))
        layer, row = _quantize(name, block[0][0], conv, weight, bias, out_shape, neuron, source,
                               readout)
        layers.append(layer)
        report.append(row)
        shape, block = layer.shape, []
    if not layers:
        raise UserError(f"{source}: the graph has no synapse + neuron layer to deploy")
    try:
        return IntNetwork(input_shape=input_shape, layers=tuple(layers), readout=readout), report
    except ValueError as e:
        raise UserError(f"{source}: {e}") from None


def _quantize(name, synapse_name, conv, weight, bias, out_shape, neuron: _Neuron, source,
              readout: bool = False):
    n = int(np.prod(out_shape))
    if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
        raise UserError(f"{source}: node '{synapse_name}': weights or biases hold NaN or "
                        "infinity; fix the graph")
    if np.any(bias) and neuron.du < 1:
        raise UserError(f"{source}: node '{synapse_name}': a bias is a constant input current, "
                        "which Loihi can only add when the current does not decay across steps "
                        "(tau_syn = dt); remove the bias")
    per_channel = n // weight.shape[0] if conv else 1
    if readout:                                                # no threshold to respect
        neuron.threshold = np.ones_like(neuron.gain)
    ref = neuron.threshold.max()
    row_scale = neuron.gain * ref / neuron.threshold           # uniform threshold, gains folded
    v_bias = (neuron.bias + neuron.gain * np.repeat(bias, per_channel)) * ref / neuron.threshold
    if conv:
        per = row_scale.reshape(weight.shape[0], -1)
        if not np.allclose(per, per[:, :1]):
            raise UserError(f"{source}: node '{name}': gains or thresholds vary within a "
                            "channel, which a convolution cannot express")
        w_eff = weight * per[:, :1, None, None]
    else:
        w_eff = weight * row_scale[:, None]
    w_max = np.abs(w_eff).max()
    if w_max == 0:
        raise UserError(f"{source}: node '{synapse_name}': all weights are zero")
    scale = WEIGHT_MAX / w_max if readout else min(WEIGHT_MAX / w_max, THRESHOLD_MAX / ref)
    if np.any(v_bias):
        scale = min(scale, BIAS_MAX / np.abs(v_bias).max())
    w_int = np.clip(2 * np.round(w_eff * scale / 2), -256, 254).astype(np.int64)
    th_int = THRESHOLD_MAX if readout else int(max(1, round(ref * scale)))
    b_int = np.round(v_bias * scale).astype(np.int64) if np.any(v_bias) else None
    i_decay, v_decay = round(DECAY_UNITY * neuron.du), round(DECAY_UNITY * neuron.dv)
    try:
        layer = IntLayer(weight=w_int, params=CubaParams(i_decay, v_decay, th_int),
                         bias=(b_int[::per_channel] if conv and b_int is not None else b_int),
                         name=synapse_name, conv=conv)
    except ValueError as e:
        raise UserError(f"{source}: node '{synapse_name}': {e}") from None
    err = w_int / scale - w_eff
    row = {
        "layer": synapse_name, "neurons": name, "scale": float(scale),
        "weight_rel_rms_error": float(np.sqrt((err ** 2).mean() / (w_eff ** 2).mean())),
        "weight_max_abs_error": float(np.abs(err).max()),
        "threshold": {"float": float(ref * scale), "int": th_int,
                      "rel_error": float(abs(th_int - ref * scale) / (ref * scale))},
        "i_decay": {"exact": DECAY_UNITY * neuron.du, "int": i_decay},
        "v_decay": {"exact": DECAY_UNITY * neuron.dv, "int": v_decay},
        "bias_max_abs_error": (float(np.abs(b_int - v_bias * scale).max())
                               if b_int is not None else 0.0),
    }
    return layer, row
