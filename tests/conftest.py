"""Fixtures shared by the test files."""
from pathlib import Path

import pytest

from neurodeploy.cli import main
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
