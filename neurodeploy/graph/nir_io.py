"""Our networks as NIR graphs, and NIR graphs back into deployable integer networks.

Export convention (recorded in the graph's metadata, stated here once):
- Units are Loihi's integers: an Affine weight of 2.0 is weight mantissa 2; a CubaLIF
  v_threshold of 128.0 is vThMant 128. Synapse biases and v_reset are zero; Loihi's bias
  (an integer added to v every step) is v_leak = bias * tau_mem / dt, since the voltage
  gains dt/tau_mem * v_leak per step (a layer without voltage decay has no such form).
- Forward Euler with dt = 1e-4 s (the ecosystem's usual choice), current first:
      I[t] = I[t-1] * (1 - dt/tau_syn) + (dt/tau_syn) * w_in * S[t]
      v[t] = v[t-1] * (1 - dt/tau_mem) + (dt/tau_mem) * r * I[t]     (the *updated* I)
      spike if v[t] > v_threshold, then v[t] = v_reset (reset to zero, not subtraction)
  with tau_syn = dt * 4096 / iDecay, tau_mem = dt * 4096 / vDecay, w_in = tau_syn / dt and
  r = tau_mem / dt, so that I and v follow Lava's recurrence exactly (before fixed-point
  rounding). Neuron parameters are per-neuron arrays; shapes exclude the batch dimension.
- A recurrent layer (IntLayer.recurrent) is a loop lifN -> recN (nir.Linear, the integer
  weights) -> lifN: its input at step t adds its own spikes of step t-1, as snnTorch's RLeaky,
  Norse's recurrent cells and Lava's RecurrentDense read such a loop.
- A readout network's last layer (IntNetwork.readout) is a nir.CubaLI node with the same
  parameters and no threshold: Loihi runs it as a CUBA neuron whose threshold is THRESHOLD_MAX
  (out of reach), and its voltage is the output. Lowering a CubaLI gives back exactly that.
Import accepts graphs that follow this convention and refuses, naming the node, anything
whose Loihi integers would not be exact, any malformed value (NaN, text, wrong shape), and a
graph whose layers disagree with the architecture its own metadata records.
"""
from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.files import atomic_path
from neurodeploy.graph.fields import groups, integer, numbers, pair, shape_of, uniform
from neurodeploy.graph.topology import flatten, links
from neurodeploy.netx.metadata import architecture, check_architecture, metadata_from_json
from neurodeploy.neurons import Conv, CubaParams, IntLayer, IntNetwork
from neurodeploy.neurons.cuba import DECAY_UNITY, THRESHOLD_MAX, WEIGHT_MAX, WEIGHT_MIN

DT = 1e-4
SUPPORTED = ("Input", "Affine", "Linear", "Conv2d", "Flatten", "CubaLIF", "CubaLI", "Output")


