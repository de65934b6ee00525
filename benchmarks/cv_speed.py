"""Time of the default selection protocol: 5-fold CV logreg over the 7-C path on 8.5k x 1536, and
the retrieval head's fit (k by leave-one-out) on the same data.

    .venv/bin/python benchmarks/cv_speed.py [--n 8500] [--dim 1536] [--baseline]

Data: a planted linear signal in 1536 dims (about the Hateful Memes train size with CLIP
image+text embeddings). Prints the wall time of ``LogRegHead().fit`` (CV over the C path, warm
starts, folds in two threads, one shared standardisation, then the refit), the out-of-fold AUROC
and, with ``--baseline``, sklearn's ``LogisticRegressionCV(Cs=7, cv=5)`` on the same data in the
same run (the ratio is the figure to read), with the load average. Goals (issues 9, 15): CV logreg
< 10 s and retrieval < 5 s on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def data(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    w = rng.normal(size=dim) * (rng.random(dim) < 0.05)
    y = (X @ w + rng.normal(size=n) * 2 > 1.0).astype(int)
    return X, y


def time_cv(X, y) -> tuple[float, object]:
    from memeprobe.heads.logreg import LogRegHead

    start = time.perf_counter()
    head = LogRegHead().fit(X, y)
    return time.perf_counter() - start, head


def time_sklearn(X, y) -> float:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler

    warnings.simplefilter("ignore", FutureWarning)
    start = time.perf_counter()
    LogisticRegressionCV(Cs=np.logspace(-4, 2, 7), cv=5, scoring="roc_auc", max_iter=500, n_jobs=2).fit(
        StandardScaler().fit_transform(X), y)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8500)
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--baseline", action="store_true", help="also time sklearn LogisticRegressionCV")
    a = ap.parse_args()
    from sklearn.metrics import roc_auc_score

    X, y = data(a.n, a.dim)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    seconds, head = time_cv(X, y)
    print(f"memeprobe 5-fold CV logreg, 7 C, {a.n} x {a.dim}: {seconds:.2f} s (C={head.C_}, "
          f"out-of-fold AUROC {roc_auc_score(y, head.oof_):.4f})")
    from memeprobe.heads.retrieval import K_CANDIDATES, RetrievalHead

    start = time.perf_counter()
    knn = RetrievalHead().fit(X, y)
    print(f"memeprobe retrieval head (FAISS, k by leave-one-out over {len(K_CANDIDATES)} values): "
          f"{time.perf_counter() - start:.2f} s (k={knn.k_}, leave-one-out AUROC {roc_auc_score(y, knn.oof_):.4f})")
    if a.baseline:
        base = time_sklearn(X, y)
        print(f"sklearn LogisticRegressionCV(Cs=7, cv=5, n_jobs=2): {base:.2f} s; ratio {seconds / base:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
