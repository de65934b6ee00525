"""Adapters on small annotation files written by the tests: ids, splits, labels, image paths, detection."""
import json

import pytest

from memeprobe.data import FORMATS, detect_format, load_dataset
from memeprobe.data.semeval2021_task6 import techniques
from tests.helpers import make_hm, write_jsonl, write_table


def test_hateful_memes_ids_splits_labels_and_overlap_note(tmp_path):
    make_hm(tmp_path)
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "01235.png").write_bytes(b"not decoded")
    ds = load_dataset(tmp_path)
    assert ds.format == "hateful_memes" and ds.binary_name == "hateful" and ds.label_names == ()
    assert ds.splits() == ["train", "dev_seen", "dev_unseen", "test_unseen"]
    train = ds.split("train")
    assert [m.id for m in train] == ["01235", "42953", "1236"]
    assert [m.label for m in train] == [1, 0, 1]
    assert train[2].image == "img/01236.png"
    assert ds.image_path(train[0]).exists() and not ds.image_path(train[1]).exists()
    assert ds.split("test_unseen")[0].label is None and ds.split("test_unseen")[0].labels is None
    assert "dev_seen and dev_unseen share 2 ids (both splits kept)" in ds.notes
    assert len(ds.split("dev_seen")) == 2 and len(ds.split("dev_unseen")) == 3


def test_mami_labels_text_column_variants_and_unlabeled_test(tmp_path):
    header = ["file_name", "misogynous", "shaming", "stereotype", "objectification", "violence", "Text Transcription"]
    write_table(tmp_path / "training.csv", header, [["1.jpg", 1, 1, 0, 0, 1, "first, with comma"],
                                                    ["2.jpg", 0, 0, 0, 0, 0, 'quoted "word"']])
    write_table(tmp_path / "test.tsv", ["file_name", "text"], [["3.jpg", "no labels here"]])
    assert detect_format(tmp_path) == "mami"
    ds = load_dataset(tmp_path)
    assert ds.binary_name == "misogynous"
    assert ds.label_names == ("shaming", "stereotype", "objectification", "violence")
    assert ds.splits() == ["training", "test"]
    a, b = ds.split("training")
    assert (a.id, a.label, a.labels, a.text) == ("1.jpg", 1, (1, 0, 0, 1), "first, with comma")
    assert (b.label, b.labels, b.text) == (0, (0, 0, 0, 0), 'quoted "word"')
    (t,) = ds.split("test")
    assert t.label is None and t.labels is None
    assert a.image == "images/1.jpg" and not ds.image_path(a).exists()


def test_mami_finds_images_where_they_are(tmp_path):
    write_table(tmp_path / "train.tsv", ["file_name", "label", "text"], [["1.jpg", 1, "x"], ["2.jpg", 0, "y"]])
    write_table(tmp_path / "test.tsv", ["file_name", "text"], [["3.jpg", "z"]])
    (tmp_path / "train").mkdir()
    for name in ("1.jpg", "2.jpg"):
        (tmp_path / "train" / name).write_bytes(b"x")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "3.jpg").write_bytes(b"x")
    ds = load_dataset(tmp_path, format="mami")
    assert [m.image for m in ds.memes] == ["train/1.jpg", "train/2.jpg", "images/3.jpg"]
    assert all(ds.image_path(m).exists() for m in ds.memes)
    assert ds.split("train")[0].labels is None  # no sub-task B columns


def test_semeval_multi_hot_in_shipped_technique_order(tmp_path):
    names = techniques()
    assert len(names) == 22 and len(set(names)) == 22
    for split, recs in {"train": [{"id": "7", "labels": [names[3], names[21]], "text": "t", "image": "7.png"},
                                  {"id": "8", "labels": [], "text": "u", "image": "8.png"}],
                        "dev": [{"id": 9, "text": "v", "image": "9.png"}]}.items():
        (tmp_path / split / "images").mkdir(parents=True)
        (tmp_path / split / "labels.json").write_text(json.dumps(recs), encoding="utf-8")
    (tmp_path / "train" / "images" / "7.png").write_bytes(b"x")
    ds = load_dataset(tmp_path)
    assert ds.format == "semeval2021_task6" and ds.label_names == names and ds.binary_name is None
    a, b = ds.split("train")
    assert [i for i, v in enumerate(a.labels) if v] == [3, 21]
    assert b.labels == (0,) * 22
    assert a.image == "train/images/7.png" and ds.image_path(a).exists()
    assert ds.split("dev")[0].id == "9" and ds.split("dev")[0].labels is None


