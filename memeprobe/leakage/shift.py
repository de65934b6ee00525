"""Shift between splits: can a classifier tell a split from train, and does train cover the split?

    from memeprobe.leakage.shift import domain_shift
    r = domain_shift(store, "st-minilm/text_embed", "test", train_split="train", seed=0)
    r.auroc, r.ci, r.permutation_p95, r.uncovered, r.warning()

For one feature array and one split, against the train split:

* **domain AUROC**: the out-of-fold AUROC of a linear domain classifier (train 0, split 1) on the features,
  standardised over the rows of train and the splits measured (features wider than ``MAX_DIM`` and than the
  row count: their leading principal components).
  Folds keep whole groups together (identical vectors, and the leakage report's duplicate groups
  when given), so a copy in another fold cannot give a meme's split away. The classifier is a ridge probe (least
  squares on the domain label with an intercept, penalty ``RIDGE`` x the fitted rows: a regularised linear
  discriminant) in closed form, whose one solve per fold fits the observed labels and every shuffled copy at
  once. With the same folds it agrees with sklearn's ``LogisticRegression`` (C=1) and is stronger on clear
  shifts: on the shared MiniLM features MAMI validation 0.49 / 0.49, MAMI test 0.69 / 0.67, Hateful Memes
  test_unseen 0.64 / 0.64, SemEval dev (63 memes) 0.59 / 0.62; a weaker penalty (0.01) overfits small splits
  (SemEval dev 0.49), a stronger one (10) pulls the permutation baseline below 0.5 (``benchmarks/shift_audit.py``).
* **CI**: the 2.5 and 97.5 percentiles of the AUROC over ``DRAWS`` cluster-bootstrap resamples (groups drawn
  with replacement) of the out-of-fold scores; nothing is refitted.
* **permutation baseline**: the same folds and fits on ``PERMUTATIONS`` shuffles of the domain labels; the mean
  and 95th percentile of their AUROCs are what chance gives at this size.
* **uncovered**: the share of the split's memes whose nearest train meme (cosine distance; the meme itself and
  its group left out) is farther than ``COVER`` quantile of the train memes' own nearest-train distances
  (leave-one-out): about 5 % for a split drawn like train.
* **prior differences**: per class, the split's positive share minus train's, with a 95 % Newcombe interval
  (from Wilson score intervals).

A split *differs* from train when the AUROC is at least ``MIN_EFFECT`` above 0.5 and its CI lies above the
permutation 95th percentile. Everything is seeded: the same inputs and seed give the same numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.stats import binomtest
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from memeprobe.errors import ConfigError, StoreError
from memeprobe.leakage.groups import Components
from memeprobe.leakage.neighbors import CosineIndex
from memeprobe.store.features import load_features, parse_ref, resolve

FOLDS = 5
DRAWS = 1000  # cluster-bootstrap resamples of the out-of-fold AUROC
PERMUTATIONS = 100  # shuffles of the domain labels for the chance baseline
RIDGE = 1.0  # ridge penalty per fitted row (standardised features: the Gram matrix's diagonal; measured, see below)
COVER = 0.95  # quantile of train's leave-one-out nearest-neighbour distances that counts as covered
MIN_EFFECT = 0.05  # AUROC above 0.5 from which a split that is above chance is said to differ
NEIGHBOURS = 16  # neighbours looked at first when skipping a meme's own group
BOOTSTRAP_CELLS = 1 << 22  # draws x rows weighed at a time (bounds the bootstrap's memory)
MAX_DIM = 2048  # wider features are reduced to this many principal components for the classifier (its d x d solve)


@dataclass
class ShiftResult:
    """The shift of one split against train on one feature array; the arrays (one entry per row used, store
    order) feed the report's examples and histograms."""

    features: str
    split: str
    train_split: str
    n_split: int
    n_train: int
    groups: int  # groups the folds and the bootstrap keep whole
    dims: int  # the classifier's input width (principal components when the features are wider than MAX_DIM)
    auroc: float
    ci: tuple[float, float]
    permutation_mean: float
    permutation_p95: float
    radius: float  # train's leave-one-out nearest-train distance at the COVER quantile
    uncovered: float  # share of the split's memes farther than ``radius`` from every train meme
    rows: np.ndarray = field(repr=False)  # store rows (dataset rows in the report)
    in_split: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)  # out-of-fold domain scores: higher = more like the split
    distance: np.ndarray = field(repr=False)  # cosine distance to the nearest train meme outside its group (NaN: none)
    fold: np.ndarray = field(repr=False)  # the row's fold (0..FOLDS-1)

    @property
    def differs(self) -> bool:
        """Clearly above chance: AUROC >= 0.5 + MIN_EFFECT and its CI above the permutation 95th percentile."""
        return self.auroc >= 0.5 + MIN_EFFECT and self.ci[0] > self.permutation_p95

    def warning(self) -> str | None:
        """One plain line when the split differs from train, else None."""
        if not self.differs:
            return None
        on = f" on {self.features}" if self.features else ""
        return (f"{self.split} differs from {self.train_split} (domain AUROC {self.auroc:.2f} [{self.ci[0]:.2f}, "
                f"{self.ci[1]:.2f}]{on}); CV and dev estimates assume it does not")

    def to_json(self) -> dict:
        return {"split": self.split, "train_split": self.train_split, "features": self.features,
                "n_split": self.n_split, "n_train": self.n_train, "groups": self.groups, "dims": self.dims,
                "auroc": _round(self.auroc), "ci": [_round(c) for c in self.ci],
                "permutation": {"mean": _round(self.permutation_mean), "p95": _round(self.permutation_p95)},
                "radius": _round(self.radius), "uncovered": _round(self.uncovered), "differs": self.differs}


