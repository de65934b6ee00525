"""memeprobe explain: the error-analysis page of a saved head, on small synthetic stores (binary, multi-label,
unlabelled split, the demo sample with pictures and a leakage report), checked against the model's own
predictions; the page in headless Chromium (skips without it)."""
import json
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from memeprobe.data import load_dataset
from memeprobe.data.records import Dataset, Meme
from memeprobe.demo.synthetic import make_sample
from memeprobe.heads import load_model
from memeprobe.leakage.analysis import analyze
from memeprobe.leakage.report import write_report
from memeprobe.store import ArraySpec, FeatureStore
from memeprobe.store.features import load_features
from tests.chromium import chromium, console, needs_chromium
from tests.helpers import cli
from tests.test_heads_cli import make_store

SECTIONS = {"labelled": ("protocol", "scores", "per-class", "confusion", "curves", "mistakes", "slices"),
            "unlabelled": ("protocol", "distribution", "uncertain", "slices")}


def trained(store, out, *extra):
    cli("train-head", "logreg", "--store", store, "--feature-set", "img", "--feature-set", "txt", "--out", out,
        "--bootstrap", 0, *extra)
    return out


def explained(model, store, split, out, *extra):
    res = cli("explain", model, "--store", store, "--split", split, "--out", out, "--bootstrap", 50, *extra)
    return json.loads((out / "explain.json").read_text()), (out / "explain.html").read_text(), res.output


def predictions(model, store, split):
    m, meta = load_model(model)
    with FeatureStore.open(store) as st:
        f = load_features(st, meta["feature_sets"], [split], meta["target"])
    return m, f, m.positive_proba(f.X), np.asarray(m.predict(f.X))


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    d = tmp_path_factory.mktemp("binary")
    store = make_store(d / "hm.h5")
    return store, trained(store, d / "lr.pt")


def test_binary_page_matches_the_models_predictions(binary, tmp_path):
    store, model = binary
    doc, page, out = explained(model, store, "dev_seen", tmp_path / "page")
    m, f, p, pred = predictions(model, store, "dev_seen")
    assert doc["tuned_on"] == ["train"] and doc["tuned_on_recorded"] and not doc["in_sample"]
    assert "untouched" in out and "estimate performance" in page
    assert doc["metrics"]["auroc"] == pytest.approx(roc_auc_score(f.y, p))
    assert {"majority", "random"} <= set(doc["baselines"])
    assert doc["baselines"]["majority"]["auroc"] == pytest.approx(0.5)
    classes = doc["per_class"]["classes"]
    assert [c["support"] for c in classes] == [int((f.y == 0).sum()), int((f.y == 1).sum())]
    assert classes[1]["tp"] == int(((pred == 1) & (f.y == 1)).sum())
    tn, fp, fn, tp = np.ravel(doc["confusion"]["matrix"])
    assert (fp, fn) == (int(((pred == 1) & (f.y == 0)).sum()), int(((pred == 0) & (f.y == 1)).sum()))
    # the most confident false positives: truly 0, predicted 1, by probability, highest first
    fps = next(v for k, v in doc["mistakes"].items() if k.startswith("false positives"))
    memes = doc["memes"]
    ids = list(f.ids)
    got = [ids.index(memes[x["meme"]]["id"]) for x in fps]
    want = np.flatnonzero((pred == 1) & (f.y == 0))
    want = want[np.argsort(-p[want], kind="stable")][:8]
    assert got == want.tolist() and [x["confidence"] for x in fps] == pytest.approx(p[want].tolist())
    # each mistake's neighbours are the training memes nearest by cosine of the head's features
    with FeatureStore.open(store) as st:
        tr = load_features(st, ["img", "txt"], ["train"])
    T = tr.X / np.linalg.norm(tr.X, axis=1, keepdims=True)
    q = f.X[want[0]] / np.linalg.norm(f.X[want[0]])
    top = np.argsort(-(T @ q))[:5]
    nbs = fps[0]["neighbours"]
    assert [memes[n["meme"]]["id"] for n in nbs] == list(tr.ids[top])
    assert [n["similarity"] for n in nbs] == pytest.approx((T @ q)[top].tolist(), abs=1e-5)
    assert all(memes[n["meme"]]["split"] == "train" for n in nbs)
    # slices: image / no image and text length bins partition the labelled memes
    for g in doc["slices"]:
        assert sum(r["n"] for r in g["rows"]) == len(f.ids)
        assert all("majority" in r["baselines"] for r in g["rows"])


def test_in_sample_split_is_never_shown_as_an_estimate(binary, tmp_path):
    store, model = binary
    doc, page, out = explained(model, store, "train", tmp_path / "page")
    assert doc["in_sample"] and "IN-SAMPLE" in out and "NOT an estimate" in page
    tuned_dev = trained(store, tmp_path / "dev.pt", "--select-on", "dev")
    doc, page, _ = explained(tuned_dev, store, "dev_seen", tmp_path / "dev_page")
    assert doc["tuned_on"] == ["train", "dev_seen"] and doc["in_sample"] and "in-sample" in page


