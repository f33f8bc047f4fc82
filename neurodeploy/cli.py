"""The `neurodeploy` command: parses arguments, calls the verb's function in
`neurodeploy.api` (what a Python user calls), prints a one-screen summary (report/text.py).

User mistakes (bad files, recipes, parameters) end with one line on stderr and exit code 2;
no traceback. Ctrl-C stops any Lava runtime and exits 130; SIGTERM does the same and exits
143 (see lava_runtime.Terminated).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import warnings
from pathlib import Path


def _interrupted_at_start(signum, frame):
    """Ctrl-C while the imports below load (torch, matplotlib: seconds) ends as any other
    interrupt does, one line and exit 130, not a traceback from inside an import."""
    print("neurodeploy: interrupted", file=sys.stderr, flush=True)
    os._exit(130)


try:
    _SIGINT = signal.signal(signal.SIGINT, _interrupted_at_start)
except ValueError:          # imported outside the main thread: no handler can be set there
    _SIGINT = None

import yaml  # noqa: E402

import neurodeploy.api as api  # noqa: E402
from neurodeploy.backends.registry import (BACKENDS, DEFAULT_BACKEND,  # noqa: E402
                                           PARITY_BACKENDS, listed)
from neurodeploy.checkpoint import training_device  # noqa: E402
from neurodeploy.distill.tune import TuneOptions  # noqa: E402
from neurodeploy.errors import NeurodeployWarning, UserError  # noqa: E402
from neurodeploy.progress import chosen  # noqa: E402
from neurodeploy.report import text  # noqa: E402

if _SIGINT is not None:     # imported: Ctrl-C is KeyboardInterrupt again (main catches it)
    signal.signal(signal.SIGINT, _SIGINT)


def _shape(arg: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in arg.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 2,8,8, got {arg!r}") from None
    if not 1 <= len(shape) <= 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected 1 to 3 positive sizes like 2,8,8, got {arg!r}")
    return shape


def _positive(kind):
    """argparse type: a positive, finite int or float (0, negatives, nan and inf are mistakes)."""
    def parse(arg: str):
        try:
            value = kind(arg)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {arg!r}") from None
        if not (0 < value < float("inf")):
            raise argparse.ArgumentTypeError(f"expected a positive finite number, got {arg!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _fraction(arg: str) -> float:
    value = _positive(float)(arg)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {arg!r}")
    return value


def _share(arg: str) -> float:
    """A fraction that may be 0 (none)."""
    try:
        if float(arg) == 0:
            return 0.0
    except ValueError:
        pass                                    # _fraction names the mistake
    return _fraction(arg)


def _headroom(arg: str) -> str | float:
    if arg == "auto":
        return arg
    value = _positive(float)(arg)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected auto or a number >= 1, got {arg!r}")
    return value


def _progress(args) -> bool | None:
    return chosen(args.progress, args.quiet)


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a redirect, a test's capture)."""
    stream = property(lambda self: sys.stderr, lambda self, value: None)


@contextlib.contextmanager
def _reporting():
    """What the library logs and warns, on stderr as plain lines while a verb runs: notices
    and progress lines (logger "neurodeploy", INFO) as they are, neurodeploy's warnings as
    `neurodeploy: warning: ...`; everything as it was afterwards."""
    log = logging.getLogger("neurodeploy")
    handler, level, propagate = _Stderr(), log.level, log.propagate
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False                  # once, even where Lava configured the root logger
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, *where, **kw):
            if not issubclass(category, NeurodeployWarning):
                return shown(message, category, *where, **kw)
            print(f"neurodeploy: warning: {message}", file=sys.stderr)
        warnings.showwarning = show
        warnings.simplefilter("always", NeurodeployWarning)
        try:
            yield
        finally:
            log.removeHandler(handler)
            log.setLevel(level)
            log.propagate = propagate


def _note(reset) -> None:
    """NIR cannot state the reset mechanism: say which one a foreign graph was deployed with."""
    if reset:
        print(f"neurodeploy: note: {reset if isinstance(reset, str) else reset['note']}",
              file=sys.stderr)


def cmd_run(args) -> int:
    result, out = api.run(args.recipe, args.runs_dir, progress=_progress(args),
                          backend=args.backend, overrides=dict(args.set), fresh=args.fresh,
                          device=args.device)
    print(text.summarize(result, out))
    return 0


def cmd_explore(args) -> int:
    keys = [key for key, _ in args.grid]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise UserError(f"--grid {twice[0]}: given twice; give all its values in one --grid")
    result = api.explore(args.recipe, dict(args.grid), args.out, overrides=dict(args.set),
                         seeds=args.seeds, jobs=args.jobs, presets=args.preset or None,
                         lava_samples=args.lava_samples, device=args.device,
                         say=None if args.quiet else lambda line: print(line, file=sys.stderr))
    print(text.explored(result, args.out))
    return 0


