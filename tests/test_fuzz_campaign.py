"""The fuzz campaign (tests/fuzz.py, also a command) runs every input kind; its judge can fail."""
import json
from pathlib import Path

import pytest

import fuzz                          # tests/fuzz.py (pytest puts tests/ on the path)

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parent.parent
NET = str(ROOT / "export" / "digits" / "network.net")


def judge(tmp_path, argv, expect=fuzz.MAY, names=("network.net",)):
    case = fuzz.Case("netx", "test", expect, argv=argv, names=names, out=tmp_path / "out")
    return fuzz.run_case(case, 60, tmp_path / "MARKER")[0]


def test_judge_tells_the_outcomes_apart(tmp_path):
    missing = str(tmp_path / "missing.net")
    assert judge(tmp_path, ["inspect", missing], names=("missing.net",)) == "one_line_errors"
    assert judge(tmp_path, ["inspect", missing], names=("other.net",)) == "tracebacks"
    assert judge(tmp_path, ["inspect", NET]) == "accepted_valid"
    assert judge(tmp_path, ["inspect", NET], expect=fuzz.MUST) == "accepted_wrong"
    (tmp_path / "MARKER").touch()                 # as if the file had run code
    assert judge(tmp_path, ["inspect", NET]) == "code_ran"


def test_judge_flags_nan_in_written_json(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "simulate.json").write_text('{"accuracy": NaN}')
    case = fuzz.Case("npz", "test", fuzz.MAY, out=out)
    assert fuzz.insane_outputs(case, "") == "simulate.json: NaN in JSON"
    (out / "simulate.json").write_text('{"accuracy": 1.5}')
    assert "accuracy = 1.5" in fuzz.insane_outputs(case, "")


def test_tiny_campaign_covers_every_kind(tmp_path):
    kinds = [k for k in fuzz.WEIGHTS if k not in fuzz.SKIPPED]
    result = fuzz.campaign(list(fuzz.WEIGHTS), 6 * len(kinds), seed=0, limit_s=60,
                           progress=False, seed_run=tmp_path / "seedrun")
    json.dumps(result, allow_nan=False)          # the result file itself is strict JSON
    assert result["harness_errors"] == {}
    for kind in kinds:
        stats = result["per_kind"][kind]
        assert stats["cases"] >= 1
        assert stats["cases"] == sum(stats[o] for o in fuzz.OUTCOMES)
    assert result["totals"]["cases"] == sum(s["cases"] for s in result["per_kind"].values())
    bad = {o: result["totals"][o] for o in ("tracebacks", "hangs", "accepted_wrong", "code_ran")}
    assert set(bad.values()) == {0}, (bad, result["examples"])
