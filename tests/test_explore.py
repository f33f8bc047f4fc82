"""`neurodeploy explore`: a grid of digits students really trained (in two processes), deployed
exactly, checked on Lava and priced; the front read back from the run folders it links; a rerun
that touches nothing; full-range-KD read-outs; bad grids refused in one line with no folder."""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.cli import main
from neurodeploy.errors import UserError

SMALL = {"teacher.epochs": 3, "teacher.hidden": [64], "distill.epochs": 3}
GRID = {"student.hidden": [[16], [48]], "encoding.timesteps": [4, 8]}
FULL_RANGE = [{"name": "full_range_kd", "alpha": 0.2, "beta": 0.5, "temperature": 3.0}]


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore") / "front"
    lines = []
    front = api.explore("digits", GRID, out, overrides=SMALL, seeds=2, jobs=2, lava_samples=8,
                        device="cpu", say=lines.append)
    return out, front, lines


@pytest.mark.lava
@pytest.mark.slow
def test_every_variant_and_seed_is_a_run_folder_and_the_front_reads_them(explored):
    out, front, lines = explored
    assert json.loads((out / "front.json").read_text()) == json.loads(json.dumps(front))
    assert len(front["points"]) == 4 and front["seeds"] == [0, 1]
    assert len(list((out / "teachers").glob("teacher-*.pt"))) == 1      # shared by all 8 runs
    for point in front["points"]:
        assert point["seeds"] == [0, 1] and point["readout_T"] == point["T"]
        assert point["T"] == point["settings"]["encoding.timesteps"]
        per_seed = []
        for run in point["runs"]:
            folder = out / run
            manifest = json.loads((folder / "manifest.json").read_text())
            report = json.loads((folder / "report.json").read_text())
            assert manifest["encoding"]["timesteps"] == point["T"]
            assert manifest["accuracy"]["samples"] == point["test_samples"] == 360
            per_seed.append(manifest["accuracy"]["deployed_exact"])
            # the run's page is `run`'s, its parity a Lava sample: exact = Lava, spike for spike
            assert report["parity"]["backends"][1].startswith("lava")
            assert report["parity"]["spike_mismatches"] == 0 and report["parity"]["samples"] == 8
            assert report["energy"]["per_inference_pj"] == pytest.approx(
                json.loads((folder / "explore.json").read_text())["measured"]["by_readout"][
                    str(point["T"])]["energy_pj"]["loihi1-davies2018"])
            assert (folder / "report.html").is_file()
            assert f'href="{run}/report.html"' in (out / "front.html").read_text()
        assert point["accuracy"]["per_seed"] == per_seed
        assert point["accuracy"]["mean"] == pytest.approx(np.mean(per_seed))
        assert point["accuracy"]["std"] == pytest.approx(np.std(per_seed, ddof=1))
        assert point["lava_spike_mismatches"] == 0 and point["fits_one_chip"]
        assert point["energy_pj"] > 0 and point["latency_us"] > 0
    wider = {p["variant"]: p["energy_pj"] for p in front["points"]}
    assert wider["hidden-48_timesteps-8"] > wider["hidden-16_timesteps-4"]
    for cost, key in (("energy", "energy_pj"), ("latency", "latency_us")):
        for p in front["points"]:       # marked exactly when nothing beats it on both
            beaten = any(q["accuracy"]["mean"] >= p["accuracy"]["mean"] and q[key] <= p[key]
                         and (q["accuracy"]["mean"], q[key]) != (p["accuracy"]["mean"], p[key])
                         for q in front["points"])
            assert p["front"][cost] is (not beaten)
        assert any(p["front"][cost] for p in front["points"])
    assert (out / "front.png").stat().st_size > 10_000
    assert len([line for line in lines if "mismatches" in line]) == 8


@pytest.mark.lava
@pytest.mark.slow
def test_a_rerun_touches_nothing_and_the_cli_prints_the_front(explored, capsys):
    out, front, _ = explored
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".pt", ".json",
                                                                             ".net")
              and p.name != "front.json"}
    argv = ["explore", "digits", "--out", str(out), "--seeds", "2", "--lava-samples", "8",
            "--device", "cpu", "--grid", "student.hidden=[16],[48]",
            "--grid", "encoding.timesteps=4,8",
            *[a for k, v in SMALL.items() for a in ("--set", f"{k}={json.dumps(v)}")]]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "8 runs (8 already measured)" in captured.err
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
    assert "neurodeploy explore: digits" in captured.out and "energy, latency" in captured.out
    again = json.loads((out / "front.json").read_text())
    assert [p["accuracy"] for p in again["points"]] == [p["accuracy"] for p in front["points"]]


