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

@pytest.fixture(scope="module")
def tiny(tiny_run):
    """The folder of the suite's one trained run (tests/conftest.py: TINY)."""
    return tiny_run / "runs" / "tiny"


def test_run_writes_every_artifact(tiny):
    for name in ("checkpoint.pt", "student.nir", "network.net", "manifest.json", "report.json",
                 "report.html"):
        assert (tiny / name).is_file(), name
    assert not list(tiny.glob(".*.tmp")), "no temporary files may remain"


def test_report_contract(tiny):
    from neurodeploy.backends.torch_exact import simulate_torch
    from neurodeploy.netx import read_netx
    from neurodeploy.inputs import encoded_test_split
    report = json.loads((tiny / "report.json").read_text())
    assert set(report["accuracy"]) >= {"teacher", "student_torch", "student_deployed"}
    # the deployed file on its test split, measured here in the exact mode
    net, meta = read_netx(tiny / "network.net")
    spikes, labels = encoded_test_split(meta)
    measured = simulate_torch(net, spikes).accuracy(labels)
    assert measured > 0.5                           # trained: chance is 0.1
    assert report["accuracy"]["student_torch"] == measured
    assert report["accuracy"]["student_deployed"] == measured    # 0 mismatches: the same answers
    ckpt = torch.load(tiny / "checkpoint.pt", weights_only=True)
    assert report["accuracy"]["teacher"] == ckpt["metrics"]["teacher_test_accuracy"] > 0.5
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
        report["accuracy"]["student_deployed"]
    assert report["resources"]["fits_one_chip"]
    manifest = json.loads((tiny / "manifest.json").read_text())
    assert manifest["accuracy"]["deployed_exact"] == report["accuracy"]["student_deployed"]


def test_html_report_shows_every_section_with_its_sources(tiny):
    page = (tiny / "report.html").read_text()
    for text in ("Where the energy comes from", "Davies et al.", "Spiking activity",
                 "reading out early", "Against a conventional accelerator", "Horowitz",
                 "Parity", "Loihi 2 resources", "data:image/png;base64,"):
        assert text in page, text
    for png in ("spikes_per_layer", "raster", "energy_per_timestep", "tradeoff"):
        assert (tiny / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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


@pytest.mark.slow
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
    saved = torch.load(tmp_path / "b" / "state.pt", weights_only=True)
    assert saved["epoch"] == 0
    resumed = _student()
    hist = _distill(resumed, loss, tmp_path / "b")
    assert len(hist.val_accuracy) == 3
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    loss = build_loss([{"name": "ce"}], "test")
    calls = {"n": 0}

    def turns_nan(**kw):
        calls["n"] += 1
        value = loss(**kw)
        return value * float("nan") if calls["n"] > 4 else value

    with pytest.raises(UserError, match="loss became nan at epoch 1.*last good checkpoint"):
        _distill(_student(), turns_nan, tmp_path)
    assert torch.load(tmp_path / "state.pt", weights_only=True)["epoch"] == 0


@pytest.mark.slow
def test_console_script_fails_in_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "inspect",
                           str(tmp_path / "missing.net")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "missing.net: no such network file" in proc.stderr


def test_thermometer_code():
    from neurodeploy.data import encode, encoded_shape
    x = np.array([[0.0, 0.3, 0.5, 1.0]], dtype=np.float32)        # levels 4 -> 0, 1, 2, 4
    spikes = encode(x, {"name": "thermometer", "timesteps": 3, "levels": 4})
    assert spikes.shape == (1, 3, 16) and (spikes == spikes[:, :1]).all()  # same every step
    per_level = spikes[0, 0].reshape(4, 4)                          # [level, input]
    assert per_level.sum(0).tolist() == [0, 1, 2, 4]
    assert per_level[:, 3].tolist() == [1, 1, 1, 1] and per_level[1:, 1].sum() == 0
    assert encoded_shape((1, 28, 28), {"name": "thermometer", "levels": 4}) == (4, 28, 28)
    assert encoded_shape((64,), {"name": "rate"}) == (64,)


@pytest.mark.lava
@pytest.mark.slow
def test_thermometer_student_deploys_bit_exact_on_lava_and_reads_out_past_T(tmp_path):
    from neurodeploy.netx import read_netx
    from neurodeploy.inputs import encoded_test_split
    recipe = tmp_path / "thermo.yaml"
    recipe.write_text("name: thermo\nencoding: {name: thermometer, levels: 3, timesteps: 4}\n"
                      "student: {hidden: [32]}\ndistill: {epochs: 2, losses: [{name: ce}]}\n")
    assert main(["run", str(recipe), "--runs-dir", str(tmp_path), "-q"]) == 0
    report = json.loads((tmp_path / "thermo" / "report.json").read_text())
    assert report["parity"]["spike_mismatches"] == 0 and report["backend"].startswith("lava")
    assert report["accuracy"]["teacher"] is None      # a CE-only recipe trains no teacher
    assert report["accuracy"]["student_deployed"] > 0.5
    net, meta = read_netx(tmp_path / "thermo" / "network.net")
    assert net.input_size == 3 * 64
    assert meta["encoding"] == {"name": "thermometer", "timesteps": 4, "levels": 3}
    spikes, _ = encoded_test_split({**meta, "timesteps": 8})
    assert spikes.shape[1:] == (8, 3 * 64)


@pytest.mark.slow
def test_teachers_are_trained_once_per_teacher_recipe(tmp_path):
    from neurodeploy.distill.run import distill
    from neurodeploy.recipe import recipe_from_dict
    base = {"name": "a", "teacher": {"hidden": [32], "epochs": 1}, "student": {"hidden": [16]},
            "distill": {"epochs": 1}}
    first = torch.load(distill(recipe_from_dict(base, "a"), tmp_path / "a", progress=False,
                               teachers=tmp_path / "teachers"), weights_only=True)
    cached = list((tmp_path / "teachers").iterdir())
    mtime = cached[0].stat().st_mtime_ns
    other = {**base, "distill": {"epochs": 1, "losses": [{"name": "logit_kd"}]}}
    second = torch.load(distill(recipe_from_dict(other, "b"), tmp_path / "b", progress=False,
                                teachers=tmp_path / "teachers"), weights_only=True)
    assert len(cached) == 1 and cached[0].stat().st_mtime_ns == mtime
    for k, v in first["teacher"].items():
        assert torch.equal(v, second["teacher"][k])
    distill(recipe_from_dict({**base, "teacher": {"hidden": [8], "epochs": 1}}, "c"),
            tmp_path / "c", progress=False, teachers=tmp_path / "teachers")
    assert len(list((tmp_path / "teachers").iterdir())) == 2
