"""Decision thresholds tuned on the dev split (one for binary, one per class for multi-label).

For every candidate cut (each distinct dev probability) the metric is computed in one
vectorised pass; the chosen threshold is the midpoint between the best cut and the next
lower probability, so dev predictions are unchanged but the cut is not glued to one score.
A class without both values in dev keeps 0.5.
"""
from __future__ import annotations

import numpy as np

from memeprobe.errors import MemeprobeError

METRICS = ("accuracy", "f1", "macro_f1")


def best_threshold(y, p, metric="accuracy") -> float:
    """Threshold on ``p`` maximising ``metric`` (predict 1 when ``p >= t``) on labels ``y``."""
    if metric not in METRICS:
        raise MemeprobeError(f"unknown threshold metric {metric!r}; choose one of {', '.join(METRICS)}")
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=np.float64)
    if len(np.unique(y)) < 2:
        return 0.5
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    last = np.r_[ps[1:] != ps[:-1], True]  # end of each group of equal scores
    tp = np.cumsum(ys)[last]
    fp = np.cumsum(1 - ys)[last]
    P, N = ys.sum(), len(ys) - ys.sum()
    fn, tn = P - tp, N - fp
    if metric == "accuracy":
        score = (tp + tn) / len(ys)
    else:
        f1_pos = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        f1_neg = 2 * tn / np.maximum(2 * tn + fn + fp, 1)
        score = f1_pos if metric == "f1" else (f1_pos + f1_neg) / 2
    cuts = ps[last]
    i = int(np.argmax(score))
    lower = cuts[i + 1] if i + 1 < len(cuts) else cuts[i] - 1e-6
    return float((cuts[i] + lower) / 2)


def tune_thresholds(y, P, metric=None) -> np.ndarray:
    """Thresholds ``(K,)``: binary ``y`` (n,) → one (default metric accuracy); multi-hot → per class (F1)."""
    y, P = np.asarray(y), np.asarray(P)
    if y.ndim == 1:
        return np.array([best_threshold(y, P, metric or "accuracy")])
    return np.array([best_threshold(y[:, k], P[:, k], metric or "f1") for k in range(y.shape[1])])
