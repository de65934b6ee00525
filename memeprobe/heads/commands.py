"""Click commands of memeprobe.heads: ``train-head``, ``predict``, ``sweep``, ``runs list|best``.

Heavy imports (torch, sklearn) happen inside the commands so ``memeprobe --help`` stays fast.
"""
from __future__ import annotations

import json
import math
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import click

from memeprobe.errors import MemeprobeError

DEV_SPLITS = ("dev_seen", "dev", "validation", "val")
FORMAT_OF_DATASET = {"hateful_memes": "hateful_memes", "mami": "mami", "semeval2021_task6": "semeval2021"}


# ---------------------------------------------------------------- shared helpers
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _dev_split(store, dev_split):
    if dev_split == "none":
        return None
    if dev_split:
        return dev_split
    return next((s for s in DEV_SPLITS if s in store.split_names()), None)


def _check_splits(store, splits):
    missing = [s for s in splits if s not in store.split_names()]
    if missing:
        raise MemeprobeError(f"store {store.path} has no split {', '.join(missing)} (it has: {', '.join(store.split_names())})")


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else (f"{v:.4f}" if isinstance(v, float) else str(v))


BINARY_COLS = ("n", "auroc", "auroc_ci_low", "auroc_ci_high", "acc@0.5", "acc", "f1", "macro_f1", "threshold")
MULTI_COLS = ("n", "accuracy", "micro_f1", "macro_f1", "micro_f1@0.5", "macro_f1@0.5", "mami_a_f1", "mami_b_f1",
              "labels_per_row", "macro_auroc")
ROW_NAMES = {"cv": "cv (out-of-fold)"}


def _metrics_table(metrics: dict, seeds: dict | None = None, baselines: dict | None = None,
                   in_sample=()) -> str:
    """One row per split (in-sample splits marked), each followed by its trivial baselines' rows;
    only the columns the dataset's metrics have."""
    if not metrics:
        return "(no labeled split to score)"
    cols = BINARY_COLS if "auroc" in next(iter(metrics.values())) else MULTI_COLS
    cols = [c for c in cols if any(c in m for m in metrics.values())]
    names = {s: ROW_NAMES.get(s, s + (" (in-sample)" if s in in_sample else "")) for s in metrics}
    width = max(20, *(len(n) + 2 for n in names.values()))
    w = {c: max(14, len(c) + 2) for c in cols}
    lines = ["split".ljust(width) + "".join(c.rjust(w[c]) for c in cols)]
    for split, m in metrics.items():
        lines.append(names[split].ljust(width) + "".join(_fmt(m.get(c)).rjust(w[c]) for c in cols))
        if seeds and split in seeds:
            s = seeds[split]
            lines.append(("  ±std").ljust(width) + "".join(
                (f"{s[c]['std']:.4f}" if c in s and c != "n" else "").rjust(w[c]) for c in cols))
        for name, b in (baselines or {}).get(split, {}).items():
            lines.append(f"  · {name}".ljust(width) + "".join(
                ("" if c == "n" else _fmt(b.get(c))).rjust(w[c]) for c in cols))
    return "\n".join(lines)


def _gap(metrics: dict, train_split: str) -> str | None:
    """The in-sample minus out-of-fold gap of the headline metric (how much in-sample flatters)."""
    from memeprobe.heads.metrics import headline

    if "cv" not in metrics or train_split not in metrics:
        return None
    key = headline(metrics["cv"])
    key = "micro_f1" if key == "macro_f1" and "micro_f1" in metrics["cv"] else key
    a, b = metrics[train_split].get(key), metrics["cv"].get(key)
    return f"{key}: in-sample {train_split} {_fmt(a)} vs cross-validated {_fmt(b)} (gap {_fmt(a - b)})"


def _per_class(metrics: dict, split: str | None) -> str:
    if split not in metrics or "per_class_f1" not in metrics[split]:
        return ""
    m = metrics[split]
    lines = [f"per-class F1 ({split}):"]
    lines += [f"  {f:.4f}  {name}" for name, f in m["per_class_f1"].items()]
    return "\n".join(lines)


