"""Retrieval head (the idea of RGCL, Mei et al. ACL 2024, without training the encoder): a FAISS
inner-product index over the L2-normalised training features; a row's probability per output is
the similarity-weighted vote of its ``k`` nearest training rows, ``softmax(sim / temperature)``.

With ``k=None`` / ``temperature=None`` the neighbour count and the vote temperature are chosen
among ``K_CANDIDATES`` x ``TEMPERATURES`` by the leave-one-out score on the training rows (each row
voted on by its neighbours other than itself and its exact copies), which are also kept as
``oof_`` for thresholds; no folds are needed. Prediction follows the same rule: training rows
identical to the query (cosine 1) do not vote, so the rule that was scored is the rule that
predicts (a copy's label is the leakage report's business; on Hateful Memes, exact text copies in
dev/test are confounders whose label is flipped more often than not).

``proj_dim > 0`` first learns a linear projection with a contrastive loss (RGCL's idea): for every
training row, its ``n_pairs`` nearest same-label rows are positives and its nearest other-label
rows hard negatives (label = the whole label vector), InfoNCE at ``NCE_TEMPERATURE``. The projection
sees every training row, so leave-one-out would flatter it: ``oof_`` is then left to k-fold
refits (each fold learns its own projection).
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from memeprobe.heads.base import BASE_CONSTRAINTS, Head
from memeprobe.heads.metrics import dev_score
from memeprobe.heads.validate import Number, Tensor
from memeprobe.params import Range, to_sklearn

K_CANDIDATES = (5, 10, 20, 50, 100)
TEMPERATURES = (0.05, 0.1, 0.2, 0.5)
NCE_TEMPERATURE = 0.05
COPY = 1 - 1e-6  # cosine at or above which a training row counts as a copy of the query


class RetrievalHead(Head):
    name = "retrieval"
    _parameter_constraints = to_sklearn({
        **BASE_CONSTRAINTS,
        "k": [None, Range(Integral, 1)],
        "temperature": [None, Range(Real, 0, None, closed="neither")],
        "proj_dim": [Range(Integral, 0)],
        "n_pairs": [Range(Integral, 1)],
        "epochs": [Range(Integral, 0)],
        "lr": [Range(Real, 0, None, closed="neither")],
    })

    def __init__(self, k=None, temperature=None, proj_dim=0, n_pairs=5, epochs=20, lr=1e-3, norm="l2",
                 blocks=None, seed=0):
        self.k = k
        self.temperature = temperature
        self.proj_dim = proj_dim
        self.n_pairs = n_pairs
        self.epochs = epochs
        self.lr = lr
        self.norm = norm
        self.blocks = blocks
        self.seed = seed

    def _index(self, X):
        import faiss

        Z = np.ascontiguousarray(X / (np.linalg.norm(X, axis=1, keepdims=True) + 1e-8), dtype=np.float32)
        index = faiss.IndexFlatIP(Z.shape[1])
        index.add(Z)
        return index, Z

    def _vote(self, sim, idx, k, temperature):
        sim, idx = sim[:, :k], idx[:, :k]
        w = np.exp((sim - sim[:, :1]) / temperature) * (idx >= 0)
        w /= np.maximum(w.sum(1, keepdims=True), 1e-12)
        p = np.einsum("nk,nkc->nc", w, self.Y_[np.maximum(idx, 0)])
        eps = 1e-4
        return np.log(p + eps) - np.log(1 - p + eps)  # logits, so the base class's sigmoid returns p

    def _project(self, X):
        return X if self.proj_ is None else X @ self.proj_

    def _fit_projection(self, X, Y):
        """Linear map trained with InfoNCE: same-label neighbours positive, other-label neighbours negative."""
        import torch

        index, Z = self._index(X)
        _, idx = index.search(Z, min(len(X), 8 * self.n_pairs + 1))
        same = (Y[idx] == Y[:, None]).all(-1) & (idx != np.arange(len(X))[:, None])
        other = ~(Y[idx] == Y[:, None]).all(-1)
        rows = np.flatnonzero((same.sum(1) >= 1) & (other.sum(1) >= self.n_pairs))
        gen = torch.Generator().manual_seed(self.seed)
        W = torch.nn.Parameter(torch.randn(X.shape[1], int(self.proj_dim), generator=gen) / np.sqrt(X.shape[1]))
        if not len(rows):
            return W.detach().numpy()
        pos = np.array([idx[i][same[i]][0] for i in rows])
        neg = np.stack([idx[i][other[i]][:self.n_pairs] for i in rows])
        Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        opt = torch.optim.Adam([W], lr=self.lr)
        a, p, n = (torch.from_numpy(v) for v in (rows, pos, neg))
        for _ in range(int(self.epochs)):
            E = torch.nn.functional.normalize(Xt @ W, dim=1)
            sim_pos = (E[a] * E[p]).sum(1, keepdim=True)
            sim_neg = torch.einsum("nd,nkd->nk", E[a], E[n])
            logits = torch.cat([sim_pos, sim_neg], 1) / NCE_TEMPERATURE
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(a), dtype=torch.long))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return W.detach().numpy()

    def _fit(self, X, Y, dev):
        self.Y_ = Y.astype(np.float32)
        self.proj_ = self._fit_projection(X, Y) if self.proj_dim else None
        X = self._project(X)
        index, Z = self._index(X)
        self.index_ = index
        ks = [self.k] if self.k else [k for k in K_CANDIDATES if k < len(X)] or [max(1, len(X) - 1)]
        temperatures = [self.temperature] if self.temperature else TEMPERATURES
        # leave-one-out: each row is voted on by its neighbours other than itself and its copies
        sim, idx = _without_copies(*index.search(Z, min(len(X), max(ks) + 1 + 8)), np.arange(len(X)))
        dev_hits = self._search(dev[0], max(ks)) if dev is not None else None
        scored = []
        for k in ks:
            for t in temperatures:
                logits = self._vote(sim, idx, k, t)
                score = dev_score(dev[1], self._vote(*dev_hits, k, t)) if dev is not None else dev_score(Y, logits)
                scored.append((score, k, t, logits))
        score, self.k_, self.temperature_, logits = max(scored, key=lambda s: s[0])
        self.path_ = [((k, t), float(s)) for s, k, t, _ in scored]
        p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        self.oof_ = None if dev is not None or self.proj_ is not None else self._squeeze(p)

    def _search(self, X, k):
        """The ``k`` nearest training rows of each row of ``X``, copies of it left out (as ``-1``)."""
        X = self._project(X)
        Z = np.ascontiguousarray(X / (np.linalg.norm(X, axis=1, keepdims=True) + 1e-8), dtype=np.float32)
        return _without_copies(*self.index_.search(Z, min(k + 8, self.index_.ntotal)))

    def _logits(self, X):
        return self._vote(*self._search(X, self.k_), self.k_, self.temperature_)

    def __getstate__(self):  # a FAISS index does not pickle: keep its serialised bytes
        import faiss

        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns the live __dict__
        if "index_" in state:
            state["index_"] = faiss.serialize_index(self.index_)
        return state

    def __setstate__(self, state):
        import faiss

        super().__setstate__(state)
        if isinstance(getattr(self, "index_", None), np.ndarray):
            self.index_ = faiss.deserialize_index(self.index_)

    def _state(self):
        import torch

        return {"k": int(self.k_), "temperature": float(self.temperature_), "train": torch.from_numpy(np.ascontiguousarray(self.index_.reconstruct_n(0, self.index_.ntotal))),
                "Y": torch.from_numpy(self.Y_), "proj": None if self.proj_ is None else torch.from_numpy(self.proj_)}

    def _set_state(self, s):
        self.k_, self.Y_ = int(s["k"]), s["Y"].numpy()
        self.temperature_ = float(s.get("temperature", 0.05))  # files from before the temperature was chosen
        self.proj_ = None if s.get("proj") is None else s["proj"].numpy()
        self.index_, _ = self._index(s["train"].numpy())  # stored already projected and normalised

    def _state_spec(self, state, n_features, n_outputs):
        proj, train = state.get("proj"), state.get("train")
        width = proj.shape[-1] if getattr(proj, "ndim", 0) == 2 else n_features  # what the index holds
        n_train = train.shape[0] if getattr(train, "ndim", 0) == 2 else None
        return {"k": Number(int, 1), "temperature": Number(float, 0, open=True, optional=True),  # (older files)
                "train": Tensor((None, width)), "Y": Tensor((n_train, n_outputs), 0, 1),
                "proj": Tensor((n_features, None), optional=True)}


def _without_copies(sim, idx, own=None):
    """Neighbour lists with copies of the query (cosine >= COPY, or the row ``own`` itself) moved to the end as ``-1``."""
    drop = sim >= COPY
    if own is not None:
        drop |= idx == own[:, None]
    order = np.argsort(drop, axis=1, kind="stable")
    sim, idx, drop = (np.take_along_axis(a, order, 1) for a in (sim, idx, drop))
    return np.where(drop, -1.0, sim), np.where(drop, -1, idx)
