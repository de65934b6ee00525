"""Technique spans (SemEval-2021 Task 6 subtask 2) from cached per-token features: the ``span`` head kind.

:class:`SpanHead` is a torch head like the MLP (the shared training loop, parameters and model file format): a
small MLP tags every token (with its neighbours and the meme's mean token as context, :func:`context`) with 20
independent "inside a span of technique k" probabilities on frozen token features (``featurize ... --tokens``:
``text_tokens``, ``text_mask``, ``text_offsets``). Runs of tokens at or above a technique's threshold become
spans, mapped back to character offsets and widened to whole words (:func:`decode`). :meth:`SpanHead.fit_docs`
chooses that threshold by K-fold cross-validation over the training memes (out-of-fold span F1), then refits
on all of them: no split that is reported is used for any choice.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from sklearn.base import clone

from memeprobe.errors import DatasetError, ModelError, StoreError
from memeprobe.heads.base import check_params
from memeprobe.heads.metrics import span_f1
from memeprobe.heads.training import COUNT, TORCH_CONSTRAINTS, TorchHead
from memeprobe.heads.validate import Number, Tensor
from memeprobe.params import Range, to_sklearn

TOKEN_ARRAYS = ("text_tokens", "text_mask", "text_offsets")
SPAN_TARGET = "spans"  # the target a span model file records
THRESHOLDS = tuple(np.round(np.arange(0.15, 0.71, 0.05), 2))
_WORD = re.compile(r"\S")


@dataclass
class Docs:
    """Per-meme token features of one split (padding cut), with texts and gold spans (None = unknown)."""

    ids: np.ndarray
    texts: list[str]
    X: list[np.ndarray]  # (T_i, D) float32 per meme
    offsets: list[np.ndarray]  # (T_i, 2) int character offsets per meme
    gold: list[tuple | None]

    def __len__(self):
        return len(self.ids)

    def take(self, idx) -> "Docs":
        return Docs(self.ids[idx], [self.texts[i] for i in idx], [self.X[i] for i in idx],
                    [self.offsets[i] for i in idx], [self.gold[i] for i in idx])


def load_docs(store, feature_set: str, split: str) -> Docs:
    """The token features of ``split`` from ``feature_set`` (which must hold the ``--tokens`` arrays)."""
    spec = store.arrays(feature_set)
    missing = [a for a in TOKEN_ARRAYS if a not in spec]
    if missing:
        raise StoreError(f"feature set {feature_set!r} has no per-token arrays ({', '.join(missing)} missing); "
                             "featurize the texts again with --tokens (and --overwrite, or a new feature set)")
    rows = store.select_rows(feature_set, list(TOKEN_ARRAYS), [split], missing="error")
    if not len(rows):
        raise StoreError(f"store {store.path} has no rows in split {split}")
    mask = store.read(feature_set, "text_mask", rows).astype(bool)
    tokens = store.read(feature_set, "text_tokens", rows)
    offsets = store.read(feature_set, "text_offsets", rows)
    X, offs = [], []
    for i in range(len(rows)):
        keep = mask[i] & (offsets[i, :, 1] > offsets[i, :, 0])  # real word pieces (no special tokens, padding)
        X.append(tokens[i][keep].astype(np.float32))
        offs.append(offsets[i][keep].astype(np.int64))
    return Docs(store.ids[rows], [str(store.texts[r]) for r in rows], X, offs, [store.spans[r] for r in rows])


def token_targets(offsets: np.ndarray, spans, k: int) -> np.ndarray:
    """(T, k) 0/1: token t is inside a span of technique j when their character ranges overlap."""
    y = np.zeros((len(offsets), k), dtype=np.float32)
    for start, end, label in spans or ():
        y[(offsets[:, 0] < end) & (offsets[:, 1] > start), label] = 1
    return y


def snap(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen ``[start, end)`` to whole whitespace-separated words."""
    while start > 0 and _WORD.match(text[start - 1]):
        start -= 1
    while end < len(text) and _WORD.match(text[end]):
        end += 1
    return start, end


