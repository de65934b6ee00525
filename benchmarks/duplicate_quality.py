"""Precision and recall of `leakage report`'s near-duplicate pairs: on the planted pairs of synthetic samples
(`memeprobe make-sample`, its ``ground_truth.json``) and on the judged SemEval-2021 Task 6 pairs
(``duplicate_quality_semeval.json``).

For each sample (``--n`` memes per seed of ``--seeds``) the real CLI writes the sample, featurizes it with the
offline preset (MiniLM texts, EfficientNet-Lite0 ImageNet pictures, perceptual hash) and runs `leakage report`
twice: with the cosine thresholds chosen from the data (the default, ``memeprobe.leakage.calibrate``) and with
the former fixed ones (``--text-threshold 0.9 --image-threshold 0.95 --phash-distance 10``, the baseline, same
store, same run). A reported pair is right when it is a planted pair (the generator keeps every other pair apart:
no shared caption, phash distance >= 13, Jaccard <= 0.6). The table gives precision and recall over all pairs and
over the pairs an image detector alone found (``found_by`` only ``image_cosine``/``image_phash``), the thresholds
used, the wall time of the report and the load average before it.

With ``--semeval DATA --store S`` (a store of DATA featurized with ``--preset offline``) it also scores the
pairs that an image detector found against the judged ones: "same picture" pairs found (recall) and
"different" pairs reported (false positives); pairs nobody judged are counted apart.

    flock /tmp/memeprobe-bench.lock .venv/bin/python benchmarks/duplicate_quality.py --seeds 0 1 2
    flock /tmp/memeprobe-bench.lock .venv/bin/python benchmarks/duplicate_quality.py --seeds \\
        --semeval ../shared/data/semeval2021_task6 --store /tmp/sem.h5

Goal (issue 25 item 5): precision >= 0.98 at recall >= 0.98 on the planted pairs.
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

FIXED = ["--text-threshold", "0.9", "--image-threshold", "0.95", "--phash-distance", "10"]  # before issue 25
CONFIGS = (("chosen from the data", []), ("former fixed 0.9 / 0.95 / 10", FIXED))
IMAGE = {"image_cosine", "image_phash"}  # near-duplicate picture detectors
JUDGED = Path(__file__).with_name("duplicate_quality_semeval.json")


def cli(*args: str) -> None:
    exe = Path(sys.executable).with_name("memeprobe")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "memeprobe.cli"]
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode:
        sys.exit(f"memeprobe {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def report(data: Path, store: Path, out: Path, extra: list[str]) -> tuple[dict, float, float]:
    """report.json of one `leakage report`, its wall time and the load average before it."""
    load = os.getloadavg()[0]
    t = time.perf_counter()
    cli("leakage", "report", str(data), "--store", str(store), "--out", str(out), "--no-progress", *extra)
    return json.loads((out / "report.json").read_text()), time.perf_counter() - t, load


def key(split_a, id_a, split_b, id_b) -> frozenset:
    return frozenset([(split_a, id_a), (split_b, id_b)])


def reported(doc: dict) -> dict[frozenset, dict]:
    return {key(p["split_a"], p["id_a"], p["split_b"], p["id_b"]): p for p in doc["pairs"]}


def thresholds(doc: dict) -> str:
    t = doc["thresholds"]
    return " / ".join(f"{t[k]['value']}" if k in t else "-" for k in ("text_cosine", "image_cosine", "image_phash"))


def score(found: set, truth: set) -> tuple[int, int, float, float]:
    hit = len(found & truth)
    return len(found), hit, hit / len(found) if found else float("nan"), hit / len(truth) if truth else float("nan")


def synthetic(n: int, seed: int, tmp: Path) -> list[tuple]:
    data, store = tmp / f"sample-{seed}", tmp / f"sample-{seed}.h5"
    cli("make-sample", str(data), "--n", str(n), "--seed", str(seed))
    cli("featurize", "all", str(data), "--store", str(store), "--preset", "offline", "--no-progress")
    truth_doc = json.loads((data / "ground_truth.json").read_text())
    truth = {key(p["a"]["split"], p["a"]["id"], p["b"]["split"], p["b"]["id"]): p for p in truth_doc["pairs"]}
    image_truth = {k for k, p in truth.items() if p["image_relation"] == "near"}
    rows = []
    for name, extra in CONFIGS:
        doc, wall, load = report(data, store, tmp / f"out-{seed}-{len(rows)}", extra)
        pairs = reported(doc)
        image_only = {k for k, p in pairs.items() if set(p["found_by"].split("+")) <= IMAGE}
        missed = sorted(f"{truth[k]['kind']}/{truth[k]['variant']}" for k in set(truth) - set(pairs))
        n_image, _, image_precision, image_recall = score(image_only, image_truth)
        rows.append((seed, n, name, thresholds(doc), len(truth), *score(set(pairs), set(truth)),
                     n_image, image_precision, image_recall, ", ".join(missed) or "-", wall, load))
    return rows


def semeval(data: Path, store: Path, tmp: Path) -> list[tuple]:
    judged = json.loads(JUDGED.read_text())
    same = {key(*a, *b) for a, b in judged["same_picture"]}
    different = {key(*a, *b) for a, b in judged["different"]}
    rows = []
    for name, extra in CONFIGS:
        doc, wall, load = report(data, store, tmp / f"semeval-{len(rows)}", extra)
        image = {k for k, p in reported(doc).items() if "image_" in p["found_by"]}
        rows.append((name, thresholds(doc), len(image), len(image & same), len(same), len(image & different),
                     len(image - same - different), wall, load))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="memes per synthetic sample")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="one synthetic sample each")
    ap.add_argument("--semeval", type=Path, help="the SemEval-2021 Task 6 folder (../shared/data/semeval2021_task6)")
    ap.add_argument("--store", type=Path, help="its store, featurized with --preset offline")
    args = ap.parse_args(argv)
    if (args.semeval is None) != (args.store is None):
        ap.error("--semeval and --store go together")
    with tempfile.TemporaryDirectory(prefix="duplicate-quality-") as tmp:
        rows = [r for seed in args.seeds for r in synthetic(args.n, seed, Path(tmp))]
        sem = semeval(args.semeval, args.store, Path(tmp)) if args.semeval else []
    if rows:
        print("seed | memes | thresholds | text cos / image cos / phash bits | planted | reported | right | "
              "precision | recall | image-only reported | image-only precision | image-only recall | planted pairs missed | "
              "report wall s | load avg (1 min)")
        print(" | ".join(["---"] * 15))
        for r in rows:
            print(f"{r[0]} | {r[1]:,} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} | {r[7]:.3f} | {r[8]:.3f} | "
                  f"{r[9]} | {r[10]:.3f} | {r[11]:.3f} | {r[12]} | {r[13]:.1f} | {r[14]:.2f}")
    if sem:
        print("\nSemEval-2021 T6 | thresholds | image pairs reported | judged same picture found | judged same "
              "picture | judged different reported | not judged | report wall s | load avg (1 min)")
        print(" | ".join(["---"] * 9))
        for r in sem:
            print(" | ".join(str(x) if not isinstance(x, float) else f"{x:.2f}" for x in r))


if __name__ == "__main__":
    main()
