"""What the same task costs as a conventional (ANN) accelerator would run it.

Two views side by side, so that no compute-only ratio is mistaken for the whole story:
- compute only: MACs x energy per MAC (Horowitz, "Computing's energy problem", ISSCC 2014,
  45 nm: FP32 MAC = 3.7 + 0.9 pJ, INT8 MAC = 0.2 + 0.03 pJ);
- memory-aware, after Lemaire et al., ICONIP 2022: add reading every weight and input
  activation and writing every output activation once per inference, each 64-bit access priced
  by the size of the buffer that holds the layer's weights (Horowitz: 8 KB 10 pJ, 32 KB 20 pJ,
  1 MB 100 pJ; beyond that DRAM, 1.3 nJ, the low end of 1.3-2.6 nJ).
Dampfhoffer et al. (IEEE TETCI 2023) show memory accesses dominate and SNNs win only at low
spike rates; Loihi's per-operation figures already include its SRAM accesses.
"""
from __future__ import annotations

HOROWITZ = "Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014"
LEMAIRE = ("Lemaire et al., 'An Analytical Estimation of Spiking Neural Networks Energy "
           "Efficiency', ICONIP 2022 (memory terms priced by buffer size, Horowitz figures)")
MAC_PJ = {"fp32": 3.7 + 0.9, "int8": 0.2 + 0.03}
BITS = {"fp32": 32, "int8": 8}
SRAM_64BIT_PJ = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
DRAM_64BIT_PJ = 1300.0


def _access_pj(buffer_bytes: float) -> float:
    for size, pj in SRAM_64BIT_PJ:
        if buffer_bytes <= size:
            return pj
    return DRAM_64BIT_PJ


def dense_layers(sizes: list[int]) -> list[dict]:
    """Layer descriptions of an MLP with widths `sizes`."""
    return [{"macs": i * o, "weights": i * o, "inputs": i, "outputs": o}
            for i, o in zip(sizes[:-1], sizes[1:])]


def ann_baselines(name: str, layers: list[dict]) -> list[dict]:
    """Baselines for an ANN given per layer its MACs, weights, inputs and outputs (one pass)."""
    macs = sum(layer["macs"] for layer in layers)
    out = []
    for precision in ("fp32", "int8"):
        compute = macs * MAC_PJ[precision]
        out.append({"name": f"{name} ANN, {precision.upper()} compute only",
                    "source": HOROWITZ, "macs": macs, "per_inference_pj": compute})
        words = lambda n: n * BITS[precision] / 64   # noqa: E731  64-bit accesses
        memory = sum((words(layer["weights"]) + words(layer["inputs"]) + words(layer["outputs"]))
                     * _access_pj(layer["weights"] * BITS[precision] / 8) for layer in layers)
        out.append({"name": f"{name} ANN, {precision.upper()} memory-aware", "source": LEMAIRE,
                    "macs": macs, "memory_pj": memory, "per_inference_pj": compute + memory})
    return out
