"""An interrupted Lava run stops cleanly: prompt exit, no workers, no shared memory left."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import numpy as np
from neurodeploy.backends.lava import simulate_lava
x = (np.random.default_rng(0).random((50000, 16, 64)) < 0.2).astype(np.uint8)
simulate_lava({net!r}, x)
"""


def _psm():
    return {f for f in os.listdir("/dev/shm") if f.startswith("psm_")}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_a_lava_run_stops_it_cleanly(sig):
    net = str(Path(__file__).parent.parent / "export" / "digits" / "network.net")
    before = _psm()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(net=net)],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = ""
    while "sample/s" not in seen:               # the progress bar shows the run is underway
        chunk = proc.stderr.read(64)
        assert chunk, f"simulation ended before it could be interrupted: {seen[-500:]}"
        seen += chunk
    time.sleep(1.0)
    start = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert time.monotonic() - start < 60
    deadline = time.monotonic() + 10       # multiprocessing's resource tracker exits last
    while (left := subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"Lava workers survived the interrupt: {left}"
    assert _psm() - before == set(), "shared memory segments leaked"
