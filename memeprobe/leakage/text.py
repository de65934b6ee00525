"""Text duplicates: the documented normalisation and token-Jaccard pairs (exact classes: ``classes``).

Normalisation (:func:`normalize_text`), applied in this order:
1. Unicode NFKC (full-width letters, ligatures, non-breaking spaces become their plain forms);
2. ``str.casefold`` (case-insensitive, also for non-ASCII);
3. every Unicode punctuation character (general category ``P*``) becomes a space;
4. runs of whitespace collapse to one space; leading/trailing whitespace is removed.
Texts that normalise to ``""`` never count as duplicates of each other.
"""
from __future__ import annotations

import hashlib

import numpy as np
from scipy import sparse

from memeprobe.data.text import normalize_text, tokens  # the normalisation lives with the data

CANDIDATES = 1 << 22  # candidate pairs of one prefix product (bounds its memory when most texts share tokens)


def text_hash(text: str) -> str:
    """sha1 hex digest of the normalised text ("" when it normalises to nothing)."""
    norm = normalize_text(text)
    return hashlib.sha1(norm.encode("utf-8")).hexdigest() if norm else ""


class TokenSets:
    """The token sets of ``texts[rows]`` as a sparse 0/1 matrix: the exact Jaccard self-join and Jaccard
    of any pairs of them."""

    def __init__(self, texts, rows=None):
        self.rows = np.arange(len(texts)) if rows is None else np.asarray(rows, dtype=np.int64)
        sets = [tokens(texts[r]) for r in self.rows]
        vocab: dict[str, int] = {}
        for t in sets:
            for w in t:
                vocab.setdefault(w, len(vocab))
        self.freq = np.zeros(max(len(vocab), 1), np.int64)
        self.coded = [np.array(sorted(vocab[w] for w in t), dtype=np.int64) for t in sets]
        for c in self.coded:
            self.freq[c] += 1
        self.full = _csr(self.coded, len(self.freq))
        self.sizes = np.diff(self.full.indptr).astype(np.float64)

    def jaccard(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Jaccard similarity (float64) of the sets at positions ``a`` and ``b`` (empty sets: NaN)."""
        inter = np.asarray(self.full[a].multiply(self.full[b]).sum(axis=1)).ravel()
        with np.errstate(invalid="ignore"):
            return inter / (self.sizes[a] + self.sizes[b] - inter)

    def join(self, threshold: float, chunk: int = 1 << 18):
        """Blocks of pairs ``(row_i, row_j, jaccard)``, ``i < j``, with Jaccard >= ``threshold``.

        Exact, with prefix filtering: two sets with Jaccard >= t share at least one of their
        ``|A| - ceil(t |A|) + 1`` rarest tokens, so candidates come from a sparse product of those
        prefixes (as many rows at a time as give at most ~``CANDIDATES`` candidates) and are checked
        against the full token sets about ``chunk`` at a time (whole rows): memory stays bounded however
        many pairs there are. Empty token sets are skipped.
        """
        rare_first = [c[np.argsort(self.freq[c], kind="stable")] for c in self.coded]
        prefix = _csr([c[: len(c) - int(np.ceil(threshold * len(c) - 1e-9)) + 1] for c in rare_first], len(self.freq))
        prefix_t = prefix.T.tocsc()
        bound = np.cumsum(prefix @ np.bincount(prefix.indices, minlength=prefix.shape[1]))  # candidates, at most
        start = 0
        while start < len(self.rows):
            stop = max(start + 1, int(np.searchsorted(bound, (bound[start - 1] if start else 0) + CANDIDATES, "right")))
            cand = (prefix[start:stop] @ prefix_t).tocoo()
            keep = cand.row + start < cand.col
            a_all, b_all = cand.row[keep] + start, cand.col[keep]
            del cand
            ends = np.searchsorted(a_all, a_all[chunk::chunk], "right") if len(a_all) else []  # whole rows
            for lo, hi in zip(np.concatenate([[0], ends]).astype(np.int64), [*ends, len(a_all)]):
                a, b = a_all[lo:hi], b_all[lo:hi]
                jac = self.jaccard(a, b)
                hit = jac >= threshold - 1e-9
                yield self.rows[a[hit]], self.rows[b[hit]], jac[hit].astype(np.float32)
            start = stop


def _csr(coded, width):
    """Binary sparse matrix with one row per token-id array."""
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in coded])])
    indices = np.concatenate(coded) if coded else np.zeros(0, np.int64)
    return sparse.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(coded), width))
