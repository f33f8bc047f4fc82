"""`neurodeploy tune`: a float NIR graph from another framework, distilled onto Loihi's grid.

Deploying is distilling: the teacher is the graph's own float model as its framework ran it
(graph/float_model.py, with the reset the user states), the student is the deployed integer
network the lowering gives (neurons/tunable.py: the same layers, exact arithmetic, weights on
the 8-bit grid through a straight-through estimator), trained by the distillation trainer
(distill/train.py) with losses from the one registry: logit KD on the float model's outputs
(Hinton et al. 2015), every hidden layer's spike train matched to the float model's
(Distilling Spikes, seed 004, applied per layer as KDSNN, seed 001, does with features), and
cross-entropy on the labels, or on the float model's decisions where the inputs have none.
Validated in the exact mode on a seeded held-out part of the inputs by agreement with the
float model's predictions (fidelity is what tuning recovers; accuracy is reported beside it
where labels exist); the best validated epoch is kept, and
the untuned lowering is kept instead where tuning did not beat it on the held-out part.
What tuning cannot recover, it reports: a reset by subtraction that Loihi cannot run is
learned around, never run; everything is measured on inputs not used for tuning.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel

from neurodeploy.artifacts import write_deployment
from neurodeploy.backends.float_mode import float_record as record_of
from neurodeploy.backends.float_mode import search_headroom
from neurodeploy.backends.torch_exact import simulate_torch
from neurodeploy.distill.losses import build_loss
from neurodeploy.distill.train import distill_student
from neurodeploy.energy import layer_table, load_preset
from neurodeploy.energy.counting import count_events
from neurodeploy.data.npz import load_arrays
from neurodeploy.energy.estimate import price
from neurodeploy.errors import UserError
from neurodeploy.files import file_digest, writable_dir, write_json
from neurodeploy.graph import UNITS, lower_nir, read_nir
from neurodeploy.graph.always_on import RELAY
from neurodeploy.graph.float_model import FloatGraph, Reset
from neurodeploy.netx.metadata import check_metadata
from neurodeploy.neurons.tunable import TunableNet
from neurodeploy.preflight import resolve_device
from neurodeploy.report.html import write_tune_html
from neurodeploy.schema import OPEN, Section, written

DEFAULT_LOSSES = ({"name": "logit_kd", "weight": 1.0, "temperature": 2.0},
                  {"name": "layer_spikes", "weight": 4.0, "window": 16},
                  {"name": "ce", "weight": 0.5})
RESET_NOTE = ("NIR cannot state the reset mechanism; the float model used the one given with "
              "--reset/--reset-delay. Loihi resets to zero in the step of the spike; a model "
              "trained with another reset is learned around here, never run. To deploy "
              "exactly, train with Loihi's reset in the source framework (snnTorch: "
              "reset_mechanism=\"zero\", reset_delay=False).")
MIN_SAMPLES = 10              # in each of the tuning and held-out parts
STATE = "tune_state.pt"


class HeldOut(BaseModel):
    """One network's numbers on the held-out inputs against the float model (_record_stats)."""
    model_config = OPEN
    prediction_agreement: float
    accuracy: float | None                        # None: the inputs have no labels
    layers: list[Section]                         # per matched layer: spike agreement, counts
    spikes_per_sample: float
    energy: dict[str, dict[str, float | None]]    # preset: per_inference_pj, dynamic_pj, ...


class TuneReport(BaseModel):
    """tune.json, as `tune` writes it (and tune.html shows): what was tuned on what, how,
    and the held-out numbers before and after."""
    model_config = OPEN
    source: Section                               # the float NIR graph: file, sha256
    inputs: Section                               # the spike trains: file, sha256, samples ...
    split: Section                                # seed, fraction, sizes of both parts
    reset: Section                                # the reset assumed, and whether Loihi runs it
    losses: list[Section]
    training: Section                             # epochs, lr, best epoch, histories
    float: Section                                # the float model on the held-out inputs
    headroom: dict[str, float]                    # per layer: the scale headroom started from
    before: HeldOut                               # the lowering, untuned
    after: HeldOut                                # what was kept
    kept: str
    seconds: float
    files: dict[str, str]                         # manifest.json's: name -> sha256


