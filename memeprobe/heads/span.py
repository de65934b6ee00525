"""Technique spans (SemEval-2021 Task 6 subtask 2) from cached per-token features.

A small MLP tags every token (with its neighbours and the meme's mean token as context) with 20
independent "inside a span of technique k" probabilities on frozen token features (``featurize ...
--tokens``: ``text_tokens``, ``text_mask``, ``text_offsets``). Runs of tokens at or above a technique's threshold become spans, mapped back to character offsets
and widened to whole words. The decision threshold is chosen by K-fold cross-validation on the
training split (out-of-fold span F1), then the model is refitted on the whole training split: no
split that is reported is used for any choice.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memeprobe.errors import MemeprobeError, WeightsError
from memeprobe.outputs import guarded

FORMAT = "memeprobe.span-head/1"
TOKEN_ARRAYS = ("text_tokens", "text_mask", "text_offsets")
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
        raise MemeprobeError(f"feature set {feature_set!r} has no per-token arrays ({', '.join(missing)} missing); "
                             "featurize the texts again with --tokens (and --overwrite, or a new feature set)")
    rows = store.select_rows(feature_set, list(TOKEN_ARRAYS), [split], missing="error")
    if not len(rows):
        raise MemeprobeError(f"store {store.path} has no rows in split {split}")
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


def _torch_model(d_in: int, k: int, hidden: int, dropout: float):
    from torch import nn

    return nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * d_in, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, k))


@contextmanager
def _cpu_settings():
    """One thread and denormals flushed to zero while training: the small matrices gain nothing from threads
    (which stall on a busy machine), and denormal gradients slow CPU math several-fold."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)


