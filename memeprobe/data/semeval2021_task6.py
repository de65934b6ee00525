"""SemEval-2021 Task 6 (persuasion techniques in memes), two layouts.

* Subtask 3: ``SPLIT/labels.json`` + ``SPLIT/images/``. Each ``labels.json`` is a JSON array of
  ``{id, labels: [technique names], text, image}``; the image path becomes ``SPLIT/images/NAME``
  (relative to the root). Label names are the 22 techniques of the shipped ``techniques.txt``.
* Subtasks 1-2 (text spans): ``SPLIT.json`` (train, dev, test) directly in the root, each a JSON
  array of ``{id, text, labels: [{start, end, technique, text_fragment}]}`` with character offsets
  (end exclusive). Label names are the 20 text techniques; a meme's multi-hot is the union of its
  spans' techniques (subtask 1).

An unknown technique name is an error naming the id. A record without ``labels`` is unlabeled.
"""
from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from memeprobe.data.builder import DatasetBuilder, meme_id, ordered_splits, text_value
from memeprobe.data.readers import read_json
from memeprobe.data.records import Dataset, Meme, Span
from memeprobe.errors import DatasetError


IMAGE_ONLY = ("Transfer", "Appeal to (Strong) Emotions")  # the two techniques subtasks 1-2 leave out
SPAN_SPLITS = ("train", "dev", "test")
_SPAN_KEYS = {"id", "text", "labels"}


