"""Grid / random hyper-parameter search over heads on cached features, on every core.

Every config runs as ``train-head`` runs it by default: C / thresholds chosen by 5-fold CV on the training
split, so configs are ranked by their out-of-fold score and the dev split stays untouched (a clean estimate
of the chosen config; ranking on dev would make it in-sample).

A search space maps a head name to ``{param: [values]}``; the grid is the product of the lists.
``random`` draws ``n`` distinct points of that grid. Configs run in ``jobs`` worker processes
(joblib/loky; large arrays are memory-mapped, not copied), one torch/BLAS thread each, cheapest
configs first (logreg, then MLPs by size) so results arrive early and the runs table fills steadily.

The default MLP grid uses hidden sizes up to 256 (the MLP head's default) to keep a 100-config
sweep inside 5 minutes on 2 CPU cores: 512-wide layers cost twice as much per epoch (they did not
win on real Hateful Memes text features, but can on other features: add them with ``--space``;
see benchmarks/README_heads.md).
"""
from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np

from joblib import Parallel, delayed

from memeprobe.data.readers import parse_json
from memeprobe.errors import ConfigError
from memeprobe.heads._experiment import fit_one, run_experiment
from memeprobe.heads.choices import SEARCHES
from memeprobe.heads.factory import create_head, head_class
from memeprobe.heads.kinds import HEAD_NAMES
from memeprobe.heads.training import one_thread

def load_space(path) -> dict:
    """A search space from a JSON file ``{"head": {"param": [values, ...]}}`` (checked against the heads)."""
    try:
        space = parse_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read search space {path}: {e}; give a JSON object "
                             '{"mlp": {"dropout": [0.1, 0.5]}}') from None
    check_space(space)
    return space


def check_space(space: dict) -> None:
    if not isinstance(space, dict) or not space:
        raise ConfigError("a search space is a non-empty JSON object of head name → {param: [values]}")
    for head, params in space.items():
        if head not in HEAD_NAMES:
            raise ConfigError(f"search space: unknown head {head!r}; choose from {', '.join(HEAD_NAMES)}")
        if head_class(head).task != "labels":
            raise ConfigError(f"search space: a {head} head is trained with `memeprobe train-head {head}`, not swept")
        if not isinstance(params, dict) or not all(isinstance(v, list) and v for v in params.values()):
            raise ConfigError(f"search space: {head} must map parameters to non-empty lists of values")
        create_head(head, **{k: v[0] for k, v in params.items()})  # unknown parameters raise here


def _tupled(v):
    return tuple(v) if isinstance(v, list) else v


def configs(space: dict, search="grid", n=None, seed=0) -> list[tuple[str, dict]]:
    """``(head, params)`` points: the whole grid, or ``n`` distinct random points of it."""
    grid = []
    for head, params in space.items():
        keys = list(params)
        for values in itertools.product(*(params[k] for k in keys)):
            grid.append((head, {k: _tupled(v) for k, v in zip(keys, values)}))
    if search == "grid":
        return grid[:n] if n else grid
    if search not in SEARCHES:
        raise ConfigError(f"unknown search {search!r}; choose one of {', '.join(SEARCHES)}")
    n = min(int(n or len(grid)), len(grid))
    pick = np.random.default_rng(seed).choice(len(grid), size=n, replace=False)
    return [grid[i] for i in sorted(pick)]


def _cost(point) -> float:
    """A rough relative cost of a config (for cheapest-first ordering)."""
    head, config = point
    if head == "logreg":
        return 0.0
    hidden = config.get("hidden", (256,))
    hidden = [hidden] if isinstance(hidden, int) else list(hidden)
    return 1.0 + sum(hidden) * float(config.get("epochs", 30))


def fit_config(head, config, data, train_split, names, seed, tune_metric):
    """One config fitted as ``train-head`` fits it by default (on one torch thread: the same numbers in a worker or
    here): C / thresholds chosen by 5-fold CV on ``train_split``, refitted on all of it."""
    with one_thread():
        return fit_one(head, config, data[train_split], None, seed, tune_metric, names)


def train_command(record: dict, store, out, tune_metric=None) -> list[str]:
    """The ``memeprobe train-head`` arguments that refit the sweep run ``record`` and save it to ``out``."""
    args = ["memeprobe", "train-head", record["head"], "--store", str(store)]
    for ref in record["feature_sets"]:
        args += ["--feature-set", ref]
    splits = record["splits"]
    args += ["--train-split", splits["train"], "--dev-split", splits["dev"],
             "--target", record["target"], "--seed", str(record["seed"])]
    if tune_metric:
        args += ["--tune-metric", tune_metric]
    for key, value in record["point"].items():
        args += ["--param", f"{key}={json.dumps(value)}"]
    return args + ["--out", str(out)]


def run_config(head, config, data, train_split, dev_split, names, seed, tune_metric):
    """Worker: one config as ``train-head`` runs it (selected by CV on train, every other split untouched);
    returns ``(head, full params, metrics with "cv", baselines, seconds)``; one thread per worker."""
    import torch  # lazy: torch only in the worker processes

    torch.set_num_threads(1)
    start = time.perf_counter()
    with one_thread():
        res = run_experiment(head, config, data, train_split, dev_split, names, seed=seed, tune_metric=tune_metric,
                             n_boot=0)
    fitted = res.model.estimator_
    params = {**fitted.get_params(), **({"C_": fitted.C_} if hasattr(fitted, "C_") else {})}
    return head, params, res.metrics, res.baselines, time.perf_counter() - start


def run_sweep(points, data, train_split, dev_split, names, seed=0, tune_metric=None, jobs=2):
    """Yield each finished ``(head, config, metrics, baselines, seconds)`` as soon as it is done."""
    points = sorted(points, key=_cost)  # stable: the draw order within equal cost
    tasks = (delayed(run_config)(h, c, data, train_split, dev_split, names, seed, tune_metric) for h, c in points)
    yield from Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")(tasks)
