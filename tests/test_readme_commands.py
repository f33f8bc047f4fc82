"""The README cannot drift from the tool: every command of its "Using it" block (which the
manual's Getting started includes as it is) runs, as
written, with only small sample counts and epochs added; a `pip install .` (not editable)
carries the recipes and runs from any directory; the Makefile's TORCH variable is honoured.

The commands run in README order in a scratch directory where `export/` is the repository's
(they are meant to run from the repository root), each through `main()` in this process."""
import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from neurodeploy.cli import main
from neurodeploy.errors import UserError

ROOT = Path(__file__).parent.parent
FMNIST = "fmnist_conv"
# Added where a command does not set them itself: small and fast, never what a command tests.
SMALL_SETS = {"teacher.epochs": "1", "distill.epochs": "1", "encoding.timesteps": "4",
              "teacher.hidden": "[64]", "student.hidden": "[32]"}
SMALL_SAMPLES = "8"


def readme_commands() -> list[str]:
    """The command lines of the "Using it" block, comments removed, without the venv prefix."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Using it\s+(?:<!--[^\n]*-->\s+)?```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no ```bash block under '## Using it'"
    lines = [line.split(" #")[0].strip() for line in block.group(1).splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    assert all(c.startswith(".venv/bin/neurodeploy") for c in commands), commands
    return [c.removeprefix(".venv/bin/neurodeploy").strip() for c in commands]


def _needs_fmnist(command: str) -> bool:
    return FMNIST in command or command.startswith("merge ")


def _small(argv: list[str], sets: dict[str, str] = SMALL_SETS) -> list[str]:
    """The command with small counts added (never overriding what it sets): `sets` for a
    recipe's training, a few samples to simulate, one epoch to tune."""
    verb = argv[0] if argv else ""
    argv = [a for a in argv if a != "[RECIPE]"]           # the README's placeholder: default
    if verb in ("run", "distill", "explore"):
        given = {argv[i + 1].split("=")[0] for i, a in enumerate(argv)
                 if a in ("--set", "--grid")}
        for key, value in sets.items():
            if key not in given:
                argv += ["--set", f"{key}={value}"]
        argv.append("-q")
        if verb == "explore" and "--lava-samples" not in argv:
            argv += ["--lava-samples", "4"]
    elif verb in ("simulate", "parity") and "--samples" not in argv:
        argv += ["--samples", SMALL_SAMPLES]
    elif verb == "tune" and "--epochs" not in argv:
        argv += ["--epochs", "1", "-q"]
    return argv


def _run(argv: list[str], command: str) -> None:
    try:
        code = main(argv)
    except SystemExit as e:                               # --version exits through argparse
        code = e.code
    assert code == 0, f"README command failed (exit {code}): neurodeploy {command}"


def _fill(argv: list[str]) -> list[str]:
    """runs/simulate/<folder>/simulate.json: the folder an earlier `simulate` wrote."""
    out = []
    for a in argv:
        if "<folder>" in a:
            found = sorted(Path("runs/simulate").glob("*/simulate.json"))
            assert found, f"{a}: no earlier simulate wrote runs/simulate/*/simulate.json"
            a = str(found[0])
        out.append(a)
    return out


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "export").symlink_to(ROOT / "export")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_block_is_what_these_tests_run():
    commands = readme_commands()
    verbs = {shlex.split(c)[0] for c in commands}
    assert verbs >= {"run", "distill", "explore", "export", "simulate", "parity", "merge", "inspect",
                     "energy", "tune", "--version"}, verbs
    assert any(_needs_fmnist(c) for c in commands) and not all(map(_needs_fmnist, commands))


@pytest.mark.lava
@pytest.mark.slow
def test_every_digits_command_of_the_readme_runs(workdir, capsys):
    for command in (c for c in readme_commands() if not _needs_fmnist(c)):
        _run(_fill(_small(shlex.split(command))), command)
    out = capsys.readouterr().out
    assert "neurodeploy run: digits" in out and "| lava 0." in out
    for name in ("checkpoint.pt", "network.net", "manifest.json", "report.json"):
        assert (workdir / "runs" / "digits" / name).is_file(), name
    assert (workdir / "runs" / "digits" / "energy-loihi2-proxy.json").is_file()
    for name in ("network.net", "tune.json", "tune.html"):
        assert (workdir / "runs" / "tuned" / name).is_file(), name
    assert (workdir / "runs" / "untuned" / "network.net").is_file()
    assert len(json.loads((workdir / "runs" / "explore" / "front.json").read_text())["points"]) == 4


