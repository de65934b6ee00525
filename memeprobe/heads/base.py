"""The head mix-in: sklearn-style params, input normalisation, thresholds, save/load.

Every head takes one float matrix ``X`` (the store's arrays flattened per row and concatenated;
``blocks`` gives the width of each array so normalisation and fusion can split it again) and
a target ``y`` that is either binary ``(n,)`` or multi-hot ``(n, K)``. ``predict_proba``
returns the positive-class probability: ``(n,)`` for a binary target, ``(n, K)`` for a
multi-label one. A saved head is a ``torch.save`` file of plain types and tensors only,
so it loads with ``weights_only=True``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator

from memeprobe.errors import MemeprobeError

FORMAT = "memeprobe-head/1"
NORMS = ("l2", "standard", "l2+standard", "none")


def as_2d(y: np.ndarray) -> np.ndarray:
    """A target as ``(n, K)`` float32 (a binary target becomes one column)."""
    y = np.asarray(y, dtype=np.float32)
    return y[:, None] if y.ndim == 1 else y


class Head(BaseEstimator):
    """Shared behaviour of the heads; subclasses implement ``_fit`` and ``_logits``."""

    name = "head"

    # -- normalisation -------------------------------------------------------------
    def _blocks(self, X: np.ndarray) -> list[int]:
        blocks = list(self.blocks) if getattr(self, "blocks", None) else [X.shape[1]]
        if sum(blocks) != X.shape[1]:
            raise MemeprobeError(
                f"{self.name}: blocks {blocks} sum to {sum(blocks)} but X has {X.shape[1]} columns; "
                "pass blocks matching the arrays you load"
            )
        return blocks

    def _fit_norm(self, X: np.ndarray) -> None:
        if self.norm not in NORMS:
            raise MemeprobeError(f"{self.name}: unknown norm {self.norm!r}; choose one of {', '.join(NORMS)}")
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

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The normalised input the head sees."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != sum(self.blocks_):
            raise MemeprobeError(
                f"{self.name}: expected X with {sum(self.blocks_)} columns, got shape {X.shape}; "
                "load the same feature arrays the head was trained on"
            )
        if self.norm.startswith("l2"):
            X = self._l2(X)
        if self.mean_ is not None:
            X = (X - self.mean_) / self.scale_
        return X

    # -- estimator API -------------------------------------------------------------
    def fit(self, X, y, X_dev=None, y_dev=None):
        """Fit on ``(X, y)``; the dev split (optional) selects C / early-stops / tunes nothing else."""
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y)
        if len(X) != len(y):
            raise MemeprobeError(f"{self.name}: X has {len(X)} rows but y has {len(y)}")
        if (y < 0).any():
            raise MemeprobeError(f"{self.name}: the training target has unlabeled rows (-1); train on a labeled split")
        self.multilabel_ = y.ndim == 2
        self.n_outputs_ = y.shape[1] if self.multilabel_ else 1
        self._fit_norm(X)
        dev = None
        if X_dev is not None and y_dev is not None and len(X_dev):
            dev = (self.transform(X_dev), as_2d(y_dev))
        self._fit(self.transform(X), as_2d(y), dev)
        self.thresholds_ = np.full(self.n_outputs_, 0.5)
        return self

    def decision_function(self, X) -> np.ndarray:
        return self._logits(self.transform(X))

    def predict_proba(self, X) -> np.ndarray:
        """Positive-class probability: ``(n,)`` (binary) or ``(n, K)`` (multi-label)."""
        from scipy.special import expit

        p = expit(self.decision_function(X).astype(np.float64))
        return p if self.multilabel_ else p[:, 0]

    def predict(self, X) -> np.ndarray:
        """0/1 decisions at ``thresholds_`` (0.5 until tuned) under the multi-label ``rule_``."""
        from memeprobe.heads.thresholds import decide

        return decide(self.predict_proba(X), self.thresholds_, getattr(self, "rule_", None))

    # -- persistence -----------------------------------------------------------------
    def _state(self) -> dict:
        raise NotImplementedError

    def _set_state(self, state: dict) -> None:
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
                "blocks": [int(b) for b in self.blocks_], "mean": t(self.mean_), "scale": t(self.scale_),
                "thresholds": t(self.thresholds_), "rule": _rule(self),
            },
            "state": self._state(),
        }

    def _restore(self, d: dict) -> None:
        f = d["fitted"]
        self.multilabel_, self.n_outputs_, self.blocks_ = f["multilabel"], f["n_outputs"], list(f["blocks"])
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
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        torch.save({"format": FORMAT, "model": head.to_dict(), "meta": meta}, f)
    return path


def read_model_file(path):
    """The object in a model file, read without running code (``weights_only``); one clear line if it is none."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise MemeprobeError(f"model file {path} does not exist; train one with `memeprobe train-head ... --out {path}`")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise MemeprobeError(f"{path} is not a memeprobe model file ({e.__class__.__name__}); "
                             "pass the file written by `memeprobe train-head --out`") from None


def load_model(path) -> tuple["Head", dict]:
    """``(head, meta)`` from a file written by :meth:`Head.save`."""
    from memeprobe.heads.factory import head_from_dict

    d = read_model_file(path)
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise MemeprobeError(f"{path} is not a memeprobe model file (format {FORMAT} expected)")
    from memeprobe.heads.validate import check_model_dict

    check_model_dict(d, path)
    return head_from_dict(d["model"]), d["meta"]
