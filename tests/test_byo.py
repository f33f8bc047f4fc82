"""Bring your own teacher and data: a TorchScript / torch.export teacher and a dataset .npz go
through one recipe and one command to a network deployed on Lava, with the same checks,
fixed splits and provenance as the built-in teachers and datasets."""
import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from neurodeploy.cli import main
from neurodeploy.data.datasets import load_file_dataset
from neurodeploy.distill.teacher_file import teacher_module
from neurodeploy.errors import UserError


class SmallCNN(nn.Module):
    """A teacher as a user would write it: two conv stages and a linear head."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        return self.fc(self.layer2(self.layer1(x)).mean((2, 3)))


def _digits(n_train=240, n_test=12):
    d = load_digits()
    x = (d.data / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    return x[:n_train], d.target[:n_train], x[-n_test:], d.target[-n_test:]


@pytest.fixture(scope="module")
def byo(tmp_path_factory):
    """A user's folder: data.npz, a trained teacher as TorchScript and as a .pt2 program."""
    root = tmp_path_factory.mktemp("byo")
    x_tr, y_tr, x_te, y_te = _digits()
    np.savez(root / "data.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    torch.manual_seed(0)
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.as_tensor(x_tr)), torch.as_tensor(y_tr)).backward()
        opt.step()
    model.eval()
    torch.jit.save(torch.jit.script(model), root / "teacher.pt")
    # exported with a fixed batch of 4: the wrapper runs other batch sizes in padded chunks
    torch.export.save(torch.export.export(model, (torch.as_tensor(x_tr[:4]),)),
                      root / "teacher.pt2")
    return root, model


def _recipe(root, name, body):
    path = root / f"{name}.yaml"
    path.write_text(f"name: {name}\n{body}")
    return str(path)


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.lava
@pytest.mark.slow
def test_one_recipe_one_command_deploys_a_student_of_your_teacher_and_data(byo, tmp_path,
                                                                           capsys):
    root, model = byo
    recipe = _recipe(root, "mine", "dataset: {file: data.npz}\nencoding: {timesteps: 8}\n"
                     "teacher: {file: teacher.pt}\nstudent: {hidden: [16]}\n"
                     "distill: {epochs: 1}\n")
    assert main(["run", recipe, "--runs-dir", str(tmp_path), "-q"]) == 0
    out = tmp_path / "mine"
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    with np.load(root / "data.npz") as z:       # the teacher's accuracy, measured independently
        expected = (model(torch.as_tensor(z["x_test"])).argmax(1).numpy() == z["y_test"]).mean()
    assert ckpt["metrics"]["teacher_test_accuracy"] == pytest.approx(expected)
    assert ckpt["teacher"] is None              # a file teacher is recorded by its hash
    prov = ckpt["provenance"]
    assert prov["dataset"]["sha256"] == _sha256(root / "data.npz")
    assert prov["dataset"]["samples"] == {"train": 216, "val": 24, "test": 12}
    assert prov["teacher"]["sha256"] == _sha256(root / "teacher.pt")
    history = (out / "history.jsonl").read_text().splitlines()
    stages = {json.loads(line)["stage"] for line in history}
    assert stages == {"student"}                # trained elsewhere: never retrained here
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"]["sha256"] == _sha256(root / "data.npz")
    assert manifest["accuracy"]["samples"] == 12
    assert manifest["accuracy"]["teacher"] == pytest.approx(expected)
    report = json.loads((out / "report.json").read_text())
    assert report["backend"].startswith("lava") and report["samples"] == 12
    assert report["parity"]["spike_mismatches"] == 0
    # deploy again by hand: the dataset file's test split, a few samples on Lava
    capsys.readouterr()
    assert main(["simulate", str(out / "network.net"), "--backend", "lava", "--samples", "3",
                 "--data", str(root / "data.npz"), "--out", str(tmp_path / "sim")]) == 0
    sim = json.loads((tmp_path / "sim" / "simulate.json").read_text())
    assert sim["samples"] == 3 and sim["labels"] == [int(v) for v in np.load(
        root / "data.npz")["y_test"][:3]]


