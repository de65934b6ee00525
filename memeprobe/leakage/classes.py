"""Exact-duplicate classes, and every duplicate pair enumerated once, in blocks (never held all at once).

Rows with the same key (normalised text, decoded-pixel hash) form one *class*. Near-duplicate detectors
run on one representative row per class; a near pair of representatives holds for every member pair of
their two classes (identical texts have identical token sets, identical pixels identical hashes; for
embeddings the representative's cosine stands for its class). Member pairs are then enumerated per
*link* (a class with itself, or two near classes): all of them when there are at most ``max_pairs``,
otherwise every member against one *anchor* per (split, label) cell of the other side — so each eval
member still meets a train member and a member of each other label of its class, but a class of k memes
gives O(k) pairs instead of k(k-1)/2. Across near links a member of a large class meets anchors only of
splits it has not met yet (so many near variants of one caption add O(k) pairs, not O(k) each).

:class:`PairStream` yields these pairs in blocks, each pair once: the classes of each exact space in
turn, then the links of each near detector; a pair an earlier source already gave is left out (checked
per block from the classes, the links and the few pairs listed by anchored links). Each block carries
what the near detectors' look-ups found for it, so a consumer classifies it without asking again.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from memeprobe.leakage.config import MAX_PAIRS

BLOCK = 1 << 18  # pairs per block of the stream (about; one class or link is never split)


def class_ids(keys) -> np.ndarray:
    """Class number per row (numbered by first appearance); ``-1`` for rows whose key is empty."""
    codes, _ = pd.factorize(pd.Series(list(keys), dtype=object).replace("", None), use_na_sentinel=True)
    return codes.astype(np.int64)


def representatives(cls: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """The first eligible row of each class (sorted rows)."""
    rows = np.flatnonzero(eligible & (cls >= 0))
    _, first = np.unique(cls[rows], return_index=True)
    return np.sort(rows[first])


def same_class(cls: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (cls[a] >= 0) & (cls[a] == cls[b])


def _anchors(rows: np.ndarray, cell: np.ndarray) -> np.ndarray:
    _, first = np.unique(cell[rows], return_index=True)
    return rows[first]


def _cross(a: np.ndarray, b: np.ndarray):
    return np.repeat(a, len(b)), np.tile(b, len(a))


def _big(k, max_pairs: int):
    """Classes listed by anchors rather than by all their pairs."""
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


def _batches(count: np.ndarray, limit: int):
    """``(lo, hi)`` ranges of consecutive items whose ``count`` sums to about ``limit`` (at least one item)."""
    total, lo = np.cumsum(count), 0
    while lo < len(count):
        hi = max(lo + 1, int(np.searchsorted(total, (total[lo - 1] if lo else 0) + limit, "right")))
        yield lo, hi
        lo = hi


class Space:
    """One class space (``cls``: class per row, -1 = none): members per class, big classes, anchors."""

    def __init__(self, cls: np.ndarray, cell: np.ndarray, max_pairs: int):
        self.cls, self.max_pairs = cls, max_pairs
        rows = np.flatnonzero(cls >= 0)
        self.order = rows[np.argsort(cls[rows], kind="stable")]  # rows by class, ascending within a class
        self.start = np.searchsorted(cls[self.order], np.arange(int(cls.max(initial=-1)) + 2))
        self.size = np.diff(self.start)
        self.big = np.append(_big(self.size, max_pairs), False)  # (one spare entry: no class at all)
        first = np.unique(cls[self.order] * (int(cell.max(initial=0)) + 1) + cell[self.order], return_index=True)[1]
        self.anchor = np.zeros(len(cls), bool)
        self.anchor[self.order[first]] = True  # first row of each (class, cell)
        self.anchor &= (cls >= 0) & self.big[np.maximum(cls, 0)]

    def members(self, c: int) -> np.ndarray:
        return self.order[self.start[c]:self.start[c + 1]]

    def listing(self):
        """Blocks ``(a, b)`` of the pairs within classes: all of a small class, member x anchor of a big one."""
        small = (self.size >= 2) & ~self.big[:-1]
        for k in np.unique(self.size[small]):
            cs = np.flatnonzero(small & (self.size == k))
            i, j = np.triu_indices(k, 1)
            step = max(1, BLOCK // len(i))
            for lo in range(0, len(cs), step):
                base = self.start[cs[lo:lo + step], None]
                yield self.order[(base + i).ravel()], self.order[(base + j).ravel()]
        for c in np.flatnonzero(self.big):
            m = self.members(c)
            a, b = _cross(m, m[self.anchor[m]])
            keep = (a != b) & ~(self.anchor[a] & (a > b))  # a pair of two anchors once
            yield a[keep], b[keep]

    def lists(self, a, b) -> np.ndarray:
        """Whether :meth:`listing` gives the pair ``(a, b)``."""
        c = self.cls[a]
        return same_class(self.cls, a, b) & (~self.big[np.maximum(c, 0)] | self.anchor[a] | self.anchor[b])

    def small_link(self, ci, cj) -> np.ndarray:
        """Links whose member pairs are all listed."""
        return ~(self.big[ci] | self.big[cj]) & (self.size[ci] * self.size[cj] <= self.max_pairs)

    def cross(self, ci, cj):
        """Every member pair ``(a, b)`` of the links ``(ci, cj)``, and the link of each."""
        sx, sy = self.size[ci], self.size[cj]
        count = sx * sy
        if (count == 1).all():  # one member each (the usual near link): no expansion
            return self.order[self.start[ci]], self.order[self.start[cj]], np.arange(len(ci))
        link = np.repeat(np.arange(len(ci)), count)
        offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        return (self.order[self.start[ci][link] + offset // sy[link]],
                self.order[self.start[cj][link] + offset % sy[link]], link)


class PairStream:
    """Every duplicate pair once: iterating yields blocks ``(a, b, source, known)``, ``a < b``; ``source`` is
    the index of the exact space (0, 1, ...) or ``len(spaces)`` + the index of the near detector that gave
    them, ``known`` what the near detectors looked up so far: ``{name: (hit, score or NaN)}``.

    ``spaces``: class arrays whose classes list their pairs; ``near``: name -> links (``links``) of each
    near detector, over one of those class arrays or another; ``cell`` (split and label) picks anchors,
    ``split`` (a code per row) bounds how often a member of a large class meets anchors."""

    def __init__(self, spaces: list[np.ndarray], near: dict, cell: np.ndarray, split: np.ndarray,
                 max_pairs: int = MAX_PAIRS):
        self.cell, self.split, self.max_pairs = cell, split, max_pairs
        made: dict[int, Space] = {}

        def space(cls):
            return made.setdefault(id(cls), Space(cls, cell, max_pairs))
        self.spaces = [space(c) for c in spaces]
        self.near = [(name, space(links.cls), links) for name, links in near.items()]

    def __iter__(self):
        n = len(self.cell)
        covered: dict = {}
        anchored: list[np.ndarray] = []  # per near detector done: sorted keys a * n + b of its anchored pairs

        def out(a, b, source, score=None):
            """The block less the pairs an earlier source gave, with the look-ups made to know it."""
            a, b = np.minimum(a, b), np.maximum(a, b)
            seen = np.zeros(len(a), bool)
            for s in self.spaces[:source]:
                seen |= s.lists(a, b)
            known = {}
            for e, (name, s, links) in enumerate(self.near[:max(0, source - len(self.spaces))]):
                hit, found = links.lookup(a, b)
                value = np.full(len(a), np.nan)
                value[hit] = found
                known[name] = hit, value
                c, d = s.cls[a[hit]], s.cls[b[hit]]
                listed = s.small_link(np.minimum(c, d), np.maximum(c, d))
                listed[~listed] = np.isin(a[hit][~listed] * n + b[hit][~listed], anchored[e])
                seen[hit] |= listed
            if score is not None:
                known[self.near[source - len(self.spaces)][0]] = np.ones(len(a), bool), np.asarray(score, np.float64)
            keep = ~seen
            return a[keep], b[keep], source, {k: (h[keep], v[keep]) for k, (h, v) in known.items()}

        for source, s in enumerate(self.spaces):
            for a, b in s.listing():
                yield out(a, b, source)
        for e, (name, s, links) in enumerate(self.near):
            source = len(self.spaces) + e
            extra = []
            for ci, cj, score in links.pairs():
                ci, cj = np.minimum(ci, cj), np.maximum(ci, cj)
                score = np.asarray(score, np.float64)
                small = s.small_link(ci, cj)
                xs, ys, ss = ci[small], cj[small], score[small]
                for lo, hi in _batches(s.size[xs] * s.size[ys], BLOCK):
                    a, b, link = s.cross(xs[lo:hi], ys[lo:hi])
                    yield out(a, b, source, ss[lo:hi][link])
                for x, y, v in zip(ci[~small].tolist(), cj[~small].tolist(), score[~small].tolist()):
                    gx, gy = s.members(x), s.members(y)
                    pa, pb = (np.concatenate(p) for p in zip(
                        _to_anchors(gx, gy, self.cell, self.split, self._covered(covered, s, x), self.max_pairs),
                        _to_anchors(gy, gx, self.cell, self.split, self._covered(covered, s, y), self.max_pairs)))
                    key = np.unique(np.minimum(pa, pb) * n + np.maximum(pa, pb))
                    extra.append(key)
                    yield out(key // n, key % n, source, np.full(len(key), v))
            anchored.append(np.sort(np.concatenate(extra)) if extra else np.zeros(0, np.int64))

    def _covered(self, covered: dict, s: Space, c: int) -> set:
        key = (id(s), c)
        if key not in covered:
            covered[key] = set(self.split[s.members(c)].tolist())
        return covered[key]
