"""How fast a wrong path or name is reported (issue 26: < 1.5 s wall on a quiet machine).

Builds a small store (the demo sample's texts, ``pixels`` features: no model weights) and a saved logreg model
in a temp folder, then runs each command below in a fresh process (imports included) with one thing wrong: a
missing store, split, feature set or model file. Prints wall seconds, best and median of ``--repeats``, the
ratio to the in-run baseline ``memeprobe --help`` (the CLI's own start-up, the floor of any answer), the exit
code and the one line the command printed, with load averages.

    .venv/bin/python benchmarks/error_latency.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEMEPROBE = [sys.executable, "-c", "from memeprobe.cli import main; main()"]


def cli(*args, check=True):
    return subprocess.run([*MEMEPROBE, *map(str, args)], capture_output=True, text=True, check=check)


def cases(d: Path) -> dict[str, list]:
    store, model = d / "s.h5", d / "m.pt"
    return {
        "train-head: missing store": ["train-head", "logreg", "--store", d / "nope.h5", "--feature-set", "pixels",
                                      "--out", d / "o.pt"],
        "train-head: unknown feature set": ["train-head", "logreg", "--store", store, "--feature-set", "pixel",
                                            "--out", d / "o.pt"],
        "train-head: unknown split": ["train-head", "mlp", "--store", store, "--feature-set", "pixels",
                                      "--eval-split", "test", "--out", d / "o.pt"],
        "predict: missing model": ["predict", d / "nope.pt", "--store", store, "--split", "test_unseen",
                                   "--out", d / "o.csv"],
        "predict: unknown split": ["predict", model, "--store", store, "--split", "test", "--out", d / "o.csv"],
        "sweep: unknown feature set": ["sweep", "--store", store, "--feature-set", "pixel"],
        "explain: unknown split": ["explain", model, "--store", store, "--split", "test", "--out", d / "page"],
        "leakage report: missing store": ["leakage", "report", d / "data", "--store", d / "nope.h5",
                                          "--out", d / "leak"],
        "featurize: missing dataset": ["featurize", "all", d / "nodata", "--store", d / "x.h5", "--preset", "offline"],
        "store info: missing store": ["store", "info", d / "nope.h5"],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cli("make-sample", d / "data", "--n", 200)
        cli("featurize", "image", d / "data", "--store", d / "s.h5", "--featurizer", "pixels", "--no-progress")
        cli("train-head", "logreg", "--store", d / "s.h5", "--feature-set", "pixels", "--out", d / "m.pt")
        print(f"# error_latency: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start\n")
        print("| command, what is wrong | best s | median s | best / `--help` | exit | the line printed |")
        print("|---|---|---|---|---|---|")
        floor = None
        for name, args in {"baseline: memeprobe --help": ["--help"], **cases(d)}.items():
            walls, run = [], None
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                run = cli(*args, check=False)
                walls.append(time.perf_counter() - t0)
            floor = floor or min(walls)
            line = (run.stderr.strip().splitlines() or [""])[-1].replace(tmp, "TMP").replace("|", "\\|")
            print(f"| {name} | {min(walls):.2f} | {statistics.median(walls):.2f} | {min(walls) / floor:.2f} | "
                  f"{run.returncode} | {line[:110]} |")
        print(f"\n# load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")


if __name__ == "__main__":
    main()
