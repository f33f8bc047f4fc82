"""Counting events per layer and timestep from any backend's SpikeRecord.

- synaptic ops: each presynaptic spike costs one op per non-zero outgoing weight (the
  convention of Sinabs and of NeuroBench's effective ACs for binary inputs);
- neuron updates: every neuron of a layer is serviced every step; it is "active" in a step
  where at least one synaptic event reached it, else "inactive";
- spikes: output spikes of the layer.
Recurrent synapses (netx dense_rec) count like any other: one op per non-zero weight of a
spike's row, in the step the spike is sent (the chip reads the synapse then); they reach their
neurons one step later. A delayed synapse op (netx delay) is one op in the step the spike is
sent and reaches its neuron d steps later: the delay is held in the dendritic accumulator, not
paid per op (Lava's DelayDense and Loihi 2 model it so; the per-op prices have no delay term).
An input layer with neurons counts one op per input spike (its one-to-one synapse).
Graded input events (netx's input_message_bits) count as spikes do: one op per non-zero
outgoing weight of each non-zero event, its payload multiplied into the weight in the synapse.
No per-op figure for graded messages is published (energy-sources.md: Loihi 1's table is for
binary spikes, and no Loihi 2 per-op table exists), so they are priced at the binary-spike
figures, an assumption stated in the record (`GRADED_INPUT_NOTE`), as for sigma-delta messages.
A resonate-and-fire layer (netx's ComplexDense onto Lava's RF or RF_IZ) has two synapses per
connection, real and imaginary, each a synaptic op per spike, and one neuron update per neuron
and step (`RESONATE_NOTE`: priced at the CUBA figures, no published figure).
Counts are means per inference over the record's samples, shape [layers, T]; they are all that
pricing needs, so a report can be repriced without simulating again.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.neurons import IntNetwork
from neurodeploy.neurons.sigma_delta import SDNetwork, activity

KINDS = ("synaptic_ops", "neuron_active", "neuron_inactive", "spikes")
GRADED_INPUT_NOTE = ("graded input events are counted as binary spikes are (one synaptic op per "
                     "non-zero weight of each non-zero event) and priced at the binary-spike "
                     "figures: no per-op energy of a graded message is published for Loihi 1 "
                     "or 2, so this is a proxy")

RESONATE_NOTE = ("resonate-and-fire neurons (Lava's RF and RF_IZ hold two 24-bit states, real "
                 "and imaginary) are counted as one neuron update each per step and priced at "
                 "the CUBA neuron figures, their real and imaginary synapses as one synaptic op "
                 "each: no energy or neuron memory of a resonate-and-fire neuron on Loihi 2 is "
                 "published, so this is a proxy")


def count_events(record: SpikeRecord, net: IntNetwork, totals: bool = False,
                 batch_size: int = 500) -> dict[str, np.ndarray]:
    """Event counts [layers, T]: means per inference, or exact totals over all samples.

    Counted `batch_size` samples at a time (totals add up exactly), so counting a whole test
    set through a conv network (`simulate` of 10,000 samples) holds one batch in memory."""
    n = record.samples
    sums = {k: 0.0 for k in KINDS}
    fanouts = [_fanout(layer) for layer in net.layers]
    for start in range(0, max(n, 1), batch_size):
        stop = start + batch_size
        part = _totals(record.inputs[start:stop], [s[start:stop] for s in record.layers], net,
                       fanouts)
        sums = {k: sums[k] + part[k] for k in KINDS}
    scale = 1 if totals else n
    return {k: v / scale for k, v in sums.items()}


def _totals(inputs: np.ndarray, layers: list[np.ndarray], net: IntNetwork,
            fanouts: list[torch.Tensor]) -> dict:
    """Exact event totals [layers, T] over these samples (inputs [N, T, in], spikes per layer).

    Whole-record tensor ops, so that counting costs a fraction of the simulation: synaptic ops
    are each source's events times its fan-out (no per-neuron pass); only the active-neuron
    count needs one, the layer's own synapse op with 0/1 weights in float32 (exact: a neuron
    receives fewer than 2**24 events a step), the rule that counts dense and conv alike."""
    counts = {k: [] for k in KINDS}
    n, steps = inputs.shape[:2]
    pre = _flat(np.asarray(inputs) != 0, n * steps)
    for layer, post, fanout in zip(net.layers, layers, fanouts):
        ones = _ones(layer)
        ops = pre.reshape(n, steps, -1).sum(0).to(torch.float64) @ fanout      # [T]
        if layer.delay is None:
            delivered = layer._sum(pre, ones).reshape(n, steps, -1)
        else:                                                  # window_input is step-major
            delivered = replace(layer, weight=ones, bias=None).window_input(
                pre.reshape(n, steps, -1).transpose(0, 1)).transpose(0, 1)
        spikes = _flat(post, n * steps)
        if layer.recurrent is not None:
            rec = spikes @ torch.as_tensor((layer.recurrent != 0).T, dtype=torch.float32)
            rec = rec.reshape(n, steps, -1)
            ops = ops + rec.sum((0, 2)).to(torch.float64)
            delivered = delivered.clone()
            delivered[:, 1:] += rec[:, :-1].to(delivered.dtype)
        # per step: counting a [N, n] slice is twice as fast as one reduction over dims 0, 2
        active = np.array([int(torch.count_nonzero(delivered[:, t])) for t in range(steps)])
        counts["synaptic_ops"].append(ops.numpy())
        counts["neuron_active"].append(active)
        counts["neuron_inactive"].append(layer.size * n - active)
        counts["spikes"].append(spikes.reshape(n, steps, -1).sum((0, 2)).numpy())
        pre = spikes
    return {k: np.array(v, dtype=np.float64) for k, v in counts.items()}


def _flat(events: np.ndarray, rows: int) -> torch.Tensor:
    """Events [N, T, ...] as a [N*T, n] float32 tensor (0/1 spikes; exact small integers)."""
    return torch.from_numpy(np.ascontiguousarray(events).reshape(rows, -1)).to(torch.float32)


def _ones(layer) -> np.ndarray:
    """Synapses per (neuron, source): 0 or 1, or 0..2 for a resonate-and-fire layer's real and
    imaginary synapses, each a synaptic op per event."""
    return sum((np.asarray(w) != 0).astype(np.int64) for w in layer.synapse_matrices())


def _fanout(layer) -> torch.Tensor:
    """The synaptic ops one event of each source costs [in]: its non-zero outgoing weights.
    A conv's fan-out varies at the borders; it is the gradient of the summed 0/1 synapse op."""
    ones = _ones(layer)
    if not layer.conv:                     # dense [out, in]; an input layer's gains [in]
        return torch.as_tensor(ones.sum(0) if ones.ndim == 2 else ones, dtype=torch.float64)
    x = torch.zeros(1, layer.in_size, requires_grad=True)
    layer._sum(x, ones).sum().backward()
    return x.grad[0].to(torch.float64)


