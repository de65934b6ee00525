"""Text tables of head results, as ``train-head`` and ``predict`` print them: one row per split with its
trivial baselines beneath, the in-sample vs cross-validated gap, per-class F1; for the span tagger, span F1
beside its baselines and per technique."""
from __future__ import annotations

import math

from memeprobe.heads.runs import headline


def _fmt(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else (f"{v:.4f}" if isinstance(v, float) else str(v))


def _ci(m: dict, key: str) -> str:
    """``[low, high]`` of ``key``'s bootstrap CI in ``m`` (empty without one)."""
    low, high = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
    return "" if low is None else f"[{_fmt(low)[:5]}, {_fmt(high)[:5]}]"


# a column NAME_ci shows NAME's bootstrap CI (NAME_ci_low, NAME_ci_high in the metrics)
BINARY_COLS = ("n", "auroc", "auroc_ci_low", "auroc_ci_high", "acc@0.5", "acc", "f1", "macro_f1", "macro_f1_ci",
               "threshold")
MULTI_COLS = ("n", "accuracy", "micro_f1", "micro_f1_ci", "macro_f1", "macro_f1_ci", "micro_f1@0.5", "macro_f1@0.5",
              "mami_a_f1", "mami_a_f1_ci", "mami_b_f1", "mami_b_f1_ci", "labels_per_row", "macro_auroc")
ROW_NAMES = {"cv": "cv (out-of-fold)"}


def _has(m: dict, col: str) -> bool:
    return f"{col[:-3]}_ci_low" in m if col.endswith("_ci") else col in m


def _cell(m: dict, col: str) -> str:
    return _ci(m, col[:-3]) if col.endswith("_ci") else _fmt(m.get(col))


def metrics_table(metrics: dict, seeds: dict | None = None, baselines: dict | None = None,
                   in_sample=()) -> str:
    """One row per split (in-sample splits marked), each followed by its trivial baselines' rows;
    only the columns the dataset's metrics have; a line for every split whose macro averages leave out
    classes without positives."""
    if not metrics:
        return "(no labeled split to score)"
    cols = BINARY_COLS if "auroc" in next(iter(metrics.values())) else MULTI_COLS
    cols = [c for c in cols if any(_has(m, c) for m in metrics.values())]
    names = {s: ROW_NAMES.get(s, s + (" (in-sample)" if s in in_sample else "")) for s in metrics}
    width = max(20, *(len(n) + 2 for n in names.values()))
    w = {c: max(14, len(c) + 2, 18 if c.endswith("_ci") else 0) for c in cols}
    lines = ["split".ljust(width) + "".join(c.rjust(w[c]) for c in cols)]
    for split, m in metrics.items():
        lines.append(names[split].ljust(width) + "".join(_cell(m, c).rjust(w[c]) for c in cols))
        if seeds and split in seeds:
            s = seeds[split]
            lines.append(("  ±std").ljust(width) + "".join(
                (f"{s[c]['std']:.4f}" if c in s and c != "n" else "").rjust(w[c]) for c in cols))
        for name, b in (baselines or {}).get(split, {}).items():
            lines.append(f"  · {name}".ljust(width) + "".join(
                ("" if c == "n" else _cell(b, c)).rjust(w[c]) for c in cols))
    lines += [coverage_line(split, m) for split, m in metrics.items() if coverage_line(split, m)]
    return "\n".join(lines)


def coverage_line(split: str, m: dict) -> str | None:
    """Which classes the macro averages of ``split`` cover, when some have no positives there."""
    if "macro_classes" not in m or m["macro_classes"] == m["classes"]:
        return None
    missing = m["classes"] - m["macro_classes"]
    return (f"{split}: macro averages cover {m['macro_classes']} of {m['classes']} classes "
            f"({missing} without positives in {split}: their F1 shows –)")


def gap_line(metrics: dict, train_split: str) -> str | None:
    """The in-sample minus out-of-fold gap of the headline metric (how much in-sample flatters)."""
    if "cv" not in metrics or train_split not in metrics:
        return None
    key = headline(metrics["cv"])
    key = "micro_f1" if key == "macro_f1" and "micro_f1" in metrics["cv"] else key
    a, b = metrics[train_split].get(key), metrics["cv"].get(key)
    return f"{key}: in-sample {train_split} {_fmt(a)} vs cross-validated {_fmt(b)} (gap {_fmt(a - b)})"


def per_class(metrics: dict, split: str | None) -> str:
    """Per-class F1 of ``split`` with each class's positives (``–``: none, so no F1)."""
    if split not in metrics or "per_class_f1" not in metrics[split]:
        return ""
    m = metrics[split]
    positives = m.get("per_class_positives", {})
    lines = [f"per-class F1 ({split}):      F1  positives"]
    lines += [f"  {_fmt(f):>6}  {positives.get(name, ''):>9}  {name}" for name, f in m["per_class_f1"].items()]
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
    """Per-technique gold/predicted counts, precision, recall and F1 of one span_f1 result (``–``: no gold span of
    that technique, so no recall or F1)."""
    lines = [f"{'n_gold':>7}{'n_pred':>7}{'P':>8}{'R':>8}{'F1':>8}  technique"]
    for j, name in enumerate(names):
        m = result["per_technique"].get(j, {"n_gold": 0, "n_pred": 0, "precision": None, "recall": None, "f1": None})
        cells = "".join(f"{_fmt(m[k])[:5]:>8}" for k in ("precision", "recall", "f1"))
        lines.append(f"{m['n_gold']:>7}{m['n_pred']:>7}{cells}  {name}")
    return "\n".join(lines)
