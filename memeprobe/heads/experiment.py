"""One experiment: select and fit a head config (over one or more seeds), evaluate every split.

Protocols (``select_on``): ``train`` (default) chooses C / thresholds from out-of-fold predictions
of stratified k-fold CV on the training split, refits on all of it and leaves dev untouched (a clean
estimate); ``train+dev`` does the same on train and dev together; ``dev`` fits on train and tunes on
dev (dev's score is then in-sample). The metrics hold every labeled split, ``cv`` (the out-of-fold
estimate) and, per split, the trivial baselines; ``in_sample`` names the splits selection saw.
Unlabeled rows (-1) are left out of training, tuning and metrics, and counted in ``notes``.
With several seeds, every seed's metrics are summarised as mean ± std; the returned model is
the first seed's head, or with ``ensemble`` the average of all seeds (thresholds re-tuned).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memeprobe.errors import MemeprobeError
from memeprobe.heads.factory import create_head
from memeprobe.store.features import Features
from memeprobe.heads.metrics import MAMI_TYPES, baselines, evaluate
from memeprobe.heads.selection import (CV_FOLDS, check_informative, check_two_classes, cv_folds, duplicate_groups,
                                      oof_proba)
from memeprobe.heads.thresholds import NO_RULE, decide, fit_rule, tune_thresholds
from memeprobe.leakage.manifest import read_clean_ids  # noqa: F401 (the heads CLI reads clean ids from here)

SELECT_ON = ("train", "train+dev", "dev")


def labeled(f: Features) -> np.ndarray:
    return f.y >= 0 if f.y.ndim == 1 else (f.y >= 0).all(1)


@dataclass
class Result:
    model: object
    metrics: dict  # split → metrics (also "SPLIT@clean")
    seeds: dict = field(default_factory=dict)  # split → metric → {"mean", "std"} when several seeds
    notes: list = field(default_factory=list)
    baselines: dict = field(default_factory=dict)  # split → baseline name → metrics
    in_sample: list = field(default_factory=list)  # splits the selection saw


def default_metric(y, names) -> str:
    """Threshold metric: accuracy (binary), two-class macro-F1 (MAMI columns, as its scorer), else F1."""
    if np.asarray(y).ndim == 1:
        return "accuracy"
    return "macro_f1" if set(MAMI_TYPES) <= set(names or []) else "f1"


def _set_decisions(head, y, P, tune_metric, names):
    head.thresholds_ = tune_thresholds(y, P, tune_metric or default_metric(y, names))
    head.rule_ = fit_rule(y, names) if np.asarray(y).ndim == 2 else dict(NO_RULE)


def concat(a: Features, b: Features) -> Features:
    return Features(np.vstack([a.X, b.X]), np.concatenate([a.ids, b.ids]), np.concatenate([a.y, b.y]),
                    np.concatenate([a.rows, b.rows]), a.blocks, a.modalities)


def fit_one(name, config, train: Features, dev: Features | None, seed: int, tune_metric=None, names=None,
            cv=CV_FOLDS):
    """A fitted head. Without ``dev``: C / thresholds from ``cv``-fold out-of-fold predictions on
    ``train`` (kept in ``oof_``), then refitted on all of it. With ``dev``: tuned on dev."""
    tr = labeled(train)
    if not tr.any():
        raise MemeprobeError("the training split has no labeled rows; choose a labeled --train-split")
    X, y = train.X[tr], train.y[tr]
    check_two_classes(y)
    check_informative(X)
    head = create_head(name, **{**config, "seed": seed, "blocks": tuple(train.blocks)})
    if dev is not None:
        ok = labeled(dev)
        check_two_classes(dev.y[ok], "the dev split used for selection")
        Xd, yd = dev.X[ok], dev.y[ok]
        head.fit(X, y, Xd, yd)
        _set_decisions(head, yd, head.positive_proba(Xd), tune_metric, names)
        head.rule_ = fit_rule(y, names) if y.ndim == 2 else dict(NO_RULE)
        head.oof_ = None
        return head
    head.fit(X, y)
    if getattr(head, "oof_", None) is None:
        params = {**head.get_params(), **({"C": head.C_} if hasattr(head, "C_") else {})}
        head.oof_ = oof_proba(lambda: create_head(name, **params), X, y, cv_folds(y, cv, seed, duplicate_groups(X)))
    _set_decisions(head, y, head.oof_, tune_metric, names)
    return head


def score(model, data: dict[str, Features], names, clean=None, n_boot=1000, seed=0, no_ci=()) -> dict:
    """Metrics of ``model`` on every split with labels (and on its clean subset when given).

    Splits in ``no_ci`` (e.g. the training split) get no bootstrap CI."""
    out = {}
    for split, f in data.items():
        ok = labeled(f)
        if not ok.any():
            continue
        p = model.positive_proba(f.X[ok])
        pred = model.predict(f.X[ok])
        out[split] = evaluate(f.y[ok], p, model.thresholds_, names, n_boot=0 if split in no_ci else n_boot,
                              seed=seed, pred=pred)
        if clean and split in clean:
            keep = np.isin(f.ids[ok], list(clean[split]))
            if keep.any():
                out[f"{split}@clean"] = evaluate(f.y[ok][keep], p[keep], model.thresholds_, names,
                                                 n_boot=n_boot, seed=seed, pred=pred[keep])
    return out


def _summary(per_seed: list[dict]) -> dict:
    out = {}
    for split in per_seed[0]:
        values = {k: np.array([m[split][k] for m in per_seed]) for k, v in per_seed[0][split].items()
                  if isinstance(v, float)}
        out[split] = {k: {"mean": float(v.mean()), "std": float(v.std())} for k, v in values.items()
                      if not np.isnan(v).any()}
    return out


def _prior_note(y, oof, threshold) -> str:
    prior = float(np.mean(y))
    majority = max(prior, 1 - prior)
    acc = float(np.mean((np.asarray(oof) >= threshold) == y))
    note = (f"label threshold {threshold:.3f} assumes the selection data's prior ({prior:.1%} positive): "
            f"expected accuracy {acc:.4f} (out-of-fold) vs {majority:.4f} for always the majority class")
    if acc < majority:
        note += ("; WARNING: below the majority class, the submission's labels would lose to a constant "
                 "(tune the threshold for accuracy or predict the majority)")
    return note


def run_experiment(name, config, data: dict[str, Features], train_split, dev_split, names, seed=0, n_seeds=1,
                   ensemble=False, tune_metric=None, clean=None, n_boot=1000, select_on="train") -> Result:
    """Select on ``select_on`` (see module doc), fit, and score every split of ``data``."""
    if select_on not in SELECT_ON:
        raise MemeprobeError(f"unknown selection protocol {select_on!r}; choose one of {', '.join(SELECT_ON)}")
    train, dev = data[train_split], data.get(dev_split) if dev_split else None
    if select_on != "train" and dev is None:
        raise MemeprobeError(f"selection on {select_on} needs a dev split with labels")
    notes = [f"{split}: {int((~labeled(f)).sum())} unlabeled rows left out of training/metrics"
             for split, f in data.items() if (~labeled(f)).any() and split in (train_split, dev_split)]
    selection = concat(train, dev) if select_on == "train+dev" else train
    in_sample = [train_split] + ([dev_split] if select_on != "train" else [])
    ok = labeled(selection)
    y_sel = selection.y[ok]
    if name == "ensemble":
        return _kinds_ensemble(config, data, selection, y_sel, train_split, names, seed, tune_metric, clean, n_boot,
                               select_on, notes, in_sample)
    heads, per_seed = [], []
    for s in range(seed, seed + max(1, int(n_seeds))):
        heads.append(fit_one(name, config, selection, dev if select_on == "dev" else None, s, tune_metric, names))
        if n_seeds > 1:
            per_seed.append(score(heads[-1], data, names, clean, n_boot=0))
    model = heads[0]
    if ensemble and len(heads) > 1:
        from memeprobe.heads.ensemble import EnsembleHead

        model = EnsembleHead.from_fitted(heads)
        model.rule_ = heads[0].rule_
        if select_on == "dev":
            okd = labeled(dev)
            model.thresholds_ = tune_thresholds(dev.y[okd], model.positive_proba(dev.X[okd]),
                                                tune_metric or default_metric(dev.y, names))
        else:
            model.oof_ = np.mean([h.oof_ for h in heads], axis=0)
            model.thresholds_ = tune_thresholds(y_sel, model.oof_, tune_metric or default_metric(y_sel, names))
    return _finish(model, data, y_sel, train_split, names, seed, clean, n_boot, notes, in_sample,
                   _summary(per_seed) if per_seed else {})


def _kinds_ensemble(config, data, selection, y_sel, train_split, names, seed, tune_metric, clean, n_boot, select_on,
                    notes, in_sample) -> Result:
    """Members of several head kinds (default configs), weights and thresholds from out-of-fold predictions."""
    from memeprobe.heads.ensemble import EnsembleHead, fit_weights

    kinds = list(config.get("members") or ())
    if len(kinds) < 2 or set(config) - {"members"} or select_on == "dev":
        raise MemeprobeError("an ensemble takes two or more member heads (e.g. logreg,mlp,retrieval), no other "
                             "parameters, and selects by cross-validation (not on dev)")
    heads = [fit_one(kind, {}, selection, None, seed, tune_metric, names) for kind in kinds]
    model = EnsembleHead.from_fitted(heads, fit_weights(y_sel, [h.oof_ for h in heads]))
    model.rule_ = heads[0].rule_
    model.oof_ = np.tensordot(model.weights_, np.array([h.oof_ for h in heads]), axes=1)
    model.thresholds_ = tune_thresholds(y_sel, model.oof_, tune_metric or default_metric(y_sel, names))
    notes.append("ensemble weights (fitted on out-of-fold predictions): "
                 + ", ".join(f"{k} {w:.1f}" for k, w in zip(kinds, model.weights_)))
    return _finish(model, data, y_sel, train_split, names, seed, clean, n_boot, notes, in_sample, {})


def _finish(model, data, y_sel, train_split, names, seed, clean, n_boot, notes, in_sample, seeds) -> Result:
    metrics = score(model, data, names, clean, n_boot=n_boot, seed=seed, no_ci=(train_split,))
    base = {s: baselines(y_sel, data[s].y[labeled(data[s])], names, seed=seed) for s in metrics if s in data}
    oof = getattr(model, "oof_", None)
    if oof is not None:
        metrics["cv"] = evaluate(y_sel, oof, model.thresholds_, names, n_boot=0,
                                 pred=decide(oof, model.thresholds_, model.rule_))
        base["cv"] = baselines(y_sel, y_sel, names, seed=seed)
        if y_sel.ndim == 1:
            notes.append(_prior_note(y_sel, oof, float(model.thresholds_[0])))
    return Result(model, metrics, seeds, notes, base, in_sample)
