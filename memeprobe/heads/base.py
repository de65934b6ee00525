"""The head mix-in: scikit-learn classifiers on cached features, with thresholds and save/load.

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
target, ``(n, K)`` otherwise; thresholds, metrics and submissions work on it. Parameters are
declared once per head in ``_parameter_constraints`` (sklearn's validation, run by ``fit``). A
saved head is a ``torch.save`` file of plain types and tensors only, so it loads with
``weights_only=True``.
"""
from __future__ import annotations

from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import InvalidParameterError, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from memeprobe.errors import ConfigError, DatasetError, WeightsError

FORMAT = "memeprobe-head/1"
NORMS = ("l2", "standard", "l2+standard", "none")
# the parameters every head has
BASE_CONSTRAINTS = {"norm": [StrOptions(set(NORMS))], "blocks": [None, "array-like"], "seed": [Integral]}


class HeadParameterError(ConfigError, InvalidParameterError):
    """A head parameter outside its declared constraints (an sklearn ``InvalidParameterError`` too)."""


class HeadTargetError(DatasetError, ValueError):
    """A target a head cannot learn (one class, unlabeled rows, not 0/1 multi-hot); a ``ValueError`` too."""


def as_2d(y: np.ndarray) -> np.ndarray:
    """A target as ``(n, K)`` float32 (a binary target becomes one column)."""
    y = np.asarray(y, dtype=np.float32)
    return y[:, None] if y.ndim == 1 else y


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
            self.thresholds_ = np.full(self.n_outputs_, 0.5)
            return y.astype(np.float32)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.dtype.kind in "iuf" and {-1, 0} <= set(classes.tolist()):
            raise HeadTargetError(f"{self.name}: the target has unlabeled rows (-1); train on a labeled split")
        if len(classes) < 2:
            raise HeadTargetError(f"{self.name}: the target has only one class ({classes.tolist()}); a head needs "
                                  "rows of at least two classes")
        self.classes_, self.multilabel_, self.multiclass_ = classes, False, len(classes) > 2
        self.n_outputs_ = 1 if len(classes) == 2 else len(classes)
        if self.multiclass_:  # one-hot outputs, argmax decision
            self.thresholds_, self.rule_ = np.zeros(self.n_outputs_), {"min_labels": 1, "max_labels": 1, "parent": -1}
            return np.eye(len(classes), dtype=np.float32)[codes.ravel()]
        self.thresholds_ = np.full(1, 0.5)
        return codes.ravel()[:, None].astype(np.float32)

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
        """Decisions at ``thresholds_`` (0.5 until tuned) under the multi-label ``rule_``: class labels for a
        1-D target, 0/1 ``(n, K)`` for a multi-hot one."""
        from memeprobe.heads.thresholds import decide

        pred = decide(self.positive_proba(X), self.thresholds_, getattr(self, "rule_", None))
        if self.multilabel_:
            return pred
        return self.classes_[pred.argmax(1) if self.multiclass_ else pred]


class Head(Outputs, BaseEstimator):
    """Shared behaviour of the heads; subclasses implement ``_fit`` and ``_logits``."""

    name = "head"
    _parameter_constraints: dict = BASE_CONSTRAINTS

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
    def _check_params(self) -> None:
        try:
            self._validate_params()
        except InvalidParameterError as e:
            raise HeadParameterError(str(e)) from None

    def fit(self, X, y, X_dev=None, y_dev=None):
        """Fit on ``(X, y)``; the dev split (optional) selects C / early-stops / tunes nothing else."""
        self._check_params()
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
        from scipy.special import expit

        return self._squeeze(expit(self._logits(self._input(X)).astype(np.float64)))

