"""Fit time of the heads on Hateful-Memes-sized cached features, against plain sklearn in the same run.

Synthetic-but-realistic features: 768-d image + 768-d text vectors stored as float16, built from a
shared 64-d latent (so the modalities correlate like CLIP embeddings) plus noise; the label depends
on a linear part and an image×text interaction. Sizes: 8.5k train / 500 dev (HM) and ``--scale``× that.

Rows: logreg with a 7-point C sweep on dev (memeprobe) vs sklearn ``LogisticRegression()`` swept over
the same 7 C; the default protocol's 5-fold CV logreg selection (7 C, out-of-fold AUROC) vs sklearn
``LogisticRegressionCV(Cs=7, cv=5, n_jobs=2)``; the retrieval head's fit; MLP 30 epochs (hidden 256 and 512, no early stopping) vs sklearn
``MLPClassifier(max_iter=30)`` (hidden 100, defaults otherwise) and, at equal FLOPs,
``MLPClassifier((256,), max_iter=30)``; cross fusion 20 epochs at the default proj 64 and at the paper's
256 (timed on ``--cross256-epochs`` epochs and scaled to 20), the opt-in variants at 256 (bf16 autocast,
a rank-16 first layer) and align fusion. ``--sweep N`` also times an N-config logreg+MLP sweep.

Beside every timing, measured in the same run on the same threads: the head's forward + backward FLOPs
(matrix products only, see ``linear_flops``) and achieved GFLOP/s, the *matmul ceiling* (achieved
GFLOP/s of bare float32 torch matmuls of exactly the shapes one training step multiplies, batch 256,
measured right before each row, best over rounds),
and wall / (FLOPs at that ceiling): 1.0x would be a loop with zero overhead. Rows and ceilings run
interleaved for ``--repeats`` rounds and the best round is kept; the load average is printed.
Output: one markdown table per scale.

    python benchmarks/heads_speed.py [--quick] [--repeats 3] [--scale 1 10] [--sweep 100] [--device cpu]

``--busy N`` instead times every ``train-head`` kind as the CLI runs it, quiet and beside N CPU-bound
neighbours, under the thread plan, ``OMP_NUM_THREADS=1`` and the fixed ``--threads CORES`` (see
benchmarks/_busy.py), on real data from ``--data`` (default ../shared/data; featurized into ``--work`` on
the first run): logreg, mlp, retrieval and the ensemble of the three on Hateful Memes MiniLM text features
(8.5k x 384), fusion on SemEval-2021 T6 MiniLM text + pixels images (607 train), span on the SemEval spans'
MiniLM token features (688 train).

    python benchmarks/heads_speed.py --busy 2 [--rounds 1] [--data ../shared/data] [--work /tmp/memeprobe_busy]
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

import _busy  # benchmarks/_busy.py (this script's folder is on sys.path)


def make_features(n, seed=0, d=768, latent=64):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, latent))
    wi, wt = rng.normal(size=(latent, d)) / np.sqrt(latent), rng.normal(size=(latent, d)) / np.sqrt(latent)
    img = (z @ wi + 0.5 * rng.normal(size=(n, d))).astype(np.float16)
    txt = (z @ wt + 0.5 * rng.normal(size=(n, d))).astype(np.float16)
    w = rng.normal(size=latent) / np.sqrt(latent)
    logit = 1.5 * z @ w + 1.5 * z[:, 0] * z[:, 1] + 0.5 * rng.normal(size=n)
    y = (logit > np.quantile(logit, 0.64)).astype(int)  # ~36 % positives, as Hateful Memes train
    return np.hstack([img, txt]).astype(np.float32), y


GEMM_REPEATS = 5


def linear_flops(module, n_rows, input_widths):
    """FLOPs of one forward + backward pass of ``module``'s matrix products over ``n_rows`` rows.

    Each ``nn.Linear`` (in → out) costs 2·n·in·out forward, the same for its weight gradient and, unless
    it reads the raw input (``in_features`` in ``input_widths``: no gradient flows there), the same
    again for the gradient to its input. Element-wise work (GELU, dropout, normalisation, the outer
    product itself, AdamW) is not counted: it is the overhead the ceiling ratio exposes."""
    from torch import nn

    total = 0.0
    for m in module.modules():
        if isinstance(m, nn.Linear):
            passes = 2 if m.in_features in input_widths else 3
            total += passes * 2.0 * n_rows * m.in_features * m.out_features
        elif hasattr(m, "U") and hasattr(m, "V"):  # the factorised cross layer: a @ Uᵀ and b @ Vᵀ
            total += 2 * 3 * 2.0 * n_rows * m.U.shape[0] * m.U.shape[1]
    return total


def head_flops(head, n_train, n_dev):
    """Forward + backward FLOPs of a fitted torch head's training, epochs as run, plus dev forward passes."""
    widths = {head.in_dim_, head.split or -1, head.in_dim_ - (head.split or 0)} if hasattr(head, "split") \
        else {head.in_dim_}
    epochs = len(head.history_)
    train = linear_flops(head.module_, n_train, widths)
    dev = linear_flops(head.module_, n_dev, widths) / 3 if n_dev else 0.0  # forward only (lower bound)
    return epochs * (train + dev)


