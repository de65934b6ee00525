"""The single-writer lock: an exclusive ``flock`` on the sidecar file ``STORE.lock`` holding the pid.

Hardened against the ways a path-based lock is defeated: the lock file is opened with ``O_NOFOLLOW``
and must be a regular, singly linked file owned by this user (a symlink or hard link to another file
is refused, never written); ``check()`` tells a writer, before each commit, whether the file on disk
is still the one it locked (an unlinked or replaced lock lets a second writer in: the first one then
stops); forked children (DataLoader workers) close their inherited copy at once, so a killed
writer's lock is free as soon as the writer itself is gone.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import weakref
from pathlib import Path

from memeprobe.errors import OutputError, StoreError, StoreLockedError

_HELD: "weakref.WeakSet[WriterLock]" = weakref.WeakSet()
_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def _cannot_write(store_path: Path, lock_path: Path, e: OSError) -> OutputError:
    """The one line for a lock file that cannot be created or written (a full disk says so)."""
    if e.errno in _FULL:
        return OutputError(f"cannot write store {store_path}: the disk is full (writing its lock file {lock_path}: "
                           f"{e.strerror}); free space or use another --store path")
    return OutputError(f"cannot write store {store_path}: cannot create lock file {lock_path} ({e.strerror}); "
                       "choose a writable --store path")


def _drop_in_child() -> None:
    """After fork, in the child: close every inherited lock descriptor (the parent keeps its lock)."""
    for lock in list(_HELD):
        if lock._fd is not None:
            try:
                os.close(lock._fd)
            except OSError:
                pass
            lock._fd = None


os.register_at_fork(after_in_child=_drop_in_child)


class WriterLock:
    """Held from acquisition until ``release()`` (or process death: the kernel drops flocks)."""

    def __init__(self, store_path: Path):
        self.store_path = Path(store_path)
        self.path = Path(str(store_path) + ".lock")
        self._fd = None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise StoreError(f"lock file {self.path} is a symbolic link; refusing to follow it (it may point at "
                                 "another file): remove the link") from None
            raise _cannot_write(store_path, self.path, e) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid():
            os.close(fd)
            what = ("not a regular file" if not stat.S_ISREG(st.st_mode) else
                    f"hard-linked to {st.st_nlink - 1} other name(s)" if st.st_nlink != 1 else "owned by another user")
            raise StoreError(f"lock file {self.path} is {what}; refusing to use it as a lock: remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreLockedError(
                    f"store {store_path} is being written by another process (pid {pid}); wait for it to "
                    "finish or stop it, or use another --store path") from None
            raise StoreError(f"cannot lock store {store_path}: flock on {self.path} failed ({e.strerror}); "
                             "use a --store path on a local filesystem") from None
        self._fd = fd
        self._id = (st.st_dev, st.st_ino)
        _HELD.add(self)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:  # a full disk: nothing was written to the store
            self.release()
            raise _cannot_write(store_path, self.path, e) from None

    def check(self) -> None:
        """Raise StoreLockedError unless the lock file on disk is still the one this writer holds."""
        if self._fd is None:
            raise StoreLockedError(f"store {self.store_path}: the write lock was released; reopen the store to write")
        try:
            st = os.stat(self.path, follow_symlinks=False)
            same = (st.st_dev, st.st_ino) == self._id
        except FileNotFoundError:
            same = False
        if not same:
            raise StoreLockedError(
                f"store {self.store_path}: its lock file {self.path} was removed or replaced while this process "
                "was writing, so another writer may have started; stopped without marking this batch done "
                "(re-run the command once no other writer runs: it resumes)")

    def release(self) -> None:
        if self._fd is not None:
            _HELD.discard(self)
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