class SpanHead:
    """Multi-label token tagger (an MLP on each token with its context) over frozen token features;
    ``fit`` picks the threshold by CV on train."""

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

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in ("hidden", "dropout", "epochs", "lr", "weight_decay", "batch_size",
                                              "folds", "seed")}

    def _check(self, n: int) -> None:
        ints = {"hidden": 1, "epochs": 1, "batch_size": 1, "folds": 2}
        bad = [f"{k}={getattr(self, k)!r} (an integer >= {lo})" for k, lo in ints.items()
               if isinstance(getattr(self, k), bool) or not isinstance(getattr(self, k), int) or getattr(self, k) < lo]
        bad += [f"{k}={getattr(self, k)!r} (a number in {rng})" for k, rng, ok in (
            ("dropout", "[0, 1)", lambda v: 0 <= v < 1), ("lr", "(0, inf)", lambda v: v > 0),
            ("weight_decay", "[0, inf)", lambda v: v >= 0))
                if not isinstance(getattr(self, k), (int, float)) or not ok(getattr(self, k))]
        if bad:
            raise MemeprobeError(f"span head: bad parameter {'; '.join(bad)}")
        if n < self.folds:
            raise MemeprobeError(f"span head: {n} training memes are fewer than folds={self.folds}")

    # ---------------------------------------------------------------- training
    def _train(self, docs: Docs, k: int):
        import torch

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        X = torch.from_numpy(np.vstack([context(x) for x in docs.X]))
        Y = torch.from_numpy(np.vstack([token_targets(o, g, k) for o, g in zip(docs.offsets, docs.gold)]))
        model = _torch_model(docs.X[0].shape[1], k, self.hidden, self.dropout)
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        model.train()
        for _ in range(self.epochs):
            order = torch.from_numpy(rng.permutation(len(X)))
            for lo in range(0, len(order), self.batch_size):
                idx = order[lo:lo + self.batch_size]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(X[idx]), Y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        return model

    @staticmethod
    def _proba(model, docs: Docs) -> list[np.ndarray]:
        import torch

        if not len(docs):
            return []
        with torch.no_grad():
            p = torch.sigmoid(model(torch.from_numpy(np.vstack([context(x) for x in docs.X])))).numpy()
        return np.split(p, np.cumsum([len(x) for x in docs.X])[:-1])

    def fit(self, docs: Docs, label_names) -> "SpanHead":
        """Choose the threshold by ``folds``-fold CV span F1 on ``docs``, then fit on all of ``docs``."""
        with _cpu_settings():
            return self._fit(docs, label_names)

    def _fit(self, docs: Docs, label_names) -> "SpanHead":
        from memeprobe.heads.metrics import span_f1

        self._check(len(docs))

        if any(g is None for g in docs.gold):
            raise MemeprobeError("the training split has memes without span annotations; train on a labelled split")
        k = len(label_names)
        self.label_names_ = list(label_names)
        oof: list[np.ndarray | None] = [None] * len(docs)
        folds = np.random.default_rng(self.seed).permutation(len(docs)) % self.folds
        for f in range(self.folds):
            test = np.flatnonzero(folds == f)
            model = self._train(docs.take(np.flatnonzero(folds != f)), k)
            for i, p in zip(test, self._proba(model, docs.take(test))):
                oof[i] = p
        self.cv_ = {}
        for t in THRESHOLDS:
            pred = [decode(p, o, text, t) for p, o, text in zip(oof, docs.offsets, docs.texts)]
            self.cv_[float(t)] = span_f1(docs.gold, pred)["f1"]
        self.threshold_ = max(self.cv_, key=self.cv_.get)
        self.model_ = self._train(docs, k)
        self.d_in_ = int(docs.X[0].shape[1])
        return self

    # ---------------------------------------------------------------- prediction
    def predict_spans(self, docs: Docs) -> list[list[tuple[int, int, int]]]:
        if docs.X and docs.X[0].shape[1] != self.d_in_:
            raise MemeprobeError(f"token features have {docs.X[0].shape[1]} dimensions, the model expects {self.d_in_}")
        return [decode(p, o, text, self.threshold_)
                for p, o, text in zip(self._proba(self.model_, docs), docs.offsets, docs.texts)]

    # ---------------------------------------------------------------- persistence
    def save(self, path, meta: dict) -> Path:
        import torch

        from memeprobe.atomic import atomic_write

        with atomic_write(path, "wb", kind="model", parents=True) as f:
            torch.save({"format": FORMAT, "kind": "span", "params": self.get_params(),
                        "fitted": {"threshold": self.threshold_, "label_names": self.label_names_, "d_in": self.d_in_,
                                   "cv": {str(t): score for t, score in self.cv_.items()}},
                        "state": self.model_.state_dict(), "meta": meta}, f)
        return Path(path)

    @classmethod
    def load(cls, path) -> tuple["SpanHead", dict]:
        """``(head, meta)`` from a file written by :meth:`save`, every entry checked before anything is built."""
        d = read_model_file(path)
        if d is None:
            raise WeightsError(f"{path} is not a span model; train one with `memeprobe train-head span --out {path}`")
        _check_file(d, path)
        head = cls(**d["params"])
        fit = d["fitted"]
        head.threshold_, head.label_names_, head.d_in_ = fit["threshold"], fit["label_names"], fit["d_in"]
        head.cv_ = {float(t): f for t, f in fit["cv"].items()}
        head.model_ = _torch_model(head.d_in_, len(head.label_names_), head.hidden, head.dropout)
        head.model_.load_state_dict(d["state"])
        head.model_.eval()
        return head, d["meta"]


