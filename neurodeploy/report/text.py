"""What the `neurodeploy` command prints: one screen per verb, from the dicts the Python API
returns (report.json, simulate.json, parity.json, inspect's description), and each verb's
examples for its --help (tests parse every one)."""
from __future__ import annotations

from pathlib import Path

from neurodeploy.files import versions as stack
from neurodeploy.report.summary import deployed_accuracy, duration

AFTER_RUN = "runs/digits/: what `neurodeploy run` writes in the current directory"
EXAMPLES = {
    None: """examples (each verb's --help has its own):
  neurodeploy run                     # the shipped digits recipe end to end, into runs/digits/
  neurodeploy run --set distill.epochs=2 --runs-dir runs/quick   # a variant, in its own folder
  neurodeploy parity runs/digits/network.net --samples 50
  neurodeploy --version               # neurodeploy, torch, lava-nc, lava-dl and nir versions
""",
    "run": """examples:
  neurodeploy run                     # the shipped digits recipe (models/digits.yaml)
  neurodeploy run digits --runs-dir /tmp/runs
  neurodeploy run digits --set distill.epochs=2 --set 'student.hidden=[32]' --runs-dir runs/quick
  neurodeploy run digits --fresh      # retrain (or replace another recipe's checkpoint.pt)
  neurodeploy run digits --device cpu  # train on the CPU although a GPU is there
  neurodeploy run my_recipe.yaml      # your own recipe file (see models/*.yaml)
""",
    "distill": """examples:
  neurodeploy distill digits          # -> runs/digits/checkpoint.pt and history.jsonl
  neurodeploy distill digits --out /tmp/digits --set teacher.epochs=5
""",
    "export": f"""examples ({AFTER_RUN}):
  neurodeploy export runs/digits/checkpoint.pt                # next to the checkpoint
  neurodeploy export runs/digits/checkpoint.pt --out /tmp/digits
  neurodeploy export their.nir --timesteps 16 --out their_net   # a graph trained elsewhere,
      # lowered as it is (untuned): `neurodeploy tune` recovers what rounding costs
""",
    "explore": """examples (one run folder per variant and seed under --out; a rerun resumes):
  neurodeploy explore digits --grid 'student.hidden=[32],[128]' --grid encoding.timesteps=4,8 --out runs/explore
  neurodeploy explore fmnist_conv --grid encoding.timesteps=2,4,8 --seeds 3 --jobs 2 --out runs/front
  neurodeploy explore digits --grid student.neuron.threshold=64,128 --preset loihi2-proxy --out runs/th
""",
    "tune": """examples (inputs.npz: spike trains x [N, T, ...], labels y if known):
  neurodeploy tune their.nir --data inputs.npz --out tuned      # their float model = teacher
  neurodeploy tune snntorch.nir --data inputs.npz --reset subtract --reset-delay
      # a default snnTorch Leaky (reset by subtraction, one step late): learned around
  neurodeploy tune braille.nir --data inputs.npz --epochs 5 --held-out 0.2 --seed 1
""",
    "simulate": f"""examples ({AFTER_RUN}):
  neurodeploy simulate runs/digits/network.net --backend lava --samples 100
  neurodeploy simulate runs/digits/network.net --backend torch --timesteps 32
  neurodeploy simulate runs/digits/network.net --shard 0/4 --out s0   # job array slice 0 of 4
  neurodeploy simulate graph.nir --backend emulator --dt 1e-6 --data digits   # a Norse NIR
  neurodeploy simulate runs/digits/network.net --backend float   # the model as trained
  neurodeploy simulate runs/digits/network.net --preset loihi2-proxy --out /tmp/sim   # priced so
""",
    "merge": """examples (s0..s3: the --out directories of `simulate --shard i/4`):
  neurodeploy merge s0/chunks s1/chunks s2/chunks s3/chunks --out merged
""",
    "parity": f"""examples ({AFTER_RUN}):
  neurodeploy parity runs/digits/network.net --samples 50
  neurodeploy parity runs/digits/student.nir --backends torch,emulator
  neurodeploy parity runs/digits/network.net --backends float,torch,lava   # vs as trained
  neurodeploy parity their.nir --backends float,lava --reference theirs.npz
      # theirs.npz: their framework's own `predictions` [N] and/or output `counts` [N, C]
""",
    "energy": f"""examples ({AFTER_RUN}):
  neurodeploy energy runs/digits/report.json --preset loihi2-proxy
  neurodeploy energy runs/digits/report.json --preset my_preset.yaml --out /tmp/energy
  neurodeploy energy /tmp/sim/simulate.json --preset odin   # the record of simulate's example
""",
    "inspect": f"""examples ({AFTER_RUN}):
  neurodeploy inspect runs/digits/student.nir
  neurodeploy inspect runs/digits/network.net
  neurodeploy inspect runs/digits/checkpoint.pt
""",
}


