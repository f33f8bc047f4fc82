"""Fuzz campaign: mutate every kind of file neurodeploy reads and check how each case ends.

Each case takes a valid seed file (a recipe, a preset, a report.json, Lava chunk records, a
.npz input, a netx .net, a NIR graph, a checkpoint), applies one seeded mutation and runs it
in-process through `neurodeploy.cli.main` (recipes through `load_recipe`, the validation the
CLI runs before any training). A mutation is either `must_refuse` (invalid by construction) or
`may_accept` (benign or debatable: a one-line refusal and a sane result are both fine).
Outcomes:
    one_line_error  exit 2, one stderr line "neurodeploy: error: ..." that names the file
    traceback       any other exception, or an error message of several lines / without the file
    hang            over the per-case limit (signal.alarm)
    accepted_valid  exit 0, outputs sane, and the case was may_accept
    accepted_wrong  exit 0 but must_refuse, or outputs insane (NaN/Infinity in JSON, accuracy
                    outside [0, 1], negative or infinite energy, nan/inf printed)
    code_ran        the file made the reader execute code (a pickle payload touched a marker)

    .venv/bin/python tests/fuzz.py --cases 10000       # writes benchmarks/results/fuzz.json
    .venv/bin/python tests/fuzz.py --cases 300 --kinds netx,nir --out /tmp/fuzz.json
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import dataclasses
import datetime
import io
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import h5py
import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import TypeAdapter  # noqa: E402

from neurodeploy import recipe as rc  # noqa: E402
from neurodeploy.cli import main as cli_main  # noqa: E402
from neurodeploy.distill.losses import RANGES as LOSS_RANGES  # noqa: E402
from neurodeploy.energy import presets, report_file  # noqa: E402
from neurodeploy.errors import UserError  # noqa: E402
from neurodeploy.schema import Levels, Timesteps  # noqa: E402

SEED_RUN = Path(os.environ.get("FUZZ_SEED_DIR", "/tmp/fuzzseed"))
RESULT = ROOT / "benchmarks" / "results" / "fuzz.json"
OUTCOMES = ("one_line_errors", "tracebacks", "hangs", "accepted_valid", "accepted_wrong",
            "code_ran")
BAD = ("tracebacks", "hangs", "accepted_wrong", "code_ran")
# manifest.json is read by `simulate`/`parity` of the network.net next to it (artifacts.check_manifest).
WEIGHTS = {"recipe": 14, "preset": 9, "report": 11, "chunks": 10, "npz": 10, "netx": 15,
           "nir": 13, "checkpoint": 10, "manifest": 8}
SKIPPED: dict = {}
NAN, INF = float("nan"), float("inf")
VALUES = [NAN, INF, -INF, 1e308, -1, 0, 2 ** 64, 0.5, 1.5]
MUST, MAY = "must_refuse", "may_accept"


class Hang(BaseException):
    """Raised by the alarm: a BaseException so the product's `except Exception` cannot eat it."""


class Payload:
    """Unpickling this creates `marker`: proof that loading a file ran code from it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@dataclasses.dataclass
class Case:
    kind: str
    desc: str
    expect: str
    argv: list | None = None          # CLI arguments, or None for a recipe (load_recipe)
    recipe: str | None = None
    names: tuple = ()                 # any of these in the message counts as naming the file
    out: Path | None = None

    def judge(self, why: str | None) -> None:
        """An oracle's verdict on the written file: a reason to refuse it, or None."""
        self.expect = MUST if why else MAY
        if why:
            self.desc += f"  [{why}]"


# ---------------------------------------------------------------- small helpers

def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def fin(v) -> bool:
    return is_num(v) and math.isfinite(v)


def I(lo, hi):  # noqa: E743
    return lambda v: is_int(v) and lo <= v <= hi


def F(lo, hi, open_lo=False):
    return lambda v: fin(v) and (v > lo if open_lo else v >= lo) and v <= hi


def declared(tp, field: str | None = None):
    """I or F of the bounds the schema declares for `tp` (an Annotated type, or `field` of a
    model or TypedDict; None too where it admits null): the oracle reads them from where they
    are defined, never restates them."""
    spec = TypeAdapter(tp).json_schema()
    spec = spec["properties"][field] if field else spec
    alternatives = spec.get("anyOf", [spec])
    spec = next(s for s in alternatives if s.get("type") != "null")
    open_lo = "exclusiveMinimum" in spec
    lo, hi = spec["exclusiveMinimum" if open_lo else "minimum"], spec.get("maximum", math.inf)
    rule = I(lo, hi) if spec["type"] == "integer" else F(lo, hi, open_lo)
    return optional(rule) if len(alternatives) > 1 else rule


def STR(v) -> bool:
    return isinstance(v, str) and bool(v.strip())


