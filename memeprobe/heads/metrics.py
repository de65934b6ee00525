"""Evaluation metrics, computed the way the competitions' scorers compute them.

* Hateful Memes: AUROC with sklearn ``roc_auc_score`` (+ bootstrap 95 % CI), accuracy.
* MAMI sub-task A: macro-F1 = mean of the F1 of both classes; sub-task B: each category's
  two-class macro-F1 weighted by its number of gold positives (MIND-Lab ``evaluation.py``).
* SemEval-2021 T6: micro and macro F1 over the multi-hot matrix with ``zero_division=1``
  (the task's ``scorer/task1_3.py``).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

from memeprobe.data.mami import LABEL_NAMES as MAMI_TYPES  # the columns MAMI scores in sub-task B
from memeprobe.heads.thresholds import exclusive


def _two_classes(y) -> bool:
    return len(np.unique(y)) == 2


def auroc(y, p) -> float:
    """sklearn AUROC; NaN when ``y`` has a single class."""
    return float(roc_auc_score(y, p)) if _two_classes(y) else float("nan")


def bootstrap_auroc_ci(y, p, n_boot=1000, seed=0, level=0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUROC (resamples with one class are skipped)."""
    y, p = np.asarray(y), np.asarray(p)
    if not _two_classes(y) or n_boot <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if _two_classes(y[idx]):
            scores.append(roc_auc_score(y[idx], p[idx]))
    alpha = (1 - level) / 2
    return float(np.quantile(scores, alpha)), float(np.quantile(scores, 1 - alpha))


def binary_metrics(y, p, threshold=0.5, n_boot=1000, seed=0) -> dict:
    """AUROC (+CI), accuracy at 0.5 and at ``threshold``, F1 and MAMI-A macro-F1 at ``threshold``."""
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=np.float64)
    pred = (p >= threshold).astype(int)
    low, high = bootstrap_auroc_ci(y, p, n_boot, seed)
    return {
        "n": int(len(y)), "positives": int(y.sum()),
        "auroc": auroc(y, p), "auroc_ci_low": low, "auroc_ci_high": high,
        "acc@0.5": float(accuracy_score(y, (p >= 0.5).astype(int))),
        "threshold": float(threshold),
        "acc": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0)),
    }


def mami_weighted_f1(Y, pred) -> float:
    """MAMI sub-task B: per-category two-class macro-F1, weighted by gold positives."""
    Y, pred = np.asarray(Y).astype(int), np.asarray(pred).astype(int)
    support = Y.sum(0)
    if support.sum() == 0:
        return float("nan")
    per = [f1_score(Y[:, k], pred[:, k], average="macro", labels=[0, 1], zero_division=0) for k in range(Y.shape[1])]
    return float(np.dot(per, support) / support.sum())


def multilabel_metrics(Y, P, thresholds=0.5, names=None, pred=None) -> dict:
    """Micro/macro F1 (SemEval-2021 scorer) at 0.5 and of the decisions ``pred`` (default: ``P >=
    thresholds``), per-class F1; with the MAMI columns, task-A macro-F1 and task-B weighted F1."""
    Y, P = np.asarray(Y).astype(int), np.asarray(P, dtype=np.float64)
    K = Y.shape[1]
    names = list(names) if names is not None else [str(k) for k in range(K)]
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (K,))
    pred = (P >= t).astype(int) if pred is None else np.asarray(pred).astype(int)
    pred05 = (P >= 0.5).astype(int)
    aurocs = [auroc(Y[:, k], P[:, k]) for k in range(K)]
    valid = [a for a in aurocs if not np.isnan(a)]
    out = {
        "n": int(len(Y)),
        "micro_f1": float(f1_score(Y, pred, average="micro", zero_division=1)),
        "macro_f1": float(f1_score(Y, pred, average="macro", zero_division=1)),
        "micro_f1@0.5": float(f1_score(Y, pred05, average="micro", zero_division=1)),
        "macro_f1@0.5": float(f1_score(Y, pred05, average="macro", zero_division=1)),
        "labels_per_row": float(pred.sum(1).mean()) if len(pred) else float("nan"),
        "macro_auroc": float(np.mean(valid)) if valid else float("nan"),
        "per_class_f1": {n: float(f) for n, f in zip(names, f1_score(Y, pred, average=None, zero_division=1))},
    }
    if exclusive(Y):  # single-label multi-class: accuracy of the argmax
        out["accuracy"] = float((pred == Y).all(1).mean())
    if set(MAMI_TYPES) <= set(names):  # sub-task B scores only the four types (--target all adds misogynous)
        b = [names.index(n) for n in MAMI_TYPES]
        out["mami_b_f1"] = mami_weighted_f1(Y[:, b], pred[:, b])
        if "misogynous" in names:
            a = names.index("misogynous")
            out["mami_a_f1"] = float(f1_score(Y[:, a], pred[:, a], average="macro", labels=[0, 1], zero_division=0))
    return out


