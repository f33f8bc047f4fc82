"""Lava backends: the netx file itself, run by Lava's CPU simulator (or Loihi 2 hardware).

All samples stream through one compiled network. netx's `reset_interval=T` zeroes each layer
every T steps, staggered by one step per layer to follow the one-step delay of every Dense
synapse. With `reset_offset=1` (netx adds one, as chip time starts at 1) layer l's window for sample k spans chip timesteps
kT + 2 + l ... kT + 1 + l + T, which is exactly where its inputs for sample k arrive (the
source sends row t-1 at step t; each Dense delays by one). A run therefore takes N*T + L steps
(L = number of layers: the pipeline drains at the end) and the backend maps chip time back to
window time. Spikes enter and leave through memmap-backed processes (see lavaproc/).

Lava reads the user's file whenever lava-dl can read it as it is: Lava is the referee of our
reader, so a misreading must meet lava-dl's own reading of the same bytes. Only where our reader
normalised an encoding that lava-dl 0.6.0 cannot build (whole-number floats, a per-layer value
repeated per neuron, one value for [H, W] padding: a float decay in LIF's right shift makes a
worker die, others make netx raise) does Lava get a canonical copy, the network our reader read
written by our own writer (`lava_file`, `lava_reads`); the record's info says which ran.
A watchdog (watchdog.py) ends a run whose worker dies or that stops making progress.
"""
from __future__ import annotations

import bisect
import importlib.util
from pathlib import Path

import h5py
import numpy as np

from neurodeploy.backends.record import SpikeRecord, record_inputs
from neurodeploy.backends.watchdog import LavaTimeout, Watchdog, lava_names
from neurodeploy.backends.lava_runtime import import_lava, interruption_point, run_tempdir, running
from neurodeploy.errors import UserError
from neurodeploy.files import file_digest
from neurodeploy.netx import read_netx, write_netx
from neurodeploy.netx.metadata import RESET_OFFSET     # also in every manifest's `execution`
from neurodeploy.neurons import IntNetwork
from neurodeploy.progress import Progress

__all__ = ["LavaTimeout", "lava_file", "lava_reads", "record_names", "simulate_lava"]


_LOIHI2_COMPILER = "lava.magma.compiler.subcompilers.nc.ncproc_compiler"


def record_names(config: str | None, sparse: bool) -> dict[str, str]:
    """A Lava run's record name and detail: Lava's run configuration (None: Loihi 2 itself)
    and whether dense layers ran as Sparse synapses (netx's sparse_fc_layer)."""
    backend = "loihi2" if config is None else "lava-sparse" if sparse else "lava"
    return {"backend": backend,
            "detail": ", ".join(p for p in (config, "Sparse synapses" if sparse else "") if p)}


def loihi2_missing() -> str | None:
    """None when Loihi 2 can be used here, else what exactly is missing."""
    import_lava()
    try:
        found = importlib.util.find_spec(_LOIHI2_COMPILER) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        return (f"the Loihi 2 backend needs Intel's non-public lava-loihi extension "
                f"(module {_LOIHI2_COMPILER} is not importable) and a Loihi 2 system; "
                "use --backend lava for the CPU simulation")
    return None


def lava_file(net: IntNetwork, metadata: dict, source: Path, folder: Path) -> Path:
    """The file lava-dl reads: `net` (what read_netx read from `source`) written by our own
    writer into `folder`, with the original's path and hash in its metadata (see the module
    docstring for why)."""
    path = folder / "network.net"
    meta = {k: v for k, v in metadata.items() if k != "architecture"}
    write_netx(net, path, {**meta, "canonical_copy_of": {"file": str(source),
                                                         "sha256": file_digest(source)}})
    return path


# What netx 0.6.0 reads of a layer besides weights, biases and delays (it rounds and expands
# those itself, and lava-dl's own files store them as floats): an encoding of these that our
# reader had to normalise is one that netx hands on to Lava as it is.
NETX_READS = ("type", "shape", "stride", "padding", "dilation", "groups",
              "neuron/iDecay", "neuron/vDecay", "neuron/vThMant", "neuron/sigma_output",
              "neuron/sinDecay", "neuron/cosDecay")


