"""The backends, each declared once: what it reads, whether it runs in resumable chunks, where
it runs, whether it runs sigma-delta networks, and how (one `run` for either kind of network).
The CLI's choices and help, `simulate`'s dispatch, the parity rules and the defaults derive
from this table, so a backend's name is spelled here and nowhere else.

The Lava backends' modules are imported when one first runs (inside the functions below):
they bring lava_runtime's process-wide fork and exit hooks and then Lava itself, which takes seconds
to import and may be absent; every other backend runs without them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from neurodeploy.backends.emulator import simulate_emulator, simulate_emulator_sdnn
from neurodeploy.backends.float_mode import simulate_float_file
from neurodeploy.backends.torch_exact import simulate_torch, simulate_torch_sdnn
from neurodeploy.errors import UserError
from neurodeploy.netx import read_network
from neurodeploy.neurons import IntNetwork
from neurodeploy.neurons.sigma_delta import SDNetwork


@dataclass(frozen=True)
class Backend:
    name: str
    reads: Literal["lowered", "own"]   # the lowered netx file, or the user's own file as trained
    resumable: bool                    # slow: simulate runs it in resumable chunks on disk
    devices: tuple[str, ...]
    about: str                         # one line for --help and the docs
    run: Callable                      # (network, spikes, progress, timeout_s, device,
                                       #  batch_size, input_shape, dt, input_bits)
                                       #  -> SpikeRecord; network: a file or the network
                                       #  read from it; input_bits: graded input events
    sigma_delta: bool = False          # runs sigma-delta networks too (integer frames in,
                                       # graded messages out, samples streamed unreset)
    unavailable: Callable[[], str | None] = lambda: None   # why this machine cannot run it
    phrase: str = ""                   # how a message names it, when more than its name


def _read(network, input_shape):
    """`network`: a netx file, or the network (of either kind) a caller already read from it."""
    if isinstance(network, (IntNetwork, SDNetwork)):
        return network
    return read_network(network, input_shape)[0]


def _torch(network, spikes, progress, timeout_s, device, batch_size, input_shape, dt,
           input_bits=None):
    net = _read(network, input_shape)
    if isinstance(net, SDNetwork):
        return simulate_torch_sdnn(net, spikes)
    return simulate_torch(net, spikes, device=device, batch_size=batch_size)


def _emulator(network, spikes, progress, timeout_s, device, batch_size, input_shape, dt,
              input_bits=None):
    net = _read(network, input_shape)
    if isinstance(net, SDNetwork):
        return simulate_emulator_sdnn(net, spikes)
    return simulate_emulator(net, spikes, batch_size=batch_size, device=device,
                             progress=progress, input_shape=input_shape)


def _float(network, spikes, progress, timeout_s, device, batch_size, input_shape, dt,
           input_bits=None):
    return simulate_float_file(network, spikes, device, batch_size, input_shape, dt)


# The Lava backends: imported only when one runs (see the module docstring). `sparse`:
# netx's sparse_fc_layer (dense layers as Lava Sparse synapses), its own backend so that every
# verb that takes a backend runs it and parity compares it with the dense build.
def _lava(hardware: bool, sparse: bool = False):
    def run(network, spikes, progress, timeout_s, device, batch_size, input_shape, dt,
            input_bits=None):
        if isinstance(_read(network, input_shape), SDNetwork):    # Lava reads the file
            from neurodeploy.backends.lava_sdnn import simulate_lava_sdnn
            return simulate_lava_sdnn(network, spikes, timeout_s=timeout_s,
                                      sparse_synapses=sparse, progress=progress)
        from neurodeploy.backends.lava import simulate_lava
        return simulate_lava(network, spikes, hardware=hardware, progress=progress,
                             timeout_s=timeout_s, input_shape=input_shape,
                             input_bits=input_bits, sparse_synapses=sparse)
    return run


def _loihi2_missing() -> str | None:
    from neurodeploy.backends.lava import loihi2_missing
    return loihi2_missing()


BACKENDS = {b.name: b for b in (
    Backend("torch", "lowered", False, ("cpu", "cuda"),
            "the exact integer mode, batched", _torch, sigma_delta=True,
            phrase="torch (exact mode)"),
    Backend("emulator", "lowered", False, ("cpu", "cuda"),
            "Lava's fixed-point rules stepping chip time, batched", _emulator,
            sigma_delta=True),
    Backend("lava", "lowered", True, ("cpu",),
            "Lava's CPU simulation (Loihi2SimCfg fixed_pt) of the netx file", _lava(False),
            sigma_delta=True),
    Backend("lava-sparse", "lowered", True, ("cpu",),
            "as lava, with netx's sparse_fc_layer: dense layers built as Lava Sparse synapses "
            "(their non-zero weights only: what a pruned network maps to)", _lava(False, True),
            sigma_delta=True),
    Backend("loihi2", "lowered", True, ("loihi2",),
            "Loihi 2 itself (Intel's lava-loihi extension and a board)", _lava(True),
            unavailable=_loihi2_missing),
    Backend("float", "own", False, ("cpu", "cuda"),
            "the file's own float model: our training mode for our networks; a foreign NIR "
            "graph's float semantics with reset to zero in the step of the spike (NIR cannot "
            "state the reset; snnTorch's default differs, see `tune --reset`)", _float),
)}
DEFAULT_BACKEND = "lava"        # where `run` and `neurodeploy simulate` run a network
EXACT_BACKEND = "torch"         # the exact mode: fast; the Python API's `simulate` default
PARITY_BACKENDS = ("torch", "emulator", "lava")     # what `parity` compares unless told
SDNN_BACKENDS = tuple(n for n, b in BACKENDS.items() if b.sigma_delta)


def backend(name: str) -> Backend:
    """The backend called `name`, or a one-line error listing them."""
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


def listed(names, phrases: bool = False) -> str:
    """Backends as a sentence names them: `a, b and c` (`phrases`: torch (exact mode))."""
    said = [BACKENDS[n].phrase or n if phrases else n for n in names]
    return " and ".join(filter(None, [", ".join(said[:-1]), said[-1]]))