@pytest.mark.slow
def test_feature_losses_read_the_named_layers_of_an_exported_teacher(byo, tmp_path):
    root, model = byo
    recipe = _recipe(root, "feat", "dataset: {file: data.npz}\nencoding: {timesteps: 4}\n"
                     "teacher: {file: teacher.pt2, features: [layer1, layer2], head: fc}\n"
                     "student: {conv: [{channels: 4, kernel: 3, stride: 2, padding: 1}, "
                     "{channels: 8, kernel: 3, stride: 2, padding: 1}], hidden: [16]}\n"
                     "distill: {epochs: 1, losses: [{name: ce}, {name: samd}, "
                     "{name: feature_kd}, {name: attention}]}\n")
    assert main(["distill", recipe, "--out", str(tmp_path), "-q"]) == 0
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    with np.load(root / "data.npz") as z:       # the .pt2 program is `model`: measured here
        expected = (model(torch.as_tensor(z["x_test"])).argmax(1).numpy() == z["y_test"]).mean()
    assert ckpt["metrics"]["teacher_test_accuracy"] == pytest.approx(expected)
    assert ckpt["provenance"]["teacher"]["sha256"] == _sha256(root / "teacher.pt2")
    # the hooked maps and the CAM are the module's own stage outputs, for any batch size
    teacher = teacher_module(root / "teacher.pt2", (1, 8, 8), 10, ["layer1", "layer2"], "fc")
    x = torch.rand(6, 64)
    logits, maps = teacher(x, features=True)
    images = x.reshape(6, 1, 8, 8)
    with torch.no_grad():
        first = model.layer1(images)
        assert torch.allclose(logits, model(images), atol=1e-5)
        assert torch.allclose(maps[0], first, atol=1e-5)
        assert torch.allclose(maps[1], model.layer2(first), atol=1e-5)
    assert teacher.cam(maps[1], logits).shape == (6, 2, 2)
    assert teacher.channels == [8, 16]


@pytest.mark.slow
def test_spike_train_datasets_are_deployed_as_given(tmp_path):
    x_tr, y_tr, x_te, y_te = _digits(120, 6)
    spikes = lambda x: (np.random.default_rng(0).random((len(x), 5, 64))  # noqa: E731
                        < x.reshape(len(x), 1, 64)).astype(np.float32)    # floats of exact 0/1
    np.savez(tmp_path / "spikes.npz", x_train=spikes(x_tr), y_train=y_tr, x_test=spikes(x_te),
             y_test=y_te)
    data = load_file_dataset(tmp_path / "spikes.npz")
    assert data.timesteps == 5 and data.shape == (64,)
    test = data.encoded("test", {"name": "rate", "timesteps": 5})
    assert test.dtype == np.uint8 and np.array_equal(test, spikes(x_te))
    recipe = _recipe(tmp_path, "spk", "dataset: {file: spikes.npz}\nencoding: {timesteps: 5}\n"
                     "student: {hidden: [8]}\ndistill: {epochs: 1, losses: [{name: ce}]}\n")
    assert main(["distill", recipe, "--out", str(tmp_path / "run"), "-q"]) == 0
    assert main(["export", str(tmp_path / "run" / "checkpoint.pt")]) == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["accuracy"]["samples"] == 6
    wrong_t = _recipe(tmp_path, "spk8", "dataset: {file: spikes.npz}\nencoding: {timesteps: 8}\n"
                      "distill: {losses: [{name: ce}]}\n")
    with pytest.raises(UserError, match="T=5 steps; set encoding.timesteps: 5"):
        from neurodeploy.distill.run import distill
        from neurodeploy.recipe import load_recipe
        distill(load_recipe(wrong_t), tmp_path / "run8", progress=False)