@pytest.mark.lava
@pytest.mark.slow
def test_every_fashion_mnist_command_of_the_readme_runs(workdir):
    from neurodeploy.data import load_dataset
    try:
        load_dataset("fashion-mnist")
    except UserError as e:
        pytest.skip(f"Fashion-MNIST is not installed here: {e}")
    for command in (c for c in readme_commands() if _needs_fmnist(c)):
        argv = _small(shlex.split(command))
        if "--shard" in argv:           # merge joins all four shards: run the other three too
            for i in range(1, 4):
                _run([{"0/4": f"{i}/4", "s0": f"s{i}"}.get(a, a) for a in argv], command)
        _run(argv, command)
    merged = json.loads((workdir / "merged" / "simulate.json").read_text())
    assert len(merged["predictions"]) == int(SMALL_SAMPLES)


def _copy_project(dest: Path) -> Path:
    """The files a build reads, outside the repository (a build writes build/ and egg-info)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("neurodeploy", "models"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    return dest


@pytest.mark.slow
def test_a_wheel_holds_every_module_and_recipe_and_runs_from_anywhere(tmp_path):
    pytest.importorskip("setuptools", minversion="70.1")   # builds wheels without `wheel`
    src = _copy_project(tmp_path / "src")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                           cwd=src, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("neurodeploy-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    recipes = {f"neurodeploy/models/{p.name}" for p in (ROOT / "models").glob("*.yaml")}
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "neurodeploy").rglob("*.py")}
    assert recipes and recipes <= names, sorted(recipes - names)
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)}"
    # installed as a plain (not editable) package, used from a directory with no models/
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                              "-q", "--target", str(site), str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    probe = subprocess.run(
        [sys.executable, "-c", "import neurodeploy; from neurodeploy.recipe import load_recipe; "
         "print(neurodeploy.__file__); print(load_recipe('digits').name)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert probe.returncode == 0, probe.stderr[-2000:]
    where, name = probe.stdout.split()
    assert Path(where).is_relative_to(site) and name == "digits"
    listed = subprocess.run([sys.executable, "-m", "neurodeploy", "run", "no_such_recipe"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert listed.returncode == 2 and "digits, digits_full_range, fmnist_conv" in listed.stderr


@pytest.mark.slow
@pytest.mark.parametrize("verb", [["parity", "--backends", "torch,lava"],
                                  ["simulate", "--backend", "lava"]], ids=["parity", "simulate"])
def test_without_lava_a_lava_backend_is_one_line_naming_the_install(tmp_path, verb):
    """Lava absent (its import fails as it does where it is not installed): exit 2 and one
    error line that names the install command, no traceback."""
    script = ("import sys; sys.modules['lava'] = None\n"
              "from neurodeploy.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", script, verb[0],
                           str(ROOT / "export" / "digits" / "network.net"), *verb[1:],
                           "--samples", "2", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("neurodeploy: ")]
    assert len(errors) == 1 and errors[0] == proc.stderr.strip().splitlines()[-1], proc.stderr
    assert "Lava is not installed" in errors[0]
    assert "pip install --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0" \
        in errors[0]
    if verb[0] == "parity":             # no chunks, no progress line: the whole of stderr
        assert proc.stderr.strip() == errors[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed here")
def test_the_makefile_installs_the_torch_it_is_given():
    """make -n prints what setup would run, without running it."""
    dry = subprocess.run(["make", "-n", "-B", "setup", "TORCH=torch==9.9.9 --index-url X"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stderr
    assert "pip install -q torch==9.9.9 --index-url X" in dry.stdout
    default = subprocess.run(["make", "-n", "-B", "setup"], cwd=ROOT, capture_output=True,
                             text=True, timeout=600)
    assert "pip install -q torch==2.13.0\n" in default.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed here")
def test_make_test_fast_selects_by_registered_markers():
    """`make test-fast` (docs/contributing.md) runs pytest -m EXPR: every name in EXPR is a
    registered marker (an unknown one would silently select nothing), and the subset leaves
    out a Lava test file whole and keeps a file of fast unit tests whole."""
    import tomllib
    dry = subprocess.run(["make", "-n", "test-fast"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    argv = shlex.split(next(ln for ln in dry.stdout.splitlines() if " -m pytest " in ln))
    rest = argv[argv.index("pytest"):]                  # pytest's own -m, not python's
    expr = rest[rest.index("-m") + 1]
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"]["markers"]
    registered = {m.split(":")[0] for m in markers}
    assert set(re.findall(r"\w+", expr)) - {"not", "and", "or"} == registered == \
        {"lava", "slow", "fuzz", "gpu"}, expr
    picked = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", expr,
                             "tests/test_lava.py", "tests/test_formats.py"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    chosen = [ln for ln in picked.stdout.splitlines() if "::" in ln]
    assert chosen and all(ln.startswith("tests/test_formats.py") for ln in chosen), picked.stdout
