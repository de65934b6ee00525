"""The head base classes: scikit-learn classifiers on cached features.

Every head takes one float matrix ``X`` (the store's arrays flattened per row and concatenated;
``blocks`` gives the width of each array so normalisation and fusion can split it again) and a
target ``y``, as sklearn's classifiers do:

* 1-D ``y`` (any labels): ``classes_`` are its sorted values. Two classes: one output, the
  probability of ``classes_[1]``; more: one output per class (one-vs-rest sigmoids, argmax
  decision). ``predict_proba`` is ``(n, n_classes)`` with rows summing to 1.
* 2-D multi-hot ``y`` ``(n, K)`` of 0/1 (multi-label, memeprobe's ``labels`` / ``all`` targets):
  ``classes_`` is ``arange(K)`` and ``predict_proba`` is ``(n, K)``, each column the probability
  that label ``k`` is on (sklearn's multi-label indicator convention, as ``MLPClassifier``); rows
  need not sum to 1. A one-column 2-D ``y`` stays a one-label multi-label target.

:meth:`Head.positive_proba` gives the probability of each output being on: ``(n,)`` for a binary
target, ``(n, K)`` otherwise; thresholds, metrics and submissions work on it. A plain head decides at
0.5 (argmax for classes); :class:`~memeprobe.heads.tuned.TunedHead` tunes the decisions inside its fit.
Parameters are declared once per head in ``_parameter_constraints`` (the :mod:`memeprobe.params`
vocabulary, checked by sklearn in ``fit``). A head's fitted layout and state are plain values and tensors
(:meth:`Head._layout`, ``_state``); :mod:`memeprobe.heads.persist` writes and checks model files.
"""
from __future__ import annotations

from numbers import Integral

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from memeprobe.errors import ConfigError, DatasetError
from memeprobe.heads.choices import NORMS
from memeprobe.heads.selection import CV_FOLDS, cv_folds, duplicate_groups, oof_proba
from memeprobe.heads.thresholds import decide
from memeprobe.params import Choices, to_sklearn

# the parameters every head has
BASE_CONSTRAINTS = {"norm": [Choices(NORMS)], "blocks": [None, "array-like"], "seed": [Integral]}
ARGMAX = {"min_labels": 1, "max_labels": 1, "parent": -1}  # the decision rule of single-label classes
OUTPUT_LAYOUT = ("classes_", "multilabel_", "multiclass_", "n_outputs_", "n_features_in_", "feature_names_in_")


class HeadParameterError(ConfigError, InvalidParameterError):
    """A head parameter outside its declared constraints (an sklearn ``InvalidParameterError`` too)."""


class HeadTargetError(DatasetError, ValueError):
    """A target a head cannot learn (one class, unlabeled rows, not 0/1 multi-hot); a ``ValueError`` too."""


def as_2d(y: np.ndarray) -> np.ndarray:
    """A target as ``(n, K)`` float32 (a binary target becomes one column)."""
    y = np.asarray(y, dtype=np.float32)
    return y[:, None] if y.ndim == 1 else y


def check_params(estimator) -> None:
    """sklearn's check of ``estimator``'s parameters against its ``_parameter_constraints``, as a memeprobe error."""
    try:
        estimator._validate_params()
    except InvalidParameterError as e:
        raise HeadParameterError(str(e)) from None


