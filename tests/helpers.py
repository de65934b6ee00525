"""Shared test helpers: annotation files in each dataset layout, and the CLI run in-process.

``FORMAT_SAMPLES`` writes a small dataset in every registered format (``memeprobe.data.FORMATS``); the dataset
contract test runs over the registry, so a format added there fails until it has a sample here.
"""
import csv
import json
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from memeprobe.cli import main
from memeprobe.data.mami import LABEL_NAMES as MAMI_TYPES
from memeprobe.data.semeval2021_task6 import techniques, text_techniques


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_table(path, header, rows, delimiter="\t"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)


def cli(*args, code=0):
    """``memeprobe ARGS`` in-process: checks the exit code and that no traceback shows; returns the result."""
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    return res


def make_hm(root):
    write_jsonl(root / "train.jsonl", [
        {"id": "01235", "img": "img/01235.png", "label": 1, "text": "a zero padded id"},
        {"id": 42953, "img": "img/42953.png", "label": 0, "text": "an int id"},
        {"id": 1236, "img": "img/01236.png", "label": "1", "text": "int id, padded file"},
    ])
    write_jsonl(root / "dev_seen.jsonl", [
        {"id": "00001", "img": "img/00001.png", "label": 0, "text": "shared a"},
        {"id": "00002", "img": "img/00002.png", "label": 1, "text": "shared b"},
    ])
    write_jsonl(root / "dev_unseen.jsonl", [
        {"id": "00001", "img": "img/00001.png", "label": 0, "text": "shared a"},
        {"id": "00002", "img": "img/00002.png", "label": 1, "text": "shared b"},
        {"id": "00003", "img": "img/00003.png", "label": 1, "text": "only unseen"},
    ])
    write_jsonl(root / "test_unseen.jsonl", [{"id": "00009", "img": "img/00009.png", "text": "no label"}])


# ---------------------------------------------------------------- a sample in every dataset format
# bad rows: "label" = a label value the format does not allow, "record" = a row that is not a record
BAD_ROWS = ("label", "record")
TEXTS = ("zero-padded id, a comma", 'a "quoted" word; and a semicolon', "ünïcödé | pipe", "plain", "last one")


@dataclass
class Sample:
    """What a format sample wrote: the path to load, the memes in file order as ``(split, id, text, label,
    labels, spans)``, and where the bad row is (``"FILE line N"`` / ``"FILE record N"``; None when none)."""

    path: Path
    memes: list
    bad_at: str | None = None


def _hot(names, chosen) -> tuple:
    return tuple(int(n in chosen) for n in names)


def _hateful_memes(root, bad=None):
    rows = {"train": [("00012", 1), ("4", 0)], "dev_seen": [("00301", 1), ("00302", 0)], "test_unseen": [("7", None)]}
    memes, lines = [], {}
    for (split, items), text in zip(rows.items(), TEXTS):
        lines[split] = []
        for mid, label in items:
            row = {"id": mid, "img": f"img/{mid}.png", "text": f"{text} {mid}"}
            if label is not None:
                row["label"] = label
            lines[split].append(json.dumps(row))
            memes.append((split, mid, row["text"], label, None, None))
    bad_at = None
    if bad:
        lines["dev_seen"][1] = lines["dev_seen"][1].replace('"label": 0', '"label": 2') if bad == "label" \
            else lines["dev_seen"][1][:25]
        bad_at = f"{root / 'dev_seen.jsonl'} line 2"
    for split, text in lines.items():
        (root / f"{split}.jsonl").write_text("".join(line + "\n" for line in text), encoding="utf-8")
    return Sample(root, memes, bad_at)


def _mami(root, bad=None, suffix=".tsv"):
    header = ["file_name", "misogynous", *MAMI_TYPES, "text"]
    train = [("1.jpg", 1, ("shaming", "violence")), ("22.jpg", 0, ()), ("3.jpg", 1, ("stereotype",))]
    rows = [[name, label, *_hot(MAMI_TYPES, types), text] for (name, label, types), text in zip(train, TEXTS)]
    if bad == "label":
        rows[1][1] = "yes"
    elif bad == "record":
        rows[1] = rows[1][:-2]
    write_table(root / f"training{suffix}", header, rows, delimiter="\t" if suffix == ".tsv" else ",")
    write_table(root / f"test{suffix}", ["file_name", "text"], [["9.jpg", TEXTS[-1]]],
                delimiter="\t" if suffix == ".tsv" else ",")
    memes = [("training", name, text, label, _hot(MAMI_TYPES, types), None)
             for (name, label, types), text in zip(train, TEXTS)] + [("test", "9.jpg", TEXTS[-1], None, None, None)]
    return Sample(root, memes, bad and f"{root / f'training{suffix}'} line 3")


