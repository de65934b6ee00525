"""The error-analysis page of a trained head on one split (``memeprobe explain``): one self-contained HTML page
(template ``templates/explain.html.j2``) and its numbers (``explain.json``), in a folder replaced as a whole.

On a labelled split: the scores beside trivial baselines, per-class precision/recall/F1 with support (``None``,
shown as ``–``, for a class without gold positives; macro averages say how many classes they cover), the
confusion matrix (per-label counts for a multi-label target), reliability diagram, ROC and PR curves, the most
confident mistakes of each kind with the nearest training memes by the head's features (cosine), and slices
(leaked vs leak-free from a leakage report's clean ids, with/without image, text length). On an unlabelled split:
the predicted labels against the training prior (and per slice) and the most uncertain memes. The page names the splits the
model was tuned on; a score on one of them is marked in-sample, never shown as an estimate.
"""
from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, multilabel_confusion_matrix

from memeprobe import __version__
from memeprobe.atomic import atomic_dir
from memeprobe.data.thumbnails import missing_note, thumbnails
from memeprobe.errors import ModelError, OutputError
from memeprobe.heads._experiment import labeled
from memeprobe.heads._matching import match_model
from memeprobe.heads._plots import _plt, figures, png
from memeprobe.heads.api import opened
from memeprobe.heads.metrics import auroc, baselines, evaluate
from memeprobe.heads.persist import check_meta, load_model
from memeprobe.heads.runs import headline
from memeprobe.heads.thresholds import exclusive
from memeprobe.html import render, script_json
from memeprobe.leakage.manifest import read_clean_ids, report_folders
from memeprobe.outputs import EXPLAIN_PAGE, guarded
from memeprobe.store.features import load_features

DATA = "explain.json"
NEIGHBOURS = 5
SCORE_COLUMNS = {"binary": ("auroc", "acc", "f1", "macro_f1"),
                 "multi": ("micro_f1", "macro_f1", "accuracy", "mami_a_f1", "mami_b_f1", "macro_auroc")}


@dataclass
class Explanation:
    """What :func:`explain` wrote: the page, and the facts the command prints."""

    page: Path
    split: str
    n: int
    labelled: int
    tuned_on: list  # the splits the model's selection saw
    in_sample: bool  # this split is one of them: its scores are not an estimate
    headline: tuple | None  # (metric, value) on the labelled rows
    doc: dict  # what explain.json holds, and the thumbnails
    seconds: float
    notes: list = field(default_factory=list)


def tuned_on(meta: dict) -> tuple[list, bool]:
    """``(splits, recorded)``: the splits the model's selection saw, as its file records them; for a file that
    does not (an older one, a sweep's), the training split and the dev split, which may have been."""
    if isinstance(meta.get("in_sample"), list):
        return list(meta["in_sample"]), True
    train, dev = meta.get("train_split") or "train", meta.get("dev_split")
    return [train] + ([dev] if dev else []), False


def check_out_dir(out: Path) -> None:
    """The page's folder is replaced as a whole: refuse one holding files it did not write."""
    if not out.is_dir():
        return
    foreign = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.name not in (EXPLAIN_PAGE, DATA))
    if foreign:
        raise OutputError(f"{out} holds files that are not part of an explain page ({', '.join(foreign[:3])}"
                          f"{' and more' if len(foreign) > 3 else ''}); the page replaces its output folder as a "
                          "whole: choose a new or empty folder")


@guarded(paths={"model": "model_path", "store": "store"}, trees={"clean-ids folder": ("clean_ids", report_folders)},
         outputs={"out": "explain"})
