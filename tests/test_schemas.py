"""Recipes, energy presets and report.json: one schema each, one clear line per mistake.

Explicit cases for what was found by mutating the shipped files (tracebacks, and values that
were accepted and gave a wrong result), then property tests: any mutation of a valid file
either loads into a valid object or is refused with one line naming the file.
"""
import json
import math
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.cli import main
from neurodeploy.energy import PRESETS, load_preset
from neurodeploy.energy.ann import ann_baselines
from neurodeploy.energy.estimate import price
from neurodeploy.energy.report_file import Report
from neurodeploy.errors import UserError
from neurodeploy.report.summary import reprice
from neurodeploy.recipe import MODELS_DIR, load_recipe, recipe_from_dict
from neurodeploy.schema import written

SHIPPED = sorted(MODELS_DIR.glob("*.yaml"))
FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def cli_error(capsys, *args) -> str:
    """Run the CLI, expect exit 2 and exactly one line on stderr; return that line."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("neurodeploy: error: ") and err.count("\n") == 1, err
    return err


# --- recipes -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_recipe_loads_and_round_trips(path):
    recipe = load_recipe(str(path))
    assert recipe.name == path.stem
    assert recipe_from_dict(recipe.to_dict(), "again") == recipe
    assert recipe.distill.epochs >= 1 and recipe.distill.batch_size >= 1


VALID = "name: ok\nstudent: {hidden: [16]}\n"
RECIPE_CASES = [     # (file text, the field named in the message, a word of the problem)
    ("", "", "empty recipe"),
    ("# only a comment\n", "", "empty recipe"),
    ("student: {hidden: [16]}\n", "name", "add `name:"),
    ("name: ../escape\n", "name", "must match"),
    ("- a\n- b\n", "", "expected a mapping"),
    ("name: x\ndistill: {epochs: -1}\n", "distill.epochs", ">= 1"),
    ("name: x\ndistill: {epochs: 0}\n", "distill.epochs", ">= 1"),
    ("name: x\ndistill: {epochs: 2.5}\n", "distill.epochs", "integer"),
    ("name: x\nteacher: {epochs: true}\n", "teacher.epochs", "integer"),
    ("name: x\ndistill: {batch_size: -1}\n", "distill.batch_size", ">= 1"),
    ("name: x\ndistill: {batch_size: 0}\n", "distill.batch_size", ">= 1"),
    ("name: x\ndistill: {lr: -0.1}\n", "distill.lr", "> 0"),
    ("name: x\ndistill: {lr: 1.0e+300}\n", "distill.lr", "<= 10"),
    ("name: x\nteacher: {lr: .nan}\n", "teacher.lr", "finite"),
    ("name: x\ndistill: {lr: '0.1'}\n", "distill.lr", "number"),
    ("name: x\ndistill: {weight_decay: .inf}\n", "distill.weight_decay", "finite"),
    ("name: x\ndistill: {seed: -3}\n", "distill.seed", ">= 0"),
    ("name: x\nstudent: {hidden: [100000000]}\n", "student.hidden[0]", "65536"),
    ("name: x\nstudent: {hidden: [0]}\n", "student.hidden[0]", ">= 1"),
    ("name: x\nstudent: {neuron: {threshold: 131072}}\n", "student.neuron.threshold",
     "must be <= 131071, got 131072"),        # the thresholds list's and netx's bound
    ("name: x\nstudent: {thresholds: [131072]}\n", "student.thresholds[0]", "<= 131071"),
    ("name: x\nstudent: {neuron: {v_decay: 4097}}\n", "student.neuron.v_decay", "<= 4096"),
    ("name: x\nteacher: {conv: [99999999]}\n", "teacher.conv[0]", "65536"),
    ("name: x\nstudent: {hidden: 16}\n", "student.hidden", "list"),
    ("name: x\nstudent: {conv: [{channels: 8}]}\n", "student.conv[0].kernel", "missing"),
    ("name: x\nstudent: {conv: [{channels: 8, kernel: 0}]}\n", "student.conv[0].kernel", ">= 1"),
    ("name: x\nstudent: {conv: [{channels: 8, kernel: 3, stride: 99}]}\n",
     "student.conv[0].stride", "<= 15"),
    ("name: x\nstudent: {conv: [{channels: 8, kernel: 3, pad: 1}]}\n", "student.conv[0]",
     "unknown key 'pad'"),
    ("name: x\nencoding: {timesteps: 0}\n", "encoding.timesteps", ">= 1"),
    ("name: x\nencoding: {timesteps: 100000}\n", "encoding.timesteps", "<= 4096"),
    ("name: x\nencoding: {levels: 1000}\n", "encoding.levels", "<= 256"),
    ("name: x\nencoding: {name: morse}\n", "encoding.name", "unknown encoding"),
    ("name: x\ndataset: {name: cifar}\n", "dataset.name", "unknown dataset"),
    ("name: x\ndistill: {losses: [3]}\n", "distill.losses[0]", "mapping"),
    ("name: x\ndistill: {losses: []}\n", "distill.losses", "at least 1"),
    ("name: x\ndistill: {losses: [{name: ce, weight: [1]}]}\n", "distill.losses[0]", "weight"),
    ("name: x\ndistill: {losses: [{name: ce, weight: .nan}]}\n", "distill.losses[0]", "finite"),
    ("name: x\ndistill: {losses: [{name: ce, weight: -1}]}\n", "distill.losses[0]", "weight"),
    ("name: x\ndistill: {losses: [{name: logit_kd, temperature: 0}]}\n", "distill.losses[0]",
     "temperature"),
    ("name: x\ndistill: {losses: [{name: logit_kd, temperature: true}]}\n", "distill.losses[0]",
     "temperature"),
    ("name: x\ndistill: {losses: [{name: nld, variant: other}]}\n", "distill.losses[0]",
     "variant"),
    ("name: x\ndistill: {losses: [{name: feature_kd}]}\n", "distill.losses", "conv student"),
    ("name: x\ndistill: {losses: [{name: spike_train}]}\n", "distill.losses", "spiking teacher"),
    ("name: x\nenergy: {preset: loihi9}\n", "energy.preset", "unknown energy preset"),
    ("name: x\n1: 2\n", "", "key 1"),
]


@pytest.mark.parametrize("verb", ["run", "distill"])
@pytest.mark.parametrize("text, field, problem", RECIPE_CASES,
                         ids=[f"{i}:{c[1] or c[2]}" for i, c in enumerate(RECIPE_CASES)])
def test_bad_recipes_fail_with_one_line_before_any_training(tmp_path, capsys, verb, text,
                                                            field, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = ["--runs-dir", tmp_path / "runs"] if verb == "run" else ["--out", tmp_path / "runs"]
    err = cli_error(capsys, verb, path, "-q", *out)
    assert f"{path}: {field}" in err and problem in err
    assert not (tmp_path / "runs").exists()          # refused before any work


def test_recipe_that_is_not_utf8_or_a_directory(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert "not UTF-8" in cli_error(capsys, "run", path, "--runs-dir", tmp_path / "runs")
    (tmp_path / "dir.yaml").mkdir()
    assert "is a directory" in cli_error(capsys, "distill", tmp_path / "dir.yaml")


def test_a_minimal_recipe_still_loads_with_defaults(tmp_path):
    (tmp_path / "ok.yaml").write_text(VALID)
    recipe = load_recipe(str(tmp_path / "ok.yaml"))
    assert recipe.student.hidden == [16] and recipe.teacher.hidden == [256]
    assert recipe.distill.losses[1] == {"name": "logit_kd", "weight": 0.5, "temperature": 4.0}


# --- presets -------------------------------------------------------------------------------

def small_report() -> dict:
    """A valid report.json of a 3-4-2 network over 3 steps (what `priced` reads, plus extras)."""
    layers = [{"name": "fc0", "kind": "dense", "neurons": 4, "synapses": 12, "inputs": 3,
               "macs": 12, "nonzero_synapses": 11, "fan_in": 3},
              {"name": "fc1", "kind": "dense", "neurons": 2, "synapses": 8, "inputs": 4,
               "macs": 8, "nonzero_synapses": 8, "fan_in": 4}]
    return {
        "recipe": "tiny", "timesteps": 3, "samples": 10, "layers": layers,
        "network": {"sha256": "0" * 64},
        "accuracy_by_timestep": [0.5, 0.75, 1.0],
        "counts": {"layers": ["fc0", "fc1"], "counted_from": "lava",
                   "synaptic_ops": [[5.0, 7.5, 6.0], [2.0, 3.0, 2.5]],
                   "neuron_active": [[3.0, 4.0, 3.5], [1.0, 2.0, 1.5]],
                   "neuron_inactive": [[1.0, 0.0, 0.5], [1.0, 0.0, 0.5]],
                   "spikes": [[1.0, 1.5, 1.0], [0.2, 0.4, 0.3]]},
        "ann_baselines": ann_baselines("x", [{"macs": 12, "weights": 12, "inputs": 3,
                                              "outputs": 4}]),
    }


@pytest.fixture
def report_file(tmp_path) -> Path:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(small_report()))
    return path


PRESET_CASES = [
    (b"name: mine\nsource: me\n", "missing field 'synaptic_op_pj'"),
    (b"name: 5\nsource: me\nsynaptic_op_pj: 1\n", "name: must be a string"),
    (b"name: mine\nsource: ''\nsynaptic_op_pj: 1\n", "source: must have at least 1"),
    (b"name: mine\nsource: me\nsynaptic_op_pj: .inf\n", "synaptic_op_pj must be a number"),
    (b"name: mine\nsource: me\nsynaptic_op_pj: 1.0e+308\n", "<= 1e6 (pJ)"),
    (b"name: mine\nsource: me\nsynaptic_op_pj: 1e3\n", "write 1.0e+3"),
    (b"name: mine\nsource: me\nsynaptic_op_pj: 1\nbarrier_ns: -2\n", "barrier_ns must be"),
    (b"name: mine\nsource: me\nsynaptic_op_pj: 1\nstatic_w: 5000\n", "<= 1e3 (W)"),
    (b"name: mine\nsource: me\nsynaptic_op_pj: 1\nkind: magic\n", "kind: must be one of"),
    (b"name: mine\nsource: me\nsynaptic_op_pj: 1\nfoo: 2\n", "unknown field 'foo'"),
    (b"", "got an empty file"),
    (b"[1, 2]\n", "a preset is a mapping"),
    (b"name: caf\xe9\n", "not UTF-8"),
    (b"name: [unclosed\n", "not valid YAML"),
]


@pytest.mark.parametrize("content, message", PRESET_CASES,
                         ids=[m.split("'")[0][:20] for _, m in PRESET_CASES])
def test_bad_presets_are_refused_with_one_line(tmp_path, capsys, report_file, content, message):
    preset = tmp_path / "p.yaml"
    preset.write_bytes(content)
    err = cli_error(capsys, "energy", report_file, "--preset", preset, "--out", tmp_path)
    assert str(preset) in err and message in err
    assert not list(tmp_path.glob("energy-*.json"))


def test_builtin_presets_are_unchanged():
    assert list(PRESETS) == ["loihi1-davies2018", "loihi1-sanafe", "loihi2-proxy",
                             "loihi2-pilotnet-calibrated",
                             "truenorth-merolla2014", "spinnaker2", "odin", "reckon", "tianjic",
                             "seneca"]
    davies = PRESETS["loihi1-davies2018"]
    assert (davies.synaptic_op_pj, davies.neuron_active_pj, davies.barrier_ns) == (23.6, 81.0,
                                                                                   113.0)
    assert PRESETS["loihi2-proxy"].static_w == 0.232 and PRESETS["seneca"].synaptic_op_pj == 2.8
    assert PRESETS["loihi1-sanafe"].spike_out_pj == pytest.approx(180.3)


# --- report.json ---------------------------------------------------------------------------

def _set(report: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = report
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return report


DELETE = object()
REPORT_CASES = [     # (dotted key, new value, words in the message)
    ("ann_baselines", DELETE, "ann_baselines: missing"),
    ("counts", DELETE, "counts: missing"),
    ("layers", DELETE, "layers: missing"),
    ("timesteps", DELETE, "timesteps: missing"),
    ("accuracy_by_timestep", DELETE, "accuracy_by_timestep: missing"),
    ("counts.spikes", DELETE, "counts.spikes: missing"),
    ("counts.spikes", 3.0, "counts.spikes: must be a list"),
    ("counts.spikes", [[1.0, 2.0, 3.0], [1.0]], "counts.spikes: shape 2 x [1, 3] steps"),
    ("counts.synaptic_ops", [[1.0, 2.0, 3.0]], "counts.synaptic_ops: shape 1 x [3]"),
    ("counts.neuron_active", [[1.0, -2.0, 3.0], [1.0, 1.0, 1.0]], "[0][1]: must be >= 0"),
    ("counts.neuron_active", [[1.0, 1e300, 3.0], [1.0, 1.0, 1.0]], "[0][1]: must be <= "),
    ("counts.spikes", [[1.0, True, 3.0], [1.0, 1.0, 1.0]], "[0][1]: must be a number"),
    ("counts.spikes", [[1.0, "2", 3.0], [1.0, 1.0, 1.0]], "[0][1]: must be a number"),
    ("counts.layers", ["fc0"], "counts.layers: 1 names for 2 layers"),
    ("timesteps", 4, "counts.synaptic_ops: shape 2 x [3] steps, expected 2 layers x 4"),
    ("timesteps", 0, "timesteps: must be >= 1"),
    ("accuracy_by_timestep", [0.5], "accuracy_by_timestep: 1 entries for 3 timesteps"),
    ("layers", [], "layers: must have at least 1"),
    ("layers", 7, "layers: must be a list"),
    ("ann_baselines", [{"name": "x"}], "ann_baselines[0].source: missing"),
    ("ann_baselines", {"a": 1}, "ann_baselines: must be a list"),
    ("network", "abc", "network: must be a mapping"),
    ("samples", "ten", "samples: must be an integer, got 'ten'"),
    ("generated", {"date": 1}, "generated.date: must be a string"),
]


def test_a_report_is_written_as_the_model_that_reads_it():
    """What the writer builds passes the reader's model; a section the model does not declare
    cannot be written; defaults the writer did not set are not added."""
    assert written(Report, small_report()) == small_report()
    with pytest.raises(ValueError, match=r"sections \['typo'\] are not declared"):
        written(Report, {**small_report(), "typo": 1})


@pytest.mark.parametrize("key, value, message", REPORT_CASES,
                         ids=[f"{i}:{c[0]}" for i, c in enumerate(REPORT_CASES)])
def test_bad_reports_are_refused_with_one_line(tmp_path, capsys, key, value, message):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(_set(small_report(), key, value)))
    err = cli_error(capsys, "energy", path, "--preset", "loihi2-proxy", "--out", tmp_path)
    assert f"{path}: " in err and message in err
    assert not list(tmp_path.glob("energy-*.json"))


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not valid JSON"),
    (b'{"counts": NaN}', "NaN is not a JSON number"),
    (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
    (b"[1, 2]", "a JSON list, not an object"),
    (b'{"x": "caf\xe9"}', "not UTF-8"),
    (b"[" * 100000, "report"),
])
def test_unreadable_reports_are_refused(tmp_path, capsys, content, message):
    path = tmp_path / "report.json"
    path.write_bytes(content)
    err = cli_error(capsys, "energy", path, "--preset", "loihi2-proxy", "--out", tmp_path)
    assert str(path) in err and message in err


def test_a_report_that_is_a_directory_or_missing(tmp_path, capsys):
    (tmp_path / "report.json").mkdir()
    assert "is a directory" in cli_error(capsys, "energy", tmp_path / "report.json")
    assert "no such report" in cli_error(capsys, "energy", tmp_path / "none.json")


def _strict_json(path: Path):
    def refuse(name):
        raise AssertionError(f"{path} contains {name}")
    return json.loads(path.read_text(), parse_constant=refuse)


def _priced_by_hand(report: dict, p) -> dict:
    """The small report priced from estimate.py's formula, written out here (not `priced`):
    E_t = sum of counts x pJ figures + static W x t_step; t_step = the slowest layer's work +
    barrier (each of its two tiny layers is one core under every mapping)."""
    c = report["counts"]
    kinds = {"synaptic_ops": "synaptic_op", "neuron_active": "neuron_active",
             "neuron_inactive": "neuron_inactive", "spikes": "spike_out"}
    layers, steps = range(2), range(3)
    dynamic = [sum(c[k][i][t] * getattr(p, f"{f}_pj") for k, f in kinds.items() for i in layers)
               for t in steps]
    step_ns = [max(sum(c[k][i][t] * getattr(p, f"{f}_ns") for k, f in kinds.items())
                   for i in layers) + p.barrier_ns for t in steps]
    static = [p.static_w * ns * 1e3 for ns in step_ns]               # W x ns = 1e3 pJ
    latency = p.synaptic_op_ns > 0
    total = [d + s for d, s in zip(dynamic, static)]
    return {"energy": {"dynamic_pj": sum(dynamic), "static_pj": sum(static),
                       "per_inference_pj": sum(total),
                       "latency_us": sum(step_ns) / 1e3 if latency else None},
            "per_timestep": [{"energy_pj": total[t], "dynamic_pj": dynamic[t],
                              "static_pj": static[t],
                              "step_us": step_ns[t] / 1e3 if latency else None} for t in steps],
            "timestep_sweep": [{"T": t + 1, "accuracy": report["accuracy_by_timestep"][t],
                                "energy_pj": sum(total[:t + 1]),
                                "latency_us": sum(step_ns[:t + 1]) / 1e3 if latency else None}
                               for t in steps]}


def _close(got: dict, want: dict) -> bool:
    return all(got[k] == pytest.approx(v, rel=1e-12) if v is not None else got[k] is None
               for k, v in want.items())


@pytest.mark.parametrize("name", list(PRESETS))
def test_repricing_gives_the_numbers_of_the_formula(tmp_path, capsys, report_file, name):
    """Every built-in preset through the CLI: each figure of energy-<preset>.json against the
    formula applied by hand to the report's counts."""
    assert main(["energy", str(report_file), "--preset", name, "--out", str(tmp_path)]) == 0
    written = _strict_json(tmp_path / f"energy-{name}.json")
    expected = _priced_by_hand(small_report(), PRESETS[name])
    assert written["energy"]["preset"] == name and _close(written["energy"], expected["energy"])
    assert len(written["per_timestep"]) == len(written["timestep_sweep"]) == 3
    for got, want in zip(written["per_timestep"] + written["timestep_sweep"],
                         expected["per_timestep"] + expected["timestep_sweep"]):
        assert _close(got, want), (got, want)


