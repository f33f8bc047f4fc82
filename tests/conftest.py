"""Fixtures shared by the test files."""
import contextlib
from pathlib import Path

import numpy as np
import pytest

from neurodeploy.cli import main
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork
from neurodeploy.recipe import load_recipe


@pytest.fixture(scope="session")
def run_recipe():
    """`neurodeploy run -q` of a recipe's YAML text (written to root/tiny.yaml) into
    root/runs; returns the run's folder, root/runs/<recipe name>. A function, so that a
    module's shared run and a single test's own run start the same way."""
    def run(text: str, root: Path) -> Path:
        recipe = root / "tiny.yaml"
        recipe.write_text(text)
        assert main(["run", str(recipe), "--runs-dir", str(root / "runs"), "-q"]) == 0
        return root / "runs" / load_recipe(recipe).name
    return run


TINY = """
name: tiny
encoding: {timesteps: 8}
teacher: {hidden: [64], epochs: 5}
student: {hidden: [32]}
distill: {epochs: 3}
"""


@pytest.hookimpl(tryfirst=True)      # before -m deselects
def pytest_collection_modifyitems(items):
    """A test that uses the trained run shares its subjects: it trains, and it runs Lava."""
    for item in items:
        if "tiny_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lava)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The one trained run of the suite: `neurodeploy run` of TINY (trained: well above
    chance), with progress at its default while stderr is a file, not a terminal. Shared
    read-only (copy what a test changes): root/tiny.yaml, root/runs/tiny/ (every artifact),
    root/stderr.txt (what the run printed there). Tests that train anew use their own recipe."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "tiny.yaml").write_text(TINY)
    with open(root / "stderr.txt", "w") as err, contextlib.redirect_stderr(err):
        code = main(["run", str(root / "tiny.yaml"), "--runs-dir", str(root / "runs")])
    assert code == 0, (root / "stderr.txt").read_text()[-2000:]
    return root


@pytest.fixture
def net():
    """A small two-layer integer network (one decay of each extreme) for format round trips."""
    rng = np.random.default_rng(0)
    return IntNetwork(6, (
        IntLayer(rng.integers(-128, 128, (5, 6)) * 2, CubaParams(1024, 256, 128), name="fc0"),
        IntLayer(rng.integers(-128, 128, (3, 5)) * 2, CubaParams(4096, 0, 77), name="fc1")))
