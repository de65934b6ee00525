"""The heads' Python API (the CLI is a thin shell over it): train a head on a store, predict a split,
sweep configurations, read the runs of a store's dataset.

``train_head`` takes the CLI's defaults: selection by 5-fold CV on the training split, the dev split
(``dev_seen``, ``dev``, ``validation`` or ``val`` when present) scored untouched, trivial baselines beside
every score; the run is appended to ``runs.jsonl`` beside the store. The span tagger (``span``) trains on
per-token features, scores span F1 beside its baselines and writes the task's span JSON. Every function takes a
store path or an open :class:`~memeprobe.store.FeatureStore`."""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memeprobe import __version__
from memeprobe.atomic import atomic_write
from memeprobe.errors import ConfigError
from memeprobe.heads import sweep as sw
from memeprobe.heads._experiment import labeled, run_experiment
from memeprobe.heads._matching import check_match, match_model
from memeprobe.heads._plots import plot_all
from memeprobe.heads.choices import NO_DEV
from memeprobe.heads.factory import create_head, head_class
from memeprobe.heads.metrics import evaluate, span_f1
from memeprobe.heads.persist import check_meta, load_model, save_model
from memeprobe.heads.runs import (append_runs, best_runs, headline, new_record, of_dataset, official, read_runs,
                                  runs_path)
from memeprobe.heads.span import SPAN_TARGET, TOKEN_ARRAYS, load_docs, random_baseline, whole_text_baseline
from memeprobe.heads.submission import default_format, formula_ids, write_submission
from memeprobe.heads.training import epoch_progress
from memeprobe.leakage.manifest import read_clean_ids, report_folders
from memeprobe.leakage.shift import against_train
from memeprobe.outputs import check_output, file_names, guarded
from memeprobe.store import FeatureStore
from memeprobe.store.features import (canonical, identity, label_names, load_features, parse_ref, resolve,
                                      resolve_target, store_checksum)

DEV_SPLITS = ("dev_seen", "dev", "validation", "val")


@contextlib.contextmanager
def opened(store):
    """``store`` itself when it is an open FeatureStore, else the store at that path (closed afterwards)."""
    if isinstance(store, FeatureStore):
        yield store
        return
    with FeatureStore.open(store) as st:
        yield st


def dev_split_of(store, dev_split=None) -> str | None:
    """``dev_split`` as given (:data:`NO_DEV` = no dev split), else the store's first of :data:`DEV_SPLITS`."""
    if dev_split == NO_DEV:
        return None
    if dev_split:
        return dev_split
    return next((s for s in DEV_SPLITS if s in store.split_names()), None)


def model_meta(store, refs, target) -> dict:
    """What a model file and a run record say about the data: feature sets, identity, store, target."""
    refs = canonical(store, refs)
    return {
        "feature_sets": refs, "identity": identity(store, refs), "store": str(Path(store.path).resolve()),
        "store_checksum": store_checksum(store, refs), "dataset_fingerprint": store.dataset_fingerprint,
        "dataset_format": store.dataset_format, "target": resolve_target(store, target),
        "label_names": label_names(store, target),
        "memeprobe_version": __version__,
    }


def load_splits(store, refs, splits, target) -> dict:
    return {s: load_features(store, refs, [s], target) for s in dict.fromkeys(splits)}


def _shapes(store, refs) -> list[tuple]:
    return [store.arrays(n)[a].shape for n, arrays in (resolve(store, r) for r in refs) for a in arrays]


def _tokens(store, refs) -> int:
    """Token count of one fusion side: R for one (R, D) array, 1 for vectors."""
    shapes = _shapes(store, refs)
    if all(len(s) == 1 for s in shapes):
        return 1
    if len(shapes) == 1 and len(shapes[0]) == 2:
        return shapes[0][0]
    raise ConfigError(f"attention fusion: give one (tokens, dim) array or only vectors per side, got shapes "
                      f"{', '.join(str(s) for s in shapes)} for {', '.join(refs)}")


def fusion_config(store, data, image, text, fusion) -> dict:
    """The fusion parameters the store's arrays imply: the image part's width, token counts (attention)."""
    config = {"split": sum(data.blocks[:len(_shapes(store, image))])}
    if fusion == "attention":
        config.update(image_tokens=_tokens(store, image), text_tokens=_tokens(store, text))
    return config


