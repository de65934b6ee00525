"""Crash-safe outputs: write to a temporary name beside the target, fsync, then rename over it.

A reader sees the old file or the new one, never a half-written one; a full disk or a kill leaves the
old output untouched. A killed writer's temp file (``.NAME.tmp-PID``) or set-aside old folder
(``.NAME.old-PID``) is removed by the next successful writer of the same output, once process PID is
gone. Every write is first checked by :func:`memeprobe.outputs.check_output` (``kind``: what is written)."""
from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
from pathlib import Path

from memeprobe.outputs import check_output, write_error


def fsync_dir(path: Path) -> None:
    """fsync the directory holding ``path`` so a rename into it survives a power loss."""
    fd = os.open(Path(path).parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _remove(p: Path) -> None:
    """Best effort: a cleanup never hides the error being reported (a read-only disk, a vanished file)."""
    with contextlib.suppress(OSError):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def _remove_stale(path: Path) -> None:
    """Remove ``.NAME.tmp-PID`` / ``.NAME.old-PID`` beside ``path`` left by writers that are gone."""
    own = re.compile(rf"\.{re.escape(path.name)}\.(?:tmp|old)-(\d+)")
    for p in path.parent.glob(glob.escape(f".{path.name}.") + "*"):
        m = own.fullmatch(p.name)
        if m and not _alive(int(m.group(1))):
            _remove(p)


@contextlib.contextmanager
def _removed_on_error(tmp: Path, path: Path):
    """Remove ``tmp`` if the block fails; an OSError becomes one line naming ``path``."""
    try:
        yield
    except OSError as e:
        _remove(tmp)
        raise write_error(path, e) from None
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", *, kind: str = "file", parents: bool = False, **open_kwargs):
    """``with atomic_write(p, "wb") as f:`` — the file appears at ``p`` only if the block completes.
    ``parents``: create missing folders above it."""
    path = Path(path)
    check_output(path, kind)
    tmp = temp_name(path)
    with _removed_on_error(tmp, path):
        if parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path)
    _remove_stale(path)


@contextlib.contextmanager
def atomic_dir(path, kind: str):
    """``with atomic_dir(d, kind) as tmp:`` — fill ``tmp``; on success it replaces ``d`` as a whole.

    The swap is two renames (old aside, new in); a kill between them leaves no ``d`` but a complete
    ``.d.old-PID`` beside it, never a mix of old and new files."""
    path = Path(path)
    check_output(path, kind)
    tmp = temp_name(path)
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    _remove(tmp)
    with _removed_on_error(tmp, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        yield tmp
        for p in tmp.rglob("*"):
            if p.is_file():
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        fsync_dir(path)
        _remove(old)
    _remove_stale(path)
