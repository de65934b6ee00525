"""Click commands of memeprobe.heads: ``train-head``, ``predict``, ``sweep``, ``runs list|best``.

A thin shell over :mod:`memeprobe.heads.api`: options in, printed tables out. The choices are the light
lists of :mod:`.choices` and :mod:`.kinds` (and the store's targets), so ``--help`` loads no
torch and no sklearn; the API (which does) is imported when a command runs.
"""
from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import click

from memeprobe.errors import ConfigError
from memeprobe.heads._report import gap_line, metrics_table, per_class, span_table, technique_table
from memeprobe.heads.choices import DEFAULT_SPACE, FORMATS, FUSIONS, LOSSES, METRICS, NO_DEV, NORMS, SEARCHES, SELECT_ON
from memeprobe.heads.kinds import HEAD_NAMES
from memeprobe.heads.runs import OFFICIAL_NAME, best_runs, column, metric_value, official, read_runs, table
from memeprobe.heads.validate import check_model_path
from memeprobe.leakage.manifest import report_folders
from memeprobe.outputs import check_output, reading, replace_option
from memeprobe.store import FeatureStore
from memeprobe.store.features import TARGETS, resolve
from memeprobe.threads import threads_option, use


def _check_store(store_path, splits=(), refs=()) -> None:
    """The store opens and holds ``splits`` and the feature references ``refs``, checked with h5py alone: a wrong
    path or name is one line before torch and sklearn load (``api`` checks again, with the rest)."""
    with FeatureStore.open(store_path) as st:
        st.rows([s for s in splits if s and s != NO_DEV])
        for ref in refs:
            resolve(st, ref)


def _parse_param(values) -> dict:
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--param {item!r}: write KEY=VALUE, e.g. --param d_model=64")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _hidden(text):
    try:
        return tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        raise ConfigError(f"--hidden {text!r}: give layer sizes like 512 or 512,256") from None


# ---------------------------------------------------------------- train-head
def _head_options(f):
    opts = [
        click.option("--loss", type=click.Choice(LOSSES), help="Loss of neural heads.", show_default="bce"),
        click.option("--focal-gamma", type=float, help="Focal loss gamma.", show_default="2"),
        click.option("--label-smoothing", type=float, help="Label smoothing in [0, 1).", show_default="0"),
        click.option("--hidden", help="Hidden layer sizes, e.g. 512 or 512,256.", show_default="256"),
        click.option("--dropout", type=float, help="Dropout.", show_default="0.2"),
        click.option("--epochs", type=int, help="Maximum epochs.", show_default="30"),
        click.option("--lr", type=float, help="AdamW learning rate.", show_default="1e-3"),
        click.option("--weight-decay", type=float, help="AdamW weight decay.", show_default="1e-2"),
        click.option("--batch-size", type=int, help="Mini-batch size.", show_default="256"),
        click.option("--patience", type=int, help="Early-stopping patience in epochs on the dev score; 0 = off.", show_default="5"),
        click.option("--proj-dim", type=int, help="Fusion projection size.", show_default="256 align, 64 cross"),
        click.option("--class-weight", type=click.Choice(["none", "balanced"]), help="Weight positives by n_neg/n_pos."),
        click.option("--norm", type=click.Choice(NORMS),
                     help="Input normalisation per array.", show_default="logreg l2+standard, mlp standard, fusion l2"),
        click.option("--C", "C", type=float, help="logreg: fixed C.", show_default="chosen by 5-fold CV"),
        click.option("--members", help="ensemble: comma-separated head kinds, e.g. logreg,mlp,retrieval "
                     "(weights fitted on out-of-fold predictions)."),
        click.option("--param", "params", multiple=True, help="Any other head parameter as KEY=VALUE (JSON value)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _config(loss, focal_gamma, label_smoothing, hidden, dropout, epochs, lr, weight_decay, batch_size, patience,
            proj_dim, class_weight, norm, C, members, params) -> dict:
    given = {"loss": loss, "focal_gamma": focal_gamma, "label_smoothing": label_smoothing,
             "hidden": _hidden(hidden) if hidden else None, "dropout": dropout, "epochs": epochs, "lr": lr,
             "weight_decay": weight_decay, "batch_size": batch_size, "patience": patience, "proj_dim": proj_dim,
             "norm": norm, "C": C}
    config = {k: v for k, v in given.items() if v is not None}
    if class_weight:
        config["class_weight"] = None if class_weight == "none" else class_weight
    if members:
        config["members"] = [m.strip() for m in members.split(",") if m.strip()]
    config.update(_parse_param(params))
    return config


@click.command("train-head")
@click.argument("head", type=click.Choice(HEAD_NAMES))
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="Feature store (.h5).")
@click.option("--feature-set", "feature_sets", multiple=True,
              help="Arrays to use: SET, SET:a,b or SET/a (repeatable; default arrays: SET's *_embed).")
