"""A teacher the user trained elsewhere: a TorchScript file (`torch.jit.save`), a `torch.export`
program (`.pt2`, `torch.export.save`) or, from Python, any `nn.Module`.

`TeacherModule` gives it the interface the trainer uses for the built-in CNN teacher:
`forward(x, features=True) -> (logits, maps)` and `cam(last_map, logits)`. The maps are the
outputs of the layers the recipe names (`teacher.features`), caught with forward hooks, and the
class activation map uses the weight of the final Linear layer it names (`teacher.head`).
TorchScript runs its submodules inside the TorchScript interpreter, where Python hooks never
fire, so feature losses need a `.pt2` program or an `nn.Module`; logit losses take all three.
Every mistake (a file that is no model, a wrong output width or input shape, an unknown layer
name) is one line naming the file and the fix.
"""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from neurodeploy.errors import UserError
from neurodeploy.files import file_digest

SAVE_HINT = ("save the trained model with torch.jit.save(torch.jit.script(model), path) or "
             "torch.export.save(torch.export.export(model, (example,)), path)")


def _first_line(e: Exception) -> str:
    """The informative line of an error (TorchScript puts its own last, after a traceback)."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    line = lines[-1] if lines and "TorchScript" in lines[0] else (lines or [""])[0]
    return line[:120] or type(e).__name__


def load_teacher_file(path: str | Path) -> tuple[nn.Module, int | None]:
    """The model in a TorchScript or torch.export file, and the batch size it was exported
    with when that is fixed (None: any). Pickled objects (a state_dict, a whole pickled model)
    are refused: they need the class's code and could run code."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such teacher file; {SAVE_HINT}")
    refused = UserError(f"{path}: teacher.file is neither a TorchScript nor a torch.export "
                        f"file (a pickled state_dict or model cannot be used); {SAVE_HINT}")
    try:
        with zipfile.ZipFile(path) as archive:     # both formats are zip archives
            exported = any(n.endswith("archive_format") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        raise refused from None
    try:
        if not exported:
            return torch.jit.load(str(path), map_location="cpu").eval(), None
        with warnings.catch_warnings():     # torch's own deprecation notes, not the user's
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.export.load(str(path))
    except Exception:       # a torch.save pickle is a zip too, but neither format
        raise refused from None
    names = set(program.graph_signature.user_inputs)
    shapes = [n.meta["val"].shape for n in program.graph.nodes
              if n.op == "placeholder" and n.name in names and "val" in n.meta]
    batch = shapes[0][0] if shapes and len(shapes[0]) and isinstance(shapes[0][0], int) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.export.unflatten(program), batch


class TeacherModule(nn.Module):
    """Wraps a trained classifier for distillation (frozen: always in eval mode).

    `input_shape`: one sample's shape as the data gives it (x arrives flat); the model gets
    [B, *input_shape], or [B, features] when that is what it takes (checked on one sample).
    `features`: names of submodules whose outputs are the feature maps [B, C, H, W];
    `head`: name of the final Linear layer (class activation maps, SAMD)."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], classes: int,
                 features: list[str] = (), head: str | None = None, source: str = "teacher",
                 batch: int | None = None):
        super().__init__()
        self.model, self.source, self.batch = model.eval(), source, batch
        self.features, self.head_name, self._maps = list(features), head, []
        scripted = isinstance(model, torch.jit.ScriptModule)
        if self.features and scripted:
            raise UserError(f"{source}: teacher.features needs forward hooks, which TorchScript "
                            "modules do not run; save the teacher with torch.export.save(...) "
                            "as a .pt2 file (or pass the nn.Module from Python)")
        layers = dict(model.named_modules())
        for name in self.features + ([head] if head else []):
            if name not in layers or name == "":
                available = [n for n in layers if n]
                shown = ", ".join(available[:30]) + (" ..." if len(available) > 30 else "")
                raise UserError(f"{source}: the teacher has no layer {name!r}; available: "
                                f"{shown or 'none'}")
        for name in self.features:
            layers[name].register_forward_hook(self._catch)
        self.head = layers[head] if head else None
        if self.head is not None and getattr(self.head, "weight", None) is None:
            raise UserError(f"{source}: teacher.head {head!r} has no weight; name the final "
                            "Linear layer (class activation maps read its weights)")
        self.input_shape, self.classes = tuple(input_shape), classes
        self._probe()

    def _catch(self, module, inputs, output) -> None:
        self._maps.append(output)

    def train(self, mode: bool = True):
        """A teacher stays frozen (BatchNorm statistics, dropout) whatever the trainer asks."""
        return super().train(False)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """The model on [B, ...]; a program exported with a fixed batch runs in padded chunks
        (the padding's logits and maps are dropped)."""
        if self.batch is None or len(x) == self.batch:
            return self.model(x)
        outs, maps = [], []
        for i in range(0, len(x), self.batch):
            part = x[i:i + self.batch]
            keep = len(part)
            part = torch.cat([part, part[:1].expand(self.batch - keep, *part.shape[1:])])
            self._maps = []
            outs.append(self.model(part)[:keep])
            maps.append([m[:keep] for m in self._maps])
        self._maps = [torch.cat(stage) for stage in zip(*maps)]
        return torch.cat(outs)

    def _probe(self) -> None:
        """Run one sample: pick the input layout, check output width and feature maps."""
        flat = int(torch.Size(self.input_shape).numel())
        layouts = [self.input_shape] + ([(flat,)] if len(self.input_shape) > 1 else [])
        error = None
        for layout in layouts:
            self._layout = layout
            try:
                with torch.no_grad():
                    logits, maps = self.forward(torch.rand(1, flat), features=True)
                break
            except UserError:
                raise
            except Exception as e:      # the model refused this shape
                error = error or e
        else:
            raise UserError(f"{self.source}: the teacher does not accept the data's samples of "
                            f"shape {list(self.input_shape)}"
                            f"{f' (nor flat [{flat}])' if len(layouts) > 1 else ''}: "
                            f"{_first_line(error)}; give a teacher trained on this data")
        if not isinstance(logits, torch.Tensor) or logits.shape != (1, self.classes):
            shape = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)
            raise UserError(f"{self.source}: the teacher outputs {shape} per batch of 1, the "
                            f"dataset has {self.classes} classes; give a teacher whose last "
                            f"layer has {self.classes} outputs")
        for name, m in zip(self.features, maps):
            if not isinstance(m, torch.Tensor) or m.ndim != 4:
                shape = list(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
                raise UserError(f"{self.source}: teacher layer {name!r} outputs {shape}; feature "
                                "losses need [B, C, H, W] maps: name conv stages")
        self.channels = [int(m.shape[1]) for m in maps]
        if self.head is not None and maps and self.head.weight.shape != (self.classes,
                                                                         self.channels[-1]):
            raise UserError(f"{self.source}: teacher.head {self.head_name!r} has weights "
                            f"{list(self.head.weight.shape)}, not [{self.classes}, "
                            f"{self.channels[-1]}] (classes x channels of the last feature "
                            f"layer {self.features[-1]!r}); name the Linear layer after it")

    def forward(self, x: torch.Tensor, features: bool = False):
        self._maps = []
        logits = self._run(torch.as_tensor(x, dtype=torch.float32).reshape(len(x),
                                                                            *self._layout))
        maps, self._maps = self._maps, []
        return (logits, maps) if features else logits

    def cam(self, last_map: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Class activation map of each sample's predicted class, [B, H, W] (Zhou et al.)."""
        if self.head is None:
            raise UserError(f"{self.source}: samd needs class activation maps; name the "
                            "teacher's final Linear layer in teacher.head")
        weights = self.head.weight[logits.argmax(1)]
        return torch.einsum("bc,bchw->bhw", weights, last_map)


def teacher_module(teacher: nn.Module | str | Path, input_shape: tuple[int, ...], classes: int,
                   features: list[str] = (), head: str | None = None) -> TeacherModule:
    """A TeacherModule from a file path or an nn.Module (from Python)."""
    if isinstance(teacher, (str, Path)):
        model, batch = load_teacher_file(teacher)
        return TeacherModule(model, input_shape, classes, features, head, str(teacher), batch)
    if not isinstance(teacher, nn.Module):
        raise UserError(f"teacher: expected an nn.Module or a model file, got "
                        f"{type(teacher).__name__}")
    return TeacherModule(teacher, input_shape, classes, features, head,
                         f"teacher {type(teacher).__name__}")


def teacher_provenance(teacher) -> dict | None:
    """What a checkpoint records about a teacher trained elsewhere: its file and sha256, or
    the class of a module given from Python (None: the tool trained its own)."""
    if teacher is None:
        return None
    if isinstance(teacher, (str, Path)):
        return {"file": str(teacher), "sha256": file_digest(teacher)}
    return {"module": type(teacher).__name__}
