"""The report's figures, drawn from report.json alone (matplotlib, Agg)."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def spikes_per_layer(report: dict) -> bytes:
    counts = np.asarray(report["counts"]["spikes"])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    steps = np.arange(counts.shape[1])
    for name, row, layer in zip(report["counts"]["layers"], counts, report["layers"]):
        ax.plot(steps, row, marker="o", ms=3, label=f"{name} ({layer['neurons']} neurons)")
    ax.set(xlabel="timestep t", ylabel="spikes per inference",
           title="Spikes per layer and timestep (mean over samples)")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return _png(fig)


def raster(report: dict) -> bytes:
    """The first test sample's spikes per layer; a readout layer's panel shows its voltage per
    output neuron instead (it never spikes), the one whose summed voltage wins drawn bold."""
    names = list(report["raster"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
    for ax, name, layer in zip(axes[0], names, report["layers"]):
        if name == names[-1] and report.get("readout_voltage") is not None:
            volts = np.asarray(report["readout_voltage"], dtype=float)      # [T, classes]
            winner = int(volts.sum(axis=0).argmax())
            for i, trace in enumerate(volts.T):
                ax.plot(trace, lw=2 if i == winner else 0.8,
                        color="k" if i == winner else "0.6")
            ax.set(xlim=(-0.5, report["timesteps"] - 0.5), xlabel="timestep t",
                   ylabel="voltage", title=f"{name}: readout, class {winner} wins")
            continue
        events = np.asarray(report["raster"][name]).reshape(-1, 2)
        ax.scatter(events[:, 0], events[:, 1], s=6, marker="|", color="k")
        ax.set(xlim=(-0.5, report["timesteps"] - 0.5), ylim=(-0.5, layer["neurons"] - 0.5),
               xlabel="timestep t", ylabel="neuron", title=f"{name}: {len(events)} spikes")
    fig.suptitle("Spike raster of the first test sample"
                 + (" (the readout layer: its voltage)" if "readout_voltage" in report else ""),
                 y=1.02)
    return _png(fig)


def energy_per_timestep(report: dict) -> bytes:
    steps = report["per_timestep"]
    per_layer = np.asarray([s["energy_pj_per_layer"] for s in steps]).T / 1e3   # nJ
    static = np.asarray([s["static_pj"] for s in steps]) / 1e3
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bottom = np.zeros(len(steps))
    for name, row in zip(report["counts"]["layers"], per_layer):
        ax.bar(range(len(steps)), row, bottom=bottom, label=f"{name} (dynamic)")
        bottom += row
    if static.any():
        ax.bar(range(len(steps)), static, bottom=bottom, label="static", color="0.75")
    ax.set(xlabel="timestep t", ylabel="nJ per inference",
           title=f"Energy per timestep, stacked by layer ({report['energy']['preset']})")
    ax.legend(frameon=False)
    return _png(fig)


def tradeoff(report: dict) -> bytes:
    sweep = report["timestep_sweep"]
    t = [s["T"] for s in sweep]
    acc = [s["accuracy"] for s in sweep]
    energy = [s["energy_pj"] / 1e6 for s in sweep]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    a1.plot(t, acc, marker="o", ms=3)
    a1.set(xlabel="read out after T' steps", ylabel="test accuracy", title="Accuracy vs T'")
    a1.grid(alpha=0.3)
    a2.plot(energy, acc, marker="o", ms=3)
    shown = [i for i, label in enumerate(t) if label in (1, 2, 4, 8, 16, 32) or label == t[-1]]
    for k, i in enumerate(shown):         # alternate above / below so neighbours never overlap
        a2.annotate(f"T'={t[i]}", (energy[i], acc[i]), textcoords="offset points",
                    xytext=(4, -12 if k % 2 == 0 else 6), fontsize=8)
    a2.set(xlabel="energy per inference (uJ)", ylabel="test accuracy",
           title="Energy / accuracy trade-off")
    a2.grid(alpha=0.3)
    return _png(fig)


def record_spikes(result: dict) -> bytes | None:
    """simulate.json: spikes per layer and timestep (mean per inference)."""
    rows = result.get("spikes_per_layer_timestep")
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, row in rows.items():
        ax.plot(range(len(row)), row, marker="o", ms=3, label=name)
    ax.set(xlabel="timestep t", ylabel="spikes per inference",
           title=f"Spikes per layer and timestep ({result['backend']})")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return _png(fig)


def source_counts(result: dict) -> bytes | None:
    """parity.json: per layer, each deployed backend's spike count relative to the model as
    trained (float), in % (float and exact legitimately differ a little)."""
    sources = result.get("source") or []
    if not sources:
        return None
    names = [r["layer"] for r in sources[0]["layers"]]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / len(sources)
    for i, s in enumerate(sources):
        values = [100 * (r["relative_count_difference"] or 0) for r in s["layers"]]
        ax.bar(np.arange(len(names)) + i * width, values, width, label=s["backends"][1])
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(ylabel="% spikes vs as trained",
           title="Spikes per layer: deployed relative to the model as trained")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def record_energy(result: dict) -> bytes | None:
    """simulate.json: energy per timestep stacked by layer, when the record was priced."""
    return energy_per_timestep(result) if result.get("per_timestep") else None


FIGURES = {"spikes_per_layer": spikes_per_layer, "raster": raster,
           "energy_per_timestep": energy_per_timestep, "tradeoff": tradeoff}
RECORD_FIGURES = {"simulate": {"spikes_per_layer": record_spikes,
                               "energy_per_timestep": record_energy},
                  "parity": {"source_counts": source_counts,      # a sigma-delta run's:
                             "energy_per_timestep": record_energy}}   # only it is priced
