"""front.html and front.png: which student to deploy, from front.json alone (`explore`).

Deployed accuracy (mean ± std over seeds) against energy and against latency per inference,
the non-dominated students marked, those that need more than one Loihi 2 chip crossed, every
point linked to its run folders' report.html.
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from pydantic import BaseModel

from neurodeploy.files import atomic_path
from neurodeploy.report.html import CSS, _e, _pj, _table
from neurodeploy.report.plots import _png, plt
from neurodeploy.schema import OPEN, Generated



class Spread(BaseModel):
    """A figure over seeds: mean, sample standard deviation (0 for one seed), each seed's."""
    model_config = OPEN
    mean: float
    std: float
    per_seed: list[float]


class Point(BaseModel):
    """One variant read out at one T', over its seeds (distill.explore.front)."""
    model_config = OPEN
    variant: str
    settings: dict[str, Any]                      # the grid's values for this variant
    readout_T: int                                # T' (T unless full_range_kd)
    label: str                                    # the settings, for plots
    T: int
    seeds: list[int]
    accuracy: Spread                              # deployed, on the whole test split
    val_accuracy: Spread
    energy_pj: float                              # per inference, by front_preset
    latency_us: float | None                      # None: the preset models no latency
    energy_pj_by_preset: dict[str, float]
    latency_us_by_preset: dict[str, float | None]
    cores: int
    fits_one_chip: bool
    lava_spike_mismatches: int                    # over the Lava samples of every seed's run
    lava_samples: int
    runs: list[str]                               # run folders, under the explore folder
    recipe_digests: list[str]
    backend: str
    test_samples: int
    front: dict[str, bool | None]                 # per cost: non-dominated (None: no cost)


class Front(BaseModel):
    """front.json, what `explore` writes (and front.html shows): every point of the grid."""
    model_config = OPEN
    recipe: str
    recipe_digest: str
    grid: dict[str, list[Any] | tuple[Any, ...]]  # dotted recipe key: its values
    seeds: list[int]
    presets: list[str]
    front_preset: str                             # the preset energy_pj and latency_us are by
    lava_samples: int                             # per run, checked spike for spike
    points: list[Point]                           # by energy, then accuracy
    generated: Generated
    selection: str                                # which epoch, which split, which mode

AXES = (("energy", "energy_pj", 1e-6, "energy per inference (uJ)"),
        ("latency", "latency_us", 1.0, "latency per inference (us)"))


def _label(point: dict) -> str:
    t = point["readout_T"]
    return point["label"] + (f" @T'={t}" if t != point["T"] else "")


def front_png(front: dict) -> bytes:
    """Accuracy vs energy and vs latency: the front joined and filled, the rest hollow."""
    points = front["points"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (cost, key, scale, xlabel) in zip(axes, AXES):
        shown = [p for p in points if p[key] is not None]
        if not shown:
            ax.text(0.5, 0.5, f"{cost}: not modelled by {front['front_preset']}",
                    ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        for p in shown:
            on = p["front"][cost]
            ax.errorbar(p[key] * scale, 100 * p["accuracy"]["mean"],
                        yerr=100 * p["accuracy"]["std"], fmt="o" if p["fits_one_chip"] else "x",
                        ms=6, color="C3" if on else "0.45", mfc="C3" if on else "none",
                        capsize=2, lw=1)
            if on:                     # the table names the others
                ax.annotate(_label(p), (p[key] * scale, 100 * p["accuracy"]["mean"]),
                            fontsize=7, textcoords="offset points", xytext=(4, -10),
                            color="0.25")
        line = sorted((p for p in shown if p["front"][cost]), key=lambda p: p[key])
        ax.step([p[key] * scale for p in line], [100 * p["accuracy"]["mean"] for p in line],
                where="post", color="C3", lw=1, alpha=0.6, label="front (non-dominated)")
        values = [p[key] for p in shown]
        if min(values) > 0 and max(values) / min(values) > 20:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(xlabel=xlabel, ylabel="deployed test accuracy (%)",
               title=f"accuracy vs {cost} ({front['front_preset']})")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.suptitle(f"{front['recipe']}: mean ± std over seeds {front['seeds']}; front points "
                 f"labelled {', '.join(k.rsplit('.', 1)[-1] for k in front['grid'])}; o fits "
                 "one Loihi 2 chip, x needs more", fontsize=10)
    return _png(fig)


def render_front(front: dict, image: bytes) -> str:
    def star(p, cost):
        return {True: "★", False: "", None: "-"}[p["front"][cost]]
    rows = [[star(p, "energy"), star(p, "latency"), p["variant"], p["readout_T"],
             ", ".join(map(str, p["seeds"])),
             f"{100 * p['accuracy']['mean']:.2f} ± {100 * p['accuracy']['std']:.2f}%",
             _pj(p["energy_pj"]),
             "not modelled" if p["latency_us"] is None else f"{p['latency_us']:.3g} µs",
             p["cores"], "yes" if p["fits_one_chip"] else "no",
             f"{p['lava_spike_mismatches']} / {p['lava_samples']} samples",
             " ".join(f'<a href="{_e(run)}/report.html">{_e(run.rsplit("-", 1)[-1])}</a>'
                      for run in p["runs"])] for p in front["points"]]
    table = _table(["front (energy)", "front (latency)", "variant", "T'", "seeds",
                    "accuracy", "energy", "latency", "cores", "one chip",
                    "Lava mismatches", "runs"], [r[:-1] + ["RUNS"] for r in rows])
    for row in rows:                   # the links are HTML, not text for _table to escape
        table = table.replace(">RUNS<", f">{row[-1]}<", 1)
    settings = _table(["setting", "values"], [[k, ", ".join(map(str, v))]
                                             for k, v in front["grid"].items()], text=True)
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>neurodeploy explore: {_e(front['recipe'])}</title><style>{CSS}</style></head><body>
<h1>Which student to deploy: {_e(front['recipe'])}</h1>
<p class="muted">{len(front['points'])} points over seeds {_e(front['seeds'])}; energy and
latency priced by <b>{_e(front['front_preset'])}</b> (every preset's figures are in
front.json); {_e(front['selection'])}; a Lava sample of every run checks the exact mode
spike for spike. ★: no other point is at least as accurate and at most as costly.</p>
<img alt="front" src="data:image/png;base64,{base64.b64encode(image).decode()}">
<h2>Points</h2>
{table}
<h2>Grid</h2>
{settings}
<p class="muted">recipe sha256 {_e(front['recipe_digest'])} · generated
{_e(front['generated']['date'])} · front.json holds every number shown here.</p>
</body></html>
"""


def write_front(front: dict, out_dir: str | Path) -> Path:
    """front.png and front.html into out_dir."""
    out_dir = Path(out_dir)
    image = front_png(front)
    with atomic_path(out_dir / "front.png") as tmp:
        tmp.write_bytes(image)
    with atomic_path(out_dir / "front.html") as tmp:
        tmp.write_text(render_front(front, image), encoding="utf-8")
    return out_dir / "front.html"
