"""The `neurodeploy` command: the pipeline's verbs, a one-screen summary, JSON next to it.

User mistakes (bad files, recipes, parameters) end with one line on stderr and exit code 2;
no traceback. Ctrl-C stops any Lava runtime and exits 130; SIGTERM does the same and exits
143 (see compat.Terminated).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import yaml

from neurodeploy.backends.registry import BACKENDS
from neurodeploy.report.summary import deployed_accuracy
from neurodeploy import sdnn_verbs
from neurodeploy.errors import UserError
from neurodeploy.files import file_digest, package_versions, writable_dir, write_json

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


def _fmt_pj(pj: float) -> str:
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if pj >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


def _static(energy: dict) -> str:
    return (f"static {_fmt_pj(energy['static_pj'])}" if energy["figures"]["static_w"]
            else "static not modelled")


def _latency(energy: dict) -> str:
    return f", {energy['latency_us']:.3g} us" if energy.get("latency_us") else ""


def summarize(report: dict, out_dir: Path) -> str:
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
        f"  energy    {_fmt_pj(energy['per_inference_pj'])} per inference "
        f"(dynamic {_fmt_pj(energy['dynamic_pj'])}, {_static(energy)})"
        f"{_latency(energy)} [{energy['preset']}: {energy['source'].split(',')[0]}]",
        f"  loihi 2   {report['resources']['verdict']}",
        f"  speed     {report['timing']['simulate_samples_per_s']:.1f} samples/s on "
        f"{report['backend']}",
        "  files     checkpoint.pt history.jsonl student.nir network.net manifest.json "
        "report.json report.html",
    ]
    return "\n".join(lines)


def _progress(args) -> bool:
    """Progress bars only on a terminal (CI logs get no escape codes); --progress forces them."""
    return args.progress or (not args.quiet and sys.stderr.isatty())


def cmd_run(args) -> int:
    from neurodeploy.pipeline import run
    overrides = dict(args.set)
    result, out = run(args.recipe, args.runs_dir, progress=_progress(args), backend=args.backend,
                      overrides=overrides, fresh=args.fresh, device=args.device)
    print(summarize(result, out))
    return 0


def cmd_distill(args) -> int:
    from neurodeploy.pipeline import distill, output_dir, torch_load
    from neurodeploy.recipe import load_recipe
    recipe = load_recipe(args.recipe, dict(args.set))
    out = Path(args.out or f"runs/{recipe.name}")
    with output_dir(out) as out:             # no empty folder if it fails before training
        path = distill(recipe, out, progress=_progress(args), fresh=args.fresh,
                       device=args.device)
    device = ((torch_load(path, "checkpoint", "re-run `neurodeploy distill`").get("provenance")
               or {}).get("training") or {}).get("device", "an unrecorded device")
    print(f"checkpoint {path} (trained on {device}); training history {out / 'history.jsonl'}")
    return 0


def cmd_export(args) -> int:
    from neurodeploy.pipeline import export
    out = Path(args.out or Path(args.checkpoint).parent)
    manifest = export(args.checkpoint, out)
    print(f"wrote {out}/student.nir, network.net, manifest.json; deployed (exact) test accuracy "
          f"{manifest['accuracy']['deployed_exact']:.4f}")
    return 0


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 2,8,8, got {text!r}") from None
    if not 1 <= len(shape) <= 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected 1 to 3 positive sizes like 2,8,8, got {text!r}")
    return shape


def _positive(kind):
    """argparse type: a positive, finite int or float (0, negatives, nan and inf are mistakes)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (0 < value < float("inf")):
            raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _inputs(args, net, meta: dict):
    from neurodeploy.pipeline import load_inputs
    if args.timesteps:
        meta = {**meta, "timesteps": args.timesteps}
    return load_inputs(meta, args.data, args.samples, classes=net.layers[-1].size,
                       input_size=net.input_size, source=args.network)


def _record_summary(record, labels, **extra) -> dict:
    from neurodeploy.report.summary import generated
    return {"backend": record.backend, "samples": record.samples, "timesteps": record.timesteps,
            "accuracy": record.accuracy(labels), **extra, "generated": generated(),
            "spikes_per_layer": {n: int(s.sum()) for n, s in zip(record.layer_names,
                                                                  record.layers)},
            "spikes_per_layer_timestep": {   # mean per inference, for the page's figure
                n: (s.sum(axis=(0, 2)) / max(1, record.samples)).tolist()
                for n, s in zip(record.layer_names, record.layers)},
            "predictions": record.predictions.tolist(), "labels": np.asarray(labels).tolist()}


