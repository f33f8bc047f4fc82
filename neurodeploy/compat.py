"""Importing and running Lava safely on Python 3.11.

lava-nc 0.10.0 and lava-dl 0.6.0 (the final releases) need two shims on Python >= 3.11:

1. `lava.magma.compiler.var_model` declares dataclass fields whose defaults are other
   dataclasses (`ByteEncoder()`); Python 3.11 rejects unhashable defaults. While Lava is
   imported we make Lava's own dataclasses hashable (`unsafe_hash=True`), then restore
   `dataclasses.dataclass` for everyone else.
2. `lava.lib.dl.netx` imports slayer, whose `object_detection` subpackage needs OpenCV and
   torchvision (neither is used by netx). A stub module stands in for it.

A third fix is not about 3.11: Lava calls `multiprocessing.set_start_method('fork')` when
imported, which raises if anything already fixed the start method (tqdm's lock does, by
creating a multiprocessing RLock). During the import we let that call force 'fork'.

Call `import_lava()` instead of importing Lava directly: it applies both shims once.

Lifecycle: a Lava runtime left alive makes the interpreter hang at exit and leaks worker
processes and /dev/shm segments. `running(process)` stops the runtime on success, error, or
interrupt (SIGINT/SIGTERM are deferred to the next `interruption_point()` between bounded run
chunks, because a signal inside a blocking run leaves workers mid-step), kills the workers
and frees the shared memory if a stop does not finish in STOP_TIMEOUT_S, and `stop_all()` is
registered at exit as a last safety net (the test session calls it too).
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import multiprocessing
import signal
import sys
import threading
import types
from typing import Iterator

_SLAYER_STUB = "lava.lib.dl.slayer.object_detection"
_live: list = []         # processes whose runtime may still be running
_pending: list = []      # signals received while a Lava run was in progress
STOP_TIMEOUT_S = 30.0
_lava = None


def _lava_dataclass_patch():
    original = dataclasses.dataclass

    def dataclass(cls=None, /, **options):
        def wrap(klass):
            opts = dict(options)
            if klass.__module__.startswith("lava."):
                opts.setdefault("unsafe_hash", True)
            return original(klass, **opts)
        return wrap if cls is None else wrap(cls)
    return original, dataclass


def import_lava() -> types.SimpleNamespace:
    """Import the parts of Lava we use, with the Python 3.11 shims applied exactly once."""
    global _lava
    if _lava is not None:
        return _lava
    if _SLAYER_STUB not in sys.modules:
        sys.modules[_SLAYER_STUB] = types.ModuleType(_SLAYER_STUB)
    original, patched = _lava_dataclass_patch()
    dataclasses.dataclass = patched
    set_start_method = multiprocessing.set_start_method
    multiprocessing.set_start_method = functools.partial(set_start_method, force=True)
    try:
        import lava.magma.compiler.compiler  # noqa: F401  (imports var_model under the patch)
        from lava.lib.dl import netx
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg
    finally:
        dataclasses.dataclass = original
        multiprocessing.set_start_method = set_start_method
    _lava = types.SimpleNamespace(netx=netx, RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg,
                                  Loihi2HwCfg=Loihi2HwCfg)
    return _lava


def _force_stop(process) -> None:
    """Kill the runtime's worker processes and free its shared memory, without its cooperation."""
    infra = getattr(process.runtime, "_messaging_infrastructure", None)
    for actor in getattr(infra, "actors", []):
        with contextlib.suppress(Exception):
            actor.kill()
            actor.join()
    with contextlib.suppress(Exception):
        infra.smm.shutdown()


def _stop(process, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop once, also after a failed compile or start; force it if Lava does not answer."""
    if process not in _live:
        return
    _live.remove(process)
    if getattr(process, "runtime", None) is None:
        return
    stopper = threading.Thread(target=process.stop, daemon=True)
    stopper.start()
    stopper.join(timeout)
    if stopper.is_alive():
        _force_stop(process)


def stop_all() -> None:
    """Stop every runtime this interpreter started and did not stop yet."""
    for process in list(_live):
        with contextlib.suppress(Exception):
            _stop(process)


def _defer(signum, _frame):
    _pending.append(signum)


def interruption_point() -> None:
    """Raise KeyboardInterrupt here if SIGINT/SIGTERM arrived while Lava was running.

    A signal delivered inside a blocking Lava run would leave its workers mid-step, and a
    stop request then waits forever; so `running` defers signals to points between runs.
    """
    if _pending:
        signum = _pending.pop()
        _pending.clear()
        raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def running(process) -> Iterator[None]:
    """Context for a Lava process that will be run: its runtime is always stopped on exit.

    Run in bounded chunks and call `interruption_point()` between them to honour Ctrl-C and
    SIGTERM promptly; the runtime is stopped on success, error or interrupt.
    """
    _live.append(process)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _defer) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        try:
            _stop(process)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            _pending.clear()


atexit.register(stop_all)