def fitted_summary(model) -> tuple[dict, dict]:
    """``(params, chosen)``: the fitted head's parameters as recorded, and what selection chose (C, epochs, k)."""
    head = getattr(model, "estimator_", model)
    params = head.describe() if hasattr(head, "describe") else head.get_params()
    chosen = {k: getattr(head, k) for k in ("C_", "best_epoch_", "k_", "temperature_") if hasattr(head, k)}
    return params, chosen


@dataclass
class Training:
    """What :func:`train_head` did: the fitted ``model`` and its scores, with everything the CLI prints."""

    kind: str
    model: object
    metrics: dict  # split → metrics ("cv" = out-of-fold, "SPLIT@clean" = leak-free subset)
    baselines: dict  # split → baseline name → metrics
    seeds: dict  # split → metric → {"mean", "std"} with several seeds
    notes: list
    in_sample: list  # the splits selection saw
    meta: dict  # feature sets, identity, store, target, label names
    train_split: str
    dev_split: str | None
    select_on: str
    n_train: int
    n_features: int
    record: dict  # the run record (runs.jsonl)
    seconds: float
    out: Path | None = None  # where the model was saved (None: not saved)
    runs_file: Path | None = None
    plots: list = field(default_factory=list)
    clean_missing: list = field(default_factory=list)  # splits the clean-ids folder has no list for
    shift: list = field(default_factory=list)  # leakage.shift.ShiftResult of each split selection did not see
    shift_notes: list = field(default_factory=list)  # splits whose shift could not be measured, and why

    @property
    def untouched(self) -> list[str]:
        return [s for s in self.metrics if s not in self.in_sample and s != "cv"]


@guarded(paths={"store": "store"}, trees={"clean-ids folder": ("clean_ids", report_folders)},
         outputs={"out": "model", "plots": "plots"})
