"""Energy from counted events, priced by cited per-operation figures."""
from neurodeploy.energy.counting import count_events, energy_report
from neurodeploy.energy.presets import PRESETS, Preset, get_preset

__all__ = ["count_events", "energy_report", "PRESETS", "Preset", "get_preset"]
