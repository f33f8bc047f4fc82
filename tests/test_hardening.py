"""Numbers that cannot be mixed up, files that cannot run code, outputs checked before work,
and training that survives kill -9 (issue 10)."""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.artifacts import Manifest
from neurodeploy.backends.record import SpikeRecord, provenance
from neurodeploy.backends.shards import merge, run_chunks
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.cli import main
from neurodeploy.errors import UserError
from neurodeploy.netx import write_netx
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork
from neurodeploy.schema import written

ROOT = Path(__file__).parent.parent
DIGITS = ROOT / "export" / "digits" / "network.net"
TINY = """
name: tiny
encoding: {timesteps: 4}
teacher: {hidden: [16], epochs: 2}
student: {hidden: [16]}
distill: {epochs: 2}
"""


def _net(seed: int, inputs: int = 64, classes: int = 10) -> IntNetwork:
    rng = np.random.default_rng(seed)
    return IntNetwork(inputs, (
        IntLayer(rng.integers(-128, 128, (12, inputs)) * 2, CubaParams(900, 300, 60), name="fc0"),
        IntLayer(rng.integers(-128, 128, (classes, 12)) * 2, CubaParams(900, 300, 60),
                 name="fc1")))


def _cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def _one_line(err: str) -> bool:
    return err.startswith("neurodeploy: error: ") and err.count("\n") == 1


@pytest.mark.lava
def test_lava_chunks_of_one_network_are_never_taken_for_another(tmp_path, capsys):
    """The bug this issue opened with: a second network simulated into the same directory
    reused the first one's Lava chunks and reported their accuracy as its own."""
    other = tmp_path / "other.net"
    write_netx(_net(1), other, {"timesteps": 16, "encoding": {"name": "rate", "timesteps": 16},
                                "dataset": {"name": "digits", "split_seed": 0}})
    out = tmp_path / "D"
    code, _ = _cli(capsys, "simulate", DIGITS, "--backend", "lava", "--samples", 8, "--out", out,
                   "-q")
    assert code == 0
    code, err = _cli(capsys, "simulate", other, "--backend", "lava", "--samples", 8, "--out", out,
                     "-q")
    assert code == 2 and _one_line(err)
    assert "belongs to another run (its network_sha256" in err and "choose another --out" in err
    # the same command again is a real resume, and says so
    code, err = _cli(capsys, "simulate", DIGITS, "--backend", "lava", "--samples", 8, "--out",
                     out, "-q")
    assert code == 0 and "resuming: 1 of 1 chunks" in err
    result = json.loads((out / "simulate.json").read_text())
    assert result["provenance"]["backend"] == "lava" and result["provenance"]["samples"] == 8


def test_chunks_of_other_inputs_backend_or_T_are_refused_and_never_merged(tmp_path):
    net_a, net_b = _net(0), _net(1)
    write_netx(net_a, tmp_path / "a.net")
    rng = np.random.default_rng(0)
    spikes = (rng.random((10, 4, 64)) < 0.3).astype(np.uint8)
    labels = rng.integers(0, 10, 10)
    sim = lambda x, timeout_s=None: simulate_torch(net_a, x)  # noqa: E731
    prov = provenance(tmp_path / "a.net", spikes, labels, "lava")
    run_chunks(sim, spikes, labels, tmp_path / "s0", chunk=5, shard=(0, 2), progress=False,
               provenance=prov)
    for changed in ({**prov, "backend": "loihi2"}, {**prov, "timesteps": 8},
                    provenance(tmp_path / "a.net", spikes, (labels + 1) % 10, "lava")):
        with pytest.raises(UserError, match="belongs to another run"):
            run_chunks(sim, spikes, labels, tmp_path / "s0", chunk=5, shard=(0, 2),
                       progress=False, provenance=changed)
    write_netx(net_b, tmp_path / "b.net")
    run_chunks(lambda x, timeout_s=None: simulate_torch(net_b, x), spikes, labels,
               tmp_path / "s1", chunk=5, shard=(1, 2), progress=False,
               provenance=provenance(tmp_path / "b.net", spikes, labels, "lava"))
    with pytest.raises(UserError, match="comes from another run"):
        merge([tmp_path / "s0", tmp_path / "s1"])


