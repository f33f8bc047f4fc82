"""The fixed-point neuron rules, one property at a time, and the training mode's closeness."""
import numpy as np
import pytest
import torch

from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork, SpikingNet, exact_step, run_exact
from neurodeploy.neurons.cuba import U_WRAP, V_LIMIT, quantize_weight
from neurodeploy.neurons.network import _state_plan


def step(u, v, a, p, bias=0):
    t = lambda x: torch.tensor([x], dtype=torch.int64)  # noqa: E731
    u, v, s = exact_step(t(u), t(v), t(a), p, bias)
    return int(u), int(v), bool(s)


def test_decay_rounds_toward_zero():
    p = CubaParams(i_decay=1, v_decay=4096, threshold=1000)
    # -4097 * 4095 / 4096 = -4095.9998: toward zero gives -4095, floor would give -4096
    u, _, _ = step(-4097, 0, 0, p)
    assert u == -4095
    u, _, _ = step(4097, 0, 0, p)
    assert u == 4095


def test_current_wraps_at_24_bits():
    p = CubaParams(i_decay=0, v_decay=4096, threshold=100_000)
    u, _, _ = step(U_WRAP - 64, 0, 2, p)          # (2 << 6) pushes past 2**23
    assert u == U_WRAP - 64 + 128 - 2 * U_WRAP
    u, _, _ = step(-U_WRAP + 64, 0, -1, p)        # exactly -2**23 wraps to +2**23, as in Lava
    assert u == U_WRAP


def test_voltage_saturates_instead_of_wrapping():
    p = CubaParams(i_decay=0, v_decay=0, threshold=2 ** 17 - 1)
    _, v, _ = step(-U_WRAP + 1, -V_LIMIT + 5, 0, p)
    assert v == -V_LIMIT
    # the largest threshold (2**17 - 1) << 6 is below the positive limit: a saturated neuron fires
    _, v, s = step(U_WRAP - 1, V_LIMIT - 5, 0, p)
    assert s and v == 0


def test_threshold_is_strict_and_reset_is_to_zero_keeping_current():
    p = CubaParams(i_decay=4096, v_decay=4096, threshold=10)
    u, v, s = step(0, 0, 10, p)                   # v == 10 << 6: not above threshold
    assert (u, v, s) == (640, 640, False)
    u, v, s = step(0, 0, 11, p)
    assert s and v == 0 and u == 704


def test_bias_enters_the_voltage_shifted():
    p = CubaParams(i_decay=4096, v_decay=4096, threshold=100)
    assert step(0, 0, 0, p, bias=3)[1] == 3 << 6


def test_params_are_validated():
    with pytest.raises(ValueError, match="i_decay"):
        CubaParams(i_decay=5000, v_decay=0, threshold=1)
    with pytest.raises(ValueError, match="threshold"):
        CubaParams(i_decay=0, v_decay=0, threshold=2 ** 17 + 1)
    with pytest.raises(ValueError, match="v_decay=4097"):
        CubaParams(i_decay=(0, 1), v_decay=(4096, 4097), threshold=1)
    CubaParams(i_decay=0, v_decay=4096, threshold=2 ** 17)   # netx's default, never fires


def test_weights_land_on_loihis_grid():
    w = quantize_weight(torch.tensor([-1000.0, -3.0, -1.0, 0.4, 1.0, 3.1, 253.0, 999.0]))
    assert w.tolist() == [-256, -4, 0, 0, 0, 4, 252, 254]   # halves round to even


def test_training_mode_tracks_exact_mode():
    torch.manual_seed(0)
    p = CubaParams(1024, 256, 128)
    model = SpikingNet((32,), 10, [p, p], hidden=[64])
    x = (torch.rand(16, 16, 32) < 0.3).float()
    with torch.no_grad():
        floats = model(x)
    exact = run_exact(model.to_integer(), x)
    for f, e in zip(floats, exact):
        assert (f.bool() != e).float().mean() < 0.01


def test_network_shapes_are_checked():
    p = CubaParams(1, 1, 1)
    with pytest.raises(ValueError, match=r"expects input \(3,\) but the previous layer gives \(4,\)"):
        IntNetwork(4, (IntLayer(np.ones((2, 3), np.int64), p, name="fc0"),))


