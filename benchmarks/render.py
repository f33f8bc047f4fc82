"""Regenerate the results tables of the README and the manual from benchmarks/results/*.json.

Each table lives between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in whichever page holds
those markers (README.md, docs/**/*.md); NAME is the results file's stem, except `headline`
(README.md's one table, from several files)."""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def digits_table(data: dict) -> str:
    s = data["summary"]
    runs = data["runs"]
    pm = lambda k, f="{:.4f}": f"{f.format(s[k]['mean'])} ± {f.format(s[k]['std'])}"  # noqa
    ratio = s["torch_exact_samples_per_s"]["mean"] / s["lava_samples_per_s"]["mean"]
    lines = [
        f"Digits test split ({runs[0]['samples']} samples), T = {runs[0]['T']}, "
        f"seeds {', '.join(str(r['seed']) for r in runs)}; {data['selection']}.",
        "",
        "| metric | mean ± std over seeds |",
        "|---|---|",
        f"| teacher (ANN MLP) accuracy | {pm('teacher_accuracy')} |",
        f"| student accuracy on Lava (= exact mode) | {pm('accuracy_deployed')} |",
        f"| spike mismatches, exact mode vs Lava | "
        f"{', '.join(str(r['spike_mismatches']) for r in runs)} |",
        f"| energy per inference, loihi1-davies2018 (µJ, dynamic) | "
        f"{pm('energy_per_inference_uj', '{:.2f}')} |",
        f"| Lava CPU simulation (samples/s) | {pm('lava_samples_per_s', '{:.1f}')} |",
        f"| torch exact mode, CPU batch (samples/s) | "
        f"{pm('torch_exact_samples_per_s', '{:.0f}')} ({ratio:.0f}x Lava) |",
    ]
    lines += [f"| student accuracy when trained on {n} thread{'s' * (n != '1')} (exact mode) | "
              f"{t['mean']:.4f} ± {t['std']:.4f} (lowest {min(t['accuracy_deployed']):.4f}) |"
              for n, t in sorted(data.get("by_threads", {}).items())]
    return "\n".join(lines)


def _pj(pj):
    for unit, scale in (("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if pj >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


def energy_table(data: dict) -> str:
    lines = [f"The committed digits student ({data['samples']} test samples, counted on "
             f"{data['record_backend']}"
             + (f", {data['record_detail']}" if data.get("record_detail") else "")
             + "), priced by every preset; repricing a 10,000-sample "
             f"record takes {1e3 * data['reprice_10000_samples_s_median']:.1f} ms (median of 5).",
             "", "| preset | kind | per inference | dynamic | static | latency |",
             "|---|---|---|---|---|---|"]
    for r in data["presets"]:
        latency = f"{r['latency_us']:.3g} µs" if r["latency_us"] else "—"
        lines.append(f"| {r['preset']} | {r['kind']} | {_pj(r['per_inference_pj'])} | "
                     f"{_pj(r['dynamic_pj'])} | {_pj(r['static_pj']) if r['static_pj'] else '—'} | "
                     f"{latency} |")
    lines += ["", "| conventional accelerator, same task | per inference |", "|---|---|"]
    lines += [f"| {b['name']} | {_pj(b['per_inference_pj'])} |" for b in data["ann_baselines"]]
    lines += ["", "— : not modelled by that preset."]
    return "\n".join(lines)


def _over_lava(rows: list[dict], network: str) -> float:
    """The torch exact mode's best throughput over Lava's, for one network of the table."""
    mine = [r for r in rows if r["network"] == network]
    lava = next(r["samples_per_s"] for r in mine if r["backend"].startswith("lava"))
    return max(r["samples_per_s"] for r in mine if r["backend"].startswith("torch exact")) / lava


def backends_table(data: dict) -> str:
    lines = ["| network | backend | batch | samples | samples/s | share of the limit |",
             "|---|---|---|---|---|---|"]
    for r in data["rows"]:
        share = f"{100 * r['share_of_limit']:.1f}%" if "share_of_limit" in r else "—"
        lines.append(f"| {r['network']} | {r['backend']} | {r['batch']} | {r['samples']} | "
                     f"{r['samples_per_s']:,.1f} | {share} |")
    lines.append("")
    if "api_simulate_over_snntorch_forward" in data:
        lines.append(f"- A user's own snnTorch model: `api.simulate` of its NIR graph (exact, "
                     f"events counted and priced) runs at "
                     f"{data['api_simulate_over_snntorch_forward']:.2f}x the samples/s of "
                     "snnTorch's own float forward of it, on the same spike trains")
    for c in data["spike_mismatches"]:
        ratio = data["emulator_batch1000_over_lava"][c["network"]]
        lines.append(f"- {c['network']}: spike mismatches on {c['samples']} samples, Lava vs "
                     f"torch exact {c['lava_vs_torch']}, emulator vs torch exact "
                     f"{c['emulator_vs_torch']}"
                     + (f"; readout-voltage mismatches {c['lava_vs_torch_voltage']} and "
                        f"{c['emulator_vs_torch_voltage']}"
                        if c.get("lava_vs_torch_voltage") is not None else "")
                     + f"; emulator (batch 1000) / Lava = {ratio:,.0f}x, torch exact (best "
                     f"batch) / Lava = {_over_lava(data['rows'], c['network']):,.0f}x.")
    if "lava_full_fmnist" in data:
        f = data["lava_full_fmnist"]
        lines.append(f"- The whole Fashion-MNIST test set ({f['samples']:,} samples) through "
                     f"Lava: {f['seconds'] / 60:.1f} min ({f['samples'] / f['seconds']:.1f} "
                     f"samples/s), accuracy {f['accuracy']:.4f}, "
                     f"{f['spike_mismatches_vs_torch']} spike mismatches against the exact mode.")
    return "\n".join(lines)


def _mean_std(values) -> str:
    values = [100 * v for v in values]
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.2f} (one seed: no spread yet)"
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.2f} ± {std:.2f}"


