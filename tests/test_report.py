"""report.json and the HTML pages: what a person reads must be true and consistent.

The headline compares the SNN with the same architecture as an INT8 ANN whichever way the ratio
goes; labels say what was counted (neuron-steps, not spikes); the resource table's synapses add
up to the summary's; every page says what made it (provenance) and links to files that exist."""
import json
import re

import numpy as np
import pytest
import torch

from neurodeploy.backends.emulator import simulate_emulator
from neurodeploy.backends.float_mode import simulate_float
from neurodeploy.backends.record import provenance
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.cli import main
from neurodeploy.energy.report_file import read_report
from neurodeploy.netx import write_netx
from neurodeploy.neurons import CubaParams, SpikingNet
from neurodeploy.report import write_html
from neurodeploy.report.html import _ratio
from neurodeploy.report.summary import report

P = CubaParams(1024, 256, 128)


def _inputs():
    return np.random.default_rng(1).random((12, 8, 20)) < 0.4, np.arange(12) % 5


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    torch.manual_seed(0)
    net = SpikingNet((20,), 5, [P, P], hidden=[16]).to_integer()
    write_netx(net, tmp / "network.net")
    spikes, labels = _inputs()
    ref = simulate_torch(net, spikes)
    deployed = simulate_emulator(tmp / "network.net", spikes, progress=False)
    synapses = int(sum((layer.weight != 0).sum() for layer in net.layers))
    result = report(net, ref, deployed, labels, "loihi1-davies2018", extra={
        "recipe": "tiny", "backend": deployed.backend, "accuracy": {"teacher": None},
        "network": {"sizes": net.sizes, "synapses": synapses, "sha256": "x"},
        "provenance": provenance(tmp / "network.net", spikes, labels, "emulator"),
        "artifacts": {"netx": "network.net", "checkpoint": "checkpoint.pt"}})
    (tmp / "report.json").write_text(json.dumps(result, allow_nan=False))
    write_html(result, tmp)
    return tmp, result, net


@pytest.mark.slow
def test_report_json_has_float_parity_and_neurobench(made):
    tmp, result, net = made
    read_report(tmp / "report.json")                  # the schema still accepts it
    source = result["source_parity"]
    spikes, labels = _inputs()
    floated = simulate_float(net, spikes)
    deployed = simulate_emulator(tmp / "network.net", spikes, progress=False)
    assert source["backends"] == ["float", deployed.backend]
    assert source["prediction_agreement"] == (floated.predictions == deployed.predictions).mean()
    assert result["accuracy"]["student_float"] == floated.accuracy(labels)
    nb = result["neurobench"]
    assert nb["SynapticOperations"]["Effective_ACs"] == pytest.approx(
        sum(map(sum, result["counts"]["synaptic_ops"])))
    assert nb["ConnectionSparsity"] == pytest.approx(
        1 - result["network"]["synapses"] / sum(layer.weight.size for layer in net.layers))
    assert set(result["generated"]) == {"date", "versions"}


def test_page_headline_labels_resources_provenance_and_links(made):
    tmp, result, net = made
    page = (tmp / "report.html").read_text()
    head = page[:page.index("Where the energy comes from")]
    assert re.search(r"(ANN|SNN) is [\d.]+x cheaper</b> <span class='muted'>compute only", head)
    assert "memory-aware: SNN" in head and "INT8 ANN" in head
    assert "neuron-steps compared" in page and "spikes compared" not in page
    assert "Why the first T' read chance" in page and "output spikes per inference at t = 0" in page
    total = re.search(r"<td class=\"t\">total</td>(.*?)</tr>", page).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", total)
    assert cells[2] == f"{result['network']['synapses']:,}"            # non-zero column
    assert f"summary's {result['network']['synapses']:,} synapses" in page
    for text in (result["provenance"]["network_sha256"], result["provenance"]["inputs_sha256"],
                 "version: torch", "T (timesteps)", "Distance from the model as trained",
                 "NeuroBench metrics"):
        assert text in page, text
    links = re.findall(r'<a href="([^"]+)">', page)
    assert "network.net" in links and "report.json" in links
    assert "checkpoint.pt" not in links               # not there: no dead link
    assert all((tmp / link).exists() for link in links)


def test_float_parity_measures_the_deployed_record(made):
    """A deployed record whose outputs moved away from the model as trained shows it: agreement,
    accuracies and where divergence starts, as computed here from the two records."""
    tmp, _, net = made
    spikes, labels = _inputs()
    deployed = simulate_emulator(tmp / "network.net", spikes, progress=False)
    out = deployed.layers[-1] = deployed.layers[-1].copy()
    out[:5] = False
    out[:5, :, 4] = True                               # samples 0-4 now predict class 4
    floated = simulate_float(net, spikes)
    source = report(net, simulate_torch(net, spikes), deployed, labels, "loihi1-davies2018",
                    extra={"recipe": "tiny", "backend": deployed.backend})["source_parity"]
    agreement = (floated.predictions == deployed.predictions).mean()
    assert 0 < agreement < 1 and source["prediction_agreement"] == agreement
    assert source["accuracy"] == {"float": floated.accuracy(labels),
                                  deployed.backend: deployed.accuracy(labels)}
    assert source["divergence_starts_at"] == "fc1"


@pytest.mark.parametrize("snn, ann, text", [(46.0, 1.0, "ANN is 46x cheaper"),
                                            (1.0, 3.0, "SNN is 3x cheaper"),
                                            (0.0, 1.0, "not comparable")])
def test_ratio_reads_whichever_way_it_goes(snn, ann, text):
    assert _ratio(snn, ann) == text


def test_simulate_writes_its_page_next_to_its_json(made, tmp_path):
    src, _, _ = made
    spikes = np.random.default_rng(3).random((6, 8, 20)) < 0.4
    np.savez(tmp_path / "x.npz", x=spikes.astype(np.uint8), y=np.arange(6) % 5)
    assert main(["simulate", str(src / "network.net"), "--backend", "float", "--data",
                 str(tmp_path / "x.npz"), "--out", str(tmp_path / "s"), "-q"]) == 0
    page = (tmp_path / "s" / "report.html").read_text()
    result = json.loads((tmp_path / "s" / "simulate.json").read_text())
    assert result["backend"] == "float" and result["provenance"]["backend"] == "float"
    assert result["provenance"]["inputs_sha256"] in page and "simulate.json" in page
    assert (tmp_path / "s" / "spikes_per_layer.png").read_bytes()[:4] == b"\x89PNG"


def test_an_old_report_naming_the_deployed_accuracy_student_lava_still_reads():
    """report.json called the deployed accuracy `student_lava` whatever backend ran it; it is
    `student_deployed` now, and both read."""
    from neurodeploy.report.summary import deployed_accuracy
    assert deployed_accuracy({"accuracy": {"student_lava": 0.9}}) == 0.9
    assert deployed_accuracy({"accuracy": {"student_deployed": 0.8, "student_lava": 0.1}}) == 0.8
