"""Exact-duplicate classes, and member pairs listed per class with a bound (memory linear in the memes).

Rows with the same key (normalised text, decoded-pixel hash) form one *class*. Near-duplicate detectors
run on one representative row per class; a near pair of representatives holds for every member pair of
their two classes (identical texts have identical token sets, identical pixels identical hashes; for
embeddings the representative's cosine stands for its class). Member pairs are then listed per *link*
(a class with itself, or two near classes): all of them when there are at most ``max_pairs``, otherwise
every member against one *anchor* per (split, label) cell of the other side — so each eval member still
meets a train member and a member of each other label of its class, but a class of k memes lists
O(k) pairs instead of k(k-1)/2. Across near links a member of a large class meets anchors only of
splits it has not met yet (so many near variants of one caption add O(k) pairs, not O(k) each).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MAX_PAIRS = 1000  # member pairs listed in full per link; beyond, member x anchor pairs


def class_ids(keys) -> np.ndarray:
    """Class number per row (numbered by first appearance); ``-1`` for rows whose key is empty."""
    codes, _ = pd.factorize(pd.Series(list(keys), dtype=object).replace("", None), use_na_sentinel=True)
    return codes.astype(np.int64)


def representatives(cls: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """The first eligible row of each class (sorted rows)."""
    rows = np.flatnonzero(eligible & (cls >= 0))
    _, first = np.unique(cls[rows], return_index=True)
    return np.sort(rows[first])


def members(cls: np.ndarray) -> list[np.ndarray]:
    """Rows of each class, indexed by class number (rows sorted)."""
    rows = np.flatnonzero(cls >= 0)
    order = rows[np.argsort(cls[rows], kind="stable")]
    bounds = np.searchsorted(cls[order], np.arange(int(cls.max(initial=-1)) + 2))
    return [order[bounds[c]:bounds[c + 1]] for c in range(len(bounds) - 1)]


def _anchors(rows: np.ndarray, cell: np.ndarray) -> np.ndarray:
    _, first = np.unique(cell[rows], return_index=True)
    return rows[first]


def _cross(a: np.ndarray, b: np.ndarray):
    return np.repeat(a, len(b)), np.tile(b, len(a))


def link_pairs(left: np.ndarray, right: np.ndarray | None, cell: np.ndarray, max_pairs: int = MAX_PAIRS):
    """Member pairs within one class: all up to ``max_pairs``, else every member x one anchor per cell.
    With ``right``: all pairs between two classes (the caller bounds them)."""
    if right is not None:
        return _cross(left, right)
    if not _big(len(left), max_pairs):
        i, j = np.triu_indices(len(left), 1)
        return left[i], left[j]
    return _cross(left, _anchors(left, cell))


def _big(k: int, max_pairs: int) -> bool:
    """A class listed by anchors rather than by all its pairs."""
    return k * (k - 1) // 2 > max_pairs


def _to_anchors(x: np.ndarray, y: np.ndarray, cell, split, covered: set, max_pairs: int):
    """Members of ``x`` against the anchors of ``y``; for a big ``x``, only anchors of splits that its
    members do not meet yet (``covered``, updated): each member meets each split once, over all links."""
    anchors = _anchors(y, cell)
    if _big(len(x), max_pairs):
        anchors = anchors[~np.isin(split[anchors], list(covered))]
        anchors = anchors[np.unique(split[anchors], return_index=True)[1]]
        covered.update(split[anchors].tolist())
    return _cross(x, anchors)


def candidate_pairs(spaces: list[np.ndarray], near: list[tuple], cell: np.ndarray, split: np.ndarray,
                    max_pairs: int = MAX_PAIRS):
    """Unique row pairs ``(a, b)``, ``a < b``, listed for every class of ``spaces`` (exact duplicates) and
    every near pair ``(cls, rep_i, rep_j)`` of ``near`` (found among representatives of ``cls``).

    ``cell`` (split and label) picks anchors, ``split`` (a code per row) bounds how often a member of a
    large class is paired across links: once per split it does not share a class with already."""
    n = len(cell)
    out_a, out_b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]

    def add(pair):
        out_a.append(pair[0])
        out_b.append(pair[1])
    groups, covered = {}, {}

    def seen(cls, c):
        key = (id(cls), int(c))
        if key not in covered:
            covered[key] = set(split[groups[id(cls)][c]].tolist())
        return covered[key]
    for cls in spaces:
        groups[id(cls)] = members(cls)
        for m in groups[id(cls)]:
            if len(m) > 1:
                add(link_pairs(m, None, cell, max_pairs))
    for cls, ri, rj in near:
        ri, rj = np.asarray(ri, np.int64), np.asarray(rj, np.int64)
        if id(cls) not in groups:
            groups[id(cls)] = members(cls)
        g = groups[id(cls)]
        sizes = np.array([len(m) for m in g], dtype=np.int64)
        single = (sizes[cls[ri]] == 1) & (sizes[cls[rj]] == 1)
        add((ri[single], rj[single]))
        for x, y in zip(cls[ri[~single]], cls[rj[~single]]):
            if len(g[x]) * len(g[y]) <= max_pairs and not _big(len(g[x]), max_pairs) | _big(len(g[y]), max_pairs):
                add(link_pairs(g[x], g[y], cell))
                continue
            add(_to_anchors(g[x], g[y], cell, split, seen(cls, x), max_pairs))
            add(_to_anchors(g[y], g[x], cell, split, seen(cls, y), max_pairs))
    a, b = np.concatenate(out_a).astype(np.int64), np.concatenate(out_b).astype(np.int64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = np.unique(lo[lo != hi] * n + hi[lo != hi])
    return key // n, key % n


def same_class(cls: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (cls[a] >= 0) & (cls[a] == cls[b])


def near_lookup(cls: np.ndarray, ri, rj, score, a: np.ndarray, b: np.ndarray):
    """``(hit, score)`` for row pairs whose classes are a near pair of representatives ``(ri, rj, score)``."""
    width = int(cls.max(initial=0)) + 1
    ci, cj = cls[np.asarray(ri, np.int64)], cls[np.asarray(rj, np.int64)]
    key = np.minimum(ci, cj) * width + np.maximum(ci, cj)
    order = np.argsort(key, kind="stable")
    key, score = key[order], np.asarray(score, np.float64)[order]
    ca, cb = cls[a], cls[b]
    q = np.minimum(ca, cb) * width + np.maximum(ca, cb)
    pos = np.minimum(np.searchsorted(key, q), max(len(key) - 1, 0))
    hit = (ca >= 0) & (cb >= 0) & (ca != cb) & (len(key) > 0)
    if len(key):
        hit &= key[pos] == q
    return hit, score[pos[hit]] if len(key) else np.zeros(0)
