"""Leakage analysis end to end on make_sample data (planted ground truth), the store path and bad input."""
import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from memeprobe.cli import main
from memeprobe.data import load_dataset
from memeprobe.demo.synthetic import make_sample
from memeprobe.errors import ConfigError, MemeprobeError, StoreError
from memeprobe.leakage.analysis import LeakageConfig, analyze

EXACT = {"exact_image", "exact_text", "confounder"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    truth = make_sample(root, n=300, seed=0)
    return root, truth


def quiet_analyze(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyze(*args, **kw)


def row_of(ds):
    return {(m.split, m.id): k for k, m in enumerate(ds.memes)}


def planted_pairs(ds, truth):
    rows = row_of(ds)
    out = {}
    for p in truth["pairs"]:
        a, b = rows[(p["a"]["split"], p["a"]["id"])], rows[(p["b"]["split"], p["b"]["id"])]
        out[(min(a, b), max(a, b))] = p
    return out


def test_planted_duplicates_are_found_with_high_precision(sample):
    root, truth = sample
    ds = load_dataset(root)
    result = quiet_analyze(ds)
    planted = planted_pairs(ds, truth)
    found = {(min(a, b), max(a, b)): row for (a, b), row in
             zip(zip(result.pairs.a, result.pairs.b), result.pairs.to_dict(orient="records"))}
    exact = [k for k, p in planted.items() if p["kind"] in EXACT]
    near = [k for k, p in planted.items() if p["kind"] not in EXACT]
    assert exact and near
    assert all(k in found for k in exact)  # recall 1.0 for exact duplicates
    assert np.mean([k in found for k in near]) >= 0.95
    assert np.mean([k in planted for k in found]) >= 0.95  # precision
    for k, p in planted.items():
        if k not in found:
            continue
        row = found[k]
        if p["kind"] == "exact_image":
            assert row["image_exact"] == 1.0 and row["kind"] == "same_image_other_text"
        elif p["kind"] == "near_image":
            assert row["kind"] == "same_image_other_text"
        else:
            assert row["kind"] == "same_text_other_image"
            assert (row["text_exact"] == 1.0) == (p["kind"] in {"exact_text", "confounder"})
        labels = {"test_unseen"} & {row["split_a"], row["split_b"]}
        if p["kind"] == "confounder" and not labels:
            assert row["label_relation"] == "flip"


def test_scopes_clean_ids_and_unlabeled_split(sample):
    root, truth = sample
    ds = load_dataset(root)
    result = quiet_analyze(ds)
    p = result.pairs
    assert set(p.scope[p.split_a == p.split_b]) <= {"within"}
    assert set(p.scope[(p.split_a == "train") & (p.split_b != "train")]) <= {"train-eval"}
    assert set(p.scope[(p.split_a == "dev_seen") & (p.split_b == "test_unseen")]) <= {"eval-eval"}
    leaked = set()
    for row in p[p.scope == "train-eval"].itertuples():
        leaked.add((row.split_b, row.id_b) if row.split_a == "train" else (row.split_a, row.id_a))
    for split in ("dev_seen", "test_unseen"):
        ids = [m.id for m in ds.split(split)]
        assert result.clean_ids[split] == [i for i in ids if (split, i) not in leaked]
    # test_unseen has no labels: no label relation, no flip count, no AUROC, no crash
    unl = p[(p.split_a == "test_unseen") | (p.split_b == "test_unseen")]
    assert len(unl) and (unl.label_relation == "").all()
    summary = {(s["split_a"], s["split_b"]): s for s in result.summary()}
    assert not summary[("train", "test_unseen")]["labelled"] and summary[("train", "dev_seen")]["labelled"]
    assert result.exploit["test_unseen"]["auroc"] is None
    assert result.exploit["dev_seen"]["labelled"] == len(ds.split("dev_seen"))


def test_cli_report_writes_consistent_files(sample, tmp_path):
    root, _ = sample
    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["leakage", "report", str(root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert str(out / "report.html") in res.output and "train ~ dev_seen" in res.output
    doc = json.loads((out / "report.json").read_text())
    csv = pd.read_csv(out / "pairs.csv", dtype={"id_a": str, "id_b": str})
    assert len(doc["pairs"]) == len(csv) > 0
    assert sum(s["pairs"] for s in doc["summary"]) == len(csv)
    for s in doc["summary"]:
        sub = csv[(csv.split_a == s["split_a"]) & (csv.split_b == s["split_b"])]
        assert s["exact_text"] == sub.text_exact.notna().sum()
        assert s["confounders"] == sub.kind.isin(["same_text_other_image", "same_image_other_text"]).sum()
    for split in ("dev_seen", "test_unseen"):
        ids = (out / "clean_ids" / f"{split}.txt").read_text().split()
        leaked = set(csv.id_b[(csv.split_a == "train") & (csv.split_b == split)])
        assert ids and not set(ids) & leaked
        assert len(ids) + len(leaked) == len(load_dataset(root).split(split))
    html = (out / "report.html").read_text()
    assert "data:image/jpeg;base64," in html and "http://" not in html and "https://" not in html
    js = CliRunner().invoke(main, ["leakage", "report", str(root), "--out", str(out), "--json", "--no-images"])
    assert js.exit_code == 0, js.output
    doc = json.loads(js.stdout)
    assert doc["skipped"]["images_not_checked"] == 300 and doc["files"]["html"] == str(out / "report.html")


def test_cli_defaults_equal_config_defaults():
    from memeprobe.leakage.commands import report

    defaults = {p.name: p.default for p in report.params}
    config = LeakageConfig()
    for name in ("text_threshold", "image_threshold", "phash_distance", "jaccard", "train_split", "max_group_pairs"):
        assert defaults[name] == getattr(config, name)


@pytest.mark.parametrize("args, message", [
    (["--text-threshold", "1.5"], "--text-threshold"),
    (["--jaccard", "0"], "--jaccard"),
    (["--phash-distance", "65"], "--phash-distance"),
    (["--train-split", "nope"], "no split named 'nope'"),
])
def test_bad_options_are_refused(sample, tmp_path, args, message):
    root, _ = sample
    res = CliRunner().invoke(main, ["leakage", "report", str(root), "--out", str(tmp_path), "--no-images", *args])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_config_validates_thresholds():
    for bad, message in ((dict(jaccard=1.5), r"jaccard must be a float in the range \(0, 1\]; got 1.5"),
                         (dict(text_threshold=float("nan")), "text-threshold must be a float"),
                         (dict(phash_distance=-1), r"phash-distance must be an int in the range \[0, 64\]"),
                         (dict(max_group_pairs=0), "max-group-pairs must be an int"),
                         (dict(train_split=None), "train-split must be a str")):
        with pytest.raises(ConfigError, match=message) as e:
            LeakageConfig(**bad)
        assert e.value.option == next(iter(bad))
    assert LeakageConfig(jaccard=1, phash_distance=64).jaccard == 1  # the closed ends are allowed


def test_missing_images_are_skipped_and_counted(sample, tmp_path):
    root, truth = sample
    copy = tmp_path / "s"
    shutil.copytree(root, copy)
    ds = load_dataset(copy)
    gone = [ds.memes[k] for k in (0, 5, 9)]
    for m in gone:
        ds.image_path(m).unlink()
    with pytest.warns(UserWarning, match="3 memes have no readable image"):
        result = analyze(ds)
    assert result.skipped["images_missing"] == 3
    p = result.pairs
    for m in gone:
        involved = p[((p.id_a == m.id) & (p.split_a == m.split)) | ((p.id_b == m.id) & (p.split_b == m.split))]
        assert set(involved.kind) <= {"same_text_image_unchecked"}


def test_given_vectors_wrong_length_and_bad_rows(sample):
    root, truth = sample
    ds = load_dataset(root)
    n = len(ds.memes)
    with pytest.raises(MemeprobeError, match="299 rows but the dataset"):
        analyze(ds, text_vectors=np.ones((n - 1, 8)), check_images=False)
    rng = np.random.default_rng(0)
    vec = rng.normal(size=(n, 32)).astype(np.float32)
    vec[[1, 2]] = 0.0
    vec[3, 0] = np.nan
    vec[10] = vec[20] + 0.01  # a pair only the embedding sees (its texts differ: a threshold from the data omits it)
    with pytest.warns(UserWarning) as caught:
        result = analyze(ds, config=LeakageConfig(text_threshold=0.9), text_vectors=vec, check_images=False)
    assert any("3 text vectors are all-zero or not finite" in str(w.message) for w in caught)
    assert result.skipped["text_vectors_invalid"] == 3
    hit = result.pairs[(result.pairs.a.isin([10, 20])) & (result.pairs.b.isin([10, 20]))]
    assert len(hit) == 1 and hit.text_cosine.iloc[0] > 0.99


def test_store_embeddings_are_used(sample, tmp_path):
    from memeprobe.store import ArraySpec, FeatureStore

    root, _ = sample
    ds = load_dataset(root)
    n = len(ds.memes)
    rng = np.random.default_rng(1)
    vec = rng.normal(size=(n, 16)).astype(np.float32)
    vec[7] = vec[250] * 1.001  # planted embedding duplicate (train row 7, eval row 250)
    vec[11] = 0.0
    path = tmp_path / "s.h5"
    with FeatureStore.create(path, ds) as st:
        st.add_feature_set("st-fake", {"text_embed": ArraySpec((16,), "text", "float16")}, {"encoder": "test"})
        st.write_rows("st-fake", np.arange(n - 5), {"text_embed": vec[: n - 5]}, "text")
    with FeatureStore.open(path) as st:  # (the planted pair's texts differ: only a given threshold keeps it)
        result = quiet_analyze(ds, st, LeakageConfig(text_threshold=0.9), check_images=False)
        assert result.sources["text_cosine"] == "store st-fake/text_embed"
        assert result.skipped["text_not_featurized"] == 5 and result.skipped["text_vectors_invalid"] == 1
        hit = result.pairs[(result.pairs.a == 7) & (result.pairs.b == 250)]
        assert len(hit) == 1 and hit.text_cosine.iloc[0] > 0.99
        by_colon = quiet_analyze(ds, st, LeakageConfig(text_threshold=0.9), text_array="st-fake:text_embed",
                                 check_images=False)  # one reference grammar
        assert by_colon.sources["text_cosine"] == "store st-fake/text_embed" and by_colon.pairs.equals(result.pairs)
        with pytest.raises(ConfigError, match="give FEATURE_SET/ARRAY"):
            analyze(ds, st, text_array="st-fake", check_images=False)
        with pytest.raises(ConfigError, match="holds text features, not image"):
            analyze(ds, st, image_array="st-fake/text_embed", check_images=False)
    res = CliRunner().invoke(main, ["leakage", "report", str(root), "--store", str(path), "--no-images",
                                    "--out", str(tmp_path / "r"), "--text-array", "st-fake/nope"])
    assert res.exit_code == 2 and "has no array 'nope'" in res.output
    res = CliRunner().invoke(main, ["leakage", "report", str(root), "--store", str(path), "--no-images",
                                    "--out", str(tmp_path / "r"), "--image-array", "other/image_embed"])
    assert res.exit_code == 2 and "no feature set 'other'" in res.output


def test_store_of_another_dataset_is_refused(sample, tmp_path):
    from memeprobe.store import FeatureStore

    root, _ = sample
    ds = load_dataset(root)
    other = make_sample(tmp_path / "other", n=40, seed=3)
    assert other
    with FeatureStore.create(tmp_path / "o.h5", load_dataset(tmp_path / "other")):
        pass
    with FeatureStore.open(tmp_path / "o.h5") as st, pytest.raises(StoreError, match="another dataset"):
        analyze(ds, st, check_images=False)


def test_image_vectors_work_without_image_files(sample):
    root, _ = sample
    ds = load_dataset(root)
    n = len(ds.memes)
    vec = np.random.default_rng(2).normal(size=(n, 24)).astype(np.float32)
    vec[4] = vec[200]  # same picture by embedding, texts differ
    result = quiet_analyze(ds, image_vectors=vec, check_images=False)
    hit = result.pairs[(result.pairs.a == 4) & (result.pairs.b == 200)]
    assert len(hit) == 1 and hit.kind.iloc[0] == "same_image_other_text" and hit.image_cosine.iloc[0] > 0.99


def test_store_phash_is_used_when_present(sample, tmp_path):
    from PIL import Image

    from memeprobe.leakage.images import phash_bits
    from memeprobe.store import ArraySpec, FeatureStore

    root, _ = sample
    ds = load_dataset(root)
    bits = np.stack([phash_bits(Image.open(ds.image_path(m))) for m in ds.memes])
    with FeatureStore.create(tmp_path / "p.h5", ds) as st:
        st.add_feature_set("pixels", {"image_phash": ArraySpec((64,), "image", "uint8")}, {"encoder": "pixels"})
        st.write_rows("pixels", np.arange(len(ds.memes)), {"image_phash": bits}, "image")
    with FeatureStore.open(tmp_path / "p.h5") as st:
        with_store = quiet_analyze(ds, st)
    plain = quiet_analyze(ds)
    assert with_store.sources["image_phash"].startswith("store pixels/image_phash")
    key = ["a", "b", "kind", "image_phash"]
    pd.testing.assert_frame_equal(with_store.pairs[key], plain.pairs[key])
