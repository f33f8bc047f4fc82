"""The GPU campaign (benchmarks/gpu.py) cannot rot: its dry run, the same plumbing with the CPU
standing in for the GPU, runs here; the checks that need CUDA skip cleanly without it."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurodeploy.netx import read_netx
from neurodeploy.parity import compare
from neurodeploy.simulation import simulate

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.lava
@pytest.mark.slow
def test_dry_run_measures_every_check_with_zero_mismatches(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--dry-run",
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    names = [c["check"] for c in result["checks"]]
    assert {"export/digits", "export/fmnist_conv", "ddp distill (1 process)",
            "tune braille_noDelay_noBias_subtract"} <= set(names)
    assert any(n.startswith("corpus/") for n in names)
    assert result["dry_run"] and result["machine"]["device"] == "cpu"
    exported = next(c for c in result["checks"] if c["check"] == "export/digits")
    assert set(exported["mismatches"].values()) == {0}
    assert {"torch (gpu)", "emulator (gpu)", "float (gpu)", "lava (cpu)"} <= set(
        exported["samples_per_s"])
    tuned = next(c for c in result["checks"] if c["check"].startswith("tune "))
    assert all(0 <= tuned[where]["agreement"] <= 1 and tuned[where]["seconds"] > 0
               for where in ("cpu", "gpu"))


@pytest.mark.gpu                  # skipped without CUDA (conftest.py)
@pytest.mark.parametrize("name", ["tiny", "bootstrap_mnist", "pilotnet_lif"])
def test_cuda_exact_mode_equals_cpu_on_lava_dl_networks(name):
    path = ROOT / "tests" / "data" / "lava_dl" / f"{name}.net"
    net, _ = read_netx(path)
    spikes = np.random.default_rng(0).random((8, 8, net.input_size)) < 0.3
    labels = np.zeros(8, dtype=np.int64)
    cpu, gpu = (simulate(path, spikes, "torch", progress=False, device=d) for d in ("cpu", "cuda"))
    pair = compare(cpu, gpu, labels)
    assert pair["spike_mismatches"] == 0 and not pair["readout_voltage_mismatches"]