def explain(model_path, store, split, out, *, clean_ids=None, n_examples=8, n_boot=1000,
            thumb_size=96) -> Explanation:
    """Write the error-analysis page of the model at ``model_path`` on ``split`` of ``store`` into the folder
    ``out`` (``explain.html``, ``explain.json``); ``clean_ids``: a leakage report folder whose leak-free ids
    make the leaked / leak-free slices; ``n_examples`` memes per kind of mistake (or uncertain memes)."""
    start = time.perf_counter()
    out = Path(out)
    check_out_dir(out)
    model, meta = load_model(model_path)
    check_meta(meta, model_path, model)
    if model.task == "spans":
        raise ModelError(f"{model_path} is a span tagger; explain takes meme classifiers (train-head logreg, mlp, "
                         "fusion, retrieval, ensemble); score spans with `memeprobe predict`")
    train_split = meta.get("train_split") or "train"
    notes = []
    with opened(store) as st:
        st.rows([split, train_split])  # both splits exist (one line naming the missing ones)
        notes += match_model(st, model_path, meta).notes
        f = load_features(st, meta["feature_sets"], [split], meta["target"])
        tr = load_features(st, meta["feature_sets"], [train_split], meta["target"])
        table = {"ids": st.ids, "splits": st.splits, "texts": st.texts, "images": st.images,
                 "root": st.image_root, "path": str(st.path)}
    clean = None
    if clean_ids:
        clean = read_clean_ids(clean_ids, [split]).get(split)
        unknown = len(clean - set(f.ids.tolist()))
        if unknown:
            notes.append(f"{unknown} leak-free id(s) of {clean_ids} are not in {split}: the report may be of another "
                         "dataset")
    names = list(meta["label_names"])
    P, pred = model.positive_proba(f.X), np.asarray(model.predict(f.X))
    t = np.asarray(model.thresholds_, dtype=np.float64)
    splits, recorded = tuned_on(meta)
    ok = labeled(f)
    y_train = tr.y[labeled(tr)]
    memes = _MemeTable(table, f, tr, names)
    doc = {
        "memeprobe_version": __version__, "model": str(model_path), "head": model.name, "store": table["path"],
        "feature_sets": meta["feature_sets"], "run_id": meta.get("run_id"), "split": split,
        "train_split": train_split, "n": int(len(f.ids)), "labelled": int(ok.sum()), "label_names": names,
        "tuned_on": splits, "tuned_on_recorded": recorded, "in_sample": split in splits,
        "thresholds": t.tolist(), "notes": notes,
    }
    if ok.any():
        doc.update(_labelled(f, tr, P, pred, t, ok, names, y_train, clean, memes, n_examples, n_boot, split,
                             meta, table))
    else:
        doc.update(_unlabelled(f, tr, P, pred, t, names, y_train, memes, n_examples, table, clean))
    doc["memes"] = memes.render(thumb_size)
    doc = _write(out, doc)
    metric = doc.get("headline")
    return Explanation(out / EXPLAIN_PAGE, split, doc["n"], doc["labelled"], splits, doc["in_sample"],
                       (metric, doc["metrics"].get(metric)) if metric else None, doc,
                       time.perf_counter() - start, notes)


# ---------------------------------------------------------------- labelled splits
def _labelled(f, tr, P, pred, t, ok, names, y_train, clean, memes, n_examples, n_boot, split, meta, table) -> dict:
    y, Pl, dl = f.y[ok], P[ok], pred[ok]
    rows = np.flatnonzero(ok)
    metrics = evaluate(y, Pl, t, names, n_boot=n_boot, pred=dl)
    base = baselines(y_train, y, names)
    kind = "binary" if y.ndim == 1 else "multi"
    cols = [c for c in SCORE_COLUMNS[kind] if c in metrics]
    figs = figures(y, Pl, names, t, split=split, features=", ".join(meta["feature_sets"]), pred=dl)
    mistakes = {}
    for what, (idx, conf, blame) in _mistakes(y, Pl, dl, names, n_examples).items():
        mistakes[what] = [{"meme": memes.add(f.rows[rows[i]]), "confidence": float(c), "blame": b,
                           "predicted": _outputs(Pl[i], dl[i], names), "neighbours": nb}
                          for i, c, b, nb in zip(idx, conf, blame,
                                                 _neighbours(f.X[rows[idx]], f.rows[rows[idx]], tr, memes))]
    groups = _slice_groups(f.ids[ok], f.rows[ok], table, clean)
    slices = [{"title": title, "rows": [_slice(name, m, y, Pl, dl, t, names, y_train, kind) for name, m in parts]}
              for title, parts in groups]
    return {
        "headline": headline(metrics), "metrics": metrics, "columns": cols,
        "baselines": {b: {c: m.get(c) for c in cols} for b, m in base.items()},
        "per_class": _per_class(y, Pl, dl, names),
        "confusion": _confusion(y, dl, names),
        "figures": {k: base64.b64encode(png(fig)).decode("ascii") for k, fig in figs.items()},
        "mistakes": mistakes, "slices": slices,
    }


