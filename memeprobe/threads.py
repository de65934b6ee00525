"""The thread plan: how many threads torch, BLAS/OpenMP and faiss get, how many DataLoader workers and joblib
jobs run, decided in this one place from the cores this process may use (``os.sched_getaffinity``) and the
CPU that other processes are using right now.

On a busy machine a command that starts as many threads as cores waits on its own threads whenever the
scheduler parks one of them (OpenMP barriers, spinning), and pays for that in wall and CPU time
(benchmarks/README.md, "busy machine"). So ``auto`` gives each library the cores nobody else is using
(at least one) and re-measures while it runs (:func:`recheck`): a neighbour that starts or stops later
moves torch's thread count. A user's ``--threads N`` or ``OMP_NUM_THREADS`` fixes the count (``--workers``
fixes the DataLoader workers): torch's float32 results can differ in the last bits between thread counts,
so fix it to rerun a run bit for bit. The plan a run used is in its ``runs.jsonl`` record.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass

import click
from threadpoolctl import threadpool_limits

MAX_WORKERS = 4  # DataLoader workers on a quiet machine: min(MAX_WORKERS, cores)
MIN_WINDOW_S = 0.2  # the shortest window the CPU use of others is measured over
RECHECK_S = 3.0  # recheck(): at most once per this many seconds
USER_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ThreadPlan:
    """``threads``: torch intra-op, BLAS/OpenMP and faiss threads (each); ``workers``: DataLoader workers
    (min(MAX_WORKERS, cores) whatever the load: they never wait on each other, and fewer only lose their share);
    ``jobs``: parallel joblib tasks, each on one BLAS thread (so jobs x threads per job <= cores);
    ``cores``: CPUs this process may use; ``others``: cores other processes kept busy when it was made;
    ``source``: "auto", "--threads" or the environment variable that fixed it."""

    threads: int
    workers: int
    jobs: int
    cores: int
    others: float
    source: str

    def describe(self) -> str:
        """The run's log line."""
        why = (f"auto: {self.others:.1f} of {self.cores} cores busy with other work; --threads N fixes it"
               if self.source == "auto" else f"{self.source}; {self.cores} cores")
        return (f"threads: {self.threads} per library (torch, BLAS, faiss), {self.workers} loader workers, "
                f"{self.jobs} parallel jobs ({why})")

    def as_dict(self) -> dict:
        return {**asdict(self), "others": round(self.others, 2)}


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count() -> int:
    """Processes or threads that each work alone (DataLoader workers, decoding pools): min(MAX_WORKERS, cores)."""
    return min(MAX_WORKERS, cores())


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def _own_cpu() -> float:
    """CPU seconds of this process and its live descendants (DataLoader workers)."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total


def _busy_cpu(cpus) -> float | None:
    """CPU seconds all processes spent on ``cpus`` since boot (/proc/stat), None off Linux."""
    try:
        with open("/proc/stat") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    busy = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            v = [int(x) for x in rest.split()]
            busy += v[0] + v[1] + v[2] + sum(v[5:8])  # user nice system, irq softirq steal
    return busy / _TICK


@dataclass(frozen=True)
class _Sample:
    wall: float
    busy: float | None
    own: float

    @classmethod
    def now(cls) -> _Sample:
        try:
            cpus = os.sched_getaffinity(0)
        except AttributeError:
            cpus = set()
        return cls(time.monotonic(), _busy_cpu(cpus), _own_cpu())


def others_since(start: _Sample) -> tuple[float, _Sample]:
    """Cores other processes kept busy since ``start`` (waiting until the window is MIN_WINDOW_S long), and the
    sample that ends the window; off Linux the 1-minute load average less this process."""
    wait = MIN_WINDOW_S - (time.monotonic() - start.wall)
    if wait > 0:
        time.sleep(wait)
    end = _Sample.now()
    if start.busy is None or end.busy is None:
        return max(0.0, os.getloadavg()[0] - 1.0), end
    others = (end.busy - start.busy) - (end.own - start.own)
    return max(0.0, others / (end.wall - start.wall)), end


def decide(n_cores: int, others: float) -> int:
    """Threads for a machine of ``n_cores`` on which others keep ``others`` cores busy: the free cores,
    rounded, at least one."""
    return max(1, min(n_cores, int(n_cores - others + 0.5)))


_USER = {var: os.environ.get(var, "") for var in USER_ENV}  # before apply() sets them for the libraries
_state: dict = {"plan": None, "sample": _Sample.now()}  # the first window opens at start-up


def _user_threads(threads: int | None) -> tuple[int | None, str]:
    if threads is not None:
        return threads, "--threads"
    for var, value in _USER.items():
        if value.isdigit() and int(value) > 0:
            return int(value), f"{var}={value}"
    return None, "auto"


def plan(threads: int | None = None, workers: int | None = None) -> ThreadPlan:
    """The plan for this machine now; ``threads`` (--threads) or OMP_NUM_THREADS / MKL_NUM_THREADS /
    OPENBLAS_NUM_THREADS fix the threads, ``workers`` (--workers) the loader workers."""
    n = cores()
    fixed, source = _user_threads(threads)
    others, _state["sample"] = others_since(_state["sample"])
    chosen = fixed if fixed is not None else decide(n, others)
    loader = workers if workers is not None else worker_count()  # they never wait on each other
    return ThreadPlan(threads=chosen, workers=loader, jobs=min(chosen, n), cores=n, others=others, source=source)


def apply(p: ThreadPlan) -> ThreadPlan:
    """Give every library ``p``'s threads: environment variables for libraries not loaded yet (and child
    processes), threadpoolctl for BLAS/OpenMP already loaded, torch and faiss where imported. On a contended
    machine (auto) OpenMP threads sleep instead of spinning while they wait (OMP_WAIT_POLICY=passive)."""
    if p.source == "auto" and p.threads < p.cores:
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    _give(p.threads)
    _state["plan"] = p
    return p


def _give(n: int) -> None:
    for var in USER_ENV:
        os.environ[var] = str(n)
    threadpool_limits(limits=n)  # stays set: restored only on a context exit
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(n)


def active() -> ThreadPlan | None:
    """The plan this process applied, if any."""
    return _state["plan"]


def jobs() -> int:
    """Parallel jobs: the applied plan's, else this machine's now (an API call without a command)."""
    return (active() or plan()).jobs


def recheck() -> int | None:
    """Re-measure, at most every RECHECK_S, an applied ``auto`` plan; when the free cores changed, move torch's
    and the libraries' threads and log it. Returns the new thread count, None when nothing changed."""
    p = active()
    if p is None or p.source != "auto" or time.monotonic() - _state["sample"].wall < RECHECK_S:
        return None
    others, _state["sample"] = others_since(_state["sample"])
    n = decide(p.cores, others)
    if n == p.threads:
        return None
    click.echo(f"threads: {p.threads} -> {n} ({others:.1f} of {p.cores} cores now busy with other work)", err=True)
    _give(n)
    _state["plan"] = ThreadPlan(threads=n, workers=p.workers, jobs=n, cores=p.cores, others=others, source="auto")
    return n


def use(threads: int | None = None, workers: int | None = None) -> ThreadPlan:
    """Plan, apply and log: what a command calls once its arguments are checked, before heavy work."""
    p = apply(plan(threads, workers))
    click.echo(p.describe(), err=True)
    return p


threads_option = click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="Threads per library (torch, BLAS, faiss). Default: the cores other processes leave free, re-measured "
         "while it runs; fix it (or OMP_NUM_THREADS) to rerun bit for bit.")
