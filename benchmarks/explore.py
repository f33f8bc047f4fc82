"""Which student to deploy: the accuracy-energy-latency front of distilled students (`explore`).

    .venv/bin/python benchmarks/explore.py digits  [--jobs 2] [--seeds 3]   # ~1 h on 2 CPU cores
    .venv/bin/python benchmarks/explore.py digits_full_range [--jobs 2]    # ~20 min
    .venv/bin/python benchmarks/explore.py fmnist  [--jobs N] [--seeds 3]   # days on 2 CPU cores

`digits`: models/digits.yaml as shipped (teacher and 60 epochs of distillation), student
widths 16, 64 and 256 (the shipped one), T in {4, 8, 16}, labels alone vs the recipe's logit
KD. `fmnist`: models/fmnist_conv.yaml under the full protocol of benchmarks/distill_fmnist.py
(all training data, 15 epochs validated every 3, its augmented CNN teacher), student conv
widths from the shipped 16-32 up to 128-256, T in {2, 4, 8}, labels alone vs kdsnn (the best
distillation method of that sweep). Every (variant, seed) is a run folder under
benchmarks/.work/explore_<name>/, deployed exactly on the whole test split with 50 test
samples checked on Lava; the front is priced by loihi2-proxy (loihi1-davies2018 kept too).

Resumable: a rerun skips every finished run (explore's own resumption), so a killed or
time-limited run (benchmarks/gpu.py --sweep) continues where it stopped. The results file is
rewritten after every finished run with the front over the runs finished so far (`complete`
says whether the grid is), each run with the seconds it took, the file with the machine; the
front's figure goes to docs/assets/explore_<name>.png (README, results page) with it.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from distill_fmnist import METHODS, PROTOCOL, machine
from neurodeploy import api
from neurodeploy.distill.explore import _done, _key, front, variants
from neurodeploy.distill.run import _digest
from neurodeploy.files import atomic_path, write_json
from neurodeploy.recipe import load_recipe
from neurodeploy.report.front import front_png
from neurodeploy.report.summary import generated

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FIGURES = ROOT / "docs" / "assets"
PRESETS = ["loihi2-proxy", "loihi1-davies2018"]
LAVA_SAMPLES = 50


def _conv(*channels: int) -> list[dict]:
    return [{"channels": c, "kernel": 3, "stride": 2, "padding": 1} for c in channels]


FULL = PROTOCOL["full"]
SETUPS = {
    "digits": {"recipe": "digits", "overrides": {}, "grid": {
        "student.hidden": [[16], [64], [256]],
        "encoding.timesteps": [4, 8, 16],
        "distill.losses": [METHODS["none"][0], load_recipe("digits").distill.losses]}},
    # one full-range-KD student per width (models/digits_full_range.yaml, T = 16), read out
    # at T' = 1, 2, 4, 8, 16: the T axis of the front from one training each
    "digits_full_range": {"recipe": "digits_full_range", "overrides": {}, "grid": {
        "student.hidden": [[16], [64], [256]]}},
    "fmnist": {"recipe": "fmnist_conv", "overrides": {
        **{f"distill.{k}": v for k, v in FULL["distill"].items()},
        **{f"teacher.{k}": v for k, v in FULL["teacher"].items()}}, "grid": {
        # losses outermost: the labels-alone runs need no teacher, so they come first while
        # the distillation sweep trains the teacher this front then reuses
        "distill.losses": [METHODS["none"][0], METHODS["kdsnn"][0]],
        "student.conv": [_conv(16, 32), _conv(32, 64), _conv(64, 128), _conv(128, 256)],
        "encoding.timesteps": [2, 4, 8]}},
}


def collect(work: Path, setup: dict, seeds: list[int], jobs: int) -> dict:
    """The results file: the front over the grid's runs finished so far in `work`."""
    expected = {v["folder"]: _key(v["recipe"], PRESETS, LAVA_SAMPLES) for v in variants(
        load_recipe(setup["recipe"], setup["overrides"]), setup["grid"], seeds)}
    runs = [r for folder, key in sorted(expected.items()) if (r := _done(work / folder, key))]
    grid_runs = len(expected)
    return {"recipe": setup["recipe"], "overrides": setup["overrides"], "grid": setup["grid"],
            "seeds": seeds, "presets": PRESETS, "front_preset": PRESETS[0],
            "lava_samples": LAVA_SAMPLES, "complete": len(runs) >= grid_runs,
            "runs_finished": len(runs), "runs_in_grid": grid_runs,
            "base_recipe_digest": _digest(load_recipe(setup["recipe"],
                                                      setup["overrides"]).to_dict()),
            "machine": machine(), "jobs": jobs, "generated": generated(),
            "runs": [{k: r[k] for k in ("variant", "seed", "folder", "recipe_digest")}
                     | {"measured": r["measured"]} for r in runs],
            "points": front(runs, PRESETS) if runs else []}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("setup", choices=SETUPS)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--device", help="default: cuda when present")
    ap.add_argument("--out", type=Path, help="results file (default: results/explore_<setup>."
                                             "json)")
    args = ap.parse_args()
    setup = SETUPS[args.setup]
    out = args.out or RESULTS / f"explore_{args.setup}.json"
    work = ROOT / "benchmarks" / ".work" / f"explore_{args.setup}"
    seeds = list(range(args.seeds))
    # the distillation sweep's teachers are keyed by what trains them (distill.run._teacher_key):
    # the full protocol's seed-0 teacher is this front's, so it is trained once for both
    for cached in (ROOT / "benchmarks" / ".work" / "distill_fmnist" / "teachers").glob("*.pt"):
        if not (work / "teachers" / cached.name).exists():
            with atomic_path(work / "teachers" / cached.name) as tmp:
                shutil.copyfile(cached, tmp)

    def save() -> None:
        results = collect(work, setup, seeds, args.jobs)
        write_json(out, results)
        with atomic_path(FIGURES / f"explore_{args.setup}.png") as tmp:   # README, results page
            tmp.write_bytes(front_png(results))

    def finished(line: str) -> None:
        print(line, flush=True)
        if line.startswith("  "):            # a run finished: the results follow
            save()
    result = api.explore(setup["recipe"], setup["grid"], work, overrides=setup["overrides"],
                         seeds=seeds, jobs=args.jobs, presets=PRESETS,
                         lava_samples=LAVA_SAMPLES, device=args.device, say=finished)
    save()
    print(f"{len(result['points'])} points; {out}; the page: {work / 'front.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
