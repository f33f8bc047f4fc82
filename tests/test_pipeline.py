"""The pipeline end to end on a tiny recipe, the report contract, resumable training."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from neurodeploy.cli import main
from neurodeploy.distill.losses import build_loss
from neurodeploy.distill.train import distill_student
from neurodeploy.errors import UserError
from neurodeploy.neurons import CubaParams, SpikingNet

TINY = """
name: tiny
encoding: {timesteps: 8}
teacher: {hidden: [64], epochs: 5}
student: {hidden: [32]}
distill: {epochs: 3}
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    recipe = root / "tiny.yaml"
    recipe.write_text(TINY)
    assert main(["run", str(recipe), "--runs-dir", str(root / "runs"), "-q"]) == 0
    return root / "runs" / "tiny"


def test_run_writes_every_artifact(tiny_run):
    for name in ("checkpoint.pt", "student.nir", "network.net", "manifest.json", "report.json",
                 "report.html"):
        assert (tiny_run / name).is_file(), name
    assert not list(tiny_run.glob(".*.tmp")), "no temporary files may remain"


def test_report_contract(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    assert set(report["accuracy"]) >= {"teacher", "student_torch", "student_lava"}
    assert all(0 <= v <= 1 for v in report["accuracy"].values())
    assert report["parity"]["spike_mismatches"] == 0
    assert report["parity"]["prediction_agreement"] == 1.0
    assert report["timesteps"] == 8 and report["samples"] == 360
    assert [e["t"] for e in report["per_timestep"]] == list(range(8))
    for entry in report["per_timestep"]:
        assert set(entry) >= {"t", "spikes", "synaptic_ops", "neuron_updates", "energy_pj"}
        assert entry["neuron_updates"] == 32 + 10
    energy = report["energy"]
    assert energy["preset"] == "loihi1-davies2018" and "Davies" in energy["source"]
    assert energy["per_inference_pj"] == pytest.approx(
        sum(e["energy_pj"] for e in report["per_timestep"]))
    assert energy["dynamic_pj"] > 0 and energy["static_pj"] == 0     # Davies: no static figure
    assert energy["latency_us"] > 0
    names = [b["name"] for b in energy["ann_baselines"]]
    assert any("teacher" in n for n in names) and any("student" in n for n in names)
    assert all({"name", "source", "per_inference_pj"} <= set(b) for b in energy["ann_baselines"])
    assert len(report["timestep_sweep"]) == 8 and report["timestep_sweep"][-1]["accuracy"] == \
        report["accuracy"]["student_lava"]
    assert report["resources"]["fits_one_chip"]
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["accuracy"]["deployed_exact"] == report["accuracy"]["student_lava"]


def test_html_report_shows_every_section_with_its_sources(tiny_run):
    page = (tiny_run / "report.html").read_text()
    for text in ("Where the energy comes from", "Davies et al.", "Spiking activity",
                 "reading out early", "Against a conventional accelerator", "Horowitz",
                 "Parity", "Loihi 2 resources", "data:image/png;base64,"):
        assert text in page, text
    for png in ("spikes_per_layer", "raster", "energy_per_timestep", "tradeoff"):
        assert (tiny_run / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _distill(student, loss, tmp_path, epochs=3):
    rng = np.random.default_rng(0)
    x = rng.random((64, 12)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    spikes = (rng.random((64, 6, 12)) < x[:, None, :]).astype(np.uint8)
    teacher = torch.nn.Linear(12, 3)
    return distill_student(student, teacher, loss, train_spikes=spikes, train_x=x, train_y=y,
                           val_spikes=spikes, val_y=y, epochs=epochs, lr=0.01, batch_size=16,
                           seed=0, checkpoint=tmp_path / "state.pt", progress=False)


def _student():
    torch.manual_seed(0)
    p = CubaParams(1024, 256, 64)
    return SpikingNet((12,), 3, [p, p], hidden=[16])


def test_a_killed_distillation_resumes_where_it_stopped(tmp_path):
    loss = build_loss([{"name": "ce"}, {"name": "logit_kd"}], "test")
    reference = _student()
    _distill(reference, loss, tmp_path / "a")

    calls = {"n": 0}

    def dies_in_epoch_two(**kw):
        calls["n"] += 1
        if calls["n"] == 5:              # 4 batches per epoch: dies in the 2nd epoch
            raise KeyboardInterrupt
        return loss(**kw)

    resumed = _student()
    with pytest.raises(KeyboardInterrupt):
        _distill(resumed, dies_in_epoch_two, tmp_path / "b")
    saved = torch.load(tmp_path / "b" / "state.pt", weights_only=False)
    assert saved["epoch"] == 0
    resumed = _student()
    hist = _distill(resumed, loss, tmp_path / "b")
    assert len(hist.val_accuracy) == 3
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    loss = build_loss([{"name": "ce"}], "test")
    calls = {"n": 0}

    def turns_nan(**kw):
        calls["n"] += 1
        value = loss(**kw)
        return value * float("nan") if calls["n"] > 4 else value

    with pytest.raises(UserError, match="loss became nan at epoch 1.*last good checkpoint"):
        _distill(_student(), turns_nan, tmp_path)
    assert torch.load(tmp_path / "state.pt", weights_only=False)["epoch"] == 0


def test_console_script_fails_in_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "inspect",
                           str(tmp_path / "missing.net")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "missing.net: no such network file" in proc.stderr