def accuracy_by_timestep(record: SpikeRecord, labels: np.ndarray) -> list[float]:
    """Accuracy when the output is read after the first T' steps, for T' = 1..T (one record),
    with the record's own decoding: spike counts, or summed voltage for a readout layer."""
    output = record.readout if record.readout is not None else record.layers[-1]
    cumulative = output.cumsum(axis=1)                                 # [N, T, classes]
    return [float((cumulative[:, t].argmax(1) == labels).mean())
            for t in range(record.timesteps)]


def count_messages(net: SDNetwork, inputs: np.ndarray, messages: list) -> dict[str, np.ndarray]:
    """Sigma-delta events per inference [layers, T] (means over the N samples of messages
    [N, T, n] per layer): a non-zero graded message counts as a spike out and, per non-zero
    outgoing weight, a synaptic op (priced at the binary-spike figures: see
    sigma_delta.activity); a neuron is active in a step where a non-zero message reached it,
    after its synaptic delay (the delta input layer: where its input value is non-zero),
    inactive otherwise."""
    n = len(inputs)
    act = activity(net, messages)
    active = []
    for i, layer in enumerate(net.layers):
        if layer.kind == "delta":
            reached = np.asarray(inputs).reshape(n, -1, layer.size) != 0
        else:
            nonzero = torch.as_tensor(np.asarray(messages[i - 1]) != 0, dtype=torch.int64)
            ones = replace(layer, weight=(np.asarray(layer.weight) != 0).astype(np.int64),
                           bias=None)
            stream = nonzero.reshape(1, -1, nonzero.shape[-1])   # delays cross samples
            reached = (ones.drive(stream) > 0).reshape(n, -1, layer.size).numpy()
        active.append(reached.sum(axis=(0, 2)))
    active = np.asarray(active, dtype=np.float64)
    sizes = np.asarray(net.sizes, dtype=np.float64)[:, None]
    return {"synaptic_ops": np.asarray(act["synaptic_ops"], dtype=np.float64) / n,
            "neuron_active": active / n,
            "neuron_inactive": sizes - active / n,
            "spikes": np.asarray(act["messages"], dtype=np.float64) / n}
