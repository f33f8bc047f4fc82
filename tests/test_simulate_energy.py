"""`simulate` prices a user's CUBA network as `run` prices a distilled one, and `energy`
reprices the simulate.json it writes (the shipped digits network, a few samples)."""
import json
from pathlib import Path

import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.cli import build_parser, main
from neurodeploy.energy import PRESETS, load_preset, price
from neurodeploy.energy.counting import accuracy_by_timestep, count_events
from neurodeploy.energy.hardware import layer_table, resource_estimate
from neurodeploy.errors import UserError
from neurodeploy.netx import read_netx
from neurodeploy.inputs import load_inputs
from neurodeploy.report.summary import DEFAULT_PRESET, priced, report

DIGITS = Path(__file__).resolve().parent.parent / "export" / "digits" / "network.net"
SAMPLES = 6


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """simulate.json of the digits network on the torch backend, default preset."""
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", str(DIGITS), "--backend", "torch", "--samples", str(SAMPLES),
                 "--out", str(out), "-q"]) == 0
    return out / "simulate.json"


def _direct():
    """The same samples through the exact mode, counted and priced here by hand."""
    net, meta = read_netx(DIGITS)
    spikes, labels = load_inputs(meta, None, SAMPLES)
    record = simulate_torch(net, spikes)
    return net, record, labels


def test_run_default_preset_is_simulates_default():
    assert DEFAULT_PRESET == "loihi1-davies2018"
    verbs = build_parser()._subparsers._group_actions[0].choices
    assert DEFAULT_PRESET in verbs["simulate"].format_help()


def test_simulate_json_holds_the_priced_counts(simulated):
    result = json.loads(simulated.read_text())
    net, record, labels = _direct()
    counts = count_events(record, net)
    expected = price(counts, layer_table(net), load_preset(DEFAULT_PRESET),
                     accuracy_by_timestep(record, labels))
    energy = result["energy"]
    assert energy["preset"] == DEFAULT_PRESET and "Davies" in energy["source"]
    assert energy["per_inference_pj"] == pytest.approx(expected["energy"]["per_inference_pj"])
    assert energy["per_inference_pj"] > 0
    for key in ("dynamic_pj", "static_pj", "latency_us"):
        assert energy[key] == pytest.approx(expected["energy"][key])
    # per_timestep is per inference (counts are means over samples), as in report.json
    steps = result["per_timestep"]
    assert len(steps) == result["timesteps"] == record.timesteps
    assert sum(s["energy_pj"] for s in steps) == pytest.approx(energy["per_inference_pj"])
    assert [s["spikes"] for s in steps] == pytest.approx([s["spikes"] for s in
                                                          expected["per_timestep"]])
    assert [s["synaptic_ops"] for s in steps] == pytest.approx(
        counts["synaptic_ops"].sum(0).tolist())
    assert result["resources"] == json.loads(json.dumps(resource_estimate(layer_table(net))))
    for kind, table in counts.items():
        assert np.allclose(result["counts"][kind], table)
    assert result["counts"]["counted_from"] == record.backend


def test_simulate_and_run_price_one_record_identically(simulated):
    """report.json (run's path) and simulate.json agree section for section on one record."""
    result = json.loads(simulated.read_text())
    net, record, labels = _direct()
    ran = json.loads(json.dumps(report(net, record, record, labels, DEFAULT_PRESET)))
    for key in ("energy", "per_timestep", "timestep_sweep", "resources", "counts", "layers",
                "accuracy_by_timestep", "ann_baselines"):
        assert result[key] == ran[key], key