def cmd_distill(args) -> int:
    path = api.distill(args.recipe, args.out, overrides=dict(args.set), progress=_progress(args),
                       fresh=args.fresh, device=args.device, place="--out")
    print(f"checkpoint {path} (trained on {training_device(path)}); training history "
          f"{path.parent / 'history.jsonl'}")
    return 0


def cmd_export(args) -> int:
    manifest = api.export(args.checkpoint, args.out, timesteps=args.timesteps, dt=args.dt)
    out = manifest["output"]
    if "accuracy" not in manifest:                      # a graph trained elsewhere
        print(f"wrote {out}/student.nir, network.net, manifest.json (the untuned lowering; "
              "`neurodeploy tune` recovers what rounding costs)")
        return 0
    print(f"wrote {out}/student.nir, network.net, manifest.json; deployed (exact) test "
          f"accuracy {manifest['accuracy']['deployed_exact']:.4f}")
    return 0


def cmd_tune(args) -> int:
    report = api.tune(args.source, args.data, args.out, reset=args.reset,
                      reset_delay=args.reset_delay, dt=args.dt, epochs=args.epochs, lr=args.lr,
                      held_out=args.held_out, seed=args.seed, headroom=args.headroom,
                      redraw=args.redraw, device=args.device, progress=_progress(args),
                      fresh=args.fresh)
    print(text.tuned(report, report["output"]))
    return 0


def _run_options(args) -> dict:
    """What simulate and parity share: the inputs, the file's missing facts, how the network
    runs (one api.Execution), where to write."""
    return dict(inputs=args.data, samples=args.samples, dt=args.dt, timesteps=args.timesteps,
                input_shape=args.input_shape, out=args.out or True, input_bits=args.input_bits,
                execution=api.Execution(args.device, args.timeout, _progress(args)))


def cmd_simulate(args) -> int:
    result = api.simulate(args.network, backend=args.backend, preset=args.preset,
                          shard=args.shard, chunk=args.chunk, **_run_options(args))
    _note(result.get("reset"))
    print(text.simulated(result))
    return 0


def cmd_merge(args) -> int:
    result = api.merge(args.dirs, args.out)
    print(f"merged {result['samples']} samples from {len(args.dirs)} director(ies): accuracy "
          f"{result['accuracy']:.4f}; wrote {', '.join(map(str, result['wrote']))}")
    return 0


def cmd_parity(args) -> int:
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    result = api.parity(args.network, backends=names, reference=args.reference,
                        **_run_options(args))
    print(text.compared(result))
    _note(result.get("reset"))              # on stderr, between the comparisons and the rest
    print(text.compared_tail(result))
    if result.get("kind") == "sigma-delta":   # graded messages: compared message for message
        return 1 if (result.get("message_mismatches") or {}).get("total") else 0
    return 0 if result["spike_mismatches"] == result["readout_voltage_mismatches"] == 0 else 1


def cmd_energy(args) -> int:
    print(text.repriced(api.energy(args.report, args.preset, args.network,
                                   args.out or Path(args.report).parent)))
    return 0


def cmd_inspect(args) -> int:
    print(text.described(api.inspect(args.file, args.dt)))
    return 0


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes end like every other user error: one line, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"neurodeploy: error: {self.prog}: {message} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """--version, computed only when asked (package metadata is read lazily)."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, help=help, default=argparse.SUPPRESS)

    def __call__(self, parser, namespace, values, option_string=None):
        print(text.versions())
        parser.exit(0)


def _dotted(arg: str, example: str) -> tuple[str, str]:
    """(dotted recipe key, the text after '=') of `arg`, or the usage error naming `example`."""
    key, eq, value = arg.partition("=")
    if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise argparse.ArgumentTypeError(f"expected a dotted {example}, got {arg!r}")
    return key, value


def _assignment(arg: str) -> tuple[str, object]:
    """--set key=value: a dotted recipe key and a YAML value (2, [32], true, rate)."""
    key, value = _dotted(arg, "key=value like distill.epochs=2")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(f"{key}: value {value!r} is not YAML "
                                         f"({str(e).splitlines()[0]}); quote lists for the "
                                         "shell, e.g. 'student.hidden=[32]'") from None


