"""The notebook API (issue 12 §3): memeprobe.open_store, Store.load with the CLI's feature syntax,
Store.to_pandas, memeprobe.load_dataset with the CLI's option names."""
import csv

import h5py
import numpy as np
import pytest

import memeprobe
from memeprobe.data import load_dataset
from memeprobe.data.records import Dataset, Meme
from memeprobe.errors import ConfigError, DatasetError, MemeprobeError, OutputError, StoreError
from memeprobe.store import ArraySpec, FeatureStore
from tests.test_store import ARRAYS, _dataset, _values


def _store(path, multilabel=False):
    with FeatureStore.create(path, _dataset(multilabel=multilabel)) as st:
        st.add_feature_set("f", ARRAYS, {"encoder": "e"})
        rows = np.arange(st.n)
        st.write_rows("f", rows, {a: _values(st.n, ARRAYS[a], i) for i, a in enumerate(ARRAYS)
                                  if ARRAYS[a].modality == "image"}, "image")
        st.write_rows("f", rows, {"text_embed": _values(st.n, ARRAYS["text_embed"], 9)}, "text")
    return path


def test_load_takes_the_cli_feature_syntax(tmp_path):
    path = _store(tmp_path / "s.h5")
    with memeprobe.open_store(path) as store, FeatureStore.open(path) as st:
        f = store.load("f/text_embed", splits=["train"])
        X, ids, y = st.load("f", ["text_embed"], splits=["train"])
        np.testing.assert_array_equal(f.X, X)
        assert f.ids.tolist() == ids.tolist() and f.y.tolist() == y.tolist()
        both = store.load(["f:image_regions", "f/text_embed"], splits="dev_seen")  # concatenated in order
        assert both.blocks == [6, 4] and both.X.shape == (10, 10)
        np.testing.assert_array_equal(both.X[:, 6:], st.load("f", ["text_embed"], splits="dev_seen")[0])
        assert store.load("f").blocks == [6, 4]  # SET alone: its *_embed arrays, as on the command line
        with pytest.raises(MemeprobeError, match="has no feature set 'g'"):
            store.load("g/text_embed")
        with pytest.raises(MemeprobeError, match="has no array 'nope'"):
            store.load("f:nope")
        assert store.feature_sets() == ["f"] and store.splits() == ["train", "dev_seen", "dev_unseen", "test_unseen"]


def test_open_store_is_read_only_and_checks_rows(tmp_path):
    path = _store(tmp_path / "s.h5")
    store = memeprobe.open_store(path)
    assert not store.store.writable
    with pytest.raises(MemeprobeError, match="read-only"):
        store.store.write_rows("f", [0], {"text_embed": np.ones((1, 4))}, "text")
    store.close()
    with h5py.File(path, "r+") as f:
        f["features/f/text_embed"][4, 2] += 1.0
    with memeprobe.open_store(path) as store, pytest.raises(StoreError, match="train/00004"):
        store.load("f/text_embed", splits="train")


def test_to_pandas_has_the_meme_table_and_chosen_features(tmp_path):
    path = _store(tmp_path / "s.h5", multilabel=True)
    with memeprobe.open_store(path) as store, FeatureStore.open(path) as st:
        df = store.to_pandas(features=["f/text_embed"], splits=["train", "test_unseen"])
        rows = st.rows(["train", "test_unseen"])
        assert list(df.columns) == ["id", "split", "text", "image", "label", "label:a", "label:b", "label:c",
                                    "f/text_embed/0", "f/text_embed/1", "f/text_embed/2", "f/text_embed/3"]
        assert df["id"].tolist() == st.ids[rows].tolist() and df["text"].tolist() == st.texts[rows].tolist()
        np.testing.assert_array_equal(df.filter(like="f/text_embed/").to_numpy(), st.read("f", "text_embed", rows))
        unlabeled = df["split"] == "test_unseen"
        assert df.loc[unlabeled, "label:a"].isna().all() and df["label"].isna().all()  # no binary label here
        np.testing.assert_array_equal(df.loc[~unlabeled, ["label:a", "label:b", "label:c"]].to_numpy(int),
                                      st.labels[rows][~unlabeled.to_numpy()])
        table = store.to_pandas()
        assert len(table) == st.n and table.columns[-1] == "label:c"