def sklearn_mlp_flops(model, n_train):
    """The same count for sklearn's MLP: forward + weight gradient, input gradient beyond layer 1."""
    sizes = [c.shape for c in model.coefs_]
    per = sum((2 if i == 0 else 3) * 2.0 * n_train * a * b for i, (a, b) in enumerate(sizes))
    return model.n_iter_ * per


def gemm_ceiling(shapes, threads):
    """Achieved GFLOP/s of bare float32 torch matmuls of ``shapes`` [(m, k, n), ...] on ``threads`` threads
    (best of GEMM_REPEATS): what these cores do on exactly the products a training step needs."""
    import torch

    torch.set_num_threads(threads)
    mats = [(torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)) for m, k, n in shapes]
    flops = sum(2.0 * m * k * n for m, k, n in shapes)

    def step():
        for a, b, c in mats:
            torch.mm(a, b, out=c)

    step()
    best = min(timed(step)[0] for _ in range(GEMM_REPEATS))
    return flops / best / 1e9


def step_shapes(batch, layers):
    """(m, k, n) products of one training step through Linear layers [(in, out, first), ...]."""
    out = []
    for d_in, d_out, first in layers:
        out += [(batch, d_in, d_out), (d_out, batch, d_in)]  # forward; weight gradient
        if not first:
            out.append((batch, d_out, d_in))  # gradient to the layer's input
    return out


