"""NIR, the exchange boundary: our integer networks to and from `nir.NIRGraph`, and float
graphs from other frameworks quantized onto Loihi."""
from pathlib import Path

import nir

from neurodeploy.errors import UserError
from neurodeploy.graph.importer import import_graph
from neurodeploy.graph.nir_io import DT, from_nir, graph_metadata, read_nir, to_nir, write_nir
from neurodeploy.graph.topology import flatten
from neurodeploy.netx.write import check_deployable
from neurodeploy.neurons import IntNetwork

UNITS = "loihi-integer"


def lower_nir(graph: nir.NIRGraph, source: str = "<graph>", dt: float | None = None,
              headroom: dict[str, float] | None = None,
              latent: dict | None = None) -> tuple[IntNetwork, list[dict]]:
    """Any NIR graph -> Loihi integers. Our own exports (already in Loihi's integer units) lower
    exactly; float graphs from other tools are quantized, with a report of every rounding.
    A graph that carries our metadata but lost metadata/units is refused: re-quantizing it
    would silently deploy other weights than the ones it was exported with. `headroom`:
    per-layer scale multipliers for a foreign graph (see quantize.quantize); `latent`: see
    importer.import_graph."""
    graph = flatten(graph, source)
    units = (graph.metadata or {}).get("units")
    if isinstance(units, bytes):
        units = units.decode(errors="replace")
    if units == UNITS:
        reset = (graph.metadata or {}).get("reset", "zero")
        if isinstance(reset, bytes):
            reset = reset.decode(errors="replace")
        if reset != "zero":
            raise UserError(f"{source}: metadata/reset is {reset!r}; our graphs reset to zero "
                            "(as Loihi does): restore it or re-export the network")
        net = from_nir(graph, source)
        check_deployable(net, source)        # what netx would clip or truncate is refused here
        return net, []
    if graph_metadata(graph, source):
        raise UserError(f"{source}: the graph carries neurodeploy metadata but metadata/units is "
                        f"{units!r}, not {UNITS!r}; restore it or re-export the network with "
                        "`neurodeploy export`")
    return import_graph(graph, source, dt, headroom, latent)


RESET_NOTE = ("NIR has no field for the reset mechanism, so the file cannot say how it was "
              "trained: reset to zero is assumed, in the step of the spike (what Loihi's CUBA "
              "neuron and netx run). snnTorch's default Leaky resets by subtraction one step "
              "late (reset_delay=True), which Loihi cannot run: deployed as reset to zero, "
              "some predictions change (`parity --backends float,...` measures it). Fix: "
              "train with reset_mechanism=\"zero\", reset_delay=False in snnTorch, or "
              "recover it with `neurodeploy tune --reset subtract --reset-delay`")


def reset_assumption(path_or_graph, source: str = "<graph>") -> str | None:
    """RESET_NOTE for a foreign NIR graph with spiking neurons; None for our own exports
    (metadata/reset states it), non-NIR files and graphs without a spiking neuron."""
    graph = path_or_graph
    if not isinstance(graph, nir.NIRGraph):
        if Path(graph).suffix != ".nir":
            return None
        source, graph = str(graph), read_nir(graph)
    units = (graph.metadata or {}).get("units")
    if (units.decode(errors="replace") if isinstance(units, bytes) else units) == UNITS:
        return None
    spiking = (nir.CubaLIF, nir.LIF, nir.IF)
    if not any(isinstance(n, spiking) for n in flatten(graph, source).nodes.values()):
        return None
    return f"{source}: {RESET_NOTE}"


__all__ = ["DT", "RESET_NOTE", "flatten", "reset_assumption", "from_nir", "graph_metadata",
           "import_graph", "lower_nir", "read_nir", "to_nir", "write_nir"]