@dataclass
class ShiftAudit:
    """Every split against train: one :class:`ShiftResult` per split and feature array, prior differences per
    split and class, and notes on what was not measured."""

    train_split: str
    results: list[ShiftResult]
    priors: list[dict]
    notes: list[str]

    def to_json(self) -> dict:
        return {"train_split": self.train_split,
                "method": {"classifier": f"ridge probe on standardised features (penalty {RIDGE} x fitted rows)",
                           "folds": FOLDS, "bootstrap_draws": DRAWS, "permutations": PERMUTATIONS,
                           "cover_quantile": COVER, "distance": "cosine", "min_effect": MIN_EFFECT},
                "domain": [r.to_json() for r in self.results], "priors": self.priors, "notes": self.notes}


def _round(x: float):
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


# ---------------------------------------------------------------- the measurements
def auroc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None):
    """AUROC of ``scores`` for the rows ``positive`` (ties count half): one float, or with ``weights``
    (draws x rows, e.g. bootstrap counts) one per row of weights (NaN where a side weighs nothing)."""
    order = np.argsort(scores, kind="stable")
    s, pos = scores[order], np.asarray(positive, bool)[order]
    start = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first row of each run of tied scores
    w = np.ones((1, len(s))) if weights is None else np.asarray(weights, np.float64)[:, order]
    p = np.add.reduceat(w * pos, start, axis=1)
    n = np.add.reduceat(w * ~pos, start, axis=1)
    below = np.cumsum(n, axis=1) - n
    num, den = (p * (below + 0.5 * n)).sum(1), p.sum(1) * n.sum(1)
    out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return float(out[0]) if weights is None else out


