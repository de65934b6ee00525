"""Scale of the cross-split near-duplicate join (memeprobe.leakage.neighbors) on float16 vectors in HDF5.

For each size N it writes random-but-clustered 768-d float16 vectors to an HDF5 file (rows: 70 % train,
then 30 % eval, as a store orders splits), plants near-duplicate train/eval pairs (cosine ~0.93-0.98),
then, in a fresh process per measurement (so peak RSS is the join's own), streams the file in blocks and
joins eval against train at cosine >= 0.9 with FAISS on ``--threads`` cores. Printed per size: wall
time, CPU time (user + sys, less sensitive to other load on a shared machine), peak RSS, index kind,
recall of the planted pairs, and the same for a brute-force numpy block matmul baseline where it is
run (``--brute-max``), with the speed ratio and the overlap of both pair sets. Where the default picks
the exact index, a forced-IVF run is added for comparison.

    python benchmarks/dedup_scale.py                 # 12.5k and 100k
    python benchmarks/dedup_scale.py --with-1m       # adds 1M (several minutes, ~1.5 GB file)
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


def join(path: str, method: str, threshold: float, exact_limit: int) -> dict:
    """Run one join in this process; returns timing, peak RSS and the pairs (as a file).

    ``method``: "faiss" (CosineIndex with ``exact_limit``), "faiss-ivf" (IVF forced) or "numpy".
    """
    return _join(path, method, threshold, 0 if method == "faiss-ivf" else exact_limit)


def _join(path: str, method: str, threshold: float, exact_limit: int) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        vec = f["vectors"]
        n, n_train = vec.shape[0], int(f.attrs["n_train"])
        train, evals = np.arange(n_train), np.arange(n_train, n)
        t0 = time.perf_counter()
        if method.startswith("faiss"):
            from memeprobe.leakage.neighbors import CosineIndex

            index = CosineIndex(exact_limit=exact_limit).fit(vec, train)
            q, b, _ = index.range_search(vec, evals, threshold)
            kind = "IndexFlatIP (exact)" if index.exact_ else f"IVFFlat nlist={index.nlist_} nprobe={index.index_.nprobe}"
        else:
            q, b = brute_force(vec, n_train, threshold)
            kind = "numpy block matmul"
        seconds = time.perf_counter() - t0
        planted = f["planted"][()]
    found = set(zip(b.tolist(), q.tolist()))
    recall = float(np.mean([(int(s), int(d)) in found for s, d in planted]))
    out = Path(path).with_suffix(f".{method}.npy")
    np.save(out, np.stack([b, q], axis=1) if len(q) else np.zeros((0, 2), np.int64))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"method": method, "index": kind, "seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "pairs": len(found), "recall": recall, "peak_rss_mb": usage.ru_maxrss / 1024, "pairs_file": str(out)}


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


def measure(path: Path, method: str, args) -> dict:
    """Run ``join`` in a fresh interpreter limited to ``args.threads`` threads."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, __file__, "--_join", str(path), method, str(args.threshold), str(args.exact_limit),
           str(args.threads)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[12_500, 100_000])
    p.add_argument("--with-1m", action="store_true", help="also run N = 1,000,000")
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--planted", type=float, default=0.02, help="share of eval rows with a planted train duplicate")
    p.add_argument("--exact-limit", type=int, default=50_000, help="indexed rows up to which IndexFlatIP is used")
    p.add_argument("--brute-max", type=int, default=100_000, help="largest N with the numpy baseline")
    p.add_argument("--workdir", type=Path, default=None)
    args = p.parse_args()
    sizes = args.sizes + ([1_000_000] if args.with_1m else [])
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dedup_scale_"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        path = workdir / f"vectors_{n}.h5"
        t0 = time.perf_counter()
        generate(path, n, args.dim, args.planted)
        print(f"N={n}: wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        base = measure(path, "numpy", args) if n <= args.brute_max else None
        methods = ["faiss"] + (["faiss-ivf"] if int(n * TRAIN_SHARE) <= args.exact_limit else [])  # IVF too where exact is the default
        for method in methods:
            fast = measure(path, method, args)
            agree = None
            if base:
                a = {tuple(r) for r in np.load(fast["pairs_file"]).tolist()}
                b = {tuple(r) for r in np.load(base["pairs_file"]).tolist()}
                agree = len(a & b) / max(1, len(b))
            rows.append((n, fast, base, agree))
        path.unlink()
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores", file=sys.stderr)
    head = ("N", "index", "faiss s", "CPU s", "peak RSS MB", "planted recall", "pairs", "numpy s", "numpy RSS MB",
            "speed-up", "recall vs numpy")
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for n, fast, base, agree in rows:
        print(" | ".join([f"{n:,}", fast["index"], f"{fast['seconds']:.2f}", f"{fast['cpu_seconds']:.1f}",
                          f"{fast['peak_rss_mb']:.0f}",
                          f"{fast['recall']:.4f}", str(fast["pairs"]),
                          f"{base['seconds']:.2f}" if base else "-", f"{base['peak_rss_mb']:.0f}" if base else "-",
                          f"{base['seconds'] / fast['seconds']:.1f}x" if base else "-",
                          f"{agree:.4f}" if agree is not None else "-"]))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_join":
        _, _, path, method, threshold, exact_limit, threads = sys.argv
        import faiss

        faiss.omp_set_num_threads(int(threads))
        print(json.dumps(join(path, method, float(threshold), int(exact_limit))))
    else:
        main()
