"""Near links: the class pairs one near-duplicate detector found, kept compactly for look-up and listing.

A detector runs on one representative row per exact-duplicate class (``classes``) and yields its pairs
in blocks; :meth:`Links.collect` turns each pair into the key ``min(class) * width + max(class)`` and
keeps the sorted unique keys (uint32 up to 65,536 classes, else uint64) with their scores (float32):
8 or 12 bytes per link, never a table, so millions of near pairs (thousands of one-token variants of one
caption) fit in memory. Detectors that
search their rows in order give blocks that are sorted once sorted each; a link found twice (both search
directions of an approximate index) keeps its score of the first block that found it.
"""
from __future__ import annotations

import numpy as np


class Links:
    """Sorted unique class-pair keys ``keys_`` and their ``scores_`` within one class space ``cls``."""

    def __init__(self, cls: np.ndarray, keys: np.ndarray, scores: np.ndarray):
        self.cls, self.keys_, self.scores_ = cls, keys, scores
        self.width = int(cls.max(initial=0)) + 1

    @classmethod
    def collect(cls_, cls: np.ndarray, blocks) -> "Links":
        """Links from ``blocks`` of ``(row_i, row_j, score)`` (representative rows of classes of ``cls``)."""
        width = int(cls.max(initial=0)) + 1
        dtype = _key_dtype(width)
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
        if len(key) > 1 and not (key[1:] > key[:-1]).all():  # blocks out of order, or a link found twice
            key, first = np.unique(key, return_index=True)
            score = score[first]
        return cls_(cls, key, score)

    def __len__(self) -> int:
        return len(self.keys_)

    def lookup(self, a: np.ndarray, b: np.ndarray):
        """``(hit, score)`` for row pairs ``(a, b)``: whether their classes are linked, and the link's score
        for the hits."""
        ca, cb = self.cls[a], self.cls[b]
        q = np.minimum(ca, cb) * self.width + np.maximum(ca, cb)
        hit = (ca >= 0) & (cb >= 0) & (ca != cb)
        if not len(self.keys_):
            return hit & False, np.zeros(0, np.float32)
        q = np.where(hit, q, 0).astype(self.keys_.dtype)
        pos = np.minimum(np.searchsorted(self.keys_, q), len(self.keys_) - 1)
        hit &= self.keys_[pos] == q
        return hit, self.scores_[pos[hit]]

    def chunks(self, size: int):
        """The linked class pairs ``(ci, cj)``, ``ci < cj``, in key order, ``size`` at a time."""
        for lo in range(0, len(self.keys_), size):
            key = self.keys_[lo:lo + size].astype(np.int64)
            yield key // self.width, key % self.width


def _key_dtype(width: int):
    """The narrowest unsigned dtype for keys below ``width ** 2`` (4 bytes up to 65,536 classes)."""
    return np.uint32 if width * width <= 1 << 32 else np.uint64
