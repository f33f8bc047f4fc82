"""The command line a user of this kind of tool expects: --version, `python -m`, per-verb help
with examples that parse, `--set` recipe overrides, a line when earlier work is reused,
history.jsonl, and logs without progress-bar escape codes when stderr is not a terminal."""
import argparse
import json
import math
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from neurodeploy.cli import build_parser, main
from neurodeploy.recipe import load_recipe

def _verbs() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


@pytest.mark.slow
def test_version_names_the_stack_and_python_m_works():
    proc = subprocess.run([sys.executable, "-m", "neurodeploy", "--version"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert "\n" not in line and line.startswith("neurodeploy 0.")
    for dist in ("torch", "lava-nc", "lava-dl", "nir"):
        assert f", {dist} " in line, line
    bad = subprocess.run([sys.executable, "-m", "neurodeploy", "inspect", "missing.net"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr


def test_every_argument_has_help():
    parsers = {"neurodeploy": build_parser(), **_verbs()}
    missing = [f"{name} {a.option_strings or a.dest}" for name, p in parsers.items()
               for a in p._actions if not a.help or a.help == argparse.SUPPRESS]
    assert not missing, missing


def test_each_verb_has_its_own_examples_and_they_parse(capsys):
    epilogs = {}
    for name, p in _verbs().items():
        lines = [ln.split("  #")[0].strip() for ln in p.epilog.splitlines()
                 if ln.strip().startswith("neurodeploy ")]
        assert lines, f"{name}: no examples"
        for line in lines:
            argv = shlex.split(line)[1:]
            assert argv[0] == name, f"{name}'s --help shows an example of {argv[0]}"
            assert build_parser().parse_args(argv).verb == name, line
            # repository-relative paths would fail from any other directory
            assert not any(a.startswith(("models/", "tests/", "benchmarks/")) for a in argv), line
        epilogs[name] = p.epilog
    assert len(set(epilogs.values())) == len(epilogs), "two verbs share their examples"
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--help"])
    assert exit_.value.code == 0 and "neurodeploy simulate runs/digits/network.net" in \
        capsys.readouterr().out


def test_set_overrides_the_recipe_before_validation():
    recipe = load_recipe("digits", {"distill.epochs": 2, "student.hidden": [32],
                                    "encoding.timesteps": 4})
    assert (recipe.distill.epochs, recipe.student.hidden, recipe.encoding.timesteps) == \
        (2, [32], 4)
    assert load_recipe("digits").distill.epochs != 2      # the file itself is untouched


@pytest.mark.parametrize("assignment, expected", [
    ("distill.epoch=2", "distill: unknown key 'epoch'; known: batch_size, chain, epochs"),
    ("foo=1", "unknown key 'foo'; known: dataset, distill"),
    ("distill.epochs=-1", "distill.epochs: must be >= 1, got -1"),
    ("student.hidden=[true]", "student.hidden[0]: must be an integer, got True"),
    ("student.hidden.x=3", "student.hidden is not a section"),
])
def test_a_bad_set_is_one_line_naming_the_key(assignment, expected, tmp_path, monkeypatch,
                                              capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--set", assignment]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neurodeploy: error: ") and err.count("\n") == 1, err
    assert "digits.yaml" in err and expected in err, err
    assert not list(tmp_path.iterdir()), "a refused recipe must create nothing"


@pytest.mark.parametrize("assignment", ["nokey", "student.hidden=[32", "=3", "a..b=1"])
def test_a_malformed_set_is_a_command_line_error(assignment, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["distill", "--set", assignment])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "--set" in err, err


def test_logs_carry_progress_lines_not_bars_when_stderr_is_not_a_terminal(tiny_run):
    """A log or CI gets no escape codes, yet no long step is silent: a line per epoch."""
    err = (tiny_run / "stderr.txt").read_text()     # progress at its default, stderr a file
    assert "\r" not in err and "\x1b" not in err, err[:500]
    lines = err.splitlines()
    assert [ln.split(",")[0] for ln in lines if ln.startswith("teacher: ")] == \
        [f"teacher: {e}/5 epochs" for e in range(1, 6)], err
    distilled = [ln for ln in lines if ln.startswith("distill: ")]
    assert [ln.split(",")[0] for ln in distilled] == \
        [f"distill: {e}/3 epochs" for e in range(1, 4)], err
    assert "validation 0." in distilled[-1] and "left" in distilled[0], err


def test_history_has_one_line_per_epoch_and_stage(tiny_run):
    history = (tiny_run / "runs/tiny/history.jsonl").read_text()
    rows = [json.loads(ln) for ln in history.splitlines()]
    assert [(r["stage"], r["epoch"]) for r in rows] == \
        [("teacher", e) for e in range(5)] + [("student", e) for e in range(3)]
    for r in rows:
        assert set(r) == {"stage", "epoch", "train_loss", "val_accuracy"}
        assert math.isfinite(r["train_loss"]) and 0 <= r["val_accuracy"] <= 1


def test_reuse_is_announced_and_fresh_retrains_with_forced_progress(tiny_run, tmp_path, capsys):
    root = tmp_path / "copy"
    shutil.copytree(tiny_run, root)
    runs, ckpt = root / "runs", root / "runs/tiny/checkpoint.pt"
    argv = ["run", str(root / "tiny.yaml"), "--runs-dir", str(runs)]
    before = ckpt.stat().st_ino
    assert main(argv + ["-q"]) == 0
    err = capsys.readouterr().err
    assert (f"reusing {ckpt} (same recipe); delete it or pass --fresh to retrain") in err, err
    assert ckpt.stat().st_ino == before, "a reused checkpoint is not rewritten"

    assert main(argv + ["--fresh", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "reusing" not in err
    assert ckpt.stat().st_ino != before, "--fresh writes a new checkpoint"
    assert "\r" in err and "distill" in err, "--progress shows the bars on a non-terminal"


def test_ctrl_c_during_start_up_is_one_line_and_exit_130():
    """Ctrl-C while the command's imports load (seconds of torch and matplotlib): pressed here
    at a fixed point, as neurodeploy.api starts importing, by an import hook of the child."""
    press = ("import os, signal, sys\n"
             "class Press:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name == 'neurodeploy.api':\n"
             "            os.kill(os.getpid(), signal.SIGINT)\n"
             "sys.meta_path.insert(0, Press())\n"
             "from neurodeploy.cli import main\n"
             "sys.exit(main(['--version']))\n")
    done = subprocess.run([sys.executable, "-c", press], capture_output=True, text=True,
                          timeout=600)
    assert (done.returncode, done.stderr, done.stdout) == (130, "neurodeploy: interrupted\n", "")


def test_progress_is_a_bar_lines_or_nothing(caplog):
    """progress.py decides alone: lines (False) carry the count, the facts and the time left,
    None says nothing, and a throttled step that ends quickly says nothing either."""
    from neurodeploy.progress import Progress
    caplog.set_level("INFO", logger="neurodeploy.progress")
    for mode in (False, None):
        with Progress("distill", 2, "epoch", mode, every=0) as shown:
            shown.update(1, validation="0.912")
            shown.update(2, validation="0.950")
    assert [r.getMessage().split(", about")[0] for r in caplog.records] == \
        ["distill: 1/2 epochs, validation 0.912", "distill: 2/2 epochs, validation 0.950"]
    caplog.clear()
    with Progress("lava", 10, "sample", False) as shown:
        shown.update(10)
    assert not caplog.records
    with Progress("lava", 10, "sample", False, every=0.01) as shown:   # a long one
        time.sleep(0.02)
        shown.update(5)
        shown.update(10)
    [line] = [r.getMessage() for r in caplog.records]
    assert re.fullmatch(r"lava: 5/10 samples, [\d.]+ samples/s, about \d+ s left", line), line


def test_a_backend_named_twice_is_refused(tmp_path, capsys):
    """Its two records would share one name, and one key of parity.json."""
    from pathlib import Path
    net = Path(__file__).parent.parent / "export" / "digits" / "network.net"
    assert main(["parity", str(net), "--backends", "torch,emulator,torch", "--samples", "2",
                 "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--backends: torch is given twice" in err, err
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("path", ["export/digits/network.net", "tests/data/lava_dl/netx_mnist.net",
                                  "tests/data/intel_ndns/ndns_delays.net"])
def test_inspect_prints_every_network_in_one_readable_layout(capsys, path):
    """CUBA and sigma-delta files alike: a header, facts one per line (no JSON), one row per
    layer as `name kind [in] -> [out] synapses; neuron`."""
    assert main(["inspect", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{path}: ") and "netx network" in lines[0]
    assert not any("{" in ln for ln in lines), lines          # no raw JSON
    rows = [ln for ln in lines if re.match(r"  \S+\s+\S.* -> \[.*; ", ln)]
    assert len(rows) == int(lines[0].split(", ")[-1].split()[0]), lines   # "<n> layers"
    assert all(len(ln) < 160 for ln in lines if not ln.startswith("  Loihi 2 (sparse")), lines