def timed(fn):
    """(wall seconds, result, process CPU seconds) of ``fn()``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, out, time.process_time() - cpu


class Row:
    """One table row: ``fit()`` returns a fitted model; ``score(model)`` a dev AUROC; ``flops(model)`` the
    forward + backward FLOPs (None = not counted); ``ceiling`` names the GEMM shape set; ``scale``
    multiplies a timing measured on fewer epochs; ``baseline`` names the row it is compared to."""

    def __init__(self, name, fit, score, flops=None, ceiling=None, baseline=None, scale=1.0):
        self.name, self.fit, self.score, self.flops = name, fit, score, flops
        self.ceiling, self.baseline, self.scale = ceiling, baseline, scale
        self.best = None  # (wall, cpu, auroc, flops)


def rows_for(X, y, Xd, yd, device, cross256_epochs, quick):
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.metrics import roc_auc_score
    from sklearn.neural_network import MLPClassifier

    from memeprobe.heads.factory import head_class

    blocks, n, nd = (768, 768), len(X), len(Xd)
    Cs = np.logspace(-4, 2, 7)

    def auc(p):
        return roc_auc_score(yd, p)

    def sk(m):
        return auc(m.predict_proba(Xd)[:, 1])

    def head_auc(h):
        return auc(h.positive_proba(Xd))

    def flops(h):
        return head_flops(h, n, nd)

    def head(name, **kw):
        if name != "logreg":
            kw["device"] = device
        return lambda: head_class(name)(blocks=blocks, **kw).fit(X, y, Xd, yd)

    cross = dict(fusion="cross", split=768, patience=0)
    mlp_base = "sklearn MLPClassifier(max_iter=30)"
    rows = [
        Row("sklearn LogisticRegression() 7-C sweep",
            lambda: max(((auc(m.predict_proba(Xd)[:, 1]), m) for m in
                         (LogisticRegression(C=c).fit(X, y) for c in Cs)), key=lambda t: t[0]),
            lambda r: r[0]),
        Row("memeprobe logreg 7-C sweep (warm start)", head("logreg", n_C=7), head_auc,
            baseline="sklearn LogisticRegression() 7-C sweep"),
        Row("sklearn LogisticRegressionCV(Cs=7, cv=5, n_jobs=2)",
            lambda: LogisticRegressionCV(Cs=Cs, cv=5, scoring="roc_auc", max_iter=500, n_jobs=2).fit(X, y), sk),
        Row("memeprobe logreg 5-fold CV selection (default protocol)",
            lambda: head_class("logreg")(blocks=blocks).fit(X, y), head_auc,
            baseline="sklearn LogisticRegressionCV(Cs=7, cv=5, n_jobs=2)"),
        Row("memeprobe retrieval (FAISS kNN, k by leave-one-out)",
            lambda: head_class("retrieval")(blocks=blocks).fit(X, y), head_auc),
        Row(mlp_base, lambda: MLPClassifier(max_iter=30, random_state=0).fit(X, y), sk,
            lambda m: sklearn_mlp_flops(m, n), "mlp100"),
        Row("sklearn MLPClassifier((256,), max_iter=30) (same FLOPs)",
            lambda: MLPClassifier((256,), max_iter=30, random_state=0).fit(X, y), sk,
            lambda m: sklearn_mlp_flops(m, n), "mlp256", baseline=mlp_base),
        Row("memeprobe mlp 256, 30 epochs", head("mlp", hidden=(256,), epochs=30, patience=0), head_auc, flops,
            "mlp256", baseline=mlp_base),
        Row("memeprobe mlp 512, 30 epochs", head("mlp", hidden=(512,), epochs=30, patience=0), head_auc, flops,
            "mlp512", baseline=mlp_base),
        Row("memeprobe cross fusion p=64, 20 epochs", head("fusion", proj_dim=64, epochs=20, **cross), head_auc,
            flops, "cross64", baseline=mlp_base),
        Row(f"memeprobe cross fusion p=256 (exact), 20 epochs (timed {cross256_epochs})",
            head("fusion", proj_dim=256, epochs=cross256_epochs, **cross), head_auc, flops, "cross256",
            baseline=mlp_base, scale=20 / cross256_epochs),
    ]
    if not quick:
        rows += [
            Row(f"cross p=256 bf16 autocast (opt-in), 20 ep (timed {cross256_epochs})",
                head("fusion", proj_dim=256, epochs=cross256_epochs, precision="bf16", **cross), head_auc, flops,
                "cross256", baseline=mlp_base, scale=20 / cross256_epochs),
            Row("cross p=256 rank-16 first layer (opt-in), 20 epochs",
                head("fusion", proj_dim=256, cross_rank=16, epochs=20, **cross), head_auc, flops, None,
                baseline=mlp_base),
            Row("memeprobe align fusion p=256, 20 epochs",
                head("fusion", fusion="align", split=768, epochs=20, patience=0), head_auc, flops, "align",
                baseline=mlp_base),
        ]
    return rows


CEILINGS = {  # GEMM shape sets of one training step (batch 256): [(in, out, reads raw input), ...]
    "mlp100": [(1536, 100, True), (100, 1, False)],
    "mlp256": [(1536, 256, True), (256, 1, False)],
    "mlp512": [(1536, 512, True), (512, 1, False)],
    "cross64": [(768, 64, True), (768, 64, True), (4096, 256, False), (256, 1, False)],
    "cross256": [(768, 256, True), (768, 256, True), (65536, 256, False), (256, 1, False)],
    "align": [(768, 256, True), (768, 256, True), (256, 256, False), (256, 1, False)],
}


def bench(scale, device, cross256_epochs, threads, repeats, quick):
    import torch
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    from memeprobe.heads.factory import head_class

    torch.set_num_threads(threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    warnings.simplefilter("ignore", FutureWarning)  # sklearn 1.9 deprecation notes of LogisticRegressionCV
    X, y = make_features(int(8500 * scale), 0)
    Xd, yd = make_features(500, 1)
    rows = rows_for(X, y, Xd, yd, device, cross256_epochs, quick)
    head_class("mlp")(blocks=(768, 768), epochs=1, device=device).fit(X[:512], y[:512])  # torch warm-up, untimed
    ceilings = {}
    with threadpool_limits(limits=threads):
        for _ in range(repeats):  # interleaved: every row once per round, best round kept
            for row in rows:
                if row.ceiling:  # measured right before the row, so both see the same machine state
                    gf = gemm_ceiling(step_shapes(256, CEILINGS[row.ceiling]), threads)
                    ceilings[row.ceiling] = max(ceilings.get(row.ceiling, 0.0), gf)
                wall, model, cpu = timed(row.fit)
                wall, cpu = wall * row.scale, cpu * row.scale
                if row.best is None or wall < row.best[0]:
                    fl = row.flops(model) * row.scale if row.flops else None
                    row.best = (wall, cpu, row.score(model), fl)
    return len(X), rows, ceilings


def table(n, rows, ceilings, device, threads, repeats, load):
    """The markdown table of one scale."""
    by_name = {r.name: r for r in rows}
    lines = [f"{n} train x 1536 features (float16 stored), 500 dev, device {device}, {threads} threads, "
             f"best of {repeats} interleaved rounds; load average {load[0]} at start, {load[1]} at end",
             "",
             "| method | wall s | cpu s | dev AUROC | vs baseline | GFLOP (fwd+bwd) | achieved GFLOP/s "
             "| matmul ceiling GFLOP/s | wall / matmul floor |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        wall, cpu, auc, fl = r.best
        base = by_name[r.baseline].best[0] if r.baseline else None
        ceil = ceilings.get(r.ceiling)
        cells = [r.name, f"{wall:.2f}", f"{cpu:.2f}", f"{auc:.4f}", f"{wall / base:.2f}x" if base else "baseline",
                 f"{fl / 1e9:.0f}" if fl else "-", f"{fl / wall / 1e9:.0f}" if fl else "-",
                 f"{ceil:.0f}" if ceil else "-", f"{wall / (fl / ceil / 1e9):.2f}x" if fl and ceil else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench_sweep(n_configs, jobs):
    from memeprobe.heads.choices import DEFAULT_SPACE
    from memeprobe.heads.sweep import configs, run_sweep
    from memeprobe.store.features import Features

    data = {}
    for split, n, seed in (("train", 8500, 0), ("dev", 500, 1)):
        X, y = make_features(n, seed)
        data[split] = Features(X, np.array([str(i) for i in range(n)]), y, np.arange(n), [768, 768], ["image", "text"])
    points = configs(DEFAULT_SPACE, "random", n_configs, seed=0)
    start = time.perf_counter()
    results = list(run_sweep(points, data, "train", "dev", ["label"], jobs=jobs))
    total = time.perf_counter() - start
    best = max(results, key=lambda r: r[2]["cv"]["auroc"])  # ranked out-of-fold, as the sweep command ranks
    per_head = {h: sum(s for hh, _, _, _, s in results if hh == h) for h in DEFAULT_SPACE}
    return total, best, per_head, len(results)


def busy_stores(data: Path, work: Path) -> dict[str, Path]:
    """The three stores of the busy comparison, featurized on the first run (resumable)."""
    stores = {"hm": work / "hm.h5", "sem": work / "sem.h5", "spans": work / "spans.h5"}
    steps = [["featurize", "all", data / "hateful_memes", "--store", stores["hm"], "--featurizer", "st:minilm"],
             ["featurize", "all", data / "semeval2021_task6", "--store", stores["sem"], "--featurizer", "st:minilm",
              "--featurizer", "pixels"],
             ["featurize", "text", data / "semeval2021_task6_spans", "--store", stores["spans"], "--featurizer",
              "st:minilm", "--tokens"]]
    for argv in steps:
        _busy.run([str(a) for a in [*argv, "--no-progress"]], {})
    return stores


def busy_commands(stores: dict[str, Path], work: Path) -> dict[str, list[str]]:
    hm = ["--store", str(stores["hm"]), "--feature-set", "st-minilm"]
    out = ["--out", str(work / "model.pt"), "--replace", "model"]
    return {
        "train-head logreg (HM)": ["train-head", "logreg", *hm, *out],
        "train-head mlp (HM)": ["train-head", "mlp", *hm, *out],
        "train-head retrieval (HM)": ["train-head", "retrieval", *hm, *out],
        "train-head ensemble logreg,mlp,retrieval (HM)": ["train-head", "ensemble", "--members", "logreg,mlp,retrieval",
                                                          *hm, *out],
        "train-head fusion (SemEval text + pixels)": ["train-head", "fusion", "--store", str(stores["sem"]), "--image",
                                                      "pixels/image_embed", "--text", "st-minilm/text_embed", *out],
        "train-head span (SemEval spans)": ["train-head", "span", "--store", str(stores["spans"]), "--feature-set",
                                            "st-minilm", "--dev-split", "dev", *out],
    }


def busy_main(args):
    if not (args.data / "hateful_memes").is_dir():
        print(f"--busy needs the real data: {args.data}/hateful_memes is absent")
        return
    args.work.mkdir(parents=True, exist_ok=True)
    commands = busy_commands(busy_stores(args.data, args.work), args.work)
    start = "%.2f %.2f %.2f" % os.getloadavg()
    times = _busy.compare(commands, args.busy, args.rounds)
    print(f"load average at start {start}, at end " + "%.2f %.2f %.2f" % os.getloadavg() + "\n")
    print(_busy.table(times, args.busy, args.rounds))
    names = list(commands)
    print("\n" + _busy.ensemble_line(times, names[3], names[:3]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, nargs="*", default=[1.0], help="Train sizes as multiples of 8.5k.")
    ap.add_argument("--quick", action="store_true", help="2.1k train rows, one round, no opt-in variants")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="interleaved rounds; the best time per row is kept")
    ap.add_argument("--cross256-epochs", type=int, default=1)
    ap.add_argument("--sweep", type=int, default=0, help="Also time an N-config sweep (0 = skip).")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--busy", type=int, default=None, metavar="N",
                    help="Time the train-head commands quiet and beside N CPU-bound neighbours instead.")
    ap.add_argument("--rounds", type=int, default=1, help="--busy: alternating rounds (median shown)")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/memeprobe_busy"))
    args = ap.parse_args()
    if args.busy is not None:
        return busy_main(args)
    scales, repeats = ([0.25], 1) if args.quick else (args.scale, args.repeats)
    for scale in scales:
        start = "%.2f %.2f %.2f" % os.getloadavg()
        n, rows, ceilings = bench(scale, args.device, args.cross256_epochs, args.threads, repeats, args.quick)
        print(table(n, rows, ceilings, args.device, args.threads, repeats, (start, "%.2f %.2f %.2f" % os.getloadavg())))
    if args.sweep:
        total, best, per_head, n = bench_sweep(args.sweep, args.jobs)
        print(f"\nsweep: {n} random logreg+MLP configs at 8.5k x 1536 on {args.jobs} jobs: {total:.1f} s "
              f"(fit seconds summed per head: {', '.join(f'{h} {s:.0f}' for h, s in per_head.items())}); "
              f"best out-of-fold AUROC {best[2]['cv']['auroc']:.4f} (dev, untouched: {best[2]['dev']['auroc']:.4f}) "
              f"with {best[0]} {best[1]}; "
              "load average %.2f %.2f %.2f at end" % os.getloadavg())


if __name__ == "__main__":
    main()
