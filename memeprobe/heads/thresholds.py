"""Decision thresholds and the multi-label decision rule, fitted on out-of-fold (or dev) predictions.

For every candidate cut (each distinct probability) the metric is computed in one vectorised pass;
the chosen threshold is the midpoint between the best cut and the next lower probability. Binary:
one threshold (accuracy by default, i.e. for the class prior of the data it is tuned on).
Multi-label: one global threshold (for F1 that is micro-F1 = F1 of the flattened matrix) and
per-class thresholds shrunk towards it by ``n_pos / (n_pos + shrink)``, so a class with few
positives keeps (nearly) the global cut; the shrinkage is chosen among ``SHRINKS`` by the pooled
score on the same (out-of-fold) predictions (micro-F1, or the mean per-class score). The decision
rule keeps at least ``min_labels`` (1 when at least 95 % of training rows have a label) and at most
``max_labels`` labels per row (the 95th percentile of the training label count) and, with a
``parent`` column (MAMI misogynous), never sets a child label when the parent is 0. A single-label
multi-class target (every training row has exactly one class) gets ``min = max = 1`` and thresholds
0: the decision is the argmax.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from memeprobe.data.mami import LABEL_NAMES as MAMI_TYPES
from memeprobe.errors import ConfigError
from memeprobe.heads.choices import METRICS

SHRINKS = (0.0, 20.0, 100.0, np.inf)  # pseudo-positives pulling a class threshold towards the global one
NO_RULE = {"min_labels": 0, "max_labels": 0, "parent": -1}


def default_metric(y, names=None) -> str:
    """Threshold metric: accuracy (binary), two-class macro-F1 (MAMI columns, as its scorer), else F1."""
    if np.asarray(y).ndim == 1:
        return "accuracy"
    return "macro_f1" if set(MAMI_TYPES) <= set(names or []) else "f1"


def best_threshold(y, p, metric="accuracy") -> float:
    """Threshold on ``p`` maximising ``metric`` (predict 1 when ``p >= t``) on labels ``y``."""
    if metric not in METRICS:
        raise ConfigError(f"unknown threshold metric {metric!r}; choose one of {', '.join(METRICS)}")
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
    # the "predict nothing" cut (above every score) is a candidate too
    tp, fp, fn, tn = (np.r_[a0, a] for a0, a in ((0, tp), (0, fp), (P, fn), (N, tn)))
    cuts = np.r_[min(ps[0] + 1e-6, 1.0 + 1e-6), ps[last]]
    if metric == "accuracy":
        score = (tp + tn) / len(ys)
    else:
        f1_pos = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        f1_neg = 2 * tn / np.maximum(2 * tn + fn + fp, 1)
        score = f1_pos if metric == "f1" else (f1_pos + f1_neg) / 2
    i = int(np.argmax(score))
    if i == 0:
        return float(cuts[0])
    lower = cuts[i + 1] if i + 1 < len(cuts) else cuts[i] - 1e-6
    return float((cuts[i] + lower) / 2)


def _pooled(y, pred, metric) -> float:
    if metric == "f1":
        return f1_score(y, pred, average="micro", zero_division=1)
    if metric == "accuracy":
        return accuracy_score(y.ravel(), pred.ravel())
    return float(np.mean([f1_score(y[:, k], pred[:, k], average="macro", labels=[0, 1], zero_division=0)
                          for k in range(y.shape[1])]))


def tune_thresholds(y, P, metric=None, shrinks=SHRINKS) -> np.ndarray:
    """Thresholds ``(K,)``: binary ``y`` (n,) → one (default metric accuracy); multi-hot → per class
    (default F1), shrunk towards the global threshold for classes with few positives."""
    y, P = np.asarray(y), np.asarray(P)
    if y.ndim == 1:
        return np.array([best_threshold(y, P, metric or "accuracy")])
    if exclusive(y):
        return np.zeros(y.shape[1])
    metric = metric or "f1"
    glob = best_threshold(y.ravel(), P.ravel(), metric)
    pos = y.sum(0)
    own = np.array([best_threshold(y[:, k], P[:, k], metric) if 0 < pos[k] < len(y) else glob
                    for k in range(y.shape[1])])
    best = None
    for shrink in shrinks:
        w = pos / (pos + shrink) if np.isfinite(shrink) else np.zeros(len(pos))
        t = w * own + (1 - w) * glob
        score = _pooled(y, (P >= t).astype(int), metric)
        if best is None or score > best[0]:
            best = (score, t)
    return best[1]


def exclusive(Y) -> bool:
    """A single-label multi-class target: every row has exactly one class."""
    Y = np.asarray(Y)
    return Y.ndim == 2 and Y.shape[1] > 1 and len(Y) > 0 and bool((Y.sum(1) == 1).all())


def fit_rule(Y, names=None) -> dict:
    """The multi-label decision rule learned from training targets ``Y`` (n, K)."""
    if exclusive(Y):
        return {"min_labels": 1, "max_labels": 1, "parent": -1}
    card = np.asarray(Y).sum(1)
    names = list(names or [])
    parent = names.index("misogynous") if "misogynous" in names and set(MAMI_TYPES) <= set(names) else -1
    return {"min_labels": int(np.mean(card >= 1) >= 0.95), "max_labels": int(max(1, np.ceil(np.quantile(card, 0.95)))),
            "parent": parent}


def decide(P, thresholds, rule=None) -> np.ndarray:
    """0/1 decisions of probabilities ``P`` ((n,) or (n, K)) at ``thresholds`` under ``rule``."""
    P = np.asarray(P, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    if P.ndim == 1:
        return (P >= t.ravel()[0]).astype(np.int64)
    pred = (P >= t).astype(np.int64)
    rule = {**NO_RULE, **(rule or {})}
    if len(P) == 0:
        return pred
    margin = P - t
    if rule["min_labels"] and P.shape[1]:
        empty = pred.sum(1) == 0
        pred[empty, np.argmax(margin[empty], 1)] = 1
    if rule["max_labels"] and P.shape[1] > rule["max_labels"]:
        over = pred.sum(1) > rule["max_labels"]
        if over.any():
            keep = np.argsort(-np.where(pred[over] == 1, margin[over], -np.inf), 1)[:, :rule["max_labels"]]
            capped = np.zeros_like(pred[over])
            np.put_along_axis(capped, keep, 1, 1)
            pred[over] = capped
    if rule["parent"] >= 0:
        pred[pred[:, rule["parent"]] == 0] = 0
    return pred