def to_nir(net: IntNetwork, metadata: dict | None = None) -> nir.NIRGraph:
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(net.input_shape))}
    chain, shape, loops = ["input"], tuple(net.input_shape), []
    for i, layer in enumerate(net.layers):
        if layer.delay is not None or layer.input_shape is not None:
            raise ValueError(f"layer {layer.name!r}: synaptic delays and input layers have no "
                             "NIR form here; export the network as netx only")
        p = layer.params
        full = lambda value: np.full(layer.shape, value, dtype=np.float64)  # noqa: E731
        tau_syn = DT * DECAY_UNITY / p.i_decay if p.i_decay else np.inf
        tau_mem = DT * DECAY_UNITY / p.v_decay if p.v_decay else np.inf
        bias = np.zeros(layer.weight.shape[0], dtype=np.float32)
        v_leak = full(0.0)
        if layer.bias is not None and np.any(layer.bias):
            if not p.v_decay or isinstance(p.v_decay, tuple):
                raise ValueError(f"layer {layer.name!r}: a bias on a layer without one voltage "
                                 "decay has no NIR form here; export the network as netx only")
            per_neuron = np.repeat(layer.bias, layer.size // layer.weight.shape[0])
            v_leak = (per_neuron * DECAY_UNITY / p.v_decay).reshape(layer.shape)
        if len(shape) > 1 and not layer.conv:
            nodes[f"flatten{i}"] = nir.Flatten(input_type={"input": np.array(shape)},
                                               start_dim=0, end_dim=-1)
            chain.append(f"flatten{i}")
        if layer.conv:
            c = layer.conv
            nodes[f"conv{i}"] = nir.Conv2d(
                input_shape=tuple(c.input_shape[1:]), weight=layer.weight.astype(np.float32),
                stride=tuple(c.stride), padding=tuple(c.padding), dilation=tuple(c.dilation),
                groups=c.groups, bias=bias)
            chain.append(f"conv{i}")
        else:
            nodes[f"fc{i}"] = nir.Affine(weight=layer.weight.astype(np.float32), bias=bias)
            chain.append(f"fc{i}")
        if net.readout and i == len(net.layers) - 1:
            if p.threshold != THRESHOLD_MAX:
                raise ValueError(f"readout layer {layer.name!r} has threshold {p.threshold}, "
                                 f"not the unreachable {THRESHOLD_MAX} a CubaLI node lowers to")
            nodes[f"lif{i}"] = nir.CubaLI(
                tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / DT),
                v_leak=v_leak, w_in=full(tau_syn / DT))
        else:
            nodes[f"lif{i}"] = nir.CubaLIF(
                tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / DT),
                v_leak=v_leak, v_threshold=full(float(p.threshold)), v_reset=full(0.0),
                w_in=full(tau_syn / DT))
        chain.append(f"lif{i}")
        if layer.recurrent is not None:          # the loop lif -> rec -> lif, one step late
            nodes[f"rec{i}"] = nir.Linear(weight=layer.recurrent.astype(np.float32))
            loops += [(f"lif{i}", f"rec{i}"), (f"rec{i}", f"lif{i}")]
        shape = layer.shape
    nodes["output"] = nir.Output(output_type=np.array([net.layers[-1].size]))
    chain.append("output")
    meta = {"dt": DT, "units": "loihi-integer", "reset": "zero",
            "neurodeploy": json.dumps({"discretization": "forward-euler, current first, "
                                       "v uses updated I", **(metadata or {}),
                                       "architecture": architecture(net)}, allow_nan=False)}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:])) + loops,
                        metadata=meta)


def write_nir(graph: nir.NIRGraph, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)


