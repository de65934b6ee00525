"""Weighted average of several heads' probabilities: seeds (``--seeds N --ensemble``) or head kinds
(``train-head ensemble --members logreg,mlp,retrieval``), with weights fitted on the members'
out-of-fold predictions (:func:`fit_weights`), never on dev."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from memeprobe.heads.base import HeadParameterError, Outputs


class EnsembleHead(Outputs, BaseEstimator):
    """Weighted mean probability of ``members`` (heads; equal weights by default), with its own thresholds.

    ``fit`` fits a clone of every member; :meth:`from_fitted` wraps heads that are already fitted."""

    name = "ensemble"
    _parameter_constraints = {"members": [list], "weights": [None, "array-like"]}

    def __init__(self, members, weights=None):
        self.members = members
        self.weights = weights

    def _set_weights(self):
        try:
            self._validate_params()
        except InvalidParameterError as e:
            raise HeadParameterError(str(e)) from None
        n = len(self.members)
        w = np.ones(n) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        if not n or w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
            raise HeadParameterError(f"an ensemble needs at least one member and {n} non-negative weights, "
                                     f"got {w.tolist()}")
        self.weights_ = w / w.sum()

    def fit(self, X, y):
        self._set_weights()
        self.estimators_ = [clone(m).fit(X, y) for m in self.members]
        return self._copy_outputs()

    @classmethod
    def from_fitted(cls, heads, weights=None) -> "EnsembleHead":
        """An ensemble of already fitted ``heads`` (one target layout)."""
        ens = cls(list(heads), weights)
        ens._set_weights()
        ens.estimators_ = list(heads)
        return ens._copy_outputs()

    def _copy_outputs(self):
        first = self.estimators_[0]
        for key in ("classes_", "multilabel_", "multiclass_", "n_outputs_", "n_features_in_", "feature_names_in_"):
            if hasattr(first, key):
                setattr(self, key, getattr(first, key))
        self.thresholds_ = np.array(first.thresholds_, dtype=np.float64)
        self.rule_ = dict(getattr(first, "rule_", None) or {})
        return self

    def positive_proba(self, X):
        check_is_fitted(self)
        return np.tensordot(self.weights_, np.array([m.positive_proba(X) for m in self.estimators_]), axes=1)

    def describe(self) -> dict:
        """Plain-value summary for the runs table."""
        return {"members": [m.name for m in self.estimators_], "weights": [float(w) for w in self.weights_],
                "member_params": self.estimators_[0].get_params()}

    def to_dict(self):
        import torch

        from memeprobe.heads.base import _rule

        return {"head": self.name, "members": [m.to_dict() for m in self.estimators_],
                "weights": [float(w) for w in self.weights_],
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
