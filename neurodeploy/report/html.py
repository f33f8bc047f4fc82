"""report.html: one self-contained page that a person understands at a glance.

Headline numbers first, then where each number comes from: counts x cited figures, the parity
check, the resource estimate, the ANN baselines side by side, and the figures (also written as
PNG files next to the page).
"""
from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from neurodeploy.files import atomic_path
from neurodeploy.report.plots import FIGURES, RECORD_FIGURES
from neurodeploy.report.summary import deployed_accuracy, duration

CSS = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
.cards{display:flex;gap:12px;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:8px;
padding:10px 14px;min-width:170px} .card b{display:block;font-size:22px} .muted{color:#666;font-size:13px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f5f5f5} td:first-child,th:first-child{text-align:left} img{max-width:100%}
.ok{color:#176d2c} .bad{color:#b00020} .wide{flex:1 1 100%;background:#f7f9fc}
.wide div{margin-top:4px} .wide b{display:inline;font-size:20px} td.t,th.t{text-align:left}
.cards+.cards{margin-top:12px} .mono{font-family:ui-monospace,monospace;font-size:12px}
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


_NUMBER = re.compile(r"^[-+]?[\d.,]+(e[-+]?\d+)?( ?(%|[pnµm]?J|µs|W|pJ|points))?( \(.*\))?$")


def _table(header: list[str], rows: list[list], text: bool = False) -> str:
    """Numbers right-aligned, text left-aligned (`text`: every cell is text)."""
    head = "".join(f'<th class="t">{_e(h)}</th>' if text else f"<th>{_e(h)}</th>"
                   for h in header)
    cell = lambda c: (f"<td>{_e(c)}</td>" if not text and _NUMBER.match(str(c))  # noqa: E731
                      else f'<td class="t">{_e(c)}</td>')
    body = "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _ratio(snn_pj: float, ann_pj: float) -> str:
    """The comparison whichever way it goes: 'ANN is 46x cheaper' or 'SNN is 3.1x cheaper'."""
    if not snn_pj or not ann_pj:
        return "not comparable"
    r = snn_pj / ann_pj
    return f"ANN is {r:.3g}x cheaper" if r >= 1 else f"SNN is {1 / r:.3g}x cheaper"


def _versus_ann(energy: dict) -> str:
    """Headline: this SNN against the same architecture run as an INT8 ANN, both views."""
    base = {b["name"]: b["per_inference_pj"] for b in energy["ann_baselines"]}
    snn = energy["per_inference_pj"]
    rows = [(view, base.get(f"student architecture as ANN, INT8 {view}"))
            for view in ("compute only", "memory-aware")]
    if not any(pj for _, pj in rows):
        return ""
    lines = "".join(f"<div><b>{_ratio(snn, pj)}</b> <span class='muted'>{view}: SNN "
                    f"{_pj(snn)} vs INT8 ANN {_pj(pj)}</span></div>" for view, pj in rows if pj)
    return (f'<div class="card wide"><span>this SNN vs the same architecture as an INT8 ANN '
            f'(energy per inference, {_e(energy["preset"])})</span>{lines}</div>')


def _delay_note(report: dict) -> str:
    """Why accuracy at small T' reads chance: the output has not spiked (or integrated) yet."""
    layers = len(report["counts"]["layers"])
    out = report["counts"]["spikes"][-1][:6]
    readout = report.get("parity", {}).get("readout_voltage_mismatches") is not None
    when = ("the readout voltage needs a few steps to build up" if readout else
            "output spikes per inference at t = " + ", ".join(str(t) for t in range(len(out)))
            + ": " + ", ".join(f"{v:.2f}" for v in out))
    return (f"<p class='muted'>Why the first T' read chance: each of the {layers} layers must "
            "integrate its input current past threshold before it spikes, so activity reaches "
            f"the output only a few steps into the window ({when}). "
            "Until then every class ties and the prediction is class 0. On the chip each layer "
            f"adds one more step of synaptic delay ({layers} steps for {layers} layers), which "
            "window time (the record's time axis) already removes.</p>")


def _provenance(prov: dict | None, generated: dict | None, extra: dict) -> str:
    """Versions, recipe, date, network and inputs digests, backend, T: what made this page."""
    prov, generated = prov or {}, generated or {}
    rows = [[k, v] for k, v in extra.items() if v is not None]
    rows += [["network sha256", prov.get("network_sha256")],
             ["inputs sha256 (spikes + labels)", prov.get("inputs_sha256")],
             ["backend", prov.get("backend")], ["T (timesteps)", prov.get("timesteps")],
             ["samples", prov.get("samples")], ["date", generated.get("date")]]
    rows += [[f"version: {k}", v] for k, v in (generated.get("versions") or {}).items()]
    rows += [[k, v] for k, v in prov.items() if k not in (
        "network_sha256", "inputs_sha256", "backend", "timesteps", "samples")]
    return _table(["what", "value"], [r for r in rows if r[1] is not None], text=True)


def _links(files: dict[str, str], out_dir: Path | None) -> str:
    """Relative links to the artifacts next to the page (only those that exist there)."""
    items = [f'<a href="{_e(path)}">{_e(label)}</a>' for label, path in files.items()
             if out_dir is None or (out_dir / path).exists()]
    return "<p>Files: " + " · ".join(items) + "</p>" if items else ""


def _source_table(source: dict) -> str:
    rows = [[r["layer"], f"{r['float_spikes_per_inference']:,.1f}",
             f"{r['deployed_spikes_per_inference']:,.1f}",
             f"{r['count_difference_per_inference']:+,.2f}"
             + (f" ({100 * r['relative_count_difference']:+.2f}%)"
                if r["relative_count_difference"] is not None else ""),
             f"{100 * r['neuron_steps_differing_share']:.2f}%"] for r in source["layers"]]
    a, b = source["backends"]
    return _table(["layer", f"spikes per inference, {a}", f"spikes per inference, {b}",
                   "difference", "neuron-steps differing"], rows)


def _source_summary(source: dict) -> str:
    a, b = source["backends"]
    gap = source.get("gap")
    start = source["divergence_starts_at"]
    return (f"<p>{_e(b)} vs the model as trained ({_e(a)}): predictions agree "
            f"<b>{100 * source['prediction_agreement']:.2f}%</b>"
            + (f", accuracy {source['accuracy'][b]:.4f} vs {source['accuracy'][a]:.4f} (gap "
               f"{100 * gap:+.2f} points)" if gap is not None else "")
            + (f"; spikes first differ in layer <b>{_e(start)}</b>" if start
               else "; every spike is the same")
            + ". Float and exact arithmetic legitimately differ (sub-integer rounding, wrap, "
              "saturation), so spike counts per layer are the measure, not exact equality.</p>")


def _neurobench(nb: dict) -> str:
    so = nb["SynapticOperations"]
    rows = [["ClassificationAccuracy", f"{nb['ClassificationAccuracy']:.4f}"],
            ["SynapticOperations: Effective_ACs per inference", f"{so['Effective_ACs']:,.0f}"],
            ["SynapticOperations: Effective_MACs per inference", f"{so['Effective_MACs']:,.0f}"],
            ["SynapticOperations: Dense per inference", f"{so['Dense']:,.0f}"],
            ["ActivationSparsity", f"{nb['ActivationSparsity']:.4f}"],
            ["ConnectionSparsity", f"{nb['ConnectionSparsity']:.4f}"],
            ["Footprint (bytes, deployed widths)", f"{nb['Footprint']:,}"]]
    return _table([f"NeuroBench {nb['version']} metric", "value"], rows)


def _energy_trace(report: dict) -> str:
    """Where the energy comes from: counts per inference x the preset's figures, then the
    source and its caveats (report.json and simulate.json alike)."""
    counts, energy = report["counts"], report["energy"]
    totals = {k: sum(map(sum, counts[k])) for k in ("synaptic_ops", "neuron_active",
                                                    "neuron_inactive", "spikes")}
    f = energy["figures"]
    trace = [[kind, f"{totals[key]:,.1f}", f"{f[fig_key]:g} pJ", _pj(totals[key] * f[fig_key])]
             for kind, key, fig_key in (("synaptic ops", "synaptic_ops", "synaptic_op_pj"),
                                        ("neuron updates, active", "neuron_active", "neuron_active_pj"),
                                        ("neuron updates, inactive", "neuron_inactive",
                                         "neuron_inactive_pj"),
                                        ("output spikes", "spikes", "spike_out_pj"))]
    if sparse := energy.get("sparse_synaptic_op"):     # sparse-stored layers' own figure
        ops = [sum(row) for row in counts["synaptic_ops"]]
        trace[0][2:] = [f"{f['synaptic_op_pj']:g} pJ dense, {sparse[0]:g} pJ sparse",
                        _pj(sum(n * (sparse[0] if layer.get("stored_synapses") is not None
                                     else f["synaptic_op_pj"])
                                for n, layer in zip(ops, report["layers"])))]
    trace.append(["static power x time", duration(energy['latency_us'] or 0),
                  f"{f['static_w']:g} W" if f["static_w"] else "not modelled",
                  _pj(energy["static_pj"]) if f["static_w"] else "not modelled"])
    return (_table(["event", "count per inference", "figure", "energy"], trace)
            + f"<p class='muted'>Source: {_e(energy['source'])}.<br>{_e(energy['note'])}</p>")


def _resource_table(res: dict) -> str:
    """The Loihi 2 core estimate per layer, with a total row."""
    rows = [[r["name"], r["neurons"], f"{r.get('stored_synapses', r['synapses']):,}",
             f"{r.get('nonzero_synapses', r['synapses']):,}", r["fan_in"], r["cores"],
             r["neurons_per_core"], f"{r['synapses_per_core']:,}", r["bound_by"]]
            for r in res["layers"]]
    nonzero = sum(r.get("nonzero_synapses", r["synapses"]) for r in res["layers"])
    rows.append(["total", sum(r["neurons"] for r in res["layers"]),
                 f"{sum(r.get('stored_synapses', r['synapses']) for r in res['layers']):,}",
                 f"{nonzero:,}", "",
                 res["cores"], "", "", ""])
    return _table(["layer", "neurons", "synapses stored", "non-zero synapses",
                   "max fan-in (non-zero)", "cores", "neurons/core", "synapses/core",
                   "bound by"], rows)


def render(report: dict, images: dict[str, bytes], out_dir: Path | None = None) -> str:
    acc, par, energy, res = report["accuracy"], report["parity"], report["energy"], report["resources"]
    steps = report["timesteps"]
    fig = {k: f'<img alt="{k}" src="data:image/png;base64,{base64.b64encode(v).decode()}">'
           for k, v in images.items()}
    f = energy["figures"]
    parity_ok = par["spike_mismatches"] == 0
    compared = par.get("neuron_steps_compared", par["spikes_compared"])
    sizes = "-".join(str(s) for s in report["network"]["sizes"])
    source = report.get("source_parity") or {}
    cards = [("student on " + _e((report.get("provenance") or {}).get("backend")
                                 or report["backend"].split(" ")[0]),
              f"{deployed_accuracy(report):.4f}",
              f"torch exact {acc['student_torch']:.4f} · teacher "
              + (f"{acc['teacher']:.4f}" if acc.get("teacher") is not None else "none")
              + (f" · float {acc['student_float']:.4f}" if acc.get("student_float") is not None
                 else "")),
             ("energy per inference", _pj(energy["per_inference_pj"]),
              f"dynamic {_pj(energy['dynamic_pj'])} · static "
              f"{_pj(energy['static_pj']) if f['static_w'] else 'not modelled'}"),
             ("latency per inference", duration(energy["latency_us"]) if energy["latency_us"]
              else "not modelled", f"{steps} timesteps, estimated"),
             ("parity", f"{par['spike_mismatches']} mismatches",
              f"{100 * par['prediction_agreement']:.1f}% predictions agree"),
             ("Loihi 2 cores", str(res["cores"]), "fits one chip" if res["fits_one_chip"]
              else f"needs {res['chips']} chips")]
    if "prediction_agreement" in source:
        cards.insert(1, ("float vs deployed", f"{100 * source['prediction_agreement']:.1f}%",
                         "predictions agree with the training mode"))
    card_html = "".join(f'<div class="card">{t}<b>{v}</b><span class="muted">{_e(s)}</span></div>'
                        for t, v, s in cards)
    ann = [[b["name"], _pj(b["per_inference_pj"]), b["source"].split(",")[0]]
           for b in energy["ann_baselines"]]
    ann.insert(0, [f"this SNN on {energy['preset']}", _pj(energy["per_inference_pj"]),
                   energy["source"].split(",")[0]])
    nonzero = sum(r.get("nonzero_synapses", r["synapses"]) for r in res["layers"])
    per_layer_par = [[name, sum(v), max(v) if v else 0]
                     for name, v in par["spike_mismatches_per_layer_timestep"].items()]
    sweep = [[s["T"], f"{s['accuracy']:.4f}", _pj(s["energy_pj"]),
              duration(s["latency_us"]) if s["latency_us"] is not None else "-"]
             for s in report["timestep_sweep"]]
    files = {"report.json": "report.json", **{k: v for k, v in
                                              (report.get("artifacts") or {}).items()},
             **{f"{k}.png": f"{k}.png" for k in images}}
    prov = _provenance(report.get("provenance"), report.get("generated"),
                       {"recipe": report.get("recipe"),
                        "energy preset": energy["preset"]})
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>neurodeploy report: {_e(report['recipe'])}</title><style>{CSS}</style></head><body>
<h1>{_e(report['recipe'])}: spiking student {sizes}, T = {steps}</h1>
<p class="muted">{report['samples']} test samples · deployed on {_e(report['backend'])} ·
energy preset <b>{_e(energy['preset'])}</b> ({_e(energy['kind'])})</p>
<div class="cards">{_versus_ann(energy)}</div>
<div class="cards">{card_html}</div>

<h2>Where the energy comes from</h2>
<p>Every event was counted on the deployed network, per layer and timestep, and priced with the
preset's figures. Totals per inference:</p>
{_energy_trace(report)}
{fig['energy_per_timestep']}

<h2>Spiking activity</h2>
{fig['spikes_per_layer']}
{fig['raster']}

<h2>Accuracy, energy and latency when reading out early (T' = 1..{steps})</h2>
<p>The same record read after its first T' steps: what an early exit would cost and deliver.</p>
{_delay_note(report)}
{fig['tradeoff']}
{_table(["T'", "accuracy", "energy per inference", "latency"], sweep)}

<h2>Against a conventional accelerator</h2>
<p>Compute-only figures price arithmetic alone; memory-aware ones add reading weights and
activations (Lemaire et al. 2022). Loihi's per-operation figures already include its memory.</p>
{_table(["estimate", "energy per inference", "source"], ann)}

<h2>Parity: does the chip compute what PyTorch computed?</h2>
<p class="{'ok' if parity_ok else 'bad'}"><b>{par['spike_mismatches']}</b> spike mismatches
between {_e(' and '.join(par['backends']))} over {compared:,} neuron-steps compared
(every neuron of every layer at every timestep of every sample); predictions agree
{100 * par['prediction_agreement']:.2f}%.
{'' if parity_ok else 'First mismatch: ' + _e(par['first_mismatch'])}</p>
{_table(["layer", "mismatches", "most in one timestep"], per_layer_par)}

<h2>Distance from the model as trained</h2>
{(_source_summary(source) + _source_table(source)) if "layers" in source
 else f"<p class='muted'>{_e(source.get('skipped', 'not measured for this report'))}</p>"}

{"<h2>NeuroBench metrics</h2>" + _neurobench(report["neurobench"])
 + "<p class='muted'>NeuroBench 2.3.0's definitions on the deployed record "
 "(neurodeploy/energy/neurobench.py); Footprint counts deployed 8-bit weights.</p>"
 if report.get("neurobench") else ""}

<h2>Loihi 2 resources (estimate)</h2>
<p><b>{_e(res['verdict'])}</b>. <span class="muted">{_e(res['source'])}</span></p>
{_resource_table(res)}
<p class="muted">The summary's {report['network'].get('synapses', nonzero):,} synapses are the
non-zero weights (total of the non-zero column); a dense layer stores all its weights, zeros
included, and a conv layer its kernel once, which is what the core estimate uses.</p>

<h2>Provenance</h2>
{prov}
{_links(files, out_dir)}
</body></html>
"""


def _priced_sections(result: dict, kind: str, cards: list, body: list) -> tuple[list, list]:
    """A priced record's energy and Loihi 2 cards and sections, added to `cards` and `body`."""
    energy, res = result["energy"], result["resources"]
    static = _pj(energy["static_pj"]) if energy["figures"]["static_w"] else "not modelled"
    cards = cards + [("energy per inference", _pj(energy["per_inference_pj"]),
                      f"dynamic {_pj(energy['dynamic_pj'])} · static {static} · "
                      + energy["preset"]),
                     ("latency per inference", duration(energy["latency_us"])
                      if energy["latency_us"] else "not modelled", "estimated"),
                     ("Loihi 2 cores", str(res["cores"]), "fits one chip"
                      if res["fits_one_chip"] else f"needs {res['chips']} chips")]
    return cards, body + [
        f"<h2>Where the energy comes from ({_e(energy['preset'])})</h2><p>Every event was "
        "counted on this record, per layer and timestep, and priced with the preset's figures "
        f"(as `run` prices its report; reprice with `neurodeploy energy {kind}.json --preset "
        "NAME`). Totals per inference:</p>" + _energy_trace(result),
        f"<h2>Loihi 2 resources (estimate)</h2><p><b>{_e(res['verdict'])}</b>. "
        f"<span class='muted'>{_e(res['source'])}</span></p>" + _resource_table(res)]


def render_record(kind: str, result: dict, images: dict[str, bytes],
                  out_dir: Path | None = None) -> str:
    """The page of a `simulate` or `parity` run: what applies to it, from its JSON alone."""
    fig = "".join(f'<img alt="{k}" src="data:image/png;base64,{base64.b64encode(v).decode()}">'
                  for k, v in images.items())
    prov = result.get("provenance") or {}
    body = []
    if result.get("kind") == "sigma-delta":    # graded messages, streamed: no accuracy
        backends = result["provenance"]["backends"]
        title = (f"{kind}: {_e(result['network'])}, a sigma-delta network, on "
                 f"{_e(', '.join(backends))}")
        per = sum(result["messages_per_layer"].values()) / max(1, result["samples"])
        cards = [("timesteps", str(result["timesteps"]),
                  f"per sample, {result['samples']} samples streamed unreset"),
                 ("messages per inference", f"{per:,.1f}", "non-zero, all layers")]
        if "message_mismatches" in result:
            m = result["message_mismatches"]
            cards.insert(0, ("verdict", "identical" if not m["total"] else "differ",
                             f"{m['total']} message mismatches in {m['compared']:,}"))
        body.append("<h2>Messages per layer</h2>" + _table(
            ["layer", "non-zero messages (all samples)", "per inference"],
            [[k, f"{v:,}", f"{v / max(1, result['samples']):,.1f}"]
             for k, v in result["messages_per_layer"].items()]))
        body += [f"<h2>{_e(pair.split('-', 1)[1])} vs {_e(pair.split('-', 1)[0])}</h2><p "
                 f"class='{'bad' if m['total'] else 'ok'}'><b>{m['total']}</b> message "
                 f"mismatches in {m['compared']:,}"
                 + (f"; first: {_e(m['first'])}" if m["first"] else "") + "</p>"
                 for pair, m in result.get("comparisons", {}).items()]
        body += [f"<p class='bad'>warning: {_e(w)}</p>" for w in result.get("warnings", ())]
        cards, body = _priced_sections(result, kind, cards, body)
        files = {f"{kind}.json": f"{kind}.json"}
    elif kind == "simulate":
        title = f"simulate: {_e(result.get('network', ''))} on {_e(result['backend'])}"
        per = sum(result["spikes_per_layer"].values()) / max(1, result["samples"])
        cards = [("accuracy", f"{result['accuracy']:.4f}", f"{result['samples']} samples"),
                 ("timesteps", str(result["timesteps"]), "window steps per sample"),
                 ("spikes per inference", f"{per:,.1f}", "all layers")]
        body.append("<h2>Spikes per layer</h2>")
        body.append(_table(["layer", "spikes (all samples)", "per inference"],
                           [[k, f"{v:,}", f"{v / max(1, result['samples']):,.1f}"]
                            for k, v in result["spikes_per_layer"].items()]))
        if "energy" in result:        # simulate.json of an older neurodeploy has none
            cards, body = _priced_sections(result, kind, cards, body)
        if result.get("quantization"):
            body.append("<h2>Quantization of the NIR graph</h2>" + _table(
                ["layer", "scale", "weight RMS error", "threshold"],
                [[q["layer"], f"{q['scale']:.4g}", f"{100 * q['weight_rel_rms_error']:.2f}%",
                  f"{q['threshold']['float']:.4g} -> {q['threshold']['int']}"]
                 for q in result["quantization"]]))
        files = {"simulate.json": "simulate.json", "chunks/": "chunks"}
    else:
        title = f"parity: {_e(result['network'])}"
        exact = result["spike_mismatches"] == 0 and not result["readout_voltage_mismatches"]
        cards = [(f"accuracy, {b}", f"{a:.4f}", f"{result['samples']} samples")
                 for b, a in result["accuracy"].items()]
        cards.append(("deployed backends", f"{result['spike_mismatches']} mismatches",
                      "spikes, every layer and step" if result["comparisons"]
                      else "only one deployed backend"))
        for p in result["comparisons"]:
            a, b = p["backends"]
            ok = p["spike_mismatches"] == 0
            body.append(f"<h2>{_e(b)} vs {_e(a)} (exact)</h2><p class='{'ok' if ok else 'bad'}'>"
                        f"<b>{p['spike_mismatches']}</b> spike mismatches over "
                        f"{p.get('neuron_steps_compared', p['spikes_compared']):,} neuron-steps "
                        f"compared; predictions agree {100 * p['prediction_agreement']:.2f}%"
                        + (f"; first mismatch: {_e(p['first_mismatch'])}" if p["first_mismatch"]
                           else "") + "</p>")
        for source in result.get("source", []):
            a, b = source["backends"]
            body.append(f"<h2>{_e(b)} vs the model as trained</h2>" + _source_summary(source)
                        + _source_table(source))
        for ref in result.get("reference", []):
            a, b = ref["backends"]
            oc = ref.get("output_counts")
            body.append(f"<h2>{_e(b)} vs {_e(a)}</h2><p>predictions agree "
                        f"<b>{100 * ref['prediction_agreement']:.2f}%</b>"
                        + (f"; accuracy gap {100 * ref['gap']:+.2f} points"
                           if "gap" in ref else "")
                        + (f"; output spikes per inference {oc['reference_per_inference']:,.2f} vs "
                           f"{oc['record_per_inference']:,.2f}, mean absolute difference "
                           f"{oc['abs_difference_per_inference']:,.2f}" if oc else "") + "</p>")
        cards.insert(0, ("verdict", "identical" if exact else "differ",
                         "deployed backends, spike for spike"))
        files = {"parity.json": "parity.json"}
    if result.get("reset"):                 # a foreign NIR graph: NIR cannot state its reset
        reset = result["reset"]
        note = reset if isinstance(reset, str) else reset["note"]
        measured = ("" if isinstance(reset, str) else
                    f" Measured on these inputs: the float model with reset by subtraction "
                    f"agrees with reset to zero on "
                    f"<b>{100 * reset['prediction_agreement_zero_vs_subtract']:.2f}%</b> of "
                    f"predictions ({reset['samples']} samples).")
        body.insert(0, f"<h2>Reset assumption</h2><p class='bad'>{_e(note)}</p>"
                       f"<p>{measured}</p>")
    card_html = "".join(f'<div class="card">{_e(t)}<b>{_e(v)}</b><span class="muted">{_e(s)}'
                        f'</span></div>' for t, v, s in cards)
    files.update({f"{k}.png": f"{k}.png" for k in images})
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>neurodeploy {kind}</title><style>{CSS}</style></head><body>
<h1>{title}</h1>
<div class="cards">{card_html}</div>
{''.join(body)}
{fig}
<h2>Provenance</h2>
{_provenance(prov, result.get("generated"), {"network file": result.get("network")})}
{_links(files, out_dir)}
</body></html>
"""


def _write_pngs(images: dict[str, bytes], out_dir: Path) -> None:
    for name, png in images.items():
        with atomic_path(out_dir / f"{name}.png") as tmp:
            tmp.write_bytes(png)


def write_html(report: dict, out_dir: str | Path) -> Path:
    """Write report.html and one PNG per figure into out_dir."""
    out_dir = Path(out_dir)
    images = {name: draw(report) for name, draw in FIGURES.items()}
    _write_pngs(images, out_dir)
    path = out_dir / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(render(report, images, out_dir), encoding="utf-8")
    return path


def write_record_html(kind: str, result: dict, out_dir: str | Path) -> Path:
    """report.html (and its PNGs) for a `simulate` or `parity` run, next to its JSON."""
    out_dir = Path(out_dir)
    images = {name: draw(result) for name, draw in RECORD_FIGURES[kind].items()}
    images = {k: v for k, v in images.items() if v is not None}
    _write_pngs(images, out_dir)
    path = out_dir / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(render_record(kind, result, images, out_dir), encoding="utf-8")
    return path


def _pct(value: float | None) -> str:
    return "no labels" if value is None else f"{100 * value:.2f}%"


def render_tune(report: dict) -> str:
    """tune.html: before / after tuning against the float model, on the held-out inputs."""
    b, a, f = report["before"], report["after"], report["float"]
    split, reset = report["split"], report["reset"]
    presets = list(a["energy"])
    rows = [["predictions agreeing with the float model", _pct(b["prediction_agreement"]),
             _pct(a["prediction_agreement"]), "100%"],
            ["accuracy", _pct(b["accuracy"]), _pct(a["accuracy"]), _pct(f["accuracy"])],
            ["spikes per inference", f"{b['spikes_per_sample']:.1f}",
             f"{a['spikes_per_sample']:.1f}", f"{f['spikes_per_sample']:.1f}"]]
    for name in presets:
        rows.append([f"energy per inference ({name})", _pj(b["energy"][name]["per_inference_pj"]),
                     _pj(a["energy"][name]["per_inference_pj"]), "not deployed"])
    layers = [[lb["layer"], _pct(lb["spike_agreement"]), _pct(la["spike_agreement"]),
               f"{lb['spikes_per_sample']:.1f}", f"{la['spikes_per_sample']:.1f}",
               f"{la['float_spikes_per_sample']:.1f}"]
              for lb, la in zip(b["layers"], a["layers"])]
    history = [[i, "" if v is None else f"{v:.4f}", f"{loss:.4f}"] for i, (v, loss) in
               enumerate(zip(report["training"]["val_history"], report["training"]["train_loss"]))]
    reset_class = "ok" if reset["exact_on_loihi"] else "bad"
    body = f"""<h1>tune: {_e(Path(report['source']['file']).name)}</h1>
<p class="muted">The float model ({_e(reset['described'])}) is the teacher; the deployed
integer network (exact mode = Lava) is the student. All numbers on {split['held_out']} held-out
samples not used for tuning (seeded split, seed {split['seed']}); tuned on {split['tuned_on']};
validated by {_e(split['validated_by'])}. Kept: {_e(report['kept'])}.</p>
<h2>Before and after</h2>
{_table(["held-out", "lowered (untuned)", "tuned", "float model"], rows)}
<h2>Reset</h2><p class="{reset_class}">{_e(reset['note'])}</p>
<h2>Per layer</h2>
{_table(["layer", "spike agreement before", "after", "spikes before", "after", "float"],
        layers)}
<h2>Training</h2><p class="muted">losses: {_e(json.dumps(report['losses']))}; best epoch
{report['training']['best_epoch']}; {report['seconds']} s.</p>
{_table(["epoch", "validation score", "train loss"], history)}
<h2>Provenance</h2><p class="mono">source sha256 {_e(report['source']['sha256'])}<br>
inputs {_e(report['inputs']['file'])} sha256 {_e(report['inputs']['sha256'])}<br>
files {_e(json.dumps(report.get('files', {})))}</p>"""
    return f"<!doctype html><meta charset=utf-8><title>tune</title><style>{CSS}</style>{body}"


def write_tune_html(report: dict, out_dir: str | Path) -> Path:
    path = Path(out_dir) / "tune.html"
    with atomic_path(path) as tmp:
        tmp.write_text(render_tune(report), encoding="utf-8")
    return path
