"""How the library reports: progress of its long steps, and notices, through `logging` (the
logger "neurodeploy" and its per-module children); warnings go through `warnings`
(`errors.NeurodeployWarning`). Nothing here prints: the command line shows these lines on
stderr (cli.py), a Python user sees them where their logging config shows INFO.

A long step (training epochs, samples through a backend, Lava chunks) shows its progress one
of three ways, chosen here only, by `progress`:

- True: a tqdm bar (a terminal, or --progress);
- False: plain lines logged at INFO to "neurodeploy.progress", no escape codes (a log, CI,
  `run ... | tee`), so a long step is never silent;
- None: nothing (a step inside a bigger one that reports itself, e.g. explore's runs).
"""
from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("neurodeploy.progress")


def chosen(forced: bool, quiet: bool) -> bool | None:
    """The command line's choice: bars on a terminal or when `forced` (--progress), nothing
    when `quiet` (-q), else lines."""
    if forced or (not quiet and sys.stderr.isatty()):
        return True
    return None if quiet else False


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class Progress:
    """One long step: `total` units (epochs, samples) of `what`, `start` of them done before
    (a resumed run). Lines come at most every `every` seconds (0: at every update), each
    with the rate and the time left."""

    def __init__(self, what: str, total: int, unit: str, progress: bool | None,
                 start: int = 0, every: float = 10.0):
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self.start = start
        self.lines = progress is False and log.isEnabledFor(logging.INFO)
        self.bar = (tqdm(total=total, initial=start, desc=what, unit=unit, leave=False)
                    if progress else None)
        self.began = self.said = time.monotonic()

    def say(self, line: str) -> None:
        """A line of its own, where lines are shown (e.g. what a step is about to do)."""
        if self.lines:
            log.info(line)

    def update(self, done: int, head: str | None = None, **facts) -> None:
        """`done` of the total now; `facts` (loss="0.123") follow the count on the bar or in
        the line; `head` replaces the line's start, `what: done/total units`."""
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            if facts:
                self.bar.set_postfix(facts)
            return
        now = time.monotonic()
        if not self.lines or (self.every and (done >= self.total   # what follows says it ended
                                              or now - self.said < self.every)):
            return
        self.said = now
        rate = (done - self.start) / max(now - self.began, 1e-9)
        parts = [head or f"{self.what}: {done}/{self.total} {self.unit}s",
                 *(f"{k} {v}" for k, v in facts.items())]
        if self.unit != "epoch":            # epochs per second reads badly; time left says it
            parts.append(f"{rate:.1f} {self.unit}s/s")
        if done < self.total and rate > 0:
            parts.append(f"about {duration((self.total - done) / rate)} left")
        log.info(", ".join(parts))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
