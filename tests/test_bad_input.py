"""Every user mistake: one line naming the file, the problem and the fix; exit 2; no traceback."""
import pytest
import torch

from neurodeploy.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    err = capsys.readouterr().err
    return code, err


@pytest.fixture
def files(tmp_path):
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage")
    torch.save({"format": "something-else"}, tmp_path / "foreign.pt")
    (tmp_path / "corrupt.nir").write_bytes(b"garbage")
    (tmp_path / "corrupt.net").write_bytes(b"garbage")
    (tmp_path / "typo.yaml").write_text("name: x\nstudent:\n  hiden: [10]\n")
    (tmp_path / "badloss.yaml").write_text("distill:\n  losses: [{name: kd_magic}]\n")
    (tmp_path / "badparam.yaml").write_text(
        "distill:\n  losses: [{name: logit_kd, temprature: 3}]\n")
    (tmp_path / "badneuron.yaml").write_text("student:\n  neuron: {threshold: 999999}\n")
    (tmp_path / "notyaml.yaml").write_text("a: [unclosed\n")
    return tmp_path


CASES = [
    (("export", "{d}/missing.pt"), "missing.pt: no such checkpoint"),
    (("export", "{d}/corrupt.pt"), "corrupt.pt: not a readable checkpoint"),
    (("export", "{d}/foreign.pt"), "foreign.pt: not a neurodeploy checkpoint"),
    (("inspect", "{d}/missing.nir"), "missing.nir: no such NIR file"),
    (("inspect", "{d}/corrupt.nir"), "corrupt.nir: not a readable NIR graph"),
    (("inspect", "{d}/corrupt.net"), "corrupt.net: not a readable HDF5 netx file"),
    (("simulate", "{d}/corrupt.net", "--backend", "lava"), "corrupt.net: not a readable HDF5"),
    (("run", "{d}/typo.yaml"), "unknown key 'hiden'"),
    (("run", "{d}/badloss.yaml"), "unknown loss 'kd_magic'; available: attention, ce,"),
    (("run", "{d}/badparam.yaml"), "unknown parameter(s) temprature; allowed: temperature"),
    (("run", "{d}/badneuron.yaml"), "student.neuron.threshold: must be <= 131071"),
    (("run", "{d}/notyaml.yaml"), "notyaml.yaml: not valid YAML"),
    (("run", "no-such-recipe"), "no such recipe; available in models/: digits"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a[:1]) + ":" + m.split(":")[0]
                                                      for a, m in CASES])
def test_bad_input_gives_one_clear_line(files, capsys, args, message):
    code, err = run_cli(capsys, *(a.format(d=files) for a in args))
    assert code == 2
    assert err.startswith("neurodeploy: error: ") and err.count("\n") == 1
    assert message in err
    assert not list(files.glob("**/*.tmp")) and not (files / "runs").exists()


@pytest.mark.parametrize("network", ["export/snntorch_digits/snntorch_mlp.nir",
                                     "export/digits/network.net"])
def test_an_unknown_data_name_is_said_first_in_the_options_words(network, capsys):
    """--data mnist: the value to fix comes first (not a demand for --timesteps that would not
    help), in the words of the option, naming what there is."""
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / network
    code, err = run_cli(capsys, "simulate", str(path), "--data", "mnist", "--backend", "torch")
    assert code == 2 and err.count("\n") == 1, err
    assert err == ("neurodeploy: error: --data mnist: no such dataset; give digits, "
                   "fashion-mnist or the path of a .npz file (x and y, or a dataset's x_train "
                   "... y_test)\n")
