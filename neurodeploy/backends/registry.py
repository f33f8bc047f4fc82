"""The backends, each declared once: what it reads, whether it runs in resumable chunks, where
it runs, and how. The CLI's choices, `simulate`'s dispatch and the parity rules derive from
this table, so a backend's name is spelled here and nowhere else."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from neurodeploy.errors import UserError


@dataclass(frozen=True)
class Backend:
    name: str
    reads: Literal["lowered", "own"]   # the lowered netx file, or the user's own file as trained
    resumable: bool                    # slow: simulate runs it in resumable chunks on disk
    devices: tuple[str, ...]
    about: str                         # one line for --help and the docs
    run: Callable                      # (network, spikes, progress, timeout_s, device,
                                       #  batch_size, input_shape, dt) -> SpikeRecord


def _torch(network, spikes, progress, timeout_s, device, batch_size, input_shape, dt):
    from neurodeploy.backends.torch_exact import simulate_torch
    from neurodeploy.netx import read_netx
    net, _ = read_netx(network, input_shape)
    return simulate_torch(net, spikes, device=device, batch_size=batch_size)


def _emulator(network, spikes, progress, timeout_s, device, batch_size, input_shape, dt):
    from neurodeploy.backends.emulator import simulate_emulator
    return simulate_emulator(network, spikes, batch_size=batch_size, device=device,
                             progress=progress, input_shape=input_shape)


def _lava(hardware: bool):
    def run(network, spikes, progress, timeout_s, device, batch_size, input_shape, dt):
        from neurodeploy.backends.lava import simulate_lava
        return simulate_lava(network, spikes, hardware=hardware, progress=progress,
                             timeout_s=timeout_s, input_shape=input_shape)
    return run


def _float(network, spikes, progress, timeout_s, device, batch_size, input_shape, dt):
    from neurodeploy.backends.float_mode import simulate_float_file
    return simulate_float_file(network, spikes, device, batch_size, input_shape, dt)


BACKENDS = {b.name: b for b in (
    Backend("torch", "lowered", False, ("cpu", "cuda"),
            "the exact integer mode, batched", _torch),
    Backend("emulator", "lowered", False, ("cpu", "cuda"),
            "Lava's fixed-point rules stepping chip time, batched", _emulator),
    Backend("lava", "lowered", True, ("cpu",),
            "Lava's CPU simulation (Loihi2SimCfg fixed_pt) of the netx file", _lava(False)),
    Backend("loihi2", "lowered", True, ("loihi2",),
            "Loihi 2 itself (Intel's lava-loihi extension and a board)", _lava(True)),
    Backend("float", "own", False, ("cpu", "cuda"),
            "the model as trained, read from the user's own file", _float),
)}


def backend(name: str) -> Backend:
    """The backend called `name`, or a one-line error listing them."""
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name]