def lava_reads(original: Path, copy: Path) -> tuple[Path, str]:
    """The file Lava is given, `original` or its canonical `copy`, and why, for the record.

    The original, unless a field netx reads, present in the copy, is stored in the original in
    another shape (a dense layer's shape excepted: netx takes its product), or not as an integer
    where the copy holds one, or an input layer's gain or bias is not one value. Values are not
    compared: where they differ, our reader misread the file, and Lava reading the original is
    what shows it. Layers pair up in order, after the input layer our writer adds where netx
    infers the input; a layer without neuron is netx's default integrator, as in lava-dl's own
    files."""
    def kind(g):
        return np.asarray(g["type"][()]).ravel()[0]

    def why() -> str | None:
        with h5py.File(original, "r") as f, h5py.File(copy, "r") as c:
            mine = [f["layer"][str(i)] for i in range(len(f["layer"]))]
            ours = [c["layer"][str(i)] for i in range(len(c["layer"]))]
            if len(ours) == len(mine) + 1 and kind(ours[0]) == b"input" != kind(mine[0]):
                ours = ours[1:]
            if [kind(g) for g in mine] != [kind(g) for g in ours]:
                return "the layers are of other types or in another order"
            for i, (a, b) in enumerate(zip(mine, ours)):
                keys = [k for k in NETX_READS if k in b and not (k.startswith("neuron/")
                                                                  and "neuron" not in a)]
                for key in keys:
                    x, y = a.get(key), b[key]
                    dense = key == "shape" and kind(a) in (b"dense", b"dense_rec")
                    if not isinstance(x, h5py.Dataset) or x.shape != y.shape and not dense or \
                            y.dtype.kind in "iu" and x.dtype.kind not in "iu":
                        return f"layer {i} {key} stored as " + (
                            f"{x.dtype} {list(x.shape)}" if isinstance(x, h5py.Dataset)
                            else "missing")
                if kind(a) == b"input" and any(a[k].size != 1 for k in ("weight", "bias")
                                                if k in a):
                    return f"layer {i} weight or bias holds more than one value"
        return None
    reason = why()
    return (copy, f"canonical copy (normalised: {reason})") if reason else (original, "original")


def _wire_input_layer(net, spec, src_path, steps: int, source_cls, clock: Path,
                      dtype: str = "uint8"):
    """Feed an `input` layer with neurons as netx means to but does not: lava-dl 0.6.0 reads
    its `weight` (default 64) and `bias` into an unused `transform` and leaves the block's
    `inp` port unconnected, so its neuron would never receive anything. The source drives the
    neuron's a_in directly with gain * x + bias, the input current slayer's Input block
    trains with (no synapse, so no synaptic delay: the rows start one step later to keep
    window time)."""
    neuron = net.in_layer.neuron
    shape = tuple(neuron.a_in.shape)
    source = source_cls(path=str(src_path), steps=steps, shape=shape, gain=spec.weight,
                        offset=spec.bias, clock=str(clock), dtype=dtype)
    source.s_out.connect(neuron.a_in)
    return source


