"""Session-wide safety net: no Lava runtime, worker or shared-memory segment that this test
run started outlives it. Only what its own runs registered is checked (lava_runtime's journal of
runs), so another program's `psm_*` segments or processes on the machine cannot fail it.
The same journal keeps the `lava` marker true: a test that starts a runtime without it fails,
so `make test-fast` (-m "not (lava or slow or fuzz or gpu)") never waits on Lava."""
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from neurodeploy.backends.lava_runtime import JOURNAL_ENV, stop_all, surviving

# Property-based tests explore new examples on every developer run; CI (CI=true) replays a
# fixed, derandomized set so that a green main stays green (a new finding fails a developer's
# run first, where it can be fixed).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Set before any test runs, so that Lava runs in this process and in the subprocesses that
# tests start (they inherit the environment) write their workers and segments here.
JOURNAL = Path(tempfile.mkdtemp(prefix="neurodeploy-test-journal-"))
os.environ[JOURNAL_ENV] = str(JOURNAL)
HANG_S = 120      # a stopped run's workers exit and segments go within seconds; this only catches hangs


@pytest.fixture(scope="session", autouse=True)
def no_lava_leftovers():
    yield
    stop_all()
    deadline = time.monotonic() + HANG_S
    while (left := surviving(JOURNAL)) and time.monotonic() < deadline:
        time.sleep(0.2)        # a killed run's resource tracker unlinks its segments last
    shutil.rmtree(JOURNAL, ignore_errors=True)
    assert not left, f"Lava runs of this session left workers or shared memory behind: {left[:5]}"


@pytest.hookimpl(tryfirst=True)      # before -m deselects, so these markers select too
def pytest_collection_modifyitems(items):
    """Markers that follow from what a test is: a property-based (hypothesis) test is `fuzz`;
    a `gpu` test is skipped where torch sees no CUDA device."""
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.fuzz)
        if item.get_closest_marker("gpu") and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="no CUDA device on this machine"))


def _runs() -> int:
    return len(os.listdir(JOURNAL)) if JOURNAL.is_dir() else 0


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_RUNS_BEFORE] = _runs()      # before its fixtures, which may start Lava too


def pytest_runtest_teardown(item):
    if _runs() > item.stash.get(_RUNS_BEFORE, 0) and not item.get_closest_marker("lava"):
        pytest.fail(f"{item.nodeid} started a Lava runtime (or a fixture it uses did): mark it "
                    "@pytest.mark.lava so that -m 'not lava' runs without Lava", pytrace=False)


_RUNS_BEFORE = pytest.StashKey[int]()
