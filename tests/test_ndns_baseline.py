"""Intel's N-DNS baseline pair (tests/data/intel_ndns/, MIT, see SOURCES.md there): a trained
SDNN 257-512-512-257 with axonal delays up to 64 and its no-delay twin, fed STFT frames shaped
as its encoder makes them: inspect, simulate and energy work, and Lava agrees message for
message (benchmarks/netx_corpus.py measures more steps)."""
import json
from pathlib import Path

import numpy as np
import pytest

import netx_corpus                   # benchmarks/ (pytest puts it on the path)
from neurodeploy.cli import main

DATA = Path(__file__).parent / "data" / "intel_ndns"
CLAMPED = "layer 2: 1 delay of 64 clamped to 62, as netx does"


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    path = tmp_path_factory.mktemp("ndns") / "x.npz"
    np.savez(path, x=netx_corpus.ndns_frames(1, 12))
    return path


@pytest.mark.parametrize("name,warning", [          # the delays' exact mode: ~5 s on 2 cores
    ("ndns_nodelay", None), pytest.param("ndns_delays", CLAMPED, marks=pytest.mark.slow)])
def test_inspect_simulate_and_energy(tmp_path, capsys, frames, name, warning):
    path = DATA / f"{name}.net"
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fits one Loihi 2 chip (4 of 128 cores)" in out
    assert (f"warning: {warning}" in out) if warning else "warning" not in out
    assert main(["simulate", str(path), "--backend", "torch", "--data", str(frames),
                 "--out", str(tmp_path / "s"), "-q"]) == 0
    record = json.loads((tmp_path / "s" / "simulate.json").read_text())
    assert record["warnings"] == ([warning] if warning else [])
    assert all(record["messages_per_layer"].values())        # every layer sends messages
    assert "sigma-delta" in (tmp_path / "s" / "report.html").read_text()   # a page, as CUBA's
    assert main(["energy", str(tmp_path / "s" / "simulate.json"), "--preset", "loihi2-proxy",
                 "--out", str(tmp_path / "e"), "-q"]) == 0
    priced = json.loads((tmp_path / "e" / "energy-loihi2-proxy.json").read_text())
    assert priced["energy"]["per_inference_pj"] > 0


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("name,steps", [("ndns_nodelay", 12), ("ndns_delays", 70)])
def test_matches_lava(tmp_path, capsys, name, steps):
    """The delay network runs past its longest (clamped) delay of 62 steps."""
    np.savez(tmp_path / "x.npz", x=netx_corpus.ndns_frames(1, steps, seed=1))
    assert main(["parity", str(DATA / f"{name}.net"), "--backends", "torch,lava",
                 "--data", str(tmp_path / "x.npz"), "--out", str(tmp_path / "p"), "-q"]) == 0
    assert "lava vs torch: 0 message mismatches" in capsys.readouterr().out
