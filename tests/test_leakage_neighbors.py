"""FAISS cosine joins against a numpy brute force: exact and IVF indexes, HDF5 streaming, bad vectors."""
import h5py
import numpy as np
import pytest

from memeprobe.leakage.neighbors import CosineIndex, cosine_pairs, iter_blocks


def clustered(n, dim=64, planted=50, seed=0, noise=0.05):
    """Clustered random vectors with ``planted`` near-duplicate pairs (returned as a set)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, dim))
    x = centers[rng.integers(0, 20, n)] + rng.normal(size=(n, dim)) * 1.0
    src = rng.choice(n, planted, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), planted, replace=False)
    x[dst] = x[src] + rng.normal(size=(planted, dim)) * noise
    return x.astype(np.float32), {(min(a, b), max(a, b)) for a, b in zip(src, dst)}


def brute(x, threshold, rows_a, rows_b=None):
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    if rows_b is None:
        s = u[rows_a] @ u[rows_a].T
        i, j = np.nonzero(np.triu(s >= threshold, 1))
        return {(int(rows_a[a]), int(rows_a[b])) for a, b in zip(i, j)}
    s = u[rows_a] @ u[rows_b].T
    i, j = np.nonzero(s >= threshold)
    return {(int(rows_a[a]), int(rows_b[b])) for a, b in zip(i, j)}


def test_exact_self_join_equals_brute_force():
    x, planted = clustered(600)
    i, j, s, skipped = cosine_pairs(x, 0.9, block=100)
    got = set(zip(i.tolist(), j.tolist()))
    assert got == brute(x, 0.9, np.arange(600)) and planted <= got
    assert len(skipped) == 0 and (i < j).all() and (s >= 0.9 - 1e-5).all()


def test_exact_cross_join_equals_brute_force():
    x, _ = clustered(500, seed=2)
    a, b = np.arange(0, 350), np.arange(350, 500)
    i, j, _, _ = cosine_pairs(x, 0.9, a, b)
    assert set(zip(i.tolist(), j.tolist())) == brute(x, 0.9, a, b)


def test_ivf_index_is_used_beyond_the_limit_and_finds_planted_pairs():
    x, planted = clustered(4000, planted=100, seed=3)
    index = CosineIndex(exact_limit=1000, nprobe=8).fit(x)
    assert not index.exact_ and index.nlist_ == 253  # 4 sqrt(4000)
    i, j, s, _ = cosine_pairs(x, 0.9, exact_limit=1000)
    got = set(zip(i.tolist(), j.tolist()))
    assert len(got & planted) / len(planted) >= 0.95
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert ((u[i] * u[j]).sum(axis=1) >= 0.9 - 1e-3).all()  # approximate recall, but no false pairs


def test_ivf_scores_are_real_cosines():
    x, planted = clustered(3000, dim=96, planted=80, seed=8)
    index = CosineIndex(exact_limit=500).fit(x, np.arange(2000))
    assert not index.exact_
    q, b, s = index.range_search(x, np.arange(2000, 3000), 0.9)
    cross = {(min(a, c), max(a, c)) for a, c in zip(q.tolist(), b.tolist())}
    want = {p for p in planted if (p[0] < 2000) != (p[1] < 2000)}
    assert want and len(cross & want) / len(want) >= 0.95
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert np.allclose((u[q] * u[b]).sum(axis=1), s, atol=1e-4)


def test_streams_from_hdf5_in_blocks(tmp_path):
    x, planted = clustered(700, seed=4)
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f.create_dataset("v", data=x.astype(np.float16), chunks=(64, 64))
    with h5py.File(tmp_path / "v.h5", "r") as f:
        i, j, _, _ = cosine_pairs(f["v"], 0.9, block=128)
    assert set(zip(i.tolist(), j.tolist())) == brute(x.astype(np.float16).astype(np.float32), 0.9, np.arange(700))


def test_blocks_cover_scattered_rows_once():
    x = np.arange(50, dtype=np.float32)[:, None] + 1
    rows = np.array([0, 3, 4, 17, 18, 40, 49])
    seen = np.concatenate([sel for sel, _, _ in iter_blocks(x, rows, block=8)])
    assert seen.tolist() == rows.tolist()


def test_zero_and_nan_vectors_are_skipped_and_reported():
    x, _ = clustered(200, seed=5)
    x[[3, 7]] = 0.0
    x[11, 5] = np.nan
    x[12] = 0.0  # two zero vectors never match each other
    i, j, _, skipped = cosine_pairs(x, 0.5)
    assert sorted(skipped.tolist()) == [3, 7, 11, 12]
    assert not set(i.tolist()) & {3, 7, 11, 12} and not set(j.tolist()) & {3, 7, 11, 12}


def test_top_k_matches_brute_force():
    x, _ = clustered(300, seed=6)
    index = CosineIndex().fit(x, np.arange(100, 300))
    q, nbr, sim = index.search(x, np.arange(0, 100), k=5)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    want = np.argsort(-(u[:100] @ u[100:].T), axis=1)[:, :5] + 100
    assert q.tolist() == list(range(100))
    assert (nbr == want).mean() > 0.99 and np.all(np.diff(sim, axis=1) <= 1e-6)


@pytest.mark.parametrize("threshold", [0.95, 0.8])
def test_threshold_is_respected(threshold):
    x, _ = clustered(300, seed=7)
    _, _, s, _ = cosine_pairs(x, threshold)
    assert (s >= threshold - 1e-5).all()


@pytest.mark.parametrize("bf16", [False, True])  # float32 matmul; bfloat16 pre-filter + float32 re-score
@pytest.mark.parametrize("tile", [1 << 24, 5000])  # one tile, and many small tiles (partial last tile)
def test_exact_tiles_match_brute_force(monkeypatch, tile, bf16):
    from memeprobe.leakage import neighbors

    monkeypatch.setattr(neighbors, "TILE", tile)
    x, planted = clustered(900, seed=9)
    i, j, s, _ = cosine_pairs(x, 0.9, block=256, bf16=bf16)
    assert set(zip(i.tolist(), j.tolist())) == brute(x, 0.9, np.arange(900)) and planted <= set(zip(i.tolist(), j.tolist()))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert np.allclose((u[i] * u[j]).sum(axis=1), s, atol=1e-5)
    a, b = np.arange(0, 600), np.arange(600, 900)
    q, n, _, _ = cosine_pairs(x, 0.9, a, b, block=256, bf16=bf16)
    assert set(zip(q.tolist(), n.tolist())) == brute(x, 0.9, a, b)


def test_top_k_pads_when_fewer_indexed_rows_than_k():
    x, _ = clustered(40, planted=5, seed=10)
    q, nbr, sim = CosineIndex().fit(x, np.arange(30, 33)).search(x, np.arange(5), k=5)
    assert (nbr[:, 3:] == -1).all() and set(nbr[0, :3].tolist()) == {30, 31, 32}
    assert np.all(np.diff(sim[:, :3], axis=1) <= 1e-6)


@pytest.mark.parametrize("n, exact_limit", [(1000, 50_000), (3000, 50_000), (3000, 500), (8000, 1000)])
def test_planted_pairs_recall_is_one_at_every_size(n, exact_limit):
    """Planted cross-split near-duplicates (cosine ~0.93-0.98, as benchmarks/dedup_scale.py plants them)
    are all found by the exact path and by the IVF index with its defaults."""
    rng = np.random.default_rng(n)
    dim = 96
    centers = rng.normal(size=(50, dim))
    x = (centers[rng.integers(0, 50, n)] + rng.normal(size=(n, dim))).astype(np.float32)
    n_train = int(0.7 * n)
    dst = rng.choice(np.arange(n_train, n), n // 50, replace=False)
    src = rng.choice(n_train, n // 50, replace=False)
    x[dst] = x[src] + rng.uniform(0.15, 0.4, (len(src), 1)) * rng.normal(size=(len(src), dim))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    planted = {(int(d), int(s_)) for s_, d in zip(src, dst) if u[s_] @ u[d] >= 0.9}
    assert len(planted) > 0.9 * len(src)
    i, j, _, _ = cosine_pairs(x, 0.9, np.arange(n_train, n), np.arange(n_train), exact_limit=exact_limit)
    assert planted <= set(zip(i.tolist(), j.tolist()))


def test_bf16_prefilter_keeps_every_pair_just_above_the_threshold():
    """500 rows at cosines 0.885-0.915 from one query, in a random rotation: the bfloat16 pre-filter
    with float32 re-scoring returns exactly the float32 pair set."""
    rng = np.random.default_rng(11)
    n, dim = 500, 512
    cos = rng.uniform(0.885, 0.915, n)
    x = np.zeros((n + 1, dim))
    x[0, 0] = 1.0
    x[1:, 0], x[np.arange(1, n + 1), np.arange(1, n + 1)] = cos, np.sqrt(1 - cos ** 2)
    x = (x @ np.linalg.qr(rng.normal(size=(dim, dim)))[0]).astype(np.float32)
    q, b, s, _ = cosine_pairs(x, 0.9, np.array([0]), np.arange(1, n + 1), bf16=True)
    want = brute(x, 0.9, np.array([0]), np.arange(1, n + 1))
    assert set(zip(q.tolist(), b.tolist())) == want and 100 < len(want) < 400
