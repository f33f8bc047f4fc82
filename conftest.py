"""Session-wide safety net: no Lava runtime, worker or shared-memory segment outlives the tests."""
import multiprocessing
import os

import pytest
from hypothesis import settings

# Property-based tests explore new examples on every developer run; CI (CI=true) replays a
# fixed, derandomized set so that a green main stays green (a new finding fails a developer's
# run first, where it can be fixed).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def _psm_segments() -> set[str]:
    return {f for f in os.listdir("/dev/shm") if f.startswith("psm_")} if os.path.isdir("/dev/shm") else set()


@pytest.fixture(scope="session", autouse=True)
def no_lava_leftovers():
    before = _psm_segments()
    yield
    from neurodeploy.compat import stop_all
    stop_all()
    leaked = _psm_segments() - before
    children = multiprocessing.active_children()
    assert not leaked, f"Lava left shared-memory segments behind: {sorted(leaked)[:5]}"
    assert not children, f"Lava left worker processes behind: {children[:5]}"
