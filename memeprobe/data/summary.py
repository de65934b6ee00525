"""Per-split counts of a dataset (what ``memeprobe data summary`` prints).

``label_counts`` of a split: ``"0"``/``"1"`` = memes with that binary label, and one entry per
multi-label name = memes carrying that label. Image existence is checked with ``os.path.exists``.
"""
from __future__ import annotations

import os
from collections import Counter

from memeprobe.data.records import Dataset


def summarize(ds: Dataset) -> dict:
    """A JSON-able summary: ``{"format", "root", "image_root", "binary_name", "label_names", "notes", "splits"}``."""
    splits = {}
    for name in ds.splits():
        memes = ds.split(name)
        counts: dict[str, int] = {}
        if ds.binary_name is not None:
            binary = Counter(m.label for m in memes if m.label is not None)
            counts.update({"0": binary[0], "1": binary[1]})
        for i, label in enumerate(ds.label_names):
            counts[label] = sum(1 for m in memes if m.labels is not None and m.labels[i])
        with_image = [m for m in memes if m.image]
        found = sum(1 for m in with_image if os.path.exists(ds.image_path(m)))
        ids = Counter(m.id for m in memes)
        splits[name] = {
            "n": len(memes),
            "labeled": sum(1 for m in memes if m.label is not None or m.labels is not None),
            "label_counts": counts,
            "images_found": found,
            "images_missing": len(with_image) - found,
            "no_image": len(memes) - len(with_image),
            "empty_text": sum(1 for m in memes if not m.text.strip()),
            "duplicate_ids": sum(c - 1 for c in ids.values()),
        }
    return {
        "format": ds.format,
        "root": str(ds.root),
        "image_root": str(ds.image_root),
        "binary_name": ds.binary_name,
        "label_names": list(ds.label_names),
        "notes": list(ds.notes),
        "splits": splits,
    }


_COLUMNS = (("n", "memes"), ("labeled", "labeled"), ("images_found", "images found"),
            ("images_missing", "images missing"), ("no_image", "no image"), ("empty_text", "empty text"),
            ("duplicate_ids", "duplicate ids"))


def _table(header: list[str], rows: list[list]) -> list[str]:
    """Left-aligned first column, right-aligned numbers."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
            for r in [header, *rows]]


def render(summary: dict) -> str:
    """The summary as plain-text tables: counts per split, then label counts per split, then notes."""
    splits = summary["splits"]
    images = f"   images: {summary['image_root']}" if summary["image_root"] != summary["root"] else ""
    lines = [f"format: {summary['format']}   root: {summary['root']}{images}", ""]
    lines += _table(["split", *(c[1] for c in _COLUMNS)],
                    [[s, *(v[k] for k, _ in _COLUMNS)] for s, v in splits.items()])
    labels = list(dict.fromkeys(k for v in splits.values() for k in v["label_counts"]))
    if labels:
        binary = summary["binary_name"]
        rows = [[f"{binary}={k}" if binary and k in ("0", "1") else k,
                 *(v["label_counts"].get(k, 0) for v in splits.values())] for k in labels]
        lines += ["", *_table(["label", *splits], rows)]
    if summary["notes"]:
        lines += ["", "notes:", *(f"- {n}" for n in summary["notes"])]
    return "\n".join(lines)
