"""FeatureStore API, bad input and the `memeprobe store` commands, on small datasets built in the test."""
import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from memeprobe.cli import main
from memeprobe.data.records import Dataset, Meme
from memeprobe.errors import MemeprobeError
from memeprobe.store import DONE, FAILED, SCHEMA_VERSION, TODO, ArraySpec, FeatureStore

SPLITS = ("train", "dev_seen", "dev_unseen", "test_unseen")
ARRAYS = {"image_embed": ArraySpec((6,), "image"), "image_regions": ArraySpec((2, 3), "image"),
          "text_embed": ArraySpec((4,), "text", "float32")}


def _dataset(n=40, multilabel=False, root="/data/hm"):
    """HM-like: ids repeat across dev_seen/dev_unseen, test_unseen unlabeled, some memes without image."""
    memes = []
    for i in range(n):
        split = SPLITS[i % 4]
        labeled = split != "test_unseen"
        memes.append(Meme(
            id=f"{i // 4 if split.startswith('dev') else i:05d}", split=split, text=f"meme text {i} é",
            image=None if i % 7 == 3 else f"img/{i:05d}.png",
            label=(i % 2 if labeled else None) if not multilabel else None,
            labels=((i % 2, (i // 2) % 2, 1) if labeled else None) if multilabel else None))
    return Dataset(Path(root), "hateful_memes", memes, label_names=("a", "b", "c") if multilabel else (),
                   binary_name=None if multilabel else "hateful")


def _values(n_rows, spec, seed):
    return np.random.default_rng(seed).normal(size=(n_rows, *spec.shape))


@pytest.fixture
def store(tmp_path):
    st = FeatureStore.create(tmp_path / "s.h5", _dataset())
    yield st
    st.close()


def test_meme_table_round_trips(tmp_path):
    ds = _dataset()
    with FeatureStore.create(tmp_path / "s.h5", ds) as st:
        pass
    with FeatureStore.open(tmp_path / "s.h5") as st:
        assert st.n == len(ds.memes)
        assert st.ids.tolist() == [m.id for m in ds.memes]
        assert st.splits.tolist() == [m.split for m in ds.memes]
        assert st.texts.tolist() == [m.text for m in ds.memes]
        assert st.images.tolist() == [m.image or "" for m in ds.memes]
        assert st.label.dtype == np.int8 and st.label.tolist() == [-1 if m.label is None else m.label for m in ds.memes]
        assert st.labels.shape == (st.n, 0) and st.label_names == () and st.binary_name == "hateful"
        assert st.split_names() == list(SPLITS)
        rows = st.rows(["dev_seen", "dev_unseen"])
        assert [ds.memes[r].split for r in rows] == [m.split for m in ds.memes if m.split.startswith("dev")]
        assert st.rows().tolist() == list(range(st.n))
        with pytest.raises(MemeprobeError, match="no split nope"):
            st.rows(["nope"])
        assert st.feature_sets() == [] and st.verify() == []


def test_multilabel_table_and_target(tmp_path):
    ds = _dataset(multilabel=True)
    with FeatureStore.create(tmp_path / "m.h5", ds) as st:
        assert st.label_names == ("a", "b", "c") and st.binary_name is None
        assert (st.label == -1).all()
        assert st.labels.tolist() == [list(m.labels) if m.labels else [-1, -1, -1] for m in ds.memes]
        st.add_feature_set("f", {"text_embed": ArraySpec((3,), "text")}, {"encoder": "t"})
        st.write_rows("f", np.arange(st.n), {"text_embed": np.ones((st.n, 3))}, "text")
        x, ids, y = st.load("f", ["text_embed"], splits=["train"])
        assert y.shape == (len(ids), 3) and y.dtype == np.int8
        assert y.tolist() == [list(m.labels) for m in ds.memes if m.split == "train"]
        with pytest.raises(MemeprobeError, match="unknown target 'bogus'; choose one of auto, label, labels, all"):
            st.load("f", ["text_embed"], target="bogus")


def test_write_load_roundtrip_any_row_order(store):
    store.add_feature_set("clip-x", ARRAYS, {"encoder": "clip:x", "weights_sha256": "ab" * 32})
    n = store.n
    rows = np.random.default_rng(0).permutation(n)
    image = {a: _values(n, s, i) for i, (a, s) in enumerate(ARRAYS.items()) if s.modality == "image"}
    text = _values(n, ARRAYS["text_embed"], 9)
    for part in np.array_split(rows, 5):  # unsorted, non-contiguous batches
        store.write_rows("clip-x", part, {a: v[part] for a, v in image.items()}, "image")
    store.write_rows("clip-x", np.arange(n), {"text_embed": text}, "text")
    assert (store.status("clip-x", "image") == DONE).all()
    got = store.read("clip-x", "image_regions")
    assert got.dtype == np.float16 and got.shape == (n, 2, 3)
    np.testing.assert_array_equal(got, image["image_regions"].astype(np.float16))
    np.testing.assert_array_equal(store.read("clip-x", "image_embed", [5, 1, 5]),
                                  image["image_embed"][[5, 1, 5]].astype(np.float16))
    x, ids, y = store.load("clip-x", ["image_embed", "image_regions", "text_embed"], splits=["dev_seen", "train"])
    sel = store.rows(["train", "dev_seen"])
    want = np.hstack([image["image_embed"][sel].astype(np.float16), image["image_regions"][sel].astype(np.float16)
                      .reshape(len(sel), 6), text[sel].astype(np.float32)]).astype(np.float32)
    assert x.dtype == np.float32 and x.shape == (len(sel), 16)
    np.testing.assert_array_equal(x, want)
    assert ids.tolist() == store.ids[sel].tolist() and y.tolist() == store.label[sel].tolist()
    assert store.load("clip-x", ["text_embed"], splits=["test_unseen"])[2].tolist() == [-1] * 10
    x2, ids2, y2, rows2 = store.load_rows("clip-x", ["text_embed"], splits=["dev_unseen"])
    assert rows2.tolist() == store.rows(["dev_unseen"]).tolist()
    np.testing.assert_array_equal(x2, text[rows2].astype(np.float32))


def test_missing_rows_error_or_drop_and_failures(store):
    store.add_feature_set("f", ARRAYS, {"encoder": "e"})
    img = {a: _values(20, ARRAYS[a], 1) for a in ("image_embed", "image_regions")}
    store.write_rows("f", np.arange(20), img, "image")
    store.mark_failed("f", [25, 21], "image", ["image missing: img/00025.png", "x" * 1000])
    with pytest.raises(MemeprobeError, match=r"feature set 'f': 20 of 40 selected rows are not done \(image: 18 todo, 2 failed\)"):
        store.load("f", ["image_embed"])
    x, ids, y, rows = store.load_rows("f", ["image_embed"], missing="drop")
    assert rows.tolist() == list(range(20)) and x.shape == (20, 6)
    with pytest.raises(MemeprobeError, match=r"10 of 10 selected rows are not done \(image: 5 todo; text: 10 todo\)"):
        store.load("f", ["image_embed", "text_embed"], splits=["train"])
    fails = store.failures("f")
    assert [(r, m) for r, m, _ in fails] == [(21, "image"), (25, "image")]
    assert fails[1][2] == "image missing: img/00025.png" and len(fails[0][2].encode()) <= 256
    store.write_rows("f", [21], {a: _values(1, ARRAYS[a], 2) for a in img}, "image")
    assert [r for r, _, _ in store.failures("f")] == [25]
    assert store.status("f", "image")[[20, 21, 25]].tolist() == [TODO, DONE, FAILED]


def test_rewriting_done_rows_replaces_values(store):
    store.add_feature_set("f", {"v": ArraySpec((3,), "text")}, {"encoder": "e"})
    store.write_rows("f", [0, 1, 2], {"v": np.zeros((3, 3))}, "text")
    store.write_rows("f", [2, 1], {"v": np.array([[2.0] * 3, [1.0] * 3])}, "text")
    assert store.read("f", "v", [0, 1, 2])[:, 0].tolist() == [0.0, 1.0, 2.0]


def test_write_rows_rejects_bad_values_and_marks_nothing(store):
    store.add_feature_set("f", ARRAYS, {"encoder": "e"})
    ok = {"text_embed": np.ones((2, 4))}
    with pytest.raises(MemeprobeError, match="needs exactly the arrays"):
        store.write_rows("f", [0, 1], {"image_embed": np.ones((2, 6))}, "image")
    with pytest.raises(MemeprobeError, match=r"shape \(2, 5\), expected \(2, 4\)"):
        store.write_rows("f", [0, 1], {"text_embed": np.ones((2, 5))}, "text")
    with pytest.raises(MemeprobeError, match="NaN/inf"):
        store.write_rows("f", [0, 1], {"text_embed": np.array([[1, 2, 3, np.nan]] * 2)}, "text")
    big = {"image_embed": np.full((1, 6), 1e6), "image_regions": np.ones((1, 2, 3))}
    with pytest.raises(MemeprobeError, match="float16.*float32"):  # overflows float16 to inf
        store.write_rows("f", [3], big, "image")
    with pytest.raises(MemeprobeError, match=r"\[0, 40\)"):
        store.write_rows("f", [0, 40], ok, "text")
    with pytest.raises(MemeprobeError, match="unique"):
        store.write_rows("f", [1, 1], ok, "text")
    with pytest.raises(MemeprobeError, match="no arrays of modality 'audio'"):
        store.write_rows("f", [0], {}, "audio")
    assert (store.status("f", "image") == TODO).all() and (store.status("f", "text") == TODO).all()
    store.write_rows("f", [], {"text_embed": np.zeros((0, 4))}, "text")
    assert store.verify() == []


def test_add_feature_set_resume_identity_and_overwrite(store):
    prov = {"encoder": "clip:ViT-B-32:openai", "weights_sha256": None, "preprocessing": "224 center", "batch": 8}
    store.add_feature_set("clip", ARRAYS, prov)
    store.write_rows("clip", [0, 1], {"text_embed": np.ones((2, 4))}, "text")
    stored = store.provenance("clip")
    assert {k: stored[k] for k in prov} == prov and stored["memeprobe_version"] == "0.1.0"
    assert stored["library_versions"]["h5py"] == metadata.version("h5py") == h5py.__version__
    assert stored["library_versions"]["numpy"] == np.__version__
    store.add_feature_set("clip", ARRAYS, dict(prov, batch=64))  # same identity: resume, a no-op
    assert store.provenance("clip") == stored and store.status("clip", "text")[:3].tolist() == [1, 1, 0]
    with pytest.raises(MemeprobeError, match="already has feature set 'clip' with other arrays or identity"):
        store.add_feature_set("clip", ARRAYS, dict(prov, preprocessing="336 squash"))
    with pytest.raises(MemeprobeError, match="already has feature set"):
        store.add_feature_set("clip", {"image_embed": ArraySpec((7,), "image")}, prov)
    store.add_feature_set("other", {"x": ArraySpec((100,), "image")}, {"encoder": "o"})
    store.write_rows("other", [5], {"x": np.full((1, 100), 3.0)}, "image")
    size = store.path.stat().st_size
    for _ in range(3):
        store.add_feature_set("clip", ARRAYS, dict(prov, preprocessing="336 squash"), overwrite=True)
    assert store.path.stat().st_size <= size * 1.1  # replaced feature sets do not pile up in the file
    assert (store.status("clip", "text") == TODO).all() and store.provenance("clip")["preprocessing"] == "336 squash"
    assert store.read("other", "x", [5])[0, 0] == 3.0 and store.status("other", "image")[5] == DONE
    assert store.feature_sets() == ["clip", "other"] and store.arrays("clip") == ARRAYS
    with pytest.raises(MemeprobeError, match="feature set name"):
        store.add_feature_set("a/b", ARRAYS, {})
    with pytest.raises(MemeprobeError, match="JSON"):
        store.add_feature_set("p", ARRAYS, {"encoder": object()})
    with pytest.raises(MemeprobeError, match="no feature set 'nope'.*clip, other"):
        store.status("nope", "image")


def test_reader_cannot_write_and_writer_lock(tmp_path, store):
    store.add_feature_set("f", ARRAYS, {"encoder": "e"})
    with FeatureStore.open(store.path) as reader:
        with pytest.raises(MemeprobeError, match="read-only"):
            reader.write_rows("f", [0], {"text_embed": np.ones((1, 4))}, "text")
    with pytest.raises(MemeprobeError, match=rf"being written by another process \(pid {os.getpid()}\)"):
        FeatureStore.open_or_create(store.path, _dataset())
    assert Path(str(store.path) + ".lock").read_text().strip() == str(os.getpid())
    store.close()
    with FeatureStore.open_or_create(store.path, _dataset()) as again:  # lock released on close
        assert again.feature_sets() == ["f"]


def test_verify_finds_damage(tmp_path, store):
    store.add_feature_set("f", ARRAYS, {"encoder": "e"})
    store.write_rows("f", [0, 1], {"text_embed": np.ones((2, 4))}, "text")
    store.close()
    with h5py.File(store.path, "r+") as f:
        f["features/f/text_embed"][1] = np.nan  # a done row
        f["features/f/text_embed"][2] = np.inf  # a row not done: not a problem
        f["features/f/_status/image"][3] = 7
        ids = f["memes/id"].asstr()[()]
        ids[1] = ids[5]  # train and dev: rows 1 (dev_seen) and 5 (dev_seen) now share an id
        f["memes/id"][1] = ids[1]
        del f["features/f/image_regions"]
        f["features/f"].create_dataset("image_regions", data=np.zeros((40, 3), np.float16))
    with FeatureStore.open(store.path) as st:
        problems = st.verify()
    text = "\n".join(problems)
    assert "'text_embed': 1 done rows hold NaN/inf" in text
    assert "status 'image' holds values other than 0, 1, 2" in text
    assert "duplicate (split, id): dev_seen/00001" in text
    assert "do not match the stored dataset fingerprint" in text
    assert "array 'image_regions' is stored as (40, 3)" in text
    assert "'text_embed': 1 done rows do not match their checksum (e.g. dev_seen/00001)" in text
    assert len(problems) == 6
    result = CliRunner().invoke(main, ["store", "verify", str(store.path)])
    assert result.exit_code == 1 and "NaN/inf" in result.output and "ok" not in result.output.split()


# ---------------------------------------------------------------- bad input
def test_newer_schema_is_refused(tmp_path, store):
    store.close()
    with h5py.File(store.path, "r+") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    msg = rf"written by a newer memeprobe \(schema {SCHEMA_VERSION + 1} > {SCHEMA_VERSION}.*upgrade memeprobe"
    with pytest.raises(MemeprobeError, match=msg):
        FeatureStore.open(store.path)
    with pytest.raises(MemeprobeError, match=msg):
        FeatureStore.open_or_create(store.path, _dataset())
    result = CliRunner().invoke(main, ["store", "info", str(store.path)])
    assert result.exit_code == 2 and "error: store" in result.output and "Traceback" not in result.output


def test_not_a_store(tmp_path):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = 1
    with pytest.raises(MemeprobeError, match="HDF5 file but not a memeprobe store"):
        FeatureStore.open(plain)
    with h5py.File(plain, "a") as f:
        f.attrs.update({"kind": "memeprobe.store", "schema_version": SCHEMA_VERSION})
    with pytest.raises(MemeprobeError, match="is damaged.*--overwrite"):
        FeatureStore.open(plain)
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(MemeprobeError, match="not a readable HDF5 file"):
        FeatureStore.open(text)
    with pytest.raises(MemeprobeError, match="does not exist"):
        FeatureStore.open(tmp_path / "absent.h5")
    with pytest.raises(MemeprobeError, match="not a readable HDF5 file"):
        FeatureStore.open_or_create(text, _dataset())
    assert text.read_text() == "hello"  # left untouched without overwrite
    with FeatureStore.open_or_create(text, _dataset(), overwrite=True) as st:
        assert st.n == 40


def test_store_of_another_dataset_is_refused(tmp_path, store):
    store.add_feature_set("f", ARRAYS, {"encoder": "e"})
    store.close()
    other = _dataset(n=36)
    with pytest.raises(MemeprobeError) as e:
        FeatureStore.open_or_create(store.path, other)
    msg = str(e.value)
    assert _dataset().fingerprint()[:12] in msg and other.fingerprint()[:12] in msg
    assert "40 memes" in msg and "36 memes" in msg and "--store" in msg and "--overwrite" in msg
    with FeatureStore.open(store.path) as st:
        assert st.n == 40 and st.feature_sets() == ["f"]  # untouched
    edited = Dataset(Path("/data/hm"), "hateful_memes", [m if i != 3 else Meme(m.id, m.split, m.text + "!", m.image,
                     m.label) for i, m in enumerate(_dataset().memes)], binary_name="hateful")
    with pytest.raises(MemeprobeError, match="holds another dataset"):
        FeatureStore.open_or_create(store.path, edited)
    with FeatureStore.open_or_create(store.path, other, overwrite=True) as st:
        assert st.n == 36 and st.feature_sets() == []
    with pytest.raises(MemeprobeError, match="already exists"):
        FeatureStore.create(store.path, other)


def test_bad_datasets_are_refused_before_writing(tmp_path):
    with pytest.raises(MemeprobeError, match="no memes"):
        FeatureStore.create(tmp_path / "e.h5", Dataset(Path("/x"), "generic", []))
    dup = Dataset(Path("/x"), "generic", [Meme("1", "train", "a"), Meme("1", "train", "b")])
    with pytest.raises(MemeprobeError, match="id 1 appears twice in split train"):
        FeatureStore.create(tmp_path / "d.h5", dup)
    assert list(tmp_path.iterdir()) == []


def test_read_only_paths(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MemeprobeError, match="cannot write store .*choose a writable --store path"):
        FeatureStore.create(blocker / "s.h5", _dataset())
    path = tmp_path / "ro" / "s.h5"
    path.parent.mkdir()
    FeatureStore.create(path, _dataset()).close()
    path.chmod(0o444)
    with FeatureStore.open(path) as st:  # readers need no write access (no lock file either)
        assert st.n == 40
    if os.geteuid() != 0:  # root ignores permission bits
        path.parent.chmod(0o555)
        try:
            with pytest.raises(MemeprobeError, match="cannot write store"):
                FeatureStore.open_or_create(tmp_path / "ro" / "new.h5", _dataset())
        finally:
            path.parent.chmod(0o755)


DISK_FULL = textwrap.dedent('''
    import os, resource, signal, sys
    from pathlib import Path
    import numpy as np
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, writes fail with EFBIG like a full disk
    from memeprobe.data.records import Dataset, Meme
    from memeprobe.errors import MemeprobeError
    from memeprobe.store import ArraySpec, FeatureStore
    ds = Dataset(Path("/d"), "generic", [Meme(str(i), "train", f"t{i}") for i in range(200)])
    st = FeatureStore.create(sys.argv[1], ds)
    st.add_feature_set("small", {"x": ArraySpec((4,), "image")}, {"encoder": "s"})
    st.write_rows("small", np.arange(10), {"x": np.ones((10, 4))}, "image")
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(sys.argv[1]) + 100_000, resource.RLIM_INFINITY))
    for step in ("add", "create"):
        try:
            if step == "add":
                st.add_feature_set("big", {"x": ArraySpec((4096,), "image")}, {"encoder": "b"})
            else:
                resource.setrlimit(resource.RLIMIT_FSIZE, (4000, resource.RLIM_INFINITY))
                FeatureStore.create(sys.argv[2], ds)
            print(step, "succeeded")
        except MemeprobeError as e:
            print(step, "error:", e)
        if step == "add":
            st.write_rows("small", np.arange(10, 20), {"x": np.full((10, 4), 2.0)}, "image")
            st.close()
''')


def test_disk_full_fails_cleanly_and_keeps_the_store(tmp_path):
    script = tmp_path / "disk_full.py"
    script.write_text(DISK_FULL)
    store, second = tmp_path / "s.h5", tmp_path / "second.h5"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, str(script), str(store), str(second)], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("add error: cannot write store") and "disk is full" in lines[0]
    assert lines[1].startswith("create error: cannot write store") and "disk is full" in lines[1]
    assert not second.exists() and not list(tmp_path.glob("*.tmp-*"))
    with FeatureStore.open(store) as st:
        assert st.verify() == [] and st.feature_sets() == ["small"]
        assert st.read("small", "x", np.arange(20))[:, 0].tolist() == [1.0] * 10 + [2.0] * 10


# ---------------------------------------------------------------- CLI
@pytest.fixture
def filled(tmp_path):
    path = tmp_path / "f.h5"
    with FeatureStore.create(path, _dataset()) as st:
        st.add_feature_set("st-minilm", ARRAYS, {"encoder": "st:minilm"})
        st.write_rows("st-minilm", np.arange(40), {a: _values(40, ARRAYS[a], 3) for a in ("image_embed", "image_regions")},
                      "image")
        st.write_rows("st-minilm", np.arange(30), {"text_embed": _values(30, ARRAYS["text_embed"], 4)}, "text")
        st.mark_failed("st-minilm", [35], "text", "empty text")
    return path


def test_cli_info(filled):
    r = CliRunner().invoke(main, ["store", "info", str(filled), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["splits"] == {"train": {"n": 10, "labeled": 10}, "dev_seen": {"n": 10, "labeled": 10},
                              "dev_unseen": {"n": 10, "labeled": 10}, "test_unseen": {"n": 10, "labeled": 0}}
    fs = info["feature_sets"]["st-minilm"]
    assert fs["status"] == {"image": {"done": 40, "failed": 0, "todo": 0}, "text": {"done": 30, "failed": 1, "todo": 9}}
    assert fs["arrays"]["image_regions"] == {"shape": [2, 3], "modality": "image", "dtype": "float16"}
    assert fs["provenance"]["encoder"] == "st:minilm" and info["file_size"] == filled.stat().st_size
    assert info["dataset"]["fingerprint"] == _dataset().fingerprint() and info["schema_version"] == SCHEMA_VERSION
    r = CliRunner().invoke(main, ["store", "info", str(filled)])
    assert r.exit_code == 0 and "status text   done 30  failed 1  todo 9" in r.output
    assert "test_unseen" in r.output and "image_regions" in r.output
    r = CliRunner().invoke(main, ["store", "verify", str(filled)])
    assert r.exit_code == 0 and r.output.strip() == "ok"


def test_cli_export_parquet_and_npz(filled, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "o.parquet"
    r = CliRunner().invoke(main, ["store", "export", str(filled), "--feature-set", "st-minilm", "--to", str(out),
                                  "--splits", "train", "--splits", "dev_seen", "--arrays", "image_embed,image_regions"])
    assert r.exit_code == 0, r.output
    table = pq.read_table(out)
    with FeatureStore.open(filled) as st:
        rows = st.rows(["train", "dev_seen"])
        assert table.column("id").to_pylist() == st.ids[rows].tolist()
        assert table.column("label").to_pylist() == st.label[rows].tolist()
        regions = np.array(table.column("image_regions").to_pylist(), dtype=np.float16)
        np.testing.assert_array_equal(regions, st.read("st-minilm", "image_regions", rows).reshape(len(rows), 6))
        assert json.loads(table.schema.metadata[b"memeprobe.provenance"])["encoder"] == "st:minilm"
        assert "text_embed" not in table.column_names and table.num_rows == 20
        r = CliRunner().invoke(main, ["store", "export", str(filled), "-f", "st-minilm", "--to", str(tmp_path / "a.npz")])
        assert r.exit_code == 2 and "10 of 40 selected rows are not done" in r.output
        assert not (tmp_path / "a.npz").exists()
        r = CliRunner().invoke(main, ["store", "export", str(filled), "-f", "st-minilm", "--to", str(tmp_path / "a.npz"),
                                      "--missing", "drop", "--arrays", "text_embed"])
        assert r.exit_code == 0 and "wrote 30 rows" in r.output
        z = np.load(tmp_path / "a.npz")
        assert z["id"].tolist() == st.ids[:30].tolist() and z["text_embed"].shape == (30, 4)
        np.testing.assert_array_equal(z["text_embed"], st.read("st-minilm", "text_embed", np.arange(30)))
    r = CliRunner().invoke(main, ["store", "export", str(filled), "-f", "st-minilm", "--to", str(tmp_path / "o.csv")])
    assert r.exit_code == 2 and ".parquet or .npz" in r.output
    assert sorted(p.name for p in tmp_path.iterdir() if "tmp" in p.name) == []


def test_cli_errors_are_one_line(tmp_path):
    for args in (["store", "info", str(tmp_path / "none.h5")], ["store", "verify", str(tmp_path / "none.h5")]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and r.output.startswith("error: store") and "does not exist" in r.output
        assert len(r.output.strip().splitlines()) == 1