def _parse_param(values) -> dict:
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise MemeprobeError(f"--param {item!r}: write KEY=VALUE, e.g. --param d_model=64")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _hidden(text):
    try:
        return tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        raise MemeprobeError(f"--hidden {text!r}: give layer sizes like 512 or 512,256") from None


def _load_data(store, refs, splits, target):
    from memeprobe.heads.features import load_features

    return {s: load_features(store, refs, [s], target) for s in dict.fromkeys(splits)}


def _common_meta(store, refs, target):
    from memeprobe import __version__
    from memeprobe.heads.features import canonical, identity, label_names, resolve_target, store_checksum

    refs = canonical(store, refs)
    return {
        "feature_sets": refs, "identity": identity(store, refs), "store": str(Path(store.path).resolve()),
        "store_checksum": store_checksum(store, refs), "dataset_fingerprint": store.info()["dataset"]["fingerprint"],
        "target": resolve_target(store, target), "label_names": label_names(store, target),
        "memeprobe_version": __version__,
    }


def _record(meta, **fields) -> dict:
    keep = ("feature_sets", "store", "store_checksum", "target", "label_names")
    return {"run_id": uuid.uuid4().hex[:10], "time": _now(), **{k: meta[k] for k in keep}, **fields}


# ---------------------------------------------------------------- train-head
def _head_options(f):
    opts = [
        click.option("--loss", type=click.Choice(["bce", "focal"]), help="Loss of neural heads (default bce)."),
        click.option("--focal-gamma", type=float, help="Focal loss gamma (default 2)."),
        click.option("--label-smoothing", type=float, help="Label smoothing in [0, 1) (default 0)."),
        click.option("--hidden", help="Hidden layer sizes, e.g. 512 or 512,256 (default 256)."),
        click.option("--dropout", type=float, help="Dropout (default 0.2)."),
        click.option("--epochs", type=int, help="Maximum epochs (default 30)."),
        click.option("--lr", type=float, help="AdamW learning rate (default 1e-3)."),
        click.option("--weight-decay", type=float, help="AdamW weight decay (default 1e-2)."),
        click.option("--batch-size", type=int, help="Mini-batch size (default 256)."),
        click.option("--patience", type=int, help="Early-stopping patience in epochs on the dev score (default 5; 0 = off)."),
        click.option("--proj-dim", type=int, help="Fusion projection size (default 256 align, 64 cross)."),
        click.option("--class-weight", type=click.Choice(["none", "balanced"]), help="Weight positives by n_neg/n_pos."),
        click.option("--norm", type=click.Choice(["l2", "standard", "l2+standard", "none"]),
                     help="Input normalisation per array (default: logreg l2+standard, mlp standard, fusion l2)."),
        click.option("--C", "C", type=float, help="logreg: fixed C (default: sweep on dev)."),
        click.option("--members", help="ensemble: comma-separated head kinds, e.g. logreg,mlp,retrieval "
                     "(weights fitted on out-of-fold predictions)."),
        click.option("--param", "params", multiple=True, help="Any other head parameter as KEY=VALUE (JSON value)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _config(head, fusion, loss, focal_gamma, label_smoothing, hidden, dropout, epochs, lr, weight_decay,
            batch_size, patience, proj_dim, class_weight, norm, C, members, params) -> dict:
    given = {"loss": loss, "focal_gamma": focal_gamma, "label_smoothing": label_smoothing,
             "hidden": _hidden(hidden) if hidden else None, "dropout": dropout, "epochs": epochs, "lr": lr,
             "weight_decay": weight_decay, "batch_size": batch_size, "patience": patience, "proj_dim": proj_dim,
             "norm": norm, "C": C}
    config = {k: v for k, v in given.items() if v is not None}
    if class_weight:
        config["class_weight"] = None if class_weight == "none" else class_weight
    if head == "fusion":
        config["fusion"] = fusion
    if members:
        config["members"] = [m.strip() for m in members.split(",") if m.strip()]
    config.update(_parse_param(params))
    return config


@click.command("train-head")
@click.argument("head", type=click.Choice(["logreg", "mlp", "fusion", "retrieval", "ensemble", "span"]))
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="Feature store (.h5).")
@click.option("--feature-set", "feature_sets", multiple=True,
              help="Arrays to use: SET, SET:a,b or SET/a (repeatable; default arrays: SET's *_embed).")
