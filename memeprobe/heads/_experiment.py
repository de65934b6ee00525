"""One experiment: fit a head config (over one or more seeds) with its decisions tuned, evaluate every split.

Protocols (``select_on``): ``train`` (default) chooses C / thresholds from out-of-fold predictions
of stratified k-fold CV on the training split, refits on all of it and leaves dev untouched (a clean
estimate); ``train+dev`` does the same on train and dev together; ``dev`` fits on train and tunes on
dev (dev's score is then in-sample). The tuning is the estimator's own
(:class:`~memeprobe.heads.tuned.TunedHead`). The metrics hold every labeled split, ``cv`` (the
out-of-fold estimate) and, per split, the trivial baselines; ``in_sample`` names the splits selection
saw. Unlabeled rows (-1) are left out of training, tuning and metrics, and counted in ``notes``.
With several seeds, every seed's metrics are summarised as mean ± std; the returned model is
the first seed's head, or with ``ensemble`` the average of all seeds (thresholds re-tuned).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memeprobe.errors import ConfigError, DatasetError
from memeprobe.heads.choices import SELECT_ON
from memeprobe.heads.ensemble import EnsembleHead
from memeprobe.heads.factory import create_head
from memeprobe.heads.metrics import baselines, evaluate
from memeprobe.heads.selection import CV_FOLDS, check_informative, check_two_classes
from memeprobe.heads.thresholds import decide
from memeprobe.heads.tuned import TunedHead
from memeprobe.store.features import Features


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


def concat(a: Features, b: Features) -> Features:
    return Features(np.vstack([a.X, b.X]), np.concatenate([a.ids, b.ids]), np.concatenate([a.y, b.y]),
                    np.concatenate([a.rows, b.rows]), a.blocks, a.modalities)


def fit_one(name, config, train: Features, dev: Features | None, seed: int, tune_metric=None, names=None,
            cv=CV_FOLDS):
    """A fitted :class:`TunedHead`. Without ``dev``: C / thresholds from ``cv``-fold out-of-fold predictions on
    ``train`` (kept in ``oof_``), then refitted on all of it. With ``dev``: tuned on dev."""
    tr = labeled(train)
    if not tr.any():
        raise DatasetError("the training split has no labeled rows; choose a labeled --train-split")
    X, y = train.X[tr], train.y[tr]
    check_two_classes(y)
    check_informative(X)
    head = create_head(name, metric=tune_metric, label_names=names, cv=cv,
                       **{**config, "seed": seed, "blocks": tuple(train.blocks)})
    if dev is None:
        return head.fit(X, y)
    ok = labeled(dev)
    check_two_classes(dev.y[ok], "the dev split used for selection")
    return head.fit(X, y, dev.X[ok], dev.y[ok])


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
        raise ConfigError(f"unknown selection protocol {select_on!r}; choose one of {', '.join(SELECT_ON)}",
                          option="select_on")
    train, dev = data[train_split], data.get(dev_split) if dev_split else None
    if select_on != "train" and dev is None:
        raise ConfigError(f"selection on {select_on} needs a dev split with labels", option="dev_split")
    notes = [f"{split}: {int((~labeled(f)).sum())} unlabeled rows left out of training/metrics"
             for split, f in data.items() if (~labeled(f)).any() and split in (train_split, dev_split)]
    selection = concat(train, dev) if select_on == "train+dev" else train
    in_sample = [train_split] + ([dev_split] if select_on != "train" else [])
    ok = labeled(selection)
    X_sel, y_sel = selection.X[ok], selection.y[ok]
    tuned_on = dev if select_on == "dev" else None
    heads, per_seed = [], []
    for s in range(seed, seed + max(1, int(n_seeds))):
        heads.append(fit_one(name, config, selection, tuned_on, s, tune_metric, names))
        if n_seeds > 1:
            per_seed.append(score(heads[-1], data, names, clean, n_boot=0))
    model = heads[0]
    if ensemble and len(heads) > 1:  # the seeds' average, its thresholds tuned again
        model = TunedHead(EnsembleHead.from_fitted(heads), metric=tune_metric, label_names=names, cv="prefit")
        if tuned_on is None:
            model.fit(X_sel, y_sel)
        else:
            okd = labeled(dev)
            model.fit(X_sel, y_sel, dev.X[okd], dev.y[okd])
    notes += getattr(model.estimator_, "fit_notes", list)()
    metrics = score(model, data, names, clean, n_boot=n_boot, seed=seed, no_ci=(train_split,))
    base = {s: baselines(y_sel, data[s].y[labeled(data[s])], names, seed=seed) for s in metrics if s in data}
    if model.oof_ is not None:
        metrics["cv"] = evaluate(y_sel, model.oof_, model.thresholds_, names, n_boot=0,
                                 pred=decide(model.oof_, model.thresholds_, model.rule_))
        base["cv"] = baselines(y_sel, y_sel, names, seed=seed)
        if y_sel.ndim == 1:
            notes.append(_prior_note(y_sel, model.oof_, float(model.thresholds_[0])))
    return Result(model, metrics, _summary(per_seed) if per_seed else {}, notes, base, in_sample)