class Outputs(ClassifierMixin):
    """Targets to outputs and back: ``classes_``, ``predict_proba`` and ``predict`` from ``positive_proba``."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _init_outputs(self, y) -> np.ndarray:
        """Set ``classes_`` and the output layout from ``y``; the ``(n, K)`` float32 target the head fits."""
        y = np.asarray(y)
        check_classification_targets(y)
        if y.ndim == 2:
            if y.size and not np.isin(y, (0, 1)).all():
                raise HeadTargetError(f"{self.name}: a 2-D target must be multi-hot 0/1 (-1 marks unlabeled rows; "
                                      "train on labeled rows only)")
            self.classes_, self.multilabel_, self.multiclass_ = np.arange(y.shape[1]), True, False
            self.n_outputs_ = y.shape[1]
            self._plain_decisions()
            return y.astype(np.float32)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.dtype.kind in "iuf" and {-1, 0} <= set(classes.tolist()):
            raise HeadTargetError(f"{self.name}: the target has unlabeled rows (-1); train on a labeled split")
        if len(classes) < 2:
            raise HeadTargetError(f"{self.name}: the target has only one class ({classes.tolist()}); a head needs "
                                  "rows of at least two classes")
        self.classes_, self.multilabel_, self.multiclass_ = classes, False, len(classes) > 2
        self.n_outputs_ = 1 if len(classes) == 2 else len(classes)
        self._plain_decisions()
        if self.multiclass_:  # one-hot outputs, argmax decision
            return np.eye(len(classes), dtype=np.float32)[codes.ravel()]
        return codes.ravel()[:, None].astype(np.float32)

    def _outputs_of(self, fitted) -> None:
        """The output layout of ``fitted`` (a wrapped or member estimator) as this estimator's own."""
        for key in OUTPUT_LAYOUT:
            if hasattr(fitted, key):
                setattr(self, key, getattr(fitted, key))

    def _plain_decisions(self) -> None:
        """Untuned decisions for the output layout: 0.5 per output, the argmax for single-label classes."""
        if self.multiclass_:
            self.thresholds_, self.rule_ = np.zeros(self.n_outputs_), dict(ARGMAX)
        else:
            self.thresholds_ = np.full(self.n_outputs_, 0.5)

    def _squeeze(self, p: np.ndarray) -> np.ndarray:
        """``(n, K)`` output probabilities in the :meth:`positive_proba` layout."""
        return p if self.multilabel_ or self.multiclass_ else p[:, 0]

    def predict_proba(self, X) -> np.ndarray:
        """``(n, n_classes)``: rows sum to 1 for a 1-D target; per-label probabilities for a multi-hot one."""
        p = self.positive_proba(X)
        if self.multilabel_:
            return p
        if self.multiclass_:
            return p / np.maximum(p.sum(1, keepdims=True), 1e-12)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        """Decisions at ``thresholds_`` under the multi-label ``rule_``: class labels for a 1-D target, 0/1
        ``(n, K)`` for a multi-hot one."""
        pred = decide(self.positive_proba(X), self.thresholds_, getattr(self, "rule_", None))
        if self.multilabel_:
            return pred
        return self.classes_[pred.argmax(1) if self.multiclass_ else pred]


