"""Featurize engines: local vs Ray wall time, the driver's write path, and a projection for N workers.

1. ``memeprobe featurize all`` on ``make_sample`` memes with ``--preset offline``, once with
   ``--engine local`` and once with ``--engine ray`` (a local Ray cluster with this machine's cores,
   started inside the timed run), each in a fresh process; wall time and the per-set rates the CLI logs.
   ``--repeats N`` runs N (local, ray) pairs and prints each pair's ratio and their median.
   Goal: ray / local <= 1.3 (on one machine Ray can only add overhead).
2. The write path for 1024-d float16 rows at several rows per call: ``FeatureStore.write_rows`` (each call
   durable: data fsync, then the status fsync) and the driver's ``StoreWriter``, which groups batches that
   arrive back to back into one commit. Goal: >= 20 000 rows/s at the encoder's batch size.
3. Projection: rows/s with N encoder workers = min(N x per-worker rate, write-path rate).

    python benchmarks/featurize_engines.py [--n 2000] [--quick] [--repeats N]
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from memeprobe.data.records import Dataset, Meme
from memeprobe.demo.synthetic import make_sample
from memeprobe.featurize.runner import Summary
from memeprobe.featurize.writer import StoreWriter
from memeprobe.store import ArraySpec, FeatureStore

QUICK_N = 200


def run_engine(data, store, engine, extra=()) -> tuple[float, dict]:
    """Wall seconds of one CLI run and its logged per-set (rows, seconds)."""
    cmd = [sys.executable, "-c", "from memeprobe.cli import main; main()", "featurize", "all", str(data),
           "--store", str(store), "--preset", "offline", "--no-progress", "--engine", engine, *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 3):
        sys.exit(f"{engine} run failed:\n{proc.stderr[-3000:]}")
    sets = {m.group(1): (int(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"^(\S+/\w+): (\d+) rows in ([\d.]+) s", proc.stderr, re.M)}
    return wall, sets


def write_rate(folder, rows_per_call, through_writer=False, n=20000, dim=1024, seconds=5.0) -> float:
    """rows/s of ``dim``-d float16 rows, ``rows_per_call`` contiguous rows per call: of ``write_rows`` (one
    commit per call), or of the driver's ``StoreWriter`` (batches back to back, commits grouped)."""
    memes = [Meme(id=str(i), split="train", text="t") for i in range(n)]
    path = Path(folder) / f"write{rows_per_call}.h5"
    values = {"text_embed": np.random.default_rng(0).standard_normal((rows_per_call, dim)).astype(np.float32)}
    with FeatureStore.create(path, Dataset(Path(folder), "jsonl", memes)) as st:
        st.add_feature_set("f", {"text_embed": ArraySpec(shape=(dim,), modality="text", dtype="float16")},
                           {"encoder": "bench", "weights_sha256": "", "preprocessing": {}})
        writer = StoreWriter(st, "f", "text", Summary())
        write = writer.write if through_writer else lambda rows, v: st.write_rows("f", rows, v, "text")
        t0, done = time.perf_counter(), 0
        while done + rows_per_call <= n and time.perf_counter() - t0 < seconds:
            write(np.arange(done, done + rows_per_call), values)
            done += rows_per_call
        writer.flush()
        rate = done / (time.perf_counter() - t0)
    path.unlink()
    return rate


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="synthetic memes (default 2000)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_N} memes (a slow CPU needs ~1 min per engine)")
    p.add_argument("--repeats", type=int, default=1, help="local/ray pairs, alternating (default 1; the median "
                   "ratio is printed: on a shared machine one pair is noisy)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64], help="N for the projection")
    args = p.parse_args(argv)
    n = QUICK_N if args.quick else args.n
    load = "load average %.1f %.1f %.1f" % os.getloadavg()
    print(f"# featurize_engines: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs, {n} memes, --preset offline, {load} at start")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_sample(data, n=n, seed=0)
        pairs = []
        for rep in range(args.repeats):  # local then ray, each pair in fresh stores: a ratio per pair
            load_before = os.getloadavg()[0]
            runs = {engine: run_engine(data, Path(tmp) / f"{engine}{rep}.h5", engine) for engine in ("local", "ray")}
            pairs.append((runs, load_before, os.getloadavg()[0]))
        sets_of = list(pairs[0][0]["local"][1])
        print("\n| pair | load before/after | engine | wall s | ray/local | "
              + " | ".join(f"{s} items/s" for s in sets_of) + " |")
        print("|---" * (5 + len(sets_of)) + "|")
        for rep, (runs, before, after) in enumerate(pairs, 1):
            for engine, (wall, sets) in runs.items():
                rates = " | ".join(f"{r / max(s, 1e-9):.1f}" for r, s in sets.values())
                print(f"| {rep} | {before:.1f} / {after:.1f} | {engine} | {wall:.1f} | {wall / runs['local'][0]:.2f} "
                      f"| {rates} |")
        ratios = [runs["ray"][0] / runs["local"][0] for runs, _, _ in pairs]
        print(f"\nray/local per pair: {', '.join(f'{r:.2f}' for r in ratios)}; median {np.median(ratios):.2f} "
              "(goal <= 1.3)")
        runs = pairs[-1][0]
        sizes = (8, 32, 128, 1024)
        writes = {b: write_rate(tmp, b) for b in sizes}
        grouped = {b: write_rate(tmp, b, through_writer=True) for b in sizes}
    print("\n| 1024-d float16 rows/s | " + " | ".join(f"{b} rows/call" for b in sizes) + " |")
    print("|---" * (1 + len(sizes)) + "|")
    print("| `write_rows` (one commit per call) | " + " | ".join(f"{writes[b]:,.0f}" for b in sizes) + " |")
    print("| driver's `StoreWriter` (commits grouped) | " + " | ".join(f"{grouped[b]:,.0f}" for b in sizes) + " |")
    sets = runs["ray"][1]
    worker = {s: r / max(t, 1e-9) for s, (r, t) in sets.items()}
    cap = grouped[32]
    print(f"\nProjection, rows/s = min(N x per-worker rate, driver write path {cap:,.0f} rows/s at 32 rows/batch):")
    print("| N workers | " + " | ".join(worker) + " |")
    print("|---" * (1 + len(worker)) + "|")
    for k in args.workers:
        print(f"| {k} | " + " | ".join(f"{min(k * r, cap):,.0f}" for r in worker.values()) + " |")
    print("\n# " + "load average %.1f %.1f %.1f" % os.getloadavg() + " at end")


if __name__ == "__main__":
    main()
