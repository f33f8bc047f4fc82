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
dense matrix (kernels.py). Finally one scale per layer puts the weights on Loihi's 8-bit grid
(a power of two where that makes them exact); every rounding is reported (quantize.py).
Recurrent layers: a neuron node whose output returns to itself through one Affine, Linear or
Conv2d node (snnTorch RLeaky/RSynaptic; see topology.recurrent_loops) adds W_rec s[t-1] to its
input at step t, as snnTorch does and Lava's RecurrentDense does; the loop becomes the layer's
dense recurrent weights (the layer is dense then), scaled with the feed-forward weights.
Other structures (branches, skip connections, loops through other layers) are refused.
A bias into a decaying current (tau_syn > dt) is a current every step that Loihi's bias (added
to v) cannot make; it deploys exactly as a synapse, whose weight is the bias, from neurons that
spike every step (always_on.py). Nested NIRGraph nodes are flattened first (topology.flatten);
IF-only graphs need no dt. NIR cannot state the reset mechanism: reset to zero is assumed (see
RESET_NOTE).
"""
from __future__ import annotations

import nir
import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.graph.always_on import bias_as_synapse, bias_report
from neurodeploy.graph.fields import per_neuron, shape_of
from neurodeploy.graph.kernels import LINEAR, synapse
from neurodeploy.graph.nir_io import DT, graph_dt
from neurodeploy.graph.quantize import Neuron, quantize
from neurodeploy.graph.topology import flatten, links, recurrent_loops
from neurodeploy.neurons import IntNetwork

NEURONS = (nir.CubaLIF, nir.LIF, nir.IF)
READOUTS = (nir.CubaLI, nir.LI)          # non-spiking: only as the last layer
SUPPORTED = ("Input", "Output", *(c.__name__ for c in LINEAR + NEURONS + READOUTS))


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
    if not recurrent:
        loops = recurrent_loops(graph)[1]
        if loops:
            name, path = next(iter(loops.items()))
            raise UserError(f"{source}: node '{name}' is recurrent (through "
                            f"{', '.join(repr(n) for n in path)}); this reader takes "
                            "feed-forward chains only: deploy the graph and run the deployed "
                            "network")
    successor, _, first = links(graph, source)
    order, name = [], first
    while name is not None:
        if any(name == n for n, _ in order):
            raise UserError(f"{source}: the graph has a cycle through '{name}'")
        order.append((name, graph.nodes[name]))
        if isinstance(graph.nodes[name], nir.Output):
            break
        name = successor.get(name)
    if not isinstance(order[-1][1], nir.Output):
        raise UserError(f"{source}: the chain from '{first}' ends at '{order[-1][0]}' "
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
            tau = per_neuron(node.tau_mem if cuba else node.tau, None,
                             (source, name, "tau_mem" if cuba else "tau"))
            r = per_neuron(node.r, None, (source, name, "r"))
            if r.size and np.all(r > 1):
                candidates.add(float(f"{np.median(tau / r):.5g}"))   # float32 exports
    if len(candidates) == 1 and 0 < next(iter(candidates)) < np.inf:
        return candidates.pop()
    raise UserError(f"{source}: the time step dt cannot be inferred (no 'dt' in the metadata "
                    "and no r = tau/dt convention); pass it with --dt (Norse 1.1.0 graphs: "
                    "--dt 1e-6)")


def neuron_terms(name: str, node: nir.NIRNode, dt: float, source: str, n: int) -> Neuron:
    """Per-neuron terms for the n neurons fed by the synapse (scalar parameters broadcast)."""
    raw = np.asarray(node.output_type["output"]).reshape(-1)     # empty: scalar parameters
    declared = int(np.prod(shape_of(raw, name, source))) if raw.size else 1
    if declared not in (1, n):
        raise UserError(f"{source}: node '{name}' has {declared} neurons but its input has {n} "
                        "values: fix the graph's shapes")
    arr = lambda field, default=None: per_neuron(getattr(node, field, default), n,  # noqa: E731
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
        return Neuron(1.0, 0.0, r, np.zeros(n), threshold)
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
    return Neuron(float(du[0]), float(dv[0]), gain, bias, threshold)


def import_graph(graph: nir.NIRGraph, source: str = "<graph>", dt: float | None = None,
                 headroom: dict[str, float] | None = None,
                 latent: dict | None = None) -> tuple[IntNetwork, list[dict]]:
    """Lower a float NIR graph to Loihi integers; returns the network and a quantization report.
    `latent`, a dict, receives each quantized layer's weights before rounding (in integer
    units, by layer name): where `tune` starts.

    numpy's overflow warnings are silenced here because every result is checked for
    finiteness and refused by node name (with a readable span): a user sees one line, not
    RuntimeWarnings followed by infinities rounded to int64's minimum."""
    with np.errstate(all="ignore"):
        net, report = _import_graph(graph, source, dt, headroom or {})
    for row in report:
        found = row.pop("latent")
        if latent is not None:
            latent[row["layer"]] = found
    return net, report


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
        conv, weight, bias, out_shape = synapse(block, shape, source, dense=bool(loop))
        n = int(np.prod(out_shape))
        neuron = neuron_terms(name, node, dt, source, n)
        recurrent = None
        if loop:
            if readout:
                raise UserError(f"{source}: recurrent edge through '{loop[0][0]}' onto "
                                f"non-spiking node '{name}' cannot be mapped (it has no spikes "
                                "to send back); remove the loop")
            _, recurrent, rec_bias, rec_shape = synapse(loop, out_shape, source, dense=True)
            if int(np.prod(rec_shape)) != n:
                raise UserError(f"{source}: recurrent loop through '{loop[0][0]}' gives "
                                f"{int(np.prod(rec_shape))} values back to the {n} neurons of "
                                f"'{name}'; fix its weight shape")
            bias = bias + rec_bias      # a constant current on the loop: every step, as bias
        always_on = bool(np.any(bias)) and neuron.du < 1
        if always_on:        # the bias as a synapse from a source that spikes every step
            weight, conv, where = bias_as_synapse(layers, input_shape, block[0][0], conv, weight,
                                                  bias, source)
            bias = np.zeros_like(bias)
        layer, row = quantize(name, block[0][0], conv, weight, bias, out_shape, neuron, source,
                              readout, recurrent, headroom.get(block[0][0], 1.0))
        if always_on:
            row["bias_as_synapse"] = bias_report(layers, layer, row, weight, conv, where)
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
