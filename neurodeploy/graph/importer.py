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
one synapse: a convolution where they are convolutions and pools (a pool folds into the conv
before it, kernel composed; a pool alone is a depthwise conv, groups = channels), else one
dense matrix. Finally one scale per layer puts the weights on Loihi's 8-bit grid (a power of
two where that makes them exact); every rounding is reported.
Recurrent layers: a neuron node whose output returns to itself through one Affine, Linear or
Conv2d node (snnTorch RLeaky/RSynaptic; see nir_io.recurrent_loops) adds W_rec s[t-1] to its
input at step t, as snnTorch does and Lava's RecurrentDense does; the loop becomes the layer's
dense recurrent weights (the layer is dense then), scaled with the feed-forward weights.
Other structures (branches, skip connections, loops through other layers) are refused.
A bias into a decaying current (tau_syn > dt) is a current every step that Loihi's bias (added
to v) cannot make; it deploys exactly as a synapse, whose weight is the bias, from neurons that
spike every step: a relay first layer (`_relay`) or neurons appended to the layer before
(`_add_always_on`). Nested NIRGraph nodes are flattened first (nir_io.flatten); IF-only graphs
need no dt. NIR cannot state the reset mechanism: reset to zero is assumed (see RESET_NOTE).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import nir
import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.errors import UserError
from neurodeploy.graph.nir_io import (DT, flatten, graph_dt, groups, not_a_chain, numbers,
                                       pair, recurrent_loops, shape_of)
from neurodeploy.neurons import Conv, CubaParams, IntLayer, IntNetwork
from neurodeploy.neurons.cuba import DECAY_UNITY, THRESHOLD_MAX, WEIGHT_MAX

LINEAR = (nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten, nir.Scale, nir.SumPool2d,
          nir.AvgPool2d)
NEURONS = (nir.CubaLIF, nir.LIF, nir.IF)
SPATIAL = (nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)
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


def chain(graph: nir.NIRGraph, source: str,
          recurrent: bool = False) -> list[tuple[str, nir.NIRNode]]:
    """The graph's nodes from Input to Output, recurrent loops (see `recurrent_loops`) left
    out where `recurrent` allows them; refuses what is not a chain, naming the structure."""
    bad = [f"'{k}' ({type(v).__name__})" for k, v in graph.nodes.items()
           if type(v).__name__ not in SUPPORTED]
    if bad:
        raise UserError(f"{source}: unsupported NIR node(s) {', '.join(bad)}; supported: "
                        f"{', '.join(SUPPORTED)}")
    for pre, post in graph.edges:
        for end in (pre, post):
            if end not in graph.nodes:
                raise UserError(f"{source}: edge ({pre!r}, {post!r}) names node '{end}', which "
                                "does not exist: remove the edge or add the node")
    edges, loops = recurrent_loops(graph)
    if loops and not recurrent:
        name, path = next(iter(loops.items()))
        raise UserError(f"{source}: node '{name}' is recurrent (through "
                        f"{', '.join(repr(n) for n in path)}); this reader takes feed-forward "
                        "chains only: deploy the graph and run the deployed network")
    successor = {}
    for pre, post in edges:
        if pre in successor:
            raise not_a_chain(edges, pre, source)
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
    """The time step: given, from the metadata, from r = tau/dt, or DT where no node decays
    (IF neurons only, such as Sinabs's N-MNIST CNN of the NIR paper: v <- v + r x does not
    read dt, so any value lowers to the same network and demanding --dt would be noise)."""
    if dt is not None:
        return float(dt)
    given = graph_dt(graph, source)
    if given is not None:
        return given
    if not any(isinstance(node, (nir.CubaLIF, nir.LIF, nir.CubaLI, nir.LI))
               for node in graph.nodes.values()):
        return DT
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
                    "and no r = tau/dt convention); pass it with --dt (Norse 1.1.0 graphs: --dt 1e-6)")


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


