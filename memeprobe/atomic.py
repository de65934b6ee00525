"""Crash-safe outputs: write to a temporary name beside the target, fsync, then rename over it.

A reader sees the old file or the new one, never a half-written one; a full disk or a kill leaves the
old output untouched and no temp file behind (a later writer removes stale ones it finds)."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from memeprobe.errors import MemeprobeError

_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


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


def write_error(path: Path, e: OSError) -> MemeprobeError:
    """One line naming the output and what to do about it."""
    if getattr(e, "errno", None) in _FULL:
        return MemeprobeError(f"cannot write {path}: the disk is full; free space or choose another path "
                              f"(the previous {path.name}, if any, is unchanged)")
    return MemeprobeError(f"cannot write {path}: {e.strerror or e}; choose a writable path")


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


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
def atomic_write(path, mode: str = "w", **open_kwargs):
    """``with atomic_write(p, "wb") as f:`` — the file appears at ``p`` only if the block completes."""
    path = Path(path)
    tmp = temp_name(path)
    with _removed_on_error(tmp, path):
        with open(tmp, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path)


@contextlib.contextmanager
def atomic_dir(path):
    """``with atomic_dir(d) as tmp:`` — fill ``tmp``; on success it replaces ``d`` as a whole.

    The swap is two renames (old aside, new in); a kill between them leaves no ``d`` but a complete
    ``.d.old-PID`` beside it, never a mix of old and new files."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    _remove(tmp)
    with _removed_on_error(tmp, path):
        tmp.mkdir(parents=True)
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
