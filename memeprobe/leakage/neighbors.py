"""Cosine-similarity search over vectors streamed in row blocks (never an N x N matrix).

Vectors are L2-normalised, so inner product = cosine. Up to ``exact_limit`` indexed rows the search is
exact: the indexed rows are kept as one float32 matrix and each tile of queries is one matmul against
it, thresholded (``range_search``; on CPUs with native bfloat16 a bfloat16 matmul pre-filters and the
candidates are re-scored in float32) or ``np.argpartition``-ed (``search``) on the tile; a self-join
computes only the upper triangle of tiles. Beyond it, a FAISS ``IndexIVFFlat`` with ``nlist ~ 4 sqrt(N)`` cells (k-means on
~10 sampled vectors per cell, 8 iterations), ``nprobe`` of them scanned per query. On clustered
768-d vectors with planted near-duplicates (cosine ~0.93-0.98, threshold 0.9) its recall of the
planted pairs is 1.0 at 100k and 1M rows (``benchmarks/dedup_scale.py``, ``benchmarks/README_dedup.md``).

A *source* is anything with ``shape`` and contiguous slicing (a numpy array or an ``h5py.Dataset``);
rows with NaN/inf or all-zero vectors are skipped and reported in ``skipped_``.
"""
from __future__ import annotations

import math
import sys

import numpy as np

DEFAULT_BLOCK = 16384
EXACT_LIMIT = 25_000  # indexed rows up to which the exact path beats IVF (measured: benchmarks/README_dedup.md)
TILE = 1 << 24  # similarity values per exact tile (64 MiB of float32)
BF16_MIN_ROWS = 16_384  # indexed rows from which the bfloat16 pre-filter is used when torch is not loaded yet
BF16_MARGIN = 1 / 64  # bfloat16 pre-filter threshold slack (> the 0.006 worst-case error on unit vectors)
HITS = 1 << 20  # similarities thresholded at a time within a tile (bounds the pairs held when most are near)
RESCORE = 4096  # pre-filtered pairs re-scored in float32 at a time