def distill_fmnist_table(data: dict) -> str:
    runs, recipe = data["runs"], data["recipe"]
    methods = list(dict.fromkeys(r["method"] for r in runs))
    by = {m: [r for r in runs if r["method"] == m] for m in methods}
    t = runs[0]["T"]
    readouts = len(runs[0]["accuracy_by_readout_T"])
    machine = data["machine"]
    lines = [
        f"Fashion-MNIST, full 10,000-image test set, deployed accuracy (exact integer mode = "
        f"Lava) in %, mean ± std over seeds, epoch selected on the validation split; student "
        f"{_architecture(recipe)} CUBA-LIF, "
        f"{recipe['encoding']['name']} input, "
        f"T = {t}, {runs[0]['epochs']} epochs per student; produced on {machine['cpus']} CPU "
        f"cores ({'CUDA' if machine['cuda'] else 'no GPU'}), torch {machine['torch']}.",
        "",
        f"| method | seeds | deployed acc. at T = {t} | teacher acc. | "
        + " | ".join(f"T'={i + 1}" for i in range(readouts)) + " |",
        "|---|---|---|---|" + "---|" * readouts]
    curve = _curves(by, methods)
    for m in methods:
        rs = by[m]
        teacher = [r["teacher_accuracy"] for r in rs if r["teacher_accuracy"] is not None]
        lines.append(
            f"| {m} | {len(rs)} | {_mean_std([r['accuracy_deployed'] for r in rs])} | "
            f"{_mean_std(teacher) if teacher else '—'} | "
            + " | ".join(f"{100 * a:.1f}" for a in curve[m]) + " |")
    lines += ["", "T' columns: mean accuracy when the output is read after T' steps of one "
              f"{readouts}-step run (the thermometer frame repeats, so T' > T is defined).", "",
              "| network | parameters | synapses (non-zero) | MACs per inference | "
              "synaptic ops per inference (measured) |", "|---|---|---|---|---|"]
    first = runs[0]["student"]
    mean_of = lambda key: sum(r["student"][key] for r in runs) / len(runs)  # noqa: E731
    lines.append(f"| student (SNN, T = {t}) | {first['params']:,} | {mean_of('synapses'):,.0f} "
                 f"(mean over runs) | {first['macs_as_ann']:,} (as an ANN, x T) | "
                 f"{mean_of('synaptic_ops'):,.0f} (mean over runs) |")
    seen = set()
    for r in runs:
        teacher = r["teacher"]
        if teacher and teacher["kind"] not in seen:
            seen.add(teacher["kind"])
            macs = f"{teacher['macs']:,}" if "macs" in teacher else "—"
            lines.append(f"| teacher ({teacher['kind']}) | {teacher['params']:,} | — | {macs} | — |")
    lines += ["", *_findings({m: curve[m] for m in methods}, t)]
    if "lava_check" in data:
        lines.append(_lava_line(data["lava_check"], "export/fmnist_conv until the readout sweep"))
    return "\n".join(lines)


def interop_recurrent_table(data: dict) -> str:
    lines = [f"Source: {data['source']}. `grid`: random weights already on Loihi's grid (the "
             "mapping is exact, so every number must be 100%); `trained`: trained on digits in "
             "snnTorch and tested on its 360-sample test split.", "",
             "| network | weights | samples | predictions agree | agree where snnTorch's top "
             "class is unique | output spike counts agree | synapses per layer | accuracy "
             "snnTorch / deployed | Lava = exact mode |", "|---|---|---|---|---|---|---|---|---|"]
    for n in data["networks"]:
        acc = n.get("accuracy")
        acc = f"{100 * acc['snntorch']:.1f} / {100 * acc['deployed']:.1f}" if acc else "—"
        lava = f"{'yes' if n['lava_equals_exact'] else 'NO'} ({n['lava_samples']} samples)"
        lines.append(f"| {n['kind']} | {n['flavour']} | {n['samples']} | "
                     f"{100 * n['prediction_agreement']:.1f}% | "
                     f"{100 * n['prediction_agreement_unique_top']:.1f}% | "
                     f"{100 * n['count_agreement']:.1f}% | "
                     f"{', '.join(str(v) for v in n['synapses'])} | {acc} | {lava} |")
    lines += ["", f"- Norse recurrent cells: {data['norse_recurrent']}."]
    return "\n".join(lines)


def _architecture(recipe: dict) -> str:
    """The Fashion-MNIST conv student as one string, e.g. 4x28x28-16c3s2-32c3s2-10."""
    return (f"{recipe['encoding'].get('levels', 1)}x28x28-"
            + "".join(f"{c['channels']}c3s2-" for c in recipe["student"]["conv"]) + "10")