def decode(proba: np.ndarray, offsets: np.ndarray, text: str, thresholds) -> list[tuple[int, int, int]]:
    """Spans ``(start, end, technique)`` from token probabilities (T, k): each run of tokens at or above the
    technique's threshold, mapped to character offsets and snapped to word boundaries (overlaps merged)."""
    out = []
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (proba.shape[1],))
    for j in range(proba.shape[1]):
        on = proba[:, j] >= t[j]
        if not on.any():
            continue
        edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
        merged: list[list[int]] = []
        for a, b in zip(edges[::2], edges[1::2]):
            s, e = snap(text, int(offsets[a, 0]), int(offsets[b - 1, 1]))
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        out += [(s, e, j) for s, e in merged]
    return sorted(out)


def context(x: np.ndarray) -> np.ndarray:
    """(T, D) token features → (T, 4D): each token, its left and right neighbours (zero at the edges) and the
    meme's mean token, so a per-token classifier sees local and whole-text context."""
    if not len(x):  # a text without word pieces (empty, or only characters the tokenizer drops)
        return np.zeros((0, 4 * x.shape[1]), dtype=np.float32)
    zero = np.zeros((1, x.shape[1]), dtype=np.float32)
    left = np.concatenate([zero, x[:-1]])
    right = np.concatenate([x[1:], zero])
    return np.hstack([x, left, right, np.broadcast_to(x.mean(0, keepdims=True), x.shape)])


