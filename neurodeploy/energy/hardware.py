"""Where a network goes on Loihi 2: cores per layer, and whether it fits one chip.

Loihi 2 per chip: 128 neuromorphic cores, up to 1 million neurons and 120 million synapses
(Intel, "Taking Neuromorphic Computing to the Next Level with Loihi 2", technology brief,
2021; Orchard et al., IEEE SiPS 2021). We divide the chip totals by the core count to get
per-core budgets; real limits depend on weight precision and connectivity compression, so
this is an estimate that errs on the side of using dense (uncompressed) synapse storage.
"""
from __future__ import annotations

import math

import numpy as np

from neurodeploy.neurons import IntNetwork
from neurodeploy.neurons.sigma_delta import SDNetwork

CORES_PER_CHIP = 128
NEURONS_PER_CORE = 2 ** 20 // CORES_PER_CHIP          # 8192: the brief's "1M" is 2**20
SYNAPSES_PER_CORE = 120_000_000 // CORES_PER_CHIP     # 937,500
SOURCE = ("Intel Loihi 2 technology brief (2021) and Orchard et al., IEEE SiPS 2021: 128 "
          "cores, 1M neurons, 120M synapses per chip; per-core budgets = chip totals / 128")


PRUNED = 0.5    # a dense layer at least half of whose weights are zero is called pruned
SPARSE_SOURCE = ("netx 0.6.0 Network(sparse_fc_layer=True) builds dense layers as Lava Sparse "
                 "synapses (a CSR matrix of the non-zero weights); no packing of Loihi 2's "
                 "sparse synapse words is published, so the compiler mapping takes them at the "
                 "dense packing (a lower bound on words)")


def layer_table(net: IntNetwork | SDNetwork, sparse: bool = False) -> list[dict]:
    """Per layer: neurons, synapses, non-zero synapses, max fan-in, max delay.

    `sparse` (netx's sparse_fc_layer, the lava-sparse backend): dense layers store their
    non-zero synapses only (`stored_synapses`, present only then); otherwise every weight of a
    dense layer is stored, zeros included (`synapses`), as Lava's Dense holds them.

    Dense layers store every weight; conv layers store their kernel once (Loihi 2's
    convolutional connectivity shares weights), so their synapse memory is the kernel size.
    A recurrent layer (netx dense_rec) also stores its (n, n) recurrent weights, which count
    as synapses and fan-in like the input weights. An input layer with neurons (or a
    sigma-delta network's delta input layer) has one synapse per neuron. A resonate-and-fire
    layer stores a real and an imaginary synapse per connection (netx's ComplexDense) and its
    neurons count one each against the neuron budget (`neuron` names them): no figure for how
    many RF neurons, two 24-bit states each, a Loihi 2 core holds is published.
    Delays add no synapses: each synapse carries its delay (Loihi 2: 6
    bits, 0..62 through netx; lava/proc/dense/models.py, DelayDense), and the sources above
    give no per-core budget for delay slots, so `max_delay` is reported, not priced in cores.
    """
    rows = []
    for layer in net.layers:
        matrices = getattr(layer, "synapse_matrices", lambda: [layer.weight])()
        weights = np.ones((layer.size, 1), dtype=np.int64) if layer.weight is None else \
            np.hstack([w.reshape(len(w), -1) for w in matrices])
        recurrent, delay = getattr(layer, "recurrent", None), getattr(layer, "delay", None)
        if recurrent is not None:
            weights = np.hstack([weights, recurrent])
        row = {"name": layer.name, "kind": "conv" if layer.conv else "dense",  # storage kind
               "neurons": layer.size, "synapses": int(weights.size),
               "inputs": layer.in_size,
               "macs": layer.size * weights.shape[1],   # as an ANN layer
               "nonzero_synapses": int((weights != 0).sum()),
               "fan_in": int((weights != 0).sum(1).max())}
        if recurrent is not None:       # only where present: older rows stay as they were
            row["recurrent_synapses"] = int((recurrent != 0).sum())
        if getattr(layer, "resonate", False):
            row["neuron"] = layer.params.kind
        if sparse and not layer.conv and getattr(layer, "input_shape", None) is None \
                and layer.weight is not None:
            row["stored_synapses"] = row["nonzero_synapses"]
        if delay is not None:
            row["max_delay"] = int(delay.max())
        rows.append(row)
    return rows


def pruned(net: IntNetwork | SDNetwork) -> list[str]:
    """One line per pruned dense layer (PRUNED): how many of its weights are zero, and how many
    synapses Lava's Dense stores against its Sparse (netx's sparse_fc_layer)."""
    lines = []
    for row, layer in zip(layer_table(net), net.layers):
        if layer.conv or getattr(layer, "input_shape", None) or layer.weight is None:
            continue
        zero = 1 - row["nonzero_synapses"] / row["synapses"]
        if zero >= PRUNED:
            lines.append(f"{layer.name}: {100 * zero:.0f}% of weights zero: "
                         f"{row['synapses']} synapses stored dense, {row['nonzero_synapses']} "
                         "sparse (--backend lava-sparse)")
    return lines