def test_splits_are_fixed_seeded_and_recorded(tmp_path):
    x_tr, y_tr, x_te, y_te = _digits(200, 10)
    np.savez(tmp_path / "a.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    one, again = load_file_dataset(tmp_path / "a.npz"), load_file_dataset(tmp_path / "a.npz")
    other = load_file_dataset(tmp_path / "a.npz", split_seed=1)
    assert np.array_equal(one.val.x, again.val.x) and not np.array_equal(one.val.x, other.val.x)
    assert len(one.val) == 20 and len(one.train) == 180 and len(one.test) == 10
    assert sorted(np.unique(one.val.y)) == list(range(10))      # stratified
    np.savez(tmp_path / "b.npz", x_train=x_tr, y_train=y_tr, x_val=x_te[:4], y_val=y_te[:4],
             x_test=x_te, y_test=y_te)
    given = load_file_dataset(tmp_path / "b.npz")
    assert np.array_equal(given.val.y, y_te[:4]) and len(given.train) == 200


def test_a_changed_dataset_file_is_refused_at_export(tmp_path, capsys):
    x_tr, y_tr, x_te, y_te = _digits(100, 6)
    np.savez(tmp_path / "d.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    recipe = _recipe(tmp_path, "d", "dataset: {file: d.npz}\nencoding: {timesteps: 4}\n"
                     "student: {hidden: [8]}\ndistill: {epochs: 1, losses: [{name: ce}]}\n")
    assert main(["distill", recipe, "--out", str(tmp_path / "run"), "-q"]) == 0
    np.savez(tmp_path / "d.npz", x_train=x_tr, y_train=y_tr, x_test=x_te[::-1], y_test=y_te)
    capsys.readouterr()
    assert main(["export", str(tmp_path / "run" / "checkpoint.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "d.npz: its sha256" in err and "restore that file or distill again" in err
    assert len(err.splitlines()) == 1


def _bad_data(root, **change):
    x_tr, y_tr, x_te, y_te = _digits(60, 6)
    arrays = {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te, **change}
    np.savez(root / "data.npz", **{k: v for k, v in arrays.items() if v is not None})


BAD_DATA = [
    ({"y_test": None}, "array 'y_test' is missing"),
    ({"y_train": np.zeros(59, np.int64)}, "x_train has 60 samples but y_train has 59"),
    ({"y_test": np.full(6, 12)}, "label 12, a class the training set never shows"),
    ({"y_train": np.linspace(0, 9, 60)}, "'y_train' must be 1-D integer labels"),
    ({"y_test": np.full(6, -1)}, "'y_test' holds label -1; labels are class indices"),
    ({"x_test": np.full((6, 1, 8, 8), np.nan, np.float32)}, "'x_test' holds NaN"),
    ({"x_train": np.full((60, 1, 8, 8), 255, np.float32)}, "spans [255, 255]; analog inputs"),
    ({"x_train": np.array(["a"] * 60)}, "'x_train' has dtype <U1"),
    ({"x_train": np.zeros((0, 1, 8, 8), np.float32), "y_train": np.zeros(0, np.int64)},
     "'x_train' has shape [0, 1, 8, 8]"),
    ({"x_test": np.zeros((6, 64), np.float32)}, "the splits' samples differ in shape"),
]


@pytest.mark.parametrize("change,message", BAD_DATA, ids=[m for _, m in BAD_DATA])
def test_bad_data_is_one_clear_line(tmp_path, capsys, change, message):
    _bad_data(tmp_path, **change)
    recipe = _recipe(tmp_path, "bad", "dataset: {file: data.npz}\n"
                     "distill: {losses: [{name: ce}]}\n")
    assert main(["distill", recipe, "--out", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data.npz" in err and message in err, err


def _bad_teachers(root):
    torch.save(SmallCNN().state_dict(), root / "state_dict.pt")
    (root / "garbage.pt").write_bytes(b"not a model at all")
    torch.jit.save(torch.jit.script(SmallCNN(classes=3)), root / "three.pt")
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(100, 10))),
                   root / "wide.pt")


BAD_TEACHERS = [
    ("{file: state_dict.pt}", "state_dict.pt: teacher.file is neither a TorchScript nor a "
                              "torch.export file"),
    ("{file: garbage.pt}", "garbage.pt: teacher.file is neither"),
    ("{file: missing.pt}", "missing.pt: no such teacher file"),
    ("{file: three.pt}", "the teacher outputs [1, 3] per batch of 1, the dataset has 10 classes"),
    ("{file: wide.pt}", "does not accept the data's samples of shape [1, 8, 8]"),
    ("{file: teacher.pt2, features: [layer1, layer9]}", "has no layer 'layer9'; available: "
                                                        "layer1, layer1.0"),
    ("{file: teacher.pt, features: [layer1]}", "TorchScript modules do not run"),
]


@pytest.mark.parametrize("teacher,message", BAD_TEACHERS, ids=[m for _, m in BAD_TEACHERS])
def test_bad_teachers_are_one_clear_line(byo, tmp_path, capsys, teacher, message):
    root, _ = byo
    for name in ("data.npz", "teacher.pt", "teacher.pt2"):
        shutil.copy(root / name, tmp_path / name)
    _bad_teachers(tmp_path)
    recipe = _recipe(tmp_path, "badt", f"dataset: {{file: data.npz}}\nteacher: {teacher}\n"
                     "student: {conv: [{channels: 4, kernel: 3, stride: 2}]}\n"
                     "distill: {epochs: 1}\n")
    assert main(["distill", recipe, "--out", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
