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
interrupt, and `stop_all()` is registered at exit as a last safety net (the test session calls
it too). SIGINT and SIGTERM raise at once, also inside a blocking `run` (Lava's waits are
Python lock waits, which a raising signal handler ends). A runtime left mid-step cannot stop
itself (its stop request waits for workers that never answer), so a run that ended mid-step,
or with a dead worker, or a stop that does not finish in STOP_TIMEOUT_S, is torn down without
Lava's cooperation: workers killed, shared memory freed, and the runtime marked stopped so
that its finaliser does not wait for them at exit. A watchdog thread (backends/watchdog.py)
ends a stuck run the same way: `interrupt_run(error)` makes the running thread raise `error`.

kill -9 runs nothing of ours, so two mechanisms work without the dying process:
- Workers die with their parent. While `running()` is open, every process forked by the thread
  that opened it (Lava forks its actors and the SharedMemoryManager server from the thread that
  calls `run`) asks the kernel at fork for SIGKILL when that thread dies (PR_SET_PDEATHSIG; an
  `os.register_at_fork` hook, no change to Lava). With the workers gone, multiprocessing's
  resource tracker unlinks the /dev/shm segments it registered and exits.
- A registry of runs. Each process with an open run has an entry directory in a private
  per-user directory (/dev/shm/neurodeploy-<uid>/<boot id>-<pid>-<start time>), holding empty
  marker files: `worker-<pid>-<start>` (written by each forked worker),
  `segment-<name>-<inode>` (Lava's shared memory) and `path-*` (temporary paths, see
  `run_tempdir`). Start times come from /proc/<pid>/stat, so a reused pid never matches. The
  entry is removed when the last run closes; `clean_orphans()`, called on entering `running()`,
  removes entries whose owner is gone: it kills listed workers that still run with their
  recorded start time, unlinks listed segments that still have their recorded inode and
  deletes listed paths. Entries of live owners are never touched.

A journal of runs. Where the environment variable NEURODEPLOY_RUN_JOURNAL names a directory,
every worker and segment marker is also written there and never removed (children inherit
it). A test session sets it so that its end-of-run check (`surviving`) looks only at what its
own runs made, in-process or in subprocesses, never at other programs' shared memory.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import functools
import multiprocessing
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import types
import warnings
from pathlib import Path
from typing import Iterator

from neurodeploy.errors import NeurodeployWarning, UserError

_SLAYER_STUB = "lava.lib.dl.slayer.object_detection"
_live: list = []         # processes whose runtime may still be running
_pending: list = []      # signals received while a run was being torn down
_faults: list = []       # errors a watchdog asked the running thread to raise (interrupt_run)
_teardown = 0            # > 0 while running() stops a runtime: signals wait until it is done
_run_thread: int | None = None   # the thread inside running(), for interrupt_run
STOP_TIMEOUT_S = 10.0
_lava = None
_LINUX = sys.platform.startswith("linux")
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if _LINUX else None
_runs: dict[int, int] = {}   # thread ident -> running() blocks open in it: its forks are armed
_holds = 0                   # open runs and run_tempdirs; the registry entry lives while > 0
_entry: Path | None = None   # this process's registry entry
_recorded: set[str] = set()  # segment names already in the entry
_pid = os.getpid()           # this process (kept current across forks)
_lock = threading.Lock()     # guards _holds and _entry
_SEGMENT = re.compile(r"[A-Za-z0-9_.]+")
JOURNAL_ENV = "NEURODEPLOY_RUN_JOURNAL"


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


LAVA_INSTALL = "pip install --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0"


def import_lava() -> types.SimpleNamespace:
    """Import the parts of Lava we use, with the Python 3.11 shims applied exactly once.
    Without Lava: a one-line UserError that names the install command."""
    global _lava
    if _lava is not None:
        return _lava
    try:
        return _import_lava()
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] != "lava":
            raise
        raise UserError(f"Lava is not installed (no module {e.name}): {LAVA_INSTALL} "
                        "(README, 'Installing with pip'); the torch, emulator and float "
                        "backends run without it") from None