class SpanHead(TorchHead):
    """Multi-label token tagger (an MLP on each token with its context, :func:`context`) over frozen token
    features. ``fit(X, Y)`` fits it on token rows like any torch head; :meth:`fit_docs` on memes also chooses the
    span threshold by ``folds``-fold CV span F1, and :meth:`predict_spans` decodes spans at it."""

    name = "span"
    task = "spans"
    # the training loop's settings the tagger does not expose
    loss, label_smoothing, focal_gamma, class_weight, patience = "bce", 0.0, 2.0, None, None
    device, precision, norm, blocks, single_thread = "cpu", "fp32", "none", None, True
    _parameter_constraints = to_sklearn({
        **{k: TORCH_CONSTRAINTS[k] for k in ("dropout", "lr", "weight_decay", "epochs", "batch_size", "seed")},
        "hidden": [COUNT], "folds": [Range(Integral, 2)],
    })

    def __init__(self, hidden=256, dropout=0.3, epochs=10, lr=2e-3, weight_decay=1e-2, batch_size=512,
                 folds=3, seed=0):
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.folds = folds
        self.seed = seed

    def _build(self, in_dim: int, n_out: int):
        from torch import nn  # lazy: torch only when a tagger is built

        return nn.Sequential(nn.Dropout(self.dropout), nn.Linear(in_dim, self.hidden), nn.GELU(),
                             nn.Dropout(self.dropout), nn.Linear(self.hidden, n_out))

    # ---------------------------------------------------------------- training
    def fit_docs(self, docs: Docs, label_names) -> "SpanHead":
        """Choose the span threshold by ``folds``-fold CV span F1 over the memes ``docs``, then fit on all of them."""
        check_params(self)
        if len(docs) < self.folds:
            raise DatasetError(f"span head: {len(docs)} training memes are fewer than folds={self.folds}")
        if any(g is None for g in docs.gold):
            raise DatasetError("the training split has memes without span annotations; train on a labelled split")
        k = len(label_names)
        X = [context(x) for x in docs.X]
        Y = [token_targets(o, g, k) for o, g in zip(docs.offsets, docs.gold)]
        oof: list[np.ndarray | None] = [None] * len(docs)
        folds = np.random.default_rng(self.seed).permutation(len(docs)) % self.folds
        for f in range(self.folds):
            train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
            tagger = clone(self).fit(np.vstack([X[i] for i in train]), np.vstack([Y[i] for i in train]))
            for i, p in zip(test, tagger._token_proba([X[i] for i in test])):
                oof[i] = p
        self.cv_ = {}
        for t in THRESHOLDS:
            pred = [decode(p, o, text, t) for p, o, text in zip(oof, docs.offsets, docs.texts)]
            self.cv_[float(t)] = span_f1(docs.gold, pred)["f1"]
        self.fit(np.vstack(X), np.vstack(Y))
        self.threshold_ = max(self.cv_, key=self.cv_.get)
        self.thresholds_ = np.full(self.n_outputs_, self.threshold_)
        return self

    # ---------------------------------------------------------------- prediction
    def _token_proba(self, X: list[np.ndarray]) -> list[np.ndarray]:
        """Per meme, the (T, k) probabilities of its context rows ``X`` (one pass, float32 as the threshold
        was chosen)."""
        import torch  # lazy: torch only when a tagger predicts

        if not len(X):
            return []
        self.module_.eval()
        with torch.no_grad():
            p = torch.sigmoid(self.module_(torch.from_numpy(np.vstack(X)))).numpy()
        return np.split(p, np.cumsum([len(x) for x in X])[:-1])

    def predict_spans(self, docs: Docs) -> list[list[tuple[int, int, int]]]:
        """Spans ``(start, end, technique)`` of every meme of ``docs`` at the chosen thresholds."""
        d_in = self.n_features_in_ // 4
        if docs.X and docs.X[0].shape[1] != d_in:
            raise ModelError(f"token features have {docs.X[0].shape[1]} dimensions, the model expects {d_in}")
        return [decode(p, o, text, self.thresholds_)
                for p, o, text in zip(self._token_proba([context(x) for x in docs.X]), docs.offsets, docs.texts)]

    # ---------------------------------------------------------------- state (the shared model file format)
    def _state(self):
        import torch  # lazy: torch only where a model file is written

        cuts = list(self.cv_)
        return {**super()._state(), "threshold": float(self.threshold_),
                "cv_thresholds": torch.tensor(cuts, dtype=torch.float64),
                "cv_f1": torch.tensor([self.cv_[t] for t in cuts], dtype=torch.float64)}

    def _state_spec(self, state, n_features, n_outputs):
        cuts = state.get("cv_thresholds")
        n = cuts.shape[0] if getattr(cuts, "ndim", 0) == 1 else None
        return {**super()._state_spec(state, n_features, n_outputs), "threshold": Number(float, 0, 1),
                "cv_thresholds": Tensor((n,), 0, 1), "cv_f1": Tensor((n,), 0, 1)}

    def _set_state(self, s):
        super()._set_state(s)
        self.threshold_ = float(s["threshold"])
        self.thresholds_ = np.full(self.n_outputs_, self.threshold_)
        self.cv_ = dict(zip(s["cv_thresholds"].tolist(), s["cv_f1"].tolist()))


# ---------------------------------------------------------------- baselines
def whole_text_baseline(docs: Docs, techniques) -> list[list[tuple[int, int, int]]]:
    """Every meme's whole text as one span of each technique in ``techniques`` (those seen in train)."""
    return [[(0, len(t), j) for j in sorted(techniques)] if t else [] for t in docs.texts]


def random_baseline(docs: Docs, train: Docs, seed: int = 0) -> list[list[tuple[int, int, int]]]:
    """Random spans with train's statistics: per meme a Poisson number of spans (train mean), each of a technique
    drawn by train frequency, a length drawn from train span lengths, a uniform start; snapped to words."""
    rng = np.random.default_rng(seed)
    gold = [s for g in train.gold for s in (g or ())]
    labels = np.array([s[2] for s in gold])
    lengths = np.array([s[1] - s[0] for s in gold])
    mean = len(gold) / max(1, len(train))
    out = []
    for text in docs.texts:
        spans = set()
        for _ in range(rng.poisson(mean) if text and len(gold) else 0):
            length = min(len(text), int(rng.choice(lengths)))
            start = int(rng.integers(0, len(text) - length + 1))
            spans.add((*snap(text, start, start + length), int(rng.choice(labels))))
        out.append(sorted(spans))
    return out