def test_repriced_numbers_by_hand():
    """loihi2-proxy on the small report, computed here from the formula in estimate.py."""
    r, p = small_report(), PRESETS["loihi2-proxy"]
    c = r["counts"]
    figures = {"synaptic_ops": "synaptic_op", "neuron_active": "neuron_active",
               "neuron_inactive": "neuron_inactive", "spikes": "spike_out"}
    dynamic = sum(c[k][i][t] * getattr(p, f + "_pj") for k, f in figures.items()
                  for i in range(2) for t in range(3))
    step_ns = [max(sum(c[k][i][t] * getattr(p, f + "_ns") for k, f in figures.items())
                   for i in range(2)) + p.barrier_ns for t in range(3)]   # one core per layer
    energy = reprice_dict(r, "loihi2-proxy")["energy"]
    assert energy["dynamic_pj"] == pytest.approx(dynamic)
    assert energy["static_pj"] == pytest.approx(0.232 * sum(step_ns) * 1e3)
    assert energy["latency_us"] == pytest.approx(sum(step_ns) / 1e3)
    assert energy["ann_baselines"] == r["ann_baselines"]


def reprice_dict(report: dict, preset: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "report.json"
        path.write_text(json.dumps(report))
        return reprice(path, preset)


# --- property tests: mutations load into a valid object or give one line -------------------

def paths(node, prefix=()):
    """Every location in a nested dict/list, the root's children first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, value in items:
        yield prefix + (key,)
        yield from paths(value, prefix + (key,))


VALUES = st.one_of(
    st.integers(-10, 10), st.sampled_from([-1, 0, 1, 65537, 2 ** 40, 10 ** 30]),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(max_size=8), st.sampled_from(["ce", "rate", "digits", "1e3", "loihi2-proxy"]),
    st.lists(st.integers(-2, 70000), max_size=3),
    st.dictionaries(st.sampled_from(["name", "weight", "x", "channels", "kernel"]),
                    st.integers(-1, 5), max_size=3))


@st.composite
def mutated(draw, original):
    data = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from([()] + list(paths(data))))
        parent = data
        for key in where[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["set", "delete", "add"])) if where else "add"
        target = parent[where[-1]] if where else data
        if op == "set":
            parent[where[-1]] = draw(VALUES)
        elif op == "delete":
            del parent[where[-1]]
        elif isinstance(target, dict):
            target[draw(st.sampled_from(["extra", "name", "epochs", "hidden"]))] = draw(VALUES)
        elif isinstance(target, list):
            target.append(draw(VALUES))
    return data


def assert_one_line(error: UserError, name: str):
    message = str(error)
    assert "\n" not in message and message.startswith(name), message


SHIPPED_DATA = [yaml.safe_load(p.read_text()) for p in SHIPPED]


@FUZZ
@given(data=st.sampled_from(SHIPPED_DATA).flatmap(mutated))
def test_mutated_recipes_load_validly_or_fail_in_one_line(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "mutant.yaml"
        path.write_text(yaml.safe_dump(data))
        try:
            recipe = load_recipe(str(path))
        except UserError as e:
            assert_one_line(e, str(path))
            return
    flat = json.dumps(recipe.to_dict(), allow_nan=False)     # every number finite
    assert recipe_from_dict(json.loads(flat), "again") == recipe
    for cfg in (recipe.teacher, recipe.distill):
        assert cfg.epochs >= 1 and cfg.batch_size >= 1 and 0 < cfg.lr <= 10
    assert all(1 <= w <= 65536 for w in [*recipe.student.hidden, *recipe.teacher.hidden])
    assert 1 <= recipe.encoding.timesteps <= 4096


@FUZZ
@given(content=st.binary(max_size=64))
def test_arbitrary_bytes_as_a_recipe(content):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bytes.yaml"
        path.write_bytes(content)
        try:
            load_recipe(str(path))
        except UserError as e:
            assert_one_line(e, str(path))


PRESET_DATA = [PRESETS["loihi1-sanafe"].model_dump(), PRESETS["odin"].model_dump()]


@FUZZ
@given(data=st.sampled_from(PRESET_DATA).flatmap(mutated))
def test_mutated_presets_load_validly_or_fail_in_one_line(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "mutant.yaml"
        path.write_text(yaml.safe_dump(data))
        try:
            preset = load_preset(str(path))
        except UserError as e:
            assert_one_line(e, str(path))
            return
    figures = {k: v for k, v in preset.model_dump().items() if isinstance(v, float)}
    assert all(math.isfinite(v) and 0 <= v <= 1e6 for v in figures.values())
    assert preset.name and preset.source


@FUZZ
@given(data=mutated(small_report()), preset=st.sampled_from(["loihi2-proxy", "odin"]))
def test_mutated_reports_reprice_to_finite_numbers_or_fail_in_one_line(data, preset):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "report.json"
        path.write_text(json.dumps(data))          # NaN/Infinity tokens included
        try:
            result = reprice(path, preset)
        except UserError as e:
            assert_one_line(e, str(path))
            return
    json.dumps(result, allow_nan=False)            # nothing NaN or infinite in the output
    energy = result["energy"]
    assert energy["per_inference_pj"] >= 0 and energy["dynamic_pj"] >= 0
    assert all(e["energy_pj"] >= 0 for e in result["per_timestep"])
    assert energy == price({k: result["counts"][k] for k in
                            ("synaptic_ops", "neuron_active", "neuron_inactive", "spikes")},
                           result["layers"], PRESETS[preset])["energy"] | {
        "ann_baselines": result["ann_baselines"]}
