"""Pair records: the evidence of every detector merged per row pair, classified by kind and label relation.

Kinds (what is duplicated):
- ``same_text_same_image``: text and image both duplicated;
- ``same_text_other_image``: text duplicated, both images checked and not duplicated;
- ``same_image_other_text``: image duplicated, both texts non-empty and not duplicated;
- ``same_text_image_unchecked`` / ``same_image_text_unchecked``: one modality duplicated, the other could
  not be compared (image missing or undecodable, or text empty).
*Confounders* are the two ``same_X_other_Y`` kinds (Hateful Memes' "benign confounders").

Label relation (labelled pairs only, else ""): ``agree`` when the labels are equal, ``flip`` when they
differ (binary label; for multi-label data the label sets differ).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

TEXT_EVIDENCE = ("text_exact", "text_jaccard", "text_cosine")
IMAGE_EVIDENCE = ("image_exact", "image_phash", "image_cosine")
EVIDENCE = TEXT_EVIDENCE + IMAGE_EVIDENCE
KINDS = ("same_text_same_image", "same_text_other_image", "same_image_other_text",
         "same_text_image_unchecked", "same_image_text_unchecked")
CONFOUNDER_KINDS = ("same_text_other_image", "same_image_other_text")
SCOPES = ("train-eval", "eval-eval", "within")


def merge_evidence(detections: dict, n_rows: int) -> pd.DataFrame:
    """One row per unordered row pair found by any detector.

    ``detections`` maps an evidence name (see ``EVIDENCE``) to ``(i, j, score)`` arrays. The result has
    columns ``a < b`` and one column per evidence: the score, NaN where that detector did not fire.
    """
    frames = []
    for name, (i, j, s) in detections.items():
        i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
        frames.append(pd.DataFrame({"a": np.minimum(i, j), "b": np.maximum(i, j),
                                    "evidence": name, "score": np.asarray(s, np.float64)}))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"a": [], "b": [], "evidence": [], "score": []})
    table = table[table.a != table.b]
    wide = table.pivot_table(index=["a", "b"], columns="evidence", values="score", aggfunc="max")
    wide = wide.reindex(columns=list(EVIDENCE)).reset_index()
    wide.columns.name = None
    wide[["a", "b"]] = wide[["a", "b"]].astype(np.int64)
    assert (wide.b < n_rows).all()
    return wide


def classify(pairs: pd.DataFrame, *, ids, splits, split_order, train_split, image_ok, text_ok,
             label, labels=None) -> pd.DataFrame:
    """Add ids, splits (train first, then ``split_order``), scope, kind, labels and label relation to merged pairs."""
    p = pairs.copy()
    order = {s: k for k, s in enumerate([train_split] + [s for s in split_order if s != train_split])}
    sa = np.array([order[splits[r]] for r in p.a], dtype=np.int64)
    sb = np.array([order[splits[r]] for r in p.b], dtype=np.int64)
    swap = sb < sa
    a = np.where(swap, p.b, p.a)
    b = np.where(swap, p.a, p.b)
    p["a"], p["b"] = a, b
    p.insert(2, "id_a", np.asarray(ids, dtype=object)[a])
    p.insert(3, "id_b", np.asarray(ids, dtype=object)[b])
    p.insert(4, "split_a", np.asarray(splits, dtype=object)[a])
    p.insert(5, "split_b", np.asarray(splits, dtype=object)[b])
    cross = p.split_a != p.split_b
    has_train = (p.split_a == train_split) | (p.split_b == train_split)
    p.insert(6, "scope", np.where(~cross, "within", np.where(has_train, "train-eval", "eval-eval")))
    text_dup = p[list(TEXT_EVIDENCE)].notna().any(axis=1).to_numpy()
    image_dup = p[list(IMAGE_EVIDENCE)].notna().any(axis=1).to_numpy()
    both_images = image_ok[a] & image_ok[b]
    both_texts = text_ok[a] & text_ok[b]
    kind = np.select(
        [text_dup & image_dup, text_dup & both_images, text_dup,
         image_dup & both_texts, image_dup],
        ["same_text_same_image", "same_text_other_image", "same_text_image_unchecked",
         "same_image_other_text", "same_image_text_unchecked"], default="")
    p.insert(7, "kind", kind)
    la, lb = label[a], label[b]
    labelled = (la >= 0) & (lb >= 0)
    differ = la != lb
    if labels is not None:
        labelled = (labels[a] >= 0).all(axis=1) & (labels[b] >= 0).all(axis=1)
        differ = (labels[a] != labels[b]).any(axis=1)
    p["label_a"] = np.where(la >= 0, la, -1)
    p["label_b"] = np.where(lb >= 0, lb, -1)
    p["label_relation"] = np.where(labelled, np.where(differ, "flip", "agree"), "")
    p["strength"] = strength(p)
    return p.sort_values(by=["scope", "kind", "label_relation", "strength"], key=_sort_key,
                         ascending=[True, True, True, False], ignore_index=True, kind="stable")


def strength(p: pd.DataFrame) -> np.ndarray:
    """How strong the evidence of a pair is, 0..1 (exact matches 1, phash 1 - distance/64)."""
    parts = [p[["text_exact", "image_exact"]].notna().any(axis=1).astype(float).to_numpy(),
             p["text_jaccard"].fillna(0).to_numpy(), p["text_cosine"].fillna(0).to_numpy(),
             p["image_cosine"].fillna(0).to_numpy(),
             np.where(p["image_phash"].notna(), 1 - p["image_phash"].fillna(64) / 64, 0)]
    return np.max(np.vstack(parts), axis=0)


def _sort_key(col: pd.Series):
    """Worst offenders first: train-eval, full duplicates, label flips, strongest evidence."""
    if col.name == "scope":
        return col.map({s: k for k, s in enumerate(SCOPES)})
    if col.name == "kind":
        return col.map({s: k for k, s in enumerate(KINDS)})
    if col.name == "label_relation":
        return col.map({"flip": 0, "agree": 1, "": 2})
    return col