def bf16_matmul_is_fast() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 / AMX): there a bfloat16 GEMM is ~5x a
    float32 one (benchmarks/README_dedup.md); elsewhere it is emulated and slower."""
    try:
        import torch  # lazy: torch (0.9 s to import) only to ask the CPU about bfloat16

        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (ImportError, AttributeError):
        return False


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
    """Exact (BLAS matmul) or approximate (FAISS IndexIVFFlat) cosine index over selected rows of a source.

    ``fit(source, rows)`` streams and indexes the rows; ``range_search`` returns every (query, indexed)
    pair with cosine >= threshold; ``search`` returns the top-k neighbours. ``exact_`` tells which
    index was built, ``skipped_`` the rows left out (zero or non-finite vectors).
    """

    def __init__(self, exact_limit: int = EXACT_LIMIT, nlist: int | None = None, nprobe: int = 4,
                 block: int = DEFAULT_BLOCK, seed: int = 0, bf16: bool | None = None):
        self.exact_limit = exact_limit
        self.nlist = nlist
        self.nprobe = nprobe
        self.block = block
        self.seed = seed
        self.bf16 = bf16

    def fit(self, source, rows=None):
        rows = np.arange(source.shape[0]) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
        dim = int(np.prod(source.shape[1:]))
        self.exact_ = len(rows) <= self.exact_limit
        self.index_ = None if self.exact_ else self._ivf(source, rows, dim)
        parts, ids, skipped = [], [], []
        for sel, x, valid in iter_blocks(source, rows, self.block):
            if self.exact_:
                parts.append(x[valid])
            else:
                self.index_.add(x[valid])
            ids.append(sel[valid])
            skipped.append(sel[~valid])
        if self.exact_:
            self.base_ = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
            self.base_bf16_ = None
            if len(self.base_) and (self._auto_bf16() if self.bf16 is None else self.bf16):
                import torch  # lazy: torch only for a bfloat16 search (see _auto_bf16)

                self.base_bf16_ = torch.from_numpy(self.base_).to(torch.bfloat16)
        self.ids_ = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        self.skipped_ = np.concatenate(skipped) if skipped else np.zeros(0, np.int64)
        return self

    def _ivf(self, source, rows, dim):
        import faiss  # lazy: faiss only beyond exact_limit rows

        self.nlist_ = self.nlist or int(np.clip(round(4 * math.sqrt(len(rows))), 16, 65536))
        self.quantizer_ = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(self.quantizer_, dim, self.nlist_, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 8
        index.cp.min_points_per_centroid = 5
        index.train(self._training_sample(source, rows))
        index.nprobe = min(self.nprobe, self.nlist_)
        return index

    def _training_sample(self, source, rows):
        """A random sample of ~10 vectors per cell, read block by block (memory bounded)."""
        rng = np.random.default_rng(self.seed)
        want = min(len(rows), 10 * self.nlist_)
        pick = np.sort(rng.choice(rows, size=want, replace=False))
        parts = [x[valid] for _, x, valid in iter_blocks(source, pick, self.block)]
        return np.concatenate(parts)

    def range_search(self, source, rows=None, threshold: float = 0.9):
        """Pairs ``(query_row, indexed_row, cosine)`` with cosine >= ``threshold`` (self-matches included)."""
        return _joined(self.range_search_blocks(source, rows, threshold))

    def range_search_blocks(self, source, rows=None, threshold: float = 0.9):
        """:meth:`range_search` as blocks (one per block of query rows); ``query_skipped_`` is set at the end."""
        rows = np.arange(source.shape[0]) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
        skipped = []
        for sel, x, valid in iter_blocks(source, rows, self.block):
            skipped.append(sel[~valid])
            if not valid.any():
                continue
            if self.exact_:
                for q, b, d in self._exact_range(x[valid], threshold):
                    yield sel[valid][q], self.ids_[b], np.minimum(d, 1.0)
                continue
            lims, dist, nbr = self.index_.range_search(x[valid], float(threshold))
            yield (np.repeat(sel[valid], np.diff(lims).astype(np.int64)), self.ids_[nbr],
                   np.minimum(dist.astype(np.float32), 1.0))
        self.query_skipped_ = np.concatenate(skipped) if skipped else np.zeros(0, np.int64)

    def search(self, source, rows=None, k: int = 10):
        """Top-``k`` neighbours: ``(query_rows (m,), neighbour_rows (m, k), cosines (m, k))``; -1 pads missing ones."""
        rows = np.arange(source.shape[0]) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
        qs, ns, ds = [], [], []
        for sel, x, valid in iter_blocks(source, rows, self.block):
            if not valid.any():
                continue
            dist, nbr = self._exact_top_k(x[valid], k) if self.exact_ else self.index_.search(x[valid], k)
            qs.append(sel[valid])
            ns.append(np.where(nbr >= 0, self.ids_[np.maximum(nbr, 0)], -1))
            ds.append(dist)
        if not qs:
            return np.zeros(0, np.int64), np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return np.concatenate(qs), np.concatenate(ns), np.concatenate(ds)

    def _auto_bf16(self) -> bool:
        """bfloat16 pre-filter where the CPU has it and torch is loaded, or the join is big enough to repay
        importing it (0.9 s; a float32 self-join of 16k x 768 rows takes ~1.3 s on 2 cores)."""
        return (len(self.base_) >= BF16_MIN_ROWS or "torch" in sys.modules) and bf16_matmul_is_fast()

    def _tiles(self, n_rows: int):
        step = max(64, TILE // max(1, len(self.base_)))
        return ((start, min(n_rows, start + step)) for start in range(0, n_rows, step))

    def _exact_range(self, x, threshold, upper: bool = False):
        """``(query_pos, base_pos, cosine)`` per tile of ``x`` rows; ``upper``: x is ``base_``, only j > i.

        With a bfloat16 copy of the base (:func:`bf16_matmul_is_fast`), each tile is a bfloat16 matmul
        whose pairs above ``threshold - BF16_MARGIN`` are re-scored in float32: a superset by construction
        (unit vectors: bfloat16 rounding of inputs and output costs < 0.006 in cosine, rounding the
        compared threshold < 0.002 more), so the result is the float32 answer."""
        fast = self.base_bf16_
        for lo, hi in self._tiles(len(x)):
            first = lo if upper else 0
            if fast is None:
                s = x[lo:hi] @ self.base_[first:].T
            else:
                import torch  # lazy: torch only for a bfloat16 search (see _auto_bf16)

                s = torch.from_numpy(x[lo:hi]).to(torch.bfloat16) @ fast[first:].T
            step = max(1, HITS // max(1, len(self.base_) - first))  # rows whose pairs are looked at together
            for sub in range(0, hi - lo, step):
                if fast is None:
                    q, b = np.nonzero(s[sub:sub + step] >= threshold)
                else:
                    q, b = (t.numpy() for t in torch.nonzero(s[sub:sub + step] >= threshold - BF16_MARGIN,
                                                             as_tuple=True))
                q = q + sub
                if upper:
                    keep = b > q
                    q, b = q[keep], b[keep]
                if fast is None:
                    yield q + lo, b + first, s[q, b]
                    continue
                for c in range(0, len(q), RESCORE):  # float32 re-scoring, a bounded gather at a time
                    qc, bc = q[c:c + RESCORE], b[c:c + RESCORE]
                    cos = np.einsum("ij,ij->i", x[lo + qc], self.base_[first + bc])
                    keep = cos >= threshold
                    yield qc[keep] + lo, bc[keep] + first, cos[keep]

    def self_pair_blocks(self, threshold: float):
        """Blocks of pairs ``(i, j, cosine)``, ``i < j`` by position in ``ids_``, within the indexed rows
        (exact only)."""
        for q, b, s in self._exact_range(self.base_, threshold, upper=True):
            yield self.ids_[q], self.ids_[b], np.minimum(s, 1.0)

    def _exact_top_k(self, x, k):
        """FAISS-style ``(cosines, positions)`` of the ``k`` best base rows per query, -1 padded."""
        dist = np.full((len(x), k), -np.finfo(np.float32).max, np.float32)
        nbr = np.full((len(x), k), -1, np.int64)
        kk = min(k, len(self.base_))
        if kk == 0:
            return dist, nbr
        for lo, hi in self._tiles(len(x)):
            s = x[lo:hi] @ self.base_.T
            top = np.argpartition(-s, kk - 1, axis=1)[:, :kk] if kk < s.shape[1] else np.broadcast_to(
                np.arange(kk), (hi - lo, kk))
            val = np.take_along_axis(s, top, 1)
            order = np.argsort(-val, axis=1, kind="stable")
            dist[lo:hi, :kk] = np.take_along_axis(val, order, 1)
            nbr[lo:hi, :kk] = np.take_along_axis(top, order, 1)
        return dist, nbr


def cosine_pair_blocks(source, threshold: float, rows_a=None, rows_b=None, skipped: set | None = None,
                       index: CosineIndex | None = None, **index_params):
    """:func:`cosine_pairs` as blocks, never all pairs at once (a self-join through IVF may give a pair in
    both directions, as ``(min, max)`` each time). Rows with zero or non-finite vectors are added to
    ``skipped`` once the blocks are consumed. ``index``: one already fitted on the indexed rows."""
    rows_a = np.arange(source.shape[0]) if rows_a is None else np.asarray(rows_a, dtype=np.int64)
    index = index or CosineIndex(**index_params).fit(source, rows_a if rows_b is None else rows_b)
    skipped = set() if skipped is None else skipped
    if rows_b is None and index.exact_:
        yield from index.self_pair_blocks(threshold)
        skipped.update(index.skipped_.tolist())
        return
    for i, j, s in index.range_search_blocks(source, rows_a, threshold):
        if rows_b is None:
            keep = i != j
            i, j, s = np.minimum(i, j)[keep], np.maximum(i, j)[keep], s[keep]
        yield i, j, s
    skipped.update(index.skipped_.tolist())
    skipped.update(index.query_skipped_.tolist())


def cosine_pairs(source, threshold: float, rows_a=None, rows_b=None, **index_params):
    """Near-duplicate pairs by cosine >= ``threshold``.

    ``rows_b is None``: all pairs within ``rows_a`` (``i < j``, found in either search direction).
    Otherwise: cross pairs ``(i in rows_a, j in rows_b)``; ``rows_b`` is indexed, ``rows_a`` queried.
    Returns ``(i, j, cosine, skipped_rows)``.
    """
    skipped: set = set()
    i, j, s = _joined(cosine_pair_blocks(source, threshold, rows_a, rows_b, skipped, **index_params))
    if rows_b is None:
        key = i * (int(source.shape[0]) + 1) + j
        _, first = np.unique(key, return_index=True)
        i, j, s = i[first], j[first], s[first]
    return i, j, s, np.array(sorted(skipped), dtype=np.int64)


def pair_cosines(source, a: np.ndarray, b: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Cosine of the vectors of rows ``a[k]`` and ``b[k]`` of a source (float32; NaN where a vector is zero or not
    finite), reading the rows of ``chunk`` pairs at a time (``source[sorted rows]``)."""
    out = np.full(len(a), np.nan, np.float32)
    for lo in range(0, len(a), chunk):
        rows, inverse = np.unique(np.concatenate([a[lo:lo + chunk], b[lo:lo + chunk]]), return_inverse=True)
        x = np.asarray(source[rows], dtype=np.float32).reshape(len(rows), -1)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            half = len(inverse) // 2
            cos = np.einsum("ij,ij->i", x[inverse[:half]], x[inverse[half:]])
        out[lo:lo + chunk] = np.where(np.isfinite(cos), np.minimum(cos, 1.0), np.nan)
    return out


def _joined(blocks):
    """One ``(i, j, score)`` from blocks of them."""
    parts = list(blocks)
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return tuple(np.concatenate(p) for p in zip(*parts))
