"""Cosine-similarity search with FAISS over vectors streamed in row blocks (never an N x N matrix).

Vectors are L2-normalised, so inner product = cosine. Up to ``exact_limit`` indexed rows the index is
an exact ``IndexFlatIP``; beyond it an ``IndexIVFFlat`` with ``nlist ~ 4 sqrt(N)`` cells (k-means on
~10 sampled vectors per cell, 8 iterations), ``nprobe`` of them scanned per query. On clustered
768-d vectors with planted near-duplicates (cosine ~0.93-0.98, threshold 0.9) its recall of the
planted pairs is 1.0 at 100k and 1M rows (``benchmarks/dedup_scale.py``, ``benchmarks/README_dedup.md``).

A *source* is anything with ``shape`` and contiguous slicing (a numpy array or an ``h5py.Dataset``);
rows with NaN/inf or all-zero vectors are skipped and reported in ``skipped_``.
"""
from __future__ import annotations

import math

import numpy as np

DEFAULT_BLOCK = 16384


def iter_blocks(source, rows, block: int = DEFAULT_BLOCK):
    """Yield ``(row_ids, unit_vectors, valid)`` for sorted ``rows``, reading ``block`` source rows at a time."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return
    for start in range(int(rows[0]), int(rows[-1]) + 1, block):
        lo, hi = np.searchsorted(rows, [start, start + block])
        if lo == hi:
            continue
        sel = rows[lo:hi]
        x = np.asarray(source[int(sel[0]):int(sel[-1]) + 1], dtype=np.float32)[sel - sel[0]]
        x = x.reshape(len(sel), -1)
        norm = np.linalg.norm(x, axis=1)
        valid = np.isfinite(norm) & (norm > 0)
        x[~valid] = 0.0
        x[valid] /= norm[valid, None]
        yield sel, x, valid


class CosineIndex:
    """Exact (IndexFlatIP) or approximate (IndexIVFFlat) cosine index over selected rows of a source.

    ``fit(source, rows)`` streams and indexes the rows; ``range_search`` returns every (query, indexed)
    pair with cosine >= threshold; ``search`` returns the top-k neighbours. ``exact_`` tells which
    index was built, ``skipped_`` the rows left out (zero or non-finite vectors).
    """

    def __init__(self, exact_limit: int = 50_000, nlist: int | None = None, nprobe: int = 4,
                 block: int = DEFAULT_BLOCK, seed: int = 0):
        self.exact_limit = exact_limit
        self.nlist = nlist
        self.nprobe = nprobe
        self.block = block
        self.seed = seed

    def fit(self, source, rows=None):
        import faiss

        rows = np.arange(source.shape[0]) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
        dim = int(np.prod(source.shape[1:]))
        self.exact_ = len(rows) <= self.exact_limit
        if self.exact_:
            self.index_ = faiss.IndexFlatIP(dim)
        else:
            self.nlist_ = self.nlist or int(np.clip(round(4 * math.sqrt(len(rows))), 16, 65536))
            self.quantizer_ = faiss.IndexFlatIP(dim)
            self.index_ = faiss.IndexIVFFlat(self.quantizer_, dim, self.nlist_, faiss.METRIC_INNER_PRODUCT)
            self.index_.cp.niter = 8
            self.index_.cp.min_points_per_centroid = 5
            self.index_.train(self._training_sample(source, rows))
            self.index_.nprobe = min(self.nprobe, self.nlist_)
        ids, skipped = [], []
        for sel, x, valid in iter_blocks(source, rows, self.block):
            self.index_.add(x[valid])
            ids.append(sel[valid])
            skipped.append(sel[~valid])
        self.ids_ = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        self.skipped_ = np.concatenate(skipped) if skipped else np.zeros(0, np.int64)
        return self

    def _training_sample(self, source, rows):
        """A random sample of ~10 vectors per cell, read block by block (memory bounded)."""
        rng = np.random.default_rng(self.seed)
        want = min(len(rows), 10 * self.nlist_)
        pick = np.sort(rng.choice(rows, size=want, replace=False))
        parts = [x[valid] for _, x, valid in iter_blocks(source, pick, self.block)]
        return np.concatenate(parts)

    def range_search(self, source, rows=None, threshold: float = 0.9):
        """Pairs ``(query_row, indexed_row, cosine)`` with cosine >= ``threshold`` (self-matches included)."""
        rows = np.arange(source.shape[0]) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
        qs, bs, ss, skipped = [], [], [], []
        for sel, x, valid in iter_blocks(source, rows, self.block):
            skipped.append(sel[~valid])
            if not valid.any():
                continue
            lims, dist, nbr = self.index_.range_search(x[valid], float(threshold))
            qs.append(np.repeat(sel[valid], np.diff(lims).astype(np.int64)))
            bs.append(self.ids_[nbr])
            ss.append(dist.astype(np.float32))
        self.query_skipped_ = np.concatenate(skipped) if skipped else np.zeros(0, np.int64)
        if not qs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.concatenate(qs), np.concatenate(bs), np.minimum(np.concatenate(ss), 1.0)

    def search(self, source, rows=None, k: int = 10):
        """Top-``k`` neighbours: ``(query_rows (m,), neighbour_rows (m, k), cosines (m, k))``; -1 pads missing ones."""
        rows = np.arange(source.shape[0]) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
        qs, ns, ds = [], [], []
        for sel, x, valid in iter_blocks(source, rows, self.block):
            if not valid.any():
                continue
            dist, nbr = self.index_.search(x[valid], k)
            qs.append(sel[valid])
            ns.append(np.where(nbr >= 0, self.ids_[np.maximum(nbr, 0)], -1))
            ds.append(dist)
        if not qs:
            return np.zeros(0, np.int64), np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return np.concatenate(qs), np.concatenate(ns), np.concatenate(ds)


def cosine_pairs(source, threshold: float, rows_a=None, rows_b=None, **index_params):
    """Near-duplicate pairs by cosine >= ``threshold``.

    ``rows_b is None``: all pairs within ``rows_a`` (``i < j``, found in either search direction).
    Otherwise: cross pairs ``(i in rows_a, j in rows_b)``; ``rows_b`` is indexed, ``rows_a`` queried.
    Returns ``(i, j, cosine, skipped_rows)``.
    """
    rows_a = np.arange(source.shape[0]) if rows_a is None else np.asarray(rows_a, dtype=np.int64)
    base = rows_a if rows_b is None else rows_b
    index = CosineIndex(**index_params).fit(source, base)
    i, j, s = index.range_search(source, rows_a, threshold)
    skipped = np.union1d(index.skipped_, index.query_skipped_)
    if rows_b is not None:
        return i, j, s, skipped
    keep = i != j
    a, b, s = np.minimum(i, j)[keep], np.maximum(i, j)[keep], s[keep]
    key = a * (int(source.shape[0]) + 1) + b
    _, first = np.unique(key, return_index=True)
    return a[first], b[first], s[first], skipped