def train_head(store, kind, feature_sets=(), *, image=(), text=(), fusion="align", train_split="train",
               dev_split=None, select_on="train", eval_splits=(), target="auto", tune_metric=None, seed=0,
               n_seeds=1, ensemble=False, clean_ids=None, plots=None, n_boot=1000, out=None, log_run=True,
               progress=False, **params) -> Training:
    """Train head ``kind`` (``logreg``, ``mlp``, ``fusion``, ``retrieval``, ``ensemble`` with
    ``members=[...]``, or ``span``: see :func:`train_spans`) on ``feature_sets`` (fusion: ``image`` and ``text``
    arrays), select on ``select_on``, score every split; ``params`` are head parameters. Saves the model to
    ``out`` when given."""
    if head_class(kind).task == "spans":
        return train_spans(store, kind, feature_sets, train_split=train_split, dev_split=dev_split,
                           eval_splits=eval_splits, seed=seed, out=out, log_run=log_run, **params)
    if kind == "fusion":
        if not image or not text:
            raise ConfigError("a fusion head needs image arrays and text arrays (e.g. image pixels/image_embed, "
                              "text st-minilm/text_embed)")
        refs = list(image) + list(text)
    else:
        refs = list(feature_sets) + list(image) + list(text)
    if not refs:
        raise ConfigError("give at least one feature set (e.g. st-minilm)")
    config = {**({"fusion": fusion} if kind == "fusion" else {}), **params}
    if log_run:
        check_output(runs_path(getattr(store, "path", store)), "runs")
    start = time.perf_counter()
    with opened(store) as st:
        dev = dev_split_of(st, dev_split)
        if select_on != "train" and not dev:
            raise ConfigError(f"selection on {select_on} needs a dev split; store {st.path} has none")
        splits = [train_split] + ([dev] if dev else []) + list(eval_splits)
        st.rows(splits)  # every split exists (one line naming the missing ones)
        if plots:  # the split names prefix the plots' file names: one distinct name each
            file_names(plots, [s for s in splits if s != train_split], "_")
        meta = model_meta(st, refs, target)
        data = load_splits(st, refs, splits, target)
        if kind == "fusion":
            for k, v in fusion_config(st, data[train_split], image, text, fusion).items():
                config.setdefault(k, v)
        store_path = st.path
    names = meta["label_names"]
    clean = read_clean_ids(clean_ids, list(data)) if clean_ids else None
    with epoch_progress(progress):
        res = run_experiment(kind, config, data, train_split, dev, names, seed=seed, n_seeds=n_seeds,
                             ensemble=ensemble, tune_metric=tune_metric, clean=clean, n_boot=n_boot,
                             select_on=select_on)
    with opened(store) as st:  # every split selection did not see (labelled or not) against train
        shifts, shift_notes = against_train(st, refs, [s for s in st.split_names() if s not in res.in_sample],
                                            train_split, seed)
    seconds = time.perf_counter() - start
    written = []
    if plots:
        for s, f in data.items():
            ok = labeled(f)
            if s != train_split and ok.any():
                X = f.X[ok]
                written += plot_all(plots, f.y[ok], res.model.positive_proba(X), names, res.model.thresholds_,
                                    prefix=f"{s}_", split=s, features=", ".join(meta["feature_sets"]),
                                    pred=res.model.predict(X) if res.model.multilabel_ else None)
    model_params, chosen = fitted_summary(res.model)
    record = new_record(meta, command="train-head", head=kind, config={**model_params, **chosen},
                        splits={"train": train_split, "dev": dev, "eval": list(eval_splits)}, select_on=select_on,
                        in_sample=res.in_sample, baselines=res.baselines, seed=seed, seeds=n_seeds,
                        ensemble=bool(ensemble and n_seeds > 1),
                        thresholds=[float(t) for t in res.model.thresholds_], metrics=res.metrics,
                        seeds_summary=res.seeds, shift=[r.to_json() for r in shifts], shift_notes=shift_notes,
                        duration_s=round(seconds, 3),
                        model=str(Path(out).resolve()) if out else None)
    if out:
        save_model(out, res.model, {**meta, "run_id": record["run_id"], "train_split": train_split, "dev_split": dev,
                                    "in_sample": list(res.in_sample)})
    path = None
    if log_run:
        path = runs_path(store_path)
        append_runs(path, [record])
    return Training(kind, res.model, res.metrics, res.baselines, res.seeds, res.notes, res.in_sample, meta,
                    train_split, dev, select_on, int(len(data[train_split].ids)), int(data[train_split].X.shape[1]),
                    record, seconds, Path(out) if out else None, path, written,
                    [s for s in data if clean and s not in clean], shifts, shift_notes)


# ---------------------------------------------------------------- the span tagger
@dataclass
class SpanTraining:
    """What :func:`train_spans` did: the fitted tagger, and per scored split its span F1 beside the baselines."""

    kind: str
    model: object
    feature_set: str
    train_split: str
    n_memes: int
    n_tokens: int
    dim: int
    seconds: float
    scores: dict  # split → {"span head" | "random spans" | "whole text x seen": span_f1 result}; None: unlabelled
    memes: dict  # split → memes scored
    label_names: list
    out: Path | None = None
    record: dict | None = None  # the run record (runs.jsonl)
    runs_file: Path | None = None


def _span_record(meta, head, kind, scores, train_split, dev, eval_splits, seed, seconds, out) -> dict:
    """The runs.jsonl record of a span run: ``cv`` = the out-of-fold span F1 the threshold was chosen by, each
    scored split's span F1 (per technique by name) and its baselines'."""
    names = meta["label_names"]

    def named(result):
        return {**result, "per_technique": {names[j] if isinstance(j, int) else j: v
                                            for j, v in result["per_technique"].items()}}

    scored = {s: v for s, v in scores.items() if v is not None}
    config = {**head.get_params(), "threshold_": head.threshold_}
    return new_record(meta, command="train-head", head=kind, config=config,
                      splits={"train": train_split, "dev": dev, "eval": list(eval_splits)}, select_on="train",
                      in_sample=[train_split], seed=seed, seeds=1, ensemble=False, thresholds=[head.threshold_],
                      metrics={"cv": {"f1": head.cv_[head.threshold_]},
                               **{s: named(v["span head"]) for s, v in scored.items()}},
                      baselines={s: {b: {k: x for k, x in r.items() if k != "per_technique"}
                                     for b, r in v.items() if b != "span head"} for s, v in scored.items()},
                      duration_s=round(seconds, 3), model=str(Path(out).resolve()) if out else None)


