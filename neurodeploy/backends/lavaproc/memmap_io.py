"""Spike source and sink Processes that stream through NumPy memmaps.

Lava's `Var.get` moves one element per message (~34 us each), so reading spikes back through
RingBuffer sinks costs more than simulating them. These processes read and write one row per
timestep of a file-backed memmap shared with the caller, which makes I/O nearly free.
Rows are flat in CHW order (as PyTorch flattens); Lava's ports for conv layers are WHC, so a
3-D port shape is converted on the way in and out.
This folder holds nothing else: Lava executes every .py file next to a Process to find models.
"""
import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort, PyRefPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort, RefPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


def open_rows(p: dict, dtype, mode: str) -> np.memmap:
    """The (steps, n) memmap named by a process's parameters."""
    return np.memmap(p["path"], dtype=dtype, mode=mode,
                     shape=(p["steps"], int(np.prod(p["shape"]))))


def to_port(row: np.ndarray, shape: tuple) -> np.ndarray:
    """Flat CHW row -> port layout (WHC for 3-D ports)."""
    return row.reshape(shape[::-1]).transpose(2, 1, 0) if len(shape) == 3 else row


def from_port(data: np.ndarray) -> np.ndarray:
    """Port layout -> flat CHW row."""
    return (data.transpose(2, 1, 0) if data.ndim == 3 else data).reshape(-1)


class MemmapSpikeSource(AbstractProcess):
    """Sends row `t - 1` of a (steps, n) memmap of `dtype` (uint8 spikes, int32 graded values)
    at timestep t, as `gain * row + offset` (flat, CHW) when given; zeros after the end. With
    `clock`, writes t into that one-value int64 memmap each step: the run's progress, read by
    the watchdog (backends/watchdog.py)."""

    def __init__(self, *, path: str, steps: int, shape: tuple, gain=None, offset=None,
                 clock: str | None = None, dtype: str = "uint8"):
        as_int = lambda a: None if a is None else np.asarray(a, dtype=np.int32)  # noqa: E731
        super().__init__(path=path, steps=steps, shape=tuple(shape), gain=as_int(gain),
                         offset=as_int(offset), clock=clock, dtype=dtype)
        self.s_out = OutPort(shape=tuple(shape))


class MemmapSpikeSink(AbstractProcess):
    """Writes what arrives at timestep t into row `t - 1` of a (steps, n) uint8 memmap."""

    def __init__(self, *, path: str, steps: int, shape: tuple):
        super().__init__(path=path, steps=steps, shape=tuple(shape))
        self.a_in = InPort(shape=tuple(shape))


class MemmapVarProbe(AbstractProcess):
    """Writes a Var's value after each timestep into row `t - 1` of a (steps, n) int32 memmap."""

    def __init__(self, *, path: str, steps: int, var):
        super().__init__(path=path, steps=steps, shape=tuple(var.shape))
        self.state = RefPort(var.shape)
        self.state.connect_var(var)


@implements(proc=MemmapSpikeSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapSpikeSourceModel(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._shape = proc_params["shape"]
        self._rows = open_rows(proc_params, np.dtype(proc_params.get("dtype", "uint8")), "r")
        self._zeros = np.zeros(self._shape, dtype=np.int32)
        self._gain = proc_params.get("gain")
        self._offset = proc_params.get("offset")
        clock = proc_params.get("clock")
        self._clock = None if clock is None else np.memmap(clock, dtype=np.int64, mode="r+",
                                                           shape=(1,))

    def run_spk(self):
        if self._clock is not None:
            self._clock[0] = self.time_step
        t = self.time_step - 1
        if t >= len(self._rows):
            self.s_out.send(self._zeros)
            return
        row = self._rows[t].astype(np.int32)
        if self._gain is not None:
            row = row * self._gain + (0 if self._offset is None else self._offset)
        self.s_out.send(to_port(row, self._shape))


@implements(proc=MemmapSpikeSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapSpikeSinkModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._rows = open_rows(proc_params, np.uint8, "r+")

    def run_spk(self):
        data = self.a_in.recv()
        t = self.time_step - 1
        if t < len(self._rows):
            self._rows[t] = from_port(data) != 0


@implements(proc=MemmapVarProbe, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapVarProbeModel(PyLoihiProcessModel):
    state: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._rows = open_rows(proc_params, np.int32, "r+")

    def post_guard(self):
        return True

    def run_post_mgmt(self):
        t = self.time_step - 1
        if t < len(self._rows):
            self._rows[t] = from_port(np.asarray(self.state.read()))