@pytest.mark.gpu                  # skipped without CUDA (conftest.py)
def test_exact_mode_is_identical_on_cuda():
    rng = np.random.default_rng(0)
    p = CubaParams(300, 100, 60)
    net = IntNetwork(40, (IntLayer(rng.integers(-128, 128, (50, 40)) * 2, p, name="fc0"),
                          IntLayer(rng.integers(-128, 128, (10, 50)) * 2, p, name="fc1")))
    x = torch.as_tensor(rng.random((64, 32, 40)) < 0.3)
    cpu = run_exact(net, x)
    gpu = run_exact(net, x.cuda())
    for a, b in zip(cpu, gpu):
        assert torch.equal(a, b.cpu())


@pytest.mark.parametrize("case", ["wrap-and-saturate", "recurrent-bias-per-neuron",
                                  "negative-saturation", "float32-state"])
def test_fast_exact_mode_equals_stepping_the_reference_rules(case):
    """run_exact (float32 sums where exact, float32 or float64 state updated in place, the
    wrap test skipped when provably unreachable) gives exact_step's int64 result, bit for bit."""
    rng = np.random.default_rng(3)
    if case == "float32-state":     # decays with small odd factors, as the shipped students
        layers = (IntLayer(rng.integers(-60, 80, (12, 40)) * 2, CubaParams(2048, 1024, 40),
                           name="a", bias=rng.integers(-40, 60, 12)),
                  IntLayer(rng.integers(-60, 90, (5, 12)) * 2, CubaParams(2048, 3072, 60),
                           name="b"))
        assert all(_state_plan(layer, 60, 60 * 64)[0] == torch.float32 for layer in layers)
    elif case == "wrap-and-saturate":
        layers = (IntLayer(rng.integers(0, 128, (12, 40)) * 2, CubaParams(0, 0, 2 ** 17 - 1),
                           name="a"),
                  IntLayer(rng.integers(0, 128, (5, 12)) * 2, CubaParams(1, 0, 2000), name="b"))
    elif case == "negative-saturation":     # a readout integrator driven far below zero
        layers = (IntLayer(rng.integers(0, 128, (12, 40)) * 2, CubaParams(4096, 4096, 50),
                           name="a"),
                  IntLayer(-rng.integers(60, 128, (5, 12)) * 2, CubaParams(0, 0, 2 ** 17),
                           name="b"))
    else:
        layers = (IntLayer(rng.integers(-60, 80, (12, 40)) * 2,
                           CubaParams(tuple(range(0, 4096, 342)), 700, 300), name="a",
                           bias=rng.integers(-40, 60, 12),
                           recurrent=rng.integers(-100, 100, (12, 12)) * 2),
                  IntLayer(rng.integers(-60, 90, (5, 12)) * 2, CubaParams(900, 4096, 150),
                           name="b"))
    net = IntNetwork(40, layers)
    x = torch.as_tensor(rng.random((8, 60, 40)) < (0.9 if case == "wrap-and-saturate" else 0.5))
    fast, volts = run_exact(net, x, voltage=True)
    inp, hit = x.to(torch.int64), 0
    for layer, got in zip(layers, fast):
        w = torch.as_tensor(layer.weight)
        rec = None if layer.recurrent is None else torch.as_tensor(layer.recurrent)
        bias = 0 if layer.bias is None else torch.as_tensor(layer.bias)
        u = v = torch.zeros(8, len(w), dtype=torch.int64)
        s, spikes = torch.zeros_like(u, dtype=torch.bool), []
        for t in range(inp.shape[1]):
            a = inp[:, t] @ w.T + (0 if rec is None else s.to(torch.int64) @ rec.T)
            u, v, s = exact_step(u, v, a, layer.params, bias)
            hit += int((u.abs() > U_WRAP * 3 // 4).sum() + (v.abs() == V_LIMIT).sum())
            spikes.append(s)
        assert torch.equal(torch.stack(spikes, 1), got)
        inp = got.to(torch.int64)
    assert torch.equal(volts[:, -1], v)
    if case in ("wrap-and-saturate", "negative-saturation"):
        assert hit > 0                      # the extremes were really reached
    assert all(bool(spikes.any()) for spikes in fast[:-1])
