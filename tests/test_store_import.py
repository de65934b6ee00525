"""`memeprobe store import`: features computed by a real tiny CLIP run, written out in clip-retrieval and RGCL
layouts (shuffled, with extra and missing ids), imported back, then used by train-head and the leakage report
exactly like the natively featurized set."""
import hashlib
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from memeprobe.cli import main
from memeprobe.demo.synthetic import make_sample
from memeprobe.store import DONE, FAILED, FeatureStore
from tests.test_featurize_encoders import save_tiny_clip

ARRAYS = ("image_embed", "text_embed")


def run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    """A synthetic sample featurized by a tiny random CLIP: (data folder, store, feature set name, features)."""
    root = tmp_path_factory.mktemp("native")
    make_sample(root / "data", n=60, seed=3, image_size=64)
    _, ckpt = save_tiny_clip(root)
    store = root / "s.h5"
    r = run("featurize", "all", root / "data", "--store", store, "--featurizer", f"clip:mp-tiny-clip:{ckpt}",
            "--workers", 0, "--no-progress")
    assert r.exit_code == 0, r.output
    with FeatureStore.open(store) as st:
        (name,) = st.feature_sets()
        assert all(st.done(name, list(ARRAYS)))
        feats = {a: st.read(name, a).astype(np.float32) for a in ARRAYS}
    return root / "data", store, name, feats


