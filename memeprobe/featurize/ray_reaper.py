"""Ends what a Ray cluster that a memeprobe run started leaves behind, however that run ends (SIGKILL too).

The Ray engine starts its cluster in a fresh temp dir of its own (``ray.init(_temp_dir=ROOT)``: every
session file, log and socket of that cluster lies below ROOT), with ``MARK_VAR=MARK`` in its
environment, and first starts this script (standard library only, ``python -I -S reaper.py ROOT MARK``)
with a pipe as stdin. When the pipe closes (the run closed it after ``ray.shutdown()``, or the run died
and the kernel closed it) the script SIGKILLs every process of that cluster until none is left, then
removes ROOT. A process is the cluster's when its environment holds the mark, its command line names
ROOT, or it is a ``ray::`` process (Ray rewrites those titles, environment included) with a file open
below ROOT (its logs). The run's own process is never touched. The script ignores SIGINT: Ctrl-C
reaches the whole foreground process group, and the run still shuts down in order after it. Linux
(``/proc``) only; elsewhere it finds nothing and only removes ROOT.
"""
import os
import shutil
import signal
import sys
import time

MARK_VAR = "MEMEPROBE_RAY_RUN"
PATIENCE = 20.0  # seconds to keep killing processes that still appear (a worker being spawned at the end)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # gone, or another user's
        return b""


def _opens_below(pid: str, root: str) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(root):
                return True
        except OSError:
            pass
    return False


def cluster_pids(root: str, mark: str, spare: set) -> list[int]:
    """Pids of the processes (other than ``spare``) of the cluster kept below ``root`` and marked ``mark``."""
    needle, found = f"{MARK_VAR}={mark}".encode(), []
    try:
        names = [n for n in os.listdir("/proc") if n.isdigit() and int(n) not in spare]
    except OSError:
        return found
    for pid in names:
        cmdline = _read(f"/proc/{pid}/cmdline")
        if (needle in _read(f"/proc/{pid}/environ").split(b"\0") or root.encode() in cmdline
                or cmdline.startswith(b"ray::") and _opens_below(pid, root)):
            found.append(int(pid))
    return found


def reap(root: str, mark: str, spare: set) -> None:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        pids = cluster_pids(root, mark, spare)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    shutil.rmtree(root, ignore_errors=True)


class _Stop(Exception):
    pass


def _stop(*_):
    raise _Stop


def main() -> None:
    root, mark = os.path.join(sys.argv[1], ""), sys.argv[2]
    spare = {os.getpid(), os.getppid()}  # this script and the run that started it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # asked to go: clean up first
        signal.signal(sig, _stop)
    try:
        while sys.stdin.buffer.read(1 << 16):
            pass
    except (_Stop, OSError):
        pass
    reap(root, mark, spare)


if __name__ == "__main__":
    main()
