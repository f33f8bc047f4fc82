"""The shape of a NIR graph: nested graphs flattened, recurrent loops found, and the one chain
from Input to Output that Loihi runs, with what is not a chain named (branch, skip, loop)."""
from __future__ import annotations

from collections import defaultdict

import nir

from neurodeploy.errors import UserError

LOOP = (nir.Affine, nir.Linear, nir.Conv2d)      # what may carry a node's output back to it


def recurrent_loops(graph: nir.NIRGraph) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Recurrent layers: a neuron node whose output returns to itself through linear nodes only
    (Affine, Linear, Conv2d), each on the loop alone (snnTorch RLeaky/RSynaptic, the NIR
    paper's RSNN). Returns the edges without those loops and {node: loop nodes in order}; a
    node with several loops keeps them in its edges (refused later as a recurrent edge)."""
    succ, pred = defaultdict(list), defaultdict(list)
    for pre, post in graph.edges:
        succ[pre].append(post)
        pred[post].append(pre)
    loops: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        if not isinstance(node, (nir.CubaLIF, nir.LIF, nir.IF, nir.CubaLI, nir.LI)):
            continue                        # only a neuron's state makes a loop one step late
        found = []
        for first in succ.get(name, []):
            path, cur = [], first
            while isinstance(graph.nodes.get(cur), LOOP) and len(succ[cur]) == 1 \
                    and len(pred[cur]) == 1 and len(path) < len(graph.nodes):
                path.append(cur)
                cur = succ[cur][0]
                if cur == name:
                    found.append(path)
                    break
        if len(found) == 1:
            loops[name] = found[0]
    drop = {edge for name, path in loops.items()
            for edge in zip([name, *path], [*path, name])}
    return [tuple(e) for e in graph.edges if tuple(e) not in drop], loops


def not_a_chain(edges: list[tuple[str, str]], node: str, source: str) -> UserError:
    """The one-line refusal for a node that feeds several nodes: a recurrent edge we cannot
    map (a path leads back to the node), a skip connection (two paths meet again) or a branch."""
    succ = defaultdict(list)
    for pre, post in edges:
        succ[pre].append(post)

    def reach(start):                    # in breadth-first order, start included
        order, seen = [start], {start}
        for n in order:
            for m in succ[n]:
                if m not in seen:
                    seen.add(m)
                    order.append(m)
        return order

    outs = list(dict.fromkeys(succ[node]))
    back = [o for o in outs if node in reach(o)]
    if back:
        return UserError(f"{source}: recurrent edge from '{node}' back through '{back[0]}' "
                         "cannot be mapped: only a neuron's own output returning to it through "
                         "one Affine/Linear deploys (netx dense_rec); remove that edge")
    for i, a in enumerate(outs):
        for b in outs[i + 1:]:
            meet = next((n for n in reach(a) if n in set(reach(b))), None)
            if meet is not None:
                return UserError(f"{source}: skip connection: '{node}' reaches '{meet}' along "
                                 f"two paths (through '{a}' and '{b}'); netx runs chains of "
                                 "layers: remove one path")
    return UserError(f"{source}: branch: node '{node}' feeds {', '.join(repr(o) for o in outs)}; "
                     "netx runs one chain to one Output: keep one")


def links(graph: nir.NIRGraph, source: str) -> tuple[dict[str, str], dict[str, list[str]], str]:
    """The chain's links {node: the one node it feeds} with the recurrent loops left out, the
    loops (see `recurrent_loops`) and the one Input node; a node feeding several is refused
    as what it is (see `not_a_chain`)."""
    edges, loops = recurrent_loops(graph)
    successor: dict[str, str] = {}
    for pre, post in edges:
        if pre in successor:
            raise not_a_chain(edges, pre, source)
        successor[pre] = post
    inputs = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise UserError(f"{source}: expected exactly one Input node, found {len(inputs)}")
    return successor, loops, inputs[0]


def flatten(graph: nir.NIRGraph, source: str = "<graph>") -> nir.NIRGraph:
    """`graph` with every nested NIRGraph node replaced by its own nodes, named
    'outer.inner' (as snnTorch names the nodes of a flattened RLeaky), so the rest of the
    lowering sees one flat graph. NIR lets a graph be a node (Spyx and the NIR paper's
    *_subgraph.nir wrap a recurrent neuron that way); an edge to the nested node enters at its
    one Input node, an edge from it leaves at its one Output node, and an edge may also name
    an inner node directly ('outer.inner'). The nested Input/Output nodes are identities and
    are dropped. A nested graph with several inputs or outputs is refused by name."""
    if not any(isinstance(n, nir.NIRGraph) for n in graph.nodes.values()):
        return graph
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    enter: dict[str, list[str]] = {}      # nested node -> inner nodes its inputs feed
    leave: dict[str, list[str]] = {}      # nested node -> inner nodes feeding its output
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            nodes[name] = node
            continue
        inner = flatten(node, f"{source}: node '{name}'")
        ins = [k for k, v in inner.nodes.items() if isinstance(v, nir.Input)]
        outs = [k for k, v in inner.nodes.items() if isinstance(v, nir.Output)]
        if len(ins) != 1 or len(outs) != 1:
            raise UserError(f"{source}: nested graph '{name}' has {len(ins)} Input and "
                            f"{len(outs)} Output nodes; a nested graph deploys with one of each")
        enter[name] = [f"{name}.{b}" for a, b in inner.edges if a == ins[0]]
        leave[name] = [f"{name}.{a}" for a, b in inner.edges if b == outs[0]]
        for k, v in inner.nodes.items():
            if k not in (ins[0], outs[0]):
                nodes[f"{name}.{k}"] = v
        edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in inner.edges
                  if a != ins[0] and b != outs[0]]
        if (ins[0], outs[0]) in [tuple(e) for e in inner.edges]:
            raise UserError(f"{source}: nested graph '{name}' connects its Input straight to "
                            "its Output; remove the empty nested graph")
    for pre, post in graph.edges:
        for a in leave.get(pre, [pre]):
            for b in enter.get(post, [post]):
                edges.append((a, b))
    return nir.NIRGraph(nodes=nodes, edges=list(dict.fromkeys(edges)),
                        metadata=dict(graph.metadata or {}), type_check=False)