@dataclass
class _Kernel:
    """A linear map on [C, H, W] written as one convolution (PyTorch conventions)."""
    weight: np.ndarray                  # (Cout, Cin / groups, kH, kW)
    bias: np.ndarray                    # (Cout,)
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def dense_channels(self) -> np.ndarray:
        """(Cout, Cin, kH, kW): groups expanded to a block-diagonal channel matrix."""
        cout, cin_g = self.weight.shape[:2]
        full = np.zeros((cout, cin_g * self.groups, *self.weight.shape[2:]))
        per = cout // self.groups
        for g in range(self.groups):
            full[g * per:(g + 1) * per, g * cin_g:(g + 1) * cin_g] = \
                self.weight[g * per:(g + 1) * per]
        return full


def _kernel(name: str, node: nir.NIRNode, in_shape: tuple[int, ...], source: str) -> _Kernel:
    """A Conv2d, or a pooling node as a fixed-weight depthwise conv (groups = channels):
    SumPool2d weights 1, AvgPool2d weights 1/(kH kW) (count_include_pad, as `_apply`)."""
    if isinstance(node, nir.Conv2d):
        if isinstance(node.padding, str):
            raise UserError(f"{source}: node '{name}': padding {node.padding!r} must be numeric")
        k = _Kernel(numbers(node.weight, name, "weight", source),
                    np.zeros(0), pair(node.stride, name, "stride", source, 1),
                    pair(node.padding, name, "padding", source, 0),
                    pair(node.dilation, name, "dilation", source, 1),
                    groups(node.groups, name, source))
        bias = numbers(node.bias if node.bias is not None else 0.0, name, "bias", source)
        w = k.weight
        if w.ndim != 4 or w.shape[0] % k.groups or bias.size not in (1, w.shape[0]) \
                or w.shape[1] * k.groups != in_shape[0]:
            raise UserError(f"{source}: node '{name}': Conv2d weight {list(w.shape)} or bias "
                            f"does not fit input {list(in_shape)} with groups = {k.groups}")
        k.bias = np.broadcast_to(bias.reshape(-1), (w.shape[0],)).copy()
        return k
    size = pair(node.kernel_size, name, "kernel_size", source, 1)
    channels = in_shape[0]
    value = 1.0 / (size[0] * size[1]) if isinstance(node, nir.AvgPool2d) else 1.0
    return _Kernel(np.full((channels, 1, *size), value), np.zeros(channels),
                   pair(node.stride, name, "stride", source, 1),
                   pair(node.padding, name, "padding", source, 0), groups=channels)