@pytest.mark.lava
@pytest.mark.slow
def test_a_full_range_student_gives_one_point_per_readout_time(explored):
    """Losses are a grid setting too; a full_range_kd student is read out at T' = 1, 2, 4, 8
    from one record, and it reuses the teacher the other runs trained."""
    out, _, _ = explored
    front = api.explore("digits", {"distill.losses": [FULL_RANGE]}, out,
                        overrides={**SMALL, "student.hidden": [48], "encoding.timesteps": 8},
                        lava_samples=4, device="cpu")
    assert len(list((out / "teachers").glob("teacher-*.pt"))) == 1
    points = sorted(front["points"], key=lambda p: p["readout_T"])
    assert [p["readout_T"] for p in points] == [1, 2, 4, 8]
    report = json.loads((out / points[0]["runs"][0] / "report.json").read_text())
    for p in points:
        t = p["readout_T"]
        assert p["accuracy"]["mean"] == pytest.approx(report["accuracy_by_timestep"][t - 1])
        assert p["energy_pj"] == pytest.approx(report["timestep_sweep"][t - 1]["energy_pj"])
    assert [p["energy_pj"] for p in points] == sorted(p["energy_pj"] for p in points)


@pytest.mark.parametrize("grid, says", [
    ([], "the grid is empty"),
    (["student.hiden=[8]"], "student has no setting 'hiden'; it has conv, hidden"),
    (["student.neuron.threshold.low=1"], "student.neuron.threshold is one setting, not a "
                                         "section"),
    (["encoding.timesteps=0,4"], "encoding.timesteps"),
    (["student.hidden=[8],[8]"], "a value is given twice"),
    (["distill.seed=1,2"], "pass seeds (--seeds N) instead"),
    (["encoding.timesteps=4", "encoding.timesteps=8"], "given twice"),
    (["encoding.timesteps="], "an empty value"),
    (["encoding.timesteps=[4"], "not YAML"),
], ids=["empty", "unknown", "not-a-section", "bad-value", "repeated", "seed", "key-twice",
        "no-values", "not-yaml"])
def test_bad_input_is_one_line_exit_2_and_no_folder(tmp_path, capsys, grid, says):
    out = tmp_path / "nested" / "front"
    argv = ["explore", "digits", "--out", str(out), *[a for g in grid for a in ("--grid", g)]]
    try:
        code = main(argv)
    except SystemExit as e:             # argparse's own errors
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and says in err, err
    assert err.startswith("neurodeploy: error:") and not (tmp_path / "nested").exists()


def test_a_bad_preset_is_refused_before_any_folder(tmp_path, capsys):
    out = tmp_path / "front"
    assert main(["explore", "digits", "--grid", "encoding.timesteps=4", "--out", str(out),
                 "--preset", "no-such-chip"]) == 2
    assert "--preset" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("option", [{"jobs": 0}, {"lava_samples": 0}, {"seeds": 0}])
def test_bad_options_in_python_are_one_line_and_no_folder(tmp_path, option):
    with pytest.raises(UserError, match=r"give"):
        api.explore("digits", {"encoding.timesteps": [4]}, tmp_path / "front", **option)
    assert not (tmp_path / "front").exists()


RUN = {"key": "k", "variant": "hidden-16", "settings": {"student.hidden": [16]}, "seed": 0,
       "folder": "digits-hidden-16-s0", "recipe_digest": "d" * 64,
       "measured": {"T": 4, "test_samples": 10, "by_readout": {"4": {
           "accuracy": 0.5, "energy_pj": {"loihi2-proxy": 1000.0},
           "latency_us": {"loihi2-proxy": None}}},
           "val_accuracy": 0.6, "cores": 1, "chips": 1, "backend": "torch",
           "lava": {"samples": 2, "spike_mismatches": 0}}}


def test_a_run_is_skipped_only_when_its_explore_json_is_one_measured_from_its_key(tmp_path):
    """explore.json is read with the model it is written with (ExploreRun): a damaged one,
    or one measured from another recipe, is measured again rather than put on the front."""
    from neurodeploy.distill.explore import _done
    (tmp_path / "explore.json").write_text(json.dumps(RUN))
    assert _done(tmp_path, "k") == RUN and _done(tmp_path, "other") is None
    for damaged in ({**RUN, "measured": {**RUN["measured"], "cores": "one"}}, [RUN],
                    {k: v for k, v in RUN.items() if k != "measured"}):
        (tmp_path / "explore.json").write_text(json.dumps(damaged))
        assert _done(tmp_path, "k") is None
    (tmp_path / "explore.json").write_text("{")
    assert _done(tmp_path, "k") is None


def test_front_json_is_written_as_its_model():
    """front()'s points are Front's; a section Front does not declare cannot be written."""
    from neurodeploy.distill.explore import ExploreRun, front
    from neurodeploy.report.front import Front
    from neurodeploy.report.summary import generated
    from neurodeploy.schema import written
    assert written(ExploreRun, RUN) == RUN
    data = {"recipe": "digits", "recipe_digest": "d" * 64, "grid": {"student.hidden": [[16]]},
            "seeds": [0], "presets": ["loihi2-proxy"], "front_preset": "loihi2-proxy",
            "lava_samples": 2, "points": front([RUN], ["loihi2-proxy"]),
            "generated": generated(), "selection": "validation-best epoch"}
    assert written(Front, data) == data
    assert data["points"][0]["front"] == {"energy": True, "latency": None}
    with pytest.raises(ValueError, match=r"sections \['typo'\] are not declared"):
        written(Front, {**data, "typo": 1})
