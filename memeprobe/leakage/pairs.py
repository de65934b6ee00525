"""Pair records: the evidence of every detector per row pair, classified by kind, scope and label relation
(as codes for blocks of the pair stream, as a table for the listed pairs).

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

from memeprobe.leakage import classes

TEXT_EVIDENCE = ("text_exact", "text_jaccard", "text_cosine")
IMAGE_EVIDENCE = ("image_exact", "image_phash", "image_cosine")
EVIDENCE = TEXT_EVIDENCE + IMAGE_EVIDENCE
KINDS = ("same_text_same_image", "same_text_other_image", "same_image_other_text",
         "same_text_image_unchecked", "same_image_text_unchecked")
CONFOUNDER_KINDS = ("same_text_other_image", "same_image_other_text")
SCOPES = ("train-eval", "eval-eval", "within")
RELATIONS = ("", "agree", "flip")


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


def evidence(a: np.ndarray, b: np.ndarray, tcls: np.ndarray, icls: np.ndarray, near: dict,
             known: dict | None = None) -> dict:
    """Which detectors fire on each row pair: ``{evidence: (hit mask, score of the hits)}``; exact text and
    image from the classes ``tcls`` / ``icls`` (score 1), near ones from ``near`` (name -> links), or from
    ``known`` (name -> ``(hit, score or NaN)`` per pair) where a look-up was already made."""
    found = {}
    for name, cls in (("text_exact", tcls), ("image_exact", icls)):
        hit = classes.same_class(cls, a, b)
        found[name] = (hit, np.ones(int(hit.sum())))
    for name, links in near.items():
        if known and name in known:
            hit, value = known[name]
            found[name] = (hit, value[hit])
        else:
            found[name] = links.lookup(a, b)
    return found


def kind_codes(found: dict, both_images: np.ndarray, both_texts: np.ndarray) -> np.ndarray:
    """Index into ``KINDS`` per pair (-1: no evidence) from :func:`evidence`."""
    n = len(both_images)
    text_dup = np.zeros(n, bool)
    image_dup = np.zeros(n, bool)
    for name, (hit, _) in found.items():
        if name in TEXT_EVIDENCE:
            text_dup |= hit
        else:
            image_dup |= hit
    return np.select([text_dup & image_dup, text_dup & both_images, text_dup, image_dup & both_texts, image_dup],
                     [0, 1, 3, 2, 4], default=-1).astype(np.int8)


def relation_codes(a: np.ndarray, b: np.ndarray, label: np.ndarray, labels=None) -> np.ndarray:
    """Index into ``RELATIONS`` per pair: 0 unlabelled, 1 labels agree, 2 labels differ."""
    la, lb = label[a], label[b]
    labelled = (la >= 0) & (lb >= 0)
    differ = la != lb
    if labels is not None:
        labelled = (labels[a] >= 0).all(axis=1) & (labels[b] >= 0).all(axis=1)
        differ = (labels[a] != labels[b]).any(axis=1)
    return np.where(labelled, np.where(differ, 2, 1), 0).astype(np.int8)


def scope_codes(order_a: np.ndarray, order_b: np.ndarray) -> np.ndarray:
    """Index into ``SCOPES`` per pair from the splits' positions in the split order (train first, at 0)."""
    return np.where(order_a == order_b, 2, np.where(np.minimum(order_a, order_b) == 0, 0, 1)).astype(np.int8)


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
    p.insert(6, "scope", np.asarray(SCOPES, dtype=object)[scope_codes(sa, sb)])
    found = {name: (p[name].notna().to_numpy(), None) for name in EVIDENCE}
    kind = kind_codes(found, image_ok[a] & image_ok[b], text_ok[a] & text_ok[b])
    p.insert(7, "kind", np.asarray(KINDS + ("",), dtype=object)[kind])
    la, lb = label[a], label[b]
    p["label_a"] = np.where(la >= 0, la, -1)
    p["label_b"] = np.where(lb >= 0, lb, -1)
    p["label_relation"] = np.asarray(RELATIONS, dtype=object)[relation_codes(a, b, label, labels)]
    p["strength"] = strength(p)
    return p.sort_values(by=["scope", "kind", "label_relation", "strength"], key=_sort_key,
                         ascending=[True, True, True, False], ignore_index=True, kind="stable")


def found_by(p: pd.DataFrame) -> np.ndarray:
    """Per pair, the detectors that found it (evidence names joined by "+"): those with a score in the merged
    pairs (:func:`merge_evidence`), before :func:`add_measures`."""
    fired = p[list(EVIDENCE)].notna().to_numpy()
    names = np.array(EVIDENCE, dtype=object)
    return np.array(["+".join(names[row]) for row in fired], dtype=object)


def add_measures(p: pd.DataFrame, near: dict) -> None:
    """Fill each near detector's column where it did not fire with its measure of the pair (``links``'
    ``measure``: the evidence for and against a pair side by side); a pair of one exact class keeps it empty."""
    a, b = p.a.to_numpy(np.int64), p.b.to_numpy(np.int64)
    for name, links in near.items():
        col = p[name].to_numpy(np.float64, copy=True)
        missing = np.isnan(col)
        if missing.any():
            col[missing] = links.measure(a[missing], b[missing])
            p[name] = col


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