def test_unlabelled_split_shows_predictions_against_the_prior(binary, tmp_path):
    store, model = binary
    doc, page, _ = explained(model, store, "test_unseen", tmp_path / "page")
    m, f, p, pred = predictions(model, store, "test_unseen")
    with FeatureStore.open(store) as st:
        prior = float(st.label[st.rows(["train"])].mean())
    (row,) = doc["distribution"]
    assert row["train_prior"] == pytest.approx(prior) and row["predicted_share"] == pytest.approx(pred.mean())
    margins = [x["margin"] for x in doc["uncertain"]]
    assert margins == sorted(margins) and margins[0] == pytest.approx(np.abs(p - m.thresholds_[0]).min())
    assert "metrics" not in doc and all(f'<section id="{s}">' in page for s in SECTIONS["unlabelled"])
    for g in doc["slices"]:  # the shares of each slice add up to the split's
        n = sum(r["n"] for r in g["rows"])
        assert n == len(f.ids)
        assert sum(r["n"] * r["predicted_share"][0] for r in g["rows"]) / n == pytest.approx(pred.mean())


def _multilabel_store(path):
    """Three classes following img[1..3]; class ``c`` has no positive in dev_seen."""
    rng = np.random.default_rng(3)
    splits = [("train", 400)] * 1 + [("dev_seen", 150)]
    n = sum(k for _, k in splits)
    a, b = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    Y = (a[:, 1:4] > 0.5).astype(int)
    memes, i = [], 0
    for split, k in splits:
        for _ in range(k):
            if split == "dev_seen":
                Y[i, 2] = 0
            memes.append(Meme(f"{i:05d}", split, " ".join(["word"] * (1 + i % 17)), None, None,
                              tuple(int(v) for v in Y[i])))
            i += 1
    st = FeatureStore.create(path, Dataset(path.parent, "semeval2021_task6", memes, label_names=("a", "b", "c")))
    st.add_feature_set("img", {"image_embed": ArraySpec((8,), "image")}, {"encoder": "synthetic:v1"})
    st.add_feature_set("txt", {"text_embed": ArraySpec((8,), "text")}, {"encoder": "synthetic:text"})
    st.write_rows("img", np.arange(n), {"image_embed": a.astype(np.float16)}, "image")
    st.write_rows("txt", np.arange(n), {"text_embed": b.astype(np.float16)}, "text")
    st.close()
    return path, Y


def test_multilabel_page_per_label_and_a_class_without_positives(tmp_path):
    store, Y = _multilabel_store(tmp_path / "ml.h5")
    model = trained(store, tmp_path / "ml.pt")
    doc, page, _ = explained(model, store, "dev_seen", tmp_path / "page")
    m, f, P, pred = predictions(model, store, "dev_seen")
    classes = {c["name"]: c for c in doc["per_class"]["classes"]}
    assert [classes[n]["support"] for n in "abc"] == f.y.sum(0).tolist() and classes["c"]["support"] == 0
    assert classes["c"]["recall"] is None and classes["c"]["f1"] is None
    assert doc["per_class"]["covered"] == 2 and "macro (2 of 3 classes)" in page
    assert classes["a"]["fp"] == int(((pred[:, 0] == 1) & (f.y[:, 0] == 0)).sum())
    assert doc["confusion"] is None
    spurious, missed = doc["mistakes"].values()
    memes = doc["memes"]
    ids = list(f.ids)
    for x in spurious:
        i = ids.index(memes[x["meme"]]["id"])
        assert x["blame"] and all(pred[i, "abc".index(n)] == 1 and f.y[i, "abc".index(n)] == 0 for n in x["blame"])
    assert [x["confidence"] for x in missed] == sorted((x["confidence"] for x in missed), reverse=True)
    assert {g["title"] for g in doc["slices"]} == {"image", "text length"}
    (image,) = [g for g in doc["slices"] if g["title"] == "image"]
    assert [r["name"] for r in image["rows"]] == ["without image"]


def test_texts_are_shown_as_text_and_the_folder_is_replaced_as_a_whole(tmp_path):
    evil = '</script><img src=x onerror="document.body.dataset.pwned=1"> & \u2028'
    store = make_store(tmp_path / "hm.h5", text=evil)
    model = trained(store, tmp_path / "lr.pt")
    explained(model, store, "dev_seen", tmp_path / "page")
    (tmp_path / "page" / "explain.json").unlink()  # a page folder is replaced as a whole, not patched
    doc, page, _ = explained(model, store, "dev_seen", tmp_path / "page")
    assert sorted(p.name for p in (tmp_path / "page").iterdir()) == ["explain.html", "explain.json"]
    assert evil not in page and '<img src="x"' not in page and "&lt;/script&gt;&lt;img src=x onerror=" in page
    assert _memes(page)[0]["text"].startswith(evil)