@guarded(paths={"store": "store"}, outputs={"out": "model"})
def train_spans(store, kind="span", feature_sets=(), *, train_split="train", dev_split=None, eval_splits=(), seed=0,
                out=None, log_run=True, **params) -> SpanTraining:
    """Fit the span tagger ``kind`` on the per-token arrays of one feature set (``featurize --tokens``): its span
    threshold by CV on ``train_split``; score the dev split (``dev_split``, as :func:`train_head` finds it) and
    ``eval_splits`` beside random spans and the whole text; save the model to ``out``; append the run to
    runs.jsonl beside the store (``log_run``)."""
    names = list(dict.fromkeys(parse_ref(r)[0] for r in feature_sets))
    if len(names) != 1:
        raise ConfigError("the span head takes exactly one feature set with per-token arrays "
                          f"(e.g. st-minilm), got {', '.join(names) or 'none'}", option="feature_sets")
    name = names[0]
    head = create_head(kind, **{**params, "seed": seed})
    if log_run:
        check_output(runs_path(getattr(store, "path", store)), "runs")
    with opened(store) as st:
        dev = dev_split_of(st, dev_split)
        splits = list(dict.fromkeys(([dev] if dev else []) + list(eval_splits)))
        st.rows([train_split] + splits)  # every split exists (one line naming the missing ones)
        labels = list(st.label_names)
        t0 = time.perf_counter()
        docs = load_docs(st, name, train_split)
        head.fit_docs(docs, labels)
        seconds = time.perf_counter() - t0
        seen = {s[2] for g in docs.gold for s in g}
        scores, memes = {}, {}
        for split in splits:
            ev = load_docs(st, name, split)
            known = [i for i, g in enumerate(ev.gold) if g is not None]
            if not known:
                scores[split] = None
                continue
            ev = ev.take(known)
            memes[split] = len(ev)
            scores[split] = {"span head": span_f1(ev.gold, head.predict_spans(ev)),
                             "random spans": span_f1(ev.gold, random_baseline(ev, docs, seed)),
                             "whole text x seen": span_f1(ev.gold, whole_text_baseline(ev, seen))}
        ref = f"{name}:{','.join(TOKEN_ARRAYS)}"
        meta = {"feature_sets": [ref], "store": str(Path(st.path).resolve()),
                "store_checksum": store_checksum(st, [ref]), "dataset_fingerprint": st.dataset_fingerprint,
                "dataset_format": st.dataset_format, "target": SPAN_TARGET, "label_names": labels}
        if out:
            save_model(out, head, {"feature_sets": [ref], "identity": identity(st, [ref]), "target": SPAN_TARGET,
                                   "train_split": train_split, "label_names": labels,
                                   "train_seconds": round(seconds, 3), "dataset_fingerprint": st.dataset_fingerprint,
                                   "dataset_format": st.dataset_format})
        store_path = st.path
    record = _span_record(meta, head, kind, scores, train_split, dev, eval_splits, seed, seconds, out)
    path = None
    if log_run:
        path = runs_path(store_path)
        append_runs(path, [record])
    return SpanTraining(kind, head, name, train_split, len(docs), sum(len(x) for x in docs.X), docs.X[0].shape[1],
                        seconds, scores, memes, labels, Path(out) if out else None, record, path)


@dataclass
class SpanPrediction:
    """What :func:`predict` wrote for a span model: the task's JSON, and the span F1 when the split is labelled."""

    path: Path
    split: str
    rows: list  # [{id, text, labels: [{start, end, technique, text_fragment}]}]
    n_spans: int
    metrics: dict | None  # span_f1 of the labelled memes (None: none, or other labels than the model's)
    n_labelled: int
    notes: list = field(default_factory=list)