@click.option("--image", "image_refs", multiple=True, help="fusion: image-side arrays (e.g. clip-ViT-B-32-openai/image_embed).")
@click.option("--text", "text_refs", multiple=True, help="fusion: text-side arrays (e.g. st-minilm/text_embed).")
@click.option("--fusion", type=click.Choice(["concat", "late", "align", "cross", "attention"]), default="align",
              show_default=True, help="Fusion variant.")
@click.option("--train-split", default="train", show_default=True)
@click.option("--dev-split", help="Dev split (default: dev_seen, dev or validation; 'none' = no dev): an "
              "untouched estimate unless --select-on uses it.")
@click.option("--select-on", type=click.Choice(["train", "train+dev", "dev"]), default="train", show_default=True,
              help="Choose C / thresholds from 5-fold CV on train (dev stays untouched), CV on train+dev "
                   "(refit on both), or on dev (the old protocol: dev's score is then in-sample).")
@click.option("--eval-split", "eval_splits", multiple=True, help="Further splits to score (repeatable).")
@click.option("--target", type=click.Choice(["auto", "label", "labels", "all"]), default="auto", show_default=True,
              help="label = binary, labels = multi-hot classes, all = binary + classes (MAMI A+B).")
@click.option("--tune-metric", type=click.Choice(["accuracy", "f1", "macro_f1"]),
              help="Threshold metric (default: accuracy binary; MAMI columns two-class macro-F1; else F1, "
                   "per class shrunk towards one global threshold).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--seeds", "n_seeds", type=int, default=1, show_default=True, help="Train this many seeds; report mean ± std.")
