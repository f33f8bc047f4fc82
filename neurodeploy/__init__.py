"""neurodeploy: distill spiking students in PyTorch, export through NIR to lava-dl netx, and run
them on Lava (Loihi 2) with spikes, energy and parity.

The verbs are functions in `neurodeploy.pipeline` (distill, export, simulate, report, run); the
building blocks are torch modules in `neurodeploy.neurons`.
"""
__version__ = "0.1.0"
