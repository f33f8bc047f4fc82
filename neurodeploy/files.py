"""The ground floor: files and the facts about them. Atomic writes (a reader never sees half a
file, a killed writer leaves no temporary behind), output folders checked before any work,
content digests, and the versions of installed packages. Imports nothing of ours but
`errors`, so every layer above can use it without an import climbing back up.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Iterator

from neurodeploy.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; move it into place only if the block succeeds.

    Readers never see a half-written artifact, and a failed write leaves the old file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_writers_temps(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _remove_dead_writers_temps(folder: Path, name: str = "*") -> None:
    """A writer killed by SIGKILL cannot remove its temp file (`.<name>.<pid>.<random>.tmp`);
    the next run in the folder does, once that pid is dead (a live writer's file is kept)."""
    for stale in folder.glob(f".{glob.escape(name) if name != '*' else '*'}.*.tmp"):
        pid = stale.name[:-len(".tmp")].rsplit(".", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                stale.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_json(path: str | os.PathLike, obj) -> None:
    """JSON, atomically; NaN and Infinity are refused (they are not JSON, and never a result)."""
    try:
        text = json.dumps(obj, indent=2, allow_nan=False)
    except ValueError as e:
        raise ValueError(f"{path}: refusing to write a non-finite number ({e})") from None
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def writable_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Create `path` if needed and prove a file can be written there, before any work starts.

    A run that fails only when it saves its results (read-only directory, a parent that is a
    file) wastes the whole simulation or training epoch; this fails in the first second."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
        _remove_dead_writers_temps(path)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise UserError(f"{path}: cannot write output here ({reason}); choose another {what} "
                        "directory") from None
    return path


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


STACK = ("neurodeploy", "torch", "lava-nc", "lava-dl", "nir", "numpy", "h5py")


def versions() -> dict:
    """Installed versions of the stack (None where absent): what every file neurodeploy writes
    cites, and what `--version` prints; one list, so a record and a bug report name the same."""
    out = {}
    for name in STACK:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def zip_damage(path: str | Path) -> str | None:
    """The first member of a zip archive (a .pt file) whose bytes fail their CRC-32, or None:
    torch does not check them, so damaged bytes would load as other weights."""
    with zipfile.ZipFile(path) as archive:
        return archive.testzip()
