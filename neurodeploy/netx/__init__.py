"""Lowering to lava-dl netx: NIR graph -> integer network -> netx HDF5."""
from neurodeploy.netx.hdf5 import check_deployable, read_netx, write_netx

__all__ = ["check_deployable", "read_netx", "write_netx"]