def versions() -> str:
    """One line for bug reports: this package and the stack it is tested against."""
    return ", ".join(f"{name} {v or 'not installed'}" for name, v in stack().items())



def tuned(report: dict, out) -> str:
    """`tune`'s screen: before / after against the float model on the held-out inputs."""
    b, a, split = report["before"], report["after"], report["split"]
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    lines = [f"tuned {Path(report['source']['file']).name} on {split['tuned_on']} samples; "
             f"held out {split['held_out']} (seed {split['seed']}), {report['seconds']} s",
             f"  float model ({report['reset']['described']}): accuracy "
             f"{pct(report['float']['accuracy'])}",
             f"  {'':30s} {'lowered':>10s} {'tuned':>10s}",
             f"  {'predictions = float model':30s} {pct(b['prediction_agreement']):>10s} "
             f"{pct(a['prediction_agreement']):>10s}",
             f"  {'accuracy':30s} {pct(b['accuracy']):>10s} {pct(a['accuracy']):>10s}",
             f"  {'spikes per inference':30s} {b['spikes_per_sample']:>10.1f} "
             f"{a['spikes_per_sample']:>10.1f}"]
    for name in a["energy"]:
        lines.append(f"  {'energy (' + name + ')':30s} "
                     f"{_pj(b['energy'][name]['per_inference_pj']):>10s} "
                     f"{_pj(a['energy'][name]['per_inference_pj']):>10s}")
    lines.append(f"kept: {report['kept']}; wrote {out}/network.net, student.nir, manifest.json, "
                 "tune.json, tune.html")
    if not report["reset"]["exact_on_loihi"]:
        lines.append(f"note: {report['reset']['note']}")
    return "\n".join(lines)


def explored(front: dict, out) -> str:
    """`explore`: the front on one screen, best accuracy first."""
    lines = [f"neurodeploy explore: {front['recipe']}  ->  {out}/front.html, front.json",
             f"  {'variant':<34} {'T':>3} {'accuracy':>16} {'energy':>10} {'latency':>10} "
             f"{'cores':>5}  front"]
    for p in sorted(front["points"], key=lambda p: -p["accuracy"]["mean"]):
        marks = [c for c, on in p["front"].items() if on]
        latency = "-" if p["latency_us"] is None else duration(p["latency_us"], "us")
        lines.append(f"  {p['variant'][:34]:<34} {p['readout_T']:>3} "
                     f"{100 * p['accuracy']['mean']:>7.2f} ± {100 * p['accuracy']['std']:.2f}% "
                     f"{_pj(p['energy_pj']):>10} {latency:>10} {p['cores']:>5}  "
                     f"{', '.join(marks) or '-'}")
    mismatches = sum(p["lava_spike_mismatches"] for p in front["points"])
    lines.append(f"  priced by {front['front_preset']}; Lava vs exact: {mismatches} spike "
                 f"mismatches; accuracy over seeds {front['seeds']}, validation-selected")
    return "\n".join(lines)


def _pj(pj: float) -> str:
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if pj >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


def energy_line(energy: dict) -> str:
    """`X per inference (dynamic Y, static Z), L us` of a priced `energy` section."""
    static = (f"static {_pj(energy['static_pj'])}" if energy["figures"]["static_w"]
              else "static not modelled")
    latency = f", {duration(energy['latency_us'], 'us')}" if energy.get("latency_us") else ""
    return (f"{_pj(energy['per_inference_pj'])} per inference (dynamic "
            f"{_pj(energy['dynamic_pj'])}, {static}){latency}")


