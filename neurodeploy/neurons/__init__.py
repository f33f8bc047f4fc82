"""The one definition of Loihi's CUBA-LIF neuron: training mode and exact integer mode."""
from neurodeploy.neurons.cuba import (CubaParams, CubaLIF, QuantDense, exact_step, float_step,
                                      WEIGHT_MIN, WEIGHT_MAX)
from neurodeploy.neurons.network import Conv, IntLayer, IntNetwork, run_exact
from neurodeploy.neurons.student import SpikingNet

__all__ = ["CubaParams", "CubaLIF", "QuantDense", "exact_step", "float_step", "WEIGHT_MIN",
           "WEIGHT_MAX", "Conv", "IntLayer", "IntNetwork", "SpikingNet", "run_exact"]