def evaluate(y, p, thresholds, names=None, n_boot=1000, seed=0, pred=None) -> dict:
    """Binary or multi-label metrics depending on the shape of ``y`` (``pred``: the decisions, when a
    decision rule makes them differ from plain thresholds)."""
    if np.asarray(y).ndim == 1:
        return binary_metrics(y, p, float(np.ravel(thresholds)[0]), n_boot=n_boot, seed=seed)
    return multilabel_metrics(y, p, thresholds, names, pred=pred)


def baselines(y_ref, y, names=None, draws=20, seed=0) -> dict[str, dict]:
    """Metrics of trivial predictors on labels ``y``, fitted on the reference labels ``y_ref``:
    binary: majority (constant prior) and stratified random; multi-label: the most frequent label
    set, the k most frequent labels (k = mean label count) and random labels at each class's prior."""
    y_ref, y = np.asarray(y_ref).astype(int), np.asarray(y).astype(int)
    rng = np.random.default_rng(seed)
    prior = y_ref.mean(0)

    def mean_over(fn):
        runs = [fn(rng.random(y.shape)) for _ in range(draws)]
        return {k: float(np.mean([r[k] for r in runs])) if isinstance(v, float) else v
                for k, v in runs[0].items() if not isinstance(v, dict)}

    if y.ndim == 1:
        out = {"majority": binary_metrics(y, np.full(len(y), prior), 0.5, n_boot=0),
               "random": mean_over(lambda r: binary_metrics(y, r, 1 - prior, n_boot=0))}
        for m in out.values():
            m.pop("threshold")
        return out
    rows, counts = np.unique(y_ref, axis=0, return_counts=True)
    k = int(round(y_ref.sum(1).mean()))
    top = np.zeros(y.shape[1], int)
    top[np.argsort(-prior, kind="stable")[:k]] = 1
    out = {"most-frequent set": multilabel_metrics(y, np.tile(rows[np.argmax(counts)], (len(y), 1)), 0.5, names),
           f"top-{k} labels": multilabel_metrics(y, np.tile(top, (len(y), 1)), 0.5, names),
           "random": mean_over(lambda r: multilabel_metrics(y, r, 1 - prior, names))}
    for m in out.values():
        m.pop("per_class_f1", None)
    return out


def dev_score(Y, scores) -> float:
    """Threshold-free model-selection score: AUROC (one column) or macro AP over classes with positives."""
    Y = np.asarray(Y)
    if Y.ndim == 1 or Y.shape[1] == 1:
        s = auroc(Y.ravel(), np.asarray(scores).ravel())
        return -np.inf if np.isnan(s) else s
    keep = Y.sum(0) > 0
    if not keep.any():
        return -np.inf
    return float(average_precision_score(Y[:, keep], np.asarray(scores)[:, keep], average="macro"))


def _prf(p_num, p_den, r_num, r_den) -> tuple[float, float, float]:
    p = p_num / p_den if p_den else 0.0
    r = r_num / r_den if r_den else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def span_f1(gold, pred) -> dict:
    """SemEval-2021 Task 6 subtask 2 span F1 (the task's ``scorer/task2.py``).

    ``gold`` and ``pred``: one iterable of ``(start, end, technique)`` per meme (same order; end exclusive).
    Each predicted span earns |overlap with every same-technique gold span of its meme| / |predicted span|
    (summed over those gold spans); precision = earned / number of predicted spans. Recall is the same from
    the gold side; both are micro-averaged over techniques. Returns precision, recall, f1, counts and
    ``per_technique`` {technique: {precision, recall, f1, n_gold, n_pred}}."""
    gold, pred = list(gold), list(pred)
    if len(gold) != len(pred):
        raise ValueError(f"span_f1: {len(gold)} gold memes but {len(pred)} predicted")
    num_p, num_r, n_p, n_g = Counter(), Counter(), Counter(), Counter()
    for g_spans, p_spans in zip(gold, pred):
        g_spans, p_spans = list(g_spans), list(p_spans)
        for _, _, t in g_spans:
            n_g[t] += 1
        for ps, pe, pt in p_spans:
            n_p[pt] += 1
            for gs, ge, gt in g_spans:
                if gt == pt:
                    inter = max(0, min(pe, ge) - max(ps, gs))
                    num_p[pt] += inter / (pe - ps)
                    num_r[pt] += inter / (ge - gs)
    per = {}
    for t in sorted(set(n_g) | set(n_p), key=str):
        p, r, f = _prf(num_p[t], n_p[t], num_r[t], n_g[t])
        per[t] = {"precision": p, "recall": r, "f1": f, "n_gold": n_g[t], "n_pred": n_p[t]}
    p, r, f = _prf(sum(num_p.values()), sum(n_p.values()), sum(num_r.values()), sum(n_g.values()))
    return {"precision": p, "recall": r, "f1": f, "n_gold": sum(n_g.values()), "n_pred": sum(n_p.values()),
            "per_technique": per}
