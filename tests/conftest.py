"""Fixtures shared by the test files."""
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


@pytest.fixture
def net():
    """A small two-layer integer network (one decay of each extreme) for format round trips."""
    rng = np.random.default_rng(0)
    return IntNetwork(6, (
        IntLayer(rng.integers(-128, 128, (5, 6)) * 2, CubaParams(1024, 256, 128), name="fc0"),
        IntLayer(rng.integers(-128, 128, (3, 5)) * 2, CubaParams(4096, 0, 77), name="fc1")))