def _predict_spans(model, meta, model_path, st, split, out, allow) -> SpanPrediction:
    """The task's JSON ``[{id, text, labels: [{start, end, technique, text_fragment}]}]`` for every meme of ``split``
    (atomically)."""
    (ref,) = meta["feature_sets"]
    match = check_match(st, model_path, [ref], meta["identity"], meta.get("dataset_fingerprint"), meta["label_names"],
                        list(st.label_names), **allow)
    docs = load_docs(st, parse_ref(ref)[0], split)
    pred = model.predict_spans(docs)
    names = meta["label_names"]
    rows = [{"id": str(i), "text": text,
             "labels": [{"start": s, "end": e, "technique": names[j], "text_fragment": text[s:e]} for s, e, j in p]}
            for i, text, p in zip(docs.ids, docs.texts, pred)]
    with atomic_write(out, "w", encoding="utf-8") as f:
        json.dump(rows, f, ensure_ascii=False, indent=1)
    known = [i for i, g in enumerate(docs.gold) if g is not None and match.same_labels]
    metrics = span_f1([docs.gold[i] for i in known], [pred[i] for i in known]) if known else None
    return SpanPrediction(Path(out), split, rows, sum(len(p) for p in pred), metrics, len(known), match.notes)


# ---------------------------------------------------------------- predict
@dataclass
class Prediction:
    """What :func:`predict` wrote: the file, its format, and the scores when the split is labelled."""

    path: Path
    fmt: str
    split: str
    ids: object
    proba: object  # positive_proba: (n,) or (n, K)
    pred: object  # 0/1 decisions
    thresholds: object
    label_names: list
    same_dataset: bool  # False: the store holds another dataset (allowed by allow_other_dataset)
    metrics: dict | None  # None: the split is unlabelled, or labelled otherwise than the model predicts
    unlabeled: bool
    formula_ids: list = field(default_factory=list)  # ids written verbatim that a spreadsheet would run
    notes: list = field(default_factory=list)  # what the caller allowed, what an older model file lacks

    @property
    def positives(self) -> int:
        return int(self.pred.sum()) if self.pred.ndim == 1 else int(self.pred.any(1).sum())


@guarded(paths={"model": "model_path", "store": "store"}, outputs={"out": "file"})
def predict(model_path, store, split, out, fmt=None, *, allow_other_dataset=False,
            allow_other_features=False) -> Prediction | SpanPrediction:
    """Predict every meme of ``split`` with the saved model (read once) and write ``out``: in ``fmt`` (default: the
    competition format of the dataset the model was trained on, else the generic CSV), or for a span model the
    task's span JSON (:class:`SpanPrediction`).

    The store must hold the model's features (same encoder, weights, preprocessing and shapes), dataset and label
    names (:func:`~memeprobe.heads._matching.check_match`); ``allow_other_dataset`` / ``allow_other_features``
    say the caller means it. Scores are printed only where the store labels what the model predicts."""
    allow = {"allow_other_dataset": allow_other_dataset, "allow_other_features": allow_other_features}
    model, meta = load_model(model_path)
    check_meta(meta, model_path, model)
    with opened(store) as st:
        st.rows([split])  # every split exists (one line naming the missing ones)
        if model.task == "spans":
            return _predict_spans(model, meta, model_path, st, split, out, allow)
        match = match_model(st, model_path, meta, **allow)
        fmt = fmt or _model_format(meta, match, st, model_path)
        f = load_features(st, meta["feature_sets"], [split], meta["target"] if match.same_labels else "label")
    proba = model.positive_proba(f.X)
    pred = model.predict(f.X)
    write_submission(out, fmt, f.ids, proba, pred, meta["label_names"])
    ok = labeled(f) if match.same_labels else np.zeros(len(f.ids), bool)
    metrics = None
    if ok.any():
        metrics = evaluate(f.y[ok], proba[ok], model.thresholds_, meta["label_names"], pred=pred[ok])
    return Prediction(Path(out), fmt, split, f.ids, proba, pred, model.thresholds_, meta["label_names"],
                      match.same_dataset is not False, metrics,
                      match.same_labels and not ok.any() and bool(np.asarray(f.y).size),
                      formula_ids=formula_ids(fmt, f.ids), notes=match.notes)


def _model_format(meta, match, store, model_path) -> str:
    """The submission format of the dataset the model was trained on (never the store's, unless they are one)."""
    if meta.get("dataset_format"):
        return default_format(meta["dataset_format"])
    older = f"{model_path} was saved by an older memeprobe that did not record its dataset's format"
    if match.same_dataset:
        match.notes.append(f"{older}: the store's, as it holds that dataset")
        return default_format(store.dataset_format)
    match.notes.append(f"{older}: writing the generic csv")
    return "csv"


