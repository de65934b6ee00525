"""Logistic-regression probe (the CLIP linear-probe protocol): L-BFGS, C chosen by CV or on dev.

With ``C=None``, C is swept over ``n_C`` log-spaced values in ``[C_min, C_max]`` (each fit
warm-started from the previous C) and the value with the best selection score (AUROC binary;
macro average precision multi-label) is kept. Without a dev split the score is that of the
out-of-fold predictions of ``cv``-fold stratified cross-validation on the (once normalised)
training data, folds run in ``n_jobs`` threads (None: the thread plan's jobs, :mod:`memeprobe.threads`); the out-of-fold probabilities at the chosen C
are kept in ``oof_`` (for thresholds) and the head is refitted on all rows. With a dev split
the dev score selects C (``--select-on dev``). Multi-label targets are fitted one-vs-rest; a
class with one value in train gets a constant prediction.
"""
from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from memeprobe.heads.base import BASE_CONSTRAINTS, Head
from memeprobe.heads.choices import CLASS_WEIGHTS
from memeprobe.heads.metrics import dev_score
from memeprobe.heads.selection import cv_folds, duplicate_groups
from memeprobe.heads.validate import Number, Tensor
from memeprobe.params import Choices, Range, to_sklearn
from memeprobe.threads import jobs

POSITIVE = Range(Real, 0, None, closed="neither")


class LogRegHead(Head):
    name = "logreg"
    _parameter_constraints = to_sklearn({
        **BASE_CONSTRAINTS,
        "C": [None, POSITIVE],
        "C_min": [POSITIVE],
        "C_max": [POSITIVE],
        "n_C": [Range(Integral, 1)],
        "max_iter": [Range(Integral, 1)],
        "tol": [POSITIVE],
        "class_weight": [None, Choices(CLASS_WEIGHTS)],
        "cv": [None, Range(Integral, 0)],
        "n_jobs": [None, Integral],
    })

    def __init__(self, C=None, C_min=1e-4, C_max=1e2, n_C=7, max_iter=500, tol=1e-4,
                 class_weight=None, norm="l2+standard", cv=5, n_jobs=None, blocks=None, seed=0):
        self.C = C
        self.C_min = C_min
        self.C_max = C_max
        self.n_C = n_C
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.norm = norm
        self.cv = cv
        self.n_jobs = n_jobs
        self.blocks = blocks
        self.seed = seed

    def _candidates(self, dev) -> list[float]:
        if self.C is not None:
            return [float(self.C)]
        if dev is None and not self.cv:
            return [1.0]
        return [float(c) for c in np.logspace(np.log10(self.C_min), np.log10(self.C_max), int(self.n_C))]

    def _fit(self, X, Y, dev):
        candidates = self._candidates(dev)
        self.oof_ = None
        # float32 throughout (sklearn's L-BFGS keeps it); the matrix-vector products are memory-bound,
        # so one BLAS thread per fit is as fast as two; CV folds run in parallel instead.
        X = np.ascontiguousarray(X, dtype=np.float32)
        with threadpool_limits(limits=1, user_api="blas"):
            if dev is None and len(candidates) > 1:
                best = self._cv(X, Y, candidates)
                candidates = candidates[:best + 1]
            else:
                self.path_ = []
            best = (-np.inf, None, None, None)
            models = [None] * Y.shape[1]
            for C in candidates:  # warm-started along the path up to the chosen C
                coef, bias = self._fit_C(X, Y, C, models)
                score = dev_score(dev[1], linear_logits(dev[0], coef, bias)) if dev is not None else 0.0
                if dev is not None:
                    self.path_.append((C, float(score)))
                if best[1] is None or score > best[0] or dev is None:
                    best = (score, C, coef, bias)
        self.C_, self.coef_, self.intercept_ = best[1], best[2], best[3]

    def _fit_C(self, X, Y, C, models):
        """One-vs-rest fit at ``C``, warm-started from ``models`` (updated in place)."""
        K = Y.shape[1]
        coef, bias = np.zeros((K, X.shape[1]), np.float32), np.zeros(K, np.float32)
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
        self.n_iter_ = max([int(m.n_iter_.max()) for m in models if m is not None], default=0)
        return coef, bias

    def _cv(self, X, Y, candidates) -> int:
        """Index of the C with the best out-of-fold score; sets ``path_`` and ``oof_``."""
        folds = cv_folds(Y[:, 0] if Y.shape[1] == 1 else Y, self.cv, self.seed, duplicate_groups(X))

        def path(tr, te):
            models = [None] * Y.shape[1]
            return te, [linear_logits(X[te], *self._fit_C(X[tr], Y[tr], C, models)) for C in candidates]

        oof = np.zeros((len(candidates),) + Y.shape, np.float32)
        for te, logits in Parallel(n_jobs=self.n_jobs or jobs(), prefer="threads")(delayed(path)(tr, te) for tr, te in folds):
            oof[:, te] = logits
        scores = [dev_score(Y, o) for o in oof]
        self.path_ = [(C, float(s)) for C, s in zip(candidates, scores)]
        best = int(np.argmax(scores))
        p = 1.0 / (1.0 + np.exp(-oof[best].astype(np.float64)))
        self.oof_ = self._squeeze(p)
        return best

    def _logits(self, X):
        return linear_logits(X, self.coef_, self.intercept_)

    def _state(self):
        import torch

        return {"C": float(self.C_), "coef": torch.from_numpy(self.coef_), "intercept": torch.from_numpy(self.intercept_)}

    def _set_state(self, s):
        self.C_, self.coef_, self.intercept_ = s["C"], s["coef"].numpy(), s["intercept"].numpy()

    def _chosen(self):
        return {"C": self.C_}

    def _state_spec(self, state, n_features, n_outputs):
        return {"C": Number(float, 0, open=True), "coef": Tensor((n_outputs, n_features)),
                "intercept": Tensor((n_outputs,))}


def linear_logits(X, coef, bias):
    return X @ coef.T + bias
