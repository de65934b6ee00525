"""Logistic-regression probe (the CLIP linear-probe protocol): L-BFGS, C chosen on dev.

With ``C=None`` and a dev split, C is swept over ``n_C`` log-spaced values in
``[C_min, C_max]`` (warm-started from the previous C) and the value with the best dev
score (AUROC binary; macro average precision multi-label) is kept. Multi-label targets are
fitted one-vs-rest; a class with one value in train gets a constant prediction.
"""
from __future__ import annotations

import warnings

import numpy as np

from memeprobe.heads.base import Head
from memeprobe.heads.metrics import dev_score


class LogRegHead(Head):
    name = "logreg"

    def __init__(self, C=None, C_min=1e-4, C_max=1e2, n_C=7, max_iter=500, tol=1e-4,
                 class_weight=None, norm="l2+standard", blocks=None, seed=0):
        self.C = C
        self.C_min = C_min
        self.C_max = C_max
        self.n_C = n_C
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.norm = norm
        self.blocks = blocks
        self.seed = seed

    def _candidates(self, dev) -> list[float]:
        if self.C is not None:
            return [float(self.C)]
        if dev is None:
            return [1.0]
        return [float(c) for c in np.logspace(np.log10(self.C_min), np.log10(self.C_max), int(self.n_C))]

    def _fit(self, X, Y, dev):
        from threadpoolctl import threadpool_limits

        K, D = Y.shape[1], X.shape[1]
        candidates = self._candidates(dev)
        # float32 throughout (sklearn's L-BFGS keeps it); the matrix-vector products are memory-bound,
        # so one BLAS thread is as fast as two and does not spin-wait against other work.
        X = np.ascontiguousarray(X, dtype=np.float32)
        with threadpool_limits(limits=1, user_api="blas"):
            self._path(X, Y, dev, candidates, K, D)

    def _path(self, X, Y, dev, candidates, K, D):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        best = (-np.inf, None, None, None)
        models = [None] * K
        self.path_ = []
        for C in candidates:
            coef, bias = np.zeros((K, D), np.float32), np.zeros(K, np.float32)
            for k in range(K):
                yk = Y[:, k].astype(int)
                if yk.min() == yk.max():
                    p = np.clip(yk.mean(), 1e-4, 1 - 1e-4)
                    bias[k] = np.log(p / (1 - p))
                    continue
                if models[k] is None:
                    models[k] = LogisticRegression(max_iter=self.max_iter, tol=self.tol, warm_start=True,
                                                   class_weight=self.class_weight, random_state=self.seed)
                models[k].set_params(C=C)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    models[k].fit(X, yk)
                coef[k], bias[k] = models[k].coef_[0], models[k].intercept_[0]
            score = dev_score(dev[1], linear_logits(dev[0], coef, bias)) if dev is not None else 0.0
            self.path_.append((C, float(score)))
            if score > best[0]:
                best = (score, C, coef, bias)
        self.C_, self.coef_, self.intercept_ = best[1], best[2], best[3]

    def _logits(self, X):
        return linear_logits(X, self.coef_, self.intercept_)

    def _state(self):
        import torch

        return {"C": float(self.C_), "coef": torch.from_numpy(self.coef_), "intercept": torch.from_numpy(self.intercept_)}

    def _set_state(self, s):
        self.C_, self.coef_, self.intercept_ = s["C"], s["coef"].numpy(), s["intercept"].numpy()


def linear_logits(X, coef, bias):
    return X @ coef.T + bias