# ---------------------------------------------------------------- sweep
@dataclass
class Sweep:
    """What :func:`sweep` did: every run record, ranked by ``key`` (the official metric out-of-fold, best first)."""

    records: list
    ranked: list
    key: str
    runs_file: Path
    seconds: float
    model: object  # the best config, refitted
    out: Path  # where it was saved
    command: list  # the train-head arguments that reproduce it
    dev_key: str = ""  # the dev split's score of the same metric (untouched: not used to rank)
    metric: str = ""  # what ``key`` is (the dataset's official metric)


@guarded(paths={"store": "store"}, outputs={"out": "model"})
def sweep(store, feature_sets, space, *, search="random", n_configs=100, jobs=2, train_split="train",
          dev_split=None, eval_splits=(), target="auto", tune_metric=None, seed=0, out=None, on_start=None,
          on_progress=None) -> Sweep:
    """Fit every point of ``space`` (``{head: {param: [values]}}``) as ``train-head`` does (selected by CV on
    the training split), rank by the dataset's official metric out-of-fold (``cv``), the dev split scored
    untouched; every config is a run in runs.jsonl. The best config is refitted and saved to ``out`` (default
    ``sweep-best-RUNID.pt`` beside the store), with the ``train-head`` command that reproduces it. ``on_start(n_points, feature_sets)`` is called once the data is
    loaded, ``on_progress(done, total, seconds)`` as runs finish."""
    sw.check_space(space)
    check_output(runs_path(getattr(store, "path", store)), "runs")
    points = sw.configs(space, search, n_configs, seed)
    with opened(store) as st:
        dev = dev_split_of(st, dev_split)
        if not dev:
            raise ConfigError(f"store {st.path} has no dev split; a sweep scores every config on one, untouched "
                              "(give --dev-split SPLIT)")
        splits = [train_split, dev] + list(eval_splits)
        st.rows(splits)  # every split exists (one line naming the missing ones)
        meta = model_meta(st, list(feature_sets), target)
        data = load_splits(st, list(feature_sets), splits, target)
        path, store_path = runs_path(st.path), Path(st.path)
    if on_start:
        on_start(len(points), meta["feature_sets"])
    start, records = time.perf_counter(), []
    for head, config, metrics, base, seconds in sw.run_sweep(points, data, train_split, dev, meta["label_names"],
                                                             seed, tune_metric, jobs):
        point = {k: config[k] for k in space[head] if k in config}
        rec = new_record(meta, command="sweep", head=head, config=config, point=point, seed=seed, seeds=1,
                         ensemble=False, splits={"train": train_split, "dev": dev, "eval": list(eval_splits)},
                         select_on="train", in_sample=[train_split], baselines=base,
                         metrics=metrics, duration_s=round(seconds, 3), model=None)
        append_runs(path, [rec])
        records.append(rec)
        if on_progress:
            on_progress(len(records), len(points), time.perf_counter() - start)
    name, what = official(records[0])
    if name is None:  # a target that does not give the dataset's official score (MAMI's types alone)
        name = what = headline(records[0]["metrics"]["cv"])
    key = f"cv.{name}"
    ranked = best_runs(records, key, len(records))
    best = ranked[0]
    model = sw.fit_config(best["head"], dict(best["point"]), data, train_split, meta["label_names"], seed,
                          tune_metric)
    out = Path(out) if out else store_path.parent / f"sweep-best-{best['run_id']}.pt"
    save_model(out, model, {**meta, "run_id": best["run_id"], "train_split": train_split, "dev_split": dev})
    return Sweep(records, ranked, key, path, time.perf_counter() - start, model, out,
                 sw.train_command(best, store_path, out, tune_metric), f"{dev}.{name}", what)


# ---------------------------------------------------------------- runs
def store_runs(store) -> list[dict]:
    """The runs in runs.jsonl beside ``store`` that were trained on its dataset (stores sharing a folder
    share the file)."""
    with opened(store) as st:
        runs = of_dataset(read_runs(runs_path(st.path)), st.info()["dataset"]["fingerprint"], st.path)
        return [{"dataset_format": st.dataset_format, **r} for r in runs]  # older records did not name it
