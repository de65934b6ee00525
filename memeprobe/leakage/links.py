"""Near links: the class pairs a near-duplicate detector finds, enumerated in blocks and looked up per row pair.

A detector runs on one representative row per exact-duplicate class (``classes``); a link holds for every
member pair of its two classes. Each kind of link offers ``pairs()`` (blocks of ``(class_i, class_j,
score)``, each link once) and ``lookup(a, b)`` (whether the classes of rows ``a``, ``b`` are linked, and the
score). Memory stays linear in the memes however many links there are (thousands of one-token variants of
one caption are millions of links):

- :class:`JaccardLinks` and :class:`PhashLinks` are exact, so a look-up recomputes the similarity of the two
  representatives (token sets, 64-bit hashes) instead of keeping the links;
- :class:`Links` keeps the links of a cosine search (whose float scores come from its tiled matmul or
  approximate index, and are kept as found): sorted unique keys ``min(class) * width + max(class)``
  (uint32 up to 65,536 classes, else uint64) with float32 scores, 8 or 12 bytes per link, never a table.
"""
from __future__ import annotations

import numpy as np

from memeprobe.leakage import images, text

LOOKUP = 1 << 18  # row pairs whose representatives are compared at a time


class _Representatives:
    """Classes ``cls`` with one representative row each (``reps``, sorted rows)."""

    def __init__(self, cls: np.ndarray, reps: np.ndarray):
        self.cls = cls
        self.position = np.full(int(cls.max(initial=-1)) + 2, -1, np.int64)  # class -> position in reps
        self.position[cls[reps]] = np.arange(len(reps))

    def linkable(self, a: np.ndarray, b: np.ndarray):
        """Pairs of two classes that both have a representative, and the representatives' positions."""
        ca, cb = self.cls[a], self.cls[b]
        pa, pb = self.position[ca], self.position[cb]
        ok = (pa >= 0) & (pb >= 0) & (ca != cb)
        return ok, pa[ok], pb[ok]

    def lookup(self, a: np.ndarray, b: np.ndarray):
        """``(hit, score of the hits)`` from :meth:`compare` of the representatives, ``LOOKUP`` at a time."""
        ok, pa, pb = self.linkable(a, b)
        hits, scores = [], []
        for lo in range(0, len(pa), LOOKUP):
            h, s = self.compare(pa[lo:lo + LOOKUP], pb[lo:lo + LOOKUP])
            hits.append(h)
            scores.append(s)
        hit = np.zeros(len(a), bool)
        hit[ok] = np.concatenate(hits) if hits else np.zeros(0, bool)
        return hit, np.concatenate(scores) if scores else np.zeros(0, np.float32)

    def compare(self, pa, pb):
        raise NotImplementedError


class JaccardLinks(_Representatives):
    """Token-Jaccard links of ``texts`` (``text.TokenSets``) between the classes of ``cls``."""

    def __init__(self, cls: np.ndarray, texts, reps: np.ndarray, threshold: float):
        super().__init__(cls, reps)
        self.sets, self.threshold = text.TokenSets(texts, reps), threshold

    def pairs(self):
        for i, j, s in self.sets.join(self.threshold):
            yield self.cls[i], self.cls[j], s

    def compare(self, pa, pb):
        jac = self.sets.jaccard(pa, pb)
        hit = jac >= self.threshold - 1e-9  # (as the join decides)
        return hit, jac[hit].astype(np.float32)


class PhashLinks(_Representatives):
    """Perceptual-hash links (Hamming distance <= ``max_distance`` of ``bits``) between the classes of ``cls``."""

    def __init__(self, cls: np.ndarray, bits: np.ndarray, reps: np.ndarray, max_distance: int):
        super().__init__(cls, reps)
        self.bits, self.reps, self.max_distance = bits, reps, max_distance

    def pairs(self):
        for i, j, d in images.phash_blocks(self.bits, self.max_distance, self.reps):
            yield self.cls[i], self.cls[j], d

    def compare(self, pa, pb):
        d = images.hamming(self.bits, self.reps[pa], self.reps[pb])
        hit = d <= self.max_distance
        return hit, d[hit].astype(np.float32)


class Links:
    """Stored links (sorted unique class-pair ``keys_`` and their ``scores_``) between the classes of ``cls``."""

    def __init__(self, cls: np.ndarray, keys: np.ndarray, scores: np.ndarray):
        self.cls, self.keys_, self.scores_ = cls, keys, scores
        self.width = int(cls.max(initial=0)) + 1

    @classmethod
    def collect(cls_, cls: np.ndarray, blocks) -> "Links":
        """Links from ``blocks`` of ``(row_i, row_j, score)`` (representative rows of classes of ``cls``).
        Blocks of a search that runs through its rows in order are in order once each is sorted; a link
        found twice (both directions of an approximate index) keeps the score first found."""
        width = int(cls.max(initial=0)) + 1
        dtype = np.uint32 if width * width <= 1 << 32 else np.uint64
        keys, scores = [np.zeros(0, dtype)], [np.zeros(0, np.float32)]
        for i, j, s in blocks:
            ci, cj = cls[np.asarray(i, np.int64)], cls[np.asarray(j, np.int64)]
            key = np.minimum(ci, cj) * width + np.maximum(ci, cj)
            order = np.argsort(key, kind="stable")
            keys.append(key[order].astype(dtype))
            scores.append(np.asarray(s, np.float32)[order])
        key = np.concatenate(keys)
        del keys[:]  # (one array at a time: the blocks and the whole never both in full)
        score = np.concatenate(scores)
        del scores[:]
        if len(key) > 1 and not (key[1:] > key[:-1]).all():
            key, first = np.unique(key, return_index=True)
            score = score[first]
        return cls_(cls, key, score)

    def pairs(self, size: int = 1 << 18):
        for lo in range(0, len(self.keys_), size):
            key = self.keys_[lo:lo + size].astype(np.int64)
            yield key // self.width, key % self.width, self.scores_[lo:lo + size]

    def lookup(self, a: np.ndarray, b: np.ndarray):
        ca, cb = self.cls[a], self.cls[b]
        hit = (ca >= 0) & (cb >= 0) & (ca != cb)
        if not len(self.keys_):
            return hit & False, np.zeros(0, np.float32)
        q = np.where(hit, np.minimum(ca, cb) * self.width + np.maximum(ca, cb), 0).astype(self.keys_.dtype)
        pos = np.minimum(np.searchsorted(self.keys_, q), len(self.keys_) - 1)
        hit &= self.keys_[pos] == q
        return hit, self.scores_[pos[hit]]
