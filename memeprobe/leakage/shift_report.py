"""The shift audit (:mod:`memeprobe.leakage.shift`) in the leakage report: terminal tables, and the HTML
section's content (tables, nearest-train distance histograms, the most split-like memes of each split beside
the most train-like memes of train)."""
from __future__ import annotations

import base64
import io
import math

import numpy as np
from matplotlib.figure import Figure

from memeprobe.data.thumbnails import thumbnails

EXAMPLES = 8  # memes shown per side of each split and feature array


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _ci(lo, hi) -> str:
    return "n/a" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"


def rows(audit) -> tuple[list[dict], list[dict]]:
    """The audit as table rows (formatted numbers): one per split and feature array, one per split and class."""
    domain = [{"split": r["split"], "features": r["features"], "n": f"{r['n_split']} vs {r['n_train']}",
               "auroc": _fmt(r["auroc"]), "ci": _ci(*r["ci"]),
               "permutation": f"{_fmt(r['permutation']['mean'])} / {_fmt(r['permutation']['p95'])}",
               "uncovered": _fmt(r["uncovered"]), "verdict": "differs" if r["differs"] else "–"}
              for r in audit.to_json()["domain"]]
    priors = [{"split": p["split"], "class": p["class"], "train": _fmt(p["train_share"]),
               "other": _fmt(p["split_share"]), "n": f"{p['n_split']} vs {p['n_train']}",
               "difference": f"{p['difference']:+.3f}", "ci": _ci(*p["ci"])} for p in audit.priors]
    return domain, priors


def _histogram_uri(r) -> str:
    """Nearest-train distance histograms of train (leave-one-out) and the split, with the coverage radius, as
    a PNG data URI."""
    train, other = (r.distance[side & np.isfinite(r.distance)] for side in (~r.in_split, r.in_split))
    fig = Figure(figsize=(4.8, 2.6), dpi=100)
    ax = fig.subplots()
    bins = np.histogram_bin_edges(np.concatenate([train, other]), bins=40)
    ax.hist(train, bins=bins, density=True, alpha=0.55, label=f"{r.train_split} (leave-one-out)")
    ax.hist(other, bins=bins, density=True, alpha=0.55, label=r.split)
    if math.isfinite(r.radius):
        ax.axvline(r.radius, color="k", lw=1, ls="--", label=f"{r.train_split} 95th pct")
    ax.set_xlabel(f"cosine distance to the nearest {r.train_split} meme")
    ax.set_ylabel("density")
    ax.set_title(f"{r.split} vs {r.train_split} · {r.features}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def section(audit, ds, label, examples: int = EXAMPLES, thumb_size: int = 96) -> dict | None:
    """What the HTML shift section shows (None without an audit): the tables, and per split and feature array
    its distance histograms and the most split-like memes of the split beside the most train-like memes of
    train (by out-of-fold domain score), with thumbnails of the pictures inside the dataset folder; ``label(meme)``
    gives a meme's label as shown."""
    if audit is None:
        return None
    domain, priors = rows(audit)
    picks = []
    for r in audit.results:
        rank = np.argsort(r.scores, kind="stable")
        picks.append((r, [k for k in rank[::-1] if r.in_split[k]][:examples],
                      [k for k in rank if not r.in_split[k]][:examples]))
    shown = sorted({int(r.rows[k]) for r, a, b in picks for k in a + b})
    jpeg = thumbnails({row: ds.image_path(ds.memes[row]) for row in shown}, ds.root, thumb_size)

    def meme(r, k, percentile):
        row = int(r.rows[k])
        m = ds.memes[row]
        return {"id": m.id, "split": m.split, "text": m.text, "label": label(m),
                "thumb": base64.b64encode(jpeg[row]).decode("ascii") if row in jpeg else None,
                "score": f"{100 * percentile[k]:.1f}",
                "distance": _fmt(r.distance[k]) if math.isfinite(r.distance[k]) else "n/a"}

    panels = []
    for r, split_like, train_like in picks:
        percentile = np.argsort(np.argsort(r.scores, kind="stable"), kind="stable") / max(1, len(r.scores) - 1)
        panels.append({"split": r.split, "features": r.features, "train_split": r.train_split,
                       "auroc": _fmt(r.auroc), "histogram": _histogram_uri(r),
                       "split_like": [meme(r, k, percentile) for k in split_like],
                       "train_like": [meme(r, k, percentile) for k in train_like]})
    return {"train_split": audit.train_split, "domain": domain, "priors": priors, "notes": audit.notes,
            "panels": panels, "method": audit.to_json()["method"]}


def tables(audit) -> tuple[list[tuple[tuple, list[tuple]]], list[str]]:
    """The shift audit for the terminal: ``(header, rows)`` per table (domain classifier, label priors) and the
    audit's notes; nothing without an audit."""
    if audit is None:
        return [], []
    domain, priors = rows(audit)
    out = []
    if domain:
        out.append((("split vs " + audit.train_split, "features", "memes", "domain AUROC", "95 % CI",
                     "permuted mean / p95", "uncovered", "verdict"), [tuple(d.values()) for d in domain]))
    if priors:
        out.append((("split", "class", f"{audit.train_split} share", "split share", "labelled", "difference",
                     "95 % CI"), [tuple(p.values()) for p in priors]))
    return out, [f"shift: {note}" for note in audit.notes]
