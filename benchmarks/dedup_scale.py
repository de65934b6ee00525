"""Scale of the cross-split near-duplicate join (memeprobe.leakage.neighbors) on float16 vectors in HDF5.

For each size N it writes random-but-clustered 768-d float16 vectors to an HDF5 file (rows: 70 % train,
then 30 % eval, as a store orders splits), plants near-duplicate train/eval pairs (cosine ~0.93-0.98),
then, in a fresh process per measurement (so peak RSS is the join's own; faiss and torch are imported
before the clock starts, for every method), streams the file in blocks and joins eval against train at
cosine >= 0.9 on ``--threads`` threads. Methods, run interleaved ``--repeats`` times (best kept):
``numpy`` (the baseline: one dense float32 block matmul per 8,192 eval rows), ``exact`` (the library's
exact path: bfloat16 pre-filter + float32 re-score where the CPU has native bfloat16), ``exact-f32``
(float32 matmul tiles), ``ivf`` (FAISS IVFFlat forced), ``default`` (whatever ``CosineIndex()`` picks).

Beside each time: the machine's own ceiling measured in the same run (achieved GFLOP/s of a bare
float32 numpy matmul, and of a bfloat16 torch matmul, of one tile's shape on the same threads), the
method's achieved GFLOP/s counting the exact join's 2 x N_eval x N_train x dim (for IVF: exact-
equivalent), wall / (exact FLOPs at the float32 ceiling), the ratio to numpy, and pair-set agreement.
Prints a markdown table; the last lines say which of exact / IVF was faster per size (the crossover).

    python benchmarks/dedup_scale.py                 # 12.5k, 50k, 100k, 3 repeats
    python benchmarks/dedup_scale.py --quick         # 12.5k, 1 repeat
    python benchmarks/dedup_scale.py --sizes 1000000 --methods default --repeats 1   # 1M (minutes, ~1.5 GB)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TRAIN_SHARE = 0.7
BLOCK = 65536


def generate(path: Path, n: int, dim: int, planted_share: float, seed: int = 0) -> None:
    """Write clustered float16 vectors and the planted (train, eval) pairs to ``path``, block by block."""
    import h5py

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(1000, dim)).astype(np.float32)
    n_train = int(n * TRAIN_SHARE)
    n_planted = int((n - n_train) * planted_share)
    dst = np.sort(rng.choice(np.arange(n_train, n), n_planted, replace=False))
    src = rng.choice(n_train, n_planted, replace=False)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("vectors", shape=(n, dim), dtype="float16", chunks=(min(n, 4096), dim))
        for start in range(0, n, BLOCK):
            stop = min(n, start + BLOCK)
            x = centers[rng.integers(0, len(centers), stop - start)] + rng.normal(size=(stop - start, dim)).astype(np.float32)
            ds[start:stop] = x.astype(np.float16)
        order = np.argsort(src)
        copies = ds[np.sort(src)].astype(np.float32)[np.argsort(order)]  # rows of src, in dst order
        sigma = rng.uniform(0.15, 0.4, (n_planted, 1)).astype(np.float32)
        ds[dst] = (copies + sigma * rng.normal(size=copies.shape).astype(np.float32)).astype(np.float16)
        f.create_dataset("planted", data=np.stack([src, dst], axis=1))
        f.attrs["n_train"] = n_train


METHODS = {  # name -> CosineIndex params (None = the numpy baseline)
    "numpy": None,
    "default": {},
    "exact": {"exact_limit": 10**12},
    "exact-f32": {"exact_limit": 10**12, "bf16": False},
    "ivf": {"exact_limit": 0},
}


def join(path: str, method: str, threshold: float) -> dict:
    """Run one join in this process; returns timing, peak RSS and the pairs (as a file)."""
    import h5py

    from memeprobe.leakage.neighbors import CosineIndex

    params = METHODS[method]
    with h5py.File(path, "r") as f:
        vec = f["vectors"]
        n, n_train = vec.shape[0], int(f.attrs["n_train"])
        train, evals = np.arange(n_train), np.arange(n_train, n)
        t0 = time.perf_counter()
        if params is not None:
            index = CosineIndex(**params).fit(vec, train)
            q, b, _ = index.range_search(vec, evals, threshold)
            kind = ((f"exact, {'bf16 pre-filter' if index.base_bf16_ is not None else 'float32'} matmul")
                    if index.exact_ else f"IVFFlat nlist={index.nlist_} nprobe={index.index_.nprobe}")
        else:
            q, b = brute_force(vec, n_train, threshold)
            kind = "numpy block matmul (baseline)"
        seconds = time.perf_counter() - t0
        planted = f["planted"][()]
    found = set(zip(b.tolist(), q.tolist()))
    recall = float(np.mean([(int(s), int(d)) in found for s, d in planted]))
    out = Path(path).with_suffix(f".{method}.npy")
    np.save(out, np.stack([b, q], axis=1) if len(q) else np.zeros((0, 2), np.int64))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"method": method, "index": kind, "seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "pairs": len(found), "recall": recall, "peak_rss_mb": usage.ru_maxrss / 1024, "pairs_file": str(out),
            "flops": 2.0 * len(evals) * n_train * vec.shape[1]}


def ceiling(m: int, k: int, n: int, repeats: int = 3) -> dict:
    """Achieved GFLOP/s of a bare (m x k) @ (k x n) matmul: numpy float32, and torch bfloat16."""
    import torch

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(m, k)).astype(np.float32), rng.normal(size=(n, k)).astype(np.float32)
    ta, tb = torch.from_numpy(a).to(torch.bfloat16), torch.from_numpy(b).to(torch.bfloat16)
    out = {}
    for name, fn in (("f32", lambda: a @ b.T), ("bf16", lambda: ta @ tb.T)):
        fn()
        best = min(_wall(fn) for _ in range(repeats))
        out[name] = 2.0 * m * k * n / best / 1e9
    return out


def _wall(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def brute_force(vec, n_train: int, threshold: float, block: int = 8192):
    """All (eval, train) pairs by dense numpy products of normalised blocks (no N x N matrix)."""
    def unit(x):
        x = np.asarray(x, dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    train = unit(vec[:n_train])
    qs, bs = [], []
    for start in range(n_train, vec.shape[0], block):
        s = unit(vec[start:start + block]) @ train.T
        i, j = np.nonzero(s >= threshold)
        qs.append(i + start)
        bs.append(j)
    return np.concatenate(qs), np.concatenate(bs)


def measure(args, *cmd) -> dict:
    """Run ``--_join``/``--_ceiling`` in a fresh interpreter limited to ``args.threads`` threads."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    res = subprocess.run([sys.executable, __file__, *map(str, cmd), str(args.threads)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[12_500, 50_000, 100_000])
    p.add_argument("--quick", action="store_true", help="12.5k only, one repeat")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats per method; the best is kept")
    p.add_argument("--methods", nargs="+", default=["numpy", "exact", "exact-f32", "ivf"], choices=list(METHODS))
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--planted", type=float, default=0.02, help="share of eval rows with a planted train duplicate")
    p.add_argument("--brute-max", type=int, default=100_000, help="largest N with the numpy baseline and exact paths")
    p.add_argument("--workdir", type=Path, default=None)
    args = p.parse_args()
    sizes, repeats = ([12_500], 1) if args.quick else (args.sizes, args.repeats)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dedup_scale_"))
    workdir.mkdir(parents=True, exist_ok=True)
    load = [os.getloadavg()]
    tables = []
    for n in sizes:
        path = workdir / f"vectors_{n}.h5"
        t0 = time.perf_counter()
        generate(path, n, args.dim, args.planted)
        print(f"N={n}: wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        n_train = int(n * TRAIN_SHARE)
        methods = args.methods if n <= args.brute_max else ["default"]
        best = {}
        for _ in range(repeats):  # interleaved, so load changes hit every method alike
            for method in methods:
                r = measure(args, "--_join", path, method, args.threshold)
                if method not in best or r["seconds"] < best[method]["seconds"]:
                    best[method] = r
        from memeprobe.leakage.neighbors import TILE

        ceil = measure(args, "--_ceiling", min(n - n_train, max(64, TILE // n_train)), args.dim, n_train)
        tables.append((n, best, ceil))
        path.unlink()
    load.append(os.getloadavg())
    print(f"load average {' '.join(f'{x:.2f}' for x in load[0])} at start, "
          f"{' '.join(f'{x:.2f}' for x in load[1])} at end; {os.cpu_count()} CPUs, {args.threads} threads; "
          f"best of {repeats} interleaved runs")
    head = ("N", "method", "wall s", "CPU s", "peak RSS MB", "planted recall", "pairs", "GFLOP/s (exact-equiv.)",
            "f32 matmul ceiling GFLOP/s", "bf16 ceiling", "wall / f32 floor", "vs numpy", "pairs = numpy's")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n, best, ceil in tables:
        base = best.get("numpy")
        ref = {tuple(r) for r in np.load(base["pairs_file"]).tolist()} if base else None
        for method, r in best.items():
            gflops = r["flops"] / r["seconds"] / 1e9
            same = "-"
            if ref is not None:
                same = f"{len({tuple(x) for x in np.load(r['pairs_file']).tolist()} & ref) / max(1, len(ref)):.4f}"
            print("| " + " | ".join([
                f"{n:,}", f"{method}: {r['index']}", f"{r['seconds']:.2f}", f"{r['cpu_seconds']:.1f}",
                f"{r['peak_rss_mb']:.0f}", f"{r['recall']:.4f}", str(r["pairs"]), f"{gflops:.0f}",
                f"{ceil['f32']:.0f}", f"{ceil['bf16']:.0f}", f"{gflops and ceil['f32'] / gflops:.2f}x",
                f"{r['seconds'] / base['seconds']:.2f}x" if base else "-", same]) + " |")
    for n, best, _ in tables:
        if "exact" in best and "ivf" in best:
            e, i = best["exact"]["seconds"], best["ivf"]["seconds"]
            print(f"N={n:,}: exact {e:.2f} s, IVF {i:.2f} s -> {'exact' if e <= i else 'IVF'} is faster")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_join":
        _, _, path, method, threshold, threads = sys.argv
        import faiss
        import torch  # noqa: F401  (imported before the clock, like faiss)

        faiss.omp_set_num_threads(int(threads))
        print(json.dumps(join(path, method, float(threshold))))
    elif len(sys.argv) > 1 and sys.argv[1] == "--_ceiling":
        _, _, m, k, n, threads = sys.argv
        print(json.dumps(ceiling(int(m), int(k), int(n))))
    else:
        main()
