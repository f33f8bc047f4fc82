"""A new user's first hour (issue 18): no run overwritten or misdescribed, devices and missing
options said in one line before any folder exists, a foreign graph keeps its layer names, and
damaged files (netx, checkpoints, graphs, recipes) refused in one line."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch

from neurodeploy.cli import build_parser, main
from neurodeploy.report.text import summarize
from neurodeploy.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "export" / "digits" / "network.net"
TINY = """
name: tiny
encoding: {timesteps: 4}
teacher: {hidden: [16], epochs: 1}
student: {hidden: [16]}
distill: {epochs: 1}
"""
# the suite's trained run (tiny_run, tests/conftest.py) retrained small: another network
SMALL = ("--set", "teacher.epochs=1", "--set", "distill.epochs=1", "--set", "student.hidden=[8]")


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(err: str) -> bool:
    return err.startswith("neurodeploy: error: ") and err.count("\n") == 1


def _graph(path: Path, w1=None, r1=1.0, w2=None) -> Path:
    """A float NIR graph as another framework writes it: no dt, no dataset, its own names."""
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(input_type=np.array([64])),
             "fc1": nir.Affine(weight=rng.normal(size=(12, 64)) if w1 is None else w1,
                               bias=np.zeros(12)),
             "lif1": nir.LIF(tau=np.full(12, 2e-3), r=np.full(12, r1), v_leak=np.zeros(12),
                             v_threshold=np.ones(12)),
             "fc2": nir.Affine(weight=rng.normal(size=(10, 12)) if w2 is None else w2,
                               bias=np.zeros(10)),
             "lif2": nir.LIF(tau=np.full(10, 2e-3), r=np.ones(10), v_leak=np.zeros(10),
                             v_threshold=np.ones(10)),
             "output": nir.Output(output_type=np.array([10]))}
    names = list(nodes)
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:]))))
    return path


# --- item 1: no run is overwritten, reused when it can be, never misdescribed -------------

def test_a_changed_recipe_never_overwrites_a_checkpoint(tiny_run, capsys):
    recipe, runs = tiny_run / "tiny.yaml", tiny_run / "runs"
    ckpt = runs / "tiny" / "checkpoint.pt"
    before = ckpt.read_bytes()
    changed = ("--set", "distill.epochs=2", "--set", "student.hidden=[8]", "-q")
    code, _, err = _cli(capsys, "run", recipe, "--runs-dir", runs, *changed)
    assert code == 2 and _one_line(err), err
    assert "distill.epochs: 3 -> 2" in err and "student.hidden: [32] -> [8]" in err, err
    assert "--runs-dir" in err and "--fresh" in err, err
    code, _, err = _cli(capsys, "distill", recipe, "--out", runs / "tiny", *changed)
    assert code == 2 and _one_line(err) and "--out" in err and "--fresh" in err, err
    assert ckpt.read_bytes() == before
    assert (runs / "tiny" / "report.json").exists()


def test_distill_reuses_the_same_recipes_checkpoint(tiny_run, capsys):
    ckpt = tiny_run / "runs" / "tiny" / "checkpoint.pt"
    inode, history = ckpt.stat().st_ino, (ckpt.parent / "history.jsonl").read_text()
    code, out, err = _cli(capsys, "distill", tiny_run / "tiny.yaml", "--out", ckpt.parent, "-q")
    assert code == 0, err
    assert f"reusing {ckpt} (same recipe)" in err and "--fresh" in err, err
    assert ckpt.stat().st_ino == inode, "the checkpoint was trained again"
    assert (ckpt.parent / "history.jsonl").read_text() == history


def test_no_report_is_left_beside_another_network(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "runs" / "tiny", run)
    pages = ("report.json", "report.html", "raster.png")
    assert all((run / name).exists() for name in pages)
    code, _, err = _cli(capsys, "export", run / "checkpoint.pt")     # the same network again
    assert code == 0, err
    assert all((run / name).exists() for name in pages), "a report of this network was removed"
    # another network exported into the folder: the old report must go
    other = tmp_path / "other"
    code, _, err = _cli(capsys, "distill", tiny_run / "tiny.yaml", "--out", other, *SMALL, "-q")
    assert code == 0, err
    code, _, err = _cli(capsys, "export", other / "checkpoint.pt", "--out", run)
    assert code == 0, err
    assert not any((run / name).exists() for name in pages)
    # and `distill --fresh` replacing the checkpoint removes what described the old one
    shutil.copy(tiny_run / "runs" / "tiny" / "report.json", run / "report.json")
    code, _, err = _cli(capsys, "distill", tiny_run / "tiny.yaml", "--out", run, *SMALL, "--fresh",
                        "-q")
    assert code == 0, err
    assert not (run / "report.json").exists()


# --- items 6 and 7: devices ---------------------------------------------------------------

@pytest.mark.parametrize("verb", ["simulate", "run", "distill"])
def test_cuda_without_cuda_is_one_line_and_makes_no_folder(verb, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "tiny.yaml").write_text(TINY)
    args = {"simulate": (DIGITS, "--backend", "torch", "--samples", 5),
            "run": ("tiny.yaml", "-q"), "distill": ("tiny.yaml", "-q")}[verb]
    code, _, err = _cli(capsys, verb, *args, "--device", "cuda")
    assert code == 2 and _one_line(err) and "--device cuda" in err and "--device cpu" in err, err
    assert not (tmp_path / "runs").exists()
    code, _, err = _cli(capsys, verb, *args, "--device", "gpu0")
    assert code == 2 and _one_line(err) and "not a torch device" in err, err


def test_training_runs_on_the_device_asked_for_and_says_so(tiny_run, tmp_path, capsys,
                                                           monkeypatch):
    import neurodeploy.distill.run as distilling
    from neurodeploy.preflight import resolve_device
    seen = []
    for name in ("distill_student", "train_teacher"):
        real = getattr(distilling, name)
        monkeypatch.setattr(distilling, name, lambda *a, _real=real, **kw: (
            seen.append(kw["device"]), _real(*a, **kw))[1])
    (tmp_path / "tiny.yaml").write_text(TINY)
    code, out, err = _cli(capsys, "distill", tmp_path / "tiny.yaml", "--out", tmp_path / "d",
                          "--device", "cpu", "-q")
    assert code == 0, err
    assert seen == ["cpu", "cpu"] and "trained on cpu" in out, (seen, out)
    ckpt = torch.load(tmp_path / "d" / "checkpoint.pt", weights_only=True)
    assert ckpt["provenance"]["training"] == {"device": "cpu"}
    # the default: CUDA when torch sees it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(None) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == "cpu"
    # run's summary says which device trained the student it reports
    report = json.loads((tiny_run / "runs" / "tiny" / "report.json").read_text())
    device = report["training"]["device"]
    assert device == "cpu" if not torch.cuda.is_available() else device.startswith("cuda:")
    assert f"trained on {device}" in summarize(report, tiny_run / "runs" / "tiny")
    for verb in ("run", "distill"):
        assert build_parser().parse_args([verb, "--device", "cpu"]).device == "cpu"


# --- item 8: networks from other frameworks -----------------------------------------------

def test_every_missing_option_of_a_foreign_graph_in_one_message(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    graph = _graph(tmp_path / "their.nir")
    code, _, err = _cli(capsys, "simulate", graph, "--backend", "torch")
    assert code == 2 and _one_line(err), err
    assert all(option in err for option in ("--dt", "--data", "--timesteps")), err
    code, _, err = _cli(capsys, "simulate", graph, "--backend", "torch", "--dt", "1e-4")
    assert code == 2 and "--dt" not in err and "--data" in err and "--timesteps" in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_parity_and_simulate_keep_the_graphs_layer_names(tmp_path, capsys):
    graph = _graph(tmp_path / "their.nir")
    given = ("--dt", "1e-4", "--data", "digits", "--timesteps", 8, "--samples", 10)
    code, _, err = _cli(capsys, "parity", graph, "--backends", "torch,emulator,float", *given,
                        "--out", tmp_path / "p")
    assert code == 0, err
    result = json.loads((tmp_path / "p" / "parity.json").read_text())
    assert list(result["comparisons"][0]["spike_mismatches_per_layer_timestep"]) == \
        ["fc1", "fc2"]
    code, _, err = _cli(capsys, "simulate", graph, "--backend", "torch", *given, "--out",
                        tmp_path / "s")
    assert code == 0, err
    assert list(json.loads((tmp_path / "s" / "simulate.json").read_text())[
        "spikes_per_layer"]) == ["fc1", "fc2"]
    from neurodeploy import api
    assert [row["name"] for row in api.inspect(graph, dt=1e-4)["layers"]] == ["fc1", "fc2"]


@pytest.mark.slow
def test_an_output_layer_that_never_spikes_is_warned_about(tmp_path, capsys):
    inhibitory = -np.abs(np.random.default_rng(1).normal(size=(10, 12)))
    graph = _graph(tmp_path / "silent.nir", w2=inhibitory)
    code, _, err = _cli(capsys, "simulate", graph, "--backend", "torch", "--dt", "1e-4",
                        "--data", "digits", "--timesteps", 8, "--samples", 20, "--out",
                        tmp_path / "s")
    assert code == 0, err
    assert "neurodeploy: warning:" in err and "'fc2' never spiked in 20 samples" in err, err
    assert "never spiked" in json.loads((tmp_path / "s" / "simulate.json").read_text())[
        "warnings"][0]
    code, _, err = _cli(capsys, "simulate", DIGITS, "--backend", "torch", "--samples", 20,
                        "--out", tmp_path / "d")
    assert code == 0 and "warning" not in err, err


def test_the_api_warns_through_warnings_and_prints_nothing(tmp_path, capsys):
    """A Python user gets the same warning as a NeurodeployWarning (to filter or record as
    any warning), and nothing on stderr: only the command line prints."""
    from neurodeploy import api
    from neurodeploy.errors import NeurodeployWarning
    graph = _graph(tmp_path / "silent.nir",
                   w2=-np.abs(np.random.default_rng(1).normal(size=(10, 12))))
    with pytest.warns(NeurodeployWarning, match="'fc2' never spiked in 20 samples"):
        result = api.simulate(graph, "digits", "torch", samples=20, timesteps=8, dt=1e-4)
    assert "never spiked" in result["warnings"][0]
    assert capsys.readouterr().err == ""


# --- item 9: a run that never started leaves nothing, and its advice fits ----------------

def test_a_run_that_cannot_start_leaves_no_folder_and_fitting_advice(tmp_path, capsys,
                                                                      monkeypatch):
    from neurodeploy.backends.lava import loihi2_missing
    if loihi2_missing() is None:
        pytest.skip("lava-loihi is installed: hardware_tests/ exercise it")
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(capsys, "simulate", DIGITS, "--backend", "loihi2", "--samples", 5)
    assert code == 2 and _one_line(err) and "lava-loihi" in err, err
    assert "--backend lava" in err and "run the same command again" not in err, err
    code, _, err = _cli(capsys, "simulate", DIGITS, "--backend", "torch", "--data",
                        tmp_path / "missing.npz")
    assert code == 2 and _one_line(err), err
    assert not (tmp_path / "runs").exists(), list((tmp_path / "runs").rglob("*"))


# --- item 13: damaged HDF5 ----------------------------------------------------------------

def _verbs(net: Path) -> list[tuple]:
    return [("inspect", net), ("simulate", net, "--backend", "torch", "--samples", 3),
            ("parity", net, "--backends", "torch,emulator", "--samples", 3)]


def test_a_damaged_netx_file_is_one_line_in_every_verb(tmp_path, capsys, monkeypatch):
    from neurodeploy.netx import write_netx
    from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork
    rng = np.random.default_rng(0)
    net = IntNetwork(64, (
        IntLayer(rng.integers(-128, 128, (12, 64)) * 2, CubaParams(900, 300, 60), name="fc0"),
        IntLayer(rng.integers(-128, 128, (10, 12)) * 2, CubaParams(900, 300, 60), name="fc1")))
    path = tmp_path / "damaged.net"
    write_netx(net, path, {"timesteps": 16, "encoding": {"name": "rate", "timesteps": 16},
                           "dataset": {"name": "digits", "split_seed": 0}})
    data = bytearray(path.read_bytes())
    data[935] ^= 1                      # h5py: RuntimeError "Unable to get group info"
    path.write_bytes(bytes(data))
    monkeypatch.chdir(tmp_path)
    for args in _verbs(path):
        code, _, err = _cli(capsys, *args)
        assert code == 2 and _one_line(err) and "damaged.net" in err, (args, err)
    # any h5py RuntimeError while reading, wherever in the file it hits
    def broken(self, *args, **kwargs):
        raise RuntimeError("Unable to get group info (addr overflow)")
    monkeypatch.setattr(h5py.Group, "get", broken)
    for args in _verbs(DIGITS):
        code, _, err = _cli(capsys, *args)
        assert code == 2 and _one_line(err) and "damaged" in err, (args, err)


# --- items 14 and 15: checkpoints ---------------------------------------------------------

@pytest.mark.parametrize("provenance, field", [
    ("a string", "provenance"), ({"dataset": "digits"}, "dataset"),
    ({"dataset": {"name": "digits", "split_seed": 0, "sha256": 7}}, "dataset.sha256"),
    ({"teacher": ["x"]}, "teacher")])
def test_a_checkpoint_provenance_of_another_shape_is_refused(tiny_run, tmp_path, capsys,
                                                             provenance, field):
    ckpt = torch.load(tiny_run / "runs" / "tiny" / "checkpoint.pt", weights_only=True)
    ckpt["provenance"] = provenance
    torch.save(ckpt, tmp_path / "bad.pt")
    for verb in ("export", "inspect"):
        code, _, err = _cli(capsys, verb, tmp_path / "bad.pt", *(
            ("--out", tmp_path / "out") if verb == "export" else ()))
        assert code == 2 and _one_line(err), (verb, err)
        assert "bad.pt: field provenance" in err and field in err, (verb, err)
    assert not (tmp_path / "out" / "network.net").exists()


def _flip_a_tensor_bit(path) -> str:
    """Flip the lowest bit of one float32 in the largest tensor of a .pt zip; its name."""
    with zipfile.ZipFile(path) as archive:
        member = max((i for i in archive.infolist() if "/data/" in i.filename),
                     key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = (int.from_bytes(data[member.header_offset + k:member.header_offset
                                               + k + 2], "little") for k in (26, 28))
    start = member.header_offset + 30 + name_len + extra_len
    data[start + 4 * (member.file_size // 8)] ^= 1
    path.write_bytes(bytes(data))
    return member.filename


def test_a_damaged_training_state_is_not_resumed(tmp_path):
    from neurodeploy.distill.train import History, _load_state, _save_state
    path = tmp_path / "distill_state.pt"
    _save_state(path, "key", history=History(), weights=torch.arange(64, dtype=torch.float32))
    assert _load_state(path, "key") is not None
    _flip_a_tensor_bit(path)
    with pytest.raises(UserError, match="cannot resume from this training state"):
        _load_state(path, "key")


def test_a_checkpoint_with_damaged_tensor_bytes_is_refused(tiny_run, tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    shutil.copy(tiny_run / "runs" / "tiny" / "checkpoint.pt", path)
    member = type("M", (), {"filename": _flip_a_tensor_bit(path)})
    for verb in ("export", "inspect"):
        code, _, err = _cli(capsys, verb, path)
        assert code == 2 and _one_line(err), (verb, err)
        root, inner = member.filename.split("/", 1)    # root: the writer's temporary name
        assert "CRC-32" in err and inner in err and root not in err, err
    assert not (tmp_path / "network.net").exists()


# --- item 16 ------------------------------------------------------------------------------

def test_huge_or_infinite_weights_are_one_readable_line_without_warnings(tiny_run, tmp_path,
                                                                          capsys):
    cases = [(_graph(tmp_path / "huge.nir", w1=np.full((12, 64), 1e308), r1=100.0), "1e+308")]
    for value, name in ((1e300, "own_huge.nir"), (np.inf, "own_inf.nir")):
        graph = nir.read(tiny_run / "runs" / "tiny" / "student.nir")
        weight = np.array(graph.nodes["fc0"].weight, dtype=np.float64)
        weight.flat[0] = value
        graph.nodes["fc0"].weight = weight
        nir.write(tmp_path / name, graph)
        cases.append((tmp_path / name, "1e+300" if np.isfinite(value) else "infinite"))
    for graph, shown in cases:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code, _, err = _cli(capsys, "inspect", graph, "--dt", "1e-4")
        assert code == 2 and _one_line(err) and shown in err, err
        assert "9223372036854775808" not in err, err
        assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], \
            [str(w.message) for w in caught]


def test_duplicate_keys_in_a_recipe_are_refused(tmp_path):
    from neurodeploy.recipe import load_recipe
    path = tmp_path / "dup.yaml"
    path.write_text("name: dup\ndistill:\n  epochs: 2\n  lr: 0.01\n  epochs: 40\n")
    with pytest.raises(UserError, match=r"key 'epochs' appears twice in one mapping \(line 3 "
                                        r"and line 5\); keep one") as e:
        load_recipe(str(path))
    assert "\n" not in str(e.value)
    (tmp_path / "merge.yaml").write_text("base: &b {epochs: 2}\nname: m\ndistill:\n  <<: *b\n"
                                         "  epochs: 3\n")
    with pytest.raises(UserError, match="unknown key 'base'"):   # merge keys still work
        load_recipe(str(tmp_path / "merge.yaml"))


@pytest.mark.lava
@pytest.mark.slow
def test_sigterm_during_a_lava_run_exits_143(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "x.npz", x=(rng.random((4000, 16, 64)) < 0.2).astype(np.uint8),
             y=rng.integers(0, 10, 4000))
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurodeploy", "simulate", str(DIGITS), "--backend", "lava",
         "--data", str(tmp_path / "x.npz"), "--chunk", "4000", "--out", str(tmp_path / "out"),
         "--progress"], stderr=subprocess.PIPE, text=True, start_new_session=True,
        cwd=tmp_path)
    seen = ""
    try:
        while "sample/s" not in seen:           # the Lava run is underway
            chunk = proc.stderr.read(64)
            assert chunk, f"simulation ended before it could be terminated: {seen[-500:]}"
            seen += chunk
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, proc.returncode