def _default_out(verb: str, network: str, backend: str | None = None) -> Path:
    """runs/<verb>/<folder>-<file>-<sha8>[-backend]: never the current directory, and two
    networks (or backends) never share a default directory."""
    path = Path(network)
    parts = [path.parent.name, path.stem, file_digest(path)[:8], backend]
    return Path("runs") / verb / "-".join(p for p in parts if p)


def _run_backend(name: str, network, args, spikes, timeout_s=None):
    """One backend on the inputs: the user's own file or the lowered netx file, as the
    backend declares (backends/registry.py)."""
    from neurodeploy.backends.registry import backend
    from neurodeploy.pipeline import simulate
    return simulate(args.network if backend(name).reads == "own" else network, spikes, name,
                    progress=_progress(args), timeout_s=timeout_s,
                    device=getattr(args, "device", "cpu"), input_shape=args.input_shape,
                    dt=args.dt)


def _page(kind: str, result: dict, out: Path) -> Path:
    from neurodeploy.report import write_record_html
    return write_record_html(kind, result, out)


def _sdnn(args, backends: list[str], verb: str) -> int:
    """A sigma-delta netx file: run and compare (sdnn_verbs.run), write and print."""
    result = sdnn_verbs.run(args.network, args.data, backends, getattr(args, "preset", None),
                            args.samples, args.timeout)
    out = writable_dir(args.out or _default_out(verb, args.network, "-".join(backends)))
    write_json(out / f"{verb}.json", result)
    print(f"{args.network}: sigma-delta network, {len(result['messages_per_layer'])} layers, "
          f"{result['samples']} samples x {result['timesteps']} steps on {', '.join(backends)}")
    for layer, count in result["messages_per_layer"].items():
        print(f"  {layer}: {count} non-zero messages")
    for pair, m in result.get("comparisons", {}).items():
        first, other = pair.split("-", 1)
        print(f"  {other} vs {first}: {m['total']} message mismatches in {m['compared']}"
              + (f"; first {m['first']}" if m["first"] else ""))
    e = result["energy"]
    print(f"  energy    {_fmt_pj(e['per_inference_pj'])} per inference (dynamic "
          f"{_fmt_pj(e['dynamic_pj'])}, {_static(e)}){_latency(e)} [{e['preset']}; graded "
          "messages priced as spikes]")
    print(f"  wrote {out / f'{verb}.json'}")
    mism = result.get("message_mismatches")
    return 1 if mism and mism["total"] else 0


def cmd_simulate(args) -> int:
    from neurodeploy.backends.record import provenance
    from neurodeploy.backends.shards import parse_shard, run_chunks, shard_range
    from neurodeploy.energy import load_preset
    from neurodeploy.pipeline import (check_backend, deployable, missing_options, output_dir,
                                      resolve_device, silent_output, user_names)
    from neurodeploy.report.summary import DEFAULT_PRESET, energy_sections
    shard = parse_shard(args.shard)
    if sdnn_verbs.is_sdnn_file(args.network):
        return _sdnn(args, [args.backend], "simulate")
    resolve_device(args.device)           # what this machine lacks fails first, in one line
    check_backend(args.backend)
    if Path(args.network).suffix == ".nir":          # every missing option at once, before
        missing_options(args.network, None, args.dt, args.data, args.timesteps)   # lowering
    try:                                  # a wrong preset fails before the simulation
        preset = load_preset(args.preset or DEFAULT_PRESET)
    except UserError as e:
        raise UserError(f"--preset: {e}") from None
    with deployable(args.network, args.dt, args.input_shape) as (network, meta, quantization,
                                                                 net), \
            output_dir(args.out or _default_out("simulate", args.network, args.backend)) as out:
        missing_options(args.network, meta, args.dt, args.data, args.timesteps)
        spikes, labels = _inputs(args, net, meta)
        prov = provenance(args.network, spikes, labels, args.backend, dt=args.dt,
                          input_shape=args.input_shape)
        run = lambda x, timeout_s=None: _run_backend(args.backend, network, args,  # noqa: E731
                                                     x, timeout_s)
        if BACKENDS[args.backend].resumable:         # slow: resumable chunks on disk
            record, indices = run_chunks(run, spikes, labels, out / "chunks", args.chunk, shard,
                                         args.timeout, progress=_progress(args), provenance=prov,
                                         lines=not args.quiet)   # lines where no bars
            labels = labels[indices]
        else:
            lo, hi = shard_range(len(spikes), shard)
            record, labels = run(spikes[lo:hi], timeout_s=args.timeout), labels[lo:hi]
    user_names(record, net)
    warnings = [w for w in [silent_output([record], args.network)] if w]
    for warning in warnings:
        print(f"neurodeploy: warning: {warning}", file=sys.stderr)
    reset = _reset_note(args.network)
    result = _record_summary(record, labels, shard=f"{shard[0]}/{shard[1]}",
                             quantization=quantization, provenance=prov, network=args.network,
                             warnings=warnings, reset=reset,
                             **energy_sections(net, record, labels, preset))
    write_json(out / "simulate.json", result)
    page = _page("simulate", result, out)
    e = result["energy"]
    print(f"{record.backend}: accuracy {result['accuracy']:.4f} on {record.samples} samples "
          f"(shard {result['shard']}); wrote {out / 'simulate.json'}, {page}\n"
          f"  energy    {_fmt_pj(e['per_inference_pj'])} per inference (dynamic "
          f"{_fmt_pj(e['dynamic_pj'])}, {_static(e)}){_latency(e)} "
          f"[{e['preset']}: {e['source'].split(',')[0]}]")
    return 0