@click.option("--ensemble", is_flag=True, help="Average the seeds' probabilities (the saved model is the ensemble).")
@click.option("--clean-ids", type=click.Path(file_okay=False), help="Leakage report folder: also score its leak-free ids.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False), help="Write ROC/PR/calibration/per-class PNGs here.")
@click.option("--bootstrap", "n_boot", type=int, default=1000, show_default=True, help="Bootstrap resamples for the AUROC CI.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Save the model here (e.g. model.pt).")
@_head_options
def train_head(head, store_path, feature_sets, image_refs, text_refs, fusion, train_split, dev_split, select_on,
               eval_splits, target, tune_metric, seed, n_seeds, ensemble, clean_ids, plots_dir, n_boot, out_path, **opts):
    """Train a HEAD (logreg | mlp | fusion | retrieval | ensemble | span) on cached features, select by cross-validation, print metrics
    beside trivial baselines.

    Appends the run to runs.jsonl beside the store. Example:
    memeprobe train-head logreg --store hm.h5 --feature-set st-minilm --out hm.pt
    span: technique spans (SemEval-2021 T6 subtask 2) from per-token features (featurize --tokens); its
    threshold is chosen by CV on the train split, --dev-split and --eval-split are only scored (span runs
    take --param KEY=VALUE for SpanHead parameters and are not appended to runs.jsonl).
    """
    if head == "span":
        return _train_span(store_path, list(feature_sets), train_split, dev_split, eval_splits, seed, out_path,
                           _parse_param(opts.get("params") or ()))
    from memeprobe.heads.experiment import read_clean_ids, run_experiment
    from memeprobe.heads.runs import append_runs, runs_path
    from memeprobe.store import FeatureStore

    if head == "fusion":
        if not image_refs or not text_refs:
            raise MemeprobeError("train-head fusion needs --image ARRAYS and --text ARRAYS (e.g. --image "
                                 "pixels/image_embed --text st-minilm/text_embed)")
        refs = list(image_refs) + list(text_refs)
    else:
        refs = list(feature_sets) + list(image_refs) + list(text_refs)
    if not refs:
        raise MemeprobeError("give at least one --feature-set (e.g. --feature-set st-minilm)")
    config = _config(head, fusion, **opts)
    start = time.perf_counter()
    with FeatureStore.open(store_path) as store:
        dev = _dev_split(store, dev_split)
        if select_on != "train" and not dev:
            raise MemeprobeError(f"--select-on {select_on} needs a dev split; store {store_path} has none "
                                 "(give --dev-split SPLIT)")
        splits = [train_split] + ([dev] if dev else []) + list(eval_splits)
        _check_splits(store, splits)
        meta = _common_meta(store, refs, target)
        data = _load_data(store, refs, splits, target)
        if head == "fusion":
            config["split"] = sum(data[train_split].blocks[:len(_shapes(store, image_refs))])
            if fusion == "attention":
                config.setdefault("image_tokens", _tokens(store, image_refs))
                config.setdefault("text_tokens", _tokens(store, text_refs))
    names = meta["label_names"]
    clean = read_clean_ids(clean_ids, list(data)) if clean_ids else None
    res = run_experiment(head, config, data, train_split, dev, names, seed=seed, n_seeds=n_seeds,
                         ensemble=ensemble, tune_metric=tune_metric, clean=clean, n_boot=n_boot,
                         select_on=select_on)
    duration = time.perf_counter() - start
    train_n = int(len(data[train_split].ids))
    click.echo(f"{head}{' ' + fusion if head == 'fusion' else ''} on {', '.join(meta['feature_sets'])} "
               f"({train_n} {train_split} rows, {data[train_split].X.shape[1]} features, target {meta['target']}"
               f"{', seeds ' + str(n_seeds) if n_seeds > 1 else ''}{', ensemble' if ensemble and n_seeds > 1 else ''})")
    for note in res.notes:
        click.echo(f"note: {note}")
    if clean:
        for s in data:
            if s not in clean:
                click.echo(f"note: --clean-ids has no list for split {s}")
    click.echo(_metrics_table(res.metrics, res.seeds, res.baselines, res.in_sample))
    gap = _gap(res.metrics, train_split)
    if gap:
        click.echo(gap)
    click.echo(f"selected on: {' + '.join(res.in_sample)} ({'dev' if select_on == 'dev' else 'leave-one-out' if head == 'retrieval' else '5-fold CV'}); "
               f"untouched: {', '.join(s for s in res.metrics if s not in res.in_sample and s != 'cv') or 'none'}")
    if meta["target"] != "label":
        click.echo(_per_class(res.metrics, dev if dev and dev not in res.in_sample else "cv"))
    params = res.model.describe() if hasattr(res.model, "describe") else res.model.get_params()
    fitted = {k: getattr(res.model, k) for k in ("C_", "best_epoch_", "k_") if hasattr(res.model, k)}
    if fitted:
        click.echo("chosen: " + ", ".join(f"{k.rstrip('_')}={v}" for k, v in fitted.items()))
    if plots_dir:
        from memeprobe.heads.experiment import labeled
        from memeprobe.heads.plots import plot_all

        for s, f in data.items():
            ok = labeled(f)
            if s != train_split and ok.any():
                plot_all(plots_dir, f.y[ok], res.model.positive_proba(f.X[ok]), names, res.model.thresholds_, prefix=f"{s}_")
        click.echo(f"plots: {plots_dir}")
    record = _record(meta, command="train-head", head=head, config={**params, **{k: v for k, v in fitted.items()}},
                     splits={"train": train_split, "dev": dev, "eval": list(eval_splits)}, select_on=select_on,
                     in_sample=res.in_sample, baselines=res.baselines, seed=seed, seeds=n_seeds,
                     ensemble=bool(ensemble and n_seeds > 1), thresholds=[float(t) for t in res.model.thresholds_],
                     metrics=res.metrics, seeds_summary=res.seeds, duration_s=round(duration, 3),
                     model=str(Path(out_path).resolve()) if out_path else None)
    if out_path:
        res.model.save(out_path, {**meta, "run_id": record["run_id"], "train_split": train_split, "dev_split": dev})
        click.echo(f"model: {out_path}")
    path = runs_path(store_path)
    append_runs(path, [record])
    click.echo(f"run {record['run_id']} appended to {path} ({duration:.1f} s)")


def _train_span(store_path, refs, train_split, dev_split, eval_splits, seed, out_path, params):
    from memeprobe.heads import span
    from memeprobe.store import FeatureStore

    with FeatureStore.open(store_path) as store:
        dev = _dev_split(store, dev_split)
        splits = list(dict.fromkeys(([dev] if dev else []) + list(eval_splits)))
        _check_splits(store, [train_split] + splits)
        span.train(store, refs, train_split, splits, seed, params, out_path, echo=click.echo)


def _shapes(store, refs) -> list[tuple]:
    from memeprobe.heads.features import resolve

    return [store.arrays(n)[a].shape for n, arrays in (resolve(store, r) for r in refs) for a in arrays]


def _tokens(store, refs) -> int:
    """Token count of one fusion side: R for one (R, D) array, 1 for vectors."""
    shapes = _shapes(store, refs)
    if all(len(s) == 1 for s in shapes):
        return 1
    if len(shapes) == 1 and len(shapes[0]) == 2:
        return shapes[0][0]
    raise MemeprobeError(f"attention fusion: give one (tokens, dim) array or only vectors per side, got shapes "
                         f"{', '.join(str(s) for s in shapes)} for {', '.join(refs)}")


# ---------------------------------------------------------------- predict
@click.command("predict")
@click.argument("model_path", type=click.Path(dir_okay=False))
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="Feature store (.h5).")
@click.option("--split", required=True, help="Split to predict, e.g. test_unseen.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Submission file.")
@click.option("--format", "fmt", type=click.Choice(["hateful_memes", "mami", "semeval2021"]),
              help="Submission format (default: from the store's dataset format).")
