"""Click commands of memeprobe.leakage (registered by memeprobe.cli)."""
from __future__ import annotations

import json
import sys
import time
import warnings

import click
from tqdm import tqdm

from memeprobe.data.loading import load_with
from memeprobe.data.cli_options import dataset_options
from memeprobe.leakage.config import LeakageConfig
from memeprobe.outputs import check_output, reading, replace_option
from memeprobe.store import FeatureStore
from memeprobe.threads import threads_option, use

_COS = click.FloatRange(0.0, 1.0, min_open=True)


class Stages:
    """Leakage stages on stderr: a tqdm bar on a terminal, else one plain line per stage; nothing when off."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.t0, self.bar = enabled, time.perf_counter(), None
        if enabled and sys.stderr.isatty():
            self.bar = tqdm(file=sys.stderr, leave=False, bar_format="{desc} [{elapsed}]")

    def __call__(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(f"leakage: {name}", refresh=False)
            self.bar.update(1)
        elif self.enabled:
            click.echo(f"leakage: {name} ({time.perf_counter() - self.t0:.1f} s)", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.group("leakage")
def leakage():
    """Find duplicated texts and images within and across splits (exact hashes, perceptual hashes, FAISS)."""


@leakage.command("report")
@click.argument("data", type=click.Path(exists=True))
@dataset_options(allow_empty_text=True)
@click.option("--store", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Feature store (HDF5) of this dataset: embeddings enable near-duplicate search by cosine.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="leakage_report", show_default=True,
              help="Folder for report.json, pairs.csv, report.html, clean_ids/ and manifest.json (replaced as a whole).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of tables.")
@click.option("--text-threshold", type=_COS, default=None, show_default="chosen from the data",
              help="Min cosine of text embeddings; unset: where the nearest neighbours stop agreeing with token "
                   "Jaccard (the report says how it was chosen).")
@click.option("--image-threshold", type=_COS, default=None, show_default="chosen from the data",
              help="Min cosine of image embeddings; unset: where the nearest neighbours stop agreeing with the "
                   "perceptual hash (the report says how it was chosen).")
@click.option("--phash-distance", type=click.IntRange(0, 64), default=12, show_default=True,
              help="Max Hamming distance (bits of 64) of perceptual hashes.")
@click.option("--jaccard", type=_COS, default=0.7, show_default=True, help="Min token Jaccard of normalised texts.")
@click.option("--text-array", default=None, help="Text embeddings as FEATURE_SET/ARRAY, e.g. st-minilm/text_embed.")
@click.option("--image-array", default=None, help="Image embeddings as FEATURE_SET/ARRAY, e.g. clip-ViT-B-32-openai/image_embed.")
@click.option("--feature-set", "feature_sets", multiple=True,
              help="Only pick embeddings from these feature sets (repeatable).", show_default="any but 'pixels'")
@click.option("--train-split", default="train", show_default=True, help="The split eval splits must not leak from.")
@click.option("--no-images", is_flag=True, help="Skip decoding images (text checks and store embeddings only).")
@click.option("--max-group-pairs", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Member pairs listed in full per set of identical texts/images, and near-duplicate pairs per "
                   "group; beyond, each member is paired with one anchor per split and label, or listed with one "
                   "near duplicate per split and label relation (groups list every member and count every pair).")
@click.option("--no-progress", is_flag=True, help="Do not report stages on stderr.")
@threads_option
@replace_option
def report(data, dataset_options, store, out_dir, as_json, text_threshold, image_threshold, phash_distance, jaccard,
           text_array, image_array, feature_sets, train_split, no_images, max_group_pairs, no_progress, threads):
    """Report duplicates of DATA within and across splits; write DIR/report.{json,html}, pairs.csv, clean_ids/."""
    ds = load_with(data, dataset_options)
    with reading({"store": store, "image folder": ds.image_folders()}, trees={"dataset": data}):
        check_output(out_dir, "report")  # before the analysis: a refused folder costs nothing
    config = LeakageConfig(text_threshold=text_threshold, image_threshold=image_threshold,
                           phash_distance=phash_distance, jaccard=jaccard, train_split=train_split,
                           max_group_pairs=max_group_pairs)
    use(threads)  # before faiss and sklearn load: OpenMP reads its settings once
    # the analysis imports sklearn, pandas and faiss: only once the options and paths are checked
    from memeprobe.leakage.analysis import analyze
    from memeprobe.leakage.report import terminal_table, to_json, write_report  # its pairs module imports pandas

    opened, stages = None, Stages(enabled=not no_progress)
    if store is not None:
        opened = FeatureStore.open(store)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the notes are printed below and kept in the report
            result = analyze(ds, opened, config, text_array=text_array, image_array=image_array,
                             feature_sets=list(feature_sets) or None, check_images=not no_images, progress=stages)
        stages("writing the report")
        paths = write_report(result, ds, out_dir)
    finally:
        stages.close()
        if opened is not None:
            opened.close()
    for note in result.warnings:
        click.echo(f"warning: {note}", err=True)
    if as_json:
        doc = to_json(result, ds)
        summary = {k: doc[k] for k in ("dataset", "sources", "skipped", "summary", "eval", "shift") if k in doc}
        click.echo(json.dumps({**summary, "files": {k: str(v) for k, v in paths.items()}}, indent=1))
        return
    click.echo(terminal_table(result))
    click.echo(f"\n{len(result.pairs)} pairs in {len(result.groups)} groups; detectors: "
               + ", ".join(f"{k} ({v})" for k, v in result.sources.items()))
    click.echo(str(paths["html"]))

COMMANDS: list = [leakage]