def _priced_by(energy: dict) -> str:
    return f"[{energy['preset']}: {energy['source'].split(',')[0]}]"


def _wrote(result: dict) -> str:
    return ", ".join(map(str, result["wrote"]))


def summarize(report: dict, out_dir: Path) -> str:
    """`run`: report.json on one screen."""
    acc, par, energy = report["accuracy"], report["parity"], report["energy"]
    sizes = "-".join(str(s) for s in report["network"]["sizes"])
    lines = [
        f"neurodeploy run: {report['recipe']}  ->  {out_dir}/",
        f"  teacher   test accuracy {acc['teacher']:.4f}" if acc["teacher"] is not None
        else "  teacher   none (no loss term reads one)",
        f"  student   CUBA-LIF {sizes}, T={report['timesteps']}, "
        f"{report['network']['synapses']} synapses, trained on "
        f"{(report.get('training') or {}).get('device', 'an unrecorded device')}",
        f"  accuracy  torch exact {acc['student_torch']:.4f} | {report['backend']} "
        f"{deployed_accuracy(report):.4f}   ({report['samples']} test samples)",
        f"  parity    {par['spike_mismatches']} spike mismatches in {par['spikes_compared']} "
        f"neuron-steps (every layer, every step)"
        + (f", {par['readout_voltage_mismatches']} readout voltage mismatches"
           if par.get("readout_voltage_mismatches") is not None else "")
        + f"; predictions agree {100 * par['prediction_agreement']:.1f}%",
        *([f"  float     the training mode agrees with {report['backend']} on "
           f"{100 * report['source_parity']['prediction_agreement']:.1f}% of predictions"]
          if "prediction_agreement" in (report.get("source_parity") or {}) else []),
        f"  energy    {energy_line(energy)} {_priced_by(energy)}",
        f"  loihi 2   {report['resources']['verdict']}",
        f"  speed     {report['timing']['simulate_samples_per_s']:.1f} samples/s on "
        f"{report['backend']}",
        "  files     checkpoint.pt history.jsonl student.nir network.net manifest.json "
        "report.json report.html",
    ]
    return "\n".join(lines)


def simulated(result: dict) -> str:
    """`simulate`: accuracy, the files written, the energy (a sigma-delta network: `streamed`)."""
    if result.get("kind") == "sigma-delta":
        return f"{streamed(result)}\n  wrote {_wrote(result)}"
    return (f"{result['backend']}: accuracy {result['accuracy']:.4f} on {result['samples']} "
            f"samples (shard {result['shard']}); wrote {_wrote(result)}\n"
            f"  energy    {energy_line(result['energy'])} {_priced_by(result['energy'])}"
            + ("\n  note: graded input events priced as spikes (no published figure)"
               if (result.get("counts") or {}).get("graded_inputs") else "")
            + ("\n  note: resonate-and-fire neurons priced as CUBA neurons (no published "
               "figure)" if (result.get("counts") or {}).get("resonate_and_fire") else ""))


def streamed(result: dict) -> str:
    """A sigma-delta network's run on its backends: messages per layer, mismatches, energy."""
    lines = [f"{result['network']}: sigma-delta network, {len(result['messages_per_layer'])} "
             f"layers, {result['samples']} samples x {result['timesteps']} steps on "
             f"{', '.join(result['provenance']['backends'])}"]
    lines += [f"  warning: {w}" for w in result.get("warnings", ())]
    lines += [f"  {layer}: {count} non-zero messages"
              for layer, count in result["messages_per_layer"].items()]
    for pair, m in result.get("comparisons", {}).items():
        first, other = pair.split("-", 1)
        lines.append(f"  {other} vs {first}: {m['total']} message mismatches in {m['compared']}"
                     + (f"; first {m['first']}" if m["first"] else ""))
    lines.append(f"  energy    {energy_line(result['energy'])} [{result['energy']['preset']}; "
                 "graded messages priced as spikes]")
    return "\n".join(lines)


