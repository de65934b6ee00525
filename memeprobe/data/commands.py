"""Click commands of memeprobe.data (registered by memeprobe.cli): ``data summary``, ``make-sample``.

Every command that reads a dataset takes its options from :func:`memeprobe.data.cli_options.dataset_options`.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from memeprobe.data.loading import load_dataset, load_with
from memeprobe.data.cli_options import dataset_options


@click.group("data")
def data_group():
    """Inspect datasets (Hateful Memes, MAMI, SemEval-2021 Task 6, generic JSONL/CSV)."""


@data_group.command("summary")
@click.argument("data", type=click.Path())
@dataset_options(allow_empty_text=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def summary_command(data, as_json, dataset_options):
    """Per split: memes, labeled, label counts, images found/missing, empty texts, duplicate ids.

    Empty texts and duplicate ids are counted, not refused.
    """
    from memeprobe.data.summary import render, summarize

    ds = load_with(data, dataclasses.replace(dataset_options, allow_empty_text=True, allow_duplicate_ids=True))
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
