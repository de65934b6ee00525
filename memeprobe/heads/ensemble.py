"""Weighted average of several fitted heads' probabilities: seeds (``--seeds N --ensemble``) or head
kinds (``train-head ensemble --members logreg,mlp,retrieval``), with weights fitted on the members'
out-of-fold predictions (:func:`fit_weights`), never on dev."""
from __future__ import annotations

import numpy as np

from memeprobe.errors import MemeprobeError


class EnsembleHead:
    """Weighted mean probability of ``members`` (fitted heads of one target shape; equal weights by
    default); has its own thresholds."""

    name = "ensemble"

    def __init__(self, members, weights=None):
        if not members:
            raise MemeprobeError("an ensemble needs at least one fitted head")
        self.members = list(members)
        w = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(members),) or (w < 0).any() or w.sum() <= 0:
            raise MemeprobeError(f"ensemble weights {w.tolist()} must be {len(members)} non-negative numbers")
        self.weights = w / w.sum()
        self.multilabel_ = members[0].multilabel_
        self.n_outputs_ = members[0].n_outputs_
        self.thresholds_ = np.full(self.n_outputs_, 0.5)

    def get_params(self, deep=True):
        return {"members": [m.name for m in self.members], "weights": [float(w) for w in self.weights],
                "member_params": self.members[0].get_params()}

    def predict_proba(self, X):
        return np.tensordot(self.weights, np.array([m.predict_proba(X) for m in self.members]), axes=1)

    def predict(self, X):
        from memeprobe.heads.thresholds import decide

        return decide(self.predict_proba(X), self.thresholds_, getattr(self, "rule_", None))

    def to_dict(self):
        import torch

        from memeprobe.heads.base import _rule

        return {"head": self.name, "members": [m.to_dict() for m in self.members],
                "weights": [float(w) for w in self.weights],
                "thresholds": torch.as_tensor(self.thresholds_), "rule": _rule(self)}

    def save(self, path, meta=None):
        from memeprobe.heads.base import save_model

        return save_model(path, self, meta or {})


def fit_weights(y, oofs, step=0.1) -> np.ndarray:
    """Simplex weights (grid of ``step``) maximising the selection score (AUROC / macro AP) of the
    weighted mean of the members' out-of-fold probabilities ``oofs``."""
    import itertools

    from memeprobe.heads.metrics import dev_score

    oofs = np.asarray(oofs, dtype=np.float64)
    m, n = len(oofs), int(round(1 / step))
    best = (-np.inf, np.full(m, 1.0 / m))
    for c in itertools.product(range(n + 1), repeat=m - 1):
        if sum(c) > n:
            continue
        w = np.array([*c, n - sum(c)], dtype=np.float64) / n
        score = dev_score(y, np.tensordot(w, oofs, axes=1))
        if score > best[0] + 1e-12:
            best = (score, w)
    return best[1]