def _readout_sim(chunks_with_readout: int):
    """A backend of a readout network (3 classes) whose first chunks record voltages."""
    calls = []

    def sim(x, timeout_s=None):
        calls.append(x)
        n, t = x.shape[:2]
        voltages = np.arange(n * t * 3).reshape(n, t, 3)
        return SpikeRecord("lava", x, [np.zeros((n, t, 3), bool)], ["out"], {},
                           voltages if len(calls) <= chunks_with_readout else None)
    return sim


def test_a_chunk_whose_readout_voltages_were_edited_is_refused(tmp_path):
    """The zip's CRC-32 and the provenance cannot see a chunk rewritten with other voltages:
    the sha256 of its arrays, saved with it, does."""
    spikes, labels = np.zeros((4, 2, 5), bool), np.array([0, 1, 2, 0])
    run_chunks(_readout_sim(2), spikes, labels, tmp_path / "c", chunk=2, progress=False)
    path = sorted((tmp_path / "c").glob("chunk-*.npz"))[1]
    assert merge([tmp_path / "c"])[0].readout.shape == (4, 2, 3)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["readout"][0, 0, 0] += 1
    np.savez_compressed(path, **arrays)
    for again in (lambda: merge([tmp_path / "c"]),
                  lambda: run_chunks(_readout_sim(2), spikes, labels, tmp_path / "c", chunk=2,
                                     progress=False)):
        with pytest.raises(UserError, match=f"^{path}: its arrays do not match the sha256 "
                                            ".*; delete it and simulate again$"):
            again()


def test_chunks_with_and_without_readout_voltages_name_the_chunk(tmp_path):
    spikes, labels = np.zeros((4, 2, 5), bool), np.array([0, 1, 2, 0])
    with pytest.raises(UserError) as e:
        run_chunks(_readout_sim(1), spikes, labels, tmp_path / "c", chunk=2, progress=False)
    first, second = sorted((tmp_path / "c").glob("chunk-*.npz"))
    assert str(e.value) == (f"{second}: records no readout voltages, unlike {first}: the chunks "
                            f"come from different networks; delete {tmp_path / 'c'} and "
                            "simulate again")


class _Payload:
    """Unpickling this creates a directory: proof that a file ran code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_no_file_can_run_code(tmp_path, capsys):
    pwned = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "neurodeploy-checkpoint/2", "x": _Payload(str(pwned))}, evil)
    for verb in ("inspect", "export"):
        code, err = _cli(capsys, verb, evil)
        assert code == 2 and _one_line(err) and "not a readable checkpoint" in err
    assert not pwned.exists()
    from neurodeploy.distill.run import _cached
    cache = tmp_path / "teachers"
    cache.mkdir()
    torch.save(_Payload(str(pwned)), cache / "teacher-k.pt")
    with pytest.raises(UserError, match="not a usable cached teacher"):
        _cached(cache, "k", lambda: torch.nn.Linear(2, 2), None)
    assert not pwned.exists()


@pytest.fixture(scope="module")
def checkpoint(tiny_run):
    """The trained checkpoint of the suite's one run (read only: tests damage copies)."""
    return tiny_run / "runs" / "tiny" / "checkpoint.pt"


@pytest.mark.parametrize("damage, message", [
    (lambda c: c["student"].update({k: v * float("inf") for k, v in c["student"].items()}),
     "is not a finite, non-empty float tensor"),
    (lambda c: c["student"].update({k: v + 1e30 for k, v in c["student"].items()}),
     "far beyond Loihi's 8-bit weights"),
    (lambda c: c["student"].update({k: v[:3] for k, v in c["student"].items()}),
     "do not fit the recipe's student"),
    (lambda c: c.pop("metrics"), "field 'metrics' is missing"),
    (lambda c: c.update(classes=True), "field 'classes' is missing or not a int"),
    (lambda c: c["metrics"].update(teacher_test_accuracy=float("nan")), "field 'metrics'"),
    (lambda c: c["metrics"].update(teacher_test_accuracy=1.5), "teacher_test_accuracy"),
])
def test_damaged_checkpoints_are_refused(checkpoint, tmp_path, capsys, damage, message):
    ckpt = torch.load(checkpoint, weights_only=True)
    damage(ckpt)
    torch.save(ckpt, tmp_path / "bad.pt")
    code, err = _cli(capsys, "export", tmp_path / "bad.pt", "--out", tmp_path / "out")
    assert code == 2 and _one_line(err) and message in err and "bad.pt" in err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_failed_export_leaves_the_previous_set_intact(checkpoint, tmp_path, monkeypatch, capsys):
    import neurodeploy.artifacts as artifacts
    out = tmp_path / "out"
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def fails(*args, **kwargs):
        raise UserError("lowering failed")

    monkeypatch.setattr(artifacts, "write_netx", fails)
    code, err = _cli(capsys, "export", checkpoint, "--out", out)
    assert code == 2 and "lowering failed" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before   # no temp dir left either
    manifest = json.loads((out / "manifest.json").read_text())
    from neurodeploy.files import file_digest
    assert all(file_digest(out / n) == d for n, d in manifest["files"].items())