def read_nir(path: str | Path) -> nir.NIRGraph:
    """A .nir file as one flat graph (nested NIRGraph nodes flattened, see `flatten`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such NIR file; run `neurodeploy export` first")
    try:
        graph = nir.read(path)
    except Exception as e:   # nir raises many types for a corrupt or foreign file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: not a readable NIR graph ({reason}); re-export it") from None
    return flatten(graph, str(path))


def graph_metadata(graph: nir.NIRGraph, source: str = "<graph>") -> dict:
    """Our metadata stored in the graph ({} for a foreign graph); refuses a corrupt one."""
    raw = (graph.metadata or {}).get("neurodeploy")
    return {} if raw is None else metadata_from_json(raw, source, "metadata/neurodeploy")


def graph_dt(graph: nir.NIRGraph, source: str) -> float | None:
    """metadata/dt as a positive finite number of seconds, or None when absent."""
    if "dt" not in (graph.metadata or {}):
        return None
    value = np.asarray(graph.metadata["dt"])
    if value.size != 1 or value.dtype.kind not in "iuf" or not np.isfinite(value).all() \
            or float(value.reshape(-1)[0]) <= 0:
        raise UserError(f"{source}: metadata/dt must be one positive number of seconds, got "
                        f"{value.reshape(-1)[:3].tolist()}; fix it (e.g. 1e-4)")
    return float(value.reshape(-1)[0])


def _neuron(name: str, node: nir.CubaLIF | nir.CubaLI, dt: float, source: str) -> CubaParams:
    """A layer's Loihi constants; a CubaLI (readout) gets the unreachable threshold."""
    readout = isinstance(node, nir.CubaLI)
    if not readout and np.any(numbers(node.v_reset, name, "v_reset", source) != 0):
        raise UserError(f"{source}: node '{name}': v_reset must be 0 (Loihi resets to zero)")
    tau_syn = uniform(name, "tau_syn", node.tau_syn, source)
    tau_mem = uniform(name, "tau_mem", node.tau_mem, source)
    if tau_syn <= 0 or tau_mem <= 0:
        raise UserError(f"{source}: node '{name}': tau_syn and tau_mem must be positive, got "
                        f"{tau_syn:g} and {tau_mem:g}; fix the graph")
    du = dt / tau_syn            # inf tau -> 0: no decay
    dv = dt / tau_mem
    for field, scale, value in (("w_in", du, node.w_in), ("r", dv, node.r)):
        gain = uniform(name, field, value, source) * scale if scale else 1.0
        if not abs(gain - 1.0) <= 1e-6:                   # NaN is refused too
            raise UserError(f"{source}: node '{name}': {field} * dt / tau = {gain:.6g}; this "
                            f"importer needs 1 ({field} = tau/dt), see neurodeploy/graph/nir_io.py")
    try:
        return CubaParams(
            integer(name, "iDecay (4096*dt/tau_syn)", DECAY_UNITY * du, 0, DECAY_UNITY, source),
            integer(name, "vDecay (4096*dt/tau_mem)", DECAY_UNITY * dv, 0, DECAY_UNITY, source),
            THRESHOLD_MAX if readout else integer(
                name, "v_threshold", uniform(name, "v_threshold", node.v_threshold, source),
                1, THRESHOLD_MAX, source))
    except ValueError as e:
        raise UserError(f"{source}: node '{name}': {e}") from None


def _bias(name: str, node, params: CubaParams, shape: tuple[int, ...], conv: bool,
          source: str) -> np.ndarray | None:
    """Loihi's bias from v_leak (bias = v_leak * vDecay / 4096, see the module docstring):
    None where v_leak is zero; integers within the 13-bit field, one per channel for a conv."""
    v_leak = numbers(node.v_leak, name, "v_leak", source)
    if not np.any(v_leak):
        return None
    n = int(np.prod(shape))
    if v_leak.size not in (1, n) or not params.v_decay:
        raise UserError(f"{source}: node '{name}': v_leak must be 0 or one value per neuron "
                        "of a layer with voltage decay (it carries Loihi's bias)")
    bias = np.broadcast_to(v_leak.reshape(-1), (n,)) * params.v_decay / DECAY_UNITY
    if not np.all(np.abs(bias - np.round(bias)) <= 1e-6 * np.maximum(1, np.abs(bias))):
        raise UserError(f"{source}: node '{name}': v_leak * vDecay / 4096 is not an integer "
                        "bias; re-export the graph with `neurodeploy export`")
    bias = np.round(bias).astype(np.int64)
    if conv:
        per = bias.reshape(shape[0], -1)
        if np.any(per != per[:, :1]):
            raise UserError(f"{source}: node '{name}': v_leak varies within a channel, which a "
                            "convolution's bias cannot express")
        bias = per[:, 0]
    return bias


def _on_grid(w: np.ndarray, node_name: str, source: str) -> np.ndarray:
    """Weights of a graph in Loihi units, refused when infinite or beyond the 8-bit range
    before any arithmetic: 1e300 - round(1e300) and casting it to int64 would print numpy
    RuntimeWarnings and report a span of [-2**63, ...]."""
    if w.size and not (np.isfinite(w).all() and WEIGHT_MIN <= w.min()
                       and w.max() <= WEIGHT_MAX):
        finite = w[np.isfinite(w)]
        span = (f"[{w.min():.4g}, {w.max():.4g}]" if finite.size == w.size else
                f"{w.size - finite.size} infinite value(s)")
        raise UserError(f"{source}: node '{node_name}': weights hold {span}, outside Loihi's "
                        f"[{WEIGHT_MIN}, {WEIGHT_MAX}]; re-export the graph with `neurodeploy "
                        "export`")
    return w


