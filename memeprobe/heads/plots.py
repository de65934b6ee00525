"""Evaluation figures as PNG (matplotlib, Agg backend): ROC, PR, calibration, per-class F1."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_all(out_dir, y, p, names, thresholds, prefix="") -> list[Path]:
    """ROC, PR and calibration curves per output (binary: one), per-class F1 bars for multi-label."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import f1_score, precision_recall_curve, roc_curve

    plt = _plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    Y, P = np.asarray(y), np.asarray(p)
    Y, P = (Y[:, None], P[:, None]) if Y.ndim == 1 else (Y, P)
    cols = [k for k in range(Y.shape[1]) if len(np.unique(Y[:, k])) == 2]
    written = []
    for kind in ("roc", "pr", "calibration"):
        fig, ax = plt.subplots(figsize=(5, 5))
        for k in cols:
            if kind == "roc":
                a, b, _ = roc_curve(Y[:, k], P[:, k])
            elif kind == "pr":
                b, a, _ = precision_recall_curve(Y[:, k], P[:, k])
            else:
                b, a = calibration_curve(Y[:, k], P[:, k], n_bins=10, strategy="quantile")
            ax.plot(a, b, label=names[k], lw=1)
        if kind in ("roc", "calibration"):
            ax.plot([0, 1], [0, 1], "k--", lw=0.5)
        ax.set_xlabel({"roc": "false positive rate", "pr": "recall", "calibration": "mean predicted probability"}[kind])
        ax.set_ylabel({"roc": "true positive rate", "pr": "precision", "calibration": "fraction of positives"}[kind])
        ax.set_title(f"{prefix}{kind}")
        if len(cols) <= 8:
            ax.legend(fontsize=7)
        written.append(_save(fig, out_dir / f"{prefix}{kind}.png"))
    if Y.shape[1] > 1:
        pred = (P >= np.asarray(thresholds)).astype(int)
        f1 = f1_score(Y, pred, average=None, zero_division=1)
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(names) + 1))
        ax.barh(range(len(names)), f1)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("F1 at tuned thresholds")
        ax.set_xlim(0, 1)
        written.append(_save(fig, out_dir / f"{prefix}per_class_f1.png"))
    return written


def _save(fig, path):
    """PNG written atomically (a crash leaves the previous plot or none, never half a file)."""
    import matplotlib.pyplot as plt

    from memeprobe.atomic import atomic_write

    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
