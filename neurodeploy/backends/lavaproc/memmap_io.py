"""Spike source and sink Processes that stream through NumPy memmaps.

Lava's `Var.get` moves one element per message (~34 us each), so reading spikes back through
RingBuffer sinks costs more than simulating them. These processes read and write one row per
timestep of a file-backed memmap shared with the caller, which makes I/O nearly free.
This folder holds nothing else: Lava executes every .py file next to a Process to find models.
"""
import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class MemmapSpikeSource(AbstractProcess):
    """Sends row `t - 1` of a (steps, n) uint8 memmap at timestep t; zeros after the end."""

    def __init__(self, *, path: str, steps: int, size: int):
        super().__init__(path=path, steps=steps, size=size)
        self.s_out = OutPort(shape=(size,))


class MemmapSpikeSink(AbstractProcess):
    """Writes what arrives at timestep t into row `t - 1` of a (steps, n) uint8 memmap."""

    def __init__(self, *, path: str, steps: int, size: int):
        super().__init__(path=path, steps=steps, size=size)
        self.a_in = InPort(shape=(size,))


@implements(proc=MemmapSpikeSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapSpikeSourceModel(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self._rows = np.memmap(p["path"], dtype=np.uint8, mode="r", shape=(p["steps"], p["size"]))
        self._zeros = np.zeros(p["size"], dtype=np.int32)

    def run_spk(self):
        t = self.time_step - 1
        self.s_out.send(self._rows[t].astype(np.int32) if t < len(self._rows) else self._zeros)


@implements(proc=MemmapSpikeSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapSpikeSinkModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self._rows = np.memmap(p["path"], dtype=np.uint8, mode="r+", shape=(p["steps"], p["size"]))

    def run_spk(self):
        data = self.a_in.recv()
        t = self.time_step - 1
        if t < len(self._rows):
            self._rows[t] = data != 0
