"""Lava backend for sigma-delta (SDNN) netx files: lava-dl's own `netx.hdf5.Network`, run by
Lava's CPU simulator (fixed_pt), with every layer's graded messages recorded per timestep.

Lava cannot reset sigma-delta neurons (netx ignores `reset_interval` for them), so the N
samples stream through one run as consecutive segments of T steps and state carries over from
one sample to the next, as in lava-dl's PilotNet SDNN example; the exact-mode counterpart is
`run_exact(net, inputs.reshape(1, N * T, ...))`. netx's Input block does not wire its `inp`
port to its Delta neuron, so the source drives the neuron's `a_in` directly. Each dense/conv
synapse delays by one step, so layer l's messages for input step j leave at chip step j + 1 + l
(the source sends row j at chip step j + 1); the run lasts N*T + L - 1 steps and the record is
mapped back to window time. Messages are read from Lava's RingBuffer sinks (Var.get moves one
element per message, ~34 us: fine for tests, slow for large networks). netx reads the file
itself, or a canonical copy written by `write_sdnn` where lava.lava_reads finds it must (see
lava.py). Inputs enter through our memmap source, whose clock lets the watchdog (watchdog.py)
end a run whose worker dies or that stalls, and bound it by `timeout_s` at any moment.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from neurodeploy.backends.lava import lava_reads, record_names
from neurodeploy.backends.record import SpikeRecord
from neurodeploy.backends.watchdog import Watchdog, lava_names
from neurodeploy.backends.lava_runtime import import_lava, interruption_point, run_tempdir, running
from neurodeploy.errors import UserError
from neurodeploy.files import file_digest
from neurodeploy.netx.sdnn import read_sdnn, write_sdnn
from neurodeploy.progress import Progress


def _flat(data: np.ndarray) -> np.ndarray:
    """Lava's (..., steps) sink buffer in WHC -> [steps, flat CHW]."""
    if data.ndim == 4:
        return data.transpose(3, 2, 1, 0).reshape(data.shape[-1], -1)
    return data.reshape(-1, data.shape[-1]).T


def simulate_lava_sdnn(netx_path: str | Path, inputs: np.ndarray,
                       timeout_s: float | None = None,
                       chunk_steps: int = 1024, sparse_synapses: bool = False,
                       progress: bool | None = False) -> SpikeRecord:
    """Stream integer inputs [N, T, *input_shape] (or [N, T, n]) through the SDNN on Lava;
    `sparse_synapses`: dense layers as Lava Sparse synapses (netx's sparse_fc_layer);
    `progress`: chip steps run, see progress.py."""
    net_spec = read_sdnn(netx_path)            # validates the file; gives shapes
    with_bits = _message_bits_given(netx_path)
    if with_bits:
        raise UserError(f"{netx_path}: layer {with_bits}: lava-dl 0.6.0's netx reads "
                        "'neuron/messageBits' as a group and Lava then fails to compile; remove "
                        "it (netx then uses 16 bits) to run on Lava")
    inputs = np.asarray(inputs)
    if inputs.dtype.kind not in "iu" or inputs.ndim < 3:
        raise UserError(f"{netx_path}: SDNN inputs must be integers shaped [N, T, ...], got "
                        f"{inputs.dtype} {list(inputs.shape)}")
    n, t = inputs.shape[:2]
    flat = inputs.reshape(n * t, -1)
    if flat.shape[1] != net_spec.input_size:
        raise UserError(f"{netx_path}: inputs have {flat.shape[1]} values per step, the network "
                        f"expects {net_spec.input_size}")
    if np.abs(flat).max(initial=0) >= 2 ** 31:
        raise UserError(f"{netx_path}: inputs exceed int32; Lava's Delta takes int32 values")
    lava = import_lava()
    # Lava's own modules: only after import_lava() applied its shims, when this backend runs
    from lava.proc.io.sink import RingBuffer as Sink

    from neurodeploy.backends.lavaproc.memmap_io import MemmapSpikeSource

    depth = len(net_spec.layers) - 1          # synapses, one step of delay each
    steps = n * t + depth
    with run_tempdir("neurodeploy-lava-") as tmp:
        src_path, clock = Path(tmp) / "input.i32", Path(tmp) / "clock.i64"
        rows = np.memmap(src_path, dtype=np.int32, mode="w+", shape=(steps, net_spec.input_size))
        rows[: n * t] = flat
        rows.flush()
        del rows
        canonical = Path(tmp) / "network.net"     # what read_sdnn read: see lava.lava_file
        write_sdnn(net_spec, canonical, {"canonical_copy_of": {
            "file": str(netx_path), "sha256": file_digest(netx_path)}})
        given, read = lava_reads(Path(netx_path), canonical)
        net = lava.netx.hdf5.Network(net_config=str(given), sparse_fc_layer=sparse_synapses)
        neuron = net.layers[0].neuron
        source = MemmapSpikeSource(path=str(src_path), steps=steps, dtype="int32",
                                   shape=tuple(neuron.a_in.shape), clock=str(clock))
        source.s_out.connect(neuron.a_in)
        sinks = []
        for layer in net.layers:
            sink = Sink(shape=layer.out.shape, buffer=steps)
            layer.out.connect(sink.a_in)
            sinks.append(sink)
        cfg = lava.Loihi2SimCfg(select_tag="fixed_pt")
        names = lava_names(net.layers, [layer.name for layer in net_spec.layers])
        names[source.id] = "the input source"
        where = lambda step: f"at step {max(0, step - 1)} of {steps}"  # noqa: E731
        with running(net), Watchdog(net, str(netx_path), clock, where, names, timeout_s), \
                Progress("lava", steps, "step", progress) as shown:
            done = 0
            while done < steps:
                todo = min(chunk_steps, steps - done)
                net.run(condition=lava.RunSteps(num_steps=todo), run_cfg=cfg)
                done += todo
                interruption_point()
                shown.update(done)
            buffers = [np.asarray(sink.data.get()).astype(np.int64) for sink in sinks]
    layers = []
    for i, (data, spec) in enumerate(zip(buffers, net_spec.layers)):
        msgs = _flat(data)                    # sink row k holds chip step k + 1
        layers.append(msgs[i:i + n * t].reshape(n, t, spec.size))
    return SpikeRecord(**record_names("Loihi2SimCfg fixed_pt, SDNN", sparse_synapses),
                       inputs=flat.reshape(n, t, -1), layers=layers,
                       layer_names=[layer.name for layer in net_spec.layers],
                       info={"chip_steps": steps, "stream": True, "lava_read": read,
                             **({"sparse_fc_layer": True} if sparse_synapses else {}),
                             "note": "samples stream back to back; SDNN state is not reset"})


def _message_bits_given(path) -> int | None:
    """Index of the first layer whose neuron has 'messageBits' (netx 0.6.0 cannot compile it)."""
    with h5py.File(path, "r") as f:
        for name in sorted(f["layer"], key=int):
            neuron = f["layer"][name].get("neuron")
            if isinstance(neuron, h5py.Group) and "messageBits" in neuron:
                return int(name)
    return None