@click.option("--image", "image_refs", multiple=True, help="fusion: image-side arrays (e.g. clip-ViT-B-32-openai/image_embed).")
@click.option("--text", "text_refs", multiple=True, help="fusion: text-side arrays (e.g. st-minilm/text_embed).")
@click.option("--fusion", type=click.Choice(FUSIONS), default="align", show_default=True,
              help="Fusion variant.")
@click.option("--train-split", default="train", show_default=True)
@click.option("--dev-split", show_default="dev_seen, dev or validation",
              help="Dev split ('none' = no dev): an untouched estimate unless --select-on uses it.")
@click.option("--select-on", type=click.Choice(SELECT_ON), default="train",
              show_default=True,
              help="Choose C / thresholds from 5-fold CV on train (dev stays untouched), CV on train+dev "
                   "(refit on both), or on dev (the old protocol: dev's score is then in-sample).")
@click.option("--eval-split", "eval_splits", multiple=True, help="Further splits to score (repeatable).")
@click.option("--target", type=click.Choice(TARGETS), default="auto", show_default=True,
              help="label = binary, labels = multi-hot classes, all = binary + classes (MAMI A+B).")
@click.option("--tune-metric", type=click.Choice(METRICS),
              show_default="accuracy binary; MAMI columns two-class macro-F1; else F1, per class shrunk towards "
                           "one global threshold", help="Threshold metric.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--seeds", "n_seeds", type=int, default=1, show_default=True, help="Train this many seeds; report mean ± std.")
