"""The README's sample output: `neurodeploy run digits` as `make demo` runs it, recorded.

Runs the default recipe into a scratch folder, keeps the one-screen summary it prints and the
machine it ran on, so the README shows a real transcript (rendered by render.py) beside the
spread the digits benchmark measured over seeds and thread counts.

    .venv/bin/python benchmarks/demo_summary.py     # writes benchmarks/results/demo_summary.json
"""
from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import torch

from neurodeploy.files import write_json

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> int:
    with tempfile.TemporaryDirectory() as runs:
        done = subprocess.run([sys.executable, "-m", "neurodeploy", "run", "digits",
                               "--runs-dir", runs], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        print(done.stderr, file=sys.stderr)
        return done.returncode
    summary = done.stdout.strip().replace(runs, "runs")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    write_json(ROOT / "benchmarks" / "results" / "demo_summary.json", {
        "date": str(date.today()), "commit": commit, "summary": summary,
        "machine": {"processor": cpu_model(),
                    "threads": torch.get_num_threads(), "platform": platform.platform()}})
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
