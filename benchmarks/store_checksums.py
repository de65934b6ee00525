"""Cost of per-row checksums on store loads (issue 13 item 3; goal: check on ≤ 1.10 × check off).

Builds a store of N memes × D float16 (default 12 500 × 1024, the size the issue names) in a temp folder,
then times ``FeatureStore.load`` (status, values, float32 cast) and ``FeatureStore.read`` (raw float16
values) with ``check=True`` and ``check=False``, interleaved, best of ``--repeats`` each, and prints one table row per checksum algorithm (``mulsum64``,
the current one, and ``xxh3-64``, the per-row loop schema-2 stores still use) with the ratio to check off.

    .venv/bin/python benchmarks/store_checksums.py [--rows 12500] [--dim 1024] [--repeats 15]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from memeprobe.data.records import Dataset, Meme
from memeprobe.store import ArraySpec, FeatureStore
from memeprobe.store.checksums import ROW_CHECKSUMS


def build(path: Path, rows: int, dim: int) -> None:
    memes = [Meme(f"{i:06d}", "train", f"text {i}", None, label=i % 2) for i in range(rows)]
    with FeatureStore.create(path, Dataset(Path("."), "generic", memes)) as st:
        st.add_feature_set("f", {"text_embed": ArraySpec((dim,), "text")}, {"encoder": "bench"})
        values = np.random.default_rng(0).normal(size=(rows, dim)).astype(np.float16)
        st.write_rows("f", np.arange(rows), {"text_embed": values}, "text")


def relabel(path: Path, algorithm: str) -> None:
    """Rewrite the set's checksums with ``algorithm`` (as a store using it would hold them)."""
    with h5py.File(path, "r+") as f:
        sums = f["features/f/_checksum"]
        sums.attrs["algorithm"] = algorithm
        sums["text_embed"][:] = ROW_CHECKSUMS[algorithm](f["features/f/text_embed"][()])


def time_loads(path: Path, repeats: int) -> dict[tuple[str, bool], float]:
    """Best seconds of (``load`` | ``read``, check) over ``repeats`` interleaved rounds."""
    best = {}
    with FeatureStore.open(path) as st:
        rows = np.arange(st.n)
        calls = {"load": lambda check: st.load("f", ["text_embed"], check=check),
                 "read": lambda check: st.read("f", "text_embed", rows, check=check)}
        calls["load"](False)  # warm the page cache
        for _ in range(repeats):
            for what, call in calls.items():
                for check in (False, True):
                    t = time.perf_counter()
                    call(check)
                    best[what, check] = min(best.get((what, check), float("inf")), time.perf_counter() - t)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=12_500)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=15)
    a = p.parse_args()
    print("# load average %.2f %.2f %.2f at start" % os.getloadavg())
    print(f"# {a.rows} rows x {a.dim} float16, FeatureStore.load best of {a.repeats}, check off/on interleaved\n")
    print("| checksum  | load off ms | load on ms | on/off | read off ms | read on ms | on/off |")
    print("|-----------|-------------|------------|--------|-------------|------------|--------|")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.h5"
        build(path, a.rows, a.dim)
        for algorithm in ROW_CHECKSUMS:
            relabel(path, algorithm)
            best = time_loads(path, a.repeats)
            cells = [f"{best[w, False] * 1e3:11.1f} | {best[w, True] * 1e3:10.1f} | {best[w, True] / best[w, False]:6.2f}"
                     for w in ("load", "read")]
            print(f"| {algorithm:<9} | {' | '.join(cells)} |")
    print("\n# load average %.2f %.2f %.2f at end" % os.getloadavg())


if __name__ == "__main__":
    main()
