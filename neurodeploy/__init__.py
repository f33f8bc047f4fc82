"""neurodeploy: distill spiking students in PyTorch, export through NIR to lava-dl netx, and run
them on Lava (Loihi 2) with spikes, energy and parity.

The verbs are functions in `neurodeploy.api` (distill, export, simulate, merge, parity,
inspect, energy, report, run), which the `neurodeploy` command calls. Those whose names no subpackage takes are here too (`neurodeploy.export`,
`simulate`, `parity`, `inspect`, `run`), imported on first use so the command line starts fast;
`neurodeploy.distill`, `.energy` and `.report` are the subpackages. The building blocks are
torch modules in `neurodeploy.neurons`.
"""
__version__ = "0.1.0"

_API = ("export", "inspect", "parity", "run", "simulate")
__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name in _API:
        from neurodeploy import api     # torch and friends take seconds: only on first use
        return getattr(api, name)
    raise AttributeError(f"module 'neurodeploy' has no attribute {name!r}")