def _buffer_clears(net, spec, n: int, t: int) -> dict[int, list]:
    """Chip steps after which synapse buffers must be emptied so samples stay independent:
    a delayed or recurrent synapse still holds spikes of the previous sample (or of the steps
    before the first window) when its layer resets, and netx's reset zeroes only the neuron,
    and only a LIF one: a resonate-and-fire neuron's state is zeroed here, before the step
    where LIFReset would zero it (lava/proc/lif/models.py zeroes u, v before its update).
    Layer i resets at step r = kT + RESET_OFFSET + 1 + i. Its delayed synapse accumulates the
    new window's first input at r - 1 but still sends the old window's last input then, so all
    but the buffer's next column is emptied after step r - 2; its recurrent synapse holds the
    old window's last spikes for step r and is emptied after step r - 1."""
    clears: dict[int, list] = {}
    for i, (block, layer) in enumerate(zip(net.layers, spec.layers)):
        for k in range(n):
            reset = k * t + RESET_OFFSET + 1 + i
            if layer.delay is not None and reset - 2 >= 1:
                clears.setdefault(reset - 2, []).append(block.synapse.a_buff)
            if layer.recurrent is not None:
                clears.setdefault(reset - 1, []).append(block.synapse_rec.a_buff)
            if layer.resonate and reset - 1 >= 1:   # netx resets LIF only; RF state is zeroed
                clears.setdefault(reset - 1, []).extend((block.neuron.real, block.neuron.imag))
    return clears