def _grid(arg: str) -> tuple[str, list]:
    """--grid key=V1,V2,...: a dotted recipe key and its values, read as one YAML list."""
    key, values = _dotted(arg, "key=V1,V2 like encoding.timesteps=4,8")
    try:
        parsed = yaml.safe_load(f"[{values}]")
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(f"{key}: values {values!r} are not YAML "
                                         f"({str(e).splitlines()[0]}); quote lists for the "
                                         "shell, e.g. 'student.hidden=[32],[64]'") from None
    if not parsed or any(v is None for v in parsed):
        raise argparse.ArgumentTypeError(f"{key}: an empty value in {values!r}; give V1,V2")
    return key, parsed


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="neurodeploy", epilog=text.EXAMPLES[None],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Distill spiking students in PyTorch, export through NIR to lava-dl netx, "
                    "and run them on Lava (Loihi 2) with spikes, energy and parity.")
    parser.add_argument("--version", action=_Version,
                        help="print the versions of neurodeploy, torch, lava-nc, lava-dl, nir, "
                             "numpy, h5py")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB",
                                help="what to do; `neurodeploy VERB --help` shows its examples")

    def verb(name, fn, help_):
        p = sub.add_parser(name, help=help_, description=help_, epilog=text.EXAMPLES[name],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        bars = p.add_mutually_exclusive_group()
        bars.add_argument("-q", "--quiet", action="store_true",
                          help="no progress bars or lines (a reused checkpoint or resumed "
                               "chunks are still said)")
        bars.add_argument("--progress", action="store_true",
                          help="progress bars even when stderr is not a terminal (by default "
                               "they are shown only on a terminal, and plain lines elsewhere)")
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
    p.add_argument("--backend", default=DEFAULT_BACKEND,
                   choices=tuple(n for n, b in BACKENDS.items() if b.resumable),
                   help="where the deployed network runs: Lava's CPU simulation or a Loihi 2 "
                        f"board (default: {DEFAULT_BACKEND})")
    training_args(p)
    p = verb("explore", cmd_explore, "train, deploy and price a grid of recipe variants: the "
             "accuracy-energy-latency front (front.json, front.html)")
    recipe_args(p)
    p.add_argument("--grid", action="append", type=_grid, default=[], metavar="KEY=V1,V2",
                   help="a dotted recipe key and its values (YAML, comma-separated; "
                        "repeatable: the grid is every combination), e.g. "
                        "--grid encoding.timesteps=4,8 --grid 'student.hidden=[32],[64]'")
    p.add_argument("--out", required=True, help="folder for front.json, front.html and one "
                                                "run folder per variant and seed")
    p.add_argument("--seeds", type=_positive(int), default=1,
                   help="student seeds per variant, 0..N-1 (default: 1)")
    p.add_argument("--jobs", type=_positive(int), default=1,
                   help="variants trained at once, in separate processes (default: 1)")
    p.add_argument("--preset", action="append",
                   help="energy preset(s) to price with (repeatable; the first draws the "
                        "front; default: the recipe's energy.preset)")
    p.add_argument("--lava-samples", type=_positive(int), default=50,
                   help="test samples each run is checked on in Lava, spike for spike "
                        "(default: 50)")
    p.add_argument("--device", help="where to train: cpu, cuda or cuda:N (default: cuda when "
                                    "torch sees a GPU, else cpu)")
    p = verb("distill", cmd_distill, "train the teacher and distill the student")
    recipe_args(p)
    p.add_argument("--out", help="output directory (default: runs/<recipe name>)")
    training_args(p)
    p = verb("export", cmd_export, "checkpoint (or a NIR graph trained elsewhere) -> "
             "student.nir -> network.net + manifest.json")
    p.add_argument("checkpoint", help="a checkpoint.pt written by `run` or `distill`, or a .nir "
                                      "graph from another framework")
    p.add_argument("--out", help="output directory (default: the checkpoint's directory; "
                                 "runs/export/<graph>-<sha8> for a graph)")
    p.add_argument("--timesteps", type=_positive(int),
                   help="a graph's steps per sample (netx resets its neurons after T)")
    p.add_argument("--dt", type=_positive(float),
                   help="time step for a NIR graph that does not record one")
    p = verb("tune", cmd_tune, "distill a NIR graph trained elsewhere onto Loihi's grid: its "
             "float model teaches its deployed network")
    p.add_argument("source", help="a .nir graph from snnTorch, Norse, Sinabs, Spyx, ...")
    p.add_argument("--data", required=True,
                   help="a .npz with spike trains x [N, T, ...] and, when known, labels y")
    p.add_argument("--reset", choices=("zero", "subtract"), default="zero",
                   help="how the source framework resets a neuron after a spike (NIR cannot "
                        "say; snnTorch's default Leaky: subtract; default: zero, as Loihi)")
    p.add_argument("--reset-delay", action="store_true",
                   help="the reset takes effect one step late (snnTorch's default "
                        "reset_delay=True)")
    p.add_argument("--dt", type=_positive(float),
                   help="time step for a NIR graph that does not record one")
    p.add_argument("--epochs", type=_positive(int), default=TuneOptions.epochs,
                   help=f"default: {TuneOptions.epochs}")
    p.add_argument("--lr", type=_positive(float), default=TuneOptions.lr,
                   help=f"learning rate in integer weight units (default: {TuneOptions.lr})")
    p.add_argument("--redraw", type=_share, default=TuneOptions.redraw,
                   help="fraction of each input channel's events moved to random steps in "
                        f"every training batch (default: {TuneOptions.redraw})")
    p.add_argument("--held-out", type=_fraction, default=TuneOptions.held_out,
                   help="fraction of the inputs kept out of tuning, to validate and report on "
                        f"(seeded; default: {TuneOptions.held_out})")
    p.add_argument("--seed", type=int, default=0, help="split and training seed (default: 0)")
    p.add_argument("--headroom", default="auto", type=_headroom,
                   help="the lowering's scale headroom to start from: auto (searched on the "
                        "tuning inputs) or a number >= 1 (1: the untuned lowering's scale)")
    p.add_argument("--out", help="output directory (default: runs/tune/<graph>-<sha8>)")
    training_args(p)
    on_gpu = [n for n, b in BACKENDS.items() if "cuda" in b.devices]
    as_trained = listed(n for n, b in BACKENDS.items() if b.reads == "own")

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
        p.add_argument("--input-bits", type=_positive(int), metavar="N",
                       help="a .npz's integer x holds graded input spikes of N bits (events in "
                            "0..2**N-1), as netx's Network(..., input_message_bits=N) takes "
                            "them; CUBA networks only")
        p.add_argument("--timeout", type=_positive(float), help="stop a Lava run after this many seconds")
        p.add_argument("--device", default="cpu", help=f"device of the {listed(on_gpu)} "
                                                       "backends (cpu, cuda, cuda:N)")

    p = verb("simulate", cmd_simulate, "run a netx network on a backend; writes simulate.json")
    data_args(p)
    p.add_argument("--backend", default=DEFAULT_BACKEND, choices=tuple(BACKENDS),
                   help="; ".join(f"{b.name}: {b.about}" for b in BACKENDS.values())
                        + f" (default: {DEFAULT_BACKEND})")
    p.add_argument("--shard", help="i/n: run only the i-th of n equal slices (job arrays)")
    p.add_argument("--chunk", type=_positive(int), default=1000,
                   help="samples per saved Lava chunk; a rerun resumes after the last one")
    p.add_argument("--out", help="directory for simulate.json and Lava chunks (default: "
                                 "runs/simulate/<network>-<sha8>-<backend>)")
    p.add_argument("--preset", help="energy preset that prices the counted events: a built-in "
                                    "name or a preset YAML file (default: loihi1-davies2018, "
                                    "as `run`); reprice later with `neurodeploy energy`")
    p = verb("merge", cmd_merge, "join the Lava chunk records of several shards")
    p.add_argument("dirs", nargs="+", help="the shards' chunks/ directories, or the "
                                          "simulate --out directories holding them")
    p.add_argument("--out", help="directory for record.npz and simulate.json (default: "
                                 "runs/merge/<network sha8>-<inputs sha8>)")
    p = verb("parity", cmd_parity, "compare backends spike for spike (exit 1 on any mismatch)")
    data_args(p)
    p.add_argument("--backends", default=",".join(PARITY_BACKENDS),
                   help=f"comma-separated; the first deployed one is the reference; {as_trained} "
                        "adds the model as trained, compared by spike counts and predictions "
                        f"(default: {','.join(PARITY_BACKENDS)})")
    p.add_argument("--reference", help="a .npz of another framework's own results on the same "
                                       "inputs: predictions [N] and/or output counts [N, C]")
    p.add_argument("--out", help="directory for parity.json and report.html (default: "
                                 "runs/parity/<network>-<sha8>)")
    p = verb("energy", cmd_energy, "reprice a run's report.json or a simulate.json with another "
             "energy preset (no simulation)")
    p.add_argument("report", help="a report.json written by `neurodeploy run`, or a "
                                  "simulate.json written by `neurodeploy simulate`")
    p.add_argument("--preset", default=api.DEFAULT_PRESET,
                   help="a built-in preset name or a preset YAML file (default: "
                        f"{api.DEFAULT_PRESET}, as simulate and run)")
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
        with _reporting():
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