def test_a_network_that_its_manifest_does_not_describe_is_refused(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    write_netx(_net(3), out / "network.net", json.loads(
        (out / "manifest.json").read_text()) | {"architecture": None})
    code, err = _cli(capsys, "simulate", out / "network.net", "--backend", "torch")
    assert code == 2 and _one_line(err) and "manifest.json lists" in err


def test_a_manifest_is_read_with_the_model_it_is_written_with(tmp_path, capsys):
    for name in ("network.net", "manifest.json"):
        shutil.copyfile(DIGITS.parent / name, tmp_path / name)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert written(Manifest, manifest) == manifest        # the shipped one dumps back as it is
    manifest["network"]["neurons"] = "ten"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    code, err = _cli(capsys, "simulate", tmp_path / "network.net", "--backend", "torch",
                     "--samples", "4")
    assert code == 2 and _one_line(err) and str(tmp_path / "manifest.json") in err
    assert "field network.neurons: must be an integer, got 'ten'; the manifest is damaged" in err


@pytest.mark.parametrize("verb", ["simulate", "parity", "export", "energy", "distill", "run",
                                  "merge"])
def test_unwritable_outputs_are_refused_before_any_work(tmp_path, capsys, verb, checkpoint):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = blocker / "sub"
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY)
    report = tmp_path / "report.json"
    report.write_text("{}")
    args = {"simulate": ["simulate", DIGITS, "--backend", "torch", "--out", out],
            "parity": ["parity", DIGITS, "--backends", "torch,emulator", "--out", out],
            "export": ["export", checkpoint, "--out", out],
            "energy": ["energy", report, "--out", out],
            "distill": ["distill", recipe, "--out", out],
            "run": ["run", recipe, "--runs-dir", out],
            "merge": ["merge", tmp_path, "--out", out]}[verb]
    started = time.monotonic()
    code, err = _cli(capsys, *args)
    assert code == 2 and _one_line(err)
    if verb != "merge":                 # merge first needs chunks to exist
        assert "cannot write output here" in err and str(out) in err
    assert time.monotonic() - started < 60       # generous: it must not have trained or simulated


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "not a readable .npz"),
    (lambda p: p.write_bytes(np.load.__doc__.encode()[:50]), "not a readable .npz"),
    (lambda p: np.savez(p, x=np.float32(0.5), y=np.zeros(1, int)), "array 'x' has shape []"),
    (lambda p: np.savez(p, x=np.zeros((0, 64), np.float32), y=np.zeros(0, int)),
     "array 'x' has shape [0, 64]"),
    (lambda p: np.savez(p, x=np.zeros((2, 0, 64), np.uint8), y=np.zeros(2, int)),
     "array 'x' has shape [2, 0, 64]"),
    (lambda p: np.savez(p, x=np.zeros((2, 64), np.float32), y=np.zeros((2, 1), int)),
     "array 'y' must be 1-D integer labels"),
    (lambda p: np.savez(p, x=np.full((2, 64), np.nan, np.float32), y=np.zeros(2, int)),
     "NaN or infinite"),
    (lambda p: np.savez(p, x=np.zeros((2, 64), np.float32), y=np.array([0, 10])),
     "label 10, outside the network's classes 0..9"),
    (lambda p: np.savez(p, x=np.zeros((2, 64), np.float32), y=np.array([-1, 0])),
     "label -1"),
    (lambda p: np.savez(p, x=np.zeros((2, 64), np.float32), y=np.array([0.0, 1.0])),
     "1-D integer labels"),
    (lambda p: np.savez(p, y=np.zeros(2, int)), "array 'x' is missing"),
])
def test_bad_input_arrays_are_refused(tmp_path, capsys, make, message):
    path = tmp_path / "in.npz"
    make(path)
    code, err = _cli(capsys, "simulate", DIGITS, "--backend", "torch", "--data", path, "--out",
                     tmp_path / "o")
    assert code == 2 and _one_line(err) and message in err and "in.npz" in err