def test_simulate_summary_line_and_page(tmp_path, capsys):
    assert main(["simulate", str(DIGITS), "--backend", "torch", "--samples", "2",
                 "--preset", "loihi2-proxy", "--out", str(tmp_path), "-q"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if "energy" in ln.split()[:1]]
    assert len(line) == 1 and "per inference" in line[0] and "static" in line[0]
    assert "[loihi2-proxy:" in line[0]
    page = (tmp_path / "report.html").read_text()
    assert "Where the energy comes from (loihi2-proxy)" in page and "Loihi 2 cores" in page
    assert (tmp_path / "energy_per_timestep.png").stat().st_size > 0


def test_energy_reprices_a_simulate_json(simulated, capsys):
    out = simulated.parent
    assert main(["energy", str(simulated), "--preset", "loihi1-sanafe"]) == 0
    repriced = json.loads((out / "energy-loihi1-sanafe.json").read_text())
    saved = json.loads(simulated.read_text())
    expected = json.loads(json.dumps(priced(saved, PRESETS["loihi1-sanafe"])))
    assert repriced["energy"] == expected["energy"]
    assert repriced["per_timestep"] == expected["per_timestep"]
    assert repriced["energy"]["per_inference_pj"] != saved["energy"]["per_inference_pj"]
    # the API simulating with that preset gives the repriced numbers
    direct = api.simulate(DIGITS, backend="torch", samples=SAMPLES, preset="loihi1-sanafe")
    assert direct["energy"]["per_inference_pj"] == pytest.approx(
        repriced["energy"]["per_inference_pj"])
    assert main(["energy", str(simulated), "--network", str(DIGITS)]) == 0
    other = out / "other.net"
    other.write_bytes(b"x")
    assert main(["energy", str(simulated), "--network", str(other)]) == 2
    assert "made with a different network" in capsys.readouterr().err


@pytest.mark.lava
def test_lava_record_prices_as_the_exact_mode(simulated, tmp_path):
    """Lava's record is spike for spike the exact mode's, so its price is too."""
    assert main(["simulate", str(DIGITS), "--backend", "lava", "--samples", "2",
                 "--out", str(tmp_path), "-q"]) == 0
    lava = json.loads((tmp_path / "simulate.json").read_text())
    net, record, labels = _direct()
    first_two = record.__class__(record.backend, record.inputs[:2],
                                 [s[:2] for s in record.layers], record.layer_names,
                                 record.info,
                                 None if record.readout is None else record.readout[:2])
    expected = price(count_events(first_two, net), layer_table(net),
                     load_preset(DEFAULT_PRESET), accuracy_by_timestep(first_two, labels[:2]))
    assert lava["counts"]["counted_from"].startswith("lava")
    assert lava["energy"]["per_inference_pj"] == pytest.approx(
        expected["energy"]["per_inference_pj"])


def test_a_wrong_preset_fails_before_simulating(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["simulate", str(DIGITS), "--backend", "torch", "--preset", "loihi9",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--preset: unknown energy preset 'loihi9'" in err
    assert not out.exists()
    with pytest.raises(UserError, match="preset: unknown energy preset 'loihi9'"):
        api.simulate(DIGITS, backend="torch", samples=1, preset="loihi9")


def _drop(data, key):
    del data[key]


def _negative_spike(data):
    data["counts"]["spikes"][0][1] = -1.0


def _bad_network(data):
    data["network"] = 5


def _no_provenance(data):
    del data["provenance"]


def _wrong_length(data):
    data["accuracy_by_timestep"] = data["accuracy_by_timestep"][:-1]


@pytest.mark.parametrize("alter, message", [
    (lambda d: _drop(d, "counts"), "field counts: missing"),
    (_negative_spike, "counts.spikes[0][1]: must be >= 0"),
    (lambda d: _drop(d, "layers"), "layers: missing"),
    (_bad_network, "network: must be a string"),
    (_no_provenance, "provenance: missing"),
    (_wrong_length, "accuracy_by_timestep: "),
], ids=["no-counts", "negative", "no-layers", "network", "provenance", "accuracy-length"])
def test_an_altered_simulate_json_is_one_line(simulated, tmp_path, capsys, alter, message):
    data = json.loads(simulated.read_text())
    alter(data)
    path = tmp_path / "simulate.json"
    path.write_text(json.dumps(data))
    assert main(["energy", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"neurodeploy: error: {path}: ")
    assert message in err
    assert "neurodeploy simulate" in err
    assert not list(tmp_path.glob("energy-*.json"))


def test_counting_in_batches_gives_the_same_totals():
    """count_events counts a few samples at a time (bounded memory); totals add up exactly."""
    net, record, _ = _direct()
    whole = count_events(record, net, totals=True, batch_size=10 ** 6)
    for batch in (1, 4):
        parts = count_events(record, net, totals=True, batch_size=batch)
        for kind in whole:
            np.testing.assert_array_equal(parts[kind], whole[kind])


def test_every_verb_prices_with_one_default_preset_and_says_latency_in_its_unit(tmp_path,
                                                                                 capsys):
    """`energy` without --preset reprices with the preset `simulate` and `run` used (it once
    defaulted to another: 71.7 µJ against 2.27 µJ for one record), and a latency reads in the
    unit that fits (1.58 ms, not 1.58e+03 us)."""
    assert main(["simulate", str(DIGITS), "--backend", "torch", "--samples", "20", "--out",
                 str(tmp_path / "s"), "-q"]) == 0
    simulated = json.loads((tmp_path / "s" / "simulate.json").read_text())["energy"]
    assert main(["energy", str(tmp_path / "s" / "simulate.json"), "--out", str(tmp_path)]) == 0
    repriced = json.loads((tmp_path / f"energy-{DEFAULT_PRESET}.json").read_text())["energy"]
    assert simulated["preset"] == repriced["preset"] == DEFAULT_PRESET
    assert repriced["per_inference_pj"] == pytest.approx(simulated["per_inference_pj"])
    slow = tmp_path / "slow.yaml"           # a chip whose ops take 10 µs: latencies of ms
    slow.write_text("name: slow\nsource: a test\nsynaptic_op_pj: 1.0\nsynaptic_op_ns: 10000.0\n")
    capsys.readouterr()
    assert main(["energy", str(tmp_path / "s" / "simulate.json"), "--preset", str(slow)]) == 0
    out = capsys.readouterr().out
    latency = json.loads((tmp_path / "s" / "energy-slow.json").read_text())["energy"][
        "latency_us"]
    assert latency >= 1e3 and f"{latency / 1e3:.3g} ms" in out and "e+0" not in out, out