@click.option("--ensemble", is_flag=True, help="Average the seeds' probabilities (the saved model is the ensemble).")
@click.option("--clean-ids", type=click.Path(file_okay=False), help="Leakage report folder: also score its leak-free ids.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False), help="Write ROC/PR/calibration/per-class PNGs here.")
@click.option("--bootstrap", "n_boot", type=int, default=1000, show_default=True, help="Bootstrap resamples for the CIs (AUROC, micro/macro/MAMI F1s).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Save the model here (e.g. model.pt).")
@_head_options
@threads_option
@replace_option
def train_head(head, store_path, feature_sets, image_refs, text_refs, fusion, train_split, dev_split, select_on,
               eval_splits, target, tune_metric, seed, n_seeds, ensemble, clean_ids, plots_dir, n_boot, out_path,
               threads, **opts):
    """Train a HEAD (logreg | mlp | fusion | retrieval | ensemble | span) on cached features, select by cross-validation, print metrics
    beside trivial baselines.

    Appends the run to runs.jsonl beside the store. Example:
    memeprobe train-head logreg --store hm.h5 --feature-set st-minilm --out hm.pt
    span: technique spans (SemEval-2021 T6 subtask 2) from per-token features (featurize --tokens); its
    threshold is chosen by CV on the train split, --dev-split and --eval-split are only scored (span runs
    take --param KEY=VALUE for SpanHead parameters; runs.jsonl records their span F1).
    """
    refs = [] if head == "span" else [*feature_sets, *image_refs, *text_refs]  # span reads token arrays
    _check_store(store_path, [train_split, dev_split, *eval_splits], refs)
    if head == "fusion" and (not image_refs or not text_refs):
        raise ConfigError("train-head fusion needs --image ARRAYS and --text ARRAYS (e.g. --image "
                          "pixels/image_embed --text st-minilm/text_embed)")
    if not (feature_sets or image_refs or text_refs):
        raise ConfigError("give at least one --feature-set (e.g. --feature-set st-minilm)")
    use(threads)  # before torch loads: OpenMP reads its settings once
    from memeprobe.heads import api  # lazy: the API loads torch (model files, torch heads)

    t = api.train_head(store_path, head, feature_sets, image=image_refs, text=text_refs, fusion=fusion,
                       train_split=train_split, dev_split=dev_split, select_on=select_on, eval_splits=eval_splits,
                       target=target, tune_metric=tune_metric, seed=seed, n_seeds=n_seeds, ensemble=ensemble,
                       clean_ids=clean_ids, plots=plots_dir, n_boot=n_boot, out=out_path, progress=True,
                       **_config(**opts))
    if isinstance(t, api.SpanTraining):
        return _print_spans(t, out_path)
    click.echo(f"{head}{' ' + fusion if head == 'fusion' else ''} on {', '.join(t.meta['feature_sets'])} "
               f"({t.n_train} {train_split} rows, {t.n_features} features, target {t.meta['target']}"
               f"{', seeds ' + str(n_seeds) if n_seeds > 1 else ''}{', ensemble' if ensemble and n_seeds > 1 else ''})")
    for note in t.notes:
        click.echo(f"note: {note}")
    for s in t.clean_missing:
        click.echo(f"note: --clean-ids has no list for split {s}")
    click.echo(metrics_table(t.metrics, t.seeds, t.baselines, t.in_sample))
    gap = gap_line(t.metrics, train_split)
    if gap:
        click.echo(gap)
    protocol = 'dev' if select_on == 'dev' else 'leave-one-out' if head == 'retrieval' else '5-fold CV'
    click.echo(f"selected on: {' + '.join(t.in_sample)} ({protocol}); untouched: {', '.join(t.untouched) or 'none'}")
    for r in t.shift:
        click.echo(f"shift: {r.split} vs {r.train_split}: domain AUROC {r.auroc:.2f} [{r.ci[0]:.2f}, {r.ci[1]:.2f}] "
                   f"(chance: {r.permutation_mean:.2f}, 95th pct {r.permutation_p95:.2f})")
    for r in t.shift:
        if r.warning():
            click.echo(f"warning: {r.warning()}")
    for note in t.shift_notes:
        click.echo(f"note: {note}")
    if t.meta["target"] != "label":
        dev = t.dev_split
        click.echo(per_class(t.metrics, dev if dev and dev not in t.in_sample else "cv"))
    _, chosen = api.fitted_summary(t.model)
    if chosen:
        click.echo("chosen: " + ", ".join(f"{k.rstrip('_')}={v}" for k, v in chosen.items()))
    if plots_dir:
        click.echo(f"plots: {plots_dir}")
    _saved(out_path)
    click.echo(f"run {t.record['run_id']} appended to {t.runs_file} ({t.seconds:.1f} s)")


def _saved(out_path):
    click.echo(f"model: {out_path}" if out_path else "model: not saved (give --out FILE to keep it for predict)")


def _print_spans(t, out_path):
    """What ``train-head span`` prints: the choice of threshold, then per scored split the span F1 beside the
    baselines and per technique."""
    head = t.model
    click.echo(f"span head on {t.feature_set} ({t.n_memes} {t.train_split} memes, {t.n_tokens} tokens, {t.dim}-d) "
               f"in {t.seconds:.1f} s; threshold {head.threshold_} chosen by {head.folds}-fold CV on {t.train_split} "
               f"(CV span F1 {head.cv_[head.threshold_]:.4f})")
    for split, scores in t.scores.items():
        if scores is None:
            click.echo(f"{split}: unlabelled, not scored")
            continue
        click.echo(f"{split} ({t.memes[split]} memes, {scores['span head']['n_gold']} gold spans):")
        click.echo(span_table(scores))
        click.echo(f"per technique ({split}, span head):")
        click.echo(technique_table(scores["span head"], t.label_names))
    _saved(out_path)
    if t.record:
        click.echo(f"run {t.record['run_id']} appended to {t.runs_file}")


# ---------------------------------------------------------------- predict
@click.command("predict")
@click.argument("model_path", type=click.Path(dir_okay=False))
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="Feature store (.h5).")
@click.option("--split", required=True, help="Split to predict, e.g. test_unseen.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Submission file.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Output format.", show_default="the competition format of the model's dataset, else csv")
@click.option("--allow-other-dataset", is_flag=True,
              help="Predict a store of another dataset or other labels than the model's (e.g. the same encoder's "
                   "features of new memes); the output follows the model's labels.")
