"""NIR, the exchange boundary: our integer networks to and from `nir.NIRGraph`."""
from neurodeploy.graph.nir_io import DT, from_nir, read_nir, to_nir, write_nir

__all__ = ["DT", "from_nir", "read_nir", "to_nir", "write_nir"]
