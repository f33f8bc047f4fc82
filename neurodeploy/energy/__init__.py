"""Energy, latency and resources from counted events, priced by cited figures."""
from neurodeploy.energy.ann import ann_baselines, dense_layers
from neurodeploy.energy.counting import accuracy_by_timestep, count_events
from neurodeploy.energy.estimate import price
from neurodeploy.energy.hardware import layer_table, resource_estimate, storage_estimates
from neurodeploy.energy.presets import PRESETS, Preset, load_preset

__all__ = ["ann_baselines", "dense_layers", "accuracy_by_timestep", "count_events", "price",
           "layer_table", "resource_estimate", "storage_estimates", "PRESETS", "Preset",
           "load_preset"]
