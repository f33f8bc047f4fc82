"""A layer's float weights, bias and neuron terms onto Loihi's integers: one scale per layer
puts the weights on the 8-bit grid (a power of two where that makes them exact), the
per-neuron gains and thresholds folded into the weight rows; every rounding is reported."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.neurons import CubaParams, IntLayer
from neurodeploy.neurons.cuba import DECAY_UNITY, THRESHOLD_MAX, WEIGHT_MAX

BIAS_MAX = 2 ** 12 - 1


@dataclass
class Neuron:
    """A layer's neurons as `quantize` takes them (see importer.neuron_terms)."""
    du: float
    dv: float
    gain: np.ndarray        # per neuron: input -> u scale
    bias: np.ndarray        # per neuron: constant added to v each step
    threshold: np.ndarray   # per neuron


def _grid_scale(scale: float, weight, threshold, bias) -> float:
    """scale, or else the largest power of two below it, when that puts every weight on the
    even 8-bit grid and the threshold and biases on integers; otherwise scale. Weights that
    are binary fractions (k/128, or the k/512 a 2x2 AvgPool2d folds them into) then deploy
    with no rounding: AvgPool's 1/(kH kW) is exact when kH kW is a power of two."""
    on = lambda v, step: np.all(np.abs(v / step - np.round(v / step)) <= 1e-4)  # noqa: E731
    for candidate in (scale, 2.0 ** np.floor(np.log2(scale))):
        if on(weight * candidate, 2) and on(bias * candidate, 1) and (threshold is None or (
                on(threshold * candidate, 1) and threshold * candidate >= 1)):
            return float(candidate)
    return scale


def _span(values) -> str:
    """[min, max] of float values as a reader wants it (1e+308, not int64's -2**63)."""
    a = np.asarray(values, dtype=np.float64)
    return f"[{a.min():.4g}, {a.max():.4g}]" if a.size else "[]"


def quantize(name, synapse_name, conv, weight, bias, out_shape, neuron: Neuron, source,
              readout: bool = False, recurrent: np.ndarray | None = None,
              headroom: float = 1.0):
    """One scale for the layer's feed-forward and recurrent weights: both are added into the
    same current, so they share the gains, the threshold and the 8-bit grid. `headroom` > 1
    multiplies the scale that fits the largest weight, clipping the few largest weights to
    the grid's ends so that the rest (and the threshold) get finer steps; the report counts
    the clipped weights."""
    n = int(np.prod(out_shape))
    if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
        raise UserError(f"{source}: node '{synapse_name}': weights or biases hold NaN or "
                        "infinity; fix the graph")
    if np.any(bias) and neuron.du < 1:
        raise UserError(f"{source}: node '{synapse_name}': a bias is a constant input current, "
                        "which Loihi can only add when the current does not decay across steps "
                        "(tau_syn = dt); remove the bias")
    per_channel = n // weight.shape[0] if conv else 1
    if readout:                                                # no threshold to respect
        neuron.threshold = np.ones_like(neuron.gain)
    ref = neuron.threshold.max()
    row_scale = neuron.gain * ref / neuron.threshold           # uniform threshold, gains folded
    v_bias = (neuron.bias + neuron.gain * np.repeat(bias, per_channel)) * ref / neuron.threshold
    if conv:
        per = row_scale.reshape(weight.shape[0], -1)
        if not np.allclose(per, per[:, :1]):
            raise UserError(f"{source}: node '{name}': gains or thresholds vary within a "
                            "channel, which a convolution cannot express")
        w_eff = weight * per[:, :1, None, None]
    else:
        w_eff = weight * row_scale[:, None]
    rec_eff = None if recurrent is None else recurrent * row_scale[:, None]
    if rec_eff is not None and not np.isfinite(rec_eff).all():
        raise UserError(f"{source}: node '{name}': recurrent weights hold NaN or infinity; "
                        "fix the graph")
    for what, values in (("weights", w_eff), ("biases", v_bias)):
        if not np.isfinite(values).all():
            raise UserError(f"{source}: node '{synapse_name}': its {what} "
                            f"{_span(weight if what == 'weights' else bias)}, times the gain "
                            f"and threshold of '{name}', overflow float64; rescale the "
                            "graph's weights, biases or thresholds")
    w_max = max(np.abs(w_eff).max(), 0 if rec_eff is None else np.abs(rec_eff).max())
    if w_max == 0:
        raise UserError(f"{source}: node '{synapse_name}': all weights are zero")
    scale = headroom * WEIGHT_MAX / w_max
    scale = scale if readout else min(scale, THRESHOLD_MAX / ref)
    if np.any(v_bias):
        scale = min(scale, BIAS_MAX / np.abs(v_bias).max())
    if not (np.isfinite(scale) and np.finfo(np.float64).tiny < scale):
        raise UserError(f"{source}: node '{synapse_name}': weights {_span(w_eff)} (with the "
                        f"gain and threshold of '{name}') span too many orders of magnitude "
                        "for Loihi's 8-bit weights; rescale the graph's weights")
    both = w_eff.reshape(-1) if rec_eff is None else np.concatenate([w_eff.reshape(-1),
                                                                      rec_eff.reshape(-1)])
    scale = _grid_scale(scale, both, None if readout else ref, v_bias)
    grid = lambda w: np.clip(2 * np.round(w * scale / 2), -256, 254).astype(np.int64)  # noqa
    w_int = grid(w_eff)
    rec_int = None if rec_eff is None else grid(rec_eff)
    th_int = THRESHOLD_MAX if readout else int(max(1, round(ref * scale)))
    b_int = np.round(v_bias * scale).astype(np.int64) if np.any(v_bias) else None
    i_decay, v_decay = round(DECAY_UNITY * neuron.du), round(DECAY_UNITY * neuron.dv)
    try:
        layer = IntLayer(weight=w_int, params=CubaParams(i_decay, v_decay, th_int),
                         bias=(b_int[::per_channel] if conv and b_int is not None else b_int),
                         name=synapse_name, conv=conv, recurrent=rec_int)
    except ValueError as e:
        raise UserError(f"{source}: node '{synapse_name}': {e}") from None
    err = (w_int / scale - w_eff).reshape(-1)
    if rec_int is not None:
        err = np.concatenate([err, (rec_int / scale - rec_eff).reshape(-1)])
    row = {
        "layer": synapse_name, "neurons": name, "scale": float(scale),
        "row_scale": row_scale, "headroom": float(headroom),
        "clipped_weights": int((np.abs(both * scale) > WEIGHT_MAX + 1).sum()),
        "weight_rel_rms_error": float(np.sqrt(((err / w_max) ** 2).mean()
                                              / ((both / w_max) ** 2).mean())),
        "weight_max_abs_error": float(np.abs(err).max()),
        "threshold": {"float": float(ref * scale), "int": th_int,
                      "rel_error": float(abs(th_int - ref * scale) / (ref * scale))},
        "i_decay": {"exact": DECAY_UNITY * neuron.du, "int": i_decay},
        "v_decay": {"exact": DECAY_UNITY * neuron.dv, "int": v_decay},
        "bias_max_abs_error": (float(np.abs(b_int - v_bias * scale).max())
                               if b_int is not None else 0.0),
    }
    if rec_int is not None:
        row["recurrent_synapses"] = int(np.count_nonzero(rec_int))
    # before rounding, in integer units: where `tune` starts its straight-through weights
    row["latent"] = {"weight": w_eff * scale, "recurrent": None if rec_eff is None
                     else rec_eff * scale,
                     "bias": None if b_int is None
                     else (v_bias * scale)[::per_channel] if conv else v_bias * scale}
    return layer, row