def _reset_note(network) -> str | None:
    """NIR cannot state the reset mechanism: say which one a foreign graph was deployed with."""
    from neurodeploy.graph import reset_assumption
    note = reset_assumption(network)
    if note:
        print(f"neurodeploy: note: {note}", file=sys.stderr)
    return note


def cmd_merge(args) -> int:
    from neurodeploy.backends.shards import merge
    record, _, labels = merge(args.dirs)
    prov = record.info.get("provenance") or {}
    out = writable_dir(args.out or Path("runs") / "merge" / "-".join(
        [prov.get("network_sha256", "unknown")[:8], prov.get("inputs_sha256", "unknown")[:8]]))
    record.save(out / "record.npz", labels=labels)
    write_json(out / "simulate.json", _record_summary(record, labels, merged=args.dirs,
                                                      provenance=prov))
    print(f"merged {record.samples} samples from {len(args.dirs)} director(ies): accuracy "
          f"{record.accuracy(labels):.4f}; wrote {out / 'record.npz'}, {out / 'simulate.json'}")
    return 0


def cmd_parity(args) -> int:
    from neurodeploy.pipeline import parity
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    if sdnn_verbs.is_sdnn_file(args.network):
        return _sdnn(args, names, "parity")
    out = None

    def inputs(meta, net):       # the network is open and valid: check --out, then read inputs
        nonlocal out
        out = writable_dir(args.out or _default_out("parity", args.network))
        return _inputs(args, net, meta)

    result, records = parity(args.network, inputs, names, _progress(args), args.timeout,
                             args.dt, args.input_shape, getattr(args, "device", "cpu"),
                             args.reference)
    pairs, sources, refs = result["comparisons"], result["source"], result["reference"]
    write_json(out / "parity.json", result)
    page = _page("parity", result, out)
    print(f"parity of {args.network} on {result['samples']} samples "
          f"({records[0].timesteps} steps, {len(records[0].layers)} layers)")
    for backend, acc in result["accuracy"].items():
        print(f"  {backend:32s} accuracy {acc:.4f}")
    for p in pairs:
        a, b = p["backends"]
        print(f"  {b} vs {a}: {p['spike_mismatches']} spike mismatches in "
              f"{p['spikes_compared']} neuron-steps; predictions agree "
              f"{100 * p['prediction_agreement']:.2f}%")
        if p["readout_voltage_mismatches"] is not None:
            print(f"    readout voltages: {p['readout_voltage_mismatches']} mismatches")
        for layer, per_t in p["spike_mismatches_per_layer_timestep"].items():
            if any(per_t):
                print(f"    {layer}: per timestep {per_t}")
        if p["first_mismatch"]:
            print(f"    first mismatch: {p['first_mismatch']}")
    for p in sources:
        a, b = p["backends"]
        print(f"  {b} vs {a} (as trained): predictions agree "
              f"{100 * p['prediction_agreement']:.2f}%, accuracy {100 * p['gap']:+.2f} points; "
              + (f"spikes first differ in {p['divergence_starts_at']}"
                 if p["divergence_starts_at"] else "every spike the same"))
        for row in p["layers"]:
            print(f"    {row['layer']}: {row['float_spikes_per_inference']:.1f} vs "
                  f"{row['deployed_spikes_per_inference']:.1f} spikes per inference "
                  f"({row['count_difference_per_inference']:+.2f}), "
                  f"{100 * row['neuron_steps_differing_share']:.2f}% of neuron-steps differ")
    for p in refs:
        a, b = p["backends"]
        print(f"  {b} vs {a}: predictions agree {100 * p['prediction_agreement']:.2f}%"
              + (f", output spikes per inference differ by "
                 f"{p['output_counts']['abs_difference_per_inference']:.2f}"
                 if "output_counts" in p else ""))
    if result["reset"]:
        reset = result["reset"]
        print(f"neurodeploy: note: {reset if isinstance(reset, str) else reset['note']}",
              file=sys.stderr)
        if isinstance(reset, dict):
            print(f"  float, reset to zero (assumed) vs by subtraction: predictions agree "
                  f"{100 * reset['prediction_agreement_zero_vs_subtract']:.2f}%")
    print(f"  wrote {out / 'parity.json'}, {page}")
    return 0 if result["spike_mismatches"] == result["readout_voltage_mismatches"] == 0 else 1


