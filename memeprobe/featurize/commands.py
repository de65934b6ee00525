"""Click commands of memeprobe.featurize (registered by memeprobe.cli): ``featurize all|image|text``.

Exit codes (decided in :data:`memeprobe.errors.EXIT_CODES`): 0 = every selected row featurized; 2 = error
(nothing or part done, message says why); 3 = completed with N failures (bad/missing images: rows marked failed
with reasons, listed: :class:`~memeprobe.errors.RowsFailed`); 130 = interrupted after saying what the store kept
(:class:`~memeprobe.errors.Interrupted`).
"""
from __future__ import annotations

from pathlib import Path

import click

from memeprobe.data.cli_options import SuggestChoice, dataset_options
from memeprobe.data.loading import load_with
from memeprobe.errors import Interrupted, RowsFailed
from memeprobe.featurize.batching import parse_batch_size
from memeprobe.featurize.config import RunConfig
from memeprobe.featurize.engines import ENGINES
from memeprobe.featurize.runner import featurize
from memeprobe.featurize.spec import PRESETS, Options, expand, featurizer_help, preset_help
from memeprobe.store import DONE, FeatureStore
from memeprobe.threads import threads_option, use

_SHOW_FAILURES = 20


def _batch_size(ctx, param, value: str):
    try:
        return parse_batch_size(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _run_options(f):
    opts = [
        click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False),
                     help="HDF5 feature store to create or extend (one per dataset)."),
        click.option("--featurizer", "featurizers", multiple=True, metavar="SPEC",
                     help=f"{featurizer_help()} (repeatable)."),
        click.option("--preset", type=SuggestChoice(list(PRESETS), "preset"), default=None,
                     help=f"{preset_help()}."),
        click.option("--splits", default=None, help="Comma-separated splits to featurize.", show_default="all"),
        click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N selected rows."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N]."),
        click.option("--batch-size", default="auto", show_default=True, callback=_batch_size,
                     help="Items per batch; auto = largest that fits on CUDA (halving on OOM), 32/128 on CPU."),
        click.option("--workers", type=click.IntRange(min=0), default=None,
                     help="DataLoader worker processes for decoding/tokenising.",
                     show_default="min(4, CPUs)"),
        threads_option,
        click.option("--downscale", type=click.IntRange(min=1), default=None,
                     help="Resize images to NxN before the encoder (OS-AI setting: 64)."),
        click.option("--regions", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Store image_regions pooled to a GxG grid (+ region_boxes); 0 = none."),
        click.option("--tokens", "--text-tokens", "text_tokens", is_flag=True,
                     help="st:/hf: also store per-token text_tokens + text_mask + text_offsets (char offsets)."),
        click.option("--max-length", type=click.IntRange(min=2), default=None,
                     help="Text token limit.", show_default="the model's own"),
        click.option("--max-pixels", type=click.IntRange(min=1), default=None,
                     help="Refuse images with more pixels (decompression bombs).", show_default="Pillow's 89478485"),
        click.option("--channels-last", is_flag=True, help="channels_last memory format for image models."),
        click.option("--overwrite", is_flag=True, help="Replace a feature set whose provenance differs."),
        click.option("--retry-failed", is_flag=True, help="Try rows marked failed again."),
        click.option("--no-progress", is_flag=True, help="No progress bar."),
        click.option("--engine", type=click.Choice(list(ENGINES)), default="local", show_default=True,
                     help="local = this machine; ray = read and encode on a Ray cluster, write here (extra [ray])."),
        click.option("--ray-address", default=None, metavar="ADDRESS",
                     help="Ray cluster to join (e.g. HEAD_IP:6379 or auto).", show_default="start one with this machine's cores"),
        click.option("--ray-actors", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Ray encoder actors (one model copy each; one GPU each when encoding on CUDA)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _run(modalities, data, store_path, featurizers, preset, splits, limit, device, batch_size, workers, threads,
         downscale, regions, text_tokens, max_length, max_pixels, channels_last, overwrite, retry_failed,
         no_progress, engine, ray_address, ray_actors, dataset_options):
    if threads is not None and engine != "local":
        raise click.UsageError("--threads applies to --engine local; a Ray actor runs on cores / --ray-actors threads")
    specs = expand(featurizers, preset)
    dataset = load_with(data, dataset_options)
    split_list = [s.strip() for s in splits.split(",") if s.strip()] if splits else None
    if split_list:
        unknown = sorted(set(split_list) - set(dataset.splits()))
        if unknown:
            raise click.UsageError(f"unknown split(s) {', '.join(unknown)}; {data} has {', '.join(dataset.splits())}")
    chosen = [m for m in dataset.memes if split_list is None or m.split in split_list][: limit or None]
    missing = sum(1 for m in chosen if m.image is None or not dataset.image_path(m).is_file())
    if chosen and missing == len(chosen) and "image" in modalities:
        if modalities == ("image",):
            raise click.UsageError(f"none of the {len(chosen)} selected memes of {data} has an image file on disk")
        modalities = tuple(m for m in modalities if m != "image")
        click.echo(f"note: none of the {len(chosen)} selected memes has an image file on disk: "
                   "featurizing texts only", err=True)
    elif missing and "image" in modalities:
        click.echo(f"note: {missing} of {len(chosen)} selected memes have no image file on disk", err=True)
    options = Options(downscale=downscale, regions=regions, text_tokens=text_tokens, max_length=max_length,
                      max_pixels=max_pixels)
    if engine == "local":  # Ray sizes its own actors
        workers = use(threads, workers).workers
    cfg = RunConfig(device=device, batch_size=batch_size, workers=workers, splits=split_list, limit=limit,
                    overwrite=overwrite, retry_failed=retry_failed, channels_last=channels_last,
                    progress=not no_progress, engine=engine, ray_address=ray_address, ray_actors=ray_actors)
    try:
        summary = featurize(dataset, store_path, specs, options, modalities, cfg,
                            log=lambda msg: click.echo(msg, err=True))
    except KeyboardInterrupt:
        click.echo(f"interrupted: {_saved(store_path)}; re-run the same command to resume", err=True)
        raise Interrupted(store_path) from None
    for where, what, why in summary.failures[:_SHOW_FAILURES]:
        click.echo(f"failed {where} {what}: {why}", err=True)
    if summary.failed > _SHOW_FAILURES:
        click.echo(f"... and {summary.failed - _SHOW_FAILURES} more failures (see `memeprobe store info {store_path}`)",
                   err=True)
    click.echo(summary.line(store_path))
    if summary.failed:
        click.echo(f"completed with {summary.failed} failures", err=True)
        raise RowsFailed(f"{summary.failed} failures in {store_path}")


def _saved(store_path) -> str:
    """What an interrupted run left in the store: done rows per feature set and modality (all durable)."""
    if not Path(store_path).exists():
        return f"nothing saved ({store_path} was not created yet)"
    with FeatureStore.open(store_path) as st:
        done = {f"{name}/{mod}": int((st.status(name, mod) == DONE).sum()) for name in st.feature_sets()
                for mod in st.modalities(name)}
        n = st.n
    parts = ", ".join(f"{k} {v} of {n}" for k, v in done.items()) or "no feature set yet"
    return f"{sum(done.values())} done rows saved in {store_path} ({parts})"


def _command(name, modalities, doc):
    @click.command(name, help=doc)
    @click.argument("data", type=click.Path(exists=True))
    @dataset_options(allow_empty_text=True)
    @_run_options
    def command(data, **kwargs):
        _run(modalities, data, **kwargs)

    return command


_EPILOG = ("Resumable: rows already done are skipped, a finished job re-runs without model work. "
           "Exit code 0 = all done, 2 = error, 3 = completed with N failures (listed; the rows are marked "
           "failed in the store, --retry-failed tries them again).")


@click.group("featurize")
def featurize_group():
    """Encode memes with frozen encoders into the HDF5 feature store (resumable)."""


featurize_group.add_command(_command("all", ("image", "text"),
                                     "Featurize the images and texts of DATA into --store. " + _EPILOG))
featurize_group.add_command(_command("image", ("image",), "Featurize only the images of DATA. " + _EPILOG))
featurize_group.add_command(_command("text", ("text",), "Featurize only the texts of DATA. " + _EPILOG))

COMMANDS: list = [featurize_group]
