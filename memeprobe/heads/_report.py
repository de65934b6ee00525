"""Text tables of head results, as ``train-head`` and ``predict`` print them: one row per split with its
trivial baselines beneath, the in-sample vs cross-validated gap, per-class F1; for the span tagger, span F1
beside its baselines and per technique."""
from __future__ import annotations

import math

from memeprobe.heads.runs import headline


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else (f"{v:.4f}" if isinstance(v, float) else str(v))


BINARY_COLS = ("n", "auroc", "auroc_ci_low", "auroc_ci_high", "acc@0.5", "acc", "f1", "macro_f1", "threshold")
MULTI_COLS = ("n", "accuracy", "micro_f1", "macro_f1", "micro_f1@0.5", "macro_f1@0.5", "mami_a_f1", "mami_b_f1",
              "labels_per_row", "macro_auroc")
ROW_NAMES = {"cv": "cv (out-of-fold)"}


def metrics_table(metrics: dict, seeds: dict | None = None, baselines: dict | None = None,
                   in_sample=()) -> str:
    """One row per split (in-sample splits marked), each followed by its trivial baselines' rows;
    only the columns the dataset's metrics have."""
    if not metrics:
        return "(no labeled split to score)"
    cols = BINARY_COLS if "auroc" in next(iter(metrics.values())) else MULTI_COLS
    cols = [c for c in cols if any(c in m for m in metrics.values())]
    names = {s: ROW_NAMES.get(s, s + (" (in-sample)" if s in in_sample else "")) for s in metrics}
    width = max(20, *(len(n) + 2 for n in names.values()))
    w = {c: max(14, len(c) + 2) for c in cols}
    lines = ["split".ljust(width) + "".join(c.rjust(w[c]) for c in cols)]
    for split, m in metrics.items():
        lines.append(names[split].ljust(width) + "".join(_fmt(m.get(c)).rjust(w[c]) for c in cols))
        if seeds and split in seeds:
            s = seeds[split]
            lines.append(("  ±std").ljust(width) + "".join(
                (f"{s[c]['std']:.4f}" if c in s and c != "n" else "").rjust(w[c]) for c in cols))
        for name, b in (baselines or {}).get(split, {}).items():
            lines.append(f"  · {name}".ljust(width) + "".join(
                ("" if c == "n" else _fmt(b.get(c))).rjust(w[c]) for c in cols))
    return "\n".join(lines)


def gap_line(metrics: dict, train_split: str) -> str | None:
    """The in-sample minus out-of-fold gap of the headline metric (how much in-sample flatters)."""
    if "cv" not in metrics or train_split not in metrics:
        return None
    key = headline(metrics["cv"])
    key = "micro_f1" if key == "macro_f1" and "micro_f1" in metrics["cv"] else key
    a, b = metrics[train_split].get(key), metrics["cv"].get(key)
    return f"{key}: in-sample {train_split} {_fmt(a)} vs cross-validated {_fmt(b)} (gap {_fmt(a - b)})"


def per_class(metrics: dict, split: str | None) -> str:
    if split not in metrics or "per_class_f1" not in metrics[split]:
        return ""
    m = metrics[split]
    lines = [f"per-class F1 ({split}):"]
    lines += [f"  {f:.4f}  {name}" for name, f in m["per_class_f1"].items()]
    return "\n".join(lines)


def span_table(scores: dict[str, dict]) -> str:
    """Rows ``name  P  R  F1  n_pred`` for {name: span_f1 result}."""
    width = max(12, *(len(n) + 2 for n in scores))
    lines = ["".ljust(width) + "".join(c.rjust(11) for c in ("precision", "recall", "span_f1", "n_pred"))]
    for name, m in scores.items():
        lines.append(name.ljust(width) + "".join(f"{m[c]:.4f}".rjust(11) for c in ("precision", "recall", "f1"))
                     + str(m["n_pred"]).rjust(11))
    return "\n".join(lines)


def technique_table(result: dict, names) -> str:
    """Per-technique gold/predicted counts, precision, recall and F1 of one span_f1 result."""
    lines = [f"{'n_gold':>7}{'n_pred':>7}{'P':>8}{'R':>8}{'F1':>8}  technique"]
    for j, name in enumerate(names):
        m = result["per_technique"].get(j, {"n_gold": 0, "n_pred": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0})
        lines.append(f"{m['n_gold']:>7}{m['n_pred']:>7}{m['precision']:>8.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}  {name}")
    return "\n".join(lines)
