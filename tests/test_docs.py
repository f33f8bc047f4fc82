"""The manual cannot lie: the site in docs/ builds with no warnings (a broken link or anchor
fails), fetches nothing from another host when viewed, and every code block of its pages runs.

Blocks, by language: `bash` lines are commands (`neurodeploy ...` runs through main() in this
process with small sample counts and epochs added, never overriding what a line sets; `make`
lines are dry-run with `make -n`; `pip install` pins must be the Makefile's; `python -m
torch.distributed.run ... -m neurodeploy ARGS` runs ARGS in one process, the launcher itself
being tests/test_distributed.py's); `python` blocks are executed; a `yaml` block has a
`title="FILE"` and is written to FILE before the commands after it; `text` blocks are output.
Pages run in the order of mkdocs.yml's nav, in one scratch directory where export/ and
tests/data are the repository's, each command line once. The README's blocks are included into
the site (pymdownx.snippets), not copied: tests/test_readme_commands.py and tests/test_api.py
run them."""
import html
import os
import re
import shlex
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml

from neurodeploy.cli import main
from test_readme_commands import _small as readme_small

pytestmark = [pytest.mark.lava, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```", re.S | re.M)
KINDS = {"bash", "python", "yaml", "text"}
SMALL_SETS = {"distill.epochs": "1", "encoding.timesteps": "4", "student.hidden": "[32]"}
SMALL_TEACHER = {"teacher.epochs": "1", "teacher.hidden": "[64]"}   # recipes that train one
TORCHRUN = "python -m torch.distributed.run"


def nav_pages() -> list[Path]:
    """The pages of mkdocs.yml's nav, in order."""
    def walk(node):
        if isinstance(node, str):
            yield DOCS / node
        elif isinstance(node, dict):
            for value in node.values():
                yield from walk(value)
        else:
            for item in node:
                yield from walk(item)
    return list(walk(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]))


def blocks(page: Path) -> list[tuple[str, str, str]]:
    """(language, attributes, body) of every fenced block of a page."""
    return [(m[1], m[2].strip(), m[3]) for m in FENCE.finditer(page.read_text())]


def commands(body: str) -> list[str]:
    lines = [line.split(" #")[0].strip() for line in body.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_every_page_is_in_the_nav_and_every_block_is_a_kind_the_suite_runs():
    pages = nav_pages()
    on_disk = {p for p in DOCS.rglob("*.md")}
    assert set(pages) == on_disk, f"pages outside the nav: {sorted(on_disk - set(pages))}"
    for page in pages:
        for lang, attrs, body in blocks(page):
            where = f"{page.relative_to(ROOT)}: a ```{lang} block"
            assert lang in KINDS, f"{where}: the suite runs bash, python, yaml; text is output"
            if lang == "yaml":
                assert re.fullmatch(r'title="[\w.-]+"', attrs), f"{where} needs title=\"FILE\""
            if lang == "bash":
                for line in commands(body):
                    assert line.split()[0] in ("neurodeploy", "make", "pip") \
                        or line.startswith(TORCHRUN), f"{where}: no way to run {line!r}"


def test_the_install_lines_are_the_makefiles():
    makefile = (ROOT / "Makefile").read_text()
    seen = 0
    for page in nav_pages():
        for lang, _, body in blocks(page):
            for line in (c for c in commands(body) if lang == "bash"):
                if line.startswith("pip "):
                    for pin in re.findall(r"[\w.-]+==[\w.+]+", line):
                        seen += 1
                        assert pin in makefile, f"{page.name}: {pin} is not what the Makefile installs"
                elif line.startswith("make "):
                    seen += 1
                    dry = subprocess.run(["make", "-n", *shlex.split(line)[1:]], cwd=ROOT,
                                         capture_output=True, text=True, timeout=600)
                    assert dry.returncode == 0, f"{page.name}: {line}: {dry.stderr}"
    assert seen


class _Assets(HTMLParser):
    """Everything a page loads when viewed: scripts, stylesheets, images, fonts, frames."""
    def __init__(self):
        super().__init__()
        self.loads = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video") and a.get("src"):
            self.loads.append(a["src"])
        if tag == "link" and a.get("href") and a.get("rel") not in ("canonical",):
            self.loads.append(a["href"])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                           cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stderr[-4000:]
    assert "WARNING" not in build.stderr, build.stderr[-4000:]
    return out


def test_the_site_builds_with_no_warnings_and_fetches_nothing_from_elsewhere(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= len(nav_pages())
    for page in pages:
        parser = _Assets()
        parser.feed(page.read_text())
        remote = [u for u in parser.loads if re.match(r"(https?:)?//", u)]
        assert not remote, f"{page.relative_to(site)} loads {remote}"
    for css in site.rglob("*.css"):
        assert not re.search(r"url\(['\"]?(https?:)?//", css.read_text()), css
    assert "fonts.googleapis" not in (site / "index.html").read_text()


def test_the_site_shows_what_the_readme_and_the_code_say(site):
    """Included README blocks, the generated references and the rendered results are there."""
    text = lambda page: html.unescape(re.sub(r"<[^>]+>", "", (site / page).read_text()))  # noqa: E731
    start = text("getting-started.html")
    assert "neurodeploy run: digits" in start and "neurodeploy tune" in start
    assert '"readout": True' in text("guides/own-teacher.html")
    cli = text("reference/cli.html")
    from neurodeploy.cli import build_parser
    verbs = build_parser()._subparsers._group_actions[0].choices
    for verb in verbs:
        assert f"neurodeploy {verb}" in cli, verb
    assert "distill_fmnist" not in cli and "--reset-delay" in cli
    formats = text("reference/formats.html")
    assert "synaptic_op_pj" in formats and "readout" in formats
    api = text("reference/api.html")
    raw = (site / "reference" / "api.html").read_text()
    assert all(f'id="neurodeploy.api.{v}"' in raw for v in ("distill", "export", "simulate", "tune"))
    assert "Args" in api or "Returns" in api or "checkpoint" in api


def test_the_readme_is_short_and_its_links_land(site):
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "make demo" in readme and "make test" in readme
    assert "neurodeploy run: digits" in readme.split("<!-- demo_summary:begin -->")[1]
    links = re.findall(r"\]\((docs/[^)#]+\.md)(?:#([\w-]+))?\)", readme)
    assert any("trained-elsewhere" in f for f, _ in links)
    assert ("docs/guides/energy.md", "what-the-figure-means") in links
    for file, anchor in links:
        assert (ROOT / file).is_file(), file
        html = (site / Path(file).relative_to("docs").with_suffix(".html")).read_text()
        assert not anchor or f'id="{anchor}"' in html, f"{file}#{anchor}"


# --- every code block runs -----------------------------------------------------------------

def _small(argv: list[str]) -> list[str]:
    """test_readme_commands._small, training a teacher small only where the recipe has one to
    train (a recipe file of the guides brings its own)."""
    own = argv[1:2] and argv[1].endswith(".yaml")
    return readme_small(argv, {**SMALL_SETS, **({} if own else SMALL_TEACHER)})


def _user_files(folder: Path) -> None:
    """What the own-teacher guide assumes the user has: data.npz and a TorchScript teacher.pt."""
    import torch
    from sklearn.datasets import load_digits
    from torch import nn
    d = load_digits()
    x, y = (d.data / 16).astype(np.float32), d.target
    np.savez(folder / "data.npz", x_train=x[:240], y_train=y[:240], x_test=x[-10:],
             y_test=y[-10:])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.as_tensor(x[:240])),
                                    torch.as_tensor(y[:240])).backward()
        opt.step()
    torch.jit.save(torch.jit.script(model.eval()), folder / "teacher.pt")


