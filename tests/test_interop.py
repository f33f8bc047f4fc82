"""Our NIR export runs in Norse, an independent NIR implementation, and agrees with our float mode."""
from pathlib import Path

import nir
import numpy as np
import torch

from neurodeploy.graph import DT, from_nir
from neurodeploy.netx import read_netx
from neurodeploy.neurons import SpikingNet
from neurodeploy.pipeline import encoded_test_split

EXPORT = Path(__file__).parent.parent / "export" / "digits"


def test_exported_student_runs_in_norse_like_our_float_mode():
    import norse.torch as norse

    graph = nir.read(EXPORT / "student.nir")
    _, meta = read_netx(EXPORT / "network.net")
    spikes, labels = encoded_test_split(meta)
    x = torch.as_tensor(spikes[:120], dtype=torch.float32)
    module = norse.from_nir(graph, dt=DT)
    state, steps = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            out, state = module(x[:, t], state)
            steps.append(out)
        norse_counts = torch.stack(steps, 1).sum(1)
        ours = SpikingNet.from_integer(from_nir(graph))(x)[-1].sum(1)
    assert norse_counts.sum() > 0
    torch.testing.assert_close(norse_counts, ours)
    assert (norse_counts.argmax(1).numpy() == labels[:120]).mean() > 0.9
