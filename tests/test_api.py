"""The Python API: the README's example runs as written, and each verb matches the CLI's."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset

import neurodeploy
from neurodeploy import api
from neurodeploy import api as nd
from neurodeploy.errors import UserError
from neurodeploy.neurons import CubaParams, SpikingNet

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_example() -> str:
    section = README.read_text().split("## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Python section shows one example"
    return blocks[0]


def _digits(n_train=240, n_test=10):
    d = load_digits()
    x = (d.data / 16).astype(np.float32)
    return x[:n_train], d.target[:n_train], x[-n_test:], d.target[-n_test:]


def _teacher(x, y):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.as_tensor(x)), torch.as_tensor(y)).backward()
        opt.step()
    return model.eval()


@pytest.mark.lava
@pytest.mark.slow
def test_the_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    """A user's folder: their data.npz and teacher.pt, then the README's lines as written."""
    x_tr, y_tr, x_te, y_te = _digits()
    np.savez(tmp_path / "data.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    torch.jit.save(torch.jit.script(_teacher(x_tr, y_tr)), tmp_path / "teacher.pt")
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_example(), str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "'deployed_exact'" in out and re.search(r"^lava \d\.\d+$", out, re.M), out
    manifest = json.loads((tmp_path / "runs/mine/manifest.json").read_text())
    assert manifest["dataset"]["file"] == str(tmp_path / "data.npz")


@pytest.mark.slow
def test_a_torch_dataset_and_module_teacher_distill_like_files(tmp_path):
    x_tr, y_tr, x_te, y_te = _digits(200, 10)
    x = np.concatenate([x_tr, x_te])
    y = np.concatenate([y_tr, y_te])
    data = TensorDataset(torch.as_tensor(x.reshape(-1, 1, 8, 8)), torch.as_tensor(y))
    teacher = _teacher(x_tr, y_tr)
    ckpt = nd.distill({"name": "ds", "encoding": {"timesteps": 4}, "student": {"hidden": [8]},
                       "distill": {"epochs": 1}}, tmp_path, teacher=teacher, data=data)
    saved = np.load(tmp_path / "data.npz")
    assert len(saved["y_test"]) == 42 and len(saved["y_train"]) == 168   # seeded 20% test
    info = api.inspect(ckpt)
    assert info["kind"] == "checkpoint"
    assert info["provenance"]["teacher"] == {"module": "Sequential"}
    test_x = torch.as_tensor(saved["x_test"].reshape(-1, 64))
    expected = float((teacher(test_x).argmax(1).numpy() == saved["y_test"]).mean())
    assert info["metrics"]["teacher_test_accuracy"] == pytest.approx(expected)
    with pytest.raises(UserError, match="data: the dataset is empty"):
        nd.distill({"name": "e"}, tmp_path / "e", data=TensorDataset(torch.zeros(0, 64),
                                                                     torch.zeros(0)))


@pytest.mark.slow
def test_a_spikingnet_built_in_python_exports_in_one_call(tmp_path):
    torch.manual_seed(0)
    student = SpikingNet((64,), 10, [CubaParams(1024, 256, 128)] * 2, hidden=[16])
    manifest = nd.export(student, tmp_path)
    assert manifest["dataset"]["name"] == "digits" and manifest["accuracy"]["samples"] == 360
    sim = nd.simulate(tmp_path / "network.net", backend="torch", samples=5)
    assert sim["samples"] == 5 and sim["record"].timesteps == 16
    parity = nd.parity(tmp_path / "network.net", backends=("torch", "emulator"), samples=5)
    assert parity["spike_mismatches"] == 0 and parity["samples"] == 5
    x_tr, y_tr, x_te, y_te = _digits(10, 4)        # in-memory inputs: checked like a .npz
    mine = nd.simulate(tmp_path / "network.net", inputs=(x_te, y_te), backend="torch")
    assert mine["samples"] == 4 and list(mine["labels"]) == list(y_te)
    with pytest.raises(UserError, match="NaN"):
        nd.simulate(tmp_path / "network.net", inputs=(x_te * np.nan, y_te))
    assert neurodeploy.export is api.export and neurodeploy.simulate is api.simulate
    layers = api.inspect(tmp_path / "network.net")["layers"]
    assert [layer["shape"] for layer in layers] == [[16], [10]]
    with pytest.raises(UserError, match="do not fit"):
        nd.export(SpikingNet((32,), 10, [CubaParams(1024, 256, 128)]), tmp_path / "bad")
    before = (tmp_path / "checkpoint.pt").read_bytes()      # another student, same folder
    other = SpikingNet((64,), 10, [CubaParams(1024, 256, 128)] * 2, hidden=[8])
    with pytest.raises(UserError, match="already holds a student"):
        nd.export(other, tmp_path)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert nd.export(other, tmp_path, fresh=True)["files"]


def test_a_dataloader_is_materialized_with_the_same_checks(tmp_path):
    from torch.utils.data import DataLoader

    from neurodeploy.data.datasets import load_file_dataset, save_dataset
    x_tr, y_tr, x_te, y_te = _digits(60, 8)
    pair = (DataLoader(TensorDataset(torch.as_tensor(x_tr), torch.as_tensor(y_tr)), batch_size=7),
            TensorDataset(torch.as_tensor(x_te), torch.as_tensor(y_te)))
    data = load_file_dataset(save_dataset(pair, tmp_path / "d.npz"))
    assert len(data.test) == 8 and len(data.train) + len(data.val) == 60
    assert np.array_equal(data.test.x, x_te)
    bad = TensorDataset(torch.as_tensor(x_tr * 3), torch.as_tensor(y_tr))
    with pytest.raises(UserError, match="spans"):
        load_file_dataset(save_dataset({"train": bad, "test": bad}, tmp_path / "bad.npz"))


def test_simulate_and_parity_share_one_execution_object():
    """device, timeout and progress: one api.Execution (the command line's) or the keywords,
    checked when made; both at once is refused rather than one silently winning."""
    net = Path(__file__).parent.parent / "export" / "digits" / "network.net"
    run = api.Execution(device="cpu", timeout=60, progress=None)
    with pytest.raises(Exception, match="frozen|cannot assign"):
        run.timeout = 1
    sim = api.simulate(net, backend="torch", samples=3, execution=run)
    assert sim["accuracy"] == api.simulate(net, backend="torch", samples=3)["accuracy"]
    assert api.parity(net, backends=("torch", "emulator"), samples=3,
                      execution=run)["spike_mismatches"] == 0
    with pytest.raises(UserError, match="not both"):
        api.simulate(net, backend="torch", samples=3, execution=run, timeout=5)
    with pytest.raises(UserError, match="timeout -1: give a positive"):
        api.Execution(timeout=-1)
    with pytest.raises(UserError, match="--device 'gpu0': not a torch device"):
        api.Execution(device="gpu0")