def cmd_energy(args) -> int:
    from neurodeploy.pipeline import reprice
    out_dir = writable_dir(args.out or Path(args.report).parent)
    result = reprice(args.report, args.preset, args.network)
    e = result["energy"]
    out = out_dir / f"energy-{Path(e['preset']).stem}.json"
    write_json(out, {k: result[k] for k in ("energy", "per_timestep", "timestep_sweep",
                                            "resources")})
    print(f"{e['preset']}: {_fmt_pj(e['per_inference_pj'])} per inference (dynamic "
          f"{_fmt_pj(e['dynamic_pj'])}, {_static(e)}){_latency(e)}\n"
          f"  source: {e['source']}\n  wrote {out}")
    return 0


def cmd_inspect(args) -> int:
    from neurodeploy.pipeline import inspect
    path = Path(args.file)
    if sdnn_verbs.is_sdnn_file(args.file):
        from neurodeploy.netx.sdnn import read_sdnn
        from neurodeploy.neurons.sigma_delta import describe
        print(f"{path}: sigma-delta (SDNN) netx network")
        from neurodeploy.energy.hardware import layer_table, resource_estimate
        net = read_sdnn(path)
        for row in describe(net):
            print("  " + ", ".join(f"{k} {v}" for k, v in row.items()))
        print(f"  Loihi 2: {resource_estimate(layer_table(net))['verdict']}")
        return 0
    info = inspect(path, args.dt)
    if info["kind"] == "nir":
        print(f"{path}: NIR graph, {len(info['nodes'])} nodes, {info['edges']} edges")
        if info["reset"]:
            print(f"  note: {info['reset']}")
        for name, node in info["nodes"].items():
            ranges = ", ".join(f"{k} {a['shape']} [{a['range'][0]:.3g}, {a['range'][1]:.3g}]"
                               for k, a in node["arrays"].items())
            print(f"  {name:10s} {node['type']:9s} {ranges}")
    elif info["kind"] == "checkpoint":
        metrics = {k: v for k, v in info["metrics"].items() if k != "student_val_curve"}
        print(f"{path}: checkpoint of recipe {info['recipe']['name']!r}; metrics "
              f"{json.dumps(metrics)}")
    else:
        print(f"{path}: netx network; metadata {json.dumps(info['metadata'])}")
    for row in info["layers"]:
        kind = (f"conv {row['kernel'][0]}x{row['kernel'][1]}/{row['stride'][0]}"
                if row["kernel"] else row["type"])
        print(f"  {row['name']:6s} {kind:10s} {str(row['input_shape']):>12s} -> "
              f"{str(row['shape']):<12s} weights [{row['weight_range'][0]}, "
              f"{row['weight_range'][1]}], {row['nonzero_weights']} non-zero; iDecay "
              f"{row['i_decay']} vDecay {row['v_decay']} vThMant {row['threshold']}")
        if row["type"] not in ("dense", "conv") or "delays" in row["describe"]:
            print(f"    {row['describe']}")
    for row in info["quantization"]:
        print(f"  quantization {row['layer']}: scale {row['scale']:.4g}, weight RMS error "
              f"{100 * row['weight_rel_rms_error']:.2f}%, threshold {row['threshold']['float']:.4g}"
              f" -> {row['threshold']['int']}, iDecay {row['i_decay']['exact']:.2f} -> "
              f"{row['i_decay']['int']}, vDecay {row['v_decay']['exact']:.2f} -> "
              f"{row['v_decay']['int']}")
    print(f"  Loihi 2: {info['loihi2']['verdict']}")
    return 0


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes end like every other user error: one line, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"neurodeploy: error: {self.prog}: {message} (see {self.prog} --help)\n")