def simulate_lava(netx_path: str | Path, spikes: np.ndarray, hardware: bool = False,
                  chunk_steps: int = 2048, progress: bool | None = True,
                  timeout_s: float | None = None,
                  input_shape: tuple[int, ...] | None = None,
                  input_bits: int | None = None,
                  sparse_synapses: bool = False) -> SpikeRecord:
    """Stream input spikes [N, T, n_in] through the netx network on Lava.

    `sparse_synapses`: netx builds every dense layer's synapse as Lava's Sparse (a CSR matrix
    of the non-zero weights: `Network(..., sparse_fc_layer=True)`, what a pruned network maps
    to) instead of Dense; the results are the same, the record's info says which ran.

    `input_bits` N: the inputs are graded input events of N bits, handed to netx as
    `Network(..., input_message_bits=N)`, so the first Dense multiplies each event by its
    weight (with 0, netx's default, Lava's Dense reads every event as a 1-bit spike).

    `timeout_s` bounds the run at any moment: past it the runtime is torn down and
    `LavaTimeout` is raised; a dead worker or a stuck run ends the same way (watchdog.py).
    """
    lava = import_lava()
    if hardware and (missing := loihi2_missing()):
        raise UserError(missing)
    # lavaproc subclasses Lava's processes: importable only after import_lava()'s shims
    from neurodeploy.backends.lavaproc.memmap_io import (MemmapSpikeSink, MemmapSpikeSource,
                                                         MemmapVarProbe)

    net_spec, metadata = read_netx(netx_path, input_shape)   # validates; gives layer sizes
    n, t = spikes.shape[:2]
    spikes = spikes.reshape(n, t, -1)
    width = spikes.shape[2]
    if not input_bits and not np.isin(spikes, (0, 1)).all():
        raise UserError(f"{netx_path}: the inputs hold graded events (values above 1), which "
                        "Lava's Dense reads as 1-bit spikes unless netx is told their width: "
                        "pass input_bits (--input-bits N)")
    if width != net_spec.input_size:
        raise UserError(f"{netx_path}: inputs have {width} channels, the network expects "
                        f"{net_spec.input_size}")
    depth = len(net_spec.layers)
    steps = n * t + depth
    with run_tempdir("neurodeploy-lava-") as tmp:     # removed by the next run after kill -9
        src_path = Path(tmp) / "input.u8"
        dtype = "int32" if input_bits else "uint8"           # graded events travel as int32
        rows = np.memmap(src_path, dtype=dtype, mode="w+", shape=(steps, width))
        lead = 1 if net_spec.layers[0].input_shape else 0   # see _wire_input_layer
        rows[lead: lead + n * t] = spikes.reshape(n * t, width)
        rows.flush()
        del rows
        given, read = lava_reads(Path(netx_path),
                                 lava_file(net_spec, metadata, Path(netx_path), Path(tmp)))
        net = lava.netx.hdf5.Network(net_config=str(given), reset_interval=t,
                                     reset_offset=RESET_OFFSET,
                                     input_message_bits=input_bits or 0,
                                     sparse_fc_layer=sparse_synapses,
                                     input_shape=tuple(net_spec.input_shape[::-1])
                                     if len(net_spec.input_shape) == 3 else None)
        clock = Path(tmp) / "clock.i64"
        if lead:
            source = _wire_input_layer(net, net_spec.layers[0], src_path, steps,
                                       MemmapSpikeSource, clock, dtype)
        else:
            source = MemmapSpikeSource(path=str(src_path), steps=steps, shape=net.inp.shape,
                                       clock=str(clock), dtype=dtype)
            source.s_out.connect(net.inp)
        clears = _buffer_clears(net, net_spec, n, t)
        stops = sorted(clears)
        sink_paths = []
        for i, (layer, spec) in enumerate(zip(net.layers, net_spec.layers)):
            path = Path(tmp) / f"layer{i}.u8"
            np.memmap(path, dtype=np.uint8, mode="w+", shape=(steps, spec.size)).flush()
            sink = MemmapSpikeSink(path=str(path), steps=steps, shape=layer.out.shape)
            layer.out.connect(sink.a_in)
            sink_paths.append(path)
        if net_spec.readout:     # a non-spiking last layer: its voltage is the output
            volt_path = Path(tmp) / "readout.i32"
            size = net_spec.layers[-1].size
            np.memmap(volt_path, dtype=np.int32, mode="w+", shape=(steps, size)).flush()
            MemmapVarProbe(path=str(volt_path), steps=steps, var=net.layers[-1].neuron.v)
        cfg = (lava.Loihi2HwCfg() if hardware else lava.Loihi2SimCfg(select_tag="fixed_pt"))
        per_run = max(1, chunk_steps // t) * t   # bounded runs: buffer clears between them
        names = lava_names(net.layers, [layer.name for layer in net_spec.layers])
        names[source.id] = "the input source"
        where = lambda step: (f"after {min(n, max(0, step - 1 - lead) // t)} of {n} "  # noqa
                              "samples")
        with running(net), Watchdog(net, str(netx_path), clock, where, names, timeout_s), \
                Progress("lava", n, "sample", progress) as shown:
            done = 0
            while done < steps:
                stop = bisect.bisect_right(stops, done)     # the next buffer clear
                todo = min(per_run, steps - done,
                           (stops[stop] if stop < len(stops) else steps) - done)
                net.run(condition=lava.RunSteps(num_steps=todo), run_cfg=cfg)
                done += todo
                for var in clears.get(done, ()):
                    kept = np.zeros(var.shape, dtype=np.int32)
                    if len(var.shape) == 2:     # a delay buffer: column 0 is still this window's
                        kept[:, 0] = var.get()[:, 0]
                    var.set(kept)
                interruption_point()
                shown.update(min(n, done // t))
        layers = []
        for i, (path, spec) in enumerate(zip(sink_paths, net_spec.layers)):
            out = np.memmap(path, dtype=np.uint8, mode="r", shape=(steps, spec.size))
            start = RESET_OFFSET + i   # chip step kT + 2 + i + j is memmap row kT + 1 + i + j
            layers.append(np.array(out[start:start + n * t]).reshape(n, t, spec.size) != 0)
            del out
        readout = None
        if net_spec.readout:
            volts = np.memmap(volt_path, dtype=np.int32, mode="r", shape=(steps, size))
            start = RESET_OFFSET + depth - 1
            readout = np.array(volts[start:start + n * t]).reshape(n, t, size).astype(np.int64)
            del volts
    return SpikeRecord(**record_names(None if hardware else "Loihi2SimCfg fixed_pt",
                                      sparse_synapses),
                       inputs=record_inputs(spikes), layers=layers,
                       layer_names=[layer.name for layer in net_spec.layers],
                       info={"chip_steps": steps, "reset_interval": t,
                             "reset_offset": RESET_OFFSET, "lava_read": read,
                             **({"sparse_fc_layer": True} if sparse_synapses else {}),
                             **({"input_message_bits": input_bits} if input_bits else {})},
                       readout=readout)