@dataclass(frozen=True)
class TuneOptions:
    """What `tune` takes besides the graph and the inputs (the CLI's flags)."""
    reset: str = "zero"
    reset_delay: bool = False
    dt: float | None = None
    epochs: int = 30
    lr: float = 0.1             # Adam, in integer weight units (one grid step is 2)
    batch_size: int = 64
    held_out: float = 0.25
    headroom: str | float = "auto"    # the lowering's scale headroom: "auto" searches it
    redraw: float = 0.0         # fraction of each channel's input events redrawn per batch
    seed: int = 0
    losses: tuple = DEFAULT_LOSSES
    presets: tuple[str, ...] = ("loihi2-proxy",)
    device: str | None = None


def read_tune_inputs(path: str | Path, input_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Spike trains `x` [N, T, ...] (0/1) and, when present, integer labels `y` from a .npz."""
    arrays = load_arrays(path, ("x",), ("y",), save="np.savez(path, x=spikes, y=labels)",
                         expected="spike trains 'x' [N, T, ...] and optionally labels 'y'")
    path, x, y = Path(path), arrays["x"], arrays.get("y")
    if x.ndim < 3 or 0 in x.shape or not (x.dtype == bool or (
            np.issubdtype(x.dtype, np.integer) and x.min() >= 0 and x.max() <= 1)):
        raise UserError(f"{path}: array 'x' must be 0/1 spike trains [N, T, ...], got {x.dtype} "
                        f"{list(x.shape)}; encode analog inputs as spikes first")
    width = int(np.prod(x.shape[2:]))
    if width != input_size:
        raise UserError(f"{path}: array 'x' has {width} inputs per step ({list(x.shape[2:])}), "
                        f"the graph expects {input_size}; give the inputs this graph reads")
    if y is not None:
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
            raise UserError(f"{path}: array 'y' must hold one integer label per sample "
                            f"({len(x)}), got {y.dtype} {list(y.shape)}")
    return x.reshape(len(x), x.shape[1], -1).astype(np.uint8), y


def redraw_events(spikes: torch.Tensor, fraction: float,
                  generator: torch.Generator) -> torch.Tensor:
    """`spikes` [B, T, ...] with about `fraction` of each channel's events (or of its silent
    steps, if fewer) moved to random silent steps of the same channel: the channel's rate is
    kept in expectation, its timing drawn anew, as a rate code would be drawn again. Tuning on
    the inputs the float model was trained on alone overfits them (held-out agreement 99.9%,
    test 96.7% on the digits MLP, probe); asked on such neighbours, the float model teaches
    its decisions near ties too."""
    rate = spikes.mean(1, keepdim=True)
    drop = fraction * ((1 - rate) / rate.clamp_min(1e-6)).clamp(max=1)
    add = fraction * (rate / (1 - rate).clamp_min(1e-6)).clamp(max=1)
    noise = torch.rand(spikes.shape, generator=generator)
    return torch.where(spikes > 0, (noise >= drop).to(spikes.dtype),
                       (noise < add).to(spikes.dtype))


def _split(n: int, held_out: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation's first round(held_out * n) samples are held out."""
    k = int(round(held_out * n))
    if k < MIN_SAMPLES or n - k < MIN_SAMPLES:
        raise UserError(f"{n} samples with --held-out {held_out:g} leave {n - k} to tune on and "
                        f"{k} to validate; each part needs at least {MIN_SAMPLES}: give more "
                        "samples")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


def _matched(teacher: FloatGraph, net) -> list[tuple[int, int]]:
    """(student layer, teacher neurons) of each spiking teacher layer: the relay layer is
    skipped and always-on neurons (appended last) are left out."""
    offset = 1 if net.layers[0].name == RELAY else 0
    return [(i + offset, b["size"]) for i, b in enumerate(teacher.blocks) if not b["readout"]]


def _logit_unit(teacher: FloatGraph, spikes: np.ndarray) -> float:
    """A readout's logit unit: the float model's summed output voltage spread (mean over
    samples of its std across classes), so logits are O(1) and a KD temperature means the
    same for any graph's units; 1 for spike counts."""
    if not teacher.readout:
        return 1.0
    with torch.no_grad():
        v = teacher(torch.as_tensor(spikes[:512]))[-1].mean(1)
    spread = float(v.std(1).mean())
    return spread if spread > 0 else 1.0