def versions() -> str:
    """One line for bug reports: this package and the stack it is tested against."""
    found = package_versions(("neurodeploy", "torch", "lava-nc", "lava-dl", "nir"))
    return ", ".join(f"{name} {v or 'not installed'}" for name, v in found.items())


class _Version(argparse.Action):
    """--version, computed only when asked (package metadata is read lazily)."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, help=help, default=argparse.SUPPRESS)

    def __call__(self, parser, namespace, values, option_string=None):
        print(versions())
        parser.exit(0)


def _assignment(text: str) -> tuple[str, object]:
    """--set key=value: a dotted recipe key and a YAML value (2, [32], true, rate)."""
    key, eq, value = text.partition("=")
    if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise argparse.ArgumentTypeError(f"expected a dotted key=value like distill.epochs=2, "
                                         f"got {text!r}")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(f"{key}: value {value!r} is not YAML "
                                         f"({str(e).splitlines()[0]}); quote lists for the "
                                         "shell, e.g. 'student.hidden=[32]'") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="neurodeploy", epilog=EXAMPLES[None],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Distill spiking students in PyTorch, export through NIR to lava-dl netx, "
                    "and run them on Lava (Loihi 2) with spikes, energy and parity.")
    parser.add_argument("--version", action=_Version,
                        help="print the versions of neurodeploy, torch, lava-nc, lava-dl, nir")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB",
                                help="what to do; `neurodeploy VERB --help` shows its examples")

    def verb(name, fn, help_):
        p = sub.add_parser(name, help=help_, description=help_, epilog=EXAMPLES[name],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        bars = p.add_mutually_exclusive_group()
        bars.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        bars.add_argument("--progress", action="store_true",
                          help="progress bars even when stderr is not a terminal (by default "
                               "they are shown only on a terminal)")
        p.set_defaults(fn=fn)
        return p

    def recipe_args(p):
        p.add_argument("recipe", nargs="?", default="digits",
                       help="recipe name in models/ or a YAML path (default: digits)")
        p.add_argument("--set", action="append", type=_assignment, default=[],
                       metavar="KEY=VALUE",
                       help="override a recipe setting (repeatable; value read as YAML), e.g. "
                            "--set distill.epochs=2 --set 'student.hidden=[32]'")

    def training_args(p):
        p.add_argument("--fresh", action="store_true",
                       help="train again and replace the checkpoint.pt in the output directory "
                            "(by default one of the same recipe is reused, and another "
                            "recipe's is refused, never overwritten)")
        p.add_argument("--device", help="where to train: cpu, cuda or cuda:N (default: cuda "
                                        "when torch sees a GPU, else cpu)")

    p = verb("run", cmd_run, "whole pipeline for a recipe: distill, export, simulate, report")
    recipe_args(p)
    p.add_argument("--runs-dir", default="runs", help="where runs/<name>/ goes (default: runs)")
    p.add_argument("--backend", default="lava",
                   choices=tuple(n for n, b in BACKENDS.items() if b.resumable),
                   help="where the deployed network runs: Lava's CPU simulation or a Loihi 2 "
                        "board (default: lava)")
    training_args(p)
    p = verb("distill", cmd_distill, "train the teacher and distill the student")
    recipe_args(p)
    p.add_argument("--out", help="output directory (default: runs/<recipe name>)")
    training_args(p)
    p = verb("export", cmd_export, "checkpoint -> student.nir -> network.net + manifest.json")
    p.add_argument("checkpoint", help="a checkpoint.pt written by `run` or `distill`")
    p.add_argument("--out", help="output directory (default: the checkpoint's directory)")
    def data_args(p):
        p.add_argument("network", help="a netx .net file, or any .nir graph (lowered on the fly)")
        p.add_argument("--dt", type=_positive(float), help="time step for a NIR graph that does not record "
                                                "one (Norse 1.1.0 graphs: 1e-6, its dt squared)")
        p.add_argument("--timesteps", type=_positive(int), help="steps per sample when encoding inputs "
                       "(default: the network's T; more reads it out past T)")
        p.add_argument("--input-shape", type=_shape, help="C,H,W for a netx file without an "
                                                          "input layer that starts with a conv")
        p.add_argument("--data", help="a dataset name (its test split) or a .npz with x, y "
                                      "(default: the split the network was exported for)")
        p.add_argument("--samples", type=_positive(int), help="only the first N samples")
        p.add_argument("--timeout", type=_positive(float), help="stop a Lava run after this many seconds")

    p = verb("simulate", cmd_simulate, "run a netx network on a backend; writes simulate.json")
    data_args(p)
    p.add_argument("--backend", default="lava",
                   choices=tuple(BACKENDS),
                   help="; ".join(f"{b.name}: {b.about}" for b in BACKENDS.values())
                        + " (default: lava)")
    p.add_argument("--device", default="cpu", help="device of the torch, emulator and float "
                                                   "backends (cpu, cuda, cuda:N)")
    p.add_argument("--shard", help="i/n: run only the i-th of n equal slices (job arrays)")
    p.add_argument("--chunk", type=_positive(int), default=1000,
                   help="samples per saved Lava chunk; a rerun resumes after the last one")
    p.add_argument("--out", help="directory for simulate.json and Lava chunks (default: "
                                 "runs/simulate/<network>-<sha8>-<backend>)")
    p.add_argument("--preset", help="energy preset that prices the counted events: a built-in "
                                    "name or a preset YAML file (default: loihi1-davies2018, "
                                    "as `run`); reprice later with `neurodeploy energy`")
    p = verb("merge", cmd_merge, "join the Lava chunk records of several shards")
    p.add_argument("dirs", nargs="+", help="the chunks/ directories of the shards")
    p.add_argument("--out", help="directory for record.npz and simulate.json (default: "
                                 "runs/merge/<network sha8>-<inputs sha8>)")
    p = verb("parity", cmd_parity, "compare backends spike for spike (exit 1 on any mismatch)")
    data_args(p)
    p.add_argument("--backends", default="torch,emulator,lava",
                   help="comma-separated; the first deployed one is the reference; float "
                        "adds the model as trained, compared by spike counts and predictions "
                        "(default: torch,emulator,lava)")
    p.add_argument("--reference", help="a .npz of another framework's own results on the same "
                                       "inputs: predictions [N] and/or output counts [N, C]")
    p.add_argument("--device", default="cpu", help="device of the torch and float backends "
                                                   "(cpu, cuda)")
    p.add_argument("--out", help="directory for parity.json and report.html (default: "
                                 "runs/parity/<network>-<sha8>)")
    p = verb("energy", cmd_energy, "reprice a run's report.json or a simulate.json with another "
             "energy preset (no simulation)")
    p.add_argument("report", help="a report.json written by `neurodeploy run`, or a "
                                  "simulate.json written by `neurodeploy simulate`")
    p.add_argument("--preset", default="loihi2-proxy",
                   help="a built-in preset name or a preset YAML file (default: loihi2-proxy)")
    p.add_argument("--network", help="check that the record was made with this .net file")
    p.add_argument("--out", help="directory for energy-<preset>.json (default: the report's)")
    p = verb("inspect", cmd_inspect, "describe a .nir, .net or checkpoint .pt file: layers, "
             "parameter ranges, quantization cost, Loihi 2 resources")
    p.add_argument("file", help="a .nir graph, a netx .net file or a checkpoint .pt")
    p.add_argument("--dt", type=_positive(float),
                   help="time step for a NIR graph that does not record one")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except UserError as e:
        print(f"neurodeploy: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurodeploy: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:          # e.g. `neurodeploy inspect ... | head`
        sys.stdout = None
        return 0


if __name__ == "__main__":
    sys.exit(main())
