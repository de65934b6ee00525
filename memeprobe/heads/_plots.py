"""Evaluation figures as PNG (matplotlib, Agg backend): ROC, PR, calibration, per-class F1.

Made to paste into a paper: each curve's AUROC / AP in the legend (every class of a multi-label target
gets one), titles naming the split and the feature set, per-class bars with their support; a class
without gold positives in the split is drawn as "n/a", not as a perfect score."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from memeprobe.atomic import atomic_write
from memeprobe.heads.metrics import class_f1
from memeprobe.outputs import check_output, file_names, write_error

KINDS = ("roc", "pr", "calibration")


def _plt():
    import matplotlib  # lazy: matplotlib (slow to import) only when plots are asked for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(kind, split, features) -> str:
    what = {"roc": "ROC", "pr": "precision-recall", "calibration": "calibration", "per_class_f1": "per-class F1"}[kind]
    return " · ".join(x for x in (what, split, features) if x)


def figures(y, p, names, thresholds, split="", features="", pred=None) -> dict:
    """``{kind: Figure}``: ROC, PR and calibration curves per output (binary: one) and, for multi-label
    targets, per-class F1 bars of the decisions ``pred`` (default ``p >= thresholds``)."""
    plt = _plt()
    Y, P = np.asarray(y), np.asarray(p)
    Y, P = (Y[:, None], P[:, None]) if Y.ndim == 1 else (Y, P)
    cols = [k for k in range(Y.shape[1]) if len(np.unique(Y[:, k])) == 2]
    out = {}
    for kind in KINDS:
        fig, ax = plt.subplots(figsize=(5, 5))
        for k in cols:
            if kind == "roc":
                a, b, _ = roc_curve(Y[:, k], P[:, k])
                label = f"{names[k]} (AUROC {roc_auc_score(Y[:, k], P[:, k]):.3f})"
            elif kind == "pr":
                b, a, _ = precision_recall_curve(Y[:, k], P[:, k])
                label = f"{names[k]} (AP {average_precision_score(Y[:, k], P[:, k]):.3f})"
            else:
                b, a = calibration_curve(Y[:, k], P[:, k], n_bins=10, strategy="quantile")
                label = names[k]
            ax.plot(a, b, label=label, lw=1)
        if kind in ("roc", "calibration"):
            ax.plot([0, 1], [0, 1], "k--", lw=0.5)
        ax.set_xlabel({"roc": "false positive rate", "pr": "recall", "calibration": "mean predicted probability"}[kind])
        ax.set_ylabel({"roc": "true positive rate", "pr": "precision", "calibration": "fraction of positives"}[kind])
        ax.set_title(_title(kind, split, features), fontsize=9)
        if cols:
            many = len(cols) > 8
            ax.legend(fontsize=6 if many else 7, loc="upper left" if many else "best",
                      bbox_to_anchor=(1.02, 1.0) if many else None)
        out[kind] = fig
    if Y.shape[1] > 1:
        pred = (P >= np.asarray(thresholds)).astype(int) if pred is None else np.asarray(pred).astype(int)
        support = Y.sum(0).astype(int)
        f1 = class_f1(Y, pred)
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(names) + 1))
        bars = ax.barh(range(len(names)), np.nan_to_num(f1))
        ax.bar_label(bars, labels=[f"{v:.2f}" if n else "–" for v, n in zip(f1, support)], fontsize=7, padding=2)
        ax.set_yticks(range(len(names)), [f"{name} (n={n})" for name, n in zip(names, support)], fontsize=7)
        ax.set_xlabel("F1 at the tuned thresholds (n = gold positives; –: none in this split, no F1)")
        ax.set_xlim(0, 1.1)
        ax.set_title(_title("per_class_f1", split, features), fontsize=9)
        out["per_class_f1"] = fig
    return out


def plot_all(out_dir, y, p, names, thresholds, prefix="", split="", features="", pred=None) -> list[Path]:
    """Write :func:`figures` as ``PREFIX{kind}.png`` in ``out_dir`` (``prefix`` from data: one file name)."""
    out_dir = Path(out_dir)
    check_output(out_dir, "plots")
    paths = file_names(out_dir, [f"{prefix}{kind}" for kind in (*KINDS, "per_class_f1")], ".png")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(out_dir, e) from None
    return [_save(fig, paths[f"{prefix}{kind}"])
            for kind, fig in figures(y, p, names, thresholds, split, features, pred).items()]


def png(fig) -> bytes:
    """The figure as PNG bytes (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _save(fig, path):
    """PNG written atomically (a crash leaves the previous plot or none, never half a file)."""
    with atomic_write(path, "wb") as f:
        f.write(png(fig))
    return path