class Head(Outputs, BaseEstimator):
    """Shared behaviour of the heads; subclasses implement ``_fit`` and ``_logits`` (and the state methods)."""

    name = "head"
    task = "labels"  # what the head predicts: labels per meme (the span tagger: spans of text)
    _member_params: tuple = ()  # parameters that hold heads (an ensemble's members)
    _parameter_constraints: dict = to_sklearn(BASE_CONSTRAINTS)

    # -- normalisation -------------------------------------------------------------
    def _blocks(self, X: np.ndarray) -> list[int]:
        blocks = [int(b) for b in self.blocks] if self.blocks is not None and len(self.blocks) else [X.shape[1]]
        if sum(blocks) != X.shape[1]:
            raise ConfigError(
                f"{self.name}: blocks {blocks} sum to {sum(blocks)} but X has {X.shape[1]} columns; "
                "pass blocks matching the arrays you load"
            )
        return blocks

    def _fit_norm(self, X: np.ndarray) -> None:
        self.blocks_ = self._blocks(X)
        self.mean_ = self.scale_ = None
        if "standard" in self.norm:
            Z = self._l2(X) if self.norm.startswith("l2") else X
            self.mean_ = Z.mean(0).astype(np.float32)
            self.scale_ = (Z.std(0) + 1e-6).astype(np.float32)

    def _l2(self, X: np.ndarray) -> np.ndarray:
        out, start = np.empty_like(X, dtype=np.float32), 0
        for width in self.blocks_:
            part = X[:, start:start + width]
            out[:, start:start + width] = part / (np.linalg.norm(part, axis=1, keepdims=True) + 1e-8)
            start += width
        return out

    def _normalise(self, X: np.ndarray) -> np.ndarray:
        """The normalised input the head sees (``X`` already validated)."""
        if self.norm.startswith("l2"):
            X = self._l2(X)
        if self.mean_ is not None:
            X = (X - self.mean_) / self.scale_
        return X

    def _input(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self._normalise(validate_data(self, X, reset=False, dtype=np.float32))

    # -- estimator API -------------------------------------------------------------
    def fit(self, X, y, X_dev=None, y_dev=None):
        """Fit on ``(X, y)``; the dev split (optional) selects C / early-stops / tunes nothing else."""
        check_params(self)
        X, y = validate_data(self, X, y, multi_output=True, dtype=np.float32)
        Y = self._init_outputs(y)
        self._fit_norm(X)
        dev = None
        if X_dev is not None and y_dev is not None and len(X_dev):
            Xd = validate_data(self, X_dev, reset=False, dtype=np.float32)
            dev = (self._normalise(Xd), self._encode(y_dev))
        self._fit(self._normalise(X), Y, dev)
        return self

    def _encode(self, y) -> np.ndarray:
        """A dev target in the fitted ``(n, K)`` output layout."""
        y = np.asarray(y)
        if self.multilabel_:
            return as_2d(y)
        codes = np.searchsorted(self.classes_, y)
        if self.multiclass_:
            return np.eye(len(self.classes_), dtype=np.float32)[codes]
        return codes[:, None].astype(np.float32)

    def decision_function(self, X) -> np.ndarray:
        """Logits: ``(n,)`` for a binary target, ``(n, K)`` otherwise."""
        return self._squeeze(self._logits(self._input(X)))

    def positive_proba(self, X) -> np.ndarray:
        """Probability of each output being on: ``(n,)`` (binary) or ``(n, K)`` (multi-label / per class)."""
        return self._squeeze(expit(self._logits(self._input(X)).astype(np.float64)))

    def out_of_fold(self, X, y, cv=CV_FOLDS) -> np.ndarray:
        """Out-of-fold probabilities of the rows ``(X, y)`` this head was fitted on: those its own selection
        made (``oof_``: logreg's cross-validation, retrieval's leave-one-out), else those of refits of its
        chosen configuration on ``cv`` folds drawn with its seed (rows with identical features share a fold)."""
        if getattr(self, "oof_", None) is not None:
            return self.oof_
        X, y = validate_data(self, X, reset=False, dtype=np.float32), np.asarray(y)
        strata = y if self.multilabel_ else np.searchsorted(self.classes_, y)  # class codes (0/1 targets: as given)
        chosen = clone(self).set_params(**self._chosen())
        return oof_proba(lambda: clone(chosen), X, y, cv_folds(strata, cv, self.seed, duplicate_groups(X)))

    def _chosen(self) -> dict:
        """The parameters the fit chose (e.g. logreg's C), as a refit should take them."""
        return {}

    # -- fitted layout and state (memeprobe.heads.persist writes and checks them) ---
    def _layout(self) -> dict:
        """The fitted output layout and normalisation every head has, as plain values and arrays."""
        return {"multilabel": bool(self.multilabel_), "n_outputs": int(self.n_outputs_),
                "multiclass": bool(self.multiclass_), "classes": self.classes_.tolist(),
                "blocks": [int(b) for b in self.blocks_], "mean": self.mean_, "scale": self.scale_}

    def _restore(self, layout: dict, state: dict) -> "Head":
        """A fitted head again from :meth:`_layout` (arrays as numpy) and :meth:`_state` (checked values)."""
        self.multilabel_, self.n_outputs_ = layout["multilabel"], layout["n_outputs"]
        self.blocks_ = list(layout["blocks"])
        self.multiclass_ = bool(layout.get("multiclass", False))
        self.classes_ = np.asarray(layout.get("classes", list(range(self.n_outputs_ if self.multilabel_ else 2))))
        self.n_features_in_ = sum(self.blocks_)
        self.mean_, self.scale_ = layout["mean"], layout["scale"]
        self._plain_decisions()
        self._set_state(state)
        return self

    def _state(self) -> dict:
        raise NotImplementedError

    def _set_state(self, state: dict) -> None:
        raise NotImplementedError

    def _state_spec(self, state: dict, n_features: int, n_outputs: int) -> dict:
        """What a saved ``state`` must hold for this head's parameters, ``n_features`` inputs and ``n_outputs``
        outputs: {dotted key: :class:`~memeprobe.heads.validate.Tensor` | :class:`~.validate.Number`}
        (checked before :meth:`_set_state` builds anything)."""
        raise NotImplementedError