def walk(tree, path=()):
    yield path, tree
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from walk(v, path + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from walk(v, path + (i,))


def get(tree, path):
    for p in path:
        tree = tree[p]
    return tree


def fmt_path(path) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def type_variants(v):
    """Values of other types for `v` (int<->float, str, list, dict, bool, None, bytes)."""
    out = ["abc", [v, v] if not isinstance(v, list) else v[:1] + [[v]], {"x": 1}, True, None,
           b"\xff\x00"]
    if is_int(v):
        out.append(float(v))
    elif isinstance(v, float) and math.isfinite(v):
        out.append(int(round(v)))
    return out


def set_one(arr: np.ndarray, v, i: int) -> np.ndarray:
    """A copy of `arr` with element i set to v, keeping the dtype where v fits it."""
    arr = np.array(arr)
    fits = (arr.dtype.kind == "f" or arr.dtype.kind in "iu" and is_num(v) and math.isfinite(v)
            and v == int(v) and np.iinfo(arr.dtype).min <= v <= np.iinfo(arr.dtype).max)
    if not fits:
        arr = arr.astype(np.float64)
    flat = arr.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flat[i % max(flat.size, 1)] = v
    return flat.reshape(arr.shape)


def shaped(arr: np.ndarray, choice: str) -> np.ndarray:
    """empty, 0-d, transposed, truncated, extra dim or features dropped versions of arr."""
    arr = np.asarray(arr)
    flat = arr.reshape(-1)
    return {"empty": lambda: flat[:0], "0-d": lambda: flat[:1].reshape(()) if flat.size else flat,
            "transposed": lambda: arr.T,
            "truncated": lambda: arr[:-1] if arr.ndim else flat[:0],
            "extra dim": lambda: arr[None],
            "features dropped": lambda: arr[..., :-1] if arr.ndim > 1 else flat[:-1]}[choice]()


def mutate_tree(rng: random.Random, tree, protect=()):
    """One structural/type/value/shape mutation of a nested dict/list: (new tree, description)."""
    tree = copy.deepcopy(tree)
    paths = [p for p, _ in walk(tree) if p and not any(p[:len(q)] == q for q in protect)]
    path = rng.choice(paths)
    parent, key, old = get(tree, path[:-1]), path[-1], get(tree, path)
    op = rng.choice(["delete", "rename", "add", "type", "type", "value", "value", "value",
                     "shape"])
    if op == "delete":
        del parent[key]
        return tree, f"delete {fmt_path(path)}"
    if op == "rename" and isinstance(parent, dict):
        parent[f"{key}_x"] = parent.pop(key)
        return tree, f"rename {fmt_path(path)} -> {key}_x"
    if op == "add":
        containers = [p for p, v in walk(tree) if isinstance(v, dict)]
        where = rng.choice(containers)
        get(tree, where)["fuzz_extra"] = rng.choice([1, "x", None, [1]])
        return tree, f"add key fuzz_extra under {fmt_path(where)}"
    if op == "shape" and isinstance(old, list):
        choice = rng.choice(["empty", "drop last", "wrap", "ragged"])
        new = {"empty": [], "drop last": old[:-1], "wrap": [old],
               "ragged": [x[:-1] if i == 0 and isinstance(x, list) else x
                          for i, x in enumerate(old)] if any(isinstance(x, list) for x in old)
               else old + [old[:1]]}[choice]
        parent[key] = new
        return tree, f"shape {fmt_path(path)}: {choice}"
    if op in ("type", "shape", "rename"):
        new = rng.choice(type_variants(old))
        parent[key] = new
        return tree, f"type {fmt_path(path)}: {type(old).__name__} -> {type(new).__name__} {new!r:.40}"
    new = rng.choice(VALUES)
    parent[key] = new
    return tree, f"value {fmt_path(path)} = {new!r}"


def file_op(rng: random.Random, path: Path, data: bytes, text: bool, truncated_expect=MUST):
    """A file-level damage: (description, expect). Writes `path` (or a directory there)."""
    op = rng.choice(["empty", "truncated", "non-utf8" if text else "garbage", "directory",
                     "bitflip" if not text else "bom+latin1"])
    if op == "empty":
        path.write_bytes(b"")
        return "file: empty", MUST
    if op == "truncated":
        path.write_bytes(data[: rng.randrange(1, max(2, len(data) // 2))])
        return "file: truncated", truncated_expect
    if op == "non-utf8":
        i = rng.randrange(len(data))
        path.write_bytes(data[:i] + b"\xff\xfe\xc3\x28" + data[i:])
        return "file: non-UTF-8 bytes inserted", MUST
    if op == "bom+latin1":
        path.write_bytes(data.replace(b"e", b"\xe9", 3))
        return "file: latin-1 bytes (not UTF-8)", MUST
    if op == "garbage":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.choice([1, 64, 4096]))))
        return "file: random bytes", MUST
    if op == "directory":
        path.mkdir()
        (path / "inner").write_bytes(data[:100])
        return "file: a directory instead of a file", MUST
    raw = bytearray(data)
    for _ in range(rng.choice([1, 8, 64])):
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(raw))
    return "file: random bit flips", MAY


# ---------------------------------------------------------------- oracles for tree kinds

def check_dict(d, spec: dict, required=(), where="", strict=True) -> str | None:
    """None if `d` satisfies spec {key: predicate or (spec, required) }, else why not.
    `strict`: unknown keys are errors (recipes, presets); else they are ignored."""
    if not isinstance(d, dict):
        return f"{where}: not a mapping"
    for k in d:
        if k not in spec and strict:
            return f"{where}.{k}: unknown key"
    for k in required:
        if k not in d:
            return f"{where}.{k}: missing"
    for k, v in d.items():
        if k not in spec:
            continue
        rule = spec[k]
        bad = rule(v) if callable(rule) else check_dict(v, rule[0], rule[1], f"{where}.{k}")
        if bad is False:
            return f"{where}.{k}: invalid value {v!r:.40}"
        if isinstance(bad, str):
            return bad
    return None


def list_of(pred, nonempty=False):
    return lambda v: isinstance(v, list) and (bool(v) or not nonempty) and all(
        pred(x) is not False for x in v)


def loss_rule(v):
    from neurodeploy.distill.losses import LOSSES
    if not isinstance(v, dict) or not isinstance(v.get("name"), str) or v["name"] not in LOSSES:
        return False
    if "weight" in v and not F(*LOSS_RANGES["weight"])(v["weight"]):
        return False
    if "temperature" in v and not F(*LOSS_RANGES["temperature"])(v["temperature"]):
        return False
    return None


def seed_rule(v):
    return is_int(v) and 0 <= v < 2 ** 63


SEED, WIDTH, SMALL, T = (declared(rc.Seed), declared(rc.Width), declared(rc.Small),
                         declared(Timesteps))
EPOCHS, LR, BATCH = declared(rc.Epochs), declared(rc.LearningRate), declared(rc.BatchSize)
DECAY, THRESHOLD = declared(rc.Decay), declared(rc.Threshold)
CONV = lambda v: check_dict(v, {"channels": WIDTH, "kernel": SMALL, "stride": SMALL,  # noqa
                                "padding": declared(rc.ConvSpec, "padding")},
                            ("channels", "kernel")) is None


def chain_rule(v):
    return isinstance(v, dict) and set(v) <= {"conv", "hidden"} and \
        list_of(CONV)(v.get("conv", [])) and list_of(WIDTH)(v.get("hidden", []))


def preset_ok(v):
    from neurodeploy.energy.presets import PRESETS
    return isinstance(v, str) and (v in PRESETS or v.endswith((".yaml", ".yml")))


def optional(rule):
    return lambda v: v is None or rule(v)


def one_of(*names):
    return lambda v: isinstance(v, str) and v in names


def fields_of(model, rules: dict) -> tuple[dict, tuple]:
    """A section's spec: `rules`, and every other field `model` declares judged may-accept, so
    the keys the oracle knows are the schema's (a field added to it is not an unknown key)."""
    return {**{k: lambda v: None for k in model.model_fields}, **rules}, ()


BOOL = lambda v: isinstance(v, bool)  # noqa: E731
RECIPE = {
    "name": STR,
    "dataset": fields_of(rc.DatasetCfg, {
        "name": lambda v: v in ("digits", "fashion-mnist"), "split_seed": SEED,
        "train_samples": declared(rc.DatasetCfg, "train_samples"),
        "val_samples": declared(rc.DatasetCfg, "val_samples")}),
    "encoding": fields_of(rc.EncodingCfg, {
        "name": lambda v: v in ("rate", "thermometer"), "timesteps": T,
        "levels": declared(Levels)}),
    "teacher": fields_of(rc.TeacherCfg, {
        "conv": list_of(WIDTH), "hidden": list_of(WIDTH), "spiking": BOOL, "epochs": EPOCHS,
        "lr": LR, "batch_size": BATCH, "seed": SEED,
        "weight_decay": declared(rc.TeacherCfg, "weight_decay"),
        "augment": one_of("none", "crop", "crop_flip"),
        "schedule": one_of("constant", "cosine", "onecycle")}),
    "student": fields_of(rc.StudentCfg, {
        "conv": list_of(CONV), "hidden": list_of(WIDTH),
        "neuron": ({"i_decay": DECAY, "v_decay": DECAY, "threshold": THRESHOLD}, ()),
        "readout": BOOL, "recurrent": BOOL, "init_gain": declared(rc.StudentCfg, "init_gain"),
        "thresholds": list_of(THRESHOLD)}),
    "distill": fields_of(rc.DistillCfg, {
        "epochs": EPOCHS, "lr": LR, "batch_size": BATCH, "seed": SEED,
        "weight_decay": declared(rc.DistillCfg, "weight_decay"), "chain": list_of(chain_rule),
        "validate_every": declared(rc.DistillCfg, "validate_every"),
        "losses": list_of(loss_rule, nonempty=True)}),
    "energy": fields_of(rc.EnergyCfg, {"preset": preset_ok}),
}


def recipe_problem(d) -> str | None:
    return check_dict(d, RECIPE, ("name",), "recipe")


PRESET = {"name": STR, "source": STR, "kind": lambda v: isinstance(v, str),
          "note": lambda v: isinstance(v, str), "mapping": lambda v: v in ("brief", "compiler"),
          **{k: declared(presets.Preset, k)                                   # the figures
             for k, spec in presets.Preset.model_json_schema()["properties"].items()
             if any(s.get("type") == "number" for s in spec.get("anyOf", [spec]))}}


def preset_problem(d) -> str | None:
    return check_dict(d, PRESET, ("name", "source", "synaptic_op_pj"), "preset")


COUNT, PJ = declared(report_file.Count), declared(report_file.Baseline, "per_inference_pj")


def report_problem(r) -> str | None:
    """What `energy` reads: counts, layers, accuracy_by_timestep, ann_baselines (the rest is free)."""
    if not isinstance(r, dict):
        return "report: not an object"
    for k in ("counts", "layers", "accuracy_by_timestep", "ann_baselines"):
        if k not in r:
            return f"report.{k}: missing"
    layers, counts, acc = r["layers"], r["counts"], r["accuracy_by_timestep"]
    if not isinstance(layers, list) or not layers:
        return "report.layers: not a non-empty list"
    for row in layers:
        bad = check_dict(row, {"name": STR, "kind": lambda v: v in ("dense", "conv"),
                               **{k: declared(report_file.Layer, k) for k in (
                                   "neurons", "synapses", "inputs", "macs", "nonzero_synapses",
                                   "fan_in")}},
                         ("name", "neurons", "synapses"), "report.layers[]", strict=False)
        if bad:
            return bad
    if acc is None:              # a record without labels (sigma-delta): T from `timesteps`
        acc = [0.0] * r["timesteps"] if T(r.get("timesteps")) else []
    if not isinstance(acc, list) or not acc or not all(F(0, 1)(a) for a in acc):
        return "report.accuracy_by_timestep: not a list of accuracies"
    if not isinstance(counts, dict):
        return "report.counts: not an object"
    for k in ("synaptic_ops", "neuron_active", "neuron_inactive", "spikes"):
        v = counts.get(k)
        if not (isinstance(v, list) and len(v) == len(layers) and all(
                isinstance(row, list) and len(row) == len(acc) and all(COUNT(x) for x in row)
                for row in v)):
            return f"report.counts.{k}: not [layers][timesteps] of finite counts >= 0"
    base = r["ann_baselines"]
    if not isinstance(base, list) or not all(
            isinstance(b, dict) and STR(b.get("name")) and PJ(b.get("per_inference_pj"))
            and all(fin(b[k]) and b[k] >= 0 for k in ("macs", "memory_pj") if k in b)
            for b in base):
        return "report.ann_baselines: malformed"
    return None


# ---------------------------------------------------------------- seeds

def h5_load(path: Path) -> dict:
    """{path: ('g', attrs) | ('d', value, attrs, dtype)} of an HDF5 file ('' is the root)."""
    items = {}
    with h5py.File(path, "r") as f:
        items[""] = ("g", dict(f.attrs))

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                items[name] = ("d", obj[()], dict(obj.attrs), obj.dtype)
            else:
                items[name] = ("g", dict(obj.attrs))
        f.visititems(visit)
    return items


def h5_write(items: dict, path: Path) -> None:
    with h5py.File(path, "w") as f:
        for name in sorted(items, key=lambda n: n.count("/")):
            item = items[name]
            if item[0] == "g":
                g = f if name == "" else f.require_group(name)
                for k, v in item[1].items():
                    g.attrs[k] = v
                continue
            value, dtype = item[1], item[3]
            if isinstance(value, str):
                value = value.encode()
            try:
                d = f.create_dataset(name, data=value, dtype=dtype)
            except (TypeError, ValueError, OSError):
                if isinstance(value, np.ndarray) and value.dtype.kind == "U":
                    value = value.astype("S")
                d = f.create_dataset(name, data=value)
            for k, v in item[2].items():
                d.attrs[k] = v


def make_seed_run(run: Path) -> None:
    """checkpoint.pt and report.json of a 1-epoch digits run, the way `neurodeploy run` makes
    them but with the torch backend standing in for Lava (seconds instead of a minute)."""
    from neurodeploy.backends.torch_exact import simulate_torch
    from neurodeploy.files import write_json
    from neurodeploy.netx import read_netx
    from neurodeploy.artifacts import export
    from neurodeploy.distill.run import distill
    from neurodeploy.inputs import encoded_test_split
    from neurodeploy.report.summary import report
    from neurodeploy.recipe import load_recipe
    run.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load((ROOT / "models" / "digits.yaml").read_text())
    spec["teacher"]["epochs"] = spec["distill"]["epochs"] = 1
    (run / "recipe.yaml").write_text(yaml.safe_dump(spec))
    recipe = load_recipe(str(run / "recipe.yaml"))
    manifest = export(distill(recipe, run, progress=False), run)
    net, _ = read_netx(run / "network.net")
    spikes, labels = encoded_test_split(manifest)
    record = simulate_torch(net, spikes)
    result = report(net, record, record, labels, recipe.energy.preset,
                    [net.input_size, *recipe.teacher.hidden, net.layers[-1].size],
                    extra={"recipe": recipe.name, "dataset": manifest["dataset"],
                           "network": {**manifest["network"],
                                       "sha256": manifest["files"]["network.net"]},
                           "backend": record.backend,
                           "accuracy": {"teacher": manifest["accuracy"]["teacher"]}})
    write_json(run / "report.json", result)


def _as_dict(obj) -> dict:
    """A preset as plain fields (a dataclass or a pydantic model)."""
    return obj.model_dump() if hasattr(obj, "model_dump") else dataclasses.asdict(obj)


class Seeds:
    """Every valid seed, loaded once and kept in memory."""

    def __init__(self, work: Path, seed_run: Path = SEED_RUN):
        from neurodeploy.backends.shards import run_chunks
        from neurodeploy.backends.torch_exact import simulate_torch
        from neurodeploy.data import load_dataset
        from neurodeploy.energy.presets import PRESETS
        from neurodeploy.netx import read_netx
        from neurodeploy.inputs import encoded_test_split
        run = seed_run / "digits"
        if not (run / "report.json").is_file() or not (run / "checkpoint.pt").is_file():
            make_seed_run(run)
        self.recipes = {p.stem: yaml.safe_load(p.read_text())
                        for p in sorted((ROOT / "models").glob("*.yaml"))}
        self.presets = {n: _as_dict(PRESETS[n]) for n in ("loihi2-proxy", "loihi1-sanafe", "odin")}
        self.report = json.loads((run / "report.json").read_text())
        self.manifest = json.loads((ROOT / "export/digits/manifest.json").read_text())
        self.ckpt = torch.load(run / "checkpoint.pt", weights_only=False)   # our own file
        self.netx = {n: h5_load(ROOT / f"export/{n}/network.net") for n in ("digits", "fmnist_conv")}
        self.nir = {n: h5_load(ROOT / f"export/{n}/student.nir") for n in ("digits", "fmnist_conv")}
        digits = load_dataset("digits")
        self.npz = {"analog": {"x": digits.test.x[:16].astype(np.float32),
                               "y": digits.test.y[:16]}}
        net, meta = read_netx(ROOT / "export/digits/network.net")
        spikes, labels = encoded_test_split(meta)
        self.npz["spikes"] = {"x": spikes[:16].astype(bool), "y": labels[:16]}
        fm = load_dataset("fashion-mnist").test
        self.fmnist_npz = work / "fmnist8.npz"
        np.savez(self.fmnist_npz, x=fm.x[:8], y=fm.y[:8])
        self.digits_npz = work / "digits8.npz"
        np.savez(self.digits_npz, **{k: v[:8] for k, v in self.npz["analog"].items()})
        chunk_dir = work / "seed-chunks"
        run_chunks(lambda x, timeout_s=None: simulate_torch(net, x), spikes[:40], labels[:40],
                   chunk_dir, chunk=10, progress=False)
        self.chunks = {}
        for f in sorted(chunk_dir.glob("chunk-*.npz")):
            with np.load(f, allow_pickle=False) as z:
                self.chunks[f.name] = {k: z[k] for k in z.files}


# ---------------------------------------------------------------- case generators

def gen_recipe(rng, seeds: Seeds, d: Path) -> Case:
    name = rng.choice(sorted(seeds.recipes))
    base = seeds.recipes[name]
    path = d / f"{name}.yaml"
    case = Case("recipe", "", MAY, recipe=str(path), names=(path.name,))
    r = rng.random()
    if r < 0.12:
        data = yaml.safe_dump(base, sort_keys=False).encode()
        case.desc, case.expect = file_op(rng, path, data, text=True, truncated_expect=MAY)
        if case.desc.endswith("directory instead of a file"):
            case.expect = MUST
    elif r < 0.17:
        path.write_text(f"name: x\ndataset: !!python/object/apply:builtins.open "
                        f"['{d / 'MARKER'}', 'w']\n")
        case.desc, case.expect = "code: !!python/object/apply tag", MUST
    elif r < 0.22:
        doc = rng.choice([[], 3, "digits", None, [base]])
        path.write_text(yaml.safe_dump(doc))
        case.desc, case.expect = f"document is {type(doc).__name__}", MUST
    elif r < 0.32:
        new = copy.deepcopy(base)
        choice = rng.choice(["epochs", "name", "comment", "flow", "hidden", "drop energy"])
        if choice == "epochs":
            new["distill"]["epochs"] = rng.randrange(1, 50)
        elif choice == "name":
            new["name"] = f"fuzz-{rng.randrange(1000)}"
        elif choice == "hidden" and new["student"].get("hidden"):
            new["student"]["hidden"] = [rng.randrange(1, 300)]
        elif choice == "drop energy":
            new.pop("energy", None)
        text = yaml.safe_dump(new, sort_keys=False, default_flow_style=(choice == "flow"))
        path.write_text(("# fuzz comment\n" if choice == "comment" else "") + text)
        case.desc = f"benign: {choice}"
    else:
        new, case.desc = mutate_tree(rng, base)
        path.write_text(yaml.safe_dump(new, sort_keys=False, allow_unicode=True))
        why = recipe_problem(new)
        case.judge(why)
    return case


def write_report(d: Path, report) -> Path:
    path = d / "report.json"
    path.write_text(json.dumps(report, indent=1))
    return path


def gen_preset(rng, seeds: Seeds, d: Path) -> Case:
    report = write_report(d, seeds.report)
    base = seeds.presets[rng.choice(sorted(seeds.presets))]
    path = d / "preset.yaml"
    out = d / "out"
    case = Case("preset", "", MAY, argv=["energy", str(report), "--preset", str(path), "--out",
                                         str(out), "-q"], names=(path.name,), out=out)
    r = rng.random()
    if r < 0.12:
        case.desc, case.expect = file_op(rng, path, yaml.safe_dump(base).encode(), text=True,
                                         truncated_expect=MAY)
    elif r < 0.16:
        path.write_text(f"name: x\nsource: !!python/object/apply:builtins.open "
                        f"['{d / 'MARKER'}', 'w']\nsynaptic_op_pj: 1\n")
        case.desc, case.expect = "code: !!python/object/apply tag", MUST
    elif r < 0.22:
        new = dict(base, synaptic_op_pj=round(rng.uniform(0.1, 100), 3), note="fuzz")
        path.write_text(yaml.safe_dump(new))
        case.desc = "benign: figure changed within range"
    else:
        new, case.desc = mutate_tree(rng, base)
        path.write_text(yaml.safe_dump(new, allow_unicode=True))
        why = preset_problem(new)
        case.judge(why)
    return case


def gen_report(rng, seeds: Seeds, d: Path) -> Case:
    path = d / "report.json"
    out = d / "out"
    preset = rng.choice(["loihi2-proxy", "loihi1-davies2018", "odin"])
    case = Case("report", "", MAY, argv=["energy", str(path), "--preset", preset, "--out",
                                         str(out), "-q"], names=(path.name,), out=out)
    r = rng.random()
    if r < 0.12:
        case.desc, case.expect = file_op(rng, path, json.dumps(seeds.report).encode(), text=True)
    elif r < 0.18:
        new = copy.deepcopy(seeds.report)
        new["timing"] = {"distill_s": 1.0}
        new["counts"]["spikes"][0][0] *= 0.5
        write_report(d, new)
        case.desc = "benign: free field changed, one count halved"
    else:
        # half of the mutations aim at the sections `energy` reads
        protect = () if rng.random() < 0.4 else tuple(
            (k,) for k in seeds.report if k not in ("counts", "layers", "accuracy_by_timestep",
                                                    "ann_baselines"))
        new, case.desc = mutate_tree(rng, seeds.report, protect)
        text = json.dumps(new, indent=1, default=lambda b: b.decode("latin-1"))
        path.write_text(text)
        why = report_problem(json.loads(text))          # judge what was written
        case.judge(why)
    return case


def gen_checkpoint(rng, seeds: Seeds, d: Path) -> Case:
    path = d / "checkpoint.pt"
    out = d / "out"
    verb = rng.choice(["inspect", "export"])
    argv = ["inspect", str(path)] if verb == "inspect" else ["export", str(path), "--out",
                                                             str(out), "-q"]
    case = Case("checkpoint", "", MAY, argv=argv, names=(path.name,), out=out)
    base = seeds.ckpt
    r = rng.random()
    if r < 0.12:
        buf = io.BytesIO()
        torch.save(base, buf)
        case.desc, case.expect = file_op(rng, path, buf.getvalue(), text=False)
    elif r < 0.2:
        new = dict(base, metrics=dict(base["metrics"], fuzz=Payload(str(d / "MARKER"))))
        if rng.random() < 0.5:
            new = Payload(str(d / "MARKER"))
        torch.save(new, path)
        case.desc, case.expect = "code: pickle payload (open(MARKER, 'w'))", MUST
    elif r < 0.26:
        new = dict(base, metrics=dict(base["metrics"], train_seconds=1.0))
        torch.save(new, path)
        case.desc = "benign: metrics value changed"
    elif r < 0.5:
        sd = dict(base["student"])
        key = rng.choice(sorted(sd))
        t = sd[key].clone()
        op = rng.choice(["value", "value", "shape", "dtype", "delete", "add"])
        case.expect = MUST
        if op == "value":
            v = rng.choice(VALUES)
            with np.errstate(over="ignore"):        # 2**64 into float32 becomes inf
                v = float(np.float32(v))
            sd[key] = torch.from_numpy(set_one(t.numpy(), v, rng.randrange(t.numel())))
            finite = math.isfinite(v) and abs(v) < 1e30
            case.expect = MAY if finite else MUST
            case.desc = f"student[{key}] one element = {v!r}"
        elif op == "shape":
            choice = rng.choice(["transposed", "truncated", "empty", "0-d", "extra dim"])
            sd[key] = {"transposed": t.T, "truncated": t[:-1], "empty": t[:0],
                       "0-d": t.reshape(-1)[0], "extra dim": t[None]}[choice]
            case.desc = f"student[{key}] shape: {choice}"
        elif op == "dtype":
            dt = rng.choice([torch.float64, torch.int32, torch.bool, torch.float16])
            sd[key] = t.to(dt)
            case.expect = MAY if dt != torch.bool else MUST
            case.desc = f"student[{key}] dtype -> {dt}"
        elif op == "delete":
            del sd[key]
            case.desc = f"delete student[{key}]"
        else:
            sd["synapses.9.weight"] = t
            case.desc = "add student[synapses.9.weight]"
        torch.save(dict(base, student=sd), path)
    else:
        tree = {k: v for k, v in base.items() if k not in ("student", "teacher")}
        base_student = base["recipe"]["student"]
        new, case.desc = mutate_tree(rng, tree)
        full = dict(new, student=base["student"], teacher=base["teacher"]) \
            if isinstance(new, dict) else new
        torch.save(full, path)
        why = None
        if isinstance(new, dict):
            for k in ("format", "recipe", "input_shape", "classes"):
                if k not in new:
                    why = f"{k} missing"
                elif k != "recipe" and new[k] != tree[k]:
                    why = f"{k} changed"
            if why is None:
                why = recipe_problem(new["recipe"])
                student = new["recipe"].get("student", {}) if why is None else {}
                if why is None and (student.get("hidden", [128]) != base_student["hidden"]
                                    or student.get("conv", []) != base_student["conv"]):
                    why = "student architecture no longer matches the weights"
        case.judge(why)
    return case


def gen_npz(rng, seeds: Seeds, d: Path) -> Case:
    path = d / "x.npz"
    out = d / "out"
    backend = rng.choice(["torch", "emulator"])
    case = Case("npz", "", MAY, argv=["simulate", str(ROOT / "export/digits/network.net"),
                                      "--data", str(path), "--backend", backend, "--samples",
                                      "8", "--out", str(out), "-q"], names=(path.name,), out=out)
    variant = rng.choice(sorted(seeds.npz))
    arrays = {k: v.copy() for k, v in seeds.npz[variant].items()}
    x, y = arrays["x"], arrays["y"]
    r = rng.random()
    if r < 0.1:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        case.desc, case.expect = file_op(rng, path, buf.getvalue(), text=False)
        return case
    if r < 0.14:
        arrays["x"] = np.array([Payload(str(d / "MARKER"))], dtype=object)
        case.desc, case.expect = "code: pickled object array as x", MUST
    elif r < 0.24:
        choice = rng.choice(["extra array", "permuted", "fewer samples", "float64"])
        if choice == "extra array":
            arrays["note"] = np.arange(3)
        elif choice == "permuted":
            p = np.random.default_rng(rng.randrange(1000)).permutation(len(y))
            arrays = {"x": x[p], "y": y[p]}
        elif choice == "fewer samples":
            arrays = {"x": x[:3], "y": y[:3]}
        elif x.dtype.kind == "f":
            arrays["x"] = x.astype(np.float64)
        case.desc = f"benign ({variant}): {choice}"
    else:
        key = rng.choice(["x", "x", "y"])
        a = arrays[key]
        op = rng.choice(["delete", "rename", "value", "value", "shape", "dtype"])
        case.expect = MUST
        if op == "delete":
            del arrays[key]
        elif op == "rename":
            arrays[key + "_x"] = arrays.pop(key)
        elif op == "value":
            v = rng.choice(VALUES + [10, 99, 2])
            arrays[key] = set_one(a if a.dtype != bool else a.astype(np.uint8), v,
                                  rng.randrange(a.size))
            if key == "x" and variant == "analog" and v in (0, 0.5):
                case.expect = MAY
            if key == "x" and variant == "spikes" and v == 0:
                case.expect = MAY
            if key == "y" and v in (0, 2):
                case.expect = MAY
            op = f"value one element = {v!r}"
        elif op == "shape":
            choice = rng.choice(["empty", "0-d", "transposed", "truncated", "extra dim",
                                 "features dropped"])
            arrays[key] = shaped(a, choice)
            if choice == "transposed" and a.ndim < 2:
                case.expect = MAY
            op = f"shape {choice}"
        else:
            dt = rng.choice([np.int64, np.float32, np.bool_, "U3", np.complex64])
            arrays[key] = a.astype(dt)
            if arrays[key].dtype == a.dtype:
                case.expect = MAY          # no change at all
            if key == "y" and dt in (np.float32,):
                case.expect = MAY          # float labels holding integers: debatable
            if key == "x" and dt in (np.float32, np.int64) and variant == "spikes":
                case.expect = MAY          # 0/1 spikes as ints or floats
            op = f"dtype -> {np.dtype(dt).name}"
        case.desc = f"{variant}: {key} {op}"
    np.savez(path, **arrays)
    return case


def gen_chunks(rng, seeds: Seeds, d: Path) -> Case:
    a, b = d / "s0", d / "s1"
    a.mkdir()
    files = {n: {k: v.copy() for k, v in z.items()} for n, z in seeds.chunks.items()}
    out = d / "out"
    dirs = [a]
    case = Case("chunks", "", MAY, names=(), out=out)
    name = rng.choice(sorted(files))
    r = rng.random()
    raw_damage = None
    if r < 0.1:
        raw_damage = name
        case.desc = ""
    elif r < 0.2:
        choice = rng.choice(["split into two dirs", "rename a chunk", "rewrite unchanged"])
        if choice == "split into two dirs":
            b.mkdir()
            dirs.append(b)
        elif choice == "rename a chunk":
            files["chunk-9000000-9000001.npz"] = files.pop(name)
        case.desc = f"benign: {choice}"
    elif r < 0.3:
        choice = rng.choice(["delete a chunk", "duplicate a chunk", "same dir twice"])
        if choice == "delete a chunk":
            del files[name]
        elif choice == "duplicate a chunk":
            files["chunk-9999998-9999999.npz"] = files[name]
        else:
            dirs.append(a)
        case.desc, case.expect = choice, MUST
    elif r < 0.5:
        meta = json.loads(str(files[name]["meta"]))
        new, desc = mutate_tree(rng, meta, protect=(("info",),))
        files[name]["meta"] = np.array(json.dumps(new, default=lambda o: o.decode("latin-1")))
        new = json.loads(str(files[name]["meta"]))     # judge what was written
        ok = (isinstance(new, dict) and new.get("widths") == meta["widths"]
              and new.get("layer_names") == meta["layer_names"]
              and isinstance(new.get("backend"), str) and isinstance(new.get("info"), dict))
        case.desc = f"{name} meta: {desc}"
        case.expect = MAY if ok else MUST
    else:
        z = files[name]
        key = rng.choice(sorted(k for k in z if k != "meta"))
        arr = z[key]
        op = rng.choice(["delete", "value", "value", "shape", "dtype"])
        case.expect = MUST
        if op == "delete":
            del z[key]
        elif op == "value":
            v = rng.choice(VALUES + [10, 999])
            z[key] = set_one(arr, v, rng.randrange(max(arr.size, 1)))
            if key.startswith(("inputs", "layer")) and v in (0, 10):
                case.expect = MAY       # other spikes, still a valid record
            if key == "labels" and v == 0:
                case.expect = MAY
            op = f"one element = {v!r}"
        elif op == "shape":
            choice = rng.choice(["empty", "0-d", "truncated", "extra dim", "transposed"])
            z[key] = shaped(arr, choice)
            if key == "total" and z[key].size == 1:
                case.expect = MAY         # [[40]] is still 40
            if choice == "transposed" and arr.ndim < 2 or choice == "0-d" and arr.ndim == 0:
                case.expect = MAY
            op = f"shape {choice}"
        else:
            dt = rng.choice([np.float32, np.int8, np.bool_, "U3"])
            z[key] = arr.astype(dt)
            if z[key].dtype == arr.dtype:
                case.expect = MAY
            if dt in (np.int8,) and key in ("indices", "labels") and arr.max() < 128:
                case.expect = MAY
            if key == "total" and dt in (np.float32, np.int8) or \
                    key == "labels" and dt == np.float32:
                case.expect = MAY         # a count or labels as floats holding integers
            op = f"dtype -> {np.dtype(dt).name}"
        case.desc = f"{name} {key}: {op}"
    names = sorted(files)
    for i, n in enumerate(names):
        target = (b if len(dirs) > 1 and dirs[1] == b and i % 2 else a) / n
        buf = io.BytesIO()
        np.savez_compressed(buf, **files[n])
        if n == raw_damage:
            case.desc, case.expect = file_op(rng, target, buf.getvalue(), text=False)
            case.desc = f"{n} {case.desc}"
        else:
            target.write_bytes(buf.getvalue())
    case.argv = ["merge", *map(str, dirs), "--out", str(out), "-q"]
    case.names = tuple([name, a.name, str(a)] + ([str(b)] if b in dirs else []))
    return case


NETX_OPTIONAL = ("neuron/refDelay", "neuron/gradedSpike", "dilation", "groups")
NIR_OPTIONAL = ("version", "node/metadata", "node/metadata/neurodeploy", "node/metadata/reset", "node/metadata/dt",
                "/start_dim", "/end_dim", "flatten2/input_type")
NIR_DEFAULTS = {"v_reset": 0.0, "w_in": 1.0}      # nir.CubaLIF fields with these defaults


def metadata_problem(m) -> str | None:
    """The metadata that says how to feed the network (timesteps, encoding, dataset)."""
    if not isinstance(m, dict):
        return "metadata is not an object"
    if "timesteps" in m and not T(m["timesteps"]):
        return "timesteps"
    enc = m.get("encoding")
    if enc is not None and not (isinstance(enc, dict) and enc.get("name") in ("rate", "thermometer")
                                and T(enc.get("timesteps", 1))
                                and declared(Levels)(enc.get("levels", 1))):
        return "encoding"
    ds = m.get("dataset")
    if ds is not None and not (isinstance(ds, dict) and ds.get("name") in ("digits", "fashion-mnist")
                               and seed_rule(ds.get("split_seed", 0))):
        return "dataset"
    return None


def value_expect(kind: str, field: str, v, orig) -> str:
    """Whether writing `v` into one element of dataset `field` must be refused."""
    bad_float = not math.isfinite(v) or abs(v) >= 1e300 or v == 2 ** 64
    if field in ("refDelay", "gradedSpike", "version", "r", "w_in", "v_leak", "v_reset"):
        return MUST if bad_float and field not in ("refDelay", "gradedSpike", "version") else MAY
    if bad_float:
        return MUST
    if kind == "netx":
        if field in ("weight", "bias"):
            return MUST if v != int(v) else MAY
        if field in ("iDecay", "vDecay"):
            return MAY if v in (0,) else MUST
        if field in ("vThMant",):
            return MUST if v <= 0 or v != int(v) else MAY
    if field in ("weight", "bias"):
        return MAY
    if field in ("tau_mem", "tau_syn", "dt", "v_threshold"):
        return MUST if v <= 0 else MAY
    if v == np.asarray(orig).reshape(-1)[0]:
        return MAY
    return MUST       # shape, stride, padding, dilation, groups: any change breaks the layer


def gen_h5(rng, kind: str, seeds: Seeds, d: Path) -> Case:
    net = rng.choice(["digits", "fmnist_conv"])
    items = {k: tuple(v) for k, v in (seeds.netx if kind == "netx" else seeds.nir)[net].items()}
    path = d / ("network.net" if kind == "netx" else "student.nir")
    out = d / "out"
    verb = rng.choice(["inspect", "torch", "torch", "emulator" if kind == "netx" else "torch"])
    if verb == "inspect":
        argv = ["inspect", str(path)]
    else:
        argv = ["simulate", str(path), "--backend", verb, "--samples", "8", "--out", str(out),
                "-q"]
        if net == "fmnist_conv":
            argv += ["--data", str(seeds.fmnist_npz)]
    case = Case(kind, "", MAY, argv=argv, names=(path.name,), out=out)
    optional = NETX_OPTIONAL if kind == "netx" else NIR_OPTIONAL
    is_optional = lambda p: any(p.endswith(o) for o in optional) or (  # noqa: E731
        kind == "netx" and net == "digits" and p == "layer/0")
    datasets = [k for k, v in items.items() if v[0] == "d"]
    numeric = [k for k in datasets if isinstance(items[k][1], np.ndarray | np.number | int)
               and np.asarray(items[k][1]).dtype.kind in "biuf"]
    r = rng.random()
    if r < 0.1:
        buf = d / "seed.h5"
        h5_write(items, buf)
        case.desc, case.expect = file_op(rng, path, buf.read_bytes(), text=False)
        buf.unlink()
        if rng.random() < 0.3 and case.desc != "file: a directory instead of a file":
            path.rename(d / "network.h5")
            case.argv = [str(d / "network.h5") if a == str(path) else a for a in argv]
            case.names = ("network.h5",)
            case.desc += " (wrong extension .h5)"
        case.desc = f"{net}: {case.desc}"
        return case
    r = rng.random()
    op = rng.choice(["delete", "rename", "add", "dtype", "value", "value", "value", "shape",
                     "metadata", "benign"] + (["edges"] if kind == "nir" else ["layer"]))
    case.expect = MUST
    if op in ("delete", "rename"):
        key = rng.choice([k for k in items if k])
        victims = [k for k in items if k == key or k.startswith(key + "/")]
        for k in victims:
            v = items.pop(k)
            if op == "rename":
                items[key + "_x" + k[len(key):]] = v
        case.expect = MAY if is_optional(key) else MUST
        field = key.rsplit("/", 1)[-1]
        if kind == "nir" and field in NIR_DEFAULTS and victims == [key] and np.all(
                np.asarray(items.get(key + "_x", (0, np.nan))[1] if op == "rename" else
                           seeds.nir[net][key][1]) == NIR_DEFAULTS[field]):
            case.expect = MAY if op == "delete" else MUST
        desc = f"{op} {key}"
    elif op == "add":
        group = rng.choice([k for k, v in items.items() if v[0] == "g"])
        items[(group + "/" if group else "") + "fuzz_extra"] = ("d", np.arange(3), {}, None)
        case.expect, desc = MAY, f"add dataset fuzz_extra in /{group}"
    elif op == "dtype":
        key = rng.choice(datasets)
        orig = items[key][1]
        field = key.rsplit("/", 1)[-1]
        choice = rng.choice(["float", "fractional", "bool", "string", "int"])
        arr = np.asarray(orig)
        if arr.dtype.kind not in "biuf":
            new, choice = np.int64(7), "int"
        elif choice == "float":
            new = arr.astype(np.float64)
            case.expect = MAY
        elif choice == "fractional":
            new = arr.astype(np.float64) + 0.5
            case.expect = MUST if kind == "netx" or field in ("shape", "stride", "padding",
                                                              "groups", "dilation") else MAY
        elif choice == "bool":
            new = arr.astype(bool)
            case.expect = MAY if field == "gradedSpike" else MUST
        elif choice == "string":
            new = np.bytes_(b"abc")
        else:
            new = arr.astype(np.int64)
            case.expect = MAY if kind == "netx" or np.array_equal(new, arr) else MAY
        if field in ("refDelay", "gradedSpike", "version") or (
                choice in ("bool", "int") and arr.dtype.kind in "biuf"
                and np.asarray(new).shape == arr.shape
                and np.array_equal(np.asarray(new, dtype=np.float64), arr.astype(np.float64))):
            case.expect = MAY                 # e.g. an all-zero bias stored as bool
        items[key] = ("d", new, items[key][2], None)
        desc = f"dtype {key} -> {choice}"
    elif op == "value":
        key = rng.choice(numeric)
        orig = items[key][1]
        v = rng.choice(VALUES)
        arr = np.asarray(orig)
        arr = set_one(arr if arr.dtype != bool else arr.astype(np.int64), v,
                      rng.randrange(max(arr.size, 1)))
        items[key] = ("d", arr, items[key][2], None)
        case.expect = value_expect(kind, key.rsplit("/", 1)[-1], v, orig)
        desc = f"value {key}[one] = {v!r}"
    elif op == "shape":
        key = rng.choice(numeric)
        arr = np.asarray(items[key][1])
        choice = rng.choice(["empty", "0-d", "transposed", "truncated", "extra dim"])
        new = shaped(arr, choice)
        same = np.array_equal(np.atleast_1d(new), np.atleast_1d(arr)) and new.size == arr.size
        field = key.rsplit("/", 1)[-1]
        if arr.size == 1 and choice in ("0-d", "extra dim", "transposed"):
            same = True
        if choice == "extra dim" and arr.ndim <= 1:
            same = True                   # [[16, 14, 14]] reads as [16, 14, 14]
        if field in ("tau_mem", "tau_syn", "r", "v_leak", "v_reset", "v_threshold", "w_in",
                     "bias") and choice in ("0-d",) and np.unique(arr).size == 1:
            same = True                   # a scalar for a uniform per-neuron parameter
        if field in ("refDelay", "gradedSpike", "version"):
            same = True
        if arr.ndim == 2 and arr.shape[0] == arr.shape[1] and choice == "transposed":
            same = True
        if field in ("stride", "padding", "dilation") and np.unique(arr).size == 1 and \
                new.size >= 1:
            same = True                   # [2] and 2 broadcast to the same [2, 2]
        case.expect = MAY if same else MUST
        items[key] = ("d", new, items[key][2], None)
        desc = f"shape {key}: {choice}"
    elif op == "metadata":
        if kind == "netx":
            text = items[""][1].get("neurodeploy", "{}")
        else:
            text = items["node/metadata/neurodeploy"][1]
        text = text.decode() if isinstance(text, bytes) else text
        meta = json.loads(text)
        choice = rng.random()
        if choice < 0.25:
            new_text = rng.choice(["not json {", "[1, 2]", "3", "null", "\xff\xfe"])
            case.expect = MUST
            desc = f"metadata text = {new_text!r}"
        else:
            new, desc = mutate_tree(rng, meta, protect=(("quantization",),))
            new_text = json.dumps(new, default=lambda o: o.decode("latin-1"))
            why = metadata_problem(json.loads(new_text))   # another T is allowed (--timesteps)
            case.expect = MUST if why else MAY
            desc = f"metadata {desc}" + (f"  [{why}]" if why else "")
        if kind == "netx":
            items[""] = ("g", dict(items[""][1], neurodeploy=new_text))
        else:
            v = items["node/metadata/neurodeploy"]
            items["node/metadata/neurodeploy"] = ("d", new_text.encode("utf-8", "surrogateescape"),
                                                  v[2], v[3])
    elif op == "edges":
        v = items["node/edges"]
        edges = list(map(list, np.asarray(v[1])))
        choice = rng.choice(["delete", "dangling", "reversed", "duplicate", "self loop"])
        i = rng.randrange(len(edges))
        if choice == "delete":
            edges.pop(i)
        elif choice == "dangling":
            edges.append([edges[i][0], b"nowhere"])
        elif choice == "reversed":
            edges[i] = edges[i][::-1]
        elif choice == "duplicate":
            edges.append(list(edges[i]))
        else:
            edges.append([edges[i][1], edges[i][1]])
        items["node/edges"] = ("d", np.array(edges, dtype=object), v[2], v[3])
        case.expect = MUST
        desc = f"edges: {choice}"
    elif op == "layer":
        layers = sorted(int(k.split("/")[1]) for k in items if k.count("/") == 1
                        and k.startswith("layer/"))
        choice = rng.choice(["delete last", "duplicate last", "swap two"])
        last = layers[-1] if choice != "swap two" else 2
        src = [k for k in items if k.startswith(f"layer/{last}/") or k == f"layer/{last}"]
        if choice == "delete last":
            for k in src:
                items.pop(k)
        elif choice == "duplicate last":
            for k in src:
                items[k.replace(f"layer/{last}", f"layer/{last + 1}", 1)] = items[k]
        else:
            moved = {}
            for k in list(items):
                for a_, b_ in ((last, last - 1), (last - 1, last)):
                    if k == f"layer/{a_}" or k.startswith(f"layer/{a_}/"):
                        moved[k.replace(f"layer/{a_}", f"layer/{b_}", 1)] = items.pop(k)
            items.update(moved)
        desc = f"layers: {choice}"
    else:
        key = rng.choice([k for k in numeric if k.endswith("weight")])
        arr = np.array(items[key][1])
        arr.reshape(-1)[rng.randrange(arr.size)] = 2
        items[key] = ("d", arr, items[key][2], items[key][3])
        g = rng.choice([k for k, v in items.items() if v[0] == "g"])
        items[g] = ("g", dict(items[g][1], fuzz_note="hello"))
        case.expect, desc = MAY, f"benign: {key}[one] = 2, attribute on /{g}"
    try:
        h5_write(items, path)
    except Exception:         # the mutation itself cannot be stored: skip it
        return gen_h5(rng, kind, seeds, _fresh(d))
    case.desc = f"{net}: {desc}"
    return case


def manifest_problem(m, digest: str) -> str | None:
    """Why a manifest next to network.net must be refused (None: it is fine or not ours)."""
    if not isinstance(m, dict) or "files" not in m:
        return None                                  # not a neurodeploy manifest: ignored
    files = m["files"]
    if isinstance(files, dict) and "network.net" not in files:
        return None                                  # describes other files only
    if not isinstance(files, dict) or files.get("network.net") != digest:
        return "files.network.net does not describe the network"
    return None


def gen_manifest(rng, seeds: Seeds, d: Path) -> Case:
    net = d / "network.net"
    shutil.copyfile(ROOT / "export/digits/network.net", net)
    path = d / "manifest.json"
    out = d / "out"
    case = Case("manifest", "", MAY, argv=["simulate", str(net), "--backend", "torch",
                                           "--samples", "8", "--out", str(out), "-q"],
                names=(path.name,), out=out)
    r = rng.random()
    if r < 0.15:
        case.desc, case.expect = file_op(rng, path, json.dumps(seeds.manifest).encode(),
                                         text=True)
        if case.desc.endswith("directory instead of a file"):
            case.expect = MAY                        # no manifest file there: nothing to check
    elif r < 0.22:
        new = dict(seeds.manifest, recipe="renamed")
        path.write_text(json.dumps(new))
        case.desc = "benign: a field other than files changed"
    else:
        new, case.desc = mutate_tree(rng, seeds.manifest)
        text = json.dumps(new, indent=1, default=lambda b: b.decode("latin-1"))
        path.write_text(text)
        why = manifest_problem(json.loads(text), seeds.manifest["files"]["network.net"])
        case.judge(why)
    return case


def _fresh(d: Path) -> Path:
    shutil.rmtree(d)
    d.mkdir()
    return d


GENERATORS = {"recipe": gen_recipe, "preset": gen_preset, "report": gen_report,
              "checkpoint": gen_checkpoint, "npz": gen_npz, "chunks": gen_chunks,
              "netx": lambda r, s, d: gen_h5(r, "netx", s, d),
              "nir": lambda r, s, d: gen_h5(r, "nir", s, d), "manifest": gen_manifest}


# ---------------------------------------------------------------- running and judging

def _strict_json(text: str):
    def refuse(token):
        raise ValueError(f"{token} in JSON")
    return json.loads(text, parse_constant=refuse)


def insane_outputs(case: Case, stdout: str) -> str | None:
    """Why the outputs of an accepted case are wrong, or None."""
    if re.search(r"(?<![\w-])-?(nan|inf|infinity)(?![\w-])", stdout, re.IGNORECASE):
        return "nan/inf printed"
    if case.out is None or not case.out.exists():
        return None
    for f in case.out.rglob("*.json"):
        try:
            data = _strict_json(f.read_text())
        except ValueError as e:
            return f"{f.name}: {e}"
        for p, v in walk(data):
            key = str(p[-1]) if p else ""
            if isinstance(v, bool) or not is_num(v):
                continue
            if "accuracy" in fmt_path(p) and isinstance(v, float) and not (0 <= v <= 1):
                return f"{f.name}: {fmt_path(p)} = {v}"
            if key.endswith(("_pj", "_w", "_ns", "_us")) and not (math.isfinite(v) and v >= 0):
                return f"{f.name}: {fmt_path(p)} = {v}"
        if f.name == "simulate.json" and isinstance(data, dict):
            if data.get("samples", 1) < 1 or len(data.get("predictions", [])) != len(
                    data.get("labels", [])):
                return f"{f.name}: {data.get('samples')} samples"
    return None


def where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/neurodeploy/" in f.filename]
    f = (ours or frames or [None])[-1]
    if f is None:
        return "?"
    name = f.filename.split("/neurodeploy/")[-1] if "/neurodeploy/" in f.filename else \
        f.filename.split("site-packages/")[-1]
    prefix = "neurodeploy/" if "/neurodeploy/" in f.filename else ""
    return f"{prefix}{name}:{f.lineno} in {f.name}"


def _alarm(signum, frame):
    raise Hang()


def run_case(case: Case, limit_s: int, marker: Path) -> tuple[str, dict]:
    out, err = io.StringIO(), io.StringIO()
    info, code = {}, None
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if case.recipe is not None:
                    from neurodeploy.recipe import load_recipe
                    try:
                        load_recipe(case.recipe)
                        code = 0
                    except UserError as e:
                        print(f"neurodeploy: error: {e}", file=sys.stderr)
                        code = 2
                else:
                    code = cli_main(case.argv)
            except SystemExit as e:
                code = e.code
        signal.alarm(0)
        if caught:
            info["warnings"] = sorted({f"{w.category.__name__}: {str(w.message)[:80]}"
                                       for w in caught})[:3]
    except Hang:
        return "hangs", info
    except BaseException as e:       # noqa: BLE001 -- anything escaping main is a bug
        signal.alarm(0)
        info.update(exception=type(e).__name__, message=str(e).splitlines()[0][:200]
                    if str(e) else "", location=where(e))
        return ("code_ran" if marker.exists() else "tracebacks"), info
    if marker.exists():
        return "code_ran", info
    text = err.getvalue()
    if code == 2:
        lines = text.splitlines()
        info["message"] = text.strip()[:300]
        if len(lines) != 1 or not lines[0].startswith("neurodeploy: error: "):
            info["why"] = f"{len(lines)} stderr lines"
            return "tracebacks", info
        if case.names and not any(n in lines[0] for n in case.names):
            info["why"] = "message does not name the file"
            return "tracebacks", info
        return "one_line_errors", info
    if code == 0:
        bad = insane_outputs(case, out.getvalue())
        if bad:
            info["why"] = bad
            return "accepted_wrong", info
        if case.expect == MUST:
            info["why"] = "must_refuse, exit 0"
            return "accepted_wrong", info
        return "accepted_valid", info
    info.update(why=f"exit {code}", message=text.strip()[:300])
    return "tracebacks", info


def campaign(kinds: list[str], total: int, seed: int, limit_s: int, progress: bool = True,
             max_examples: int = 5, seed_run: Path = SEED_RUN) -> dict:
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="neurodeploy-fuzz-"))
    old_cwd = os.getcwd()
    try:
        os.chdir(work)                  # anything written relative to cwd stays in here
        seeds = Seeds(work, Path(seed_run))
        weights = {k: WEIGHTS[k] for k in kinds}
        live = {k: w for k, w in weights.items() if w}
        per_kind = {k: {"cases": 0, **{o: 0 for o in OUTCOMES}} for k in kinds}
        for k in kinds:
            if k in SKIPPED:
                per_kind[k]["skipped"] = SKIPPED[k]
        quota = {k: max(1, round(total * w / sum(live.values()))) for k, w in live.items()}
        schedule = [k for k, n in quota.items() for _ in range(n)]
        random.Random(seed).shuffle(schedule)
        examples = {k: collections.defaultdict(list) for k in kinds}
        locations = collections.Counter()
        first_of = {}
        generator_errors = collections.Counter()
        t0 = time.perf_counter()
        for i, kind in enumerate(schedule):
            rng = random.Random(f"{seed}-{i}")
            d = work / f"case{i}"
            d.mkdir()
            try:
                case = GENERATORS[kind](rng, seeds, d)
            except Exception as e:       # a bug of this harness, not of the product: count it
                generator_errors[kind] += 1
                first_of.setdefault(("generator", kind), f"{type(e).__name__}: {e} at {where(e)}")
                shutil.rmtree(d, ignore_errors=True)
                continue
            outcome, info = run_case(case, limit_s, d / "MARKER")
            stats = per_kind[kind]
            stats["cases"] += 1
            stats[outcome] += 1
            if outcome in BAD:
                row = {"case": i, "mutation": case.desc, "expect": case.expect, **info}
                if len(examples[kind][outcome]) < max_examples:
                    examples[kind][outcome].append(row)
                if outcome == "tracebacks":
                    loc = (kind, info.get("exception") or info.get("why", "?"),
                           info.get("location", "-"))
                    locations[loc] += 1
                    first_of.setdefault(loc, case.desc)
            shutil.rmtree(d, ignore_errors=True)
            os.chdir(work)
            if progress and (i + 1) % 100 == 0:
                rate = (i + 1) / (time.perf_counter() - t0)
                bad = sum(s[o] for s in per_kind.values() for o in BAD)
                print(f"  {i + 1}/{len(schedule)} cases, {rate:.1f}/s, {bad} bad so far",
                      flush=True)
        totals = {o: sum(s[o] for s in per_kind.values()) for o in ("cases", *OUTCOMES)}
        return {
            "cases": totals["cases"], "seed": seed, "limit_s": limit_s,
            "seconds": round(time.perf_counter() - t0, 1),
            "per_kind": per_kind, "totals": totals,
            "harness_errors": {k: [n, first_of[("generator", k)]]
                               for k, n in generator_errors.items()},
            "top_tracebacks": [{"kind": k, "exception": e, "location": loc, "count": n,
                                "first_mutation": first_of[(k, e, loc)]}
                               for (k, e, loc), n in locations.most_common(60)],
            "examples": {k: dict(v) for k, v in examples.items() if v},
            "machine": {"platform": platform.platform(), "python": platform.python_version(),
                        "cpus": os.cpu_count(), "torch_threads": 1, "torch": torch.__version__},
            "code": _git_state(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
    finally:
        os.chdir(old_cwd)
        shutil.rmtree(work, ignore_errors=True)


def _git_state() -> str:
    """The commit the product code came from (others may have uncommitted edits in flight)."""
    import subprocess
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "neurodeploy"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted edits in neurodeploy/' if dirty else ''}"


def table(result: dict) -> str:
    cols = ("cases", *OUTCOMES)
    short = ("cases", "1-line", "traceback", "hang", "ok", "wrong", "code")
    lines = [f"{'kind':11s}" + "".join(f"{c:>10s}" for c in short)]
    for kind, s in result["per_kind"].items():
        lines.append(f"{kind:11s}" + "".join(f"{s[c]:>10d}" for c in cols)
                     + (f"   ({s['skipped']})" if "skipped" in s else ""))
    lines.append(f"{'total':11s}" + "".join(f"{result['totals'][c]:>10d}" for c in cols))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=10_000, help="total cases over all kinds")
    p.add_argument("--kinds", default=",".join(WEIGHTS), help="comma-separated kinds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=20, help="seconds per case before a hang")
    p.add_argument("--out", default=str(RESULT), help="where the JSON result goes")
    args = p.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := [k for k in kinds if k not in WEIGHTS]:
        p.error(f"unknown kind(s) {unknown}; known: {', '.join(WEIGHTS)}")
    result = campaign(kinds, args.cases, args.seed, args.limit)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    print("top traceback locations:")
    for row in result["top_tracebacks"][:25]:
        print(f"  {row['count']:5d}  {row['kind']:10s} {row['exception']:24s} {row['location']}"
              f"   e.g. {row['first_mutation'][:70]}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
