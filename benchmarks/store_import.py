"""Speed of ``memeprobe store import`` on a clip-retrieval folder (issue 23; goal: >= 50k rows/s for 100k x 768).

Builds, in a temp folder, a store of N memes and a clip-retrieval folder of the same N vectors (float32,
``--shards`` shards of img_emb/img_emb_K.npy + metadata/metadata_K.parquet whose ``image_path`` is an absolute
path, in shuffled order), then times, interleaved, best and median of ``--repeats`` rounds:

- ``ceiling``: the raw work in this process: ``np.load`` of every shard, cast to float16, one ``h5py``
  ``create_dataset`` of the (N, D) array in a new file, flush + fsync (no ids, no checks, no checksums);
- ``import``: ``import_features`` into a fresh copy of the store (read, id alignment, NaN/inf and range checks,
  sha256 of the files, copy-on-write feature set creation, checksummed durable row writes).

Both read the shards from the page cache (written just before). Prints a markdown table with rows/s and
import / ceiling.

    flock /tmp/memeprobe-bench.lock .venv/bin/python benchmarks/store_import.py [--rows 100000] [--dim 768]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from memeprobe.data.records import Dataset, Meme
from memeprobe.store import FeatureStore
from memeprobe.store.importer import ImportOptions, import_features


def build(root: Path, rows: int, dim: int, shards: int) -> tuple[Path, Path]:
    memes = [Meme(f"{i:06d}", "train" if i % 10 else "dev", f"text {i}", f"img/{i:06d}.png", i % 2)
             for i in range(rows)]
    store = root / "base.h5"
    FeatureStore.create(store, Dataset(root, "generic", memes)).close()
    folder = root / "emb"
    for d in ("img_emb", "metadata"):
        (folder / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(rows)
    for k, part in enumerate(np.array_split(order, shards)):
        np.save(folder / "img_emb" / f"img_emb_{k}.npy", rng.normal(size=(len(part), dim)).astype(np.float32))
        pq.write_table(pa.table({"image_path": [f"/data/memes/img/{i:06d}.png" for i in part]}),
                       folder / "metadata" / f"metadata_{k}.parquet")
    return store, folder


def ceiling(folder: Path, out: Path) -> None:
    files = sorted((folder / "img_emb").glob("*.npy"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    values = np.concatenate([np.load(p) for p in files]).astype(np.float16)
    with h5py.File(out, "w") as f:
        f.create_dataset("x", data=values)
        f.flush()
        os.fsync(f.id.get_vfd_handle())
    out.unlink()


def imported(store: Path, folder: Path, work: Path) -> None:
    target = work / "s.h5"
    report = import_features(target, [folder], "clip", ImportOptions(encoder="bench"))
    assert report.written == report.matched, report.lines()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--shards", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        store, folder = build(root, a.rows, a.dim, a.shards)
        times = {"ceiling": [], "import": []}
        for _ in range(a.repeats):
            t = time.perf_counter()
            ceiling(folder, root / "raw.h5")
            times["ceiling"].append(time.perf_counter() - t)
            shutil.copy(store, root / "s.h5")  # a fresh store each round (not timed)
            t = time.perf_counter()
            imported(store, folder, root)
            times["import"].append(time.perf_counter() - t)
            (root / "s.h5").unlink()
    load = os.getloadavg()
    print(f"{a.rows} x {a.dim} float32 in {a.shards} shards; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| step | best s | median s | rows/s (best) | rows/s (median) | / ceiling (best) |")
    print("|---|---|---|---|---|---|")
    best_ceiling = min(times["ceiling"])
    for what, ts in times.items():
        best, med = min(ts), statistics.median(ts)
        print(f"| {what} | {best:.2f} | {med:.2f} | {a.rows / best:,.0f} | {a.rows / med:,.0f} | "
              f"{best / best_ceiling:.2f} |")


if __name__ == "__main__":
    main()
