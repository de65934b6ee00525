"""Evaluation metrics, computed the way the competitions' scorers compute them.

* Hateful Memes: AUROC with sklearn ``roc_auc_score`` (+ bootstrap 95 % CI), accuracy.
* MAMI sub-task A: macro-F1 = mean of the F1 of both classes; sub-task B: each category's
  two-class macro-F1 weighted by its number of gold positives (MIND-Lab ``evaluation.py``).
* SemEval-2021 T6: micro F1 over the multi-hot matrix with ``zero_division=1`` (the task's
  ``scorer/task1_3.py``).

One rule for every per-class and macro number: a class with no positives in a split has no F1 (``None``,
printed ``–``) and macro averages leave it out, recording how many classes they cover (``macro_classes`` of
``classes``). The F1s get percentile bootstrap CIs (``KEY_ci_low``/``KEY_ci_high``) like the AUROC, computed
from the same counts on resampled rows (:func:`decision_scores`).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

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
    """AUROC (+CI), accuracy at 0.5 and at ``threshold``, F1 (``None`` without positives) and the two-class
    macro-F1 (MAMI A, +CI) at ``threshold``."""
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=np.float64)
    pred = (p >= threshold).astype(int)
    low, high = bootstrap_auroc_ci(y, p, n_boot, seed)
    d = _point(y[:, None], pred[:, None], binary=True)
    return {
        "n": int(len(y)), "positives": int(y.sum()),
        "auroc": auroc(y, p), "auroc_ci_low": low, "auroc_ci_high": high,
        "acc@0.5": float(accuracy_score(y, (p >= 0.5).astype(int))),
        "threshold": float(threshold),
        "acc": float(accuracy_score(y, pred)),
        "f1": _class_value(d["f1"][0, 0]),
        "macro_f1": float(d["macro_f1"][0]), "classes": 2, "macro_classes": int(d["macro_classes"][0]),
        **decision_ci(y[:, None], pred[:, None], n_boot=n_boot, seed=seed, binary=True),
    }


# ---------------------------------------------------------------- decision metrics from counts
def _f1(tp, fp, fn):
    """F1 = 2tp / (2tp + fp + fn); NaN where nothing is counted."""
    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), np.nan)


def _mean_covered(values):
    """Mean over the last axis of the covered (non-NaN) entries; NaN where none is covered."""
    covered = ~np.isnan(values)
    total = np.where(covered, values, 0.0).sum(-1)
    return np.where(covered.any(-1), total / np.maximum(covered.sum(-1), 1), np.nan)


def _two_class(tp, fp, fn, tn):
    """[F1 of the negative class, of the positive class] on the last axis, NaN for a class with no row."""
    return np.stack([np.where(tn + fp > 0, _f1(tn, fn, fp), np.nan), np.where(tp + fn > 0, _f1(tp, fp, fn), np.nan)],
                    -1)


def decision_scores(Y, pred, W, names=(), binary=False) -> dict[str, np.ndarray]:
    """The F1s of the decisions ``pred`` (n, K) against ``Y`` under each row weighting of ``W`` ((b, n) row
    multiplicities: bootstrap resamples, or all ones): ``f1`` (b, K; NaN for a class without positives),
    ``macro_f1`` over the covered classes and ``macro_classes``. Binary (K = 1): the two-class macro-F1 (MAMI A);
    multi-label: ``micro_f1`` (1.0 when nothing is counted, as the SemEval scorer) and, with MAMI's columns,
    ``mami_a_f1`` and ``mami_b_f1`` (each type's two-class macro-F1 weighted by its positives)."""
    Y, pred, W = np.asarray(Y, np.float64), np.asarray(pred, np.float64), np.asarray(W, np.float64)
    tp, pos = W @ (Y * pred), W @ Y
    fp, fn = W @ pred - tp, pos - tp
    tn = W.sum(1, keepdims=True) - tp - fp - fn
    if binary:
        both = _two_class(tp[:, 0], fp[:, 0], fn[:, 0], tn[:, 0])
        return {"f1": both[:, 1:], "macro_f1": _mean_covered(both), "macro_classes": (~np.isnan(both)).sum(-1)}
    f1 = np.where(pos > 0, _f1(tp, fp, fn), np.nan)
    T, F, N = tp.sum(1), fp.sum(1), fn.sum(1)
    out = {"f1": f1, "macro_f1": _mean_covered(f1), "macro_classes": (pos > 0).sum(1),
           "micro_f1": np.where(2 * T + F + N > 0, _f1(T, F, N), 1.0)}
    names = list(names)
    if set(MAMI_TYPES) <= set(names):  # sub-task B scores only the four types (--target all adds misogynous)
        b = [names.index(n) for n in MAMI_TYPES]
        per, support = np.nan_to_num(_mean_covered(_two_class(tp[:, b], fp[:, b], fn[:, b], tn[:, b]))), pos[:, b]
        total = support.sum(1)
        out["mami_b_f1"] = np.where(total > 0, (per * support).sum(1) / np.maximum(total, 1e-12), np.nan)
        if "misogynous" in names:
            a = names.index("misogynous")
            out["mami_a_f1"] = _mean_covered(_two_class(tp[:, a], fp[:, a], fn[:, a], tn[:, a]))
    return out


def _point(Y, pred, names=(), binary=False) -> dict[str, np.ndarray]:
    return decision_scores(Y, pred, np.ones((1, len(Y))), names, binary)


def class_f1(Y, pred) -> np.ndarray:
    """(K,) F1 of each class of the decisions ``pred``; NaN for a class without positives."""
    return _point(Y, pred)["f1"][0]


def _class_value(v):
    """A per-class number for JSON: ``None`` for a class without positives."""
    return None if np.isnan(v) else float(v)


CI_KEYS = ("micro_f1", "macro_f1", "mami_a_f1", "mami_b_f1")  # the decision metrics that get a bootstrap CI


def decision_ci(Y, pred, names=(), n_boot=1000, seed=0, binary=False, level=0.95) -> dict:
    """Percentile bootstrap CIs (``KEY_ci_low``/``KEY_ci_high``) of the metrics of :data:`CI_KEYS` that
    :func:`decision_scores` gives; resampled in blocks, so memory is bounded by the rows, not ``n_boot``."""
    n = len(Y)
    if n_boot <= 0 or not n:
        return {}
    rng = np.random.default_rng(seed)
    block = max(1, min(n_boot, 2_000_000 // n))
    draws: dict[str, list] = {}
    for start in range(0, n_boot, block):
        idx = rng.integers(0, n, (min(block, n_boot - start), n))
        W = np.zeros(idx.shape)
        np.add.at(W, (np.arange(len(idx))[:, None], idx), 1.0)
        for k, v in decision_scores(Y, pred, W, names, binary).items():
            if k in CI_KEYS:
                draws.setdefault(k, []).append(v)
    alpha, out = (1 - level) / 2, {}
    for k, parts in draws.items():
        v = np.concatenate(parts)
        v = v[~np.isnan(v)]
        out[f"{k}_ci_low"] = float(np.quantile(v, alpha)) if len(v) else float("nan")
        out[f"{k}_ci_high"] = float(np.quantile(v, 1 - alpha)) if len(v) else float("nan")
    return out


def mami_weighted_f1(Y, pred) -> float:
    """MAMI sub-task B on the four types' columns: each type's two-class macro-F1, weighted by gold positives."""
    return float(_point(Y, pred, MAMI_TYPES)["mami_b_f1"][0])


def multilabel_metrics(Y, P, thresholds=0.5, names=None, pred=None, n_boot=0, seed=0) -> dict:
    """Micro F1 (SemEval-2021 scorer) and macro F1 over the classes with positives, at 0.5 and of the decisions
    ``pred`` (default: ``P >= thresholds``); per-class F1 (``None`` without positives) and positives; with the
    MAMI columns, task-A macro-F1 and task-B weighted F1; with ``n_boot``, bootstrap CIs of those F1s."""
    Y, P = np.asarray(Y).astype(int), np.asarray(P, dtype=np.float64)
    K = Y.shape[1]
    names = list(names) if names is not None else [str(k) for k in range(K)]
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (K,))
    pred = (P >= t).astype(int) if pred is None else np.asarray(pred).astype(int)
    aurocs = [auroc(Y[:, k], P[:, k]) for k in range(K)]
    valid = [a for a in aurocs if not np.isnan(a)]
    d, d05 = _point(Y, pred, names), _point(Y, (P >= 0.5).astype(int), names)
    out = {
        "n": int(len(Y)),
        "micro_f1": float(d["micro_f1"][0]),
        "macro_f1": float(d["macro_f1"][0]),
        "micro_f1@0.5": float(d05["micro_f1"][0]),
        "macro_f1@0.5": float(d05["macro_f1"][0]),
        "classes": int(K), "macro_classes": int(d["macro_classes"][0]),
        "labels_per_row": float(pred.sum(1).mean()) if len(pred) else float("nan"),
        "macro_auroc": float(np.mean(valid)) if valid else float("nan"), "macro_auroc_classes": len(valid),
        "per_class_f1": {n: _class_value(f) for n, f in zip(names, d["f1"][0])},
        "per_class_positives": {n: int(c) for n, c in zip(names, Y.sum(0))},
    }
    if exclusive(Y):  # single-label multi-class: accuracy of the argmax
        out["accuracy"] = float((pred == Y).all(1).mean())
    out.update({k: float(d[k][0]) for k in ("mami_b_f1", "mami_a_f1") if k in d})
    out.update(decision_ci(Y, pred, names, n_boot=n_boot, seed=seed))
    return out


def evaluate(y, p, thresholds, names=None, n_boot=1000, seed=0, pred=None) -> dict:
    """Binary or multi-label metrics depending on the shape of ``y`` (``pred``: the decisions, when a
    decision rule makes them differ from plain thresholds)."""
    if np.asarray(y).ndim == 1:
        return binary_metrics(y, p, float(np.ravel(thresholds)[0]), n_boot=n_boot, seed=seed)
    return multilabel_metrics(y, p, thresholds, names, pred=pred, n_boot=n_boot, seed=seed)


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
    ``per_technique`` {technique: {precision, recall, f1, n_gold, n_pred}} (recall and F1 ``None`` for a technique
    without gold spans, precision ``None`` for one never predicted)."""
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
        if not n_g[t]:  # no gold span of t in these memes: no recall, no F1 (as a class without positives)
            r = f = None
        per[t] = {"precision": p if n_p[t] else None, "recall": r, "f1": f, "n_gold": n_g[t], "n_pred": n_p[t]}
    p, r, f = _prf(sum(num_p.values()), sum(n_p.values()), sum(num_r.values()), sum(n_g.values()))
    return {"precision": p, "recall": r, "f1": f, "n_gold": sum(n_g.values()), "n_pred": sum(n_p.values()),
            "per_technique": per}
