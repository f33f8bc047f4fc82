"""Lowering to lava-dl netx: NIR graph -> integer network -> netx HDF5."""
from neurodeploy.netx.hdf5 import check_deployable, read_netx, write_netx
from neurodeploy.netx.sdnn import is_sdnn, read_sdnn

__all__ = ["check_deployable", "read_netx", "write_netx", "is_sdnn", "read_sdnn"]
