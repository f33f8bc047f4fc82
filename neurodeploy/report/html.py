"""report.html: one self-contained page that a person understands at a glance.

Headline numbers first, then where each number comes from: counts x cited figures, the parity
check, the resource estimate, the ANN baselines side by side, and the figures (also written as
PNG files next to the page).
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

from neurodeploy.errors import atomic_path
from neurodeploy.report.plots import FIGURES

CSS = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
.cards{display:flex;gap:12px;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:8px;
padding:10px 14px;min-width:170px} .card b{display:block;font-size:22px} .muted{color:#666;font-size:13px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f5f5f5} td:first-child,th:first-child{text-align:left} img{max-width:100%}
.ok{color:#176d2c} .bad{color:#b00020}
"""


def _e(value) -> str:
    return html.escape(str(value))


def _pj(pj: float | None) -> str:
    if pj is None:
        return "not modelled"
    for unit, scale in (("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(report: dict, images: dict[str, bytes]) -> str:
    acc, par, energy, res = report["accuracy"], report["parity"], report["energy"], report["resources"]
    counts, steps = report["counts"], report["timesteps"]
    fig = {k: f'<img alt="{k}" src="data:image/png;base64,{base64.b64encode(v).decode()}">'
           for k, v in images.items()}
    totals = {k: sum(map(sum, counts[k])) for k in ("synaptic_ops", "neuron_active",
                                                    "neuron_inactive", "spikes")}
    f = energy["figures"]
    trace = [[kind, f"{totals[key]:,.1f}", f"{f[fig_key]:g} pJ", _pj(totals[key] * f[fig_key])]
             for kind, key, fig_key in (("synaptic ops", "synaptic_ops", "synaptic_op_pj"),
                                        ("neuron updates, active", "neuron_active", "neuron_active_pj"),
                                        ("neuron updates, inactive", "neuron_inactive",
                                         "neuron_inactive_pj"),
                                        ("output spikes", "spikes", "spike_out_pj"))]
    trace.append(["static power x time", f"{energy['latency_us'] or 0:.3g} µs",
                  f"{f['static_w']:g} W", _pj(energy["static_pj"])])
    parity_ok = par["spike_mismatches"] == 0
    sizes = "-".join(str(s) for s in report["network"]["sizes"])
    cards = [("student on " + _e(report["backend"].split(" ")[0]), f"{acc['student_lava']:.4f}",
              f"torch exact {acc['student_torch']:.4f} · teacher "
              + (f"{acc['teacher']:.4f}" if acc["teacher"] is not None else "none")),
             ("energy per inference", _pj(energy["per_inference_pj"]),
              f"dynamic {_pj(energy['dynamic_pj'])} · static "
              f"{_pj(energy['static_pj']) if f['static_w'] else 'not modelled'}"),
             ("latency per inference", f"{energy['latency_us']:.3g} µs" if energy["latency_us"]
              else "not modelled", f"{steps} timesteps, estimated"),
             ("parity", f"{par['spike_mismatches']} mismatches",
              f"{100 * par['prediction_agreement']:.1f}% predictions agree"),
             ("Loihi 2 cores", str(res["cores"]), "fits one chip" if res["fits_one_chip"]
              else f"needs {res['chips']} chips")]
    card_html = "".join(f'<div class="card">{t}<b>{v}</b><span class="muted">{_e(s)}</span></div>'
                        for t, v, s in cards)
    ann = [[b["name"], _pj(b["per_inference_pj"]), b["source"].split(",")[0]]
           for b in energy["ann_baselines"]]
    ann.insert(0, [f"this SNN on {energy['preset']}", _pj(energy["per_inference_pj"]),
                   energy["source"].split(",")[0]])
    res_rows = [[r["name"], r["neurons"], f"{r['synapses']:,}", r["fan_in"], r["cores"],
                 r["neurons_per_core"], f"{r['synapses_per_core']:,}", r["bound_by"]]
                for r in res["layers"]]
    per_layer_par = [[name, sum(v), max(v) if v else 0]
                     for name, v in par["spike_mismatches_per_layer_timestep"].items()]
    sweep = [[s["T"], f"{s['accuracy']:.4f}", _pj(s["energy_pj"]),
              f"{s['latency_us']:.3g} µs" if s["latency_us"] is not None else "-"]
             for s in report["timestep_sweep"]]
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>neurodeploy report: {_e(report['recipe'])}</title><style>{CSS}</style></head><body>
<h1>{_e(report['recipe'])}: spiking student {sizes}, T = {steps}</h1>
<p class="muted">{report['samples']} test samples · deployed on {_e(report['backend'])} ·
energy preset <b>{_e(energy['preset'])}</b> ({_e(energy['kind'])})</p>
<div class="cards">{card_html}</div>

<h2>Where the energy comes from</h2>
<p>Every event was counted on the deployed network, per layer and timestep, and priced with the
preset's figures. Totals per inference:</p>
{_table(["event", "count per inference", "figure", "energy"], trace)}
<p class="muted">Source: {_e(energy['source'])}.<br>{_e(energy['note'])}</p>
{fig['energy_per_timestep']}

<h2>Spiking activity</h2>
{fig['spikes_per_layer']}
{fig['raster']}

<h2>Accuracy, energy and latency when reading out early (T' = 1..{steps})</h2>
<p>The same record read after its first T' steps: what an early exit would cost and deliver.</p>
{fig['tradeoff']}
{_table(["T'", "accuracy", "energy per inference", "latency"], sweep)}

<h2>Against a conventional accelerator</h2>
<p>Compute-only figures price arithmetic alone; memory-aware ones add reading weights and
activations (Lemaire et al. 2022). Loihi's per-operation figures already include its memory.</p>
{_table(["estimate", "energy per inference", "source"], ann)}

<h2>Parity: does the chip compute what PyTorch computed?</h2>
<p class="{'ok' if parity_ok else 'bad'}"><b>{par['spike_mismatches']}</b> spike mismatches
between {_e(' and '.join(par['backends']))} over {par['spikes_compared']:,} spikes compared
(every layer, every timestep); predictions agree {100 * par['prediction_agreement']:.2f}%.
{'' if parity_ok else 'First mismatch: ' + _e(par['first_mismatch'])}</p>
{_table(["layer", "mismatches", "most in one timestep"], per_layer_par)}

<h2>Loihi 2 resources (estimate)</h2>
<p><b>{_e(res['verdict'])}</b>. <span class="muted">{_e(res['source'])}</span></p>
{_table(["layer", "neurons", "synapses", "max fan-in", "cores", "neurons/core",
         "synapses/core", "bound by"], res_rows)}
</body></html>
"""


def write_html(report: dict, out_dir: str | Path) -> Path:
    """Write report.html and one PNG per figure into out_dir."""
    out_dir = Path(out_dir)
    images = {name: draw(report) for name, draw in FIGURES.items()}
    for name, png in images.items():
        with atomic_path(out_dir / f"{name}.png") as tmp:
            tmp.write_bytes(png)
    path = out_dir / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(render(report, images))
    return path
