"""NIR, the exchange boundary: our integer networks to and from `nir.NIRGraph`, and float
graphs from other frameworks quantized onto Loihi."""
import nir

from neurodeploy.graph.importer import import_graph
from neurodeploy.graph.nir_io import DT, from_nir, read_nir, to_nir, write_nir
from neurodeploy.neurons import IntNetwork


def lower_nir(graph: nir.NIRGraph, source: str = "<graph>",
              dt: float | None = None) -> tuple[IntNetwork, list[dict]]:
    """Any NIR graph -> Loihi integers. Our own exports (already in Loihi's integer units) lower
    exactly; float graphs from other tools are quantized, with a report of every rounding."""
    if (graph.metadata or {}).get("units") == "loihi-integer":
        return from_nir(graph, source), []
    return import_graph(graph, source, dt)


__all__ = ["DT", "from_nir", "import_graph", "lower_nir", "read_nir", "to_nir", "write_nir"]
