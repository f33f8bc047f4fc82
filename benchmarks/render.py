"""Regenerate the README's results tables from benchmarks/results/*.json."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def digits_table(data: dict) -> str:
    s = data["summary"]
    runs = data["runs"]
    pm = lambda k, f="{:.4f}": f"{f.format(s[k]['mean'])} ± {f.format(s[k]['std'])}"  # noqa
    ratio = s["torch_exact_samples_per_s"]["mean"] / s["lava_samples_per_s"]["mean"]
    lines = [
        f"Digits test split ({runs[0]['samples']} samples), T = {runs[0]['T']}, "
        f"seeds {', '.join(str(r['seed']) for r in runs)}; {data['selection']}.",
        "",
        "| metric | mean ± std over seeds |",
        "|---|---|",
        f"| teacher (ANN MLP) accuracy | {pm('teacher_accuracy')} |",
        f"| student accuracy on Lava (= exact mode) | {pm('accuracy_deployed')} |",
        f"| spike mismatches, exact mode vs Lava | "
        f"{', '.join(str(r['spike_mismatches']) for r in runs)} |",
        f"| energy per inference, loihi1-davies2018 (µJ, dynamic) | "
        f"{pm('energy_per_inference_uj', '{:.2f}')} |",
        f"| Lava CPU simulation (samples/s) | {pm('lava_samples_per_s', '{:.1f}')} |",
        f"| torch exact mode, CPU batch (samples/s) | "
        f"{pm('torch_exact_samples_per_s', '{:.0f}')} ({ratio:.0f}x Lava) |",
    ]
    return "\n".join(lines)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name, render in (("digits", digits_table),):
        path = ROOT / "benchmarks" / "results" / f"{name}.json"
        if not path.exists():
            continue
        table = render(json.loads(path.read_text()))
        text = re.sub(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)",
                      lambda m: m.group(1) + table + "\n" + m.group(2), text, flags=re.S)
    readme.write_text(text)


if __name__ == "__main__":
    main()