def compared(result: dict) -> str:
    """`parity`: accuracy per backend, each comparison's mismatches (the reset note aside; a
    sigma-delta network: `streamed`)."""
    if result.get("kind") == "sigma-delta":
        return streamed(result)
    first = result["records"][0]
    lines = [f"parity of {result['network']} on {result['samples']} samples "
             f"({first.timesteps} steps, {len(first.layers)} layers)"]
    width = max(map(len, result["accuracy"]))
    lines += [f"  {backend:{width}s} accuracy {acc:.4f}"
              for backend, acc in result["accuracy"].items()]
    for p in result["comparisons"]:
        a, b = p["backends"]
        lines.append(f"  {b} vs {a}: {p['spike_mismatches']} spike mismatches in "
                     f"{p['spikes_compared']} neuron-steps; predictions agree "
                     f"{100 * p['prediction_agreement']:.2f}%")
        if p["readout_voltage_mismatches"] is not None:
            lines.append(f"    readout voltages: {p['readout_voltage_mismatches']} mismatches")
        lines += [f"    {layer}: per timestep {per_t}"
                  for layer, per_t in p["spike_mismatches_per_layer_timestep"].items()
                  if any(per_t)]
        if p["first_mismatch"]:
            lines.append(f"    first mismatch: {p['first_mismatch']}")
    for p in result["source"]:
        a, b = p["backends"]
        mode = f": {p['float_model']}" if p.get("float_model") else ""
        lines.append(f"  {b} vs {a} (as trained{mode}): predictions agree "
                     f"{100 * p['prediction_agreement']:.2f}%, accuracy {100 * p['gap']:+.2f} "
                     "points; " + (f"spikes first differ in {p['divergence_starts_at']}"
                                   if p["divergence_starts_at"] else "every spike the same"))
        lines += [f"    {row['layer']}: {row['float_spikes_per_inference']:.1f} vs "
                  f"{row['deployed_spikes_per_inference']:.1f} spikes per inference "
                  f"({row['count_difference_per_inference']:+.2f}), "
                  f"{100 * row['neuron_steps_differing_share']:.2f}% of neuron-steps differ"
                  for row in p["layers"]]
    for p in result["reference"]:
        a, b = p["backends"]
        lines.append(f"  {b} vs {a}: predictions agree {100 * p['prediction_agreement']:.2f}%"
                     + (f", output spikes per inference differ by "
                        f"{p['output_counts']['abs_difference_per_inference']:.2f}"
                        if "output_counts" in p else ""))
    return "\n".join(lines)


def compared_tail(result: dict) -> str:
    """`parity`, after the reset note: what the assumed reset changes, the files written."""
    reset = result.get("reset")
    return "\n".join(
        ([f"  float, reset to zero (assumed) vs by subtraction: predictions agree "
          f"{100 * reset['prediction_agreement_zero_vs_subtract']:.2f}%"]
         if isinstance(reset, dict) else []) + [f"  wrote {_wrote(result)}"])


def repriced(result: dict) -> str:
    """`energy`: the new price and its source."""
    e = result["energy"]
    return f"{e['preset']}: {energy_line(e)}\n  source: {e['source']}\n  wrote {_wrote(result)}"