@click.option("--allow-other-features", is_flag=True,
              help="Predict from features of another encoder, weights or preprocessing than the model's "
                   "(same array shapes).")
@threads_option
@replace_option
def predict(model_path, store_path, split, out_path, fmt, allow_other_dataset, allow_other_features, threads):
    """Write a competition submission (or, for other datasets, a prediction CSV) for every meme of SPLIT
    with a saved MODEL.

    hateful_memes: CSV id,proba,label; mami: answer.txt TSV without header; semeval2021: JSON list of
    {"id", "labels"}; csv (the default for datasets without a competition format): id,label,proba_<class>...
    with label the predicted class name. The store must hold the very features, dataset and labels the model
    was trained on, unless --allow-other-dataset / --allow-other-features say otherwise.
    """
    check_model_path(model_path)
    _check_store(store_path, [split])
    use(threads)
    from memeprobe.heads import api  # lazy: the API loads torch (model files, torch heads)

    p = api.predict(model_path, store_path, split, out_path, fmt, allow_other_dataset=allow_other_dataset,
                    allow_other_features=allow_other_features)
    if isinstance(p, api.SpanPrediction):
        return _print_span_prediction(p, out_path)
    click.echo(f"{out_path}: {len(p.ids)} {split} memes ({p.fmt} format), {p.positives} predicted positive")
    if p.formula_ids:
        click.echo(f"note: {len(p.formula_ids)} id(s) (e.g. {p.formula_ids[0]!r}) start with = + - @, tab or CR: "
                   f"a spreadsheet would run them as formulas; the {p.fmt} format keeps exact ids for the scorer, "
                   "so open the file as text", err=True)
    for note in p.notes:
        click.echo(f"note: {note}")
    if p.metrics is not None:
        click.echo(metrics_table({split: p.metrics}))
    elif p.unlabeled:
        click.echo(f"{split} is unlabeled: no metrics")


def _print_span_prediction(p, out_path):
    for note in p.notes:
        click.echo(f"note: {note}")
    click.echo(f"{out_path}: {len(p.rows)} {p.split} memes, {p.n_spans} spans")
    if p.metrics is not None:
        m = p.metrics
        click.echo(f"{p.split} span F1 {m['f1']:.4f} (precision {m['precision']:.4f}, recall {m['recall']:.4f}, "
                   f"{p.n_labelled} labelled memes)")


# ---------------------------------------------------------------- sweep
@click.command("sweep")
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="Feature store (.h5).")
@click.option("--feature-set", "feature_sets", multiple=True, required=True, help="Arrays: SET, SET:a,b or SET/a (repeatable).")
@click.option("--heads", default="logreg,mlp", show_default=True, help="Comma-separated heads of the default space.")
@click.option("--space", "space_path", type=click.Path(dir_okay=False), help='JSON search space {"mlp": {"dropout": [0.1, 0.5]}}.')
@click.option("--search", type=click.Choice(SEARCHES), default="random", show_default=True)
@click.option("--n-configs", type=int, default=100, show_default=True, help="Configs to draw (random) or cap (grid).")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Worker processes (one thread each).",
              show_default="the cores other processes leave free")
