"""`leakage report` on many identical texts and images: time, peak RSS and report size stay linear.

Writes a hateful_memes-layout dataset of ``--n`` memes (train 80 %, dev_seen 10 %, test_unseen 10 %,
random 8-word captions from a 5,000-word vocabulary) twice: ``unique`` (the baseline: no shared caption)
and ``group`` (every (n / copies)-th meme shares one caption; half of those also one picture, the other
half a picture of its own). Each is reported by the real CLI in a fresh process (peak RSS is the
command's own, from ``wait4``); the table gives wall time, peak RSS, pairs listed, report.json size,
the ratio to the baseline, and the load average before each run.

    python benchmarks/leakage_groups.py                    # 50,000 memes, a 5,000-copy group
    python benchmarks/leakage_groups.py --n 2000 --copies 500
Goal (issue 13 item 11): 50,000 memes with a 5,000-copy group in under 60 s and 1 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def generate(root: Path, n: int, copies: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(5000)])
    (root / "img").mkdir(parents=True)
    step = n // copies if copies else n + 1
    shared = Image.new("RGB", (32, 32), (200, 30, 30))
    for split, lo, hi in (("train", 0, int(n * .8)), ("dev_seen", int(n * .8), int(n * .9)),
                          ("test_unseen", int(n * .9), n)):
        with open(root / f"{split}.jsonl", "w") as f:
            for i in range(lo, hi):
                row = {"id": str(i), "text": " ".join(rng.choice(words, 8, replace=False))}
                if copies and i % step == 0:
                    row["text"] = "the same caption everyone shares"
                    pic = shared if (i // step) % 2 == 0 else Image.fromarray(
                        rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
                    pic.save(root / "img" / f"{i}.png")
                    row["img"] = f"img/{i}.png"
                if split != "test_unseen":
                    row["label"] = int(rng.integers(0, 2))
                f.write(json.dumps(row) + "\n")


def measure(data: Path, out: Path) -> dict:
    exe = Path(sys.executable).with_name("memeprobe")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "memeprobe.cli"]
    load = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd + ["leakage", "report", str(data), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        sys.exit(f"leakage report failed: {proc.stderr.read().decode()[-2000:]}")
    doc = json.loads((out / "report.json").read_text())
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "pairs": len(doc["pairs"]),
            "largest": doc["groups"][0]["size"] if doc["groups"] else 0,
            "json_mb": (out / "report.json").stat().st_size / 2**20,
            "html_mb": (out / "report.html").stat().st_size / 2**20, "load": load}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--copies", type=int, default=5_000)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="leakage-groups-") as tmp:
        for name, copies in (("unique", 0), ("group", args.copies)):
            data = Path(tmp) / name
            generate(data, args.n, copies)
            rows.append((name, copies, measure(data, Path(tmp) / f"{name}-out")))
    base = rows[0][2]["wall"]
    print("dataset | memes | copies of one caption | wall s | peak RSS MB | pairs listed | largest group | "
          "report.json MB | report.html MB | wall / baseline | load avg (1 min)")
    print(" | ".join(["---"] * 11))
    for name, copies, m in rows:
        print(f"{name} | {args.n:,} | {copies:,} | {m['wall']:.1f} | {m['rss_mb']:.0f} | {m['pairs']:,} | "
              f"{m['largest']:,} | {m['json_mb']:.1f} | {m['html_mb']:.1f} | {m['wall'] / base:.2f}x | {m['load']:.2f}")


if __name__ == "__main__":
    main()