def _record_stats(net, record, reference, matched, labels, presets) -> dict:
    """One network's held-out numbers against the float model's record `reference`."""
    out = {"prediction_agreement": float((record.predictions == reference.predictions).mean()),
           "accuracy": None if labels is None else record.accuracy(labels),
           "layers": []}
    for i, n in matched:
        a, b = record.layers[i][..., :n], reference.layers[i][..., :n]
        out["layers"].append({"layer": record.layer_names[i],
                              "spike_agreement": float((a == b).mean()),
                              "spikes_per_sample": float(a.sum() / len(a)),
                              "float_spikes_per_sample": float(b.sum() / len(b))})
    out["spikes_per_sample"] = float(sum(s.sum() for s in record.layers) / record.samples)
    counts = {k: v.tolist() for k, v in count_events(record, net).items()}
    out["energy"] = {}
    for name in presets:
        e = price(counts, layer_table(net), load_preset(name))["energy"]
        out["energy"][name] = {"per_inference_pj": e["per_inference_pj"],
                               "dynamic_pj": e["dynamic_pj"], "latency_us": e["latency_us"]}
    return out


def tune(source: str | Path, inputs: str | Path, out: str | Path,
         options: TuneOptions = TuneOptions(), progress: bool | None = False,
         fresh: bool = False) -> dict:
    """Distill the float NIR graph `source` onto Loihi's grid with the spike trains in
    `inputs`; writes out/student.nir, network.net, manifest.json, tune.json (returned) and
    tune.html. Resumable: out/tune_state.pt is reused when the same graph, inputs and options
    made it (`fresh` starts over)."""
    started = time.perf_counter()
    source, out = Path(source), Path(out)
    if source.suffix != ".nir":
        raise UserError(f"{source}: tune takes a NIR graph trained elsewhere (.nir); a netx file "
                        "is integer already, so there is nothing to recover")
    graph = read_nir(source)
    units = (graph.metadata or {}).get("units")
    if (units.decode(errors="replace") if isinstance(units, bytes) else units) == UNITS:
        raise UserError(f"{source}: this graph is a neurodeploy export (integer units): it is "
                        "the deployed network already; tune the float graph it came from")
    reset = Reset(options.reset, options.reset_delay)
    device = resolve_device(options.device)
    teacher = FloatGraph(graph, str(source), options.dt, reset)
    x, y = read_tune_inputs(inputs, teacher.net.input_size)
    classes = teacher.net.layers[-1].size
    if y is not None and (y.min() < 0 or y.max() >= classes):
        bad = int(y.min() if y.min() < 0 else y.max())
        raise UserError(f"{inputs}: array 'y' holds label {bad}; the graph has {classes} outputs "
                        f"(0..{classes - 1}): check the labels belong to this graph")
    train, held = _split(len(x), options.held_out, options.seed)
    loss = build_loss([dict(t) for t in options.losses], "tune")
    settings = {"source_sha256": file_digest(source), "inputs_sha256": file_digest(inputs),
                "options": {k: v for k, v in asdict(options).items() if k != "device"}}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()

    t = x.shape[1]
    with torch.no_grad():
        teacher.logit_unit = _logit_unit(teacher, x[train])
    float_record = record_of(teacher, x)
    targets = y if y is not None else float_record.predictions
    lowered = teacher.net
    headroom = _headroom(source, lowered, x, train, float_record, options)
    latent = {}
    net, quantization = lower_nir(graph, str(source), options.dt, headroom, latent)
    student = TunableNet(net, _fixed_rows(teacher, net), frozen=(RELAY,), latent=latent)
    student.matched = _matched(teacher, net)
    student.logit_unit = teacher.logit_unit * float(quantization[-1]["scale"])
    out = _out_dir(out, fresh)
    hist = distill_student(
        student, teacher, loss, train_spikes=x[train], train_x=x[train], train_y=targets[train],
        val_spikes=x[held], val_y=float_record.predictions[held], epochs=options.epochs,
        lr=options.lr,
        batch_size=min(options.batch_size, len(train)), seed=options.seed,
        checkpoint=out / STATE, key=key, progress=progress, device=device, keep_start=True,
        augment=(lambda b, gen: redraw_events(b, options.redraw, gen)) if options.redraw else None)
    tuned = student.to_integer()

    reference = _rows(float_record, held)
    before = simulate_torch(lowered, x[held])
    after = simulate_torch(tuned, x[held])
    matched = student.matched
    labels = None if y is None else y[held]
    report = {
        "source": {"file": str(source.resolve()), "sha256": settings["source_sha256"]},
        "inputs": {"file": str(Path(inputs).resolve()), "sha256": settings["inputs_sha256"],
                   "samples": int(len(x)), "timesteps": int(t), "labels": y is not None},
        "split": {"seed": options.seed, "held_out_fraction": options.held_out,
                  "tuned_on": int(len(train)), "held_out": int(len(held)),
                  "validated_by": "agreement with the float model's predictions"},
        "reset": {"assumed": reset.mechanism, "delay": reset.delay,
                  "described": reset.describe(), "exact_on_loihi": reset.exact_on_loihi,
                  "note": RESET_NOTE},
        "losses": [dict(t) for t in options.losses],
        "training": {"epochs": options.epochs, "lr": options.lr, "batch_size": options.batch_size,
                     "redraw": options.redraw,
                     "device": str(device), "best_epoch": hist.best_epoch,
                     "val_history": [None if np.isnan(v) else v for v in hist.val_accuracy],
                     "train_loss": hist.train_loss},
        "float": {"accuracy": None if labels is None else reference.accuracy(labels),
                  "spikes_per_sample": float(sum(s.sum() for s in reference.layers)
                                             / reference.samples)},
        "headroom": headroom,
        "before": _record_stats(lowered, before, reference, matched, labels, options.presets),
        "after": _record_stats(tuned, after, reference, matched, labels, options.presets),
    }
    kept = "tuned" if hist.best_epoch >= 0 else \
        "the searched headroom's lowering (no tuned epoch beat it on the held-out inputs)"
    if report["after"]["prediction_agreement"] < report["before"]["prediction_agreement"]:
        tuned, kept = lowered, "the untuned lowering (tuning did not beat it when held out)"
        report["after"] = report["before"]
    report["kept"] = kept
    report["seconds"] = round(time.perf_counter() - started, 1)
    meta = check_metadata({"timesteps": int(t)}, str(source))
    manifest = write_deployment(tuned, meta, out, {
        "source": {**report["source"], "tuned": kept == "tuned", "reset": report["reset"]},
        "inputs": report["inputs"], "tune": {k: report[k] for k in ("split", "losses",
                                                                     "training", "kept")}})
    report["files"] = manifest["files"]
    write_json(out / "tune.json", written(TuneReport, report))
    write_tune_html(report, out)
    return report