def predict(model_path, store_path, split, out_path, fmt):
    """Write a competition submission for every meme of SPLIT with a saved MODEL.

    hateful_memes: CSV id,proba,label; mami: answer.txt TSV without header; semeval2021: JSON list of
    {"id", "labels"}. The store must hold the very features the model was trained on.
    """
    import numpy as np

    from memeprobe.heads import span
    from memeprobe.heads.base import load_model
    from memeprobe.heads.experiment import labeled
    from memeprobe.heads.features import load_features
    from memeprobe.heads.metrics import evaluate
    from memeprobe.heads.submission import write_submission
    from memeprobe.heads.validate import check_meta
    from memeprobe.store import FeatureStore

    if span.read_model_file(model_path) is not None:  # a span model writes the task's span JSON
        with FeatureStore.open(store_path) as store:
            _check_splits(store, [split])
            span.predict(model_path, store, split, out_path, echo=click.echo)
        return
    model, meta = load_model(model_path)
    check_meta(meta, model_path)
    with FeatureStore.open(store_path) as store:
        _check_features(store, meta, model_path, store_path)
        _check_splits(store, [split])
        fmt = fmt or FORMAT_OF_DATASET.get(store.info()["dataset"]["format"], "hateful_memes")
        f = load_features(store, meta["feature_sets"], [split], meta["target"])
        same_dataset = store.info()["dataset"]["fingerprint"] == meta["dataset_fingerprint"]
    proba = model.positive_proba(f.X)
    pred = model.predict(f.X)
    write_submission(out_path, fmt, f.ids, proba, pred, meta["label_names"])
    positives = int(pred.sum()) if pred.ndim == 1 else int(pred.any(1).sum())
    click.echo(f"{out_path}: {len(f.ids)} {split} memes ({fmt} format), {positives} predicted positive")
    if not same_dataset:
        click.echo("note: the store holds another dataset than the model was trained on (same features)")
    ok = labeled(f)
    if ok.any():
        click.echo(_metrics_table({split: evaluate(f.y[ok], proba[ok], model.thresholds_, meta["label_names"],
                                                   pred=pred[ok])}))
    elif np.asarray(f.y).size:
        click.echo(f"{split} is unlabeled: no metrics")