def described(info: dict) -> str:
    """`inspect`: one layout for every kind of file: what it is, its facts one per line
    (metadata, metrics), a row per layer (shape, synapses, neuron constants), what
    quantization cost (NIR) and the Loihi 2 resource estimate."""
    path, kind = info["file"], info["kind"]
    if kind == "nir":
        lines = [f"{path}: NIR graph, {len(info['nodes'])} nodes, {info['edges']} edges"]
        if info["reset"]:
            lines.append(f"  note: {info['reset']}")
        for name, node in info["nodes"].items():
            ranges = ", ".join(f"{k} {a['shape']} [{a['range'][0]:.3g}, {a['range'][1]:.3g}]"
                               for k, a in node["arrays"].items())
            lines.append(f"  {name:10s} {node['type']:9s} {ranges}")
    elif kind == "checkpoint":
        metrics = {k: v for k, v in info["metrics"].items() if k != "student_val_curve"}
        lines = [f"{path}: checkpoint of recipe {info['recipe']['name']!r}",
                 f"  metrics: {_compact(metrics)}"]
    else:
        meta = {k: v for k, v in (info.get("metadata") or {}).items()
                if k not in ("architecture", "quantization")}     # the layer rows show them
        lines = [f"{path}: {'sigma-delta ' if kind == 'sigma-delta' else ''}netx network, "
                 f"{len(info['layers'])} layers",
                 *(f"  {k}: {_compact(v)}" for k, v in meta.items())]
        if kind == "netx" and not meta:
            lines.append("  metadata: none (give --timesteps and --data when running it)")
    rows = info["layers"] if kind != "sigma-delta" else _sigma_delta_rows(info["layers"])
    for row in rows:
        lines.append(_layer_line(row))
        if row.get("describe") and (row["type"] not in ("dense", "conv")
                                    or "delays" in row["describe"] or "neuron" in row):
            lines.append(f"    {row['describe']}")
    for row in info.get("quantization", ()):
        lines.append(
            f"  quantization {row['layer']}: scale {row['scale']:.4g}, weight RMS error "
            f"{100 * row['weight_rel_rms_error']:.2f}%, threshold {row['threshold']['float']:.4g}"
            f" -> {row['threshold']['int']}, iDecay {row['i_decay']['exact']:.2f} -> "
            f"{row['i_decay']['int']}, vDecay {row['v_decay']['exact']:.2f} -> "
            f"{row['v_decay']['int']}")
    return "\n".join([*lines, *_loihi2(info),
                      *(f"  warning: {w}" for w in info.get("warnings", ()))])


def _compact(value) -> str:
    """A metadata or metrics value on one readable line: mappings as `key value, ...`,
    numbers to 4 significant digits."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_compact(v)}" for k, v in value.items()) or "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(map(_compact, value)) + "]"
    return str(value)


def _sigma_delta_rows(layers: list[dict]) -> list[dict]:
    """sigma_delta.describe's rows in the layout of a CUBA layer's (each layer's input is
    the previous one's output; the delta input layer's is its own shape)."""
    rows, shape = [], layers[0]["shape"] if layers else []
    for layer in layers:
        neuron = [f"{layer['kind']}"] + ([f"vThMant {layer['vth']}"] if layer["vth"] is not None
                                         else []) + [f"{layer['message_bits']}-bit messages"]
        if layer["bias"]:
            neuron.append("bias")
        if layer["max_delay"] is not None:
            neuron.append(f"delays up to {layer['max_delay']} steps")
        rows.append({"name": layer["name"], "type": layer["synapse"] or "input",
                     "input_shape": shape, "shape": layer["shape"],
                     "synapses": f"{layer['synapses']} synapses", "neuron": ", ".join(neuron)})
        shape = layer["shape"]
    return rows


def _layer_line(row: dict) -> str:
    """inspect's row of one layer: name, kind, input -> output shape, synapses, neuron."""
    kind = (f"conv {row['kernel'][0]}x{row['kernel'][1]}/{row['stride'][0]}"
            if row.get("kernel") else row["type"])
    synapses = row.get("synapses") or (
        f"weights [{row['weight_range'][0]}, {row['weight_range'][1]}], "
        f"{row['nonzero_weights']} non-zero")
    neuron = row.get("neuron") or f"iDecay {row['i_decay']} vDecay {row['v_decay']}"
    if "threshold" in row:
        neuron += f" vThMant {row['threshold']}"
    return (f"  {row['name']:6s} {kind:10s} {str(row['input_shape']):>12s} -> "
            f"{str(row['shape']):<12s} {synapses}; {neuron}")


def _loihi2(info: dict) -> list[str]:
    """inspect's Loihi 2 lines: the estimate, and for a pruned network its pruned layers and
    the estimate with sparse synapses (energy.hardware.storage_estimates)."""
    if "pruned" not in info:
        return [f"  Loihi 2: {info['loihi2']['verdict']}"]
    sparse = info["loihi2_sparse"]["layers"]
    return [f"  Loihi 2 (dense synapses): {info['loihi2']['verdict']}",
            *(f"  pruned: {line}" for line in info["pruned"]),
            f"  Loihi 2 (sparse synapses, netx sparse_fc_layer): "
            f"{info['loihi2_sparse']['verdict']}, storing "
            f"{sum(r.get('stored_synapses', r['synapses']) for r in sparse)} of "
            f"{sum(r['synapses'] for r in sparse)} synapses"]
