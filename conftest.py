"""Session-wide safety net: no Lava runtime, worker or shared-memory segment outlives the tests."""
import multiprocessing
import os

import pytest


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