# -- persistence -----------------------------------------------------------------
    def _state(self) -> dict:
        raise NotImplementedError

    def _set_state(self, state: dict) -> None:
        raise NotImplementedError

    def _state_spec(self, state: dict, n_features: int, n_outputs: int) -> dict:
        """What a saved ``state`` must hold for this head's parameters, ``n_features`` inputs and ``n_outputs``
        outputs: {dotted key: :class:`~memeprobe.heads.validate.Tensor` | :class:`~.validate.Number`}
        (checked before :meth:`_set_state` builds anything)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        import torch

        def t(a):
            return None if a is None else torch.as_tensor(np.asarray(a))

        return {
            "head": self.name,
            "params": _plain(self.get_params()),
            "fitted": {
                "multilabel": bool(self.multilabel_), "n_outputs": int(self.n_outputs_),
                "multiclass": bool(self.multiclass_), "classes": self.classes_.tolist(),
                "blocks": [int(b) for b in self.blocks_], "mean": t(self.mean_), "scale": t(self.scale_),
                "thresholds": t(self.thresholds_), "rule": _rule(self),
            },
            "state": self._state(),
        }

    def _restore(self, d: dict) -> None:
        f = d["fitted"]
        self.multilabel_, self.n_outputs_, self.blocks_ = f["multilabel"], f["n_outputs"], list(f["blocks"])
        self.multiclass_ = bool(f.get("multiclass", False))
        self.classes_ = np.asarray(f.get("classes", list(range(self.n_outputs_ if self.multilabel_ else 2))))
        self.n_features_in_ = sum(self.blocks_)
        self.mean_ = None if f["mean"] is None else f["mean"].numpy()
        self.scale_ = None if f["scale"] is None else f["scale"].numpy()
        self.thresholds_ = f["thresholds"].numpy()
        self.rule_ = dict(f.get("rule") or {})
        self._set_state(d["state"])

    def save(self, path, meta: dict | None = None) -> Path:
        """Write the head and ``meta`` (feature refs, store identity, label names...) to ``path``."""
        return save_model(path, self, meta or {})

    @classmethod
    def load(cls, path) -> "Head":
        head, _ = load_model(path)
        return head


def _rule(head) -> dict:
    from memeprobe.heads.thresholds import NO_RULE

    return {k: int(v) for k, v in {**NO_RULE, **(getattr(head, "rule_", None) or {})}.items()}


def _plain(value):
    """Params as JSON-able plain values (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_model(path, head, meta: dict) -> Path:
    """Write atomically: a crash or a full disk leaves the previous file at ``path`` untouched."""
    import torch

    from memeprobe.atomic import atomic_write

    path = Path(path)
    with atomic_write(path, "wb", kind="model", parents=True) as f:
        torch.save({"format": FORMAT, "model": head.to_dict(), "meta": meta}, f)
    return path


def read_model_file(path):
    """The object in a model file, read without running code (``weights_only``); one clear line if the file is
    none (a folder, a text file, a link to a store...: told by its first bytes, before torch reads it)."""
    import warnings

    import torch

    from memeprobe.torchfiles import LOAD_ERRORS, describe, kind

    path = Path(path)
    what = kind(path)
    if what == "missing":
        raise WeightsError(f"model file {describe(path, what)}; train one with `memeprobe train-head ... --out "
                           f"{path}`")
    if what != "torch":
        raise WeightsError(f"{describe(path, what)}, not a memeprobe model file; pass the file written by "
                           "`memeprobe train-head --out`")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of odd files: the error says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as e:
        first = (str(e).strip().splitlines() or [""])[0][:120]
        raise WeightsError(f"{path} is not a memeprobe model file ({e.__class__.__name__}: {first}); "
                           "pass the file written by `memeprobe train-head --out`") from None


def load_model(path) -> tuple["Head", dict]:
    """``(head, meta)`` from a file written by :meth:`Head.save`, every entry checked first (heads/validate.py)."""
    from memeprobe.heads.factory import head_from_dict
    from memeprobe.heads.validate import check_model_dict

    d = read_model_file(path)
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a memeprobe model file (format {FORMAT} expected)")
    check_model_dict(d, path)
    return head_from_dict(d["model"]), d["meta"]
