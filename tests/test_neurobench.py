"""Our NeuroBench-named metrics against neurobench 2.3.0's own metric classes.

The same small network runs in both worlds: our exact integer mode, and an snnTorch model
(Conv2d/Linear + Leaky) that NeuroBench's Benchmark hooks. With iDecay = 4096 and vDecay = 0
the CUBA neuron is an integrate-and-fire neuron whose integer arithmetic has no rounding, and
snnTorch's Leaky(beta=1, reset to zero, no reset delay) computes the same spikes, which the test
checks first, so any difference in the metrics is a difference of definition."""
import numpy as np
import pytest
import torch

snn = pytest.importorskip("snntorch")
pytest.importorskip("neurobench")

from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.static import ConnectionSparsity, Footprint  # noqa: E402
from neurobench.metrics.workload import (ActivationSparsity, ClassificationAccuracy,  # noqa: E402
                                         SynapticOperations)
from neurobench.models import SNNTorchModel  # noqa: E402
from neurobench.processors.postprocessors import ChooseMaxCount  # noqa: E402

from neurodeploy.backends.torch_exact import simulate_torch  # noqa: E402
from neurodeploy.energy.neurobench import footprint, neurobench_metrics  # noqa: E402
from neurodeploy.neurons import Conv, CubaParams, IntLayer, IntNetwork  # noqa: E402

IF = CubaParams(i_decay=4096, v_decay=0, threshold=300)


def _networks():
    rng = np.random.default_rng(7)
    conv_w = rng.integers(-60, 128, (3, 2, 3, 3)) * 2 * (rng.random((3, 2, 3, 3)) < 0.7)
    conv = IntLayer(conv_w, IF, name="conv0", conv=Conv((2, 6, 6), stride=(2, 2), padding=(1, 1)))
    fc_w = rng.integers(-40, 128, (4, conv.size)) * 2 * (rng.random((4, conv.size)) < 0.8)
    net = IntNetwork((2, 6, 6), (conv, IntLayer(fc_w, IF, name="fc1")))
    leaky = dict(beta=1.0, threshold=float(IF.threshold), reset_mechanism="zero",
                 reset_delay=False, init_hidden=True)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False),
                                snn.Leaky(**leaky), torch.nn.Flatten(),
                                torch.nn.Linear(conv.size, 4, bias=False),
                                snn.Leaky(**leaky, output=True))
    with torch.no_grad():
        model[0].weight.copy_(torch.as_tensor(conv_w, dtype=torch.float32))
        model[3].weight.copy_(torch.as_tensor(fc_w, dtype=torch.float32))
    return net, model


@pytest.mark.slow
def test_our_neurobench_metrics_match_neurobench_on_the_same_network_and_data():
    net, model = _networks()
    rng = np.random.default_rng(1)
    spikes = rng.random((24, 6, 2 * 6 * 6)) < 0.35
    labels = rng.integers(0, 4, 24)
    record = simulate_torch(net, spikes)
    x = torch.as_tensor(spikes.reshape(24, 6, 2, 6, 6), dtype=torch.float32)
    wrapped = SNNTorchModel(model)
    # precondition: both worlds compute the same spikes (checked on the output layer)
    out = wrapped(x).detach().numpy().astype(bool)
    assert np.array_equal(out, record.layers[-1]) and record.layers[-1].any()
    # Footprint: theirs is float32 weights plus the Leaky modules' buffers, which include their
    # state of the last batch run (static metrics run first: here the 24-sample check above);
    # ours stores 8-bit weights and 3 integer constants per layer (see energy/neurobench.py)
    neuron_bytes = sum(b.numel() * b.element_size() for m in model.modules()
                       if isinstance(m, snn.SpikingNeuron)
                       for b in [*m.buffers(), *m.parameters()])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, torch.as_tensor(labels)), batch_size=10)
    theirs = Benchmark(wrapped, loader, [], [ChooseMaxCount()],
                       [[Footprint, ConnectionSparsity],
                        [ClassificationAccuracy, SynapticOperations, ActivationSparsity]]
                       ).run(quiet=True)
    ours = neurobench_metrics(record, net, labels)
    assert ours["ClassificationAccuracy"] == pytest.approx(theirs["ClassificationAccuracy"])
    for key in ("Effective_MACs", "Effective_ACs", "Dense"):
        assert ours["SynapticOperations"][key] == pytest.approx(
            float(theirs["SynapticOperations"][key])), key
    assert ours["ActivationSparsity"] == pytest.approx(theirs["ActivationSparsity"])
    assert round(ours["ConnectionSparsity"], 4) == theirs["ConnectionSparsity"]
    assert footprint(net, weight_bytes=4, constant_bytes=0) + neuron_bytes == theirs["Footprint"]
    assert ours["Footprint"] == (3 * 2 * 9 + 4 * net.layers[0].size) + 2 * 3 * 4


def test_activation_sparsity_leaves_out_a_readout_layer():
    """A readout layer does not spike: counting its silent outputs would inflate sparsity."""
    net, _ = _networks()
    readout = IntNetwork(net.input_shape, net.layers, readout=True)
    spikes = np.random.default_rng(2).random((5, 4, 72)) < 0.5
    record = simulate_torch(readout, spikes)
    hidden = record.layers[0]
    got = neurobench_metrics(record, readout, np.zeros(5, int))["ActivationSparsity"]
    assert got == pytest.approx(1 - hidden.sum() / hidden.size)
