"""The energy estimate against silicon: lava-dl's PilotNet LIF network as Intel measured it.

lava-dl's tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb profiles exactly the
tutorial's network.net (tests/data/lava_dl/pilotnet_lif.net here) on a Loihi 2 Oheo Gulch
board: one frame written as the input layer's bias, reset interval 16, 10,000 steps. We run the
same convention on the exact mode (one frame, 16 steps, lava-dl's encoded test frame
gts/pilotnet_lif/image.npy: the notebook's own frame 100 of its dataset is not published),
count events, and price them with each preset and each core mapping, beside what the notebook
measured. Writes benchmarks/results/silicon.json.

    .venv/bin/python benchmarks/silicon.py
"""
from __future__ import annotations

import dataclasses
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import torch

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.energy import count_events, layer_table, load_preset, price
from neurodeploy.files import write_json
from neurodeploy.netx import read_netx
from neurodeploy.neurons import run_exact

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "lava_dl"
STEPS = 16                                  # the notebook's reset_interval
MEASURED = {   # printed by benchmark.ipynb (lava-dl, Oheo Gulch, 2023)
    "source": "lava-dl tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb (Loihi 2, "
              "Oheo Gulch, one chip): 408.91 fps at 16 steps per frame; 0.679234 W total, "
              "0.232078 W static; 1.661103 mJ total and 1.093544 mJ dynamic per frame; "
              "the compiler's per-core distribution: 74 cores",
    "cores": 74,
    "step_us": 1e6 / 408.91 / STEPS,
    "dynamic_mj": 1.093544,
    "total_mj": 1.661103,
}
RUNS = [("loihi1-davies2018", "brief"), ("loihi2-proxy", "brief"), ("loihi2-proxy", "compiler"),
        ("loihi1-sanafe", "compiler"), ("loihi2-pilotnet-calibrated", "compiler")]


def counts() -> tuple[dict, list[dict]]:
    """Events per frame of PilotNet LIF driven as the notebook drives it."""
    net, _ = read_netx(DATA / "pilotnet_lif.net")
    frame = np.load(DATA / "pilotnet_lif_frame.npy").transpose(2, 1, 0).reshape(-1)
    first = dataclasses.replace(net.layers[0], bias=frame.astype(np.int64))
    net = dataclasses.replace(net, layers=(first, *net.layers[1:]))
    spikes = run_exact(net, torch.zeros(1, STEPS, net.input_size))
    record = SpikeRecord(backend="torch", detail="exact mode, cpu",
                         inputs=np.zeros((1, STEPS, net.input_size), dtype=bool),
                         layers=[s.numpy() for s in spikes],
                         layer_names=[layer.name for layer in net.layers])
    return {k: v.tolist() for k, v in count_events(record, net).items()}, layer_table(net)


def main() -> None:
    events, layers = counts()
    rows = []
    for preset_name, mapping in RUNS:
        priced = price(events, layers, load_preset(preset_name), mapping=mapping)
        e = priced["energy"]
        rows.append({"preset": preset_name, "mapping": mapping,
                     "cores": priced["resources"]["cores"],
                     "cores_per_layer": [r["cores"] for r in priced["resources"]["layers"]],
                     "step_us": e["latency_us"] / STEPS if e["latency_us"] else None,
                     "dynamic_mj": e["dynamic_pj"] / 1e9,
                     "total_mj": e["per_inference_pj"] / 1e9 if e["static_pj"] else None})
        print(rows[-1])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    write_json(ROOT / "benchmarks" / "results" / "silicon.json", {
        "date": str(date.today()), "commit": commit, "network": "pilotnet_lif.net",
        "frame": "lava-dl tests/lava/lib/dl/netx/gts/pilotnet_lif/image.npy as input bias",
        "steps": STEPS, "measured": MEASURED, "rows": rows,
        "events_per_frame": {k: float(np.sum(v)) for k, v in events.items()}})


if __name__ == "__main__":
    main()
