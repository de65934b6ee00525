"""The shift audit's domain classifier (memeprobe.leakage.shift): cost at 10k x 1536, and agreement with
sklearn's LogisticRegression on real stores.

Speed (``--rows`` x ``--dim`` float32 Gaussian vectors, 80 % train and 20 % a split whose mean is moved along
8 axes): wall time (best of ``--repeats``, interleaved) of ``Shifts(...)`` (standardising, groups, the
nearest-train distance of every row for coverage) and of ``measure`` (the domain classifier: 5 grouped folds
fitting the labels and 100 shuffles, 1,000 bootstrap draws), against the baseline of one sklearn
``LogisticRegression`` per fold on the same standardised features and folds (labels only: no permutation
baseline, no CI). Goal (issue 25): the domain classifier < 10 s for 10k x 1536 on 2 cores.

Agreement (``--store STORE:FEATURES:SPLIT``, repeatable): the out-of-fold AUROC of the ridge probe and of
LogisticRegression (default C=1, lbfgs) with the same folds, per store and split; then the AUROC and the
permutation mean for ridge penalties 0.01, 0.1, 1 and 10 (x the fitted rows; the default is ``shift.RIDGE``).

    flock /tmp/memeprobe-bench.lock .venv/bin/python benchmarks/shift_audit.py \\
        --store /tmp/mami.h5:st-minilm/text_embed:validation --store /tmp/mami.h5:st-minilm/text_embed:test
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info

from memeprobe.leakage import shift
from memeprobe.store import FeatureStore


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def logistic_oof(X, in_split, fold) -> np.ndarray:
    """Out-of-fold LogisticRegression scores on ``X`` (the classifier's standardised inputs) with the given folds."""
    out = np.empty(len(X))
    for f in np.unique(fold):
        held = fold == f
        model = LogisticRegression(max_iter=1000).fit(X[~held], in_split[~held])
        out[held] = model.decision_function(X[held])
    return out


def speed(rows: int, dim: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    n_split = rows // 5
    X = rng.normal(size=(rows, dim)).astype(np.float32)
    X[rows - n_split:, :8] += 0.15
    splits = np.array(["train"] * (rows - n_split) + ["split"] * n_split, dtype=object)
    print(f"\n### Speed: {rows} x {dim} float32 ({rows - n_split} train, {n_split} split), best of {repeats}\n")
    before = load()
    best = {"prep": np.inf, "measure": np.inf, "baseline": np.inf}
    for _ in range(repeats):  # interleaved
        t = time.perf_counter()
        prepared = shift.Shifts(X, splits)
        best["prep"] = min(best["prep"], time.perf_counter() - t)
        t = time.perf_counter()
        r = prepared.measure("split", seed=0)
        best["measure"] = min(best["measure"], time.perf_counter() - t)
        t = time.perf_counter()
        base = shift.auroc(logistic_oof(prepared.Z, r.in_split, r.fold), r.in_split)
        best["baseline"] = min(best["baseline"], time.perf_counter() - t)
    print(f"load before {before}, after {load()} (1/5/15 min)\n")
    print("| step | wall s | ratio to sklearn | AUROC |")
    print("|---|---|---|---|")
    print(f"| sklearn LogisticRegression, 5 folds (labels only: no permutations, no CI) | {best['baseline']:.2f} | 1.00 "
          f"| {base:.4f} |")
    print(f"| domain classifier (`measure`: 5 folds x (labels + {shift.PERMUTATIONS} shuffles), "
          f"{shift.DRAWS} bootstrap draws) | {best['measure']:.2f} | {best['measure'] / best['baseline']:.2f} | "
          f"{r.auroc:.4f} [{r.ci[0]:.4f}, {r.ci[1]:.4f}] |")
    print(f"| coverage and set-up (`Shifts(...)`: standardising, groups, nearest-train distance of every row) | "
          f"{best['prep']:.2f} | {best['prep'] / best['baseline']:.2f} | uncovered {r.uncovered:.3f} |")
    print(f"\nGoal: domain classifier < 10 s: {'met' if best['measure'] < 10 else 'NOT met'} ({best['measure']:.2f} s)")


def agreement(specs: list[str]) -> None:
    print("\n### Agreement with LogisticRegression (same folds)\n")
    print("| store | features | split vs train | memes | ridge probe AUROC [95 % CI] | permuted p95 | logistic AUROC "
          "| difference | ridge s | logistic s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for spec in specs:
        path, ref, split = spec.rsplit(":", 2)
        with FeatureStore.open(path) as store:
            prepared = shift.Shifts.from_store(store, ref, [split])
        t = time.perf_counter()
        r = prepared.measure(split, seed=0)
        ridge_s = time.perf_counter() - t
        t = time.perf_counter()
        use = prepared.in_train | (prepared.splits == split)  # the rows ``measure`` fitted, in the same order
        logit = shift.auroc(logistic_oof(prepared.Z[use], r.in_split, r.fold), r.in_split)
        logit_s = time.perf_counter() - t
        print(f"| {os.path.basename(path)} | {ref} | {split} | {r.n_split} vs {r.n_train} | {r.auroc:.4f} "
              f"[{r.ci[0]:.4f}, {r.ci[1]:.4f}] | {r.permutation_p95:.4f} | {logit:.4f} | {r.auroc - logit:+.4f} "
              f"| {ridge_s:.2f} | {logit_s:.2f} |")


def ridge_grid(specs: list[str], grid=(0.01, 0.1, 1.0, 10.0)) -> None:
    """The domain AUROC and the permutation mean per ridge penalty (``shift.RIDGE``, x fitted rows)."""
    print("\n### Ridge penalty (x fitted rows): AUROC (permutation mean)\n")
    print("| store | split | " + " | ".join(f"RIDGE {g}" for g in grid) + " |")
    print("|---|---|" + "---|" * len(grid))
    default = shift.RIDGE
    for spec in specs:
        path, ref, split = spec.rsplit(":", 2)
        with FeatureStore.open(path) as store:
            prepared = shift.Shifts.from_store(store, ref, [split])
        cells = []
        for g in grid:
            shift.RIDGE = g
            r = prepared.measure(split, seed=0)
            cells.append(f"{r.auroc:.3f} ({r.permutation_mean:.3f})")
        shift.RIDGE = default
        print(f"| {os.path.basename(path)} | {split} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--repeats", type=int, default=3, help="Timings: best of this many (interleaved).")
    ap.add_argument("--store", action="append", default=[], metavar="STORE:FEATURES:SPLIT")
    args = ap.parse_args()
    threads = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
    print(f"cores {os.cpu_count()}, BLAS threads {threads}, load {load()}")
    speed(args.rows, args.dim, args.repeats)
    if args.store:
        agreement(args.store)
        ridge_grid(args.store)


if __name__ == "__main__":
    main()
