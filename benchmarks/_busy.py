"""Quiet versus busy: memeprobe commands timed alone and beside N CPU-bound neighbours (``--busy N`` of
heads_speed.py and featurize_throughput.py).

Each command runs in a fresh process under three thread settings: the thread plan (``auto``, no variable
set), ``OMP_NUM_THREADS=1``, and ``--threads CORES`` (the fixed count every command used before the plan:
torch/BLAS/faiss on all cores, min(4, cores) loader workers, 2 joblib jobs on 2 cores). Quiet and busy runs
alternate (the order flips every round); wall and CPU seconds (the command and its children, from rusage)
and the 1-minute load average after each run are kept, and the median over rounds is shown.

Goals (issue 26): busy <= 2.5x quiet wall and <= 1.3x quiet CPU with one neighbour per core; the plan's
quiet wall within 5 % of the fixed count's; the ensemble <= 1.5x the sum of its members' walls.
"""
from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from memeprobe.threads import USER_ENV, cores

MEMEPROBE = str(Path(sys.executable).parent / "memeprobe")
THREAD_VARS = (*USER_ENV, "OMP_WAIT_POLICY")  # unset for every run: each variant sets its own
WALL_GOAL, CPU_GOAL, QUIET_GOAL = 2.5, 1.3, 1.05


def variants() -> dict[str, tuple[list[str], dict]]:
    """name -> (extra CLI arguments, extra environment)."""
    return {"auto (thread plan)": ([], {}), "OMP_NUM_THREADS=1": ([], {"OMP_NUM_THREADS": "1"}),
            f"--threads {cores()} (before the plan)": (["--threads", str(cores())], {})}


@contextlib.contextmanager
def neighbours(n: int):
    """``n`` CPU-bound processes (``yes > /dev/null``) for the duration of the block."""
    procs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(n)]
    try:
        if procs:
            time.sleep(1.0)  # let them reach the run queue
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def run(argv: list[str], env: dict) -> tuple[float, float, str]:
    """(wall s, CPU s of the process and its children, output) of ``memeprobe ARGV``; exits on failure."""
    clean = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([MEMEPROBE, *argv], env={**clean, **env}, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"memeprobe {' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout + proc.stderr


def compare(commands: dict[str, list[str]], busy: int, rounds: int, reset=lambda name: None) -> dict:
    """{(command, variant, mode): [(wall, cpu, load), ...]}: every command under every variant, quiet and
    beside ``busy`` neighbours, alternating. ``reset(name)`` runs before each run (e.g. removes a store)."""
    times: dict = {}
    for r in range(rounds):
        modes = ("quiet", "busy") if r % 2 == 0 else ("busy", "quiet")
        for name, argv in commands.items():
            for variant, (extra, env) in variants().items():
                for mode in modes:
                    reset(name)
                    with neighbours(busy if mode == "busy" else 0):
                        wall, cpu, _ = run([*argv, *extra], env)
                    load = os.getloadavg()[0]
                    times.setdefault((name, variant, mode), []).append((wall, cpu, load))
                    print(f"  {name} | {variant} | {mode}: {wall:.1f} s wall, {cpu:.1f} s CPU, load {load:.2f}",
                          file=sys.stderr, flush=True)
                    time.sleep(1.0)
    return times


def _median(times, key):
    runs = times[key]
    return (statistics.median(w for w, _, _ in runs), statistics.median(c for _, c, _ in runs),
            ", ".join(f"{x:.1f}" for _, _, x in runs))


def table(times: dict, busy: int, rounds: int) -> str:
    """The markdown table: one row per command and variant."""
    names = list(dict.fromkeys(k[0] for k in times))
    fixed = list(variants())[2]
    lines = [f"{busy} CPU-bound neighbours (`yes > /dev/null`) on {cores()} cores; median of {rounds} alternating "
             f"round(s); load = 1-minute load average after each run (quiet; busy). Goals: busy <= {WALL_GOAL}x "
             f"quiet wall and <= {CPU_GOAL}x quiet CPU; auto's quiet wall <= {QUIET_GOAL}x the fixed count's.", "",
             "| command | threads | quiet wall s | quiet CPU s | busy wall s | busy CPU s | busy/quiet wall "
             "| busy/quiet CPU | quiet vs fixed | goals | load |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for name in names:
        for variant in variants():
            qw, qc, ql = _median(times, (name, variant, "quiet"))
            bw, bc, bl = _median(times, (name, variant, "busy"))
            fw = _median(times, (name, fixed, "quiet"))[0]
            ok = (bw / qw <= WALL_GOAL and bc / qc <= CPU_GOAL
                  and (not variant.startswith("auto") or qw / fw <= QUIET_GOAL))
            lines.append(f"| {name} | {variant} | {qw:.1f} | {qc:.1f} | {bw:.1f} | {bc:.1f} | {bw / qw:.2f}x "
                         f"| {bc / qc:.2f}x | {qw / fw:.2f}x | {'met' if ok else 'missed'} | {ql}; {bl} |")
    return "\n".join(lines)


def ensemble_line(times: dict, ensemble: str, members: list[str]) -> str:
    """The ensemble's wall against the sum of its members' own walls, quiet and busy, per variant."""
    out = []
    for variant in variants():
        parts = []
        for mode in ("quiet", "busy"):
            ens = _median(times, (ensemble, variant, mode))[0]
            total = sum(_median(times, (m, variant, mode))[0] for m in members)
            parts.append(f"{mode} {ens:.1f} s vs {total:.1f} s = {ens / total:.2f}x")
        out.append(f"- {variant}: " + "; ".join(parts))
    return f"{ensemble} against the sum of {' + '.join(members)} (goal <= 1.5x):\n" + "\n".join(out)
