"""Cost of the checked open (issue 24 item 4; goal: checks on ≤ 1.10 × checks off for a training load).

Every load of a store checks what it relies on (memeprobe/store/layout.py): the root attributes and the meme
table's layout on open, the meme table's contents against its fingerprint (one sha256 over the table) before
the first load, a feature set's layout before its first use. This builds stores of N memes (captions of ~80
characters, like Hateful Memes) with one D-wide float16 feature set in a temp folder and times, best of
``--repeats`` interleaved rounds each:

* ``open``: ``FeatureStore.open`` + ``rows()`` (the meme table read, and with checks its fingerprint);
* ``open+load``: what ``train-head`` does per array: open, then ``load`` of every row (status, values with their
  row checksums, float32 cast),

with the checks as shipped ("on") and with the layout checks and the table's fingerprint replaced by no-ops
("off"); the ratio is on/off. Row checksums are on in both (benchmarks/store_checksums.py measures those).

    .venv/bin/python benchmarks/store_open.py [--rows 12500 100000] [--dim 1024] [--repeats 9]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from memeprobe.data.records import Dataset, Meme
from memeprobe.store import ArraySpec, FeatureStore
from memeprobe.store import layout
from memeprobe.store import store as store_module

WORDS = "when you finally get the joke but everyone already moved on to the next meme about cats and dogs".split()


def build(path: Path, rows: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    memes = [Meme(f"{i:06d}", ("train", "dev", "test")[i % 3], " ".join(rng.choice(WORDS, 15)), f"img/{i:06d}.png",
                  label=i % 2) for i in range(rows)]
    with FeatureStore.create(path, Dataset(Path("."), "generic", memes, binary_name="hateful")) as st:
        st.add_feature_set("f", {"image_embed": ArraySpec((dim,), "image")}, {"encoder": "bench"})
        for lo in range(0, rows, 8192):
            block = rng.normal(size=(min(8192, rows - lo), dim)).astype(np.float16)
            st.write_rows("f", np.arange(lo, lo + len(block)), {"image_embed": block}, "image")


@contextmanager
def checks(on: bool):
    """The layout checks as shipped, or replaced by no-ops."""
    if on:
        yield
        return
    names = ("table_problems", "content_problems", "label_problems", "set_problems", "table_fingerprint")
    saved = {name: getattr(layout, name) for name in names}
    for name in names:
        setattr(layout, name, (lambda *a, **k: "") if name == "table_fingerprint" else (lambda *a, **k: []))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(layout, name, fn)


def time_calls(path: Path, repeats: int) -> dict[tuple[str, bool], float]:
    def open_only():
        with FeatureStore.open(path) as st:
            st.rows()

    def open_load():
        with FeatureStore.open(path) as st:
            st.load("f", ["image_embed"])

    calls = {"open": open_only, "open+load": open_load}
    best = {}
    open_load()  # warm the page cache
    for _ in range(repeats):
        for what, call in calls.items():
            for on in (False, True):
                with checks(on):
                    t = time.perf_counter()
                    call()
                    best[what, on] = min(best.get((what, on), float("inf")), time.perf_counter() - t)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[12_500, 100_000])
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=9)
    a = p.parse_args()
    assert store_module.layout is layout  # the store calls the checks through this module
    print("# load average %.2f %.2f %.2f at start" % os.getloadavg())
    print(f"# {a.dim}-d float16 feature set, best of {a.repeats}, checks off/on interleaved\n")
    print("| memes   | open off ms | open on ms | on/off | open+load off ms | open+load on ms | on/off |")
    print("|---------|-------------|------------|--------|------------------|-----------------|--------|")
    for rows in a.rows:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "s.h5"
            build(path, rows, a.dim)
            best = time_calls(path, a.repeats)
        o, lo = (best["open", False], best["open", True]), (best["open+load", False], best["open+load", True])
        print(f"| {rows:<7} | {o[0] * 1e3:11.1f} | {o[1] * 1e3:10.1f} | {o[1] / o[0]:6.2f} | {lo[0] * 1e3:16.1f} | "
              f"{lo[1] * 1e3:15.1f} | {lo[1] / lo[0]:6.2f} |")
    print("\n# load average %.2f %.2f %.2f at end" % os.getloadavg())


if __name__ == "__main__":
    main()
