"""A foreign NIR graph as its own framework runs it, in float: the teacher `tune` distills
onto Loihi's grid and the "float (as trained)" side of parity.

Discretization as the importer documents it (forward Euler, the updated current drives the
voltage, per-neuron thresholds, recurrent loops one step late, a bias as a current every
step), before quantization, with the reset the user states, since NIR has no field for it:
    reset "zero"       v <- 0 in the step of the spike (Loihi, netx; snnTorch
                       reset_mechanism="zero")
    reset "subtract"   v <- v - threshold (snnTorch's default reset_mechanism)
    reset_delay        snnTorch's default reset_delay=True: the reset of a spike at step t is
                       applied at step t+1 (subtract: v[t+1] = decay(v[t]) + u - threshold, so
                       v stays above threshold for one step; zero: v is cleared before the
                       decay, which gives the same spikes as the immediate reset).
Only "zero" without delay deploys exactly: Loihi's CUBA neuron resets to zero in the step of
the spike. Layer outputs are the spikes of each neuron layer, [B, T, n] (0/1), or for a
non-spiking readout its voltage in the graph's own units.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from neurodeploy.errors import UserError
from neurodeploy.graph import lower_nir, read_nir
from neurodeploy.graph.fields import shape_of
from neurodeploy.graph.importer import READOUTS, chain, infer_dt, neuron_terms
from neurodeploy.graph.kernels import LINEAR, synapse
from neurodeploy.graph.topology import flatten, recurrent_loops

RESETS = ("zero", "subtract")


@dataclass(frozen=True)
class Reset:
    """How the source framework resets a neuron after a spike (NIR cannot say)."""
    mechanism: str = "zero"
    delay: bool = False

    def __post_init__(self):
        if self.mechanism not in RESETS:
            raise UserError(f"--reset {self.mechanism}: choose one of {', '.join(RESETS)}")

    @property
    def exact_on_loihi(self) -> bool:
        """Spikes identical to Loihi's reset (zero, in the step of the spike)."""
        return self.mechanism == "zero"

    def describe(self) -> str:
        when = "one step late" if self.delay else "in the step of the spike"
        what = "to zero" if self.mechanism == "zero" else "by subtracting the threshold"
        return f"reset {what}, {when}"


class FloatGraph(nn.Module):
    """The graph's float model over input spikes [B, T, in] (any float dtype; runs float64).

    `blocks` follow the deployed layers one to one (a layer's name is its first linear node),
    except the neurons the deployment adds to carry a bias (see always_on.py)."""

    def __init__(self, graph: nir.NIRGraph, source: str = "<graph>", dt: float | None = None,
                 reset: Reset = Reset()):
        super().__init__()
        graph = flatten(graph, source)
        self.net, self.quantization = lower_nir(graph, source, dt)   # refuses what can't deploy
        self.dt, self.reset, self.source = infer_dt(graph, dt, source), reset, source
        nodes = chain(graph, source, recurrent=True)
        loops = recurrent_loops(graph)[1]
        shape = shape_of(nodes[0][1].output_type["output"], nodes[0][0], source)
        self.input_shape = tuple(shape)
        self.blocks: list[dict] = []
        block = []
        for name, node in nodes[1:]:
            if isinstance(node, LINEAR):
                block.append((name, node))
                continue
            if isinstance(node, nir.Output):
                break
            loop = [(n, graph.nodes[n]) for n in loops.get(name, [])]
            conv, weight, bias, out_shape = synapse(block, shape, source, dense=bool(loop))
            rec = None
            if loop:
                _, rec, rec_bias, _ = synapse(loop, out_shape, source, dense=True)
                bias = bias + rec_bias
            neuron = neuron_terms(name, node, self.dt, source, int(np.prod(out_shape)))
            self.blocks.append({"name": block[0][0], "conv": conv, "du": neuron.du,
                                "dv": neuron.dv, "readout": isinstance(node, READOUTS),
                                "size": int(np.prod(out_shape))})
            index = len(self.blocks) - 1
            f64 = lambda a: torch.as_tensor(np.asarray(a, np.float64))  # noqa: E731
            for key, value in (("weight", weight), ("bias", bias), ("gain", neuron.gain),
                               ("v_bias", neuron.bias), ("threshold", neuron.threshold)):
                self.register_buffer(f"{key}{index}", f64(value))
            self.register_buffer(f"rec{index}", None if rec is None
                                 else f64(rec).t() * f64(neuron.gain))
            shape, block = out_shape, []
        self.readout = self.blocks[-1]["readout"]
        self.logit_unit = 1.0          # logits = summed output / (logit_unit * T), see step_logits

    @classmethod
    def from_file(cls, path: str | Path, dt: float | None = None,
                  reset: Reset = Reset()) -> "FloatGraph":
        return cls(read_nir(path), str(path), dt, reset)

    @property
    def readout_scale(self) -> float:
        """Deployed readout units per float unit (the last layer's quantization scale)."""
        return float(self.quantization[-1]["scale"])

    def forward(self, spikes: torch.Tensor) -> list[torch.Tensor]:
        """Per neuron layer [B, T, n] float64: spikes 0/1, or a readout's voltage."""
        n, t = spikes.shape[:2]
        x = spikes.reshape(n, t, -1).to(torch.float64)
        out = []
        for i, b in enumerate(self.blocks):
            w, bias = getattr(self, f"weight{i}"), getattr(self, f"bias{i}")
            gain, v_bias = getattr(self, f"gain{i}"), getattr(self, f"v_bias{i}")
            threshold, rec = getattr(self, f"threshold{i}"), getattr(self, f"rec{i}")
            flat = x.reshape(n * t, -1)
            if b["conv"]:
                c = b["conv"]
                a = nn.functional.conv2d(flat.reshape(-1, *c.input_shape), w, bias,
                                         stride=c.stride, padding=c.padding,
                                         dilation=c.dilation, groups=c.groups)
            else:
                a = flat @ w.t() + bias
            a = a.reshape(n, t, -1) * gain
            u = v = torch.zeros_like(a[:, 0])
            s = torch.zeros_like(v)
            steps = []
            for step in range(t):
                if self.reset.delay and self.reset.mechanism == "zero":
                    v = v * (1 - s)
                u = u * (1 - b["du"]) + a[:, step]
                if rec is not None:                 # own spikes of the previous step
                    u = u + s @ rec
                v = v * (1 - b["dv"]) + u + v_bias
                if self.reset.delay and self.reset.mechanism == "subtract":
                    v = v - threshold * s
                if b["readout"]:
                    steps.append(v)
                    continue
                s = (v > threshold).to(v.dtype)
                if not self.reset.delay:
                    v = v * (1 - s) if self.reset.mechanism == "zero" else v - threshold * s
                steps.append(s)
            x = torch.stack(steps, 1)
            out.append(x)
        return out

    def step_logits(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Per-step contributions to the logits [B, T, C] (their sum over T): output spikes,
        or a readout's voltage / (logit_unit * T), as the tuned student's (tune.py)."""
        last = outputs[-1]
        return last / (self.logit_unit * last.shape[1]) if self.readout else last

    def spiking_layers(self, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The spiking layers' outputs (the layer KD loss matches them; a readout is not)."""
        return [o for o, b in zip(outputs, self.blocks) if not b["readout"]]
