"""An interrupted or killed Lava run stops cleanly: it exits, and leaves no workers and no
shared memory; what a killed run left is cleaned up by the next, and nothing else.

Only the processes and segments of the run under test are looked at (its session, its journal
of runs), never all of /dev/shm. Waits are for events (a line on stderr, a process exit) with
limits that only catch hangs, so a loaded machine cannot fail these tests."""
import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import types
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path

import pytest

from neurodeploy.backends import lava_runtime

pytestmark = [pytest.mark.lava, pytest.mark.slow]     # Lava runs stopped by signals

SCRIPT = """
import numpy as np
from neurodeploy.backends.lava import simulate_lava
x = (np.random.default_rng(0).random((50000, 16, 64)) < 0.2).astype(np.uint8)
simulate_lava({net!r}, x)
"""


HANG_S = 300     # a stop takes seconds; a limit this long only catches a hang


def _wait_exit(pids, timeout=HANG_S):
    """Block until each process has exited: a pidfd turns readable at its exit (an event, not a
    poll; Linux >= 5.3). Returns the pids still running at the limit."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)
    return [pid for pid in pids if lava_runtime._proc_start(pid) is not None]


def _journal(tmp_path):
    """A journal of runs of its own for the subprocess: lists its workers and segments."""
    journal = tmp_path / "journal"
    journal.mkdir()
    return journal, {**os.environ, lava_runtime.JOURNAL_ENV: str(journal)}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_a_lava_run_stops_it_cleanly(sig, tmp_path):
    net = str(Path(__file__).parent.parent / "export" / "digits" / "network.net")
    journal, env = _journal(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(net=net)], env=env,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        seen = ""
        while not re.search(r"\dsample/s", seen):  # a measured rate: the run is underway
            chunk = proc.stderr.read(64)
            assert chunk, f"simulation ended before it could be interrupted: {seen[-500:]}"
            seen += chunk
        proc.send_signal(sig)
        proc.communicate(timeout=HANG_S)
        left = _wait_exit(_session(proc.pid))  # multiprocessing's resource tracker exits last
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert not left, f"Lava workers survived the interrupt: {left}"
    listed = {m.name.split("-")[0] for m in journal.iterdir()}
    assert listed == {"worker", "segment"}, f"the run registered no workers or segments: {listed}"
    assert not lava_runtime.surviving(journal), "the run left workers or shared memory behind"


def _mapped(pids, pattern):
    """Paths matching `pattern` that the processes have mapped (their segments, memmaps)."""
    paths = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            paths.update(m.group(0) for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
                         if (m := re.search(pattern, line)))
    return paths


def _session(sid):
    """The processes of a session (the test starts the run in a session of its own); zombies
    waiting for their reaper have exited and are left out."""
    out = subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if lava_runtime._proc_start(int(p)) is not None]


def test_kill9_during_a_lava_run_leaves_no_worker_and_no_segment(tmp_path):
    """Nothing of ours runs after SIGKILL: workers die with their parent (PR_SET_PDEATHSIG),
    the resource tracker then unlinks the segments; the run's registry entry lists them all."""
    net = str(Path(__file__).parent.parent / "export" / "digits" / "network.net")
    log, tempdirs = tmp_path / "stderr.txt", set()
    with open(log, "w") as err:        # a file, not a pipe: closing it must not kill anyone
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(net=net)], stderr=err,
                                start_new_session=True)
    try:
        while not re.search(r"\dsample/s", log.read_text()):   # a measured rate: underway
            assert proc.poll() is None, f"simulation ended early: {log.read_text()[-500:]}"
            time.sleep(0.2)
        pids = _session(proc.pid)
        segments = {p.rsplit("/", 1)[1] for p in _mapped(pids, r"/dev/shm/psm_\w+")}
        tempdirs = _mapped(pids, r"/\S*/neurodeploy-lava-\w+")   # lava.py's memmaps
        entries = [e for e in lava_runtime.registry_root().iterdir()
                   if e.name.split("-")[1:2] == [str(proc.pid)]]
        assert len(entries) == 1, "the run has no registry entry"
        listed = {m.name for m in entries[0].iterdir()}
        workers = {int(m.split("-")[1]) for m in listed if m.startswith("worker-")}
        assert workers and workers <= set(pids), (workers, pids)
        assert segments and {f"segment-{s}" for s in segments} <= {
            m.rsplit("-", 1)[0] for m in listed}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # workers die with their parent; the resource tracker unlinks the segments, then exits
        left = _wait_exit(_session(proc.pid))
        assert not left, f"Lava workers outlived kill -9: {left}"
        assert not _existing(segments), "shared memory segments outlived kill -9"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    lava_runtime.clean_orphans()             # what the next run does on entering running()
    assert not entries[0].exists(), "the dead run's registry entry was not removed"
    left = [path for path in tempdirs if os.path.exists(path)]
    for path in left:
        shutil.rmtree(path, ignore_errors=True)
    assert tempdirs and not left, f"the dead run's temporary directory was not removed: {left}"