def _curves(by: dict[str, list[dict]], methods: list[str]) -> dict[str, list[float]]:
    """Per method, the mean accuracy over its rows when read after T' = 1, 2, ... steps."""
    return {m: [sum(steps) / len(steps) for steps in
                zip(*(r["accuracy_by_readout_T"] for r in by[m]))] for m in methods}


def _findings(curve: dict[str, list[float]], t: int) -> list[str]:
    """The best method against labels alone, and how flat full_range_kd's readout curve is;
    `curve`: per method, mean accuracy read after T' = 1, 2, ... steps."""
    lines = []
    if "none" in curve and len(curve) > 1:
        mean = {m: c[t - 1] for m, c in curve.items()}
        best = max((m for m in curve if m != "none"), key=mean.get)
        lines.append(f"- Best method by mean deployed accuracy: {best}, "
                     f"{100 * (mean[best] - mean['none']):+.2f} points over no distillation.")
    if "full_range_kd" in curve:
        full = curve["full_range_kd"]
        worst = min(range(len(full)), key=full.__getitem__)
        lines.append(f"- full_range_kd: largest drop below its T = {t} accuracy over T' = "
                     f"1..{len(full)}: {100 * (full[t - 1] - full[worst]):.2f} points (at T' = "
                     f"{worst + 1}).")
    return lines


def _lava_line(c: dict, export: str) -> str:
    voltages = c.get("readout_voltage_mismatches")
    return (f"- The validation-best student ({c['method']}, seed {c['seed']}; {export}) through "
            f"Lava on {c['samples']:,} test samples: {c['spike_mismatches']} spike mismatches in "
            f"{c['spikes_compared']:,} neuron-steps against the exact mode"
            + (f", {voltages} readout-voltage mismatches" if voltages is not None else "")
            + f"; accuracy {100 * c['accuracy_lava']:.2f}% (exact mode "
            f"{100 * c['accuracy_exact']:.2f}%), {c['lava_seconds']:.0f} s.")


def distill_sweep_table(data: dict) -> str:
    """The current sweep protocol (readout students, ann_ceiling rows, a machine per row)."""
    recipe = data["recipe"]
    methods = list(dict.fromkeys(r["method"] for r in data["runs"]))
    # each method over every seed it has; the seeds column says how many (a sweep in progress)
    runs = data["runs"]
    by = {m: [r for r in runs if r["method"] == m] for m in methods}
    most = max(len(rs) for rs in by.values())
    fewer = [f"{m} ({len(rs)} of {most})" for m, rs in by.items() if len(rs) < most]
    snn = [r for r in runs if r["method"] != "ann_ceiling"]
    t, readouts = snn[0]["T"], len(snn[0]["accuracy_by_readout_T"])
    machines = sorted({f"{r['machine']['cpu']} ({r['machine']['threads']} threads"
                       + (f", {r['machine']['gpu']}" if r["machine"]["gpu"] else ", no GPU") + ")"
                       for r in runs})
    ds = recipe["dataset"]
    subset = (f"a seeded {ds['train_samples']:,}-sample training subset "
              f"({ds['val_samples']:,} validation), " if ds.get("train_samples") else "")
    lines = [
        f"Protocol `{data['protocol']}`: Fashion-MNIST, {subset}{snn[0]['epochs']} epochs per "
        f"student, epoch selected on validation, deployed accuracy (exact integer mode = Lava) "
        f"on {snn[0]['test_samples']:,} test samples, in %, mean ± std over seeds; student "
        f"{_architecture(recipe)}, "
        f"{'readout (summed voltage)' if recipe['student'].get('readout') else 'spike counts'}, "
        f"T = {t}. Rows produced on: {'; '.join(machines)}.",
        "",
        f"| method | seeds | deployed acc. at T = {t} | teacher acc. | CPU s per row | "
        + " | ".join(f"T'={i + 1}" for i in range(readouts)) + " |",
        "|---|---|---|---|---|" + "---|" * readouts]
    curve = _curves(by, [m for m in methods if m != "ann_ceiling"])
    for m in methods:
        rs = by[m]
        whole, resumed = _timed(rs, "cpu_seconds")
        cpu = (f"{sum(whole) / len(whole):.0f}" if whole else "—") + (
            f" ({resumed} resumed, not timed)" if resumed else "")
        if m == "ann_ceiling":
            lines.append(f"| ann_ceiling (the student's layers as a float ReLU ANN) | {len(rs)} | "
                         f"{_mean_std([r['accuracy_float'] for r in rs])} (float"
                         f"{_ann_samples(rs, snn)}) | — | "
                         f"{cpu} | " + " | ".join("" for _ in range(readouts)) + " |")
            continue
        teacher = [r["teacher_accuracy"] for r in rs if r["teacher_accuracy"] is not None]
        lines.append(
            f"| {m} | {len(rs)} | {_mean_std([r['accuracy_deployed'] for r in rs])} | "
            f"{_mean_std(teacher) if teacher else '—'} | {cpu} | "
            + " | ".join(f"{100 * a:.1f}" for a in curve[m]) + " |")
    lines += ["", f"T' columns: mean accuracy when the output is read after T' steps of one "
              f"{readouts}-step run (the thermometer frame repeats, so T' > T is defined). "
              "Teachers are trained once per seed and shared: the CPU seconds of the first "
              "method of a seed that uses one include training it."]
    longer = sorted({m for m in methods for r in by[m] if r.get("train_timesteps", t) > t})
    if longer:
        lines.append(f"- {', '.join(longer)}: trained on {by[longer[0]][0]['train_timesteps']} "
                     f"steps per sample (distill.timesteps), deployed at T = {t}.")
    if fewer:
        lines.append(f"- Still running (resumable), so over fewer seeds than the others: "
                     f"{', '.join(fewer)}; their means are not yet comparable to within a std.")
    lines += _findings(curve, t)
    if "lava_check" in data:
        c = data["lava_check"]
        shipped = json.loads((ROOT / "export/fmnist_conv/manifest.json").read_text())["recipe"]
        now = shipped == f"fmnist_{data['protocol']}_{c['method']}_s{c['seed']}"
        lines.append(_lava_line(c, "now export/fmnist_conv" if now else
                                "export/fmnist_conv until a later sweep's student replaced it"))
    return "\n".join(lines)


