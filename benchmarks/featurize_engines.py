"""Featurize engines: local vs Ray and where the time goes, the driver's write path, a projection for N workers.

1. ``memeprobe featurize all --preset offline`` on ``make_sample`` memes (``--n``, default 2000 and 10000),
   with ``--engine local`` and ``--engine ray`` (a local Ray cluster with this machine's cores, started inside
   the timed run), each in a fresh process, in ``--repeats`` pairs whose order alternates (local first,
   then Ray first, ...). Per run, from the CLI's log lines as they arrive: the wall time; the fixed cost
   (launch to the first written row); the steady-state rate (items written after the first commit over the
   time from it to the end of the last job); the per-set rates. Load averages before and after each run.
   Goals on 2 cores: Ray's fixed cost <= 8 s, Ray's steady-state rate >= 0.9 x local.
2. The write path for 1024-d float16 rows at several rows per call: ``FeatureStore.write_rows`` (each call
   durable: data fsync, then the status fsync) and the driver's ``StoreWriter``, which groups batches that
   arrive back to back into one commit. Goal: >= 20 000 rows/s at the encoder's batch size.
3. Projection: rows/s with N encoder workers = min(N x per-worker rate, write-path rate).

    python benchmarks/featurize_engines.py [--n 2000 10000] [--repeats N] [--quick]
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from memeprobe.data.records import Dataset, Meme
from memeprobe.demo.synthetic import make_sample
from memeprobe.featurize.runner import Summary
from memeprobe.featurize.writer import StoreWriter
from memeprobe.store import ArraySpec, FeatureStore

QUICK_N = 200
ENGINES = ("local", "ray")


def run_engine(data, store, engine) -> dict:
    """One CLI run: wall s, first-row s (from launch), steady items/s, per-set items/s, loads before/after."""
    cmd = [sys.executable, "-c", "from memeprobe.cli import main; main()", "featurize", "all", str(data),
           "--store", str(store), "--preset", "offline", "--no-progress", "--engine", engine]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []  # (seconds since launch, line) as they arrive
    reader = threading.Thread(target=lambda: lines.extend((time.perf_counter() - t0, ln) for ln in proc.stderr))
    reader.start()
    out = proc.stdout.read()
    proc.wait()
    reader.join()
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 3):
        sys.exit(f"{engine} run failed:\n{''.join(ln for _, ln in lines)[-3000:]}")
    first = [(t, int(m.group(1))) for t, ln in lines if (m := re.match(r"first rows written .* \((\d+) items\)", ln))]
    ends = [t for t, ln in lines if re.match(r"\S+/\w+: \d+ rows in ", ln)]
    written = re.search(r"(\d+) written, (\d+) failures", out)
    items = int(written.group(1)) + int(written.group(2))
    sets = {m.group(1): int(m.group(2)) / max(float(m.group(3)), 1e-9)
            for _, ln in lines if (m := re.match(r"(\S+/\w+): (\d+) rows in ([\d.]+) s", ln))}
    (t_first, n_first), t_end = first[0], max(ends)
    return {"wall": wall, "first": t_first, "steady": (items - n_first) / max(t_end - t_first, 1e-9),
            "sets": sets, "load": (load, os.getloadavg()[0])}


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
    p.add_argument("--n", type=int, nargs="+", default=[2000, 10000], help="synthetic memes (default 2000 10000)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_N} memes, one pair")
    p.add_argument("--repeats", type=int, default=2, help="(local, ray) pairs per size, order alternating (default 2)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64], help="N for the projection")
    args = p.parse_args(argv)
    sizes, repeats = ([QUICK_N], 1) if args.quick else (args.n, args.repeats)
    print(f"# featurize_engines: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, --preset offline, load average %.1f %.1f %.1f at start" % os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        last = None
        for n in sizes:
            data = Path(tmp) / f"data{n}"
            make_sample(data, n=n, seed=0)
            runs = []  # (pair, engine, result)
            for rep in range(repeats):
                order = ENGINES if rep % 2 == 0 else ENGINES[::-1]
                for engine in order:
                    store = Path(tmp) / f"{engine}{n}_{rep}.h5"
                    runs.append((rep + 1, engine, run_engine(data, store, engine)))
                    store.unlink()
            sets_of = list(runs[0][2]["sets"])
            print(f"\n## {n} memes\n\n| pair | engine | load before/after | wall s | first row s | steady items/s | "
                  + " | ".join(f"{s} items/s" for s in sets_of) + " |")
            print("|---" * (6 + len(sets_of)) + "|")
            for rep, engine, r in runs:
                rates = " | ".join(f"{r['sets'].get(s, 0):.1f}" for s in sets_of)
                print(f"| {rep} | {engine} | {r['load'][0]:.1f} / {r['load'][1]:.1f} | {r['wall']:.1f} | {r['first']:.1f} "
                      f"| {r['steady']:.1f} | {rates} |")
            by = {e: [r for _, engine, r in runs if engine == e] for e in ENGINES}
            pairs = [{e: r for pair, e, r in runs if pair == rep} for rep in range(1, repeats + 1)]
            ratio = [p["ray"]["wall"] / p["local"]["wall"] for p in pairs]
            steady = [p["ray"]["steady"] / p["local"]["steady"] for p in pairs]
            extra = [p["ray"]["first"] - p["local"]["first"] for p in pairs]
            med = {e: {k: float(np.median([r[k] for r in by[e]])) for k in ("wall", "first", "steady")} for e in ENGINES}
            print(f"\nmedians, {n} memes: first row local {med['local']['first']:.1f} s, Ray {med['ray']['first']:.1f} s "
                  f"(Ray's fixed cost; goal <= 8 s), Ray - local per pair {', '.join(f'{x:+.1f}' for x in extra)} s; "
                  f"steady ray/local per pair {', '.join(f'{x:.2f}' for x in steady)} (goal >= 0.9); "
                  f"wall ray/local per pair {', '.join(f'{x:.2f}' for x in ratio)}")
            last = by["ray"][-1]
        sizes_w = (8, 32, 128, 1024)
        writes = {b: write_rate(tmp, b) for b in sizes_w}
        grouped = {b: write_rate(tmp, b, through_writer=True) for b in sizes_w}
    print("\n| 1024-d float16 rows/s | " + " | ".join(f"{b} rows/call" for b in sizes_w) + " |")
    print("|---" * (1 + len(sizes_w)) + "|")
    print("| `write_rows` (one commit per call) | " + " | ".join(f"{writes[b]:,.0f}" for b in sizes_w) + " |")
    print("| driver's `StoreWriter` (commits grouped) | " + " | ".join(f"{grouped[b]:,.0f}" for b in sizes_w) + " |")
    worker, cap = last["sets"], grouped[32]
    print(f"\nProjection, rows/s = min(N x per-worker rate, driver write path {cap:,.0f} rows/s at 32 rows/batch):")
    print("| N workers | " + " | ".join(worker) + " |")
    print("|---" * (1 + len(worker)) + "|")
    for k in args.workers:
        print(f"| {k} | " + " | ".join(f"{min(k * r, cap):,.0f}" for r in worker.values()) + " |")
    print("\n# " + "load average %.1f %.1f %.1f" % os.getloadavg() + " at end")


if __name__ == "__main__":
    main()
