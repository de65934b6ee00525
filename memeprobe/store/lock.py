"""The single-writer lock: an exclusive ``flock`` on the sidecar file ``STORE.lock`` holding the pid."""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from memeprobe.errors import MemeprobeError


class WriterLock:
    """Held from acquisition until ``release()`` (or process death: the kernel drops flocks)."""

    def __init__(self, store_path: Path):
        self.path = Path(str(store_path) + ".lock")
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise MemeprobeError(
                f"cannot write store {store_path}: cannot create lock file {self.path} ({e.strerror}); "
                "choose a writable --store path") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            pid = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(self._fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise MemeprobeError(
                    f"store {store_path} is being written by another process (pid {pid}); wait for it to "
                    "finish or stop it, or use another --store path") from None
            raise
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