def _per_class(y, P, pred, names) -> dict:
    """Per class precision, recall, F1, support (gold positives) and AUROC; ``None`` where a class has no gold
    positives (recall, F1) or no predictions (precision). Binary: both classes. The macro average covers the
    classes with gold positives and says how many."""
    if y.ndim == 1:
        Y = np.stack([1 - y, y], 1)
        D = np.stack([1 - pred, pred], 1).astype(int)
        S = np.stack([1 - P, P], 1)
        labels = [f"not {names[0]}", names[0]]
    else:
        Y, D, S, labels = y, pred.astype(int), P, names
    out = []
    for k, (name, counts) in enumerate(zip(labels, multilabel_confusion_matrix(Y, D, labels=range(len(labels))))):
        tn, fp, fn, tp = (int(c) for c in counts.ravel())
        support, predicted = tp + fn, tp + fp
        p = tp / predicted if predicted else None
        r = tp / support if support else None
        f1 = None if r is None else (2 * tp / (2 * tp + fp + fn))
        a = auroc(Y[:, k], S[:, k])
        out.append({"name": name, "precision": p, "recall": r, "f1": f1, "support": support, "predicted": predicted,
                    "tp": tp, "fp": fp, "fn": fn, "tn": tn,
                    "auroc": None if math.isnan(a) else a})
    covered = [c for c in out if c["support"]]
    macro = {m: (float(np.mean([c[m] or 0.0 for c in covered])) if covered else None)
             for m in ("precision", "recall", "f1")}
    return {"classes": out, "macro": macro, "covered": len(covered), "total": len(out)}


def _confusion(y, pred, names) -> dict | None:
    """Counts of (true, predicted) classes for a binary or single-label target; None for a multi-label one (its
    per-label counts are in the per-class table)."""
    if y.ndim == 1:
        labels = [f"not {names[0]}", names[0]]
        m = confusion_matrix(y, pred.astype(int), labels=[0, 1])
    elif exclusive(y) and (pred.sum(1) == 1).all():
        labels = names
        m = confusion_matrix(y.argmax(1), pred.argmax(1), labels=list(range(len(names))))
    else:
        return None
    return {"labels": labels, "matrix": m.tolist()}


def _mistakes(y, P, pred, names, n) -> dict:
    """``{kind: (rows, confidence, blamed labels)}``: the ``n`` most confident wrong decisions of each kind.
    Binary: false positives by probability, false negatives by 1 - probability; otherwise a meme's wrongly
    predicted labels (spurious) and its missed labels, by the most confident such label."""
    if y.ndim == 1:
        fp, fn = (pred == 1) & (y == 0), (pred == 0) & (y == 1)
        wrong = {f"false positives (predicted {names[0]}, truly not)": (fp, np.where(fp, P, -np.inf)[:, None]),
                 f"false negatives (truly {names[0]}, predicted not)": (fn, np.where(fn, 1 - P, -np.inf)[:, None])}
        label_names = [names[0]]
    else:
        spurious, missed = (pred == 1) & (y == 0), (pred == 0) & (y == 1)
        wrong = {"spurious labels (predicted, not true)": (spurious, np.where(spurious, P, -np.inf)),
                 "missed labels (true, not predicted)": (missed, np.where(missed, 1 - P, -np.inf))}
        label_names = names
    out = {}
    for what, (mask, conf) in wrong.items():
        mask = mask if mask.ndim == 2 else mask[:, None]
        best = conf.max(1)
        idx = np.flatnonzero(mask.any(1))
        idx = idx[np.argsort(-best[idx], kind="stable")][:n]
        out[what] = (idx, best[idx], [[label_names[k] for k in np.flatnonzero(mask[i])] for i in idx])
    return out


def _outputs(p, d, names) -> list:
    """``[[label, probability, decided]]`` per output of one meme."""
    p, d = np.atleast_1d(p), np.atleast_1d(d)
    return [[n, float(v), bool(c)] for n, v, c in zip(names, p, d)]


# ---------------------------------------------------------------- nearest training memes
def _unit(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norm > 0, norm, 1)


