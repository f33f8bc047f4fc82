"""Deploy the committed export/ artifacts on every available backend.

Lava's CPU simulation always runs; Loihi 2 runs where Intel's lava-loihi extension is
installed (elsewhere the test is skipped with the exact reason). Each deployment must match the
exact mode spike for spike, and the exact mode must reproduce the manifest's accuracy on the
whole test split. Large test splits are deployed on their first SAMPLES samples to keep the
suite short (the full Fashion-MNIST run on Lava is measured in benchmarks/): spike-for-spike
agreement there plus the exact mode's accuracy on every sample is what the manifest claims.
"""
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from neurodeploy.backends.lava import loihi2_missing
from neurodeploy.errors import UserError
from neurodeploy.netx import read_netx
from neurodeploy.parity import compare
from neurodeploy.inputs import encoded_test_split
from neurodeploy.simulation import simulate

pytestmark = pytest.mark.lava

EXPORTS = sorted(p.parent for p in (Path(__file__).parent.parent / "export").glob("*/manifest.json"))
SAMPLES = 400


def _backends():
    yield "lava"
    missing = loihi2_missing()
    yield pytest.param("loihi2", marks=pytest.mark.skipif(missing is not None, reason=missing or ""))


@pytest.mark.parametrize("backend", list(_backends()))
@pytest.mark.parametrize("export", EXPORTS, ids=[p.name for p in EXPORTS])
def test_exported_network_deploys_with_manifest_accuracy(export, backend):
    manifest = json.loads((export / "manifest.json").read_text())
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((export / name).read_bytes()).hexdigest() == digest, name
    net, meta = read_netx(export / "network.net")
    try:
        spikes, labels = encoded_test_split(meta)
    except UserError as e:                      # e.g. Fashion-MNIST not installed here
        pytest.skip(str(e))
    assert len(labels) == manifest["accuracy"]["samples"]
    exact = simulate(export / "network.net", spikes, "torch")      # every sample: fast
    assert exact.accuracy(labels) == manifest["accuracy"]["deployed_exact"]
    head = slice(0, SAMPLES)
    deployed = simulate(export / "network.net", spikes[head], backend, progress=False)
    first = dataclasses.replace(exact, inputs=exact.inputs[head],
                                layers=[s[head] for s in exact.layers],
                                readout=None if exact.readout is None else exact.readout[head])
    result = compare(first, deployed, labels[head])
    assert result["spike_mismatches"] == 0, result["first_mismatch"]
    assert result["readout_voltage_mismatches"] == (None if exact.readout is None else 0)


def test_there_is_something_to_deploy():
    assert any(p.name == "digits" for p in EXPORTS)
