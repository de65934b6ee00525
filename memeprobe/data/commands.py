"""Click commands of memeprobe.data (registered by memeprobe.cli): ``data summary``, ``make-sample``.

Other subsystems reuse :func:`dataset_options` + :func:`load_from_options` for their DATA argument.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from memeprobe.data.loading import FORMATS, load_dataset

_GENERIC = ("id_col", "text_col", "image_col", "label_col", "split_col", "label_names", "positive_label")


def dataset_options(allow_empty_text: bool = True):
    """Decorator adding ``--format`` and the generic column mapping (and ``--allow-empty-text``)."""
    def decorate(f):
        opts = [
            click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default=None,
                         help="Dataset format (default: auto-detect)."),
            click.option("--id-col", default=None, help="generic: id column (default: id)."),
            click.option("--text-col", default=None, help="generic: text column (default: text)."),
            click.option("--image-col", default=None, help="generic: image path column (default: image or img)."),
            click.option("--label-col", default=None, help="generic: label column (default: label or labels)."),
            click.option("--split-col", default=None, help="generic: split column (default: the file name)."),
            click.option("--label-names", default=None,
                         help="generic: comma-separated label names (multi-label, in this order)."),
            click.option("--positive-label", default=None, help="generic: the class that is label 1 of two classes."),
        ]
        opts.append(click.option("--allow-outside-root", is_flag=True,
                                 help="Follow image symlinks that lead outside the dataset folder."))
        if allow_empty_text:
            opts.append(click.option("--allow-empty-text", is_flag=True,
                                     help="Keep memes whose text is empty instead of failing."))
        for opt in reversed(opts):
            f = opt(f)
        return f
    return decorate


def load_from_options(path, fmt=None, **opts):
    """``load_dataset`` from the values of :func:`dataset_options` (unset generic options are dropped)."""
    if opts.get("label_names"):
        opts["label_names"] = [n.strip() for n in opts["label_names"].split(",") if n.strip()]
    opts = {k: v for k, v in opts.items() if v is not None and not (k in _GENERIC and v in ("", []))}
    return load_dataset(path, format=fmt, **opts)


@click.group("data")
def data_group():
    """Inspect datasets (Hateful Memes, MAMI, SemEval-2021 Task 6, generic JSONL/CSV)."""


@data_group.command("summary")
@click.argument("path", type=click.Path())
@dataset_options(allow_empty_text=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def summary_command(path, as_json, **opts):
    """Per split: memes, labeled, label counts, images found/missing, empty texts, duplicate ids.

    Empty texts and duplicate ids are counted, not refused.
    """
    from memeprobe.data.summary import render, summarize

    ds = load_from_options(path, allow_empty_text=True, allow_duplicate_ids=True, **opts)
    summary = summarize(ds)
    click.echo(json.dumps(summary, indent=2) if as_json else render(summary))


@click.command("make-sample")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--n", default=1000, show_default=True, type=click.IntRange(min=1), help="Number of memes.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same files).")
def make_sample_command(out_dir, n, seed):
    """Write a synthetic Hateful-Memes-format dataset with planted leakage to OUT_DIR."""
    from memeprobe.data.synthetic import make_sample

    truth = make_sample(out_dir, n=n, seed=seed)
    ds = load_dataset(out_dir, format="hateful_memes")
    counts = ", ".join(f"{s} {len(ds.split(s))}" for s in ds.splits())
    click.echo(f"wrote {len(ds.memes)} memes to {out_dir} ({counts})")
    pairs = truth.get("counts") or {}
    if pairs:
        click.echo("planted pairs: " + ", ".join(f"{k} {v}" for k, v in pairs.items() if isinstance(v, int)))
    click.echo(f"ground truth: {Path(out_dir) / 'ground_truth.json'}")


COMMANDS: list = [data_group, make_sample_command]