def _semeval_images(root, bad=None):
    names = techniques()
    records = {"train": [("41", [names[0], names[21]]), ("42", [])], "dev": [("51", [names[5]]), ("52", None)]}
    memes = []
    for split, items in records.items():
        recs = []
        for (mid, labels), text in zip(items, TEXTS):
            rec = {"id": mid, "text": text, "image": f"{mid}.png"}
            if labels is not None:
                rec["labels"] = labels
            recs.append(rec)
            memes.append((split, mid, text, None, None if labels is None else _hot(names, labels), None))
        if bad and split == "dev":
            recs[1] = {**recs[1], "labels": ["Smear"]} if bad == "label" else ["not", "a", "record"]
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels.json").write_text(json.dumps(recs), encoding="utf-8")
    return Sample(root, memes, bad and f"{root / 'dev' / 'labels.json'} record 2")


def _semeval_spans(root, bad=None):
    names = text_techniques()
    texts = {"train": ["they always lie to us", "buy now, or regret forever"], "dev": ["a calm sentence"]}
    spans = {"train": [[(0, 4, names[3]), (12, 21, names[7])], []], "dev": [[(2, 6, names[0])]]}
    memes = []
    for split in texts:
        recs = []
        for i, (text, found) in enumerate(zip(texts[split], spans[split])):
            mid = f"{split}{i}"
            labels = [{"start": s, "end": e, "technique": t, "text_fragment": text[s:e]} for s, e, t in found]
            recs.append({"id": mid, "text": text, "labels": labels})
            memes.append((split, mid, text, None, _hot(names, [t for _, _, t in found]),
                          tuple(sorted((s, e, names.index(t)) for s, e, t in found))))
        if bad and split == "train":
            recs[1] = {**recs[1], "labels": [{"start": 0, "end": 3, "technique": "Smear"}]} if bad == "label" else 7
        (root / f"{split}.json").write_text(json.dumps(recs), encoding="utf-8")
    return Sample(root, memes, bad and f"{root / 'train.json'} record 2")


def _generic(root, bad=None, suffix=".jsonl"):
    """Two splits of ``{id, text, image, label}`` files (``label`` 0/1) in one folder."""
    splits = {"train": [("a1", 1), ("00002", 0), ("b3", None)], "dev": [("d1", 0), ("d2", 1)]}
    memes, where = [], None
    for split, items in splits.items():
        rows = [{"id": mid, "text": text, "image": f"pics/{mid}.png", "label": "" if label is None else label}
                for (mid, label), text in zip(items, TEXTS)]
        memes += [(split, r["id"], r["text"], label, None, None) for r, (_, label) in zip(rows, items)]
        path = root / f"{split}{suffix}"
        if bad and split == "dev":
            if bad == "label":
                rows[1]["label"] = {"not": "a label"} if suffix in (".jsonl", ".json") else "[1, "
            elif suffix in (".csv", ".tsv"):
                rows[1]["extra"] = "one field too many"
            # the second row: line 2 of a .jsonl, record 2 of a .json, line 3 of a table (after its header)
            where = {".jsonl": f"{path} line 2", ".json": f"{path} record 2"}.get(suffix, f"{path} line 3")
        if suffix == ".jsonl":
            lines = [json.dumps(r) for r in rows]
            if bad == "record" and split == "dev":
                lines[1] = lines[1][:12]
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        elif suffix == ".json":
            records = [*rows[:1], "not a record", *rows[2:]] if bad == "record" and split == "dev" else rows
            path.write_text(json.dumps(records, indent=1), encoding="utf-8")
        else:
            header = ["id", "text", "image", "label"]
            write_table(path, header, [[r[c] for c in header] + ([r["extra"]] if "extra" in r else []) for r in rows],
                        delimiter="\t" if suffix == ".tsv" else ",")
    return Sample(root, memes, where)


# format name -> variant -> writer(root, bad=None) -> Sample
FORMAT_SAMPLES = {
    "hateful_memes": {"jsonl": _hateful_memes},
    "mami": {"tsv": _mami, "csv": lambda root, bad=None: _mami(root, bad, ".csv")},
    "semeval2021_task6": {"images": _semeval_images, "spans": _semeval_spans},
    "generic": {s: (lambda root, bad=None, s=s: _generic(root, bad, f".{s}")) for s in ("jsonl", "json", "csv", "tsv")},
}