def _import_lava() -> types.SimpleNamespace:
    global _lava
    if _SLAYER_STUB not in sys.modules:
        sys.modules[_SLAYER_STUB] = types.ModuleType(_SLAYER_STUB)
    original, patched = _lava_dataclass_patch()
    dataclasses.dataclass = patched
    set_start_method = multiprocessing.set_start_method
    multiprocessing.set_start_method = functools.partial(set_start_method, force=True)
    # Lava takes seconds to import, needs the shims above and may be absent: imported only here
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


def _proc_start(pid: int) -> int | None:
    """Start time of a running (not zombie) process in clock ticks since boot; None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
    return "0"


def registry_root() -> Path | None:
    """This user's private registry of runs; None where it cannot be kept (then only the
    kernel's parent-death signal protects against kill -9)."""
    if not _LINUX:
        return None
    base = Path("/dev/shm") if os.path.isdir("/dev/shm") else Path(tempfile.gettempdir())
    root = base / f"neurodeploy-{os.getuid()}"
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(root)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        warnings.warn(f"{root}: not a private directory of this user, so runs killed with "
                      "kill -9 are not cleaned up; remove it", NeurodeployWarning, stacklevel=2)
        return None
    return root


def _touch(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _mark(name: str, entry: Path | None) -> None:
    """Write one marker into the registry entry and into the journal, where there is one."""
    for folder in (entry, os.environ.get(JOURNAL_ENV)):
        if folder:
            with contextlib.suppress(OSError):
                _touch(Path(folder) / name)


def _acquire() -> None:
    """Open this process's registry entry (once; counted)."""
    global _holds, _entry
    with _lock:
        _holds += 1
        if _entry is None and (root := registry_root()) is not None:
            entry = root / f"{_boot_id()}-{_pid}-{_proc_start(_pid)}"
            with contextlib.suppress(OSError):
                entry.mkdir(exist_ok=True)
                _entry = entry


def _release() -> None:
    """Close a hold; the last one removes the entry (everything it lists was stopped)."""
    global _holds, _entry
    with _lock:
        _holds -= 1
        if _holds == 0 and _entry is not None:
            shutil.rmtree(_entry, ignore_errors=True)
            _entry = None
            _recorded.clear()


def _record_segments() -> None:
    """List the shared memory segments of the live Lava runtimes in the registry entry."""
    if _entry is None and not os.environ.get(JOURNAL_ENV):
        return
    for process in list(_live):
        infra = getattr(getattr(process, "runtime", None), "_messaging_infrastructure", None)
        for handle in list(getattr(getattr(infra, "smm", None), "_shared_memory_handles", ())):
            name = getattr(handle, "name", "")
            if name in _recorded or not _SEGMENT.fullmatch(name):
                continue
            with contextlib.suppress(OSError):
                _mark(f"segment-{name}-{os.stat(f'/dev/shm/{name}').st_ino}", _entry)
                _recorded.add(name)


def _after_fork_in_child() -> None:
    """In a forked child: die with the forking thread if it runs Lava; forget the parent's runs."""
    global _entry, _pid, _holds, _lock
    armed, entry, parent = threading.get_ident() in _runs, _entry, _pid
    _pid, _lock = os.getpid(), threading.Lock()   # another thread may have held it at fork
    _live.clear()
    _runs.clear()
    _recorded.clear()
    _entry, _holds = None, 0
    if not armed:
        return
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:             # the parent died before prctl took effect
        os.kill(_pid, signal.SIGKILL)
    _mark(f"worker-{_pid}-{_proc_start(_pid)}", entry)


def _after_fork_in_parent() -> None:
    if threading.get_ident() in _runs:     # Lava creates its segments before it forks actors
        _record_segments()


os.register_at_fork(after_in_child=_after_fork_in_child, after_in_parent=_after_fork_in_parent)


def _owner_alive(entry_name: str) -> bool | None:
    """Whether the process that owns a registry entry runs; None for a name we did not write."""
    match = re.fullmatch(r"([0-9a-f]+)-([0-9]+)-([0-9]+)", entry_name)
    if match is None:
        return None
    boot, pid, start = match.group(1), int(match.group(2)), int(match.group(3))
    return boot == _boot_id() and _proc_start(pid) == start


def _remove_listed(marker: Path) -> str | None:
    """Undo one marker of a dead owner's entry; say what was removed, None if nothing."""
    kind, _, rest = marker.name.partition("-")
    if kind == "worker":
        pid, start = (int(v) for v in rest.split("-"))
        if _proc_start(pid) == start:
            os.kill(pid, signal.SIGKILL)
            return f"process {pid}"
    elif kind == "segment":
        name, ino = rest.rsplit("-", 1)
        path = Path("/dev/shm", name)
        if _SEGMENT.fullmatch(name) and os.stat(path).st_ino == int(ino):
            path.unlink()
            return str(path)
    elif kind == "path" and not marker.name.endswith(".tmp"):
        path = Path(marker.read_text())
        if path.is_absolute() and path.name.startswith("neurodeploy-") and path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            return str(path)
    return None


def surviving(folder: str | Path) -> list[str]:
    """What the markers in a registry entry or journal list that still exists: workers that
    run with their recorded start time (zombies count as gone), segments with their recorded
    inode. Another program's processes and segments are never listed, so never reported."""
    left = []
    with contextlib.suppress(OSError):
        for marker in sorted(Path(folder).iterdir()):
            kind, _, rest = marker.name.partition("-")
            with contextlib.suppress(OSError, ValueError):
                if kind == "worker":
                    pid, start = (int(v) for v in rest.split("-"))
                    if _proc_start(pid) == start:
                        left.append(f"process {pid}")
                elif kind == "segment":
                    name, ino = rest.rsplit("-", 1)
                    if _SEGMENT.fullmatch(name) and os.stat(f"/dev/shm/{name}").st_ino == int(ino):
                        left.append(f"/dev/shm/{name}")
    return left


def clean_orphans(root: Path | None = None) -> list[str]:
    """Remove what runs killed without cleaning up left (their owner is gone); return it.

    Only entries whose owner process provably no longer runs are touched, and in them only
    workers that still have their recorded start time and segments with their recorded inode.
    """
    root = root or registry_root()
    removed: list[str] = []
    if root is None:
        return removed
    with contextlib.suppress(OSError):
        for entry in sorted(root.iterdir()):
            if not entry.is_dir() or entry.is_symlink() or _owner_alive(entry.name) is not False:
                continue
            with contextlib.suppress(OSError):
                for marker in sorted(entry.iterdir()):   # segment and worker markers
                    with contextlib.suppress(OSError, ValueError):
                        if (what := _remove_listed(marker)) is not None:
                            removed.append(what)
                    with contextlib.suppress(OSError):
                        marker.unlink()
                entry.rmdir()
    return removed


@contextlib.contextmanager
def run_tempdir(prefix: str = "neurodeploy-") -> Iterator[Path]:
    """A temporary directory that a later run removes if this process is killed with kill -9."""
    if not prefix.startswith("neurodeploy-"):
        raise ValueError(f"run_tempdir prefix {prefix!r} must start with 'neurodeploy-'")
    _acquire()
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            if _entry is not None:
                with contextlib.suppress(OSError):
                    marker = _entry / f"path-{Path(tmp).name}"
                    partial = marker.parent / f"{marker.name}.tmp"
                    partial.write_text(tmp)
                    partial.replace(marker)                      # never half a path
            yield Path(tmp)
    finally:
        _release()


def _force_stop(process) -> None:
    """Kill the runtime's worker processes and free its shared memory, without its cooperation;
    then mark the runtime stopped, or its finaliser would wait at exit for the dead workers."""
    runtime = getattr(process, "runtime", None)
    infra = getattr(runtime, "_messaging_infrastructure", None)
    for actor in list(getattr(infra, "actors", [])):
        with contextlib.suppress(Exception):
            actor.kill()
            actor.join()
    with contextlib.suppress(Exception):
        infra.smm.shutdown()
    if runtime is not None:
        runtime._is_started = runtime._is_running = False


def dead_workers(process) -> list:
    """The runtime's worker processes (Lava's actors) that have exited."""
    infra = getattr(getattr(process, "runtime", None), "_messaging_infrastructure", None)
    dead = []
    for actor in list(getattr(infra, "actors", [])):
        with contextlib.suppress(ValueError):        # a joined (closed) actor: stopped by us
            if actor.exitcode is not None:
                dead.append(actor)
    return dead


def _stop(process, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop once, also after a failed compile or start. A runtime left mid-step, with a dead
    worker, or after a watchdog's fault is torn down at once (Lava's stop would wait forever);
    one that does not answer a stop within `timeout` too."""
    if process not in _live:
        return
    _live.remove(process)
    runtime = getattr(process, "runtime", None)
    if runtime is None:
        return
    if _faults or getattr(runtime, "_is_running", False) or dead_workers(process):
        _force_stop(process)
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


def _interrupt(signum, _frame):
    """SIGINT/SIGTERM inside running(): raise now (the runtime is then torn down), or, while a
    runtime is being torn down, once that is done. A SIGINT sent by interrupt_run raises the
    watchdog's error instead."""
    if _teardown:
        _pending.append(signum)
        return
    if _faults:
        raise _faults[0]
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt(f"signal {signum}")


class Terminated(SystemExit):
    """SIGTERM during a Lava run: unwinds like Ctrl-C (every runtime stopped, every temporary
    removed on the way out), then the process exits 143 = 128 + SIGTERM, the status a shell
    reports for a process ended by SIGTERM (130 would say Ctrl-C)."""

    def __init__(self):
        super().__init__(128 + signal.SIGTERM)


def interrupt_run(error: BaseException, process=None) -> None:
    """From a watchdog thread: make the thread inside running() raise `error` now, even inside
    a blocking Lava call. The main thread is interrupted by a SIGINT to it, which `_interrupt`
    turns into `error`. Another thread cannot be signalled: the runtime (`process`) is torn down
    and its waits are woken, so that its run returns and `interruption_point()` raises. The
    first error is kept; call again until the thread has left the run: a handler's exception
    raised where Python ignores exceptions (an at-fork hook, a finaliser) is lost."""
    if not _faults:
        _faults.append(error)
    thread = _run_thread
    if thread is None:
        return
    if thread == threading.main_thread().ident:
        signal.pthread_kill(thread, signal.SIGINT)
        return
    if process is not None:
        _force_stop(process)
        for port in getattr(process.runtime, "service_to_runtime", ()):
            with contextlib.suppress(Exception):       # wake Lava's wait for its answers
                port._queue.put_nowait(0)
                if port.observer:
                    port.observer()


def interruption_point() -> None:
    """Raise a watchdog's error, KeyboardInterrupt (SIGINT) or Terminated (SIGTERM) here if one
    is waiting (signals to the main thread raise at once; this serves other threads and
    records the shared memory segments made so far)."""
    _record_segments()
    if _faults:
        raise _faults[0]
    if _pending:
        signum = _pending.pop()
        _pending.clear()
        if signum == signal.SIGTERM:
            raise Terminated()
        raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def running(process) -> Iterator[None]:
    """Context for a Lava process that will be run: its runtime is always stopped on exit.

    Ctrl-C and SIGTERM raise at any moment inside it; the runtime is stopped on success,
    error or interrupt, and torn down at once if it was left mid-step. Signals that arrive
    while it is being stopped are raised after. Processes this thread forks meanwhile die with
    it, and are listed in the registry of runs.
    """
    global _run_thread, _teardown
    clean_orphans()
    ident = threading.get_ident()
    _acquire()
    _runs[ident] = _runs.get(ident, 0) + 1
    _live.append(process)
    _faults.clear()
    _pending.clear()
    outer, _run_thread = _run_thread, ident
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    finished = False
    try:
        yield
        finished = True
    finally:
        _teardown += 1
        try:
            _stop(process)
        finally:
            _run_thread = outer
            fault = _faults[0] if _faults else None
            _faults.clear()
            _runs[ident] -= 1
            if not _runs[ident]:
                del _runs[ident]
            _release()
            _teardown -= 1
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if finished and fault is not None:
            raise fault
        if finished:
            interruption_point()      # a signal that arrived while the runtime was stopped


atexit.register(stop_all)
