"""Near links: the class pairs a near-duplicate detector finds, enumerated in blocks and looked up per row pair.

A detector runs on one representative row per exact-duplicate class (``classes``); a link holds for every
member pair of its two classes. Each kind of link offers ``pairs()`` (blocks of ``(class_i, class_j,
score)``, each link once) and ``lookup(a, b)`` (whether the classes of rows ``a``, ``b`` are linked, and the
score); ``measure(a, b)`` gives the detector's similarity of any two rows' classes, passing or not (the
evidence the report shows beside each pair). Memory stays linear in the memes however many links there are (thousands of one-token variants of
one caption are millions of links):

- :class:`JaccardLinks` and :class:`PhashLinks` are exact, so a look-up recomputes the similarity of the two
  representatives (token sets, 64-bit hashes) instead of keeping the links;
- :class:`Links` keeps the links of a cosine search (whose float scores come from its tiled matmul or
  approximate index, and are kept as found): sorted unique keys ``min(class) * width + max(class)``
  (uint32 up to 65,536 classes, else uint64) with float32 scores, 8 or 12 bytes per link, never a table.
"""
from __future__ import annotations

import numpy as np

from memeprobe.leakage import images, neighbors, text

LOOKUP = 1 << 18  # row pairs whose representatives are compared at a time


class _Representatives:
    """Classes ``cls`` with one representative row each (``reps``, sorted rows), compared by :meth:`similarity`
    of two representatives' positions; :meth:`passes` says which similarities make a link."""

    lower_is_closer = False  # a distance (phash bits) rather than a similarity (Jaccard, cosine)

    def __init__(self, cls: np.ndarray, reps: np.ndarray):
        self.cls, self.reps = cls, reps
        self.position = np.full(int(cls.max(initial=-1)) + 2, -1, np.int64)  # class -> position in reps
        self.position[cls[reps]] = np.arange(len(reps))

    def linkable(self, a: np.ndarray, b: np.ndarray):
        """Pairs of two classes that both have a representative, and the representatives' positions."""
        ca, cb = self.cls[a], self.cls[b]
        pa, pb = self.position[ca], self.position[cb]
        ok = (pa >= 0) & (pb >= 0) & (ca != cb)
        return ok, pa[ok], pb[ok]

    def measure(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The similarity of the representatives of rows ``a``, ``b`` (float64; NaN where the two rows are in one
        class or one has no representative), ``LOOKUP`` pairs at a time."""
        ok, pa, pb = self.linkable(a, b)
        out = np.full(len(a), np.nan)
        out[ok] = np.concatenate([np.zeros(0)] + [self.similarity(pa[lo:lo + LOOKUP], pb[lo:lo + LOOKUP])
                                                  for lo in range(0, len(pa), LOOKUP)])
        return out

    def lookup(self, a: np.ndarray, b: np.ndarray):
        """``(hit, score of the hits)``: whether the classes of rows ``a``, ``b`` are linked."""
        value = self.measure(a, b)
        with np.errstate(invalid="ignore"):
            hit = self.passes(value)
        return hit, value[hit].astype(np.float32)

    def similarity(self, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def passes(self, value: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class JaccardLinks(_Representatives):
    """Token-Jaccard links of ``texts`` (``text.TokenSets``) between the classes of ``cls``."""

    def __init__(self, cls: np.ndarray, texts, reps: np.ndarray, threshold: float):
        super().__init__(cls, reps)
        self.sets, self.threshold = text.TokenSets(texts, reps), threshold

    def pairs(self):
        for i, j, s in self.sets.join(self.threshold):
            yield self.cls[i], self.cls[j], s

    def similarity(self, pa, pb):
        return self.sets.jaccard(pa, pb)

    def passes(self, value):
        return value >= self.threshold - 1e-9  # (as the join decides)


class PhashLinks(_Representatives):
    """Perceptual-hash links (Hamming distance <= ``max_distance`` of ``bits``) between the classes of ``cls``."""

    lower_is_closer = True

    def __init__(self, cls: np.ndarray, bits: np.ndarray, reps: np.ndarray, max_distance: int):
        super().__init__(cls, reps)
        self.bits, self.max_distance = bits, max_distance

    def pairs(self):
        for i, j, d in images.phash_blocks(self.bits, self.max_distance, self.reps):
            yield self.cls[i], self.cls[j], d

    def similarity(self, pa, pb):
        return images.hamming(self.bits, self.reps[pa], self.reps[pb]).astype(np.float64)

    def passes(self, value):
        return value <= self.max_distance


class Links(_Representatives):
    """Stored links (sorted unique class-pair ``keys_`` and their ``scores_``) between the classes of ``cls``, found
    by a cosine search over the representatives ``reps`` of ``source``; :meth:`measure` is the exact cosine of any
    two representatives (``neighbors.pair_cosines``)."""

    def __init__(self, cls: np.ndarray, keys: np.ndarray, scores: np.ndarray, reps: np.ndarray, source):
        super().__init__(cls, reps)
        self.keys_, self.scores_, self.source = keys, scores, source
        self.width = int(cls.max(initial=0)) + 1

    @classmethod
    def collect(cls_, cls: np.ndarray, blocks, reps: np.ndarray, source) -> "Links":
        """Links from ``blocks`` of ``(row_i, row_j, score)`` (rows of ``reps``, representatives of classes of
        ``cls``). Blocks of a search that runs through its rows in order are in order once each is sorted; a link
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
        return cls_(cls, key, score, reps, source)

    def pairs(self, size: int = 1 << 18):
        for lo in range(0, len(self.keys_), size):
            key = self.keys_[lo:lo + size].astype(np.int64)
            yield key // self.width, key % self.width, self.scores_[lo:lo + size]

    def similarity(self, pa, pb):
        return neighbors.pair_cosines(self.source, self.reps[pa], self.reps[pb]).astype(np.float64)

    def lookup(self, a: np.ndarray, b: np.ndarray):
        ca, cb = self.cls[a], self.cls[b]
        hit = (ca >= 0) & (cb >= 0) & (ca != cb)
        if not len(self.keys_):
            return hit & False, np.zeros(0, np.float32)
        q = np.where(hit, np.minimum(ca, cb) * self.width + np.maximum(ca, cb), 0).astype(self.keys_.dtype)
        pos = np.minimum(np.searchsorted(self.keys_, q), len(self.keys_) - 1)
        hit &= self.keys_[pos] == q
        return hit, self.scores_[pos[hit]]