@click.option("--train-split", default="train", show_default=True)
@click.option("--dev-split", help="Dev split.", show_default="dev_seen, dev or validation")
@click.option("--eval-split", "eval_splits", multiple=True, help="Further splits to score (repeatable).")
@click.option("--target", type=click.Choice(TARGETS), default="auto", show_default=True)
@click.option("--tune-metric", type=click.Choice(METRICS))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--top", type=int, default=10, show_default=True, help="Print the best N runs.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Save the best config's model here.", show_default="sweep-best-RUNID.pt beside the store")
@replace_option
def sweep(store_path, feature_sets, heads, space_path, search, n_configs, jobs, train_split, dev_split, eval_splits,
          target, tune_metric, seed, top, out_path):
    """Search head hyper-parameters on cached features; every config is a run in runs.jsonl.

    Each config is selected as train-head selects (5-fold CV on the training split); configs are ranked by the
    dataset's official metric out-of-fold, and the dev split's score is printed untouched."""
    _check_store(store_path, [train_split, dev_split, *eval_splits], feature_sets)
    jobs = jobs or use().jobs  # before torch loads: OpenMP reads its settings once
    from memeprobe.heads import api, sweep as sw  # lazy: they load torch and sklearn (the heads)

    if space_path:
        space = sw.load_space(space_path)
    else:
        wanted = [h.strip() for h in heads.split(",") if h.strip()]
        unknown = [h for h in wanted if h not in DEFAULT_SPACE]
        if unknown:
            raise ConfigError(f"--heads: no default space for {', '.join(unknown)} "
                              f"(have: {', '.join(DEFAULT_SPACE)}); use --space FILE.json")
        space = {h: DEFAULT_SPACE[h] for h in wanted}

    def start(n_points, refs):
        click.echo(f"sweep: {n_points} configs ({search}) on {', '.join(refs)}, {jobs} jobs")

    def progress(done, total, seconds):
        if done % 10 == 0 or done == total:
            click.echo(f"  {done}/{total} done ({seconds:.0f} s)")

    with reading({"search space": space_path}):
        s = api.sweep(store_path, feature_sets, space, search=search, n_configs=n_configs, jobs=jobs,
                      train_split=train_split, dev_split=dev_split, eval_splits=eval_splits, target=target,
                      tune_metric=tune_metric, seed=seed, out=out_path, on_start=start, on_progress=progress)
    click.echo(f"{len(s.records)} runs appended to {s.runs_file} in {s.seconds:.1f} s; top {top} by {s.metric} "
               f"out-of-fold on {train_split} ({s.key}, the score train-head selects by); "
               f"{s.dev_key.split('.')[0]} untouched:")
    click.echo(table(s.ranked[:top], [s.key, s.dev_key]))
    best = s.ranked[0]
    click.echo("best: " + json.dumps({"run": best["run_id"], "head": best["head"], "point": best["point"]}, default=str))
    click.echo(f"model: {s.out} (the best config refitted)")
    click.echo("reproduce it with: " + shlex.join(s.command))


# ---------------------------------------------------------------- runs
def _records(store_path, runs_file):
    if runs_file:
        return read_runs(Path(runs_file))
    if store_path:
        from memeprobe.heads import api  # lazy: the API loads torch (model files, torch heads)

        return api.store_runs(store_path)
    raise ConfigError("give --store S (reads the runs of its dataset in runs.jsonl beside it) or --runs FILE")


@click.group("runs")
def runs():
    """The runs table (runs.jsonl beside the store): list it or pick the best runs."""


@runs.command("list")
@click.option("--store", "store_path", type=click.Path(dir_okay=False),
              help="Store: the runs of its dataset in runs.jsonl beside it.")
@click.option("--runs", "runs_file", type=click.Path(dir_okay=False), help="A runs.jsonl file (every run in it).")
@click.option("--metric", "metrics", multiple=True, help="Metric columns, e.g. dev_seen.auroc or cv.official.",
              show_default="the official metric out-of-fold (cv) and on the dev split")
@click.option("--last", type=int, help="Only the last N runs.")
def runs_list(store_path, runs_file, metrics, last):
    """Print every run as a table."""
    records = _records(store_path, runs_file)
    if last:
        records = records[-last:]
    click.echo(table(records, list(metrics) or _default_keys(records)))


@runs.command("best")
@click.option("--store", "store_path", type=click.Path(dir_okay=False),
              help="Store: the runs of its dataset in runs.jsonl beside it.")
@click.option("--runs", "runs_file", type=click.Path(dir_okay=False), help="A runs.jsonl file (every run in it).")
@click.option("--metric", help="Ranking metric SPLIT.NAME, e.g. dev_seen.auroc (SPLIT.official: each run's "
              "dataset's official metric).",
              show_default="cv.official: the dataset's official metric (HM AUROC, MAMI task-A macro-F1, SemEval "
                           "micro-F1), out-of-fold")