def _recurrent(graph, neuron: str, loop: list[str] | None, conv, source) -> np.ndarray | None:
    """A layer's recurrent integer weights from its loop `neuron -> Linear -> neuron`."""
    if loop is None:
        return None
    node = graph.nodes[loop[0]]
    if len(loop) != 1 or not isinstance(node, (nir.Affine, nir.Linear)) or conv is not None \
            or isinstance(graph.nodes[neuron], nir.CubaLI):
        raise UserError(f"{source}: recurrent edge through {', '.join(repr(n) for n in loop)} "
                        f"onto '{neuron}' cannot be mapped: a spiking dense layer takes its own "
                        "spikes back through one Affine/Linear node (netx dense_rec)")
    w = _on_grid(numbers(node.weight, loop[0], "weight", source), loop[0], source)
    if not np.all(np.abs(w - np.round(w)) <= 1e-6):
        raise UserError(f"{source}: node '{loop[0]}': recurrent weights are not integers; "
                        "quantize the graph to Loihi's 8-bit grid before lowering")
    if getattr(node, "bias", None) is not None and np.any(
            numbers(node.bias, loop[0], "bias", source) != 0):
        raise UserError(f"{source}: node '{loop[0]}': a non-zero bias is an input current "
                        "Loihi cannot add; fold it into the neuron or drop it")
    return np.round(w).astype(np.int64)


