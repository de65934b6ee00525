"""`memeprobe store import`: every layout, id normalisation, and bad imports refused in one line naming the file
and the ids, with the store left byte for byte as it was."""
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from memeprobe.cli import main
from memeprobe.data.records import Dataset, Meme
from memeprobe.store import DONE, FeatureStore

N, D = 40, 6


def run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


@pytest.fixture
def store(tmp_path):
    """HM-like: zero-padded ids, dev_seen/dev_unseen share ids 00030-00034 (the same memes), images img/ID.png."""
    memes = []
    for i in range(N):
        split = "train" if i < 30 else "dev_seen" if i < 35 else "dev_unseen"
        k = i if i < 35 else i - 5
        memes.append(Meme(f"{k:05d}", split, f"text {k}", f"img/{k:05d}.png", k % 2))
    path = tmp_path / "s.h5"
    FeatureStore.create(path, Dataset(tmp_path, "hateful_memes", memes, binary_name="hateful")).close()
    return path


def unique_ids(n=35):
    return [f"{k:05d}" for k in range(n)]


def vectors(n=35, d=D, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stored(store, name, array):
    """The stored rows per meme id (dev_seen/dev_unseen rows of one id must agree)."""
    with FeatureStore.open(store) as st:
        values = st.read(name, array, check=True)
        done = st.done(name, [array])
        out = {}
        for i, v, ok in zip(st.ids, values, done):
            if ok:
                assert i not in out or np.array_equal(out[i], v)
                out[i] = v
        return out


def check_values(store, name, array, ids, values):
    got = stored(store, name, array)
    assert set(got) == set(ids)
    for i, v in zip(ids, values):
        np.testing.assert_array_equal(got[i], v.astype(np.float16))


def test_npy_with_an_ids_file_matches_image_file_names(store, tmp_path):
    ids, img, txt = unique_ids(), vectors(), vectors(d=4, seed=1)
    order = np.random.default_rng(0).permutation(35)
    np.save(tmp_path / "image_features.npy", img[order])
    np.save(tmp_path / "text_features.npy", txt[order])
    (tmp_path / "ids.txt").write_text("\n".join(f"{ids[i]}.png" for i in order) + "\n")
    r = run("store", "import", tmp_path / "image_features.npy", tmp_path / "text_features.npy", "--ids",
            tmp_path / "ids.txt", "--store", store, "-f", "npy")
    assert r.exit_code == 0, r.output
    assert "ids: 40 of 40 memes matched" in r.output  # the shared dev ids get the same row
    check_values(store, "npy", "image_features", [ids[i] for i in order], img[order])
    check_values(store, "npy", "text_features", [ids[i] for i in order], txt[order])
    with FeatureStore.open(store) as st:
        assert st.arrays("npy")["text_features"].modality == "text" and st.verify() == []
    r = run("store", "import", tmp_path / "image_features.npy", "--store", store, "-f", "x")
    assert r.exit_code == 2 and "--ids" in r.output


def test_npz_and_id_pattern_and_id_column(store, tmp_path):
    ids, img = unique_ids(), vectors()
    np.savez(tmp_path / "f.npz", key=np.array([f"hm_{i}_x" for i in ids]), other=np.arange(35),
             clip_image=img, labels=np.array([int(i) % 2 for i in ids]))
    r = run("store", "import", tmp_path / "f.npz", "--store", store, "-f", "z", "--id-pattern", r"hm_(\d+)_")
    assert r.exit_code == 0 and "ids from 'key'" in r.output and "'labels' agrees" in r.output, r.output
    check_values(store, "z", "clip_image", ids, img)
    r = run("store", "import", tmp_path / "f.npz", "--store", store, "-f", "z2", "--id-column", "other")
    assert r.exit_code == 0 and "ids from 'other'" in r.output, r.output  # 0..34 name 00000..00034
    r = run("store", "import", tmp_path / "f.npz", "--store", store, "-f", "z3", "--id-column", "nope")
    assert r.exit_code == 2 and "no id column 'nope'" in r.output


def test_parquet_list_and_fixed_size_list_columns(store, tmp_path):
    ids, img, txt = unique_ids(), vectors(), vectors(d=3, seed=2)
    table = pa.table({"image": [f"img/{i}.png" for i in ids], "note": [None if k == 3 else "x" for k in range(35)],
                      "vision": pa.FixedSizeListArray.from_arrays(pa.array(img.reshape(-1)), D),
                      "caption_vec": [list(map(float, t)) for t in txt]})
    pq.write_table(table.slice(0, 20), tmp_path / "part-1.parquet")
    pq.write_table(table.slice(20), tmp_path / "part-2.parquet")
    folder = tmp_path / "pq"
    folder.mkdir()
    for p in tmp_path.glob("part-*.parquet"):
        p.rename(folder / p.name)
    r = run("store", "import", folder, "--store", store, "-f", "p", "--array", "vision=image_embed",
            "--array", "caption_vec=text_embed")
    assert r.exit_code == 0 and "note (not an id column" in r.output, r.output  # a column with nulls is no id
    check_values(store, "p", "image_embed", ids, img)
    check_values(store, "p", "text_embed", ids, txt)


def test_datasets_folder_with_splits(store, tmp_path):
    datasets = pytest.importorskip("datasets")
    ids, img = unique_ids(), vectors()
    train = datasets.Dataset.from_dict({"id": ids[:30], "img_emb": img[:30].tolist()})
    dev = datasets.Dataset.from_dict({"id": ids[30:], "img_emb": img[30:].tolist()})
    datasets.DatasetDict({"train": train, "dev_seen": dev}).save_to_disk(str(tmp_path / "hf"))
    r = run("store", "import", tmp_path / "hf", "--store", store, "-f", "hf")
    assert r.exit_code == 0 and "ids: 35 of 40 memes matched" in r.output, r.output  # dev_unseen: not in the source
    assert "within the split named by the source's 'split' column" in r.output
    with FeatureStore.open(store) as st:
        assert (st.status("hf", "image")[st.rows(["dev_unseen"])] != DONE).all()


def test_pt_lists_of_tensors_and_string_ids(store, tmp_path):
    ids, img = unique_ids(), vectors()
    torch.save({"image_ids": [f"img/{i}.png" for i in ids], "img": [torch.from_numpy(v) for v in img],
                "projection": torch.ones(D, D), "epoch": 3}, tmp_path / "f.pt")
    r = run("store", "import", tmp_path / "f.pt", "--store", store, "-f", "t")
    assert r.exit_code == 0 and "ignored: " in r.output and "projection" in r.output, r.output
    check_values(store, "t", "img", ids, img)


class NotATensor:
    pass


def bad_imports(tmp_path):
    """(what, files to import, extra options, text the one-line error must contain)."""
    ids, img = unique_ids(), vectors()
    cases = []

    def cr(name, shards):
        folder = tmp_path / name
        for d in ("img_emb", "metadata"):
            (folder / d).mkdir(parents=True)
        for k, (rows, values) in enumerate(shards):
            np.save(folder / "img_emb" / f"img_emb_{k}.npy", values)
            pq.write_table(pa.table({"image_path": [f"/x/img/{ids[r]}.png" for r in rows]}),
                           folder / "metadata" / f"metadata_{k}.parquet")
        return folder

    wrong_dim = cr("dim", [(range(20), img[:20]), (range(20, 35), vectors(15, D + 1))])
    cases.append(("wrong dimension", [wrong_dim], [], ["img_emb_1.npy", "wrong dimension"]))
    nan = img.copy()
    nan[[3, 7]] = np.nan
    cases.append(("NaN rows", [cr("nan", [(range(35), nan)])], [], ["img_emb_0.npy", "NaN/inf", "00003", "00007"]))
    mixed = cr("mixed", [(range(20), img[:20]), (range(20, 35), img[20:].astype(np.float16))])
    cases.append(("mixed dtypes", [mixed], [], ["img_emb_1.npy", "mixed dtypes"]))
    cases.append(("beyond float16", [cr("big", [(range(35), img * 1e6)])], [], ["float16's range", "--dtype float32"]))
    torch.save({"ids": ids + ["00004"], "img_feats": torch.from_numpy(np.vstack([img, img[:1]]))}, tmp_path / "dup.pt")
    cases.append(("duplicate ids", [tmp_path / "dup.pt"], [], ["dup.pt", "duplicate ids", "'00004'"]))
    torch.save({"ids": ids[:15], "img_feats": torch.from_numpy(img[:15])}, tmp_path / "few.pt")
    cases.append(("< 50 % matched", [tmp_path / "few.pt"], [], ["few.pt", "15 of the 40 memes", "below 50 %"]))
    with open(tmp_path / "obj.pt", "wb") as f:
        pickle.dump({"ids": ids, "img_feats": NotATensor()}, f, protocol=2)
    cases.append(("a pickle that is not tensors", [tmp_path / "obj.pt"], [], ["obj.pt", "weights_only=True", "NotATensor"]))
    torch.save({"ids": ids, "img_feats": torch.from_numpy(img), "labels": torch.tensor([1 - int(i) % 2 for i in ids])},
               tmp_path / "labels.pt")
    cases.append(("labels disagree", [tmp_path / "labels.pt"], [], ["labels.pt", "disagrees with the store's labels"]))
    ragged = pa.table({"id": ids, "emb_image": [list(map(float, v[: D - (k == 9)])) for k, v in enumerate(img)]})
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    cases.append(("ragged list column", [tmp_path / "ragged.parquet"], [], ["ragged.parquet", "'00009'"]))
    np.savez(tmp_path / "mystery.npz", ids=np.array(ids), emb=img)
    cases.append(("unknown modality", [tmp_path / "mystery.npz"], [], ["mystery.npz", "'emb'", "--modality emb=image"]))
    np.save(tmp_path / "short.npy", img[:30])
    (tmp_path / "ids.txt").write_text("\n".join(ids))
    cases.append(("rows vs ids", [tmp_path / "short.npy"], ["--ids", tmp_path / "ids.txt"], ["short.npy", "35 ids"]))
    return cases


def test_bad_imports_fail_in_one_line_and_leave_the_store_untouched(store, tmp_path):
    before = sha(store)
    for what, files, options, needles in bad_imports(tmp_path):
        r = run("store", "import", *files, "--store", store, "-f", "bad", *options)
        lines = r.output.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (what, r.output)
        for needle in needles:
            assert needle in lines[0], (what, needle, lines[0])
        assert sha(store) == before, what
    with FeatureStore.open(store) as st:
        assert st.feature_sets() == []


def test_modality_and_overwrite_options(store, tmp_path):
    ids, img = unique_ids(), vectors()
    np.savez(tmp_path / "a.npz", ids=np.array(ids), emb=img)
    r = run("store", "import", tmp_path / "a.npz", "--store", store, "-f", "m", "--modality", "emb=text",
            "--dtype", "float32")
    assert r.exit_code == 0, r.output
    with FeatureStore.open(store) as st:
        assert st.arrays("m")["emb"].modality == "text" and st.arrays("m")["emb"].dtype == "float32"
        prov = st.provenance("m")
    assert json.dumps(prov)  # JSON-able, and keeps the recipe
    assert prov["preprocessing"]["import"]["id_column"] == "ids"
    np.savez(tmp_path / "b.npz", ids=np.array(ids), emb=img + 1)
    r = run("store", "import", tmp_path / "b.npz", "--store", store, "-f", "m", "--modality", "emb=text",
            "--dtype", "float32")
    assert r.exit_code == 2 and "a.npz" in r.output and "b.npz" in r.output
    r = run("store", "import", tmp_path / "b.npz", "--store", store, "-f", "m", "--modality", "emb=text",
            "--dtype", "float32", "--overwrite")
    assert r.exit_code == 0, r.output
    check_values_f32 = stored(store, "m", "emb")
    np.testing.assert_array_equal(check_values_f32["00001"], img[1] + 1)


def test_an_id_naming_two_different_memes_is_left_unmatched(tmp_path):
    memes = [Meme(f"{k}", split, f"{split} text {k}", None, k % 2) for split in ("train", "test") for k in range(10)]
    memes += [Meme(f"t{k}", "train", f"only {k}", None, k % 2) for k in range(10)]
    path = tmp_path / "g.h5"
    FeatureStore.create(path, Dataset(tmp_path, "generic", memes, binary_name="label")).close()
    ids = [f"t{k}" for k in range(10)] + [str(k) for k in range(10)]
    torch.save({"ids": ids, "img_feats": torch.from_numpy(vectors(20))}, tmp_path / "all.pt")
    r = run("store", "import", tmp_path / "all.pt", "--store", path, "-f", "a", "--min-match", "0.3")
    assert r.exit_code == 0 and "ids: 10 of 30 memes matched" in r.output and "10 naming several memes" in r.output
    torch.save({"ids": torch.arange(10.0), "img_feats": torch.from_numpy(vectors(10))}, tmp_path / "train.pt")
    torch.save({"ids": torch.arange(10.0), "img_feats": torch.from_numpy(vectors(10, seed=1))}, tmp_path / "test.pt")
    r = run("store", "import", tmp_path / "train.pt", tmp_path / "test.pt", "--store", path, "-f", "b",
            "--min-match", "0.3")  # float ids; each file's split from its name tells the two memes apart
    assert r.exit_code == 0 and "ids: 20 of 30 memes matched" in r.output, r.output
    with FeatureStore.open(path) as st:
        for split, seed in (("train", 0), ("test", 1)):
            row = int(np.flatnonzero((st.ids == "3") & (st.splits == split))[0])
            np.testing.assert_array_equal(st.read("b", "img_feats", [row])[0], vectors(10, seed=seed)[3].astype(np.float16))


def test_data_creates_the_store_and_a_refused_import_leaves_none(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = ["id,text,image,label"] + [f"m{k},text {k},img/m{k}.jpg,{k % 2}" for k in range(20)]
    (data / "train.csv").write_text("\n".join(rows) + "\n")
    np.savez(tmp_path / "f.npz", image=np.array([f"/x/img/m{k}.jpg" for k in range(20)]), image_emb=vectors(20))
    store = tmp_path / "new.h5"
    r = run("store", "import", tmp_path / "f.npz", "--store", store, "-f", "e")
    assert r.exit_code == 2 and "does not exist" in r.output and "--data" in r.output
    np.savez(tmp_path / "bad.npz", image=np.array([f"/x/img/m{k}.jpg" for k in range(20)]),
             image_emb=np.full((20, D), np.nan))
    r = run("store", "import", tmp_path / "bad.npz", "--store", store, "-f", "e", "--data", data)
    assert r.exit_code == 2 and "NaN/inf" in r.output and not store.exists()
    r = run("store", "import", tmp_path / "f.npz", "--store", store, "-f", "e", "--data", data)
    assert r.exit_code == 0 and "ids: 20 of 20 memes matched" in r.output, r.output
    check_values(store, "e", "image_emb", [f"m{k}" for k in range(20)], vectors(20))