def test_load_dataset_passes_the_cli_options_through(tmp_path):
    path = tmp_path / "memes.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["key", "caption", "split", "target"])
        for i in range(6):
            w.writerow([f"m{i}", f"text {i}", "train" if i < 4 else "dev", i % 2])
    opts = dict(format="generic", id_col="key", text_col="caption", label_col="target")
    ds = memeprobe.load_dataset(path, **opts)
    assert [m.id for m in ds.memes] == [f"m{i}" for i in range(6)] and [m.label for m in ds.memes] == [0, 1] * 3
    assert ds.fingerprint() == load_dataset(path, **opts).fingerprint()
    with pytest.raises(MemeprobeError, match="nope"):
        memeprobe.load_dataset(path, format="generic", id_col="nope")


def test_the_store_raises_the_specific_error_class(tmp_path):
    """``except StoreError`` catches what the store lacks; a bad reference or option is a ConfigError, a path that
    cannot take a new store an OutputError, a dataset the meme table cannot hold a DatasetError."""
    path = _store(tmp_path / "s.h5")
    with pytest.raises(StoreError, match="does not exist"):
        FeatureStore.open(tmp_path / "none.h5")
    with pytest.raises(OutputError, match="already exists"):
        FeatureStore.create(path, _dataset())
    memes = [Meme(id="1", split="train", text="a"), Meme(id="1", split="train", text="b")]
    with pytest.raises(DatasetError, match="id 1 appears twice in split train"):
        FeatureStore.create(tmp_path / "d.h5", Dataset(tmp_path, "hateful_memes", memes))
    with pytest.raises(ConfigError, match="dtype 'complex64' is not supported"):
        ArraySpec((2,), "text", "complex64")
    with memeprobe.open_store(path) as store, FeatureStore.open(path) as st:
        with pytest.raises(ConfigError, match="bad feature reference 'f:'"):
            store.load("f:")
        with pytest.raises(StoreError, match=r"has no feature set 'ff' \(did you mean 'f'\?\)"):
            store.load("ff")
        with pytest.raises(StoreError, match=r"has no split nope \(it has: train, dev_seen, dev_unseen, test_unseen\)"):
            store.load("f", splits="nope")
        with pytest.raises(StoreError, match="has no split nope"):  # the one split check, also below the loader
            st.load("f", ["text_embed"], splits=["nope"])
        with pytest.raises(ConfigError, match="unknown target 'bogus'"):
            st.load("f", ["text_embed"], target="bogus")
        with pytest.raises(ConfigError, match="missing must be 'error' or 'drop'"):
            st.select_rows("f", ["text_embed"], missing="skip")
        with pytest.raises(StoreError, match="is open read-only"):
            st.mark_failed("f", [0], "text", "x")


def test_the_store_and_the_loader_share_one_target_rule(tmp_path):
    path = _store(tmp_path / "m.h5", multilabel=True)
    with memeprobe.open_store(path) as store, FeatureStore.open(path) as st:
        for target in ("auto", "labels", "all"):
            y = st.load("f", ["text_embed"], target=target)[2]
            assert y.dtype == np.int8 and store.load("f/text_embed", target=target).y.tolist() == y.tolist()
        both = st.load("f", ["text_embed"], target="all")[2]  # no binary label: no row labeled in both parts
        assert both.shape == (st.n, 4) and (both == -1).all()
    with FeatureStore.open(_store(tmp_path / "b.h5")) as st, pytest.raises(ConfigError, match="no multi-label classes"):
        st.load("f", ["text_embed"], target="labels")
