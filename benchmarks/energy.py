"""Energy of the committed digits student under every preset, and the cost of repricing.

Simulates export/digits on Lava once (full test split), prices the record with each preset,
and times repricing a 10,000-sample record (the torch exact mode makes one quickly).

    .venv/bin/python benchmarks/energy.py     # writes benchmarks/results/energy.json
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.energy import PRESETS
from neurodeploy.files import write_json
from neurodeploy.netx import read_netx
from neurodeploy.inputs import encoded_test_split
from neurodeploy.report.summary import report, reprice
from neurodeploy.simulation import simulate

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "energy.json"


def main() -> int:
    network = ROOT / "export" / "digits" / "network.net"
    net, meta = read_netx(network)
    spikes, labels = encoded_test_split(meta)
    lava = simulate(network, spikes, "lava", progress=False)
    exact = simulate_torch(net, spikes)
    base = report(net, exact, lava, labels, "loihi1-davies2018",
                  teacher_sizes=[64, 1024, 10], extra={"network": {}})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.json"
        path.write_text(json.dumps(base))
        for name, preset in PRESETS.items():
            e = reprice(path, name)["energy"]
            rows.append({"preset": name, "kind": preset.kind, "per_inference_pj":
                         e["per_inference_pj"], "dynamic_pj": e["dynamic_pj"],
                         "static_pj": e["static_pj"], "latency_us": e["latency_us"],
                         "source": e["source"]})
        rng = np.random.default_rng(0)
        big = simulate_torch(net, (rng.random((10_000, meta["timesteps"], 64)) < 0.3)
                             .astype(np.uint8))
        big_report = report(net, big, big, rng.integers(0, 10, 10_000), "loihi1-davies2018",
                            extra={"network": {}})
        path.write_text(json.dumps(big_report))
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            reprice(path, "loihi2-proxy")
            times.append(time.perf_counter() - t0)
    write_json(OUT, {
        "benchmark": "energy", "network": "export/digits/network.net",
        "samples": len(labels), "record_backend": lava.backend,
        "record_detail": lava.detail,
        "presets": rows,
        "ann_baselines": [{k: b[k] for k in ("name", "per_inference_pj", "source")}
                          for b in base["ann_baselines"]],
        "reprice_10000_samples_s_median": statistics.median(times),
    })
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
