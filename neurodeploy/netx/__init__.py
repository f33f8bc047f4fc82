"""Lowering to lava-dl netx: NIR graph -> integer network -> netx HDF5."""
from neurodeploy.netx.hdf5 import read_netx, read_network
from neurodeploy.netx.sdnn import is_sdnn, read_sdnn
from neurodeploy.netx.write import check_deployable, write_netx

__all__ = ["check_deployable", "read_netx", "read_network", "write_netx", "is_sdnn", "read_sdnn"]
