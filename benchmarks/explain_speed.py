"""Wall time of ``memeprobe explain`` for a logreg head on real stores, beside ``memeprobe predict`` of the same
model and split (the baseline: load the model and the features, predict, write a file), both as a user runs them
(fresh processes, imports included), with the load average around each run.

    python benchmarks/explain_speed.py --hm /tmp/explain-stores/hm.h5 --semeval /tmp/explain-stores/sem.h5 \\
        --mami /tmp/explain-stores/mami.h5 --keep /tmp/explain-pages

Stores: ``memeprobe featurize all DATA --store S.h5 --featurizer st:minilm`` (Hateful Memes, MAMI: no images
in the shared copies) or ``--preset offline`` (SemEval-2021 T6 subtask 3, with its images). Prints a markdown
table; run it under ``flock /tmp/memeprobe-bench.lock`` so no other benchmark overlaps it.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEMEPROBE = [sys.executable, "-c", "from memeprobe.cli import main; main()"]
# name → (split to explain, train-head options); None for a store not given
CASES = {
    "hm": [("dev_seen", ["--feature-set", "st-minilm"]), ("test_unseen", ["--feature-set", "st-minilm"])],
    "semeval": [("dev", ["--feature-set", "st-minilm", "--feature-set", "timm-tf_efficientnet_lite0-packaged"])],
    "mami": [("validation", ["--feature-set", "st-minilm", "--target", "all"])],
}


def timed(args) -> tuple[float, tuple, str]:
    load = os.getloadavg()
    t0 = time.perf_counter()
    run = subprocess.run(MEMEPROBE + [str(a) for a in args], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        sys.exit(f"memeprobe {' '.join(map(str, args))} failed:\n{run.stdout}{run.stderr}")
    return seconds, load, run.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in CASES:
        ap.add_argument(f"--{name}", type=Path, help=f"{name} store (.h5)")
    ap.add_argument("--keep", type=Path, help="Write the pages here (one folder per store and split).")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="explain_speed_"))
    keep = a.keep or work
    rows = []
    for name, cases in CASES.items():
        store = getattr(a, name)
        if store is None:
            continue
        for split, options in cases:
            model = work / f"{name}.pt"
            if not model.exists():
                timed(["train-head", "logreg", "--store", store, *options, "--bootstrap", 0, "--out", model])
            p_s, p_load, _ = timed(["predict", model, "--store", store, "--split", split, "--out",
                                    work / f"{name}_{split}.out", "--format", "csv"])
            e_s, e_load, out = timed(["explain", model, "--store", store, "--split", split, "--out",
                                      keep / f"{name}_{split}"])
            after = os.getloadavg()
            what = re.search(r"(\d+ \S+ memes \(\d+ labelled\))", out).group(1)
            rows.append((name, split, what, p_s, e_s, p_load, e_load, after))
    print("| store | split | memes | predict (baseline) | explain | explain / predict | load avg 1/5/15 min "
          "(before predict; before explain; after) |")
    print("|---|---|---|---|---|---|---|")
    for name, split, what, p_s, e_s, p_load, e_load, after in rows:
        loads = "; ".join("/".join(f"{x:.1f}" for x in la) for la in (p_load, e_load, after))
        print(f"| {name} | {split} | {what} | {p_s:.1f} s | {e_s:.1f} s | {e_s / p_s:.2f} | {loads} |")


if __name__ == "__main__":
    main()
