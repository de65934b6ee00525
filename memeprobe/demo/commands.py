"""Click commands of memeprobe.demo (registered by memeprobe.cli): ``make-sample`` and ``demo``, the whole
pipeline, offline, on a synthetic sample.

Each demo stage is the real CLI command run in-process (the root command of the running click context), so
the demo shows exactly what a user types.
"""
from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from memeprobe.data.loading import load_dataset
from memeprobe.demo.synthetic import make_sample
from memeprobe.errors import ConfigError
from memeprobe.heads.runs import read_runs, runs_path

TEXT, IMAGE = "st-minilm/text_embed", "timm-tf_efficientnet_lite0-packaged/image_embed"
# (row label, train-head arguments): unimodal heads, then heads that see both modalities
HEADS = [
    ("text only (logreg)", ["logreg", "--feature-set", TEXT]),
    ("image only (logreg)", ["logreg", "--feature-set", IMAGE]),
    ("text+image (logreg, concat)", ["logreg", "--feature-set", TEXT, "--feature-set", IMAGE]),
    ("text+image (MLP, concat)", ["mlp", "--feature-set", TEXT, "--feature-set", IMAGE]),
    ("text+image (fusion, align)", ["fusion", "--fusion", "align", "--text", TEXT, "--image", IMAGE]),
]


@click.command("make-sample")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--n", default=1000, show_default=True, type=click.IntRange(min=1), help="Number of memes.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same files).")
def make_sample_command(out_dir, n, seed):
    """Write a synthetic Hateful-Memes-format dataset with planted leakage to OUT_DIR."""
    truth = make_sample(out_dir, n=n, seed=seed)
    ds = load_dataset(out_dir, format="hateful_memes")
    counts = ", ".join(f"{s} {len(ds.split(s))}" for s in ds.splits())
    click.echo(f"wrote {len(ds.memes)} memes to {out_dir} ({counts})")
    pairs = truth.get("counts") or {}
    if pairs:
        click.echo("planted pairs: " + ", ".join(f"{k} {v}" for k, v in pairs.items() if isinstance(v, int)))
    click.echo(f"ground truth: {Path(out_dir) / 'ground_truth.json'}")


def _stage(title: str, args: list[str]) -> None:
    """Run one ``memeprobe`` command in-process, through the root command of the running CLI (found in the
    click context); a failing stage stops the demo."""
    cli = click.get_current_context().find_root().command
    click.secho(f"\n== {title}", bold=True)
    click.echo("$ memeprobe " + shlex.join(args))
    try:
        cli.main(args=args, prog_name="memeprobe", standalone_mode=False)
    except SystemExit as e:
        if e.code not in (0, None):
            raise ConfigError(f"demo stage '{title}' failed (exit code {e.code}); see the message above") from None


def _last_run(store: Path) -> dict:
    return read_runs(runs_path(store))[-1]


@click.command("demo")
@click.argument("out_dir", default="memeprobe-demo", type=click.Path(file_okay=False, path_type=Path))
@click.option("--n", default=1000, show_default=True, help="Number of synthetic memes.")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic sample and the heads.")
def demo(out_dir: Path, n: int, seed: int):
    """Offline end to end on synthetic memes: sample → featurize → leakage → heads → submission.

    Writes everything under OUT_DIR (default ./memeprobe-demo); re-running reuses what is there.
    """
    start = time.perf_counter()
    data, store, leak = out_dir / "data", out_dir / "features.h5", out_dir / "leakage"
    if not (data / "ground_truth.json").is_file():
        _stage("1/5 make a synthetic sample", ["make-sample", str(data), "--n", str(n), "--seed", str(seed)])
    _stage("2/5 featurize (offline preset: MiniLM text, EfficientNet-Lite0 ImageNet features (not CLIP), "
           "pixel statistics + perceptual hash for the leakage report)",
           ["featurize", "all", str(data), "--store", str(store), "--preset", "offline", "--channels-last"])
    _stage("3/5 leakage report", ["leakage", "report", str(data), "--store", str(store), "--out", str(leak)])

    rows = []
    for i, (label, args) in enumerate(HEADS, 1):
        out = out_dir / f"head{i}.pt"
        _stage(f"4/5 train head {i}/{len(HEADS)}: {label}",
               ["train-head", *args, "--store", str(store), "--clean-ids", str(leak), "--seed", str(seed),
                "--bootstrap", "200", "--out", str(out)])
        metrics = _last_run(store)["metrics"]
        rows.append((label, out, metrics.get("dev_seen", {}), metrics.get("dev_seen@clean", {}),
                     metrics.get("cv", {})))

    # chosen by the out-of-fold AUROC on train, so the dev_seen numbers below stay an untouched estimate
    best_label, best_model, *_ = max(rows, key=lambda r: r[4].get("auroc", 0))
    submission = out_dir / "submission_test_unseen.csv"
    _stage(f"5/5 submission with the best head ({best_label})",
           ["predict", str(best_model), "--store", str(store), "--split", "test_unseen", "--out", str(submission)])

    click.secho("\n== results on dev_seen (AUROC; the sample's label needs BOTH modalities)", bold=True)
    click.echo(f"{'head':<30}{'dev AUROC':>11}{'leak-free AUROC':>17}{'leak-free n':>13}{'train CV AUROC':>16}")
    for label, _, dev, clean, cv in rows:
        click.echo(f"{label:<30}{dev.get('auroc', float('nan')):>11.3f}"
                   f"{clean.get('auroc', float('nan')):>17.3f}{clean.get('n', 0):>13}{cv.get('auroc', float('nan')):>16.3f}")
    click.echo("trivial baselines (majority, stratified random): AUROC 0.500; the submission's head was chosen by "
               "train CV AUROC, so dev_seen was not used for any choice")
    click.echo(f"\nleakage report: {leak / 'report.html'}\nsubmission:     {submission}")
    click.echo(f"demo finished in {time.perf_counter() - start:.0f} s\n")
    click.secho("The same on a real dataset (e.g. Hateful Memes):", bold=True)
    click.echo("  memeprobe data summary path/to/hateful_memes\n"
               "  memeprobe featurize all path/to/hateful_memes --store hm.h5 --preset offline   # --preset clip-l14 on a GPU\n"
               "  memeprobe leakage report path/to/hateful_memes --store hm.h5 --out hm_leakage\n"
               "  memeprobe train-head logreg --store hm.h5 --feature-set st-minilm --clean-ids hm_leakage --out hm.pt\n"
               "  memeprobe predict hm.pt --store hm.h5 --split test_unseen --out submission.csv")


COMMANDS: list = [make_sample_command, demo]