def from_nir(graph: nir.NIRGraph, source: str = "<graph>") -> IntNetwork:
    """Lower a NIR chain Input -> (Affine|Linear -> CubaLIF)+ -> Output to Loihi integers; a
    CubaLIF may feed itself back through one Linear (our recurrent layers, one step late)."""
    bad = [f"'{k}' ({type(v).__name__})" for k, v in graph.nodes.items()
           if type(v).__name__ not in SUPPORTED]
    if bad:
        raise UserError(f"{source}: unsupported NIR node(s) {', '.join(bad)}; this lowering "
                        f"supports {', '.join(SUPPORTED)}")
    for pre, post in graph.edges:
        if pre not in graph.nodes or post not in graph.nodes:
            raise UserError(f"{source}: edge ({pre!r}, {post!r}) names a node that does not exist")
    successor, loops, first = links(graph, source)
    meta = graph_metadata(graph, source)
    dt = graph_dt(graph, source) or DT
    input_shape = shape_of(graph.nodes[first].output_type["output"], first, source)
    layers, name, seen, shape = [], successor.get(first), {first}, input_shape
    while name is not None and not isinstance(graph.nodes[name], nir.Output):
        if name in seen:
            raise UserError(f"{source}: the graph has a cycle through '{name}'")
        seen.add(name)
        if isinstance(graph.nodes[name], nir.Flatten):
            node = graph.nodes[name]
            declared = (node.input_type or {}).get("input") if isinstance(node.input_type,
                                                                          dict) else None
            if declared is None or tuple(np.asarray(declared).reshape(-1).tolist()) != shape \
                    or node.start_dim != 0 or node.end_dim != -1:
                raise UserError(f"{source}: node '{name}': a Flatten must declare its input "
                                f"{list(shape)} and flatten all of it (start_dim 0, end_dim -1); "
                                "fix the graph")
            shape, name = (int(np.prod(shape)),), successor.get(name)
            continue
        synapse = graph.nodes[name]
        neuron_name = successor.get(name)
        if not isinstance(synapse, (nir.Affine, nir.Linear, nir.Conv2d)) or neuron_name is None \
                or not isinstance(graph.nodes[neuron_name], (nir.CubaLIF, nir.CubaLI)):
            raise UserError(f"{source}: node '{name}' must be an Affine/Linear/Conv2d followed "
                            "by a CubaLIF (the synapse + neuron blocks netx runs)")
        if isinstance(graph.nodes[neuron_name], nir.CubaLI) and not isinstance(
                graph.nodes.get(successor.get(neuron_name)), nir.Output):
            raise UserError(f"{source}: node '{neuron_name}' (CubaLI, non-spiking) can only be "
                            "the last layer, right before the Output; fix the graph")
        seen.add(neuron_name)
        w = _on_grid(numbers(synapse.weight, name, "weight", source), name, source)
        if not np.all(np.abs(w - np.round(w)) <= 1e-6):
            raise UserError(f"{source}: node '{name}': weights are not integers; quantize the "
                            "graph to Loihi's 8-bit grid before lowering")
        bias = getattr(synapse, "bias", None)
        if bias is not None and w.ndim >= 1 and np.shape(bias) != (w.shape[0],):
            raise UserError(f"{source}: node '{name}': bias shape {list(np.shape(bias))} does not "
                            f"match the {w.shape[0]} outputs of its weight; re-export the graph")
        if bias is not None and np.any(numbers(bias, name, "bias", source) != 0):
            raise UserError(f"{source}: node '{name}': a non-zero bias is an input current "
                            "Loihi cannot add; fold it into the neuron or drop it")
        conv = None
        if isinstance(synapse, nir.Conv2d):
            if len(shape) != 3 or isinstance(synapse.padding, str):
                raise UserError(f"{source}: node '{name}': Conv2d needs a [C, H, W] input and "
                                "numeric padding")
            conv = Conv(input_shape=shape, stride=pair(synapse.stride, name, "stride", source, 1),
                        padding=pair(synapse.padding, name, "padding", source, 0),
                        dilation=pair(synapse.dilation, name, "dilation", source, 1),
                        groups=groups(synapse.groups, name, source))
            if w.ndim != 4 or w.shape[0] % conv.groups:
                raise UserError(f"{source}: node '{name}': Conv2d weight {list(w.shape)} must be "
                                f"4-D with output channels divisible by groups = {conv.groups}")
        recurrent = _recurrent(graph, neuron_name, loops.get(neuron_name), conv, source)
        params = _neuron(neuron_name, graph.nodes[neuron_name], dt, source)
        w = np.round(w).astype(np.int64)
        try:
            out_shape = conv.output_shape(w) if conv else (w.shape[0],)
            layers.append(IntLayer(weight=w, params=params, name=name, conv=conv,
                                   recurrent=recurrent,
                                   bias=_bias(neuron_name, graph.nodes[neuron_name], params,
                                              out_shape, conv is not None, source)))
        except ValueError as e:
            raise UserError(f"{source}: node '{name}': {e}") from None
        shape = layers[-1].shape
        for field in ("tau_syn", "tau_mem", "r", "w_in", "v_threshold", "v_leak", "v_reset"):
            if not hasattr(graph.nodes[neuron_name], field):      # CubaLI has no threshold
                continue
            got = np.shape(getattr(graph.nodes[neuron_name], field))
            if got not in ((), (1,), shape, (int(np.prod(shape)),)):
                raise UserError(f"{source}: node '{neuron_name}': {field} has shape {list(got)}, "
                                f"not the layer's {list(shape)}; re-export the graph")
        name = successor.get(neuron_name)
    if name is None:
        raise UserError(f"{source}: the chain from '{first}' never reaches an Output node")
    if not layers:
        raise UserError(f"{source}: the graph has no Affine + CubaLIF layer to deploy")
    try:
        net = IntNetwork(input_shape=input_shape, layers=tuple(layers),
                         readout=isinstance(graph.nodes[neuron_name], nir.CubaLI))
    except ValueError as e:
        raise UserError(f"{source}: {e}") from None
    check_architecture(net, meta, source)
    return net
