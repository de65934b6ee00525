"""The adapters and ``data summary --json`` on the real copies in ../shared/data (skipped when absent).

Expected counts are read from the raw files here with json/csv, independently of the adapters;
only the numbers the issue states are written out.
"""
import csv
import json
import os
from collections import Counter

from memeprobe.data import load_dataset
from memeprobe.data.semeval2021_task6 import techniques
from tests.helpers import cli


def summary_json(path):
    return json.loads(cli("data", "summary", path, "--json").output)


def test_hateful_memes_summary(shared_data):
    root = shared_data / "hateful_memes"
    s = summary_json(root)
    assert s["format"] == "hateful_memes"
    splits = s["splits"]
    assert {k: v["n"] for k, v in splits.items()} == {
        "train": 8500, "dev_seen": 500, "dev_unseen": 540, "test_seen": 1000, "test_unseen": 2000}
    assert splits["train"]["label_counts"] == {"0": 5481, "1": 3019}
    assert splits["test_unseen"]["labeled"] == 0
    for name, v in splits.items():
        raw = [json.loads(line) for line in open(root / f"{name}.jsonl", encoding="utf-8") if line.strip()]
        labels = Counter(str(r["label"]) for r in raw if "label" in r)
        assert v["labeled"] == sum(labels.values())
        assert v["label_counts"] == {"0": labels["0"], "1": labels["1"]}
        assert v["images_found"] == 0 and v["images_missing"] == len(raw)
    seen = {json.loads(line)["id"] for line in open(root / "dev_seen.jsonl")}
    unseen = {json.loads(line)["id"] for line in open(root / "dev_unseen.jsonl")}
    assert len(seen & unseen) == 400
    assert "dev_seen and dev_unseen share 400 ids (both splits kept)" in s["notes"]


def test_hateful_memes_ids_kept_as_written(shared_data):
    root = shared_data / "hateful_memes"
    ds = load_dataset(root)
    raw = [json.loads(line) for line in open(root / "train.jsonl", encoding="utf-8")]
    train = ds.split("train")
    assert [m.id for m in train] == [str(r["id"]) for r in raw]
    assert [m.image for m in train] == [r["img"] for r in raw]
    assert [m.text for m in train] == [r["text"] for r in raw]


def test_semeval_summary_all_images_found(shared_data):
    root = shared_data / "semeval2021_task6"
    assert techniques() == tuple(line.strip() for line in open(root / "techniques.txt") if line.strip())
    s = summary_json(root)
    assert s["format"] == "semeval2021_task6"
    assert {k: v["n"] for k, v in s["splits"].items()} == {"train": 607, "dev": 63}
    for split, v in s["splits"].items():
        raw = json.load(open(root / split / "labels.json", encoding="utf-8"))
        on_disk = sum(os.path.exists(root / split / "images" / r["image"]) for r in raw)
        assert v["images_found"] == on_disk == len(raw) and v["images_missing"] == 0
        assert v["label_counts"] == {t: sum(t in r["labels"] for r in raw) for t in techniques()}


def test_mami_summary(shared_data):
    root = shared_data / "mami"
    s = summary_json(root)
    assert s["format"] == "mami" and s["binary_name"] == "misogynous"
    assert s["splits"]["train"]["n"] == 9000 and s["splits"]["validation"]["n"] == 1000
    for split, v in s["splits"].items():
        with open(root / f"{split}.tsv", encoding="utf-8", newline="") as f:
            raw = list(csv.DictReader(f, delimiter="\t"))
        assert v["n"] == len(raw)
        if "label" in raw[0]:
            assert v["labeled"] == len(raw)
            expected = {"0": sum(r["label"] == "0" for r in raw), "1": sum(r["label"] == "1" for r in raw)}
            expected.update({c: sum(r[c] == "1" for r in raw)
                             for c in ("shaming", "stereotype", "objectification", "violence")})
            assert v["label_counts"] == expected
        else:
            assert split == "test" and v["labeled"] == 0
        assert v["images_found"] == 0 and v["images_missing"] == len(raw)
    ds = load_dataset(root)
    with open(root / "train.tsv", encoding="utf-8", newline="") as f:
        assert [m.text for m in ds.split("train")] == [r["text"] for r in csv.DictReader(f, delimiter="\t")]