def _compose(a: _Kernel, b: _Kernel) -> _Kernel:
    """b after a as one convolution: stride sa*sb, dilation 1, kernel taps at
    sa*db*j + da*l. Exact when b has no padding (padding of b pads a's *output* with zeros,
    which no input padding reproduces); callers verify the result numerically anyway."""
    ka, kb = a.dense_channels(), b.dense_channels()
    sa, sb, da, db = a.stride, b.stride, a.dilation, b.dilation
    size = [sa[i] * db[i] * (kb.shape[2 + i] - 1) + da[i] * (ka.shape[2 + i] - 1) + 1
            for i in (0, 1)]
    k = np.zeros((kb.shape[0], ka.shape[1], *size))
    for jh in range(kb.shape[2]):
        for jw in range(kb.shape[3]):
            for lh in range(ka.shape[2]):
                for lw in range(ka.shape[3]):
                    k[:, :, sa[0] * db[0] * jh + da[0] * lh, sa[1] * db[1] * jw + da[1] * lw] += \
                        kb[:, :, jh, jw] @ ka[:, :, lh, lw]
    bias = b.bias + kb.sum((2, 3)) @ a.bias
    out = _Kernel(k, bias, (sa[0] * sb[0], sa[1] * sb[1]),
                  tuple(a.padding[i] + sa[i] * b.padding[i] for i in (0, 1)))
    for g in sorted({a.groups, b.groups}, reverse=True):       # keep a factor's groups
        if g > 1 and k.shape[0] % g == 0 and k.shape[1] % g == 0:
            grouped = _Kernel(np.concatenate([k[i * k.shape[0] // g:(i + 1) * k.shape[0] // g,
                                                i * k.shape[1] // g:(i + 1) * k.shape[1] // g]
                                              for i in range(g)]), bias, out.stride, out.padding,
                              groups=g)
            if np.array_equal(grouped.dense_channels(), k):
                return grouped
    return out


def _as_conv(block, in_shape, source):
    """A run of Conv2d / SumPool2d / AvgPool2d nodes (a trailing Flatten allowed) folded into
    one convolution, or None where that is not exact (checked on random inputs against the
    nodes applied one by one): a pool after a conv becomes a conv with the composed kernel,
    a pool on its own a depthwise conv, instead of a dense unroll of the whole map."""
    spatial = list(block)
    while spatial and isinstance(spatial[-1][1], nir.Flatten):
        spatial.pop()
    if len(in_shape) != 3 or not spatial or not all(isinstance(node, SPATIAL)
                                                    for _, node in spatial):
        return None
    shape, kernel = tuple(in_shape), None
    for name, node in spatial:
        k = _kernel(name, node, shape, source)
        shape = Conv(shape, k.stride, k.padding, k.dilation, k.groups).output_shape(k.weight)
        if min(shape) < 1:
            return None                    # the generic path names the node and the shapes
        kernel = k if kernel is None else _compose(kernel, k)
    geometry = Conv(tuple(in_shape), kernel.stride, kernel.padding, kernel.dilation,
                    kernel.groups)
    if geometry.output_shape(kernel.weight) != shape:
        return None
    x = torch.as_tensor(np.random.default_rng(0).random((2, *in_shape)))
    try:
        with torch.no_grad():
            want = x
            for _, node in block:
                want = _apply(node, want)
            got = F.conv2d(x, torch.as_tensor(kernel.weight), torch.as_tensor(kernel.bias),
                           stride=kernel.stride, padding=kernel.padding,
                           dilation=kernel.dilation, groups=kernel.groups)
    except (ValueError, TypeError, RuntimeError):      # the dense path names the bad node
        return None
    if got.shape != want.shape:
        return None
    if not np.allclose(got.flatten(1).numpy(), want.flatten(1).numpy(), rtol=1e-9, atol=1e-12):
        return None
    return geometry, kernel.weight, kernel.bias, shape


def _synapse(block: list[tuple[str, nir.NIRNode]], in_shape: tuple[int, ...], source: str,
             dense: bool = False):
    """Compose a run of linear nodes into (conv geometry or None, weight, bias, out shape):
    a convolution where the run is convolutions and pools (unless `dense`), otherwise one
    dense matrix."""
    folded = None if dense else _as_conv(block, tuple(in_shape), source)
    if folded is not None:
        return folded
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


def import_graph(graph: nir.NIRGraph, source: str = "<graph>", dt: float | None = None,
                 headroom: dict[str, float] | None = None) -> tuple[IntNetwork, list[dict]]:
    """Lower a float NIR graph to Loihi integers; returns the network and a quantization report.

    numpy's overflow warnings are silenced here because every result is checked for
    finiteness and refused by node name (with a readable span): a user sees one line, not
    RuntimeWarnings followed by infinities rounded to int64's minimum."""
    with np.errstate(all="ignore"):
        return _import_graph(graph, source, dt, headroom or {})


def _import_graph(graph: nir.NIRGraph, source: str, dt: float | None,
                  headroom: dict[str, float]):
    graph = flatten(graph, source)
    dt = infer_dt(graph, dt, source)
    nodes = chain(graph, source, recurrent=True)
    loops = recurrent_loops(graph)[1]
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
        loop = [(n, graph.nodes[n]) for n in loops.get(name, [])]
        conv, weight, bias, out_shape = _synapse(block, shape, source, dense=bool(loop))
        n = int(np.prod(out_shape))
        neuron = _neuron(name, node, dt, source, n)
        recurrent = None
        if loop:
            if readout:
                raise UserError(f"{source}: recurrent edge through '{loop[0][0]}' onto "
                                f"non-spiking node '{name}' cannot be mapped (it has no spikes "
                                "to send back); remove the loop")
            _, recurrent, rec_bias, rec_shape = _synapse(loop, out_shape, source, dense=True)
            if int(np.prod(rec_shape)) != n:
                raise UserError(f"{source}: recurrent loop through '{loop[0][0]}' gives "
                                f"{int(np.prod(rec_shape))} values back to the {n} neurons of "
                                f"'{name}'; fix its weight shape")
            bias = bias + rec_bias      # a constant current on the loop: every step, as bias
        always_on = bool(np.any(bias)) and neuron.du < 1
        if always_on:        # the bias as a synapse from a source that spikes every step
            prev = layers[-1] if layers else None
            where = _always_on_where(block[0][0], conv, weight, prev, source)
            if prev is None:
                layers.append(_relay(input_shape, conv is not None))
            else:
                layers[-1] = _add_always_on(prev, source)
            weight, conv = _bias_synapse(weight, bias, conv, layers[-1], where)
            bias = np.zeros_like(bias)
        layer, row = _quantize(name, block[0][0], conv, weight, bias, out_shape, neuron, source,
                               readout, recurrent, headroom.get(block[0][0], 1.0))
        if always_on:
            pick = (lambda w: w[:, -1, where[0], where[1]]) if conv else (lambda w: w[:, -1])
            row["bias_as_synapse"] = {
                "from": layers[-2].name if len(layers) > 1 else layers[-1].name,
                "max_abs_error": float(np.abs(pick(layer.weight) / row["scale"]
                                              - pick(weight) * _channel(row["row_scale"],
                                                                        weight)).max())}
        row.pop("row_scale")
        layers.append(layer)
        report.append(row)
        shape, block = layer.shape, []
    if not layers:
        raise UserError(f"{source}: the graph has no synapse + neuron layer to deploy")
    try:
        return IntNetwork(input_shape=input_shape, layers=tuple(layers), readout=readout), report
    except ValueError as e:
        raise UserError(f"{source}: {e}") from None


RELAY = "always_on_input"


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


def _grid_scale(scale: float, weight, threshold, bias) -> float:
    """scale, or else the largest power of two below it, when that puts every weight on the
    even 8-bit grid and the threshold and biases on integers; otherwise scale. Weights that
    are binary fractions (k/128, or the k/512 a 2x2 AvgPool2d folds them into) then deploy
    with no rounding: AvgPool's 1/(kH kW) is exact when kH kW is a power of two."""
    on = lambda v, step: np.all(np.abs(v / step - np.round(v / step)) <= 1e-4)  # noqa: E731
    for candidate in (scale, 2.0 ** np.floor(np.log2(scale))):
        if on(weight * candidate, 2) and on(bias * candidate, 1) and (threshold is None or (
                on(threshold * candidate, 1) and threshold * candidate >= 1)):
            return float(candidate)
    return scale


def _span(values) -> str:
    """[min, max] of float values as a reader wants it (1e+308, not int64's -2**63)."""
    a = np.asarray(values, dtype=np.float64)
    return f"[{a.min():.4g}, {a.max():.4g}]" if a.size else "[]"


def _quantize(name, synapse_name, conv, weight, bias, out_shape, neuron: _Neuron, source,
              readout: bool = False, recurrent: np.ndarray | None = None,
              headroom: float = 1.0):
    """One scale for the layer's feed-forward and recurrent weights: both are added into the
    same current, so they share the gains, the threshold and the 8-bit grid. `headroom` > 1
    multiplies the scale that fits the largest weight, clipping the few largest weights to
    the grid's ends so that the rest (and the threshold) get finer steps; the report counts
    the clipped weights."""
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
    rec_eff = None if recurrent is None else recurrent * row_scale[:, None]
    if rec_eff is not None and not np.isfinite(rec_eff).all():
        raise UserError(f"{source}: node '{name}': recurrent weights hold NaN or infinity; "
                        "fix the graph")
    for what, values in (("weights", w_eff), ("biases", v_bias)):
        if not np.isfinite(values).all():
            raise UserError(f"{source}: node '{synapse_name}': its {what} "
                            f"{_span(weight if what == 'weights' else bias)}, times the gain "
                            f"and threshold of '{name}', overflow float64; rescale the "
                            "graph's weights, biases or thresholds")
    w_max = max(np.abs(w_eff).max(), 0 if rec_eff is None else np.abs(rec_eff).max())
    if w_max == 0:
        raise UserError(f"{source}: node '{synapse_name}': all weights are zero")
    scale = headroom * WEIGHT_MAX / w_max
    scale = scale if readout else min(scale, THRESHOLD_MAX / ref)
    if np.any(v_bias):
        scale = min(scale, BIAS_MAX / np.abs(v_bias).max())
    if not (np.isfinite(scale) and np.finfo(np.float64).tiny < scale):
        raise UserError(f"{source}: node '{synapse_name}': weights {_span(w_eff)} (with the "
                        f"gain and threshold of '{name}') span too many orders of magnitude "
                        "for Loihi's 8-bit weights; rescale the graph's weights")
    both = w_eff.reshape(-1) if rec_eff is None else np.concatenate([w_eff.reshape(-1),
                                                                      rec_eff.reshape(-1)])
    scale = _grid_scale(scale, both, None if readout else ref, v_bias)
    grid = lambda w: np.clip(2 * np.round(w * scale / 2), -256, 254).astype(np.int64)  # noqa
    w_int = grid(w_eff)
    rec_int = None if rec_eff is None else grid(rec_eff)
    th_int = THRESHOLD_MAX if readout else int(max(1, round(ref * scale)))
    b_int = np.round(v_bias * scale).astype(np.int64) if np.any(v_bias) else None
    i_decay, v_decay = round(DECAY_UNITY * neuron.du), round(DECAY_UNITY * neuron.dv)
    try:
        layer = IntLayer(weight=w_int, params=CubaParams(i_decay, v_decay, th_int),
                         bias=(b_int[::per_channel] if conv and b_int is not None else b_int),
                         name=synapse_name, conv=conv, recurrent=rec_int)
    except ValueError as e:
        raise UserError(f"{source}: node '{synapse_name}': {e}") from None
    err = (w_int / scale - w_eff).reshape(-1)
    if rec_int is not None:
        err = np.concatenate([err, (rec_int / scale - rec_eff).reshape(-1)])
    row = {
        "layer": synapse_name, "neurons": name, "scale": float(scale),
        "row_scale": row_scale, "headroom": float(headroom),
        "clipped_weights": int((np.abs(both * scale) > WEIGHT_MAX + 1).sum()),
        "weight_rel_rms_error": float(np.sqrt(((err / w_max) ** 2).mean()
                                              / ((both / w_max) ** 2).mean())),
        "weight_max_abs_error": float(np.abs(err).max()),
        "threshold": {"float": float(ref * scale), "int": th_int,
                      "rel_error": float(abs(th_int - ref * scale) / (ref * scale))},
        "i_decay": {"exact": DECAY_UNITY * neuron.du, "int": i_decay},
        "v_decay": {"exact": DECAY_UNITY * neuron.dv, "int": v_decay},
        "bias_max_abs_error": (float(np.abs(b_int - v_bias * scale).max())
                               if b_int is not None else 0.0),
    }
    if rec_int is not None:
        row["recurrent_synapses"] = int(np.count_nonzero(rec_int))
    return layer, row