def write_clip_retrieval(folder, data, st, feats, rows, extra=0, seed=0, shards=12):
    """clip-retrieval's layout for store ``rows`` (shuffled), plus ``extra`` rows of images the store lacks."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(rows)
    paths = [str((data / st.images[r]).resolve()) for r in order] + [f"/elsewhere/img/9{k:04d}.png" for k in range(extra)]
    img = np.vstack([feats["image_embed"][order], rng.normal(size=(extra, feats["image_embed"].shape[1]))])
    txt = np.vstack([feats["text_embed"][order], rng.normal(size=(extra, feats["text_embed"].shape[1]))])
    for d in ("img_emb", "text_emb", "metadata"):
        (folder / d).mkdir(parents=True, exist_ok=True)
    for k, part in enumerate(np.array_split(np.arange(len(paths)), shards)):
        np.save(folder / "img_emb" / f"img_emb_{k}.npy", img[part].astype(np.float32))
        np.save(folder / "text_emb" / f"text_emb_{k}.npy", txt[part].astype(np.float32))
        pq.write_table(pa.table({"image_path": [paths[i] for i in part], "caption": [f"c{i}" for i in part]}),
                       folder / "metadata" / f"metadata_{k}.parquet")
    return folder


def train(store, head, *refs):
    out = store.parent / f"{head}-{abs(hash(refs))}.pt"
    r = run("train-head", head, "--store", store, *refs, "--bootstrap", 0, "--epochs", 3, "--out", out)
    assert r.exit_code == 0, r.output
    return json.loads((store.parent / "runs.jsonl").read_text().splitlines()[-1])["metrics"]


def leakage(data, store, name, out, image="image_embed", text="text_embed"):
    r = run("leakage", "report", data, "--store", store, "--image-array", f"{name}/{image}",
            "--text-array", f"{name}/{text}", "--out", out, "--json", "--no-progress")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output[r.output.index("{"):])
    return {k: doc[k] for k in ("summary", "eval", "skipped")}, (out / "pairs.csv").read_text()


def test_clip_retrieval_and_rgcl_imports_train_and_audit_like_the_native_set(native, tmp_path):
    data, native_store, name, feats = native
    store = tmp_path / "s.h5"
    shutil.copy(native_store, store)
    with FeatureStore.open(store) as st:
        n, ids, labels, splits = st.n, st.ids.copy(), st.label.copy(), st.splits.copy()
        rng = np.random.default_rng(1)
        lacking = np.sort(rng.choice(n, 7, replace=False))
        have = np.setdiff1d(np.arange(n), lacking)
        cr = write_clip_retrieval(tmp_path / "cr", data, st, feats, have, extra=5)

    # 1. missing ids: counted, marked failed, and train-head names them
    r = run("store", "import", cr, "--store", store, "--feature-set", "cr", "--encoder", "mp-tiny-clip",
            "--weights", "tiny.pt (random)", "--preprocessing", "open_clip 64 px")
    assert r.exit_code == 0, r.output
    assert f"ids: {n - 7} of {n} memes matched" in r.output and "7 missing" in r.output and "5 extra" in r.output
    with FeatureStore.open(store) as st:
        status = st.status("cr", "image")
        assert (status[lacking] == FAILED).all() and (status[have] == DONE).all()
        np.testing.assert_array_equal(st.read("cr", "image_embed", have), st.read(name, "image_embed", have))
        assert st.verify() == []
    r = run("train-head", "logreg", "--store", store, "--feature-set", "cr", "--bootstrap", 0)
    lacking_train = [f"{splits[i]}/{ids[i]}" for i in lacking if splits[i] == "train"]
    assert r.exit_code == 2 and "failed" in r.output and lacking_train[0] in r.output

    # 2. the missing rows arrive in a further shard: the other files need --overwrite
    cr2 = write_clip_retrieval(tmp_path / "cr2", data, st, feats, np.arange(n), extra=3, seed=2, shards=11)
    r = run("store", "import", cr2, "--store", store, "--feature-set", "cr", "--encoder", "mp-tiny-clip")
    assert r.exit_code == 2 and "already has feature set 'cr'" in r.output and "--overwrite" in r.output
    r = run("store", "import", cr2, "--store", store, "--feature-set", "cr", "--encoder", "mp-tiny-clip", "--overwrite")
    assert r.exit_code == 0 and f"wrote {n} rows" in r.output, r.output

    # 3. RGCL-style per-split .pt dicts: int ids (no zero padding), labels checked, shuffled, extra ids
    for split in ("train", "dev_seen", "test_unseen"):
        rows = rng.permutation(np.flatnonzero(splits == split))
        extra = np.array([90000 + len(rows)])
        torch.save({"ids": torch.tensor(np.concatenate([ids[rows].astype(np.int64), extra])),
                    "img_feats": torch.from_numpy(np.vstack([feats["image_embed"][rows], np.ones((1, 32))])).float(),
                    "text_feats": torch.from_numpy(np.vstack([feats["text_embed"][rows], np.ones((1, 32))])).float(),
                    "labels": torch.tensor(np.concatenate([labels[rows], [1]]))}, tmp_path / f"{split}.pt")
    pts = [tmp_path / f"{s}.pt" for s in ("train", "dev_seen", "test_unseen")]
    r = run("store", "import", *pts, "--store", store, "--feature-set", "rgcl")
    assert r.exit_code == 0, r.output
    assert f"ids: {n} of {n} memes matched" in r.output and "3 extra" in r.output
    assert "'labels' agrees with the store" in r.output and "within the split each file is named after" in r.output

    # heads and the leakage report see the same numbers
    fusion = {s: train(store, "fusion", "--image", f"{s}/{a}", "--text", f"{s}/{b}", "--fusion", "concat", "--hidden", 16)
              for s, a, b in ((name, *ARRAYS), ("cr", *ARRAYS), ("rgcl", "img_feats", "text_feats"))}
    assert fusion[name] == fusion["cr"] == fusion["rgcl"] and "dev_seen" in fusion[name]
    retrieval = {s: train(store, "retrieval", "--feature-set", f"{s}:{a},{b}")
                 for s, a, b in ((name, *ARRAYS), ("cr", *ARRAYS), ("rgcl", "img_feats", "text_feats"))}
    assert retrieval[name] == retrieval["cr"] == retrieval["rgcl"]
    base = leakage(data, store, name, tmp_path / "leak-native")
    assert base == leakage(data, store, "cr", tmp_path / "leak-cr")
    assert base == leakage(data, store, "rgcl", tmp_path / "leak-rgcl", "img_feats", "text_feats")
    assert base[0]["summary"], base  # the planted near-duplicates are found


def test_reimport_is_a_noop_and_info_shows_the_provenance(native, tmp_path):
    data, native_store, name, feats = native
    store = tmp_path / "s.h5"
    shutil.copy(native_store, store)
    with FeatureStore.open(store) as st:
        cr = write_clip_retrieval(tmp_path / "cr", data, st, feats, np.arange(st.n))
    args = ("store", "import", cr, "--store", store, "-f", "cr", "--encoder", "ViT-B-32", "--weights", "openai",
            "--preprocessing", "224 px center crop")
    assert run(*args).exit_code == 0
    before = sha(store)
    r = run(*args)
    assert r.exit_code == 0 and "nothing to write" in r.output and sha(store) == before
    info = run("store", "info", store)
    assert "imported" in info.output and "img_emb_0.npy" in info.output and "224 px center crop" in info.output
    with FeatureStore.open(store) as st:
        prov = st.provenance("cr")
    files = prov["import"]["files"]
    assert prov["encoder"] == "ViT-B-32" and prov["weights"] == "openai"
    assert {f["sha256"] for f in files} == {sha(p) for p in cr.rglob("*") if p.is_file()}
    assert all(f["size"] > 0 for f in files) and prov["import"]["imported"]
    assert run(*args[:-1], "other text").exit_code == 2  # another declared provenance: --overwrite needed


def test_export_to_a_datasets_folder_round_trips(native, tmp_path):
    data, native_store, name, feats = native
    out = tmp_path / "hf"
    r = run("store", "export", native_store, "-f", name, "--to", out)
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} == {"data-00000-of-00001.arrow", "dataset_info.json", "state.json"}
    store = tmp_path / "s.h5"
    shutil.copy(native_store, store)
    for fmt, path in (("hf-datasets", out), ("parquet", tmp_path / "e.parquet"), ("npz", tmp_path / "e.npz")):
        if path.suffix:
            assert run("store", "export", native_store, "-f", name, "--to", path).exit_code == 0
        r = run("store", "import", path, "--store", store, "-f", f"back-{fmt}", "--dtype", "float16")
        assert r.exit_code == 0 and "ids from 'id'" in r.output and f"source: {fmt}" in r.output, r.output
        assert "'label' agrees with the store" in r.output
        with FeatureStore.open(store) as st:
            assert st.arrays(f"back-{fmt}") == st.arrays(name)  # shapes, modalities, dtypes (uint8 text_truncated)
            for a in st.arrays(name):
                np.testing.assert_array_equal(st.read(f"back-{fmt}", a), st.read(name, a))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    r = run("store", "export", native_store, "-f", name, "--to", tmp_path / "full")
    assert r.exit_code == 2 and "holding other files" in r.output and (tmp_path / "full" / "keep.txt").exists()
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_from_disk(str(out))
    with FeatureStore.open(native_store) as st:
        assert ds["id"] == st.ids.tolist()
        np.testing.assert_array_equal(np.array(ds["image_embed"], dtype=np.float16), st.read(name, "image_embed"))
