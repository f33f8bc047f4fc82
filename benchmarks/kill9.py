"""kill -9 of a Lava run: how many of its processes and shared-memory segments outlive it.

Each trial starts a Lava simulation of export/digits in its own session, waits until the
progress bar shows the run underway, kills the main process with SIGKILL (nothing in it can
clean up), then counts the processes left in that session and the /dev/shm/psm_* segments the
run had mapped that still exist: 10 s after the kill, and again after the next (short) Lava run
has been made, which is when orphan clean-up gets its chance (then also the run's temporary
directory of memmaps). Whatever a trial leaves is then
removed by this script, so trials are independent.

    .venv/bin/python benchmarks/kill9.py [--trials 10] [--out benchmarks/results/kill9.json]
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from neurodeploy.files import write_json  # noqa: E402

NET = ROOT / "export" / "digits" / "network.net"
RUN = """
import numpy as np
from neurodeploy.backends.lava import simulate_lava
x = (np.random.default_rng(0).random(({n}, 16, 64)) < 0.2).astype(np.uint8)
simulate_lava({net!r}, x)
"""
WAIT_S = 10.0


def session_pids(sid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def mapped(pids: list[int]) -> tuple[set[str], set[str]]:
    """The psm_* segments and the run's temporary directories (its memmaps live there) that the
    given processes have mapped: only this run's, whoever else uses /dev/shm and /tmp."""
    segments, tempdirs = set(), set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        for line in maps.splitlines():
            path = line.split(maxsplit=5)[5] if len(line.split(maxsplit=5)) == 6 else ""
            if path.startswith("/dev/shm/psm_"):
                segments.add(path)
            elif "/neurodeploy-lava-" in path:
                tempdirs.add(str(Path(path).parent))
    return segments, tempdirs


def existing(paths: set[str]) -> set[str]:
    return {p for p in paths if os.path.exists(p)}


def start_underway(log: Path, n: int) -> subprocess.Popen:
    """Start a Lava run in a new session; return once its progress bar reports a measured rate
    (tqdm shows '?sample/s' before the first chunk, while Lava may still be starting)."""
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", RUN.format(net=str(NET), n=n)],
                                stderr=err, stdout=subprocess.DEVNULL, cwd=ROOT,
                                start_new_session=True)
    while not re.search(r"\dsample/s", log.read_text()):
        if proc.poll() is not None:
            raise RuntimeError(f"the Lava run ended before it was underway: {log.read_text()}")
        time.sleep(0.2)
    return proc


def trial(tmp: Path) -> dict:
    proc = start_underway(tmp / "run.log", 50_000)
    sid = proc.pid
    pids = session_pids(sid)
    segments, tempdirs = mapped(pids)
    os.kill(proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    proc.wait()
    while (session_pids(sid) or existing(segments)) and time.monotonic() - killed < WAIT_S:
        time.sleep(0.2)
    after_10s = (len(session_pids(sid)), len(existing(segments)))
    seconds_to_clean = (round(time.monotonic() - killed, 2)
                        if after_10s == (0, 0) else None)
    nxt = subprocess.run([sys.executable, "-c", RUN.format(net=str(NET), n=20)], cwd=ROOT,
                         capture_output=True, text=True)
    if nxt.returncode != 0:
        raise RuntimeError(f"the next Lava run failed: {nxt.stderr[-2000:]}")
    after_next = (len(session_pids(sid)), len(existing(segments)), len(existing(tempdirs)))
    with_leftovers = session_pids(sid)            # remove what this trial left behind
    if with_leftovers:
        os.killpg(sid, signal.SIGKILL)
    for path in existing(segments):
        os.unlink(path)
    for path in existing(tempdirs):
        shutil.rmtree(path)
    return {"processes_at_kill": len(pids), "segments_at_kill": len(segments),
            "processes_left_after_10s": after_10s[0], "segments_left_after_10s": after_10s[1],
            "seconds_until_clean": seconds_to_clean,
            "processes_left_after_next_run": after_next[0],
            "segments_left_after_next_run": after_next[1],
            "tempdirs_left_after_next_run": after_next[2]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "kill9.json"))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="neurodeploy-kill9-") as tmp:
        print(f"{'trial':>5} {'procs@kill':>10} {'segs@kill':>9} {'procs+10s':>9} "
              f"{'segs+10s':>8} {'clean in s':>10} {'procs+next':>10} {'segs+next':>9} "
              f"{'tmpdirs+next':>12}")
        for i in range(args.trials):
            row = trial(Path(tmp))
            rows.append(row)
            print(f"{i + 1:>5} {row['processes_at_kill']:>10} {row['segments_at_kill']:>9} "
                  f"{row['processes_left_after_10s']:>9} {row['segments_left_after_10s']:>8} "
                  f"{str(row['seconds_until_clean']):>10} "
                  f"{row['processes_left_after_next_run']:>10} "
                  f"{row['segments_left_after_next_run']:>9} "
                  f"{row['tempdirs_left_after_next_run']:>12}", flush=True)
    result = {"trials": args.trials,
              "processes_left_after_10s": [r["processes_left_after_10s"] for r in rows],
              "segments_left_after_10s": [r["segments_left_after_10s"] for r in rows],
              "processes_left_after_next_run": [r["processes_left_after_next_run"]
                                                for r in rows],
              "segments_left_after_next_run": [r["segments_left_after_next_run"] for r in rows],
              "tempdirs_left_after_next_run": [r["tempdirs_left_after_next_run"]
                                               for r in rows],
              "per_trial": rows,
              "machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "cpus": os.cpu_count()}}
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
