"""Weighted average of several heads' probabilities: seeds (``--seeds N --ensemble``) or head kinds
(``train-head ensemble --members logreg,mlp,retrieval``), with weights fitted on the members'
out-of-fold predictions (:func:`fit_weights`), never on dev."""
from __future__ import annotations

import itertools

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from memeprobe.errors import ConfigError
from memeprobe.heads.base import HeadParameterError, Outputs, check_params
from memeprobe.heads.metrics import dev_score
from memeprobe.heads.selection import CV_FOLDS
from memeprobe.params import Choices, to_sklearn

OOF = "oof"  # weights fitted on the members' out-of-fold predictions


class EnsembleHead(Outputs, BaseEstimator):
    """Weighted mean probability of ``members`` (heads, or head kinds :func:`~memeprobe.heads.factory.create_head`
    makes), with ``weights`` fitted on their out-of-fold predictions (``"oof"``, the default), given, or
    equal (None).

    ``fit`` fits a clone of every member; :meth:`from_fitted` wraps heads that are already fitted."""

    name = "ensemble"
    task = "labels"
    _parameter_constraints = {"members": [list, tuple], **to_sklearn({"weights": [None, "array-like", Choices({OOF})]})}
    _member_params = ("members",)  # parameters that hold heads (create_head makes them from head kinds)

    def __init__(self, members=(), weights=OOF):
        self.members = members
        self.weights = weights

    def fit(self, X, y, X_dev=None, y_dev=None):
        """Fit every member (on the dev split too, when given); fit the weights when they are ``"oof"``."""
        check_params(self)
        fitted = isinstance(self.weights, str)
        if fitted and len(self.members) < 2:
            raise HeadParameterError("an ensemble with weights fitted on out-of-fold predictions takes two or more "
                                     f"member heads (e.g. logreg,mlp,retrieval), got {len(self.members)}")
        if fitted and X_dev is not None and y_dev is not None and len(X_dev):
            raise ConfigError("an ensemble fits its weights on out-of-fold predictions: it selects by "
                              "cross-validation on the training rows, not on dev", option="select_on")
        self.estimators_ = [clone(m).fit(X, y, X_dev, y_dev) for m in self.members]
        self._set_weights(fit_weights(y, [m.out_of_fold(X, y) for m in self.estimators_]) if fitted else self.weights)
        return self._copy_outputs()

    @classmethod
    def from_fitted(cls, heads, weights=None) -> "EnsembleHead":
        """An ensemble of already fitted ``heads`` (one target layout), weighted by ``weights`` (None: equal)."""
        ens = cls(list(heads), weights)
        check_params(ens)
        ens.estimators_ = list(heads)
        ens._set_weights(weights)
        return ens._copy_outputs()

    def _set_weights(self, weights) -> None:
        n = len(self.estimators_)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        if not n or w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
            raise HeadParameterError(f"an ensemble needs at least one member and {n} non-negative weights, "
                                     f"got {w.tolist()}")
        self.weights_ = w / w.sum()

    def _copy_outputs(self):
        self._outputs_of(self.estimators_[0])
        self._plain_decisions()
        return self

    def positive_proba(self, X):
        check_is_fitted(self)
        return np.tensordot(self.weights_, np.array([m.positive_proba(X) for m in self.estimators_]), axes=1)

    def out_of_fold(self, X, y, cv=CV_FOLDS) -> np.ndarray:
        """The members' out-of-fold probabilities of their training rows ``(X, y)``, weighted (equal weights: their
        mean)."""
        oofs = [m.out_of_fold(X, y, cv) for m in self.estimators_]
        return np.mean(oofs, axis=0) if self.weights is None else np.tensordot(self.weights_, np.array(oofs), axes=1)

    def describe(self) -> dict:
        """Plain-value summary for the runs table."""
        heads = [getattr(m, "estimator_", m) for m in self.estimators_]
        return {"members": [m.name for m in heads], "weights": [float(w) for w in self.weights_],
                "member_params": heads[0].get_params()}

    def fit_notes(self) -> list[str]:
        """What ``fit`` chose, to print beside the scores."""
        if not isinstance(self.weights, str):
            return []
        return ["ensemble weights (fitted on out-of-fold predictions): "
                + ", ".join(f"{m.name} {w:.1f}" for m, w in zip(self.estimators_, self.weights_))]


def fit_weights(y, oofs, step=0.1) -> np.ndarray:
    """Simplex weights (grid of ``step``) maximising the selection score (AUROC / macro AP) of the
    weighted mean of the members' out-of-fold probabilities ``oofs``."""
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