@pytest.mark.slow
def test_teacher_training_resumes_after_a_kill(tmp_path):
    from neurodeploy.distill.train import train_teacher
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 8)).astype(np.float32), rng.integers(0, 3, 64)

    def fresh():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

    kw = dict(epochs=3, lr=1e-2, batch_size=16, seed=0, progress=False)
    reference, _ = train_teacher(fresh(), x, y, x, y, **kw)
    model, calls = fresh(), {"n": 0}
    forward = model.forward

    def dies_in_epoch_two(inp):
        calls["n"] += 1
        if calls["n"] == 6:            # 4 batches + 1 validation per epoch
            raise KeyboardInterrupt
        return forward(inp)

    model.forward = dies_in_epoch_two
    with pytest.raises(KeyboardInterrupt):
        train_teacher(model, x, y, x, y, checkpoint=tmp_path / "t.pt", key="k", **kw)
    assert torch.load(tmp_path / "t.pt", weights_only=True)["epoch"] == 0
    resumed, hist = train_teacher(fresh(), x, y, x, y, checkpoint=tmp_path / "t.pt", key="k", **kw)
    assert len(hist.val_accuracy) == 3
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(UserError, match="belongs to another recipe"):
        train_teacher(fresh(), x, y, x, y, checkpoint=tmp_path / "t.pt", key="other", **kw)


# The real command, paused right after it saved its first teacher state: the test kills it
# there, on an event, not after a guessed delay (a loaded machine cannot make it miss).
PAUSED_DISTILL = """
import sys
import neurodeploy.distill.train as train
from neurodeploy.cli import main
save = train._save_state
def save_then_pause(path, *args, **kwargs):
    save(path, *args, **kwargs)
    if path is not None and path.name == "teacher_state.pt":
        print("saved", flush=True)
        sys.stdin.readline()          # blocks until killed
train._save_state = save_then_pause
sys.exit(main(sys.argv[1:]))
"""
HANG_S = 600        # limits that only catch a hang, never a slow machine


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_distillation_resumes_teacher_and_student(tmp_path, sig):
    recipe = tmp_path / "slow.yaml"
    recipe.write_text(TINY.replace("epochs: 2}", "epochs: 6}"))
    out = tmp_path / "run"
    args = ["distill", str(recipe), "--out", str(out), "-q"]
    proc = subprocess.Popen([sys.executable, "-c", PAUSED_DISTILL, *args], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], HANG_S)
        assert ready and proc.stdout.readline() == "saved\n", proc.stderr.read()[-2000:]
        proc.send_signal(sig)
        proc.wait(timeout=HANG_S)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode != 0 and not (out / "checkpoint.pt").exists()
    assert torch.load(out / "teacher_state.pt", weights_only=True)["epoch"] == 0
    cmd = [sys.executable, "-m", "neurodeploy.cli", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == 0, done.stderr
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert len(ckpt["metrics"]["student_val_curve"]) == 6
    assert not list(out.glob("*_state.pt")) and not list(out.glob(".*.tmp"))


def test_a_killed_writers_temp_file_is_removed_by_the_next_run(tmp_path):
    """SIGKILL during an atomic write leaves `.<name>.<pid>.<rand>.tmp`; it must not pile up."""
    from neurodeploy.files import write_json, writable_dir
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "state.json"
    left = tmp_path / f".state.json.{dead.pid}.abcd1234.tmp"
    other = tmp_path / f".other.json.{dead.pid}.abcd1234.tmp"
    live = tmp_path / f".state.json.{os.getpid()}.abcd1234.tmp"
    for f in (left, other, live):
        f.write_text("partial")
    write_json(target, {"a": 1})
    assert not left.exists() and other.exists() and live.exists()
    writable_dir(tmp_path)
    assert not other.exists() and live.exists()
    assert json.loads(target.read_text()) == {"a": 1}
