"""Retrieval head (the idea of RGCL, Mei et al. ACL 2024, without training the encoder): a FAISS
inner-product index over the L2-normalised training features; a row's probability per output is
the similarity-weighted vote of its ``k`` nearest training rows, ``softmax(sim / temperature)``.

With ``k=None`` the neighbour count is chosen among ``K_CANDIDATES`` by the leave-one-out score on
the training rows (each row voted on by its neighbours other than itself and its exact
duplicates), which are also kept as ``oof_`` for thresholds; no folds are needed.
"""
from __future__ import annotations

import numpy as np

from memeprobe.heads.base import Head
from memeprobe.heads.metrics import dev_score

K_CANDIDATES = (5, 10, 20, 50, 100)


class RetrievalHead(Head):
    name = "retrieval"

    def __init__(self, k=None, temperature=0.05, norm="l2", blocks=None, seed=0):
        self.k = k
        self.temperature = temperature
        self.norm = norm
        self.blocks = blocks
        self.seed = seed

    def _index(self, X):
        import faiss

        Z = np.ascontiguousarray(X / (np.linalg.norm(X, axis=1, keepdims=True) + 1e-8), dtype=np.float32)
        index = faiss.IndexFlatIP(Z.shape[1])
        index.add(Z)
        return index, Z

    def _vote(self, sim, idx, k):
        sim, idx = sim[:, :k], idx[:, :k]
        w = np.exp((sim - sim[:, :1]) / self.temperature) * (idx >= 0)
        w /= np.maximum(w.sum(1, keepdims=True), 1e-12)
        p = np.einsum("nk,nkc->nc", w, self.Y_[np.maximum(idx, 0)])
        eps = 1e-4
        return np.log(p + eps) - np.log(1 - p + eps)  # logits, so the base class's sigmoid returns p

    def _fit(self, X, Y, dev):
        self.Y_ = Y.astype(np.float32)
        index, Z = self._index(X)
        self.index_ = index
        candidates = [self.k] if self.k else [k for k in K_CANDIDATES if k < len(X)] or [max(1, len(X) - 1)]
        kmax = max(candidates)
        # leave-one-out: drop each row itself and its exact duplicates from its own neighbours
        sim, idx = index.search(Z, min(len(X), kmax + 1 + 8))
        dup = (sim >= 1 - 1e-6) | (idx == np.arange(len(X))[:, None])
        order = np.argsort(dup, axis=1, kind="stable")
        sim, idx = np.take_along_axis(sim, order, 1), np.take_along_axis(idx, order, 1)
        sim = np.where(np.take_along_axis(dup, order, 1), -1.0, sim)
        idx = np.where(sim <= -1.0, -1, idx)
        scored = []
        for k in candidates:
            logits = self._vote(sim, idx, k)
            scored.append((dev_score(dev[1], self._vote(*self._search(dev[0], k), k)) if dev is not None
                           else dev_score(Y, logits), k, logits))
        score, self.k_, logits = max(scored, key=lambda s: s[0])
        self.path_ = [(k, float(s)) for s, k, _ in scored]
        p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        self.oof_ = None if dev is not None else (p if self.multilabel_ else p[:, 0])

    def _search(self, X, k):
        Z = np.ascontiguousarray(X / (np.linalg.norm(X, axis=1, keepdims=True) + 1e-8), dtype=np.float32)
        return self.index_.search(Z, min(k, self.index_.ntotal))

    def _logits(self, X):
        return self._vote(*self._search(X, self.k_), self.k_)

    def _state(self):
        import torch

        return {"k": int(self.k_), "train": torch.from_numpy(np.ascontiguousarray(self.index_.reconstruct_n(0, self.index_.ntotal))),
                "Y": torch.from_numpy(self.Y_)}

    def _set_state(self, s):
        self.k_, self.Y_ = int(s["k"]), s["Y"].numpy()
        self.index_, _ = self._index(s["train"].numpy())