def _check_features(store, meta, model_path, store_path):
    from memeprobe.heads.features import identity, resolve

    try:
        for ref in meta["feature_sets"]:
            resolve(store, ref)
        current = identity(store, meta["feature_sets"])
    except MemeprobeError as e:
        raise MemeprobeError(f"{model_path} was trained on features {', '.join(meta['feature_sets'])}, "
                             f"but store {store_path} does not match: {e}") from None
    if current != meta["identity"]:
        diff = [n for n in meta["identity"] if current.get(n) != meta["identity"][n]]
        raise MemeprobeError(
            f"{model_path} was trained on other features than store {store_path} holds: feature set(s) "
            f"{', '.join(diff)} differ in encoder/weights/preprocessing or array shapes "
            f"(model: {json.dumps({n: meta['identity'][n] for n in diff})}; store: "
            f"{json.dumps({n: current.get(n) for n in diff})}); featurize with the same spec or retrain")


# ---------------------------------------------------------------- sweep
@click.command("sweep")
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="Feature store (.h5).")
@click.option("--feature-set", "feature_sets", multiple=True, required=True, help="Arrays: SET, SET:a,b or SET/a (repeatable).")
@click.option("--heads", default="logreg,mlp", show_default=True, help="Comma-separated heads of the default space.")
@click.option("--space", "space_path", type=click.Path(dir_okay=False), help='JSON search space {"mlp": {"dropout": [0.1, 0.5]}}.')
@click.option("--search", type=click.Choice(["grid", "random"]), default="random", show_default=True)
@click.option("--n-configs", type=int, default=100, show_default=True, help="Configs to draw (random) or cap (grid).")
@click.option("--jobs", type=int, default=2, show_default=True, help="Worker processes.")
@click.option("--train-split", default="train", show_default=True)
@click.option("--dev-split", help="Dev split (default: dev_seen, dev or validation).")
@click.option("--eval-split", "eval_splits", multiple=True, help="Further splits to score (repeatable).")
@click.option("--target", type=click.Choice(["auto", "label", "labels", "all"]), default="auto", show_default=True)
@click.option("--tune-metric", type=click.Choice(["accuracy", "f1", "macro_f1"]))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--top", type=int, default=10, show_default=True, help="Print the best N runs.")
def sweep(store_path, feature_sets, heads, space_path, search, n_configs, jobs, train_split, dev_split, eval_splits,
          target, tune_metric, seed, top):
    """Search head hyper-parameters on cached features; every config is a run in runs.jsonl."""
    from memeprobe.heads import sweep as sw
    from memeprobe.heads.runs import append_runs, runs_path, table
    from memeprobe.store import FeatureStore

    if space_path:
        space = sw.load_space(space_path)
    else:
        wanted = [h.strip() for h in heads.split(",") if h.strip()]
        unknown = [h for h in wanted if h not in sw.DEFAULT_SPACE]
        if unknown:
            raise MemeprobeError(f"--heads: no default space for {', '.join(unknown)} "
                                 f"(have: {', '.join(sw.DEFAULT_SPACE)}); use --space FILE.json")
        space = {h: sw.DEFAULT_SPACE[h] for h in wanted}
    points = sw.configs(space, search, n_configs, seed)
    with FeatureStore.open(store_path) as store:
        dev = _dev_split(store, dev_split)
        if not dev:
            raise MemeprobeError(f"store {store_path} has no dev split; a sweep needs --dev-split to rank configs")
        splits = [train_split, dev] + list(eval_splits)
        _check_splits(store, splits)
        meta = _common_meta(store, list(feature_sets), target)
        data = _load_data(store, list(feature_sets), splits, target)
    click.echo(f"sweep: {len(points)} configs ({search}) on {', '.join(meta['feature_sets'])}, {jobs} jobs")
    path = runs_path(store_path)
    start, records = time.perf_counter(), []
    for i, (head, config, metrics, seconds) in enumerate(
            sw.run_sweep(points, data, train_split, dev, meta["label_names"], seed, tune_metric, jobs), 1):
        point = {k: config[k] for k in space[head] if k in config}
        rec = _record(meta, command="sweep", head=head, config=config, point=point, seed=seed, seeds=1,
                      ensemble=False, splits={"train": train_split, "dev": dev, "eval": list(eval_splits)},
                      metrics=metrics, duration_s=round(seconds, 3), model=None)
        append_runs(path, [rec])
        records.append(rec)
        if i % 10 == 0 or i == len(points):
            click.echo(f"  {i}/{len(points)} done ({time.perf_counter() - start:.0f} s)")
    from memeprobe.heads.metrics import headline
    from memeprobe.heads.runs import best_runs

    key = f"{dev}.{headline(records[0]['metrics'][dev])}"
    click.echo(f"{len(records)} runs appended to {path} in {time.perf_counter() - start:.1f} s; top {top} by {key}:")
    best = best_runs(records, key, top)
    click.echo(table(best, [key]))
    click.echo("best: " + json.dumps({"run": best[0]["run_id"], "head": best[0]["head"], "point": best[0]["point"]},
                                     default=str))