def _headroom(source, lowered, x, train, float_record,
              options: TuneOptions) -> dict[str, float]:
    """Per layer, the scale headroom the student starts from: given, or where "auto", the one
    whose rounding flips the fewest of the float model's decisions on (up to 256 of) the
    tuning inputs (float_mode.search_headroom): a larger scale gives the weights and the
    threshold finer steps at the cost of clipping the largest weights, which tuning can
    then compensate."""
    if options.headroom != "auto":
        return {layer.name: float(options.headroom) for layer in lowered.layers}
    calibrate = train[:256]
    return search_headroom(source, x[calibrate], options.dt,
                           flt=_rows(float_record, calibrate))[0]


def _fixed_rows(teacher: FloatGraph, net) -> list[int | None]:
    """Per deployed layer, where its always-on neurons (appended by the lowering) start."""
    offset = 1 if net.layers[0].name == RELAY else 0
    rows = [None] * len(net.layers)
    for i, block in enumerate(teacher.blocks):
        layer = net.layers[i + offset]
        if layer.size > block["size"]:       # conv: a whole channel; dense: neurons
            per = layer.size // layer.weight.shape[0]
            rows[i + offset] = block["size"] // per
    return rows


def _out_dir(out: Path, fresh: bool) -> Path:
    """`out`, ready to write; with `fresh`, without a previous run's tuning state (the
    trainer refuses another run's state and resumes its own)."""
    out = writable_dir(out)
    if fresh:
        (out / STATE).unlink(missing_ok=True)
    return out


def _rows(record, index: np.ndarray):
    """The record of the samples `index` only."""
    return replace(record, inputs=record.inputs[index],
                   layers=[layer[index] for layer in record.layers],
                   readout=None if record.readout is None else record.readout[index])