def group_ids(X: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Group per row, numbered 0..G-1: rows with identical vectors, and rows sharing a given group (``groups``,
    -1 = none), are one group."""
    n = len(X)
    flat = np.ascontiguousarray(X.reshape(n, -1))
    _, same = np.unique(flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).ravel(),
                        return_inverse=True)
    comp = Components(n)
    for label in (same.ravel(), groups):
        if label is None:
            continue
        rows = np.flatnonzero(np.asarray(label) >= 0)
        _, first, inverse = np.unique(label[rows], return_index=True, return_inverse=True)
        comp.add(rows, rows[first][inverse])
    comp.merge()
    return np.unique(comp.label, return_inverse=True)[1].ravel()


def fold_of(in_split: np.ndarray, gid: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold per row, whole groups dealt to the folds in turn: groups mostly of the split first, then train's,
    each largest first, equal sizes in seeded random order (so every fold gets its share of both sides).
    sklearn's ``StratifiedGroupKFold`` does the same in a Python loop over groups (2.4 s for 10k groups)."""
    n_groups = int(gid.max()) + 1
    size = np.bincount(gid, minlength=n_groups)
    split_side = 2 * np.bincount(gid, weights=in_split, minlength=n_groups) > size
    order = np.lexsort((rng.permutation(n_groups), -size, ~split_side))
    fold = np.empty(n_groups, np.int64)
    fold[order] = np.arange(n_groups) % folds
    return fold[gid]


def out_of_fold(X: np.ndarray, targets: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Out-of-fold ridge-probe scores of every target column (rows x targets), ``X`` standardised: per fold, ridge
    regression with an intercept (what sklearn's ``Ridge(alpha, solver="cholesky")`` fits) on the other folds. One
    Gram matrix of all rows is computed and each fold's held rows are subtracted from it: 2 n d^2 flops in all
    instead of 4 n d^2 for five separate fits, the dominant cost."""
    gram = (X.T @ X).astype(np.float64)
    cross = (X.T @ targets).astype(np.float64)
    xsum, tsum = X.sum(0, dtype=np.float64), targets.sum(0, dtype=np.float64)
    out = np.empty(targets.shape, np.float32)
    for f in np.unique(fold):
        held = fold == f
        Xh, Th = X[held], targets[held]
        m = len(X) - len(Xh)
        mean = (xsum - Xh.sum(0, dtype=np.float64)) / m
        tmean = (tsum - Th.sum(0, dtype=np.float64)) / m
        A = gram - (Xh.T @ Xh) - m * np.outer(mean, mean)
        A[np.diag_indices_from(A)] += RIDGE * m
        rhs = cross - (Xh.T @ Th) - m * np.outer(mean, tmean)
        with threadpool_limits(limits=1, user_api="blas"):  # OpenBLAS's threaded potrf: 0.07 s -> 1.3 s on 2 busy cores
            W = cho_solve(cho_factor(A, overwrite_a=True, check_finite=False), rhs, check_finite=False)
        out[held] = (Xh - mean.astype(np.float32)) @ W.astype(np.float32) + tmean.astype(np.float32)
    return out


def _standardised(X: np.ndarray) -> np.ndarray:
    X = np.array(X, np.float32).reshape(len(X), -1)  # a copy, scaled in place
    X -= X.mean(0, dtype=np.float64).astype(np.float32)
    std = np.sqrt(np.square(X).mean(0, dtype=np.float64)).astype(np.float32)
    X /= np.where(std > 0, std, 1.0)  # a constant column stays 0
    return X


def _bootstrap(scores, in_split, gid, draws, rng) -> tuple[float, float]:
    """Percentile 95 % CI of the AUROC over cluster-bootstrap resamples of the groups."""
    n_groups = int(gid.max()) + 1
    step = max(1, BOOTSTRAP_CELLS // max(len(scores), n_groups))
    values = []
    for done in range(0, draws, step):
        m = min(step, draws - done)
        picks = rng.integers(0, n_groups, size=(m, n_groups)) + (np.arange(m) * n_groups)[:, None]
        counts = np.bincount(picks.ravel(), minlength=m * n_groups).reshape(m, n_groups)
        values.append(auroc(scores, in_split, counts[:, gid]))
    values = np.concatenate(values)
    values = values[np.isfinite(values)]
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


def nearest_train(X: np.ndarray, in_train: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """Cosine distance from every row to its nearest train row outside its group (NaN for a zero or non-finite
    vector, or when no such train row exists). Exact up to ``neighbors.EXACT_LIMIT`` train rows, FAISS IVF
    beyond (``neighbors.CosineIndex``)."""
    index = CosineIndex().fit(X, np.flatnonzero(in_train))
    dist = np.full(len(X), np.nan)
    todo, k = np.arange(len(X)), NEIGHBOURS
    while len(todo) and len(index.ids_):
        k = min(k, len(index.ids_))
        q, nbr, cos = index.search(X, todo, k)
        other = (nbr >= 0) & (gid[np.maximum(nbr, 0)] != gid[q][:, None])
        found = other.any(1)
        first = other.argmax(1)
        dist[q[found]] = np.clip(1.0 - cos[found, first[found]], 0.0, 2.0)
        if k == len(index.ids_):
            break
        todo, k = q[~found], 4 * k  # rows whose k nearest are all their own group (a big group): look further
    return dist


def _in_order(gid: np.ndarray) -> np.ndarray:
    """Groups renumbered 0..G-1 by first row: the same partition of the same rows gets the same numbers."""
    _, first, inverse = np.unique(gid, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.ravel()]


class Shifts:
    """Vectors of the train split and other splits, prepared once (groups, nearest-train distances); then
    :meth:`measure` per split. ``groups``: a group per row (-1 = none) kept whole in folds and resamples (e.g.
    the leakage report's duplicate groups); rows with identical vectors are grouped in any case."""

    def __init__(self, X: np.ndarray, splits, train_split: str = "train", groups=None, features: str = "",
                 rows=None):
        X = np.asarray(X, np.float32).reshape(len(X), -1)
        splits = np.asarray(splits, dtype=object)
        if len(X) != len(splits):
            raise ConfigError(f"give one split name per vector: {len(splits)} names for {len(X)} vectors")
        finite = np.isfinite(X).all(1)  # a NaN row would spoil every fit: left out, counted
        self.non_finite = int((~finite).sum())
        self.X, self.splits = X[finite], splits[finite]
        self.rows = (np.arange(len(X)) if rows is None else np.asarray(rows))[finite]
        groups = None if groups is None else np.asarray(groups)[finite]
        self.train_split, self.features = train_split, features
        # the classifier's inputs: the standardised vectors, or when wider their leading principal components
        # (bounds the d x d Gram matrix and its solve; coverage keeps the full vectors). The components are not
        # rescaled: standardising them would whiten the data, and a whitened probe with about as many inputs as
        # rows scores held-out rows backwards
        width = min(MAX_DIM, len(self.X))
        self.Z = _standardised(self.X)
        if self.Z.shape[1] > width:
            self.Z = PCA(width, svd_solver="randomized", random_state=0).fit_transform(self.Z).astype(np.float32)
        self.in_train = self.splits == train_split
        if not self.in_train.any():
            raise ConfigError(f"no {train_split!r} rows among the vectors{' of ' + features if features else ''}",
                              option="train_split")
        self.gid = group_ids(self.X, groups)
        self.distance = nearest_train(self.X, self.in_train, self.gid)
        train_dist = self.distance[self.in_train & np.isfinite(self.distance)]
        self.radius = float(np.quantile(train_dist, COVER)) if len(train_dist) else float("nan")

    @classmethod
    def from_store(cls, store, feature_ref: str, splits, train_split: str = "train", groups=None) -> "Shifts":
        """The store's ``feature_ref`` vectors (e.g. ``st-minilm/text_embed``) of ``train_split`` and ``splits``;
        rows not featurized yet are left out. ``groups``: one per store row."""
        name, arrays = resolve(store, feature_ref)
        X, _, _, rows = store.load_rows(name, arrays, splits=[train_split, *splits], missing="drop")
        for s in (train_split, *splits):
            if not (store.splits[rows] == s).any():
                raise StoreError(f"store {store.path} has no {name}:{','.join(arrays)} vectors in split {s!r}; "
                                 "run `memeprobe featurize` on it first")
        return cls(X, store.splits[rows], train_split, None if groups is None else np.asarray(groups)[rows],
                   f"{name}/{','.join(arrays)}", rows)

    def measure(self, split: str, seed: int = 0) -> ShiftResult:
        """The shift of ``split`` against train (ConfigError when a side has fewer than FOLDS groups)."""
        if split == self.train_split:
            raise ConfigError(f"split {split!r} is the train split; compare another split against it", option="split")
        use = self.in_train | (self.splits == split)
        in_split = self.splits[use] == split
        gid = _in_order(self.gid[use])
        sides = np.bincount(gid, weights=in_split) * 2 > np.bincount(gid)
        if min(int(sides.sum()), int((~sides).sum())) < FOLDS:
            raise ConfigError(f"{split} has {int(in_split.sum())} memes in {int(sides.sum())} groups against "
                              f"{int((~sides).sum())} of {self.train_split}"
                              f"{' on ' + self.features if self.features else ''}; the domain classifier needs at "
                              f"least {FOLDS} groups a side")
        fold_seed, perm_seed, boot_seed = np.random.SeedSequence(seed).spawn(3)
        fold = fold_of(in_split, gid, FOLDS, np.random.default_rng(fold_seed))
        perm = np.random.default_rng(perm_seed)
        targets = np.column_stack([in_split] + [perm.permutation(in_split) for _ in range(PERMUTATIONS)])
        out = out_of_fold(self.Z[use], targets.astype(np.float32), fold)
        scores = out[:, 0].astype(np.float64)
        null = np.array([auroc(out[:, j], targets[:, j]) for j in range(1, targets.shape[1])])
        dist = self.distance[use]
        split_dist = dist[in_split & np.isfinite(dist)]
        return ShiftResult(
            features=self.features, split=split, train_split=self.train_split, n_split=int(in_split.sum()),
            n_train=int((~in_split).sum()), groups=int(gid.max()) + 1, dims=self.Z.shape[1],
            auroc=auroc(scores, in_split),
            ci=_bootstrap(scores, in_split, gid, DRAWS, np.random.default_rng(boot_seed)),
            permutation_mean=float(null.mean()), permutation_p95=float(np.quantile(null, 0.95)),
            radius=self.radius,
            uncovered=float((split_dist > self.radius).mean()) if len(split_dist) else float("nan"),
            rows=self.rows[use], in_split=in_split, scores=scores, distance=dist, fold=fold)


def domain_shift(store, feature_ref: str, split: str, train_split: str = "train", groups=None,
                 seed: int = 0) -> ShiftResult:
    """The shift of ``split`` against ``train_split`` on the store's features ``feature_ref`` (a feature
    reference, e.g. ``st-minilm`` or ``st-minilm/text_embed``); rows not featurized yet are left out.

    ``groups``: a group per store row (-1 = none), e.g. the leakage report's duplicate groups; rows with identical
    vectors are grouped in any case. The same numbers as the leakage report's audit of that split."""
    return Shifts.from_store(store, feature_ref, [split], train_split, groups).measure(split, seed)


def against_train(store, refs, splits, train_split: str = "train", seed: int = 0) -> tuple[list[ShiftResult], list[str]]:
    """The shift of each of ``splits`` against ``train_split`` on the concatenated arrays ``refs`` (a head's feature
    references, e.g. ``["st-minilm"]``), and notes on the splits left out (not featurized, too few memes). Rows
    with identical vectors stay in one fold."""
    refs, notes, parts = list(refs), [], {}
    for s in dict.fromkeys([train_split, *splits]):
        try:
            parts[s] = load_features(store, refs, [s], target="auto")
        except StoreError as e:
            notes.append(f"{s}: no shift measured ({e})")
    if train_split not in parts or len(parts) < 2:
        return [], notes
    prepared = Shifts(np.vstack([f.X for f in parts.values()]),
                      np.concatenate([np.full(len(f.X), s, dtype=object) for s, f in parts.items()]), train_split,
                      features=" + ".join(refs), rows=np.concatenate([f.rows for f in parts.values()]))
    if prepared.non_finite:
        notes.append(f"{prepared.non_finite} vectors with a non-finite value left out of the shift measurement")
    results = []
    for s in parts:
        if s == train_split:
            continue
        try:
            results.append(prepared.measure(s, seed))
        except ConfigError as e:
            notes.append(f"{s}: no shift measured ({e})")
    return results, notes


# ---------------------------------------------------------------- label priors
def _wilson(k: int, n: int) -> tuple[float, float]:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def prior_differences(train: np.ndarray, other: np.ndarray, names, split: str) -> list[dict]:
    """Per class (columns of the label matrices, -1 = unlabelled): positive shares in train and in the split,
    the split's minus train's and its 95 % Newcombe interval (hybrid score, from Wilson intervals)."""
    out = []
    for c, name in enumerate(names):
        a, b = train[:, c][train[:, c] >= 0], other[:, c][other[:, c] >= 0]
        if not len(a) or not len(b):
            continue
        p0, p1 = float(a.mean()), float(b.mean())
        (l0, u0), (l1, u1) = _wilson(int(a.sum()), len(a)), _wilson(int(b.sum()), len(b))
        d = p1 - p0
        out.append({"split": split, "class": name, "n_train": int(len(a)), "n_split": int(len(b)),
                    "train_share": _round(p0), "split_share": _round(p1), "difference": _round(d),
                    "ci": [_round(d - math.hypot(p1 - l1, u0 - p0)), _round(d + math.hypot(u1 - p1, p0 - l0))]})
    return out


def label_matrix(ds) -> tuple[list[str], np.ndarray]:
    """Class names and a (memes x classes) 0/1 matrix, -1 where unlabelled: the binary label, then the
    multi-label classes."""
    names, cols = [], []
    if any(m.label is not None for m in ds.memes):
        names.append(ds.binary_name or "label")
        cols.append(np.array([[-1 if m.label is None else int(m.label)] for m in ds.memes]))
    if ds.label_names:
        names += list(ds.label_names)
        k = len(ds.label_names)
        cols.append(np.array([m.labels if m.labels is not None else (-1,) * k for m in ds.memes]).reshape(-1, k))
    return names, (np.hstack(cols).astype(np.int64) if cols else np.zeros((len(ds.memes), 0), np.int64))


# ---------------------------------------------------------------- the report's audit
def audit_refs(store, feature_sets=None, named=()) -> list[str]:
    """``set/array`` of every ``*_embed`` array to audit: of ``feature_sets`` when given, else of every set but
    ``pixels`` (weight-free statistics) unless a reference in ``named`` names it."""
    named_sets = {parse_ref(r)[0] for r in named if r}
    sets = list(feature_sets) if feature_sets else [s for s in store.feature_sets()
                                                    if s != "pixels" or s in named_sets]
    return [f"{s}/{a}" for s in sets if s in store.feature_sets() for a in store.arrays(s) if a.endswith("_embed")]


def audit(ds, store, group_of_row: np.ndarray, train_split: str, feature_sets=None, named=(),
          seed: int = 0) -> ShiftAudit:
    """Every split of ``ds`` against ``train_split``: prior differences from the labels, and with a ``store``
    (rows in dataset order) the domain classifier and coverage per feature array, duplicate groups kept whole."""
    names, labels = label_matrix(ds)
    splits = np.array([m.split for m in ds.memes], dtype=object)
    others = [s for s in ds.splits() if s != train_split]
    priors = [p for s in others for p in prior_differences(labels[splits == train_split], labels[splits == s],
                                                           names, s)]
    if store is None:
        return ShiftAudit(train_split, [], priors, ["no feature store given: the domain classifier and coverage "
                                                    "need one (pass --store); label priors only"])
    results, notes = [], []
    refs = audit_refs(store, feature_sets, named)
    if not refs:
        notes.append("the store has no embedding array to audit (pixels statistics are audited only when named)")
    for ref in refs:
        done = store.done(*resolve(store, ref))
        have = {x: int((done & (splits == x)).sum()) for x in ds.splits()}
        if not have[train_split]:
            notes.append(f"{ref} not audited: no featurized rows in {train_split}")
            continue
        audited = [s for s in others if have[s]]
        notes += [f"{s} on {ref} not audited: no featurized rows" for s in others if not have[s]]
        notes += [f"{s} on {ref}: {int((splits == s).sum()) - have[s]} memes not featurized, left out"
                  for s in audited if have[s] < int((splits == s).sum())]
        prepared = Shifts.from_store(store, ref, audited, train_split, group_of_row)
        if prepared.non_finite:
            notes.append(f"{ref}: {prepared.non_finite} vectors with a non-finite value left out")
        for s in audited:
            try:
                results.append(prepared.measure(s, seed))
            except ConfigError as e:  # too few memes for the folds
                notes.append(f"{s} on {ref} not audited: {e}")
    return ShiftAudit(train_split, results, priors, notes)
