"""Selection by cross-validation: stratified folds and out-of-fold predictions.

Binary targets use sklearn's ``StratifiedKFold``; multi-hot targets iterative stratification
(Sechidis et al. 2011, ``iterstrat``), so every fold keeps each class's share. Rows with identical
features (e.g. the same caption twice) form one group and always land in the same fold, so a
duplicate never scores its own copy. The fold count drops to the smallest class count when a class
is rarer than ``k`` (never below 2).
"""
from __future__ import annotations

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
from sklearn.model_selection import StratifiedKFold

from memeprobe.errors import DatasetError

CV_FOLDS = 5


def check_two_classes(y, what="the training split") -> None:
    """Refuse a target without both values anywhere (nothing to learn or select on)."""
    Y = np.asarray(y)
    Y = Y[:, None] if Y.ndim == 1 else Y
    if len(Y) == 0 or not any(Y[:, k].min() != Y[:, k].max() for k in range(Y.shape[1])):
        raise DatasetError(f"{what} has {len(Y)} labeled rows and only one class"
                           f"{'' if Y.shape[1] == 1 else ' per label'}; a head needs positives and negatives "
                           "(choose another split or add labeled rows)")


def check_informative(X, what="the training split") -> None:
    """Refuse features equal on every row (a constant array): there is nothing to learn from them."""
    X = np.asarray(X)
    if len(X) > 1 and (X == X[:1]).all():
        raise DatasetError(f"the {len(X)} labeled rows of {what} all have the same feature values (a constant "
                           "array): a head has nothing to learn from them; check the feature set")


def duplicate_groups(X) -> np.ndarray:
    """Group index of every row; rows with byte-identical features share one."""
    X = np.ascontiguousarray(X)
    rows = X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()
    return np.unique(rows, return_inverse=True)[1].ravel()


def cv_folds(y, k=CV_FOLDS, seed=0, groups=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(train_idx, test_idx)] * k`` stratified on ``y`` ((n,) binary or (n, K) multi-hot); rows of
    one group (default: each row its own) stay in one fold, stratified on the group's first label."""
    y = np.asarray(y)
    check_two_classes(y)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    _, first, member = np.unique(groups, return_index=True, return_inverse=True)
    g = y[first]
    if len(g) < 2 or (g.ndim == 1 and np.bincount(g.astype(int), minlength=2).max() < 2):
        raise DatasetError(f"the {len(y)} training rows have only {len(g)} distinct feature vector(s) (identical "
                           "rows share one cross-validation fold): too few to cross-validate; check the feature set")
    if g.ndim == 1:
        k = max(2, min(k, int(np.bincount(g.astype(int), minlength=2).min())))
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        k = max(2, min(k, len(g)))
        splitter = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    member = member.ravel()
    return [(np.flatnonzero(np.isin(member, tr)), np.flatnonzero(np.isin(member, te)))
            for tr, te in splitter.split(np.zeros(len(g)), g)]


def oof_proba(make_head, X, y, folds) -> np.ndarray:
    """Out-of-fold probabilities: each row predicted by a head fitted without its fold."""
    out = None
    for tr, te in folds:
        p = make_head().fit(X[tr], y[tr]).positive_proba(X[te])
        if out is None:
            out = np.zeros((len(X),) + p.shape[1:])
        out[te] = p
    return out