def _ann_samples(ann: list[dict], snn: list[dict]) -> str:
    """The ANN rows' test samples, said only where they differ from the students'."""
    n = {r.get("test_samples") for r in ann}
    return ", whole test set" if n == {None} else (
        "" if n == {snn[0]["test_samples"]} else f", {'/'.join(map(str, n))} test samples")


def fuzz_table(data: dict) -> str:
    cols = ("cases", "one_line_errors", "tracebacks", "hangs", "accepted_valid",
            "accepted_wrong", "code_ran")
    head = ("input kind", "cases", "one-line error", "traceback", "hang", "accepted, valid",
            "accepted, wrong", "code run")
    m = data["machine"]
    lines = [f"{data['cases']:,} mutated inputs (seed {data['seed']}, {data['limit_s']} s limit "
             f"per case), commit {data['code']}, {data['seconds']:.0f} s on {m['cpus']} CPU "
             f"cores.", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = list(data["per_kind"].items()) + [("**total**", data["totals"])]
    lines += [f"| {kind} | " + " | ".join(f"{s[c]:,}" for c in cols) + " |" for kind, s in rows]
    return "\n".join(lines)


def kill9_table(data: dict) -> str:
    rows = [("Lava worker processes left 10 s after kill -9", "processes_left_after_10s"),
            ("/dev/shm psm_* segments left 10 s after kill -9", "segments_left_after_10s"),
            ("processes left once the next run has started", "processes_left_after_next_run"),
            ("segments left once the next run has started", "segments_left_after_next_run"),
            ("temporary memmap directories left once the next run has started",
             "tempdirs_left_after_next_run")]
    lines = [f"kill -9 of a running Lava simulation, {data['trials']} trials on "
             f"{data['machine']['cpus']} CPU cores.", "",
             "| what is left | per trial | max |", "|---|---|---|"]
    lines += [f"| {label} | {', '.join(map(str, data[key]))} | {max(data[key])} |"
              for label, key in rows if key in data]
    return "\n".join(lines)


def _star(row: dict) -> str:
    return "" if row.get("redistributed", True) else "*"


def netx_corpus_table(data: dict) -> str:
    rows = data["rows"]
    deployed = [r for r in rows if r["status"] == "deployed"]
    exact = [r for r in deployed if not any(r["mismatches"].values())]
    p = data["protocol"]
    by = Counter(r.get("publisher") or ("lava-dl" if r.get("redistributed", True) else "other")
                 for r in rows)
    longer = [(r["file"], r["timesteps"]) for r in rows if r["timesteps"] != p["timesteps"]]
    lines = [f"{len(exact)} of {len(rows)} trained netx files ({by['lava-dl']} published by "
             f"lava-dl, {by['Intel N-DNS']} by Intel's N-DNS challenge, {by['other']} by others) "
             f"deploy with 0 mismatches on every backend ({len(rows) - len(deployed)} refused); "
             f"{p['samples']} samples x {p['timesteps']} steps each" + "".join(
                 f", {f}: {t} steps" for f, t in longer) + f", commit {data['commit']}, "
             f"{data['machine']['cpus']} CPU threads.",
             "", "| file (source) | layers | neurons | inputs | compared | exact vs emulator | "
             "exact vs Lava | lava-dl ground truth | exact / emulator / Lava (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] != "deployed":
            lines.append(f"| {r['file']}{_star(r)} (`{r['source']}`) | {len(r['layers'])} | "
                         f"{', '.join(r['neuron_types'])} | refused: {r['reason']} |||||")
            continue
        s = r["seconds"]
        lines.append(f"| {r['file']}{_star(r)} (`{r['source']}`) | {len(r['layers'])}: "
                     f"{' '.join(r['layers'])} | {', '.join(r['neuron_types'])} | {r['inputs']} | "
                     f"{r['compared']:,} {r['unit']} | {r['mismatches']['exact-emulator']} | "
                     f"{r['mismatches']['exact-lava']} | {r.get('ground_truth', '—')} | "
                     f"{s['exact']:.2f} / {s['emulator']:.2f} / {s['lava']:.1f} |")
    lines += ["", "* measured from a local copy: that repository publishes no license, so the "
              "file is not redistributed here (its sha256 is in the results file)."]
    lines += _ndns_notes([r for r in rows if "synaptic_ops_per_step" in r])
    lines += ["", "Not in the corpus (not stored in lava-dl's repository): " + "; ".join(
        f"`{k}` ({v})" for k, v in data["unavailable"].items()) + "."]
    return "\n".join(lines)


def _ndns_notes(rows: list[dict]) -> list[str]:
    """The N-DNS rows' synaptic ops per 8 ms step, beside the metricsboard's where it has one."""
    lines = []
    for r in rows:
        ops, pub = r["synaptic_ops_per_step"], r.get("published")
        lines += ["", f"{r['file']}: {ops:,} synaptic ops per 8 ms step ({ops * 125 / 1e6:.2f} "
                  "M-Ops/s at 125 steps/s)" + "".join(f"; {n}" for n in r["notes"]) + (
                      f". Intel's metricsboard (track1_val_metricsboard.md, baseline SDNN): "
                      f"power proxy {pub['power_proxy_mops_per_s']} M-Ops/s "
                      f"({pub['power_proxy_mops_per_s'] * 1e6 / 125:,.0f} per step), latency "
                      f"{pub['latency_total_ms']} ms (the 32 ms STFT window + "
                      f"{pub['latency_enc_dec_ms']} ms encode/decode), "
                      f"{pub['params_thousands']}k parameters" if pub else "") + "."]
    return lines + (["", f"The N-DNS inputs ({rows[0]['samples']} x {rows[0]['timesteps'] * 8} ms) "
                     "are not the validation set's noisy speech: a synthetic voice has no "
                     "consonants or pauses and white noise is not the dataset's noise, so the "
                     "ops per step show the scale, not the board's measurement."] if rows else [])


def nir_corpus_table(data: dict) -> str:
    rows = data["rows"]
    readable = [r for r in rows if r["status"] != "unreadable"]
    deployed = [r for r in rows if r["status"] == "deployed"]
    exact = [r for r in deployed if r["exact_vs_lava_spike_mismatches"] == 0]
    p = data["protocol"]
    pct = lambda v: "—" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    lines = [f"{len(rows)} distinct graphs: the nir library ({data['nir']}) reads "
             f"{len(readable)}; {len(deployed)} deploy ({len(readable) - len(deployed)} refused), "
             f"{len(exact)} of them with 0 spike mismatches between the exact mode and Lava "
             f"({p['lava_samples']} samples each; float vs deployed on up to {p['samples']}); "
             f"commit {data['commit']}, {data['machine']['cpus']} CPU threads. Inputs other than "
             "the LIF example's are seeded stand-ins of the data's shape, not the test sets, so "
             "no accuracy of ours is shown.", "",
             "| graph (source) | status | inputs | float vs deployed predictions (after "
             "headroom search); lead: median output spikes by which the float model's top "
             "class leads the next | exact vs Lava mismatches | float: reset zero vs "
             "subtraction agree | the paper's accuracy per platform |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        star = "" if r.get("redistributed", True) else "*"
        name = f"{r['file']}{star} ({r['source']}" + (
            f"; the same file: {r['same_as']})" if r.get("same_as") else ")")
        paper = ", ".join(f"{k} {100 * v:.1f}" for k, v in sorted(
            (r.get("paper_accuracy") or {}).items(), key=lambda kv: -kv[1])) or "—"
        if r["status"] != "deployed":
            lines.append(f"| {name} | {r['status']}: {r['reason']} | | | | | {paper} |")
            continue
        search = r.get("headroom_search")
        agree = pct(r["float_vs_exact_prediction_agreement"]) + (
            f" ({pct(search['float_vs_exact_prediction_agreement'])})" if search else "") + (
            f"; lead {r['float_top_class_lead_median']:g}"
            if r.get("float_top_class_lead_median") is not None else "")
        extra = (f"; bias via always-on sources into {', '.join(r['always_on_bias'])}"
                 if r["always_on_bias"] else "")
        lines.append(f"| {name} | deployed, {r['neurons']} neurons{extra} | {r['inputs']} "
                     f"x {r['samples']} | {agree} | {r['exact_vs_lava_spike_mismatches']} of "
                     f"{r['exact_vs_lava_neuron_steps']:,} | "
                     f"{pct(r['reset_zero_vs_subtract_prediction_agreement'])} | {paper} |")
    lines.append("")
    lines.append("* measured from a local copy (AGPL-3.0), not redistributed; its sha256 is in "
                 "the results file.")
    for r in deployed:
        if r.get("lif_spike_steps"):
            s = r["lif_spike_steps"]
            lines.append(f"- {r['file']} on the paper's LIF input: output spikes at steps "
                         f"{s['float']} (float), {s['exact']} (exact mode), {s['lava']} (Lava); "
                         f"the paper's exact simulation: {s['paper exact']}.")
    for r in deployed:
        if r.get("headroom_search"):
            before = [x["flipped"] for x in r["layer_flips"]]
            after = [x["flipped"] for x in r["headroom_search"]["layer_flips"]]
            lines.append(f"- {r['file']}: float decisions flipped by 8-bit rounding per layer "
                         f"{before}, after the headroom search {after} (choice "
                         f"{r['headroom_search']['choice']}).")
    return "\n".join(lines)


def silicon_table(data: dict) -> str:
    m = data["measured"]

    def cell(value, measured, fmt):
        return "—" if value is None else f"{fmt.format(value)} ({value / measured:.2f}x)"
    lines = [f"Measured: {m['source']}. Predicted: the same network and convention on the exact "
             f"mode ({data['frame']}, {data['steps']} steps), commit {data['commit']}; in "
             "brackets, predicted / measured.", "",
             "| preset | core mapping | cores | time per step | dynamic energy per frame | "
             "total energy per frame |", "|---|---|---|---|---|---|",
             f"| **Loihi 2, measured** | Intel's compiler | {m['cores']} | "
             f"{m['step_us']:.1f} µs | {m['dynamic_mj']:.3f} mJ | {m['total_mj']:.3f} mJ |"]
    for r in data["rows"]:
        lines.append(f"| {r['preset']} | {r['mapping']} | {cell(r['cores'], m['cores'], '{}')} "
                     f"| {cell(r['step_us'], m['step_us'], '{:.1f} µs')} | "
                     f"{cell(r['dynamic_mj'], m['dynamic_mj'], '{:.3f} mJ')} | "
                     f"{cell(r['total_mj'], m['total_mj'], '{:.3f} mJ')} |")
    return "\n".join(lines)


def demo_summary_block(data: dict) -> str:
    """The README's sample transcript, and how much its numbers move elsewhere."""
    m = data["machine"]
    digits = json.loads((ROOT / "benchmarks" / "results" / "digits.json").read_text())
    acc = digits["summary"]["accuracy_deployed"]
    spread = [f"{acc['mean']:.4f} ± {acc['std']:.4f} over seeds "
              f"{', '.join(str(r['seed']) for r in digits['runs'])}"]
    spread += [f"{t['mean']:.4f} ± {t['std']:.4f} when trained on {n} thread"
               f"{'s' * (n != '1')}" for n, t in sorted(digits.get("by_threads", {}).items())]
    return "\n".join([
        f"The transcript of `make demo`'s run (commit {data['commit']}, {m['processor']}, "
        f"{m['threads']} threads):", "", "```", data["summary"], "```", "",
        "The exact figures depend on the CPU type, the thread count and the seed (training sums "
        "in floating point in a different order): the digits benchmark measured the deployed "
        f"accuracy as {'; '.join(spread)} (table under Results), and the synapse count moves "
        "with it (weights that round to zero)."])


def _timed(runs: list[dict], key: str) -> tuple[list[float], int]:
    """The times `key` of the runs timed whole, and how many resumed a cut-off run (their
    time covers only the rest)."""
    whole = [r[key] for r in runs if not r.get("resumed")]
    return whole, len(runs) - len(whole)


def _paired(row: dict) -> str:
    """One row's paired accuracy differences, tuned minus snnTorch, per seed (tune_table)."""
    parts = []
    for s in row["seeds"]:
        n, a, b = (s["paired"][k] for k in ("samples", "only_reference_right",
                                            "only_deployed_right"))
        se = ((a + b) - (b - a) ** 2 / n) ** 0.5 / n
        parts.append(f"{100 * (b - a) / n:+.2f} ± {100 * se:.2f}")
    return f"{row['name']} {', '.join(parts)} points"


def tune_table(data: dict) -> str:
    """Before / after `tune`, from benchmarks/results/tune.json (benchmarks/tune.py)."""
    def pm(values):
        values = [v for v in values if v is not None]
        if not values:
            return "—"
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        return f"{100 * mean:.2f} ± {100 * std:.2f}%"
    pct = lambda v: "—" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    lines = ["| network (reset as trained) | reported on | agreement untuned | agreement tuned "
             "| accuracy untuned | accuracy tuned | accuracy in snnTorch | float decisions "
             "stable under 1% noise | agreement on them, untuned | tuned | Lava vs exact, "
             "tuned | tune (s) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in data["rows"].values():
        lava, stable = row.get("lava") or {}, row["stability"]
        whole, resumed = _timed(row["seeds"], "tune_s")
        low, high = (f"{min(whole):.0f}", f"{max(whole):.0f}") if whole else ("—", "—")
        times = (low if low == high else f"{low}–{high}") + (
            f" ({resumed} resumed seed(s) not timed)" if resumed else "")
        lines.append(
            f"| {row['name']} ({row['reset']}) | {row['reported_on']} | "
            f"{pct(row['untuned']['agreement'])} | "
            f"{pm([s['agreement'] for s in row['seeds']])} | "
            f"{pct(row['untuned']['accuracy'])} | {pm([s['accuracy'] for s in row['seeds']])} | "
            f"{pct(row.get('snntorch_accuracy'))} | {pct(stable['stable_fraction'])} | "
            f"{pct(stable['untuned_on_stable'])} | {pm(stable['tuned_on_stable'])} | "
            f"{lava.get('spike_mismatches', '—')} of {lava.get('neuron_steps', '—'):,} "
            f"neuron-steps | {times} |")
    seeds = sorted({len(r["seeds"]) for r in data["rows"].values()})
    copies = sorted({r["stability"]["copies"] for r in data["rows"].values()})
    paired = [_paired(r) for r in data["rows"].values()
              if all("paired" in s for s in r["seeds"])]
    equal = [f"{r['name']} {100 * r['float_model_equals_snntorch']:.2f}%"
             for r in data["rows"].values() if "float_model_equals_snntorch" in r]
    lines += ["", f"Mean ± std over {', '.join(map(str, seeds))} tuning seeds (split and "
              "training), the best epoch by agreement on the held-out quarter of the tuning "
              "inputs, reported on inputs not used for tuning. Agreement: predictions equal to "
              "snnTorch's own (snnTorch rows; our float model with its reset reproduces "
              f"snnTorch's predictions: {', '.join(equal)}) or to the graph's float model "
              "(NIR paper rows). Stable decisions: the float model's predictions that none of "
              f"{', '.join(map(str, copies))} copies of it changes when each weight moves by a "
              "random 1% (far finer than the 8-bit grid); the other decisions sit on near-ties "
              "that no 8-bit network can be expected to follow. Tuned on, with the options "
              "that differ from tune's defaults: "
              + "; ".join(f"{r['name']} {r['tuned_on']}"
                          + "".join(f", --{k.replace('_', '-')} {v}"
                                    for k, v in r["tuning"].items())
                          for r in data["rows"].values())
              + ". Tune time: fastest–slowest "
              f"seed, {data['machine']}; other jobs shared the cores during parts of this run, "
              "so the fastest seed is the closest to an idle machine. A seed resumed after a "
              "cut-off run (--resume) is not timed: its time covers only the part after the "
              "resume."]
    if paired:
        lines += ["", "Accuracy tuned minus in snnTorch, on the same test samples, per seed, with "
                  "its standard error from the samples only one of the two gets right (paired; "
                  "the seeds share the test set, so their mean is no more certain than one "
                  "seed): " + "; ".join(paired) + "."]
    return "\n".join(lines)


def _setting(key: str, value) -> str:
    """A grid value as a reader names it: hidden [64], conv 16-32, losses ce+logit_kd, T 4."""
    name = {"encoding.timesteps": "T", "distill.losses": "losses"}.get(key, key.split(".")[-1])
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        value = ("+".join(v["name"] for v in value) if "name" in value[0]
                 else "-".join(str(v["channels"]) for v in value))
    return f"{name} {value}"


def explore_table(data: dict) -> str:
    """The front of `explore` (benchmarks/explore.py): every point, best accuracy first."""
    energy = " | ".join(f"energy per inference ({p})" for p in data["presets"])
    lines = [f"| front (energy / latency) | student | T' | deployed accuracy, % | {energy} | "
             f"latency ({data['front_preset']}) | Loihi 2 cores | Lava vs exact |",
             "|---|---|---|---|" + "---|" * len(data["presets"]) + "---|---|---|"]
    for p in sorted(data["points"], key=lambda p: -p["accuracy"]["mean"]):
        star = " / ".join("★" if p["front"][c] else "·" for c in ("energy", "latency"))
        student = ", ".join(_setting(k, v) for k, v in p["settings"].items()
                            if k != "encoding.timesteps")
        energies = "".join(f"{_pj(p['energy_pj_by_preset'][name])} | "
                           for name in data["presets"])
        lines.append(f"| {star} | {student} | {p['readout_T']} | "
                     f"{_mean_std(p['accuracy']['per_seed'])} | {energies}"
                     f"{p['latency_us']:.3g} µs | {p['cores']} | "
                     f"{p['lava_spike_mismatches']} mismatches, {p['lava_samples']} samples |")
    best = max(data["points"], key=lambda p: p["accuracy"]["mean"])
    near = min((p for p in data["points"]
                if p["accuracy"]["mean"] >= best["accuracy"]["mean"] - 0.01),
               key=lambda p: p["energy_pj"])
    name = lambda p: f"{p['label']} (T' = {p['readout_T']})"  # noqa: E731
    m, runs = data["machine"], data["runs"]
    seconds = sorted(r["measured"]["train_seconds"] for r in runs)
    cheaper = ("" if near is best else
               f"; the cheapest point within 1 percentage point of it: {name(near)}, "
               f"{100 * near['accuracy']['mean']:.2f}% at {_pj(near['energy_pj'])} "
               f"({best['energy_pj'] / near['energy_pj']:.1f}x less energy)")
    lines += ["", f"Most accurate: {name(best)}, {100 * best['accuracy']['mean']:.2f}% at "
              f"{_pj(best['energy_pj'])} ({data['front_preset']}){cheaper}.",
              "", f"{data['runs_finished']} of {data['runs_in_grid']} runs finished"
              f"{'' if data['complete'] else ' (the grid is not complete yet: rerun the script)'}"
              f"; seeds {', '.join(map(str, data['seeds']))} per point (mean ± sample std); "
              f"{data['points'][0]['test_samples']:,} test samples each, exact integer mode, "
              "the validation-selected epoch. ★: no other point is at least as accurate and at "
              f"most as costly under {data['front_preset']}. Training took "
              f"{seconds[0]:.0f}–{seconds[-1]:.0f} s per run on {m['cpu']} "
              f"({data.get('jobs', 1)} runs at a time{', ' + m['gpu'] if m['gpu'] else ''}), "
              "other jobs sharing the cores."]
    return "\n".join(lines)


def headline_table(results: dict[str, dict]) -> str:
    """README's one table: exact parity, speed against Lava, energy against silicon, what tune
    recovers."""
    d, b, n, s, t = (results[k] for k in HEADLINE)
    runs = d["runs"]
    deployed = [r for r in n["rows"] if r["status"] == "deployed"]
    exact = [r for r in deployed if not any(r["mismatches"].values())]
    rows = ["| what | measured | where |", "|---|---|---|",
            f"| spike mismatches, exact mode vs Lava, digits student | "
            f"{', '.join(str(r['spike_mismatches']) for r in runs)} (seeds "
            f"{', '.join(str(r['seed']) for r in runs)}, {runs[0]['samples']} test samples "
            f"each, every layer and step) | [digits](RESULTS_PAGE#digits-accuracy-parity-speed) |",
            f"| trained netx files published by lava-dl and its users that run with 0 "
            f"mismatches on every backend | {len(exact)} of {len(n['rows'])} | "
            "[lava-dl networks](RESULTS_PAGE#lava-dls-own-trained-networks) |"]
    for c in b["spike_mismatches"]:
        net = c["network"]
        rows.append(f"| {net}: samples/s of the exact mode (best batch) / the emulator "
                    f"(batch 1000) over Lava's; spike mismatches with Lava on {c['samples']} "
                    f"samples: {c['lava_vs_torch']} | "
                    f"{_over_lava(b['rows'], net):,.0f}x / "
                    f"{b['emulator_batch1000_over_lava'][net]:,.0f}x | "
                    "[backends](RESULTS_PAGE#backends-side-by-side) |")
    m = s["measured"]
    for r in s["rows"]:
        if r["preset"] == "loihi2-proxy" and r["mapping"] == "compiler":
            rows.append(f"| lava-dl's PilotNet LIF on Loihi 2 silicon: predicted / measured "
                        f"(loihi2-proxy, compiler mapping) | dynamic energy "
                        f"{r['dynamic_mj'] / m['dynamic_mj']:.2f}x, total energy "
                        f"{r['total_mj'] / m['total_mj']:.2f}x, time per step "
                        f"{r['step_us'] / m['step_us']:.2f}x | "
                        "[silicon](RESULTS_PAGE#the-energy-estimate-against-loihi-2-silicon) |")
    for r in t["rows"].values():
        if "snntorch_accuracy" in r:
            tuned = [seed["accuracy"] for seed in r["seeds"]]
            rows.append(f"| {r['name']} trained in snnTorch with its defaults (reset by "
                        f"subtraction), accuracy on {r['reported_on']}: in snnTorch / deployed "
                        f"untuned / tuned ({len(tuned)} seeds) | "
                        f"{100 * r['snntorch_accuracy']:.2f}% / "
                        f"{100 * r['untuned']['accuracy']:.2f}% / "
                        f"{100 * sum(tuned) / len(tuned):.2f}% | "
                        "[tune](RESULTS_PAGE#tuning-networks-trained-elsewhere-tune) |")
    return "\n".join(rows)


RENDERERS = (("digits", digits_table), ("energy", energy_table),
             ("backends", backends_table), ("distill_fmnist", distill_fmnist_table),
             ("kill9", kill9_table), ("fuzz", fuzz_table),
             ("interop_recurrent", interop_recurrent_table),
             ("distill_fmnist_quick", distill_sweep_table),
             ("distill_fmnist_quick_wide", distill_sweep_table),
             ("distill_fmnist_sweep", distill_sweep_table),
             ("explore_digits", explore_table), ("explore_fmnist", explore_table),
             ("explore_digits_full_range", explore_table),
             ("netx_corpus", netx_corpus_table), ("silicon", silicon_table),
             ("nir_corpus", nir_corpus_table), ("tune", tune_table),
             ("demo_summary", demo_summary_block))
HEADLINE = ("digits", "backends", "netx_corpus", "silicon", "tune")


def pages() -> list[Path]:
    """Every page a table can live in."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def render_all() -> dict[str, str]:
    """Every table, by marker name, from the results files that exist."""
    results = ROOT / "benchmarks" / "results"
    tables = {name: render(json.loads((results / f"{name}.json").read_text()))
              for name, render in RENDERERS if (results / f"{name}.json").exists()}
    if all((results / f"{name}.json").exists() for name in HEADLINE):
        tables["headline"] = headline_table(
            {name: json.loads((results / f"{name}.json").read_text()) for name in HEADLINE})
    return tables


def fill(text: str, tables: dict[str, str], page: Path = ROOT / "README.md") -> str:
    """text with every table whose markers it holds filled in; links to the results page
    (RESULTS_PAGE) made relative to page."""
    results = os.path.relpath(ROOT / "docs" / "results.md", page.parent)
    for name, table in tables.items():
        table = table.replace("RESULTS_PAGE#", f"{results}#")
        text = re.sub(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)",
                      lambda m: m.group(1) + table + "\n" + m.group(2), text, flags=re.S)
    return text


def main() -> None:
    tables = render_all()
    for page in pages():
        text = page.read_text()
        filled = fill(text, tables, page)
        if filled != text:
            page.write_text(filled)


if __name__ == "__main__":
    main()