def _existing(segments):
    return {s for s in segments if os.path.exists(f"/dev/shm/{s}")}


def _reaped_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _entry(root, pid, start):
    entry = root / f"{lava_runtime._boot_id()}-{pid}-{start}"
    entry.mkdir(parents=True)
    return entry


def _segment():
    """A real POSIX shared memory segment, not tracked by this process (as if made elsewhere)."""
    shm = shared_memory.SharedMemory(create=True, size=64)
    resource_tracker.unregister(shm._name, "shared_memory")
    shm.close()
    return shm.name, os.stat(f"/dev/shm/{shm.name}").st_ino


def test_orphan_clean_up_removes_only_what_dead_owners_left(tmp_path):
    root = tmp_path / "registry"
    sleepers = [subprocess.Popen(["sleep", "120"]) for _ in range(3)]
    segments = [_segment() for _ in range(4)]
    kept_dir = tmp_path / "neurodeploy-kept"
    gone_dir = tmp_path / "neurodeploy-gone"
    kept_dir.mkdir(), gone_dir.mkdir()
    try:
        starts = [lava_runtime._proc_start(p.pid) for p in sleepers]
        dead = _entry(root, _reaped_pid(), 12345)        # owner gone: everything listed goes
        (dead / f"worker-{sleepers[0].pid}-{starts[0]}").touch()
        (dead / f"worker-{sleepers[1].pid}-{starts[1] + 1}").touch()   # pid reused: spared
        (dead / f"segment-{segments[0][0]}-{segments[0][1]}").touch()
        (dead / f"segment-{segments[1][0]}-{segments[1][1] + 1}").touch()  # name reused: spared
        (dead / "path-x").write_text(str(gone_dir))
        me = os.getpid()
        alive = _entry(root, me, lava_runtime._proc_start(me))   # owner runs: untouched
        (alive / f"worker-{sleepers[2].pid}-{starts[2]}").touch()
        (alive / f"segment-{segments[2][0]}-{segments[2][1]}").touch()
        (alive / "path-y").write_text(str(kept_dir))
        stranger = root / "not-an-entry"                   # not ours to judge: untouched
        stranger.mkdir()
        (stranger / f"segment-{segments[3][0]}-{segments[3][1]}").touch()

        removed = lava_runtime.clean_orphans(root)

        assert sorted(removed) == sorted([f"process {sleepers[0].pid}",
                                          f"/dev/shm/{segments[0][0]}", str(gone_dir)])
        assert sleepers[0].wait(timeout=HANG_S) == -signal.SIGKILL
        assert sleepers[1].poll() is None and sleepers[2].poll() is None
        assert _existing([s for s, _ in segments]) == {s for s, _ in segments[1:]}
        assert not dead.exists() and not gone_dir.exists()
        assert len(list(alive.iterdir())) == 3 and kept_dir.exists() and stranger.exists()
    finally:
        for proc in sleepers:
            proc.kill()
            proc.wait()
        for name, _ in segments:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"/dev/shm/{name}")


def test_registry_entry_lives_exactly_as_long_as_the_run():
    """running() opens this process's entry and removes it on exit, also after an error."""
    me = os.getpid()
    name = f"{lava_runtime._boot_id()}-{me}-{lava_runtime._proc_start(me)}"
    with pytest.raises(RuntimeError), lava_runtime.running(types.SimpleNamespace(runtime=None)):
        assert (lava_runtime.registry_root() / name).is_dir()
        raise RuntimeError("boom")
    assert not (lava_runtime.registry_root() / name).exists()
    with lava_runtime.run_tempdir("neurodeploy-test-") as tmp:
        markers = list((lava_runtime.registry_root() / name).iterdir())
        assert [m.read_text() for m in markers] == [str(tmp)]
    assert not (lava_runtime.registry_root() / name).exists() and not tmp.exists()


