"""Peak memory of `featurize image` with the timm EfficientNet-Lite0 (packaged weights) on extreme images.

Each case is a hateful_memes-layout dataset of ``--rows`` copies (distinct files) of one image, featurized
by the real CLI in a fresh process with ``--batch-size 1 --workers 2`` (both DataLoader workers decode at
once) on the CPU. Peak memory is measured two ways: the RSS of the largest single process (``wait4``) and
the proportional set size summed over the CLI process and its DataLoader workers (PSS: pages shared by
the forked workers counted once; sampled from /proc every 20 ms). Cases:

- ``baseline``: a 500x400 JPEG photo (an ordinary meme): the reference for the ratios;
- ``strip-1x30000.png`` / ``strip-1x200000.png``: a 1-pixel-high strip (a 600-byte file; resizing the
  short side to 256 made it 256x7.7M, ~8 GB, before the aspect-ratio limit);
- ``strip-90x9000.png``: 1:100, the widest shape decoded (its transform costs 256x25600);
- ``photo-9000x9000.jpg`` / ``photo-9000x9000.png``: 81 Mpx, under the 89.5 Mpx bomb limit (decoded at
  a reduced size: JPEG draft mode / box reduction).

    flock /tmp/memeprobe-bench.lock python benchmarks/image_memory.py
    python benchmarks/image_memory.py --cases baseline photo-9000x9000.jpg --pythonpath /path/to/other/checkout

``--pythonpath`` runs another checkout's memeprobe (for a before/after table; do not run the strips with
code that lacks the limit on a shared machine: ~8 GB per worker). Goal (issue 24 item 3): every case
< 1 GB peak, all processes together.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

FEATURIZER = "timm:tf_efficientnet_lite0:packaged"


def _photo(w: int, h: int, seed: int) -> Image.Image:
    """A smooth random picture (upsampled noise), so that JPEG/PNG sizes are those of a photo, not of noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (max(2, h // 100), max(2, w // 100), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR)


CASES = {
    "baseline": lambda k: (_photo(500, 400, k), "jpg"),
    "strip-1x30000.png": lambda k: (Image.new("RGB", (30000, 1), (200, 10 + k, 10)), "png"),
    "strip-1x200000.png": lambda k: (Image.new("RGB", (1, 200000), (10, 200, 10 + k)), "png"),
    "strip-90x9000.png": lambda k: (_photo(90, 9000, k), "png"),
    "photo-9000x9000.jpg": lambda k: (_photo(9000, 9000, k), "jpg"),
    "photo-9000x9000.png": lambda k: (_photo(9000, 9000, k), "png"),
}


def generate(root: Path, case: str, rows: int) -> int:
    """The dataset of ``case``; returns the bytes of one image file."""
    (root / "img").mkdir(parents=True)
    with open(root / "train.jsonl", "w") as f:
        for k in range(rows):
            image, ext = CASES[case](k)
            path = root / "img" / f"{k}.{ext}"
            image.save(path, **({"quality": 90} if ext == "jpg" else {"compress_level": 1}))
            f.write(json.dumps({"id": str(k), "text": f"meme {k}", "img": f"img/{k}.{ext}", "label": k % 2}) + "\n")
    return path.stat().st_size


def _tree_pss(pid: int) -> int:
    """Proportional set size of ``pid`` and its descendants (from /proc; shared pages counted once)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
        todo += [c for c, pp in parent.items() if pp == p]
    return total


def measure(data: Path, store: Path, pythonpath: str | None) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, "-c", "from memeprobe.cli import main; main()", "featurize", "image", str(data),
           "--store", str(store), "--featurizer", FEATURIZER, "--batch-size", "1", "--workers", "2",
           "--device", "cpu", "--no-progress"]
    load = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tempfile.gettempdir())
    peak, done = [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_pss(proc.pid))
            done.wait(0.02)
    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    watcher.join()
    failed = [line for line in output.splitlines() if line.startswith("failed ")]
    return {"wall": time.perf_counter() - t, "exit": os.waitstatus_to_exitcode(status), "failed": failed,
            "single_mb": usage.ru_maxrss / 1024, "tree_mb": peak[0] / 2**20, "load": load,
            "tail": output.strip().splitlines()[-3:]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    ap.add_argument("--pythonpath", default=None, help="run the memeprobe found on this path instead")
    args = ap.parse_args(argv)
    cases = ["baseline"] + [c for c in args.cases if c != "baseline"]
    results = []
    with tempfile.TemporaryDirectory(prefix="image-memory-") as tmp:
        for case in cases:
            data = Path(tmp) / case
            size = generate(data, case, args.rows)
            m = measure(data, Path(tmp) / f"{case}.h5", args.pythonpath)
            if m["exit"] not in (0, 3):
                sys.exit(f"{case}: featurize exited {m['exit']}: {m['tail']}")
            results.append((case, size, m))
    base = results[0][2]["tree_mb"]
    print("case | file bytes | rows | rows failed (reason) | peak PSS, all processes MB | peak RSS, largest process MB"
          " | vs baseline | wall s | load avg (1 min)")
    print(" | ".join(["---"] * 9))
    for case, size, m in results:
        why = m["failed"][0].split(": ", 1)[1].split(" (")[0] if m["failed"] else ""
        failed = f"{len(m['failed'])}" + (f" ({why})" if why else "")
        print(f"{case} | {size:,} | {args.rows} | {failed} | {m['tree_mb']:.0f} | "
              f"{m['single_mb']:.0f} | {m['tree_mb'] / base:.2f}x | {m['wall']:.1f} | {m['load']:.2f}")


if __name__ == "__main__":
    main()
