"""What is checked before any work starts, so that a run which cannot finish fails in its first
second, in one line, and leaves nothing behind: the device, the backend, the output folder."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import torch

from neurodeploy.backends.registry import backend as backend_named
from neurodeploy.errors import UserError
from neurodeploy.files import file_digest, writable_dir


def resolve_device(device: str | None) -> str:
    """The torch device to use, checked against this machine before any work (so a missing GPU
    is one line, not a traceback from deep inside torch); None: CUDA when torch sees it."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"--device {device!r}: not a torch device; use cpu or cuda "
                        "(cuda:N for the N-th GPU)") from None
    if kind.type == "cuda":
        if not torch.cuda.is_available():
            why = ("was built without CUDA" if torch.version.cuda is None
                   else "sees no CUDA GPU (check the driver and CUDA_VISIBLE_DEVICES)")
            raise UserError(f"--device {device}: this torch {torch.__version__} {why}; use "
                            "--device cpu")
        if kind.index is not None and kind.index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} "
                            f"CUDA GPU(s), numbered from 0; use --device cuda:0")
    elif kind.type != "cpu":
        raise UserError(f"--device {device}: neurodeploy runs on cpu or cuda; use one of them")
    return str(kind)


def device_name(device: str) -> str:
    """How a report names a device: cpu, or cuda:0 with the GPU's model."""
    kind = torch.device(device)
    if kind.type != "cuda":
        return kind.type
    index = kind.index if kind.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def check_backend(backend: str) -> None:
    """Refuse a backend that is unknown or that this machine cannot run, before any folder is
    made or work is done (Loihi 2 needs Intel's lava-loihi extension and a board: no run there
    can be resumed)."""
    if why := backend_named(backend).unavailable():
        raise UserError(f"--backend {backend}: {why}")


def default_out(verb: str, network: str | Path, backend: str | None = None) -> Path:
    """runs/<verb>/<folder>-<file>-<sha8>[-backend]: never the current directory, and two
    networks (or backends) never share a default directory."""
    path = Path(network)
    parts = [path.parent.name, path.stem, file_digest(path)[:8], backend]
    return Path("runs") / verb / "-".join(p for p in parts if p)


@contextlib.contextmanager
def output_dir(path: str | Path, what: str = "--out") -> Iterator[Path]:
    """writable_dir(path) for a run that may fail before it produced anything: if the block
    fails, the folders this call created are removed again when they are still empty, so a
    run that never started leaves no empty folder behind (a folder with results stays)."""
    path = Path(path)
    created = [p for p in (path, *path.parents) if not p.exists()]
    out = writable_dir(path, what)
    try:
        yield out
    except BaseException:
        if created:
            for folder, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)            # only empty ones: rmdir refuses the others
            for folder in created[1:]:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
        raise
