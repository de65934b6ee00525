"""Fit time of the heads on Hateful-Memes-sized cached features, against plain sklearn in the same run.

Synthetic-but-realistic features: 768-d image + 768-d text vectors stored as float16, built from a
shared 64-d latent (so the modalities correlate like CLIP embeddings) plus noise; the label depends
on a linear part and an image×text interaction. Sizes: 8.5k train / 500 dev (HM) and ``--scale``× that.

Rows: logreg with a 7-point C sweep on dev (memeprobe) vs sklearn ``LogisticRegression()`` defaults
swept over the same 7 C (and one default fit); MLP 30 epochs (memeprobe, hidden 256 and 512, no early
stopping) vs sklearn ``MLPClassifier(max_iter=30)`` (defaults otherwise); cross fusion 20 epochs
at the default proj 64 and at the paper's 256 (256 is timed on ``--cross256-epochs`` epochs and
extrapolated to 20), and the opt-in variants at 256: bf16 autocast (``precision``) and a factorised
first layer (``cross_rank``). ``--sweep N`` also times an N-config random logreg+MLP sweep on ``--jobs`` cores.

Goals (HM size, 2 CPU cores): logreg sweep < 2 s, MLP < 5 s, cross fusion < 2 min, 100-config sweep < 5 min.

    OMP_NUM_THREADS=2 python benchmarks/heads_speed.py [--scale 10] [--sweep 100] [--device cpu]
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


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


CPU = []  # process CPU seconds of each timed call (robust to other load on shared cores)


def timed(fn):
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    CPU.append(time.process_time() - cpu)
    return time.perf_counter() - start, out


def bench(scale, device, cross256_epochs, threads):
    import torch
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.neural_network import MLPClassifier

    from memeprobe.heads.factory import create_head

    torch.set_num_threads(threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = make_features(int(8500 * scale), 0)
    Xd, yd = make_features(500, 1)
    blocks = (768, 768)
    rows = []

    def auc(p):
        return roc_auc_score(yd, p)

    Cs = np.logspace(-4, 2, 7)
    t_base1, m = timed(lambda: LogisticRegression().fit(X, y))
    rows.append(("sklearn LogisticRegression() 1 fit", t_base1, auc(m.predict_proba(Xd)[:, 1]), None))

    def sk_sweep():
        return max(auc(LogisticRegression(C=c).fit(X, y).predict_proba(Xd)[:, 1]) for c in Cs)

    t_base7, best = timed(sk_sweep)
    rows.append(("sklearn LogisticRegression() 7-C sweep", t_base7, best, None))
    t, h = timed(lambda: create_head("logreg", blocks=blocks, n_C=7).fit(X, y, Xd, yd))
    rows.append(("memeprobe logreg 7-C sweep (warm start)", t, auc(h.predict_proba(Xd)), t_base7))

    t_mlp_base, m = timed(lambda: MLPClassifier(max_iter=30, random_state=0).fit(X, y))
    rows.append(("sklearn MLPClassifier(max_iter=30)", t_mlp_base, auc(m.predict_proba(Xd)[:, 1]), None))
    create_head("mlp", blocks=blocks, epochs=1, device=device).fit(X[:512], y[:512])  # torch warm-up, untimed
    for hidden in (256, 512):
        t, h = timed(lambda: create_head("mlp", blocks=blocks, hidden=(hidden,), epochs=30, patience=0,
                                         device=device).fit(X, y, Xd, yd))
        rows.append((f"memeprobe mlp {hidden}, 30 epochs", t, auc(h.predict_proba(Xd)), t_mlp_base))
    t, h = timed(lambda: create_head("mlp", blocks=blocks, epochs=30, patience=5, device=device).fit(X, y, Xd, yd))
    rows.append((f"memeprobe mlp 256, early stop (ep {h.best_epoch_}/{len(h.history_)})", t,
                 auc(h.predict_proba(Xd)), t_mlp_base))
    cross = dict(fusion="cross", split=768, blocks=blocks, patience=0, device=device)
    t, h = timed(lambda: create_head("fusion", proj_dim=64, epochs=20, **cross).fit(X, y, Xd, yd))
    rows.append(("memeprobe cross fusion p=64, 20 epochs", t, auc(h.predict_proba(Xd)), t_mlp_base))
    t, h = timed(lambda: create_head("fusion", proj_dim=256, epochs=cross256_epochs, **cross).fit(X, y, Xd, yd))
    CPU[-1] *= 20 / cross256_epochs
    rows.append((f"memeprobe cross fusion p=256, 20 epochs (from {cross256_epochs})", t * 20 / cross256_epochs,
                 auc(h.predict_proba(Xd)), t_mlp_base))
    t, h = timed(lambda: create_head("fusion", proj_dim=256, epochs=cross256_epochs, precision="bf16",
                                     **cross).fit(X, y, Xd, yd))
    CPU[-1] *= 20 / cross256_epochs
    rows.append((f"memeprobe cross p=256 bf16 autocast (opt-in), 20 ep (from {cross256_epochs})",
                 t * 20 / cross256_epochs, auc(h.predict_proba(Xd)), t_mlp_base))
    t, h = timed(lambda: create_head("fusion", proj_dim=256, cross_rank=16, epochs=20, **cross).fit(X, y, Xd, yd))
    rows.append(("memeprobe cross p=256 rank-16 first layer (opt-in), 20 ep", t, auc(h.predict_proba(Xd)), t_mlp_base))
    t, h = timed(lambda: create_head("fusion", fusion="align", split=768, blocks=blocks, epochs=20, patience=0,
                                     device=device).fit(X, y, Xd, yd))
    rows.append(("memeprobe align fusion p=256, 20 epochs", t, auc(h.predict_proba(Xd)), t_mlp_base))
    return len(X), rows


def bench_sweep(n_configs, jobs):
    from memeprobe.heads.features import Features
    from memeprobe.heads.sweep import DEFAULT_SPACE, configs, run_sweep

    data = {}
    for split, n, seed in (("train", 8500, 0), ("dev", 500, 1)):
        X, y = make_features(n, seed)
        data[split] = Features(X, np.array([str(i) for i in range(n)]), y, np.arange(n), [768, 768], ["image", "text"])
    points = configs(DEFAULT_SPACE, "random", n_configs, seed=0)
    start = time.perf_counter()
    results = list(run_sweep(points, data, "train", "dev", ["label"], jobs=jobs))
    total = time.perf_counter() - start
    best = max(results, key=lambda r: r[2]["dev"]["auroc"])
    per_head = {h: sum(s for hh, _, _, s in results if hh == h) for h in DEFAULT_SPACE}
    return total, best, per_head, len(results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, nargs="*", default=[1.0], help="Train sizes as multiples of 8.5k.")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cross256-epochs", type=int, default=1)
    ap.add_argument("--sweep", type=int, default=0, help="Also time an N-config sweep (0 = skip).")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    print("load average at start: %.2f %.2f %.2f" % os.getloadavg())
    for scale in args.scale:
        n, rows = bench(scale, args.device, args.cross256_epochs, args.threads)
        print(f"\n{n} train x 1536 features (float16 stored), 500 dev, device {args.device}, {args.threads} threads")
        print(f"{'method':58s} {'wall s':>8s} {'cpu s':>8s} {'dev AUROC':>10s} {'vs baseline':>12s}")
        for (name, t, a, base), cpu in zip(rows, CPU[-len(rows):]):
            ratio = f"{t / base:.2f}x" if base else "baseline"
            print(f"{name:58s} {t:8.2f} {cpu:8.2f} {a:10.4f} {ratio:>12s}")
    if args.sweep:
        total, best, per_head, n = bench_sweep(args.sweep, args.jobs)
        print(f"\nsweep: {n} random logreg+MLP configs at 8.5k x 1536 on {args.jobs} jobs: {total:.1f} s "
              f"(fit seconds summed per head: {', '.join(f'{h} {s:.0f}' for h, s in per_head.items())}); "
              f"best dev AUROC {best[2]['dev']['auroc']:.4f} with {best[0]} {best[1]}")
    print("load average at end: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
