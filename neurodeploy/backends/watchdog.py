"""A watchdog over a running Lava network, so that no Lava run can hang.

Checks between run chunks are not enough: a Lava worker that raises inside a process model may
exit without telling the runtime (lava-nc 0.10.0's LIF did so on a float decay), and the main
thread then waits inside `run` forever, deaf to checks that come only after the chunk. A thread
looks every POLL_S, while the run is open, at
- Lava's worker processes: one that has exited is a dead worker (its error or signal and the
  layer it ran are named);
- the run's progress: the input source writes the time step it sends into a one-value memmap
  (the clock); a chunk during which it stays put for the stall bound (NEURODEPLOY_LAVA_STALL_S,
  default STALL_S) is stuck;
- the clock on the wall: `timeout_s` is a bound at any moment, not only between chunks.
On any of them `lava_runtime.interrupt_run` makes the running thread raise one `UserError` line, and
`lava_runtime.running` tears the runtime down (workers killed, shared memory freed).
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from neurodeploy.backends import lava_runtime
from neurodeploy.errors import UserError

STALL_ENV = "NEURODEPLOY_LAVA_STALL_S"
STALL_S = 60.0      # one step of a large network on a busy CPU takes seconds, never a minute
POLL_S = 0.1
RESEND_S = 1.0


class LavaTimeout(UserError):
    """A Lava run took longer than its timeout (it has been stopped and cleaned up)."""


class LavaWorkerDied(UserError):
    """A Lava worker process exited during a run (the run has been torn down)."""


class LavaStalled(UserError):
    """A Lava run made no progress within the stall bound (it has been torn down)."""


def stall_limit() -> float:
    """The stall bound in seconds: NEURODEPLOY_LAVA_STALL_S, or STALL_S."""
    raw = os.environ.get(STALL_ENV)
    if raw is None:
        return STALL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UserError(f"{STALL_ENV}={raw!r}: expected a positive number of seconds")
    return value


def lava_names(blocks, names) -> dict[int, str]:
    """Lava process id -> what it runs, e.g. 'layer fc0 (LIF)', for netx blocks and our names."""
    found = {}
    for block, name in zip(blocks, names):
        found[block.id] = f"layer {name}"
        for proc in getattr(block, "procs", ()):
            found[proc.id] = f"layer {name} ({type(proc).__name__})"
    return found


class Watchdog:
    """Context around a run chunk loop inside `lava_runtime.running(net)`; see the module docstring.

    `clock`: the memmap the source writes its time step into; `where(step)` says how far the
    run got, for messages; `names`: Lava process id -> what it runs (see lava_names)."""

    def __init__(self, net, label: str, clock: Path, where: Callable[[int], str],
                 names: dict[int, str], timeout_s: float | None = None):
        self.net, self.label, self.where, self.names = net, label, where, names
        self.timeout_s, self.stall_s = timeout_s, stall_limit()
        np.memmap(clock, dtype=np.int64, mode="w+", shape=(1,)).flush()
        self._clock = np.memmap(clock, dtype=np.int64, mode="r", shape=(1,))
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="lava-watchdog", daemon=True)

    def step(self) -> int:
        """The last time step the input source sent."""
        return int(self._clock[0])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, kind, error, _tb):
        self._done.set()
        self._thread.join()
        if isinstance(error, Exception) and not isinstance(error, UserError) and \
                (dead := lava_runtime.dead_workers(self.net)):
            raise LavaWorkerDied(self._died(dead[0])) from None   # Lava's own "N Exception(s)"
        return False

    def _watch(self) -> None:
        started = last_move = time.monotonic()
        last_step = -1
        while not self._done.wait(POLL_S):
            now, step = time.monotonic(), self.step()
            runtime = getattr(self.net, "runtime", None)
            if step != last_step or not getattr(runtime, "_is_running", False):
                last_step, last_move = step, now       # moving, compiling or between chunks
            error = None
            if self.timeout_s is not None and now - started > self.timeout_s:
                error = LavaTimeout(f"{self.label}: the Lava run exceeded its "
                                    f"{self.timeout_s:.3g} s timeout {self.where(step)}; it was "
                                    "stopped")
            elif dead := lava_runtime.dead_workers(self.net):
                error = LavaWorkerDied(self._died(dead[0]))
            elif now - last_move > self.stall_s:
                error = LavaStalled(f"{self.label}: no progress for {self.stall_s:g} s "
                                    f"{self.where(step)} (a Lava worker is stuck); the run was "
                                    f"stopped: {STALL_ENV} sets this bound, --timeout the "
                                    "whole run's")
            if error is not None:
                lava_runtime.interrupt_run(error, self.net)
                while not self._done.wait(RESEND_S):    # until the run has ended (see
                    lava_runtime.interrupt_run(error, self.net)   # interrupt_run)
                return

    def _died(self, actor) -> str:
        """One line: which worker died, running what, and why."""
        # Lava starts one actor per Python process builder, in order, then its runtime services
        from lava.magma.compiler.builders.py_builder import PyProcessBuilder
        runtime = self.net.runtime
        builders = getattr(getattr(runtime, "_executable", None), "proc_builders", {}) or {}
        procs = [p for p, b in builders.items() if isinstance(b, PyProcessBuilder)]
        actors = list(getattr(runtime._messaging_infrastructure, "actors", ()))
        index = next((i for i, a in enumerate(actors) if a is actor), len(procs))
        proc = procs[index] if index < len(procs) else None
        what = (self.names.get(proc.id, f"the {type(proc).__name__} process") if proc is not None
                else "Lava's runtime service")
        try:
            code = actor.exitcode
        except ValueError:                  # joined meanwhile by the teardown
            code = None
        if code is not None and code < 0:
            why = f"killed by {signal.Signals(-code).name}"
        else:
            try:
                raised = actor.exception
            except (OSError, EOFError, ValueError):
                raised = None
            if isinstance(raised, tuple) and raised and isinstance(raised[0], BaseException):
                text = str(raised[0]).strip().splitlines()
                why = f"{type(raised[0]).__name__}: {text[0][:120] if text else ''}"
            else:
                why = f"exit code {code}"
        return (f"{self.label}: Lava worker died while running {what} ({why}) "
                f"{self.where(self.step())}; the run was stopped")