# A run whose worker dies, or whose worker hangs, ends in one line (the watchdog), within a
# bound that only catches a hang (it used to run forever), leaving nothing behind.
BAD_NETWORK = """
import sys
import neurodeploy.backends.lava as lava
lava.lava_file = lambda net, meta, source, folder: source   # lava-dl reads the file as it is
from neurodeploy.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _faulted(tmp_path, argv, script=None, act=None, env=None):
    """Run the CLI (or `script`) in its own session with a private TMPDIR and journal; once the
    run is underway (its input source's clock has moved), `act(worker pids)`; return the exit
    code and stderr after checking that nothing is left behind."""
    journal, full_env = _journal(tmp_path)
    private = tmp_path / "tmp"
    private.mkdir()
    full_env = {**full_env, "TMPDIR": str(private), **(env or {})}
    log = tmp_path / "stderr.txt"
    command = [sys.executable, "-c", script or "import sys; from neurodeploy.cli import main; sys.exit(main())", *argv]
    with open(log, "w") as err:
        proc = subprocess.Popen(command, stderr=err, stdout=subprocess.DEVNULL, env=full_env,
                                start_new_session=True)
    try:
        if act is not None:
            while not any(c.stat().st_size and int.from_bytes(c.read_bytes(), "little") > 50
                          for c in private.glob("neurodeploy-lava-*/clock.i64")):
                assert proc.poll() is None, f"the run ended early: {log.read_text()[-500:]}"
                time.sleep(0.1)
            workers = sorted((m.name.split("-")[1:] for m in journal.glob("worker-*")),
                             key=lambda w: int(w[1]))
            act([int(pid) for pid, _ in workers])
        proc.wait(timeout=HANG_S)
        left = _wait_exit(_session(proc.pid))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert not left, f"Lava workers outlived the run: {left}"
    assert not lava_runtime.surviving(journal), "the run left workers or shared memory behind"
    assert not list(private.iterdir()), "the run left temporary files behind"
    return proc.returncode, log.read_text()


def _one_line(stderr):
    errors = [line for line in stderr.splitlines() if line.startswith("neurodeploy: error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-2000:]
    return errors[0]


def test_a_lava_worker_killed_mid_run_ends_the_run_in_one_line(tmp_path):
    net = str(Path(__file__).parent.parent / "export" / "digits" / "network.net")
    code, err = _faulted(tmp_path, ["simulate", net, "--backend", "lava", "--chunk", "400",
                                    "--out", str(tmp_path / "out")],
                         act=lambda workers: os.kill(workers[-2], signal.SIGKILL))
    assert code == 2
    assert re.search(r"Lava worker died while running .*\(killed by SIGKILL\) after \d+ of \d+ "
                     "samples", _one_line(err))


def test_a_network_that_makes_lava_workers_die_ends_parity_in_one_line(tmp_path):
    """A whole-number float decay handed to lava-dl as it is (what the backend did before it
    wrote a canonical copy): Lava's LIF worker raises and exits; the run used to hang."""
    import h5py
    net = tmp_path / "float-decay.net"
    shutil.copy(Path(__file__).parent.parent / "export" / "digits" / "network.net", net)
    with h5py.File(net, "r+") as f:
        del f["layer/1/neuron/iDecay"]
        f["layer/1/neuron/iDecay"] = 1024.0
    code, err = _faulted(tmp_path, ["parity", str(net), "--backends", "torch,lava", "--samples",
                                    "5", "--out", str(tmp_path / "out")], script=BAD_NETWORK)
    assert code == 2
    assert "Lava worker died while running layer fc0 (LIFReset) (TypeError:" in _one_line(err)


def test_a_stuck_lava_worker_ends_the_run_in_one_line(tmp_path):
    """A stopped (SIGSTOP) worker neither dies nor progresses: the stall bound ends the run."""
    net = str(Path(__file__).parent.parent / "export" / "digits" / "network.net")
    code, err = _faulted(tmp_path, ["simulate", net, "--backend", "lava", "--chunk", "400",
                                    "--out", str(tmp_path / "out")],
                         act=lambda workers: os.kill(workers[-2], signal.SIGSTOP),
                         env={"NEURODEPLOY_LAVA_STALL_S": "2"})
    assert code == 2
    assert re.search(r"no progress for 2 s after \d+ of \d+ samples", _one_line(err))
