"""Click commands of memeprobe.store (registered by memeprobe.cli): ``memeprobe store info|verify|export``."""
from __future__ import annotations

import functools
import json

import click

from memeprobe.data.loading import load_with
from memeprobe.data.cli_options import dataset_options
from memeprobe.errors import ProblemsFound
from memeprobe.outputs import replace_option
from memeprobe.store.export import export_feature_set
from memeprobe.store.importer import ImportOptions, import_features
from memeprobe.store.store import FeatureStore


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
        if "import" in prov:
            files = prov["import"].get("files", [])
            click.echo(f"  imported {prov['import'].get('imported')} from {len(files)} file(s): " + ", ".join(
                f"{f['path']} ({f['size']} bytes, sha256 {f['sha256'][:12]})" for f in files[:3])
                + (f" and {len(files) - 3} more" if len(files) > 3 else ""))
        click.echo("  provenance " + json.dumps(prov, sort_keys=True, ensure_ascii=False))


@store.command("verify")
@store_path
def verify(path):
    """Check shapes, checksums and NaN/inf of done rows, status values, id alignment; exit 1 listing problems."""
    with FeatureStore.open(path) as st:
        problems = st.verify()
        unchecked = {name: k for name in st.feature_sets() if (k := st.unchecked_rows(name))}
    if problems:
        for p in problems:
            click.echo(p)
        click.echo(f"{len(problems)} problem(s) in {path}", err=True)
        raise ProblemsFound(f"{len(problems)} problem(s) in {path}")
    if unchecked:
        click.echo("ok, except that checksums could not be checked for " + ", ".join(
            f"{k} done rows of {name}" for name, k in unchecked.items())
            + " (written before checksums; re-featurize with --overwrite to add them)")
        return
    click.echo("ok")


@store.command("export")
@store_path
@click.option("--feature-set", "-f", "feature_set", required=True, help="Feature set to export.")
@click.option("--to", "out", required=True, type=click.Path(),
              help="Output: FILE.parquet, FILE.npz, or a folder (a Hugging Face datasets save_to_disk folder).")
@click.option("--splits", multiple=True, help="Splits to export (comma-separated or repeated); default all.")
@click.option("--arrays", multiple=True, help="Arrays to export (comma-separated or repeated); default all.")
@click.option("--missing", type=click.Choice(["error", "drop"]), default="error", show_default=True,
              help="Rows not done: refuse (error) or leave out (drop).")
@replace_option
def export(path, feature_set, out, splits, arrays, missing):
    """Write id, split, text, image, label(s) and one column per array of a feature set to Parquet, NPZ or a
    Hugging Face datasets folder (datasets.load_from_disk reads it)."""
    with FeatureStore.open(path) as st:
        n = export_feature_set(st, feature_set, out, _split_list(splits), _split_list(arrays), missing)
    click.echo(f"wrote {n} rows of {feature_set} to {out}")


def _pairs(values: tuple[str, ...], what: str, default_self: bool = False) -> dict[str, str]:
    """``KEY=VALUE`` option values as a dict (``KEY`` alone maps to itself when ``default_self``)."""
    out = {}
    for v in values:
        key, eq, value = v.partition("=")
        if not key.strip() or (not eq and not default_self) or (eq and not value.strip()):
            raise click.BadParameter(f"{v!r}: write {what}", param_hint="--array" if default_self else "--modality")
        out[key.strip()] = value.strip() if eq else key.strip()
    return out


@store.command("import")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True), metavar="SRC...")
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False),
              help="The store to import into (its meme table is the reference for ids).")
@click.option("--feature-set", "-f", "feature_set", required=True, help="Name of the feature set to create.")
@click.option("--data", type=click.Path(exists=True), default=None,
              help="The dataset: creates the store when it does not exist yet (no featurize run needed).")
@dataset_options(allow_empty_text=True)
@click.option("--layout", type=click.Choice(["clip-retrieval", "hf-datasets", "parquet", "npz", "pt", "npy"]),
              default=None, help="Layout of SRC.", show_default="detected")
@click.option("--ids", "ids_file", type=click.Path(exists=True, dir_okay=False),
              help="Ids in row order (.txt one a line, .json list, .npy): needed for .npy sources.")
@click.option("--id-column", default=None, help="Source entry holding the ids.", show_default="the one matching most memes")
@click.option("--id-pattern", default=None, metavar="REGEX",
              help="Cut the id out of each value (group 'id', else group 1), e.g. 'img_(\\d+)'.")
@click.option("--array", "arrays", multiple=True, metavar="KEY[=NAME]",
              help="Import only these source arrays (repeatable), optionally renamed.", show_default="all")
@click.option("--modality", "modalities", multiple=True, metavar="NAME=image|text",
              help="Modality of an array whose name does not tell (repeatable).")
@click.option("--min-match", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="Refuse when a smaller fraction of the store's memes match a source id.")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True,
              help="Storage dtype of float arrays.")
@click.option("--encoder", default=None, help="The encoder that computed the features (kept in the provenance).")
@click.option("--weights", default=None, help="Its weights: name, path or sha256 (kept in the provenance).")
@click.option("--preprocessing", default=None, help="Its preprocessing, free text (kept in the provenance).")
@click.option("--overwrite", is_flag=True, help="Replace a feature set of that name made from other files.")
def import_(sources, store_path, feature_set, data, dataset_options, layout, ids_file, id_column, id_pattern, arrays,
            modalities, min_match, dtype, encoder, weights, preprocessing, overwrite):
    """Import embeddings computed elsewhere (clip-retrieval folder, .npy + --ids, .npz, .pt dict, Parquet,
    datasets folder) into a feature set, matching rows to memes by id."""
    mods = _pairs(modalities, "NAME=image or NAME=text")
    bad = {m for m in mods.values() if m not in ("image", "text")}
    if bad:
        raise click.BadParameter(f"modality {sorted(bad)[0]!r}: choose image or text", param_hint="--modality")
    opts = ImportOptions(layout=layout, ids=ids_file, id_column=id_column, id_pattern=id_pattern,
                         arrays=_pairs(arrays, "KEY or KEY=NAME", default_self=True) or None, modalities=mods,
                         min_match=min_match, dtype=dtype, encoder=encoder, weights=weights,
                         preprocessing=preprocessing, overwrite=overwrite)
    report = import_features(store_path, sources, feature_set, opts,
                             dataset=load_with(data, dataset_options) if data else None)
    for line in report.lines():
        click.echo(line)


COMMANDS = [store]