def _command(line: str) -> list[str] | None:
    """The neurodeploy argv of a bash line, or None for lines test_the_install_lines checks."""
    if line.startswith(TORCHRUN):
        return shlex.split(line.split("-m neurodeploy", 1)[1])
    if line.startswith("neurodeploy "):
        return shlex.split(line)[1:]
    return None


def test_every_code_block_of_the_manual_runs(tmp_path, monkeypatch, capsys):
    (tmp_path / "export").symlink_to(ROOT / "export")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    _user_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    done, ran = set(), []
    for page in nav_pages():
        for lang, attrs, body in blocks(page):
            where = f"{page.relative_to(ROOT)}"
            if lang == "yaml":
                Path(re.fullmatch(r'title="([\w.-]+)"', attrs)[1]).write_text(body)
            elif lang == "python":
                exec(compile(body, where, "exec"), {"__name__": "__docs__"})
                ran.append(where)
            elif lang == "bash":
                for line in commands(body):
                    argv = _command(line)
                    if argv is None or line in done:
                        continue
                    done.add(line)
                    try:
                        code = main(_small(argv))
                    except SystemExit as e:
                        code = e.code
                    out = capsys.readouterr()
                    assert code == 0, f"{where}: `{line}` exited {code}:\n{out.err[-3000:]}"
                    ran.append(line)
    assert len(ran) >= 15, ran
    assert (tmp_path / "merged" / "simulate.json").is_file()
    assert (tmp_path / "runs" / "my_tuned" / "network.net").is_file()
    assert (tmp_path / "runs" / "mine" / "report.json").is_file()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed here")
def test_make_docs_builds_the_site():
    dry = subprocess.run(["make", "-n", "docs"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert dry.returncode == 0 and "mkdocs build --strict" in dry.stdout, dry.stderr


def test_every_results_table_is_what_its_results_file_renders():
    """A number on a page comes from a committed results file: every marked table equals what
    benchmarks/render.py makes of the file now (else: rerun it)."""
    import render
    tables = render.render_all()
    stale = [str(page) for page in render.pages()
             if render.fill(page.read_text(), tables, page) != page.read_text()]
    assert not stale, f"rerun .venv/bin/python benchmarks/render.py: {stale}"
