"""One experiment: fit a head config (over one or more seeds) on train, tune thresholds on dev, evaluate.

Unlabeled rows (-1) are left out of training, tuning and metrics, and counted in ``notes``.
With several seeds, every seed's metrics are summarised as mean ± std; the returned model is
the first seed's head, or with ``ensemble`` the average of all seeds (thresholds re-tuned).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memeprobe.errors import MemeprobeError
from memeprobe.heads.factory import create_head
from memeprobe.heads.features import Features
from memeprobe.heads.metrics import evaluate
from memeprobe.heads.thresholds import tune_thresholds


def labeled(f: Features) -> np.ndarray:
    return f.y >= 0 if f.y.ndim == 1 else (f.y >= 0).all(1)


@dataclass
class Result:
    model: object
    metrics: dict  # split → metrics (also "SPLIT@clean")
    seeds: dict = field(default_factory=dict)  # split → metric → {"mean", "std"} when several seeds
    notes: list = field(default_factory=list)


def read_clean_ids(directory, splits) -> dict[str, set[str]]:
    """Leak-free ids per split from ``DIR/clean_ids/SPLIT.txt`` or ``DIR/SPLIT.txt`` (one id per line)."""
    directory = Path(directory)
    out = {}
    for s in splits:
        for p in (directory / "clean_ids" / f"{s}.txt", directory / f"{s}.txt"):
            if p.is_file():
                out[s] = {line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()}
                break
    if not out:
        raise MemeprobeError(f"--clean-ids {directory}: no clean_ids/SPLIT.txt or SPLIT.txt for split(s) "
                             f"{', '.join(splits)}; pass the output folder of `memeprobe leakage`")
    return out


def fit_one(name, config, train: Features, dev: Features | None, seed: int, tune_metric=None):
    """A fitted head (thresholds tuned on the labeled dev rows when there are any)."""
    head = create_head(name, **{**config, "seed": seed, "blocks": tuple(train.blocks)})
    tr = labeled(train)
    if not tr.any():
        raise MemeprobeError("the training split has no labeled rows; choose a labeled --train-split")
    Xd = yd = None
    if dev is not None and labeled(dev).any():
        Xd, yd = dev.X[labeled(dev)], dev.y[labeled(dev)]
    head.fit(train.X[tr], train.y[tr], Xd, yd)
    if Xd is not None:
        head.thresholds_ = tune_thresholds(yd, head.predict_proba(Xd), tune_metric)
    return head


def score(model, data: dict[str, Features], names, clean=None, n_boot=1000, seed=0, no_ci=()) -> dict:
    """Metrics of ``model`` on every split with labels (and on its clean subset when given).

    Splits in ``no_ci`` (e.g. the training split) get no bootstrap CI."""
    out = {}
    for split, f in data.items():
        ok = labeled(f)
        if not ok.any():
            continue
        p = model.predict_proba(f.X[ok])
        out[split] = evaluate(f.y[ok], p, model.thresholds_, names, n_boot=0 if split in no_ci else n_boot, seed=seed)
        if clean and split in clean:
            keep = np.isin(f.ids[ok], list(clean[split]))
            if keep.any():
                out[f"{split}@clean"] = evaluate(f.y[ok][keep], p[keep], model.thresholds_, names,
                                                 n_boot=n_boot, seed=seed)
    return out


def _summary(per_seed: list[dict]) -> dict:
    out = {}
    for split in per_seed[0]:
        values = {k: np.array([m[split][k] for m in per_seed]) for k, v in per_seed[0][split].items()
                  if isinstance(v, float)}
        out[split] = {k: {"mean": float(v.mean()), "std": float(v.std())} for k, v in values.items()
                      if not np.isnan(v).any()}
    return out


def run_experiment(name, config, data: dict[str, Features], train_split, dev_split, names, seed=0, n_seeds=1,
                   ensemble=False, tune_metric=None, clean=None, n_boot=1000) -> Result:
    """Train on ``data[train_split]``, tune on ``data[dev_split]`` (may be None), score every split."""
    train, dev = data[train_split], data.get(dev_split) if dev_split else None
    notes = [f"{split}: {int((~labeled(f)).sum())} unlabeled rows left out of training/metrics"
             for split, f in data.items() if (~labeled(f)).any() and split in (train_split, dev_split)]
    heads, per_seed = [], []
    for s in range(seed, seed + max(1, int(n_seeds))):
        heads.append(fit_one(name, config, train, dev, s, tune_metric))
        if n_seeds > 1:
            per_seed.append(score(heads[-1], data, names, clean, n_boot=0))
    model = heads[0]
    if ensemble and len(heads) > 1:
        from memeprobe.heads.ensemble import EnsembleHead

        model = EnsembleHead(heads)
        if dev is not None and labeled(dev).any():
            ok = labeled(dev)
            model.thresholds_ = tune_thresholds(dev.y[ok], model.predict_proba(dev.X[ok]), tune_metric)
    metrics = score(model, data, names, clean, n_boot=n_boot, seed=seed, no_ci=(train_split,))
    return Result(model, metrics, _summary(per_seed) if per_seed else {}, notes)
