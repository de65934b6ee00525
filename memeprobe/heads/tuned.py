"""Decisions tuned inside the estimator, as sklearn's ``TunedThresholdClassifierCV`` does for one threshold.

:class:`TunedHead` wraps a head (or an ensemble of heads). Its ``fit`` fits the head on all rows, takes the
out-of-fold probabilities of those rows (:meth:`~memeprobe.heads.base.Head.out_of_fold`: the head's own
cross-validation or leave-one-out where its selection made them, else refits on stratified folds), tunes the
thresholds on them (:func:`~memeprobe.heads.thresholds.tune_thresholds`) and learns the multi-label decision rule
from the targets (:func:`~memeprobe.heads.thresholds.fit_rule`). Given a dev split, the head selects on it and the
thresholds are tuned on its dev probabilities instead. ``predict`` then decides exactly as the model
``train-head`` saves: :func:`~memeprobe.heads.factory.create_head` makes heads wrapped in it, and
:func:`~memeprobe.heads.persist.load_model` returns one.
"""
from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from memeprobe.heads.base import Outputs, check_params
from memeprobe.heads.choices import METRICS
from memeprobe.heads.selection import CV_FOLDS
from memeprobe.heads.thresholds import NO_RULE, default_metric, fit_rule, tune_thresholds
from memeprobe.params import Choices, Range, to_sklearn


class TunedHead(MetaEstimatorMixin, Outputs, BaseEstimator):
    """``estimator`` with thresholds and a decision rule tuned in ``fit``.

    ``metric``: what the thresholds maximise (``accuracy``, ``f1``, ``macro_f1``; None: accuracy for a binary
    target, two-class macro-F1 for MAMI's columns, else F1); ``label_names``: the target's names (MAMI's
    columns get the parent rule: no type without ``misogynous``); ``cv``: folds of the out-of-fold refits, or
    ``"prefit"`` for an estimator that is already fitted (on the rows ``fit`` is then given)."""

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "positive_proba", "out_of_fold"])],
        **to_sklearn({"metric": [None, Choices(METRICS)], "label_names": [None, "array-like"],
                      "cv": [Range(Integral, 2), Choices({"prefit"})]}),
    }

    def __init__(self, estimator, metric=None, label_names=None, cv=CV_FOLDS):
        self.estimator = estimator
        self.metric = metric
        self.label_names = label_names
        self.cv = cv

    @property
    def name(self) -> str:
        return self.estimator.name

    @property
    def task(self) -> str:
        return self.estimator.task

    def fit(self, X, y, X_dev=None, y_dev=None):
        """Fit the head on ``(X, y)`` and tune its decisions on out-of-fold predictions of these rows, or on the
        dev split when one is given (the head then selects on it too)."""
        check_params(self)
        dev = X_dev is not None and y_dev is not None and len(X_dev)
        if self.cv == "prefit":
            self.estimator_ = self.estimator
        else:
            self.estimator_ = clone(self.estimator).fit(X, y, X_dev, y_dev) if dev else clone(self.estimator).fit(X, y)
        est = self.estimator_
        self._outputs_of(est)
        self.oof_ = None
        if self.multiclass_:  # single-label classes: the argmax, nothing to tune
            self.thresholds_, self.rule_ = np.array(est.thresholds_, dtype=np.float64), dict(est.rule_)
            return self
        if dev:
            self.thresholds_ = self._tune(y_dev, est.positive_proba(X_dev))
        else:
            self.oof_ = est.out_of_fold(X, y, CV_FOLDS if self.cv == "prefit" else self.cv)
            self.thresholds_ = self._tune(y, self.oof_)
        self.rule_ = fit_rule(np.asarray(y), self.label_names) if self.multilabel_ else dict(NO_RULE)
        return self

    def _tune(self, y, P) -> np.ndarray:
        y = np.asarray(y) if self.multilabel_ else (np.asarray(y) == self.classes_[1]).astype(np.int64)
        return tune_thresholds(y, P, self.metric or default_metric(y, self.label_names))

    @classmethod
    def restored(cls, estimator, thresholds, rule=None, tuning=None) -> "TunedHead":
        """A fitted :class:`TunedHead` of a fitted ``estimator`` with the decisions a model file saved."""
        model = cls(estimator, **(tuning or {}))
        model.estimator_, model.oof_ = estimator, None
        model._outputs_of(estimator)
        model.thresholds_, model.rule_ = np.asarray(thresholds, dtype=np.float64), dict(rule or {})
        return model

    def positive_proba(self, X) -> np.ndarray:
        """The head's probability of each output being on: ``(n,)`` (binary) or ``(n, K)``."""
        check_is_fitted(self)
        return self.estimator_.positive_proba(X)

    @available_if(lambda self: hasattr(self.estimator, "decision_function"))
    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    def out_of_fold(self, X, y, cv=CV_FOLDS) -> np.ndarray:
        """The out-of-fold probabilities the thresholds were tuned on (else the head's, for these rows)."""
        return self.oof_ if self.oof_ is not None else self.estimator_.out_of_fold(X, y, cv)