def _check_file(d: dict, path) -> None:
    """WeightsError naming ``path`` unless the span model dict ``d`` holds what :meth:`SpanHead.load` builds from:
    valid parameters, a threshold in [0, 1], distinct technique names, and the tagger's weights in the shapes
    those declare (compared on torch's meta device: nothing is allocated), finite."""
    import torch

    from memeprobe.heads.validate import (BadModel, Number, Tensor, check_entries, check_identity, check_value, fail,
                                          tensors)

    try:
        for key in ("params", "fitted", "state", "meta"):
            if not isinstance(d.get(key), dict):
                raise BadModel(f"no '{key}' dict")
        params, fit, meta = d["params"], d["fitted"], d["meta"]
        unknown = sorted(set(params) - set(SpanHead().get_params()))
        if unknown:
            raise BadModel(f"unknown parameter(s) {', '.join(map(str, unknown))}")
        head = SpanHead(**params)
        try:
            head._check(head.folds if isinstance(head.folds, int) else 0)
        except MemeprobeError as e:
            raise BadModel(str(e)) from None
        bound = max([int(x) for t in tensors(d["state"]) for x in t.shape] + [1])  # d_in is a stored width
        check_value(fit.get("threshold"), Number(float, 0, 1), "fitted threshold")
        check_value(fit.get("d_in"), Number(int, 1, bound), "fitted d_in")
        names = fit.get("label_names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names) \
                or len(set(names)) != len(names) or meta.get("label_names") != names:
            raise BadModel("its technique names are not a list of distinct names (the same in meta)")
        cv = fit.get("cv")
        if not isinstance(cv, dict) or not all(_number(t) and isinstance(f, (int, float)) for t, f in cv.items()):
            raise BadModel("fitted cv is not {threshold: score}")
        if not isinstance(meta.get("feature_set"), str) or not check_identity(meta.get("identity")):
            raise BadModel("meta lacks its feature set or identity {feature set: {identity, arrays}}")
        with torch.device("meta"):
            model = _torch_model(fit["d_in"], len(names), head.hidden, head.dropout)
        check_entries(d["state"], {k: Tensor(tuple(v.shape)) for k, v in model.state_dict().items()}, "state")
    except BadModel as e:
        raise fail(path, str(e)) from None


def _number(text) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def read_model_file(path) -> dict | None:
    """The contents of a span model file; None when ``path`` is another kind of model file."""
    from memeprobe.heads.base import read_model_file as read

    d = read(path)
    return d if isinstance(d, dict) and d.get("format") == FORMAT else None


# ---------------------------------------------------------------- baselines and reports
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


def score_table(scores: dict[str, dict]) -> str:
    """Rows ``name  P  R  F1`` for {name: span_f1 result}."""
    width = max(12, *(len(n) + 2 for n in scores))
    lines = ["".ljust(width) + "".join(c.rjust(11) for c in ("precision", "recall", "span_f1", "n_pred"))]
    for name, m in scores.items():
        lines.append(name.ljust(width) + "".join(f"{m[c]:.4f}".rjust(11) for c in ("precision", "recall", "f1"))
                     + str(m["n_pred"]).rjust(11))
    return "\n".join(lines)


def technique_table(result: dict, names) -> str:
    """Per-technique gold/predicted counts, precision, recall and F1 of one span_f1 result."""
    lines = [f"{'n_gold':>7}{'n_pred':>7}{'P':>8}{'R':>8}{'F1':>8}  technique"]
    for j, name in enumerate(names):
        m = result["per_technique"].get(j, {"n_gold": 0, "n_pred": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0})
        lines.append(f"{m['n_gold']:>7}{m['n_pred']:>7}{m['precision']:>8.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}  {name}")
    return "\n".join(lines)


def _feature_set(store, refs) -> str:
    from memeprobe.store.features import parse_ref

    names = list(dict.fromkeys(parse_ref(r)[0] for r in refs))
    if len(names) != 1:
        raise MemeprobeError("the span head takes exactly one feature set with per-token arrays "
                             f"(e.g. st-minilm), got {', '.join(names) or 'none'}")
    return names[0]


def _identity(store, name: str) -> dict:
    from memeprobe.store.features import identity

    return identity(store, [f"{name}:{','.join(TOKEN_ARRAYS)}"])


@guarded(paths={"store": "store"}, outputs={"out": "model"})
def train(store, refs, train_split: str, eval_splits, seed: int, params: dict, out=None, echo=print) -> dict:
    """Fit a :class:`SpanHead` on ``train_split``, print the evaluated splits beside both baselines and a
    per-technique table, save the model to ``out``; returns {split: span_f1 result}."""
    import time

    from memeprobe.heads.metrics import span_f1

    name = _feature_set(store, refs)
    names = list(store.label_names)
    t0 = time.perf_counter()
    docs = load_docs(store, name, train_split)
    unknown = sorted(set(params) - set(SpanHead().get_params()) | ({"seed"} & set(params)))
    if unknown:
        raise MemeprobeError(f"span head has no parameter {', '.join(unknown)} (it has: "
                             f"{', '.join(k for k in SpanHead().get_params() if k != 'seed')}; the seed is --seed)")
    head = SpanHead(**{**params, "seed": seed}).fit(docs, names)
    seconds = time.perf_counter() - t0
    echo(f"span head on {name} ({len(docs)} {train_split} memes, {sum(len(x) for x in docs.X)} tokens, "
         f"{docs.X[0].shape[1]}-d) in {seconds:.1f} s; threshold {head.threshold_} chosen by {head.folds}-fold CV "
         f"on {train_split} (CV span F1 {head.cv_[head.threshold_]:.4f})")
    seen = {s[2] for g in docs.gold for s in g}
    results = {}
    for split in eval_splits:
        ev = load_docs(store, name, split)
        known = [i for i, g in enumerate(ev.gold) if g is not None]
        if not known:
            echo(f"{split}: unlabelled, not scored")
            continue
        ev = ev.take(known)
        scores = {"span head": span_f1(ev.gold, head.predict_spans(ev)),
                  "random spans": span_f1(ev.gold, random_baseline(ev, docs, seed)),
                  "whole text x seen": span_f1(ev.gold, whole_text_baseline(ev, seen))}
        echo(f"{split} ({len(ev)} memes, {scores['span head']['n_gold']} gold spans):")
        echo(score_table(scores))
        echo(f"per technique ({split}, span head):")
        echo(technique_table(scores["span head"], names))
        results[split] = scores
    if out:
        head.save(out, {"feature_set": name, "identity": _identity(store, name), "train_split": train_split,
                        "label_names": names, "train_seconds": round(seconds, 3),
                        "dataset_fingerprint": store.dataset_fingerprint, "dataset_format": store.dataset_format})
        echo(f"model: {out}")
    return results


@guarded(paths={"model": "model_path", "store": "store"}, outputs={"out": "file"})
def predict(model_path, store, split: str, out, echo=print, allow_other_dataset: bool = False,
            allow_other_features: bool = False) -> list[dict]:
    """Write the task's JSON for every meme of ``split``: ``[{id, text, labels: [{start, end, technique,
    text_fragment}]}]`` (atomically); prints the span F1 when the split is labelled with the model's techniques.
    The store must match the model (:func:`~memeprobe.heads.matching.check_match`) unless allowed."""
    import json

    from memeprobe.atomic import atomic_write
    from memeprobe.heads.matching import check_match
    from memeprobe.heads.metrics import span_f1

    head, meta = SpanHead.load(model_path)
    name = meta["feature_set"]
    match = check_match(store, model_path, [f"{name}:{','.join(TOKEN_ARRAYS)}"], meta["identity"],
                        meta.get("dataset_fingerprint"), meta["label_names"], list(store.label_names),
                        allow_other_dataset=allow_other_dataset, allow_other_features=allow_other_features)
    for note in match.notes:
        echo(f"note: {note}")
    docs = load_docs(store, name, split)
    pred = head.predict_spans(docs)
    names = meta["label_names"]
    rows = [{"id": str(i), "text": text,
             "labels": [{"start": s, "end": e, "technique": names[j], "text_fragment": text[s:e]} for s, e, j in p]}
            for i, text, p in zip(docs.ids, docs.texts, pred)]
    with atomic_write(out, "w", encoding="utf-8") as f:
        json.dump(rows, f, ensure_ascii=False, indent=1)
    echo(f"{out}: {len(rows)} {split} memes, {sum(len(p) for p in pred)} spans")
    known = [i for i, g in enumerate(docs.gold) if g is not None and match.same_labels]
    if known:
        m = span_f1([docs.gold[i] for i in known], [pred[i] for i in known])
        echo(f"{split} span F1 {m['f1']:.4f} (precision {m['precision']:.4f}, recall {m['recall']:.4f}, "
             f"{len(known)} labelled memes)")
    return rows