def techniques() -> tuple[str, ...]:
    """The 22 technique names shipped with memeprobe, in file order."""
    text = resources.files("memeprobe.data").joinpath("techniques.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def text_techniques() -> tuple[str, ...]:
    """The 20 techniques of the text subtasks 1-2, in file order."""
    return tuple(n for n in techniques() if n not in IMAGE_ONLY)


def split_dirs(root: Path) -> list[Path]:
    dirs = {p.name: p for p in root.iterdir() if (p / "labels.json").is_file()}
    return [dirs[s] for s in ordered_splits(dirs)]


def span_files(root: Path) -> list[Path]:
    """``train.json``, ``dev.json``, ``test.json`` present in the root (the subtask 1-2 layout)."""
    return [root / f"{s}.json" for s in SPAN_SPLITS if (root / f"{s}.json").is_file()]


def _span_layout(files: list[Path]) -> bool:
    """Whether the first record of the first file is a subtask 1-2 record (only ``id``, ``text`` and a list of
    span objects as ``labels``), so generic JSON files named train/dev/test are not taken for spans."""
    try:
        records = read_json(files[0])
    except DatasetError:
        return False
    first = records[0] if isinstance(records, list) and records else None
    if not isinstance(first, dict) or not set(first) <= _SPAN_KEYS:
        return False
    labels = first.get("labels", [])
    return isinstance(labels, list) and all(isinstance(s, dict) for s in labels)


def detect(root: Path) -> bool:
    files = span_files(root)
    return bool(split_dirs(root)) or (bool(files) and _span_layout(files))


def _index(name, names_index: dict[str, int], where: str, mid: str) -> int:
    if name not in names_index:
        close = difflib.get_close_matches(str(name), names_index, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DatasetError(
            f"{where} (id {mid}): unknown technique {name!r}{hint}; the known techniques are listed "
            "in memeprobe/data/techniques.txt — fix the name in the annotations"
        )
    return names_index[name]


def _multi_hot(names, names_index: dict[str, int], where: str, mid: str) -> tuple[int, ...]:
    if not isinstance(names, list):
        raise DatasetError(f"{where} (id {mid}): 'labels' must be a list of technique names, got {names!r}")
    hot = [0] * len(names_index)
    for name in names:
        hot[_index(name, names_index, where, mid)] = 1
    return tuple(hot)


def _spans(labels, text: str, names_index: dict[str, int], where: str, mid: str, mismatches: list) -> tuple[Span, ...]:
    if not isinstance(labels, list):
        raise DatasetError(f"{where} (id {mid}): 'labels' must be a list of {{start, end, technique}} objects, "
                             f"got {labels!r}")
    out = []
    for j, lab in enumerate(labels, start=1):
        if not isinstance(lab, dict) or not {"start", "end", "technique"} <= set(lab):
            raise DatasetError(f"{where} (id {mid}) span {j}: expected {{start, end, technique, text_fragment}}, "
                                 f"got {lab!r}")
        start, end = lab["start"], lab["end"]
        if (isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int)
                or not 0 <= start < end <= len(text)):
            raise DatasetError(f"{where} (id {mid}) span {j}: offsets {start!r}..{end!r} are not 0 <= start < end "
                                 f"<= {len(text)} (the text length); fix the span's character offsets")
        frag = lab.get("text_fragment")
        if isinstance(frag, str) and frag != text[start:end]:
            mismatches.append(f"{where} (id {mid}) span {j}")
        out.append(Span(start, end, _index(lab["technique"], names_index, where, mid)))
    return tuple(sorted(set(out)))


def _records(path: Path):
    """``(where, record)`` for each object of a JSON array file; one clear line for anything else."""
    records = read_json(path)
    if not isinstance(records, list):
        raise DatasetError(f"{path}: expected a JSON array of memes, got {type(records).__name__}")
    for i, rec in enumerate(records, start=1):
        where = f"{path} record {i}"
        if not isinstance(rec, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {rec!r}")
        yield where, rec


def _load_spans(root: Path, files: list[Path], allow_empty_text: bool, allow_duplicate_ids: bool,
                image_root=None) -> Dataset:
    names = text_techniques()
    index = {n: i for i, n in enumerate(names)}
    b = DatasetBuilder(root, "semeval2021_task6", allow_empty_text, allow_duplicate_ids, image_root)
    mismatches: list[str] = []
    for path in files:
        for where, rec in _records(path):
            mid = meme_id(rec.get("id"), where)
            text = text_value(rec.get("text"), where)
            spans = _spans(rec["labels"], text, index, where, mid, mismatches) if rec.get("labels") is not None else None
            hot = None
            if spans is not None:
                hot = [0] * len(names)
                for sp in spans:
                    hot[sp.label] = 1
            b.add(Meme(id=mid, split=path.stem, text=text, image=None,
                       labels=None if hot is None else tuple(hot), spans=spans), where)
    if mismatches:  # the offsets are authoritative (the task's scorer uses them); the fragment is a copy
        b.notes.append(f"{len(mismatches)} span(s) have a text_fragment other than text[start:end], e.g. "
                       f"{mismatches[0]}; their character offsets are used")
    return b.build(label_names=names)


def load(root: Path, allow_empty_text: bool = False, allow_duplicate_ids: bool = False, image_root=None) -> Dataset:
    root = Path(root)
    dirs = split_dirs(root)
    if not dirs:
        files = span_files(root)
        if files:
            return _load_spans(root, files, allow_empty_text, allow_duplicate_ids, image_root)
        raise DatasetError(f"{root}: no SPLIT/labels.json files (SemEval-2021 Task 6 subtask 3 layout) and no "
                             "train.json/dev.json/test.json (subtasks 1-2 span layout)")
    names = techniques()
    index = {n: i for i, n in enumerate(names)}
    b = DatasetBuilder(root, "semeval2021_task6", allow_empty_text, allow_duplicate_ids, image_root)
    for d in dirs:
        for where, rec in _records(d / "labels.json"):
            mid = meme_id(rec.get("id"), where)
            image = rec.get("image")
            b.add(Meme(
                id=mid,
                split=d.name,
                text=text_value(rec.get("text"), where),
                image=b.image(f"{d.name}/images/{image}" if isinstance(image, str) and image else image, where),
                labels=_multi_hot(rec["labels"], index, where, mid) if "labels" in rec else None,
            ), where)
    return b.build(label_names=names)
