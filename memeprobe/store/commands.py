"""Click commands of memeprobe.store (registered by memeprobe.cli): ``memeprobe store info|verify|export``."""
from __future__ import annotations

import json
import sys

import functools

import click

from memeprobe.outputs import replace_option


def store_path(command):
    """The store as ``PATH`` or ``--store PATH`` (as the other commands name it); the command gets ``path``."""
    @click.argument("path", required=False, type=click.Path(dir_okay=False))
    @click.option("--store", "store_opt", type=click.Path(dir_okay=False), metavar="PATH",
                  help="The store (instead of the PATH argument).")
    @functools.wraps(command)
    def wrapped(path, store_opt, **kwargs):
        if path and store_opt and path != store_opt:
            raise click.UsageError(f"two stores given: {path} and --store {store_opt}; give one")
        if not (path or store_opt):
            raise click.UsageError("no store given: pass PATH or --store PATH")
        return command(path=path or store_opt, **kwargs)
    return wrapped


def _split_list(values: tuple[str, ...]) -> list[str] | None:
    """Repeated and/or comma-separated option values as one list; None when none were given."""
    items = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return items or None


@click.group("store")
def store():
    """Inspect, check and export an HDF5 feature store."""


@store.command("info")
@store_path
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def info(path, as_json):
    """Memes per split, feature sets (arrays, done/failed/todo per modality), provenance, file size."""
    from memeprobe.store import FeatureStore

    with FeatureStore.open(path) as st:
        data = st.info()
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    d = data["dataset"]
    click.echo(f"{data['path']}  ({data['file_size'] / 2**20:.1f} MiB, schema {data['schema_version']}, "
               f"memeprobe {data['memeprobe_version']}, created {data['created']})")
    click.echo(f"dataset  {d['format']} at {d['root']}  fingerprint {d['fingerprint'][:12]}  {d['n']} memes")
    if d["binary_name"] or d["label_names"]:
        click.echo(f"labels   {d['binary_name'] or '-'}" + (f"; {', '.join(d['label_names'])}" if d["label_names"] else ""))
    for name, s in data["splits"].items():
        click.echo(f"  {name:<14} {s['n']:>7} memes  {s['labeled']:>7} labeled")
    if not data["feature_sets"]:
        click.echo("feature sets: none")
    for name, fs in data["feature_sets"].items():
        prov = fs["provenance"]
        click.echo(f"feature set {name}  encoder={prov.get('encoder')}  created {prov.get('created')}")
        for a, spec in fs["arrays"].items():
            click.echo(f"  {a:<16} {spec['modality']:<6} {spec['dtype']:<8} {tuple(spec['shape'])}")
        for mod, counts in fs["status"].items():
            click.echo(f"  status {mod:<6} done {counts['done']}  failed {counts['failed']}  todo {counts['todo']}")
        click.echo("  provenance " + json.dumps(prov, sort_keys=True, ensure_ascii=False))


@store.command("verify")
@store_path
def verify(path):
    """Check shapes, checksums and NaN/inf of done rows, status values, id alignment; exit 1 listing problems."""
    from memeprobe.store import FeatureStore

    with FeatureStore.open(path) as st:
        problems = st.verify()
        unchecked = {name: k for name in st.feature_sets() if (k := st.unchecked_rows(name))}
    if problems:
        for p in problems:
            click.echo(p)
        click.echo(f"{len(problems)} problem(s) in {path}", err=True)
        sys.exit(1)
    if unchecked:
        click.echo("ok, except that checksums could not be checked for " + ", ".join(
            f"{k} done rows of {name}" for name, k in unchecked.items())
            + " (written before checksums; re-featurize with --overwrite to add them)")
        return
    click.echo("ok")


@store.command("export")
@store_path
@click.option("--feature-set", "-f", "feature_set", required=True, help="Feature set to export.")
@click.option("--to", "out", required=True, type=click.Path(dir_okay=False), help="Output file: *.parquet or *.npz.")
@click.option("--splits", multiple=True, help="Splits to export (comma-separated or repeated); default all.")
@click.option("--arrays", multiple=True, help="Arrays to export (comma-separated or repeated); default all.")
@click.option("--missing", type=click.Choice(["error", "drop"]), default="error", show_default=True,
              help="Rows not done: refuse (error) or leave out (drop).")
@replace_option
def export(path, feature_set, out, splits, arrays, missing):
    """Write id, split, text, image, label(s) and one column per array of a feature set to Parquet or NPZ."""
    from memeprobe.store import FeatureStore
    from memeprobe.store.export import export_feature_set

    with FeatureStore.open(path) as st:
        n = export_feature_set(st, feature_set, out, _split_list(splits), _split_list(arrays), missing)
    click.echo(f"wrote {n} rows of {feature_set} to {out}")


COMMANDS = [store]