@click.option("--top", type=int, default=5, show_default=True)
def runs_best(store_path, runs_file, metric, top):
    """Print the best runs by a metric (by default the dataset's official metric, out-of-fold as train-head
    selects, with the dev split's score beside it untouched), then the best run's config."""
    records = _records(store_path, runs_file)
    keys = [metric] if metric else _default_keys(records)
    if not metric:  # one official metric: the runs scored by another (e.g. MAMI task B) are not comparable
        _, what = official(records[-1])
        same = [r for r in records if official(r)[1] == what]
        ranked = [r for r in same if not math.isnan(metric_value(r, keys[0]))]
        click.echo(f"ranked by {what}, out-of-fold on the training split ({column(same, keys[0])}); "
                   + (f"{keys[1].split('.')[0]} shown untouched" if len(keys) > 1 else "no dev split scored"))
        if len(ranked) < len(records):
            click.echo(f"note: {len(records) - len(ranked)} of {len(records)} runs left out (scored by another "
                       f"metric, or selected on dev so without an out-of-fold score); --metric SPLIT.NAME ranks them")
        records = same
    best = best_runs(records, keys[0], top)
    click.echo(table(best, keys))
    click.echo("best: " + json.dumps({"run": best[0]["run_id"], "head": best[0]["head"], "config": best[0]["config"],
                                      "model": best[0].get("model")}, default=str))


def _default_keys(records) -> list[str]:
    """``cv.official`` and the last run's dev split's official metric (when a run scored one)."""
    if not records:
        raise ConfigError("the runs table has no runs; train a head with `memeprobe train-head` first")
    keys = [f"cv.{OFFICIAL_NAME}"]
    for r in reversed(records):
        dev = r.get("splits", {}).get("dev")
        if dev and dev in r.get("metrics", {}):
            return keys + [f"{dev}.{OFFICIAL_NAME}"]
    return keys


# ---------------------------------------------------------------- explain
@click.command("explain")
@click.argument("model_path", type=click.Path(dir_okay=False))
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="Feature store (.h5).")
@click.option("--split", required=True, help="Split to explain, e.g. dev_seen (or an unlabelled one: test_unseen).")
@click.option("--out", "out_dir", required=True, type=click.Path(),
              help="Folder for explain.html and explain.json (replaced as a whole).")
@click.option("--clean-ids", type=click.Path(file_okay=False),
              help="Leakage report folder: slice the split into leaked and leak-free memes by its clean ids.")
@click.option("--examples", "n_examples", type=click.IntRange(1, 100), default=8, show_default=True,
              help="Memes shown per kind of mistake (or most uncertain memes).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(0), default=1000, show_default=True,
              help="Bootstrap resamples for the AUROC CI.")
@replace_option
def explain(model_path, store_path, split, out_dir, clean_ids, n_examples, n_boot):
    """Write a self-contained error-analysis page of a saved MODEL on SPLIT: per-class scores beside trivial
    baselines, confusion, calibration/ROC/PR curves, the most confident mistakes with their nearest training
    memes, slices (leaked vs leak-free, image, text length); on an unlabelled split, the predictions against the
    training prior and the most uncertain memes.

    Example: memeprobe explain hm.pt --store hm.h5 --split dev_seen --out hm_explain
    """
    check_model_path(model_path)
    with reading({"model": model_path, "store": store_path},
                 {"clean-ids folder": report_folders(clean_ids) if clean_ids else None}):
        check_output(out_dir, "explain")
    _check_store(store_path, [split])
    from memeprobe.heads.explain import explain as run  # lazy: it loads torch (model files) and sklearn

    e = run(model_path, store_path, split, out_dir, clean_ids=clean_ids, n_examples=n_examples, n_boot=n_boot)
    for note in e.notes:
        click.echo(f"note: {note}")
    click.echo(f"{e.page}: {e.n} {split} memes ({e.labelled} labelled) in {e.seconds:.1f} s")
    click.echo(f"tuned on: {', '.join(e.tuned_on)}; {split} is "
               f"{'IN-SAMPLE: its scores are not an estimate' if e.in_sample else 'untouched'}")
    if e.headline:
        name, value = e.headline
        click.echo(f"{split} {name} {value:.4f}" + (" (in-sample)" if e.in_sample else "")
                   + " (trivial baselines beside it on the page)")


COMMANDS = [train_head, predict, sweep, runs, explain]
