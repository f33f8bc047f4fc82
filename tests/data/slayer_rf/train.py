"""Train and export the resonate-and-fire test networks (run from the repository root:
`.venv/bin/python tests/data/slayer_rf/train.py`; about 3 minutes on 2 CPU cores).

lava-dl's own slayer blocks (rf_iz.Dense, rf.Dense, cuba.Dense) learn sklearn's 8x8 digits,
rate coded (`code`), for a few epochs (Adam), with per-neuron periods and decays trained from a
log-spaced start; `block.export_hdf5` writes the netx files the tests run. Accuracies (slayer's
float model and the deployed exact mode on the held-out digits) go to provenance.json."""
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import torch
from sklearn.datasets import load_digits

HERE = Path(__file__).parent
T, TRAIN = 24, 1200


def digits():
    """sklearn's digits shuffled with seed 0: (intensities in [0, 1], labels)."""
    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))
    return d.data[order] / 16.0, d.target[order]


def code(x, seed):
    """Rate code: a spike with probability intensity / 2 per step, [N, T, 64] uint8."""
    rng = np.random.default_rng(seed)
    return (rng.random((len(x), T, x.shape[1])) < x[:, None, :] / 2).astype(np.uint8)


def main():
    sys.path.insert(0, str(HERE.parents[2]))
    from neurodeploy.backends.torch_exact import simulate_torch
    from neurodeploy.backends.lava_runtime import import_lava
    from neurodeploy.netx import read_netx
    import_lava()
    from lava.lib.dl import slayer
    x, y = digits()
    test = code(x[TRAIN:], 1)
    rf = {"threshold": 0.3, "period": (6, 16), "decay": (0.05, 0.2), "shared_param": False,
          "requires_grad": True}
    cuba = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.03}
    nets = {   # name: (blocks, learning rate, epochs)
        "rf_iz_digits.net": (lambda: [slayer.block.rf_iz.Dense(rf, 64, 40, weight_scale=2),
                                      slayer.block.rf_iz.Dense(rf, 40, 10, weight_scale=2)],
                             0.003, 4),
        "rf_digits.net": (lambda: [slayer.block.rf.Dense({**rf, "threshold": 0.1,
                                                          "scale_grad": 3}, 64, 40,
                                                         weight_scale=2),
                                   slayer.block.cuba.Dense(cuba, 40, 10, weight_scale=2)],
                          0.01, 8)}
    provenance = {}
    for name, (make, lr, epochs) in nets.items():
        torch.manual_seed(0)
        net = torch.nn.Sequential(*make())
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        for epoch in range(epochs):
            train = code(x[:TRAIN], 100 + epoch)
            for i in range(0, TRAIN, 50):
                xb = torch.as_tensor(train[i:i + 50], dtype=torch.float32).transpose(1, 2)
                loss = torch.nn.functional.cross_entropy(net(xb).sum(-1),
                                                         torch.as_tensor(y[i:i + 50]))
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            out = net(torch.as_tensor(test, dtype=torch.float32).transpose(1, 2))
        with h5py.File(HERE / name, "w") as f:
            layer = f.create_group("layer")
            for i, block in enumerate(net):
                block.export_hdf5(layer.create_group(f"{i}"))
        deployed = simulate_torch(read_netx(HERE / name)[0], test).layers[-1].sum(1)
        provenance[name] = {
            "blocks": [f"{type(b).__module__.split('.')[-1]}.{type(b).__name__}" for b in net],
            "data": f"sklearn digits, shuffled (seed 0), {TRAIN} train / {len(test)} test, "
                    f"rate coded over {T} steps (p = intensity / 2)",
            "epochs": epochs, "learning_rate": lr, "slayer_accuracy": round(float((out.sum(-1).argmax(1).numpy()
                                                         == y[TRAIN:]).mean()), 4),
            "exact_mode_accuracy": round(float((deployed.argmax(1) == y[TRAIN:]).mean()), 4)}
        print(name, provenance[name], flush=True)
    (HERE / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")


if __name__ == "__main__":
    main()
