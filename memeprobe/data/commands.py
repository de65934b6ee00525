"""Click commands of memeprobe.data (registered by memeprobe.cli): ``data summary``.

Every command that reads a dataset takes its options from :func:`memeprobe.data.cli_options.dataset_options`.
"""
from __future__ import annotations

import dataclasses
import json

import click

from memeprobe.data.cli_options import dataset_options
from memeprobe.data.loading import load_with
from memeprobe.data.summary import render, summarize


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
    ds = load_with(data, dataclasses.replace(dataset_options, allow_empty_text=True, allow_duplicate_ids=True))
    summary = summarize(ds)
    click.echo(json.dumps(summary, indent=2) if as_json else render(summary))


COMMANDS: list = [data_group]
