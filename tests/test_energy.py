"""Event counting on a record small enough to count by hand."""
import numpy as np
import pytest

from neurodeploy.backends.record import SpikeRecord
from neurodeploy.energy import count_events, energy_report, get_preset
from neurodeploy.errors import UserError
from neurodeploy.neurons import CubaParams, IntLayer, IntNetwork


def test_counts_follow_fan_out_and_activity():
    w0 = np.array([[2, 0, 4], [0, 0, 2]])          # input fan-out: 1, 0, 2
    w1 = np.array([[2, 2]])
    p = CubaParams(1, 1, 1)
    net = IntNetwork(3, (IntLayer(w0, p, name="fc0"), IntLayer(w1, p, name="fc1")))
    inputs = np.array([[[1, 1, 0], [0, 0, 1]]], bool)      # 1 sample, 2 steps
    hidden = np.array([[[1, 0], [1, 1]]], bool)
    out = np.array([[[0], [1]]], bool)
    rec = SpikeRecord("hand", inputs, [hidden, out], ["fc0", "fc1"])
    c = count_events(rec, net)
    np.testing.assert_array_equal(c["synaptic_ops"], [[1, 2], [1, 2]])
    np.testing.assert_array_equal(c["neuron_active"], [[1, 2], [1, 1]])
    np.testing.assert_array_equal(c["neuron_inactive"], [[1, 0], [0, 0]])
    np.testing.assert_array_equal(c["spikes"], [[1, 2], [0, 1]])
    preset = get_preset("loihi1-davies2018")
    rep = energy_report(rec, net, preset)
    t0 = 2 * 23.6 + 2 * 81 + 1 * 52 + 1 * 1.7
    assert rep["per_timestep"][0]["energy_pj"] == pytest.approx(t0)
    assert rep["per_timestep"][0]["synaptic_ops"] == 2
    assert rep["energy"]["source"].startswith("Davies et al.")


def test_unknown_preset_is_a_user_error():
    with pytest.raises(UserError, match="unknown energy preset 'loihi9'"):
        get_preset("loihi9")
