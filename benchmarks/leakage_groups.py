"""`leakage report` on many identical or near-identical texts and images: time, peak RSS and report size
stay linear.

Writes hateful_memes-layout datasets of ``--n`` memes (train 80 %, dev_seen 10 %, test_unseen 10 %,
random 8-word captions from a 5,000-word vocabulary, labels 0/1 but on test_unseen):

- ``unique``: the baseline, no shared caption;
- ``group``: every (n / copies)-th meme shares one caption; half of those also one picture, the other
  half a picture of its own (issue 13 item 11);
- ``variants``: every (n / variants)-th meme is a one-token variant of one meme template ("when you
  finally fix the bug on a <word>", a word of its own each: any two have token Jaccard 7/9, so all
  variants(variants - 1)/2 pairs are near duplicates), each with its own file of the template picture
  (identical pixels);
- ``variants-near-images``: the same captions, each picture the template with its own +-3 noise (near
  duplicates by perceptual hash: every pair is a near duplicate in text and in image).

Each is reported by the real CLI in a fresh process (peak RSS is the command's own, from ``wait4``); the
table gives wall time, peak RSS, the pairs found (summary table) and listed (report.json), the largest
group, report sizes, the ratio to the baseline and the load average before each run. Run it under the
benchmark lock so that no other benchmark runs beside it:

    flock /tmp/memeprobe-bench.lock python benchmarks/leakage_groups.py     # 50,000 memes, 5,000 / 5,400
    python benchmarks/leakage_groups.py --n 2000 --copies 500 --variants 300 --only unique variants
Goals: 50,000 memes with a 5,000-copy group (issue 13 item 11) and with 5,400 one-token variants of one
caption (issue 24 item 3: 14.6M near-duplicate pairs) each in under 60 s and 1 GB.
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

TEMPLATE = "when you finally fix the bug on a"  # + one word of its own per variant


def generate(root: Path, n: int, copies: int = 0, variants: int = 0, near_images: bool = False,
             seed: int = 0) -> None:
    """One dataset of the module docstring (``copies``: ``group``; ``variants``: ``variants*``)."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(5000)])
    (root / "img").mkdir(parents=True)
    every = n // (copies or variants) if copies or variants else n + 1
    shared = Image.new("RGB", (32, 32), (200, 30, 30))
    template = Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).resize((64, 64))
    for split, lo, hi in (("train", 0, int(n * .8)), ("dev_seen", int(n * .8), int(n * .9)),
                          ("test_unseen", int(n * .9), n)):
        with open(root / f"{split}.jsonl", "w") as f:
            for i in range(lo, hi):
                row = {"id": str(i), "text": " ".join(rng.choice(words, 8, replace=False))}
                k = i // every
                if i % every == 0 and copies:
                    row["text"] = "the same caption everyone shares"
                    pic = shared if k % 2 == 0 else Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
                    pic.save(root / "img" / f"{i}.png")
                    row["img"] = f"img/{i}.png"
                elif i % every == 0 and k < variants:
                    row["text"] = f"{TEMPLATE} v{k}"
                    pic = template
                    if near_images:
                        noise = rng.integers(-3, 4, (64, 64, 3))
                        pic = Image.fromarray(np.clip(np.asarray(template, int) + noise, 0, 255).astype(np.uint8))
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
    proc = subprocess.Popen(cmd + ["leakage", "report", str(data), "--out", str(out), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        sys.exit(f"leakage report failed: {proc.stderr.read().decode()[-2000:]}")
    doc = json.loads((out / "report.json").read_text())
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "pairs": len(doc["pairs"]),
            "found": sum(s["pairs"] for s in doc["summary"]),
            "largest": doc["groups"][0]["size"] if doc["groups"] else 0,
            "json_mb": (out / "report.json").stat().st_size / 2**20,
            "html_mb": (out / "report.html").stat().st_size / 2**20, "load": load}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--copies", type=int, default=5_000)
    ap.add_argument("--variants", type=int, default=5_400)
    ap.add_argument("--only", nargs="+", choices=("unique", "group", "variants", "variants-near-images"),
                    help="datasets to run (the baseline `unique` is always run first)")
    args = ap.parse_args(argv)
    plan = [("group", dict(copies=args.copies)), ("variants", dict(variants=args.variants)),
            ("variants-near-images", dict(variants=args.variants, near_images=True))]
    plan = [("unique", {})] + [p for p in plan if not args.only or p[0] in args.only]
    rows = []
    with tempfile.TemporaryDirectory(prefix="leakage-groups-") as tmp:
        for name, kw in plan:
            data = Path(tmp) / name
            generate(data, args.n, **kw)
            rows.append((name, kw, measure(data, Path(tmp) / f"{name}-out")))
    base = rows[0][2]["wall"]
    print("dataset | memes | shared caption / variants | wall s | peak RSS MB | pairs found | pairs listed | "
          "largest group | report.json MB | report.html MB | wall / baseline | load avg (1 min)")
    print(" | ".join(["---"] * 12))
    for name, kw, m in rows:
        size = kw.get("copies") or kw.get("variants") or 0
        print(f"{name} | {args.n:,} | {size:,} | {m['wall']:.1f} | {m['rss_mb']:.0f} | {m['found']:,} | "
              f"{m['pairs']:,} | "
              f"{m['largest']:,} | {m['json_mb']:.1f} | {m['html_mb']:.1f} | {m['wall'] / base:.2f}x | {m['load']:.2f}")


if __name__ == "__main__":
    main()