def _neighbours(Q, q_rows, tr, memes, k=NEIGHBOURS) -> list:
    """Per query row, its ``k`` nearest training memes by cosine similarity of the head's features (the query's
    own store row excluded), as ``[{meme, similarity}]``."""
    if not len(Q):
        return []
    T = memes.train_unit()
    S = _unit(Q) @ T.T
    S[np.asarray(q_rows)[:, None] == tr.rows[None, :]] = -np.inf
    k = min(k, S.shape[1])
    top = np.argpartition(-S, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(S, top, 1).argsort(1)[:, ::-1]
    top = np.take_along_axis(top, order, 1)
    return [[{"meme": memes.add(tr.rows[j]), "similarity": float(S[q, j])} for j in top[q] if np.isfinite(S[q, j])]
            for q in range(len(Q))]


# ---------------------------------------------------------------- slices
def _slice_groups(ids, rows, table, clean) -> list:
    """``[(title, [(name, mask)])]`` over the labelled rows: leaked vs leak-free (with clean ids), with/without
    image, text length in words (tertiles)."""
    groups = []
    if clean is not None:
        free = np.isin(ids, list(clean))
        groups.append(("leakage (clean ids of the leakage report)", [("leak-free", free), ("leaked", ~free)]))
    has = np.asarray([bool(table["images"][r]) for r in rows], bool)
    groups.append(("image", [("with image", has), ("without image", ~has)]))
    words = np.asarray([len(str(table["texts"][r]).split()) for r in rows])
    edges = np.unique(np.quantile(words, [1 / 3, 2 / 3]).astype(int)) if len(words) else np.array([], int)
    bins = np.digitize(words, edges, right=True)
    lows = [int(words.min()) if len(words) else 0] + [int(e) + 1 for e in edges]
    highs = [int(e) for e in edges] + [int(words.max()) if len(words) else 0]
    parts = [(f"{lo}–{hi} words" if lo != hi else f"{lo} words", bins == b) for b, (lo, hi) in enumerate(zip(lows, highs))]
    groups.append(("text length", parts))
    return [(title, [(n, m) for n, m in parts if m.any()]) for title, parts in groups]


def _slice(name, m, y, P, pred, t, names, y_train, kind) -> dict:
    """One slice's size, scores and its trivial baselines (fitted on the training labels)."""
    ys, Ps, ds = y[m], P[m], pred[m]
    s = evaluate(ys, Ps, t, names, n_boot=0, pred=ds)
    b = baselines(y_train, ys, names)
    cols = [c for c in SCORE_COLUMNS[kind] if c in s][:3]
    row = {"name": name, "n": int(m.sum()), "scores": {c: s.get(c) for c in cols},
           "baselines": {bn: {c: bm.get(c) for c in cols} for bn, bm in b.items()}}
    if kind == "binary":
        row["positives"] = int(ys.sum())
    return row


# ---------------------------------------------------------------- unlabelled splits
def _unlabelled(f, tr, P, pred, t, names, y_train, memes, n_examples, table, clean) -> dict:
    P2 = P[:, None] if P.ndim == 1 else P
    D2 = pred[:, None] if pred.ndim == 1 else pred
    prior = y_train.mean(0) if len(y_train) else np.full(P2.shape[1], np.nan)
    prior = np.atleast_1d(prior)
    dist = [{"name": n, "train_prior": float(prior[k]), "predicted_share": float(D2[:, k].mean()),
             "mean_probability": float(P2[:, k].mean())} for k, n in enumerate(names)]
    margin = np.abs(P2 - t[None, :]).min(1)
    idx = np.argsort(margin, kind="stable")[:n_examples]
    nbs = _neighbours(f.X[idx], f.rows[idx], tr, memes)
    uncertain = [{"meme": memes.add(f.rows[i]), "margin": float(margin[i]), "predicted": _outputs(P[i], pred[i], names),
                  "neighbours": nb} for i, nb in zip(idx, nbs)]
    slices = [{"title": title, "rows": [{"name": name, "n": int(m.sum()),
                                          "predicted_share": D2[m].mean(0).tolist()} for name, m in parts]}
              for title, parts in _slice_groups(f.ids, f.rows, table, clean)]
    return {"distribution": dist, "uncertain": uncertain, "slices": slices,
            "figures": {"distribution": base64.b64encode(png(_distribution_figure(P2, t, prior, dist, names)))
                        .decode("ascii")}}


def _distribution_figure(P, t, prior, dist, names):
    """Binary: the histogram of probabilities with the threshold; otherwise predicted share vs training prior."""
    plt = _plt()
    if P.shape[1] == 1:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(P[:, 0], bins=40, range=(0, 1), color="#4a7")
        ax.axvline(t[0], color="k", ls="--", lw=1, label=f"threshold {t[0]:.3f}")
        ax.set_xlabel(f"predicted probability of {names[0]}")
        ax.set_ylabel("memes")
        ax.set_title(f"predicted {names[0]}: {dist[0]['predicted_share']:.1%} of memes; training prior "
                     f"{prior[0]:.1%}", fontsize=9)
        ax.legend(fontsize=8)
        return fig
    k = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(names) + 1.2))
    ax.barh(k - 0.2, prior, height=0.4, label="training prior")
    ax.barh(k + 0.2, [d["predicted_share"] for d in dist], height=0.4, label="predicted share")
    ax.set_yticks(k, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("share of memes")
    ax.legend(fontsize=8)
    return fig


# ---------------------------------------------------------------- memes shown
class _MemeTable:
    """The memes the page shows (by store row), with their texts, labels and thumbnails."""

    def __init__(self, table, f, tr, names):
        self.table, self.names, self.tr = table, names, tr
        self.labels = {int(r): y for r, y in zip(f.rows, f.y)} | {int(r): y for r, y in zip(tr.rows, tr.y)}
        self.order: dict[int, int] = {}
        self._train = None

    def train_unit(self) -> np.ndarray:
        if self._train is None:
            self._train = _unit(self.tr.X)
        return self._train

    def add(self, row) -> int:
        """The page's index of store ``row`` (added on first use)."""
        return self.order.setdefault(int(row), len(self.order))

    def _label(self, y) -> str:
        y = np.asarray(y)
        if (y < 0).any():
            return "unlabelled"
        if y.ndim == 0:
            return self.names[0] if y == 1 else f"not {self.names[0]}"
        return ", ".join(n for n, v in zip(self.names, y) if v) or "none"

    def render(self, size: int) -> list:
        t = self.table
        root = Path(t["root"])
        paths = {r: (root / t["images"][r]) if t["images"][r] else None for r in self.order}
        thumbs = thumbnails(paths, root, size)
        return [{"id": str(t["ids"][r]), "split": str(t["splits"][r]), "text": str(t["texts"][r]),
                 "label": self._label(self.labels[r]),
                 "thumb": base64.b64encode(thumbs[r]).decode("ascii") if r in thumbs else None,
                 "note": None if r in thumbs else missing_note(paths[r], root)} for r in self.order]


# ---------------------------------------------------------------- writing
def _plain(value):
    """JSON-able: numpy to python, NaN to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _write(out: Path, doc: dict) -> dict:
    """``explain.json`` and ``explain.html`` into a fresh folder that replaces ``out`` as a whole; returns
    ``doc`` as written (JSON-able)."""
    doc = _plain(doc)
    figures_ = doc.pop("figures", {})
    html = render("memeprobe.heads", "explain.html.j2", d=doc, memes=doc["memes"], figures=figures_,
                  pictures=any(m["thumb"] for m in doc["memes"]),
                  protocol=_protocol(doc), data_json=script_json({"memes": doc["memes"]}))
    with atomic_dir(out, "explain") as tmp:
        memes = [{**{k: v for k, v in m.items() if k != "thumb"}, "thumbnail": m["thumb"] is not None}
                 for m in doc["memes"]]
        (tmp / DATA).write_text(json.dumps({**doc, "memes": memes}, indent=1, allow_nan=False) + "\n",
                                encoding="utf-8")
        (tmp / EXPLAIN_PAGE).write_text(html, encoding="utf-8")
    return doc


def _protocol(doc) -> str:
    """The sentence that says what the page's scores are (an estimate, or in-sample)."""
    split, tuned = doc["split"], ", ".join(doc["tuned_on"])
    if not doc["labelled"]:
        return f"{split} is unlabelled: no scores, only what the model predicts there (tuned on {tuned})."
    if doc["in_sample"]:
        how = "" if doc["tuned_on_recorded"] else " (the model file does not record which splits its selection " \
                                                  "used, so this one is assumed to be among them)"
        return (f"The model was tuned on {tuned}{how}: the scores on {split} are in-sample, NOT an estimate of how "
                "it does on new memes.")
    return (f"The model was tuned on {tuned} only; {split} was not used to train or select it, so its scores "
            "estimate performance on memes like these, as long as what this page shows does not change the model "
            f"(a model changed for {split}'s mistakes is tuned on {split}: estimate it on another split).")