def test_generic_harmeme_style_list_labels(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [
        {"id": "a", "image": "covid_memes_1.png", "labels": ["somewhat harmful", "individual"], "text": "x"},
        {"id": "b", "image": "covid_memes_2.png", "labels": ["not harmful"], "text": "y"},
    ])
    write_jsonl(tmp_path / "test.jsonl", [{"id": "c", "image": "covid_memes_3.png", "labels": [], "text": "z"}])
    assert detect_format(tmp_path) == "generic"
    ds = load_dataset(tmp_path)
    assert ds.label_names == ("individual", "not harmful", "somewhat harmful")  # sorted
    assert [m.labels for m in ds.memes] == [(1, 0, 1), (0, 1, 0), (0, 0, 0)]
    assert ds.splits() == ["train", "test"] and ds.memes[0].image == "covid_memes_1.png"


def test_generic_csv_column_mapping_binary_and_split_column(tmp_path):
    path = tmp_path / "all.csv"
    write_table(path, ["meme", "caption", "pic", "hate", "part"],
                [["1", "hello", "p/1.png", "1", "train"], ["2", "world", "p/2.png", "0", "dev"],
                 ["3", "again", "", "", "dev"]], delimiter=",")
    assert detect_format(path) == "generic"
    ds = load_dataset(path, id_col="meme", text_col="caption", image_col="pic", label_col="hate", split_col="part")
    assert ds.root == tmp_path and ds.binary_name == "hate" and ds.label_names == ()
    assert [(m.split, m.id, m.text, m.image, m.label) for m in ds.memes] == [
        ("train", "1", "hello", "p/1.png", 1), ("dev", "2", "world", "p/2.png", 0), ("dev", "3", "again", None, None)]


def test_generic_two_string_classes_become_binary(tmp_path):
    rows = [{"id": i, "text": t, "label": lab} for i, (t, lab) in enumerate([("a", "hateful"), ("b", "benign"),
                                                                           ("c", "hateful")])]
    write_jsonl(tmp_path / "x.jsonl", rows)
    ds = load_dataset(tmp_path / "x.jsonl")
    assert ds.binary_name == "hateful" and [m.label for m in ds.memes] == [1, 0, 1]
    assert ds.split("x") == ds.memes and ds.memes[0].image is None
    ds = load_dataset(tmp_path / "x.jsonl", positive_label="benign")
    assert ds.binary_name == "benign" and [m.label for m in ds.memes] == [0, 1, 0]


def test_generic_many_classes_one_hot_and_fixed_label_names(tmp_path):
    write_jsonl(tmp_path / "x.jsonl", [{"id": i, "text": "t", "label": lab} for i, lab in enumerate([10, 2, 3, 2])])
    ds = load_dataset(tmp_path / "x.jsonl")
    assert ds.label_names == ("2", "3", "10")  # numbers sort numerically
    assert [m.labels for m in ds.memes] == [(0, 0, 1), (1, 0, 0), (0, 1, 0), (1, 0, 0)]
    ds = load_dataset(tmp_path / "x.jsonl", label_names=["10", "3", "2", "7"])
    assert ds.label_names == ("10", "3", "2", "7") and ds.memes[0].labels == (1, 0, 0, 0)


def test_absolute_image_path_inside_root_becomes_relative(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"id": 1, "text": "t", "image": str(tmp_path / "im" / "1.png")}])
    assert load_dataset(tmp_path).memes[0].image == "im/1.png"


def test_format_registry_and_undetectable_folder(tmp_path):
    from memeprobe.errors import MemeprobeError

    assert set(FORMATS) == {"hateful_memes", "mami", "semeval2021_task6", "generic"}
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(MemeprobeError, match="cannot tell the dataset format") as e:
        detect_format(tmp_path)
    assert e.value.option == "format" and "--" not in str(e.value)


def test_generic_csv_list_cells_are_json_lists(tmp_path):
    path = tmp_path / "memes.tsv"
    write_table(path, ["id", "text", "labels"], [["1", "a", '["b", "a"]'], ["2", "b", "[]"], ["3", "c", ""]])
    ds = load_dataset(path)
    assert ds.label_names == ("a", "b")
    assert [m.labels for m in ds.memes] == [(1, 1), (0, 0), None]