def test_bad_input_is_refused_before_torch_is_imported(binary, tmp_path):
    store, model = binary
    code = ("import sys; from click.testing import CliRunner; from memeprobe.cli import main; "
            f"r = CliRunner().invoke(main, ['explain', {str(model)!r}, '--store', {str(store)!r}, '--split', 'nope', "
            f"'--out', {str(tmp_path / 'o')!r}]); "
            "print(r.exit_code, [m for m in ('torch', 'sklearn') if m in sys.modules]); print(r.output)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    first, *rest = run.stdout.splitlines()
    assert first == "2 []" and "has no split nope" in rest[0], run.stdout + run.stderr


def _memes(page):
    data = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1)
    return json.loads(data)["memes"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The demo sample (pictures on disk), features from its ground truth, a logreg model, its leakage report."""
    d = tmp_path_factory.mktemp("sample")
    truth = make_sample(d / "data", n=240, seed=4)
    ds = load_dataset(d / "data")
    rng = np.random.default_rng(0)
    attrs = np.array([[m["image_attr"] == "warm", m["text_attr"] == "office"] for m in truth["memes"]], float) * 2 - 1
    img = np.hstack([attrs, attrs[:, :1] * attrs[:, 1:], rng.normal(size=(len(attrs), 5))])
    st = FeatureStore.create(d / "s.h5", ds)
    st.add_feature_set("img", {"image_embed": ArraySpec((8,), "image")}, {"encoder": "synthetic:truth"})
    st.add_feature_set("txt", {"text_embed": ArraySpec((8,), "text")}, {"encoder": "synthetic:noise"})
    st.write_rows("img", np.arange(len(img)), {"image_embed": img.astype(np.float16)}, "image")
    st.write_rows("txt", np.arange(len(img)), {"text_embed": rng.normal(size=(len(img), 8)).astype(np.float16)}, "text")
    st.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = analyze(ds)
    write_report(result, ds, d / "leak")
    return d / "s.h5", trained(d / "s.h5", d / "lr.pt"), d / "leak", result


def test_leaked_and_leak_free_slices_from_the_leakage_report(sample, tmp_path):
    store, model, leak, result = sample
    doc, page, _ = explained(model, store, "dev_seen", tmp_path / "page", "--clean-ids", leak)
    (g,) = [g for g in doc["slices"] if g["title"].startswith("leakage")]
    rows = {r["name"]: r["n"] for r in g["rows"]}
    assert rows["leak-free"] == len(result.clean_ids["dev_seen"]) and rows["leaked"] == doc["n"] - rows["leak-free"] > 0
    assert doc["memes"] and all(m["thumb"] for m in _memes(page))  # every meme of the sample has a picture, inlined
    assert all(m["thumbnail"] for m in doc["memes"])


def test_bad_input_is_one_line_and_writes_nothing(sample, tmp_path):
    store, model, leak, _ = sample
    (tmp_path / "notes.txt").write_text("hello")
    cases = [((tmp_path / "notes.txt", "--split", "dev_seen", "--out", tmp_path / "o1"), "not a memeprobe model"),
             ((model, "--split", "nope", "--out", tmp_path / "o2"), "has no split nope"),
             ((model, "--split", "dev_seen", "--out", store), "is a file"),
             ((model, "--split", "dev_seen", "--out", leak), "leakage report folder"),
             ((model, "--split", "dev_seen", "--out", leak / "clean_ids", "--clean-ids", leak), "inside the clean-ids"),
             ((model, "--split", "dev_seen", "--out", tmp_path), "not part of an explain page")]
    for args, says in cases:
        res = cli("explain", args[0], "--store", store, *args[1:], code=2)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], res.output
    assert not any((tmp_path / f"o{k}").exists() for k in (1, 2))
    assert (tmp_path / "notes.txt").read_text() == "hello"


@needs_chromium
@pytest.mark.parametrize("split", ["dev_seen", "test_unseen"])
def test_page_in_chromium(sample, tmp_path, split):
    store, model, leak, _ = sample
    doc, _, _ = explained(model, store, split, tmp_path / "page", "--clean-ids", leak)
    run = chromium(["--dump-dom", (tmp_path / "page" / "explain.html").as_uri()], tmp_path / "profile")
    assert run.returncode == 0, run.stderr[-2000:]
    assert console(run) == []
    dom = run.stdout
    assert 'data-ready="1"' in dom and '<div id="js-errors"></div>' in dom and 'data-broken="0"' in dom
    n_images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    assert n_images > len(doc["memes"])  # every meme's thumbnail and the figures
    for s in SECTIONS["labelled" if doc["labelled"] else "unlabelled"]:
        assert f'<section id="{s}">' in dom