def storage_estimates(net: IntNetwork | SDNetwork) -> dict:
    """inspect's Loihi 2 estimate with dense synapses, plus, where a layer is pruned, the pruned
    layers and the estimate with sparse synapses."""
    found = pruned(net)
    return {"loihi2": resource_estimate(layer_table(net)),
            **({"pruned": found, "loihi2_sparse": resource_estimate(layer_table(net, True))}
               if found else {})}


# What Intel's Loihi 2 compiler actually placed per core when it mapped lava-dl's PilotNet LIF
# network (the per-core distribution table and cost-model messages printed in lava-dl's
# tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb, Oheo Gulch, 2023): at most 3,168
# neurons on a core (tiles Conv(16, 66, 3) of the 3x66x200 input layer), a synaptic memory of
# 12,000 words per core (its cost model's `SynMem` register), and 61,440 words for the dense
# 2560 -> 100 layer, i.e. 256,000 / 61,440 dense 8-bit synapses per word. These limits come
# from one compile of one network: they explain that compile's 74 cores, nothing more (the
# compiler's tiling also follows axon and routing limits that the notebook does not print).
COMPILER_SOURCE = ("lava-dl pilotnet_snn/benchmark.ipynb, the Loihi 2 compiler's per-core "
                   "distribution of PilotNet LIF: <= 3,168 neurons and a 12,000-word SynMem "
                   "per core, 61,440 words for 256,000 dense synapses")
COMPILER_NEURONS_PER_CORE = 3168
COMPILER_SYNMEM_WORDS = 12_000
COMPILER_SYNAPSES_PER_WORD = 256_000 / 61_440
MAPPINGS = ("brief", "compiler")


def resource_estimate(layers: list[dict], mapping: str = "brief") -> dict:
    """Cores per layer and chips. `brief`: the technology brief's chip totals divided evenly
    over 128 cores (the default: a capacity bound). `compiler`: the per-core limits the Loihi 2
    compiler showed on PilotNet (COMPILER_SOURCE), which packs far fewer neurons per core."""
    if mapping not in MAPPINGS:
        raise ValueError(f"mapping {mapping!r} is not one of {', '.join(MAPPINGS)}")
    rows = []
    for layer in layers:
        stored = layer.get("stored_synapses")                       # see layer_table
        stored = layer["synapses"] if stored is None else stored
        if mapping == "compiler":
            # the notebook gives the packing of dense weights only; a conv kernel is taken at one
            # weight per word (no figure for Loihi 2's shared-kernel encoding is published), and
            # sparse synapses at the dense packing (SPARSE_SOURCE)
            words = stored / (1 if layer["kind"] == "conv" else COMPILER_SYNAPSES_PER_WORD)
            limits = (layer["neurons"] / COMPILER_NEURONS_PER_CORE, words / COMPILER_SYNMEM_WORDS)
        else:
            limits = (layer["neurons"] / NEURONS_PER_CORE, stored / SYNAPSES_PER_CORE)
        cores = max(math.ceil(limits[0]), math.ceil(limits[1]), 1)
        rows.append({**layer, "cores": cores,
                     "neurons_per_core": math.ceil(layer["neurons"] / cores),
                     "synapses_per_core": math.ceil(stored / cores),
                     "bound_by": "neurons" if limits[0] >= limits[1] else "synapses"})
    total = sum(r["cores"] for r in rows)
    chips = math.ceil(total / CORES_PER_CHIP)
    sparse = any("stored_synapses" in r for r in rows)
    return {
        "cores": total, "chips": chips, "fits_one_chip": chips == 1,
        "verdict": (f"fits one Loihi 2 chip ({total} of {CORES_PER_CHIP} cores)" if chips == 1
                    else f"does NOT fit one Loihi 2 chip: needs {total} cores = {chips} chips"),
        "layers": rows,
        "mapping": mapping,
        "limits": ({"cores_per_chip": CORES_PER_CHIP, "neurons_per_core": NEURONS_PER_CORE,
                    "synapses_per_core": SYNAPSES_PER_CORE} if mapping == "brief" else
                   {"cores_per_chip": CORES_PER_CHIP,
                    "neurons_per_core": COMPILER_NEURONS_PER_CORE,
                    "synmem_words_per_core": COMPILER_SYNMEM_WORDS,
                    "dense_synapses_per_word": round(COMPILER_SYNAPSES_PER_WORD, 3)}),
        "source": SOURCE if mapping == "brief" else COMPILER_SOURCE,
        "synapse_storage": "sparse" if sparse else "dense",
        **({"storage_source": SPARSE_SOURCE} if sparse else {}),
    }
