"""Session-wide safety net: no Lava runtime, worker or shared-memory segment that this test
run started outlives it. Only what its own runs registered is checked (compat's journal of
runs), so another program's `psm_*` segments or processes on the machine cannot fail it."""
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import settings

from neurodeploy.compat import JOURNAL_ENV, stop_all, surviving

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