# ---------------------------------------------------------------- runs
def _runs_file(store_path, runs_file):
    from memeprobe.heads.runs import runs_path

    if runs_file:
        return Path(runs_file)
    if store_path:
        return runs_path(store_path)
    raise MemeprobeError("give --store S (reads runs.jsonl beside it) or --runs FILE")


@click.group("runs")
def runs():
    """The runs table (runs.jsonl beside the store): list it or pick the best runs."""


@runs.command("list")
@click.option("--store", "store_path", type=click.Path(dir_okay=False), help="Store whose runs.jsonl to read.")
@click.option("--runs", "runs_file", type=click.Path(dir_okay=False), help="A runs.jsonl file.")
@click.option("--metric", "metrics", multiple=True, help="Metric columns, e.g. dev_seen.auroc (default: dev headline).")
@click.option("--last", type=int, help="Only the last N runs.")
def runs_list(store_path, runs_file, metrics, last):
    """Print every run as a table."""
    from memeprobe.heads.runs import read_runs, table

    records = read_runs(_runs_file(store_path, runs_file))
    if last:
        records = records[-last:]
    click.echo(table(records, list(metrics) or _default_keys(records)))


@runs.command("best")
@click.option("--store", "store_path", type=click.Path(dir_okay=False), help="Store whose runs.jsonl to read.")
@click.option("--runs", "runs_file", type=click.Path(dir_okay=False), help="A runs.jsonl file.")
@click.option("--metric", help="Ranking metric SPLIT.NAME, e.g. dev_seen.auroc (default: dev headline).")
@click.option("--top", type=int, default=5, show_default=True)
def runs_best(store_path, runs_file, metric, top):
    """Print the best runs by a metric, then the best run's config."""
    from memeprobe.heads.runs import best_runs, read_runs, table

    records = read_runs(_runs_file(store_path, runs_file))
    key = metric or _default_keys(records)[0]
    best = best_runs(records, key, top)
    click.echo(table(best, [key]))
    click.echo("best: " + json.dumps({"run": best[0]["run_id"], "head": best[0]["head"], "config": best[0]["config"],
                                      "model": best[0].get("model")}, default=str))


def _default_keys(records) -> list[str]:
    from memeprobe.heads.metrics import headline

    for r in reversed(records):
        dev = r.get("splits", {}).get("dev")
        if dev and dev in r.get("metrics", {}):
            return [f"{dev}.{headline(r['metrics'][dev])}"]
    raise MemeprobeError("no run has dev metrics; give --metric SPLIT.NAME")


COMMANDS = [train_head, predict, sweep, runs]
