"""SemEval-2021 Task 6 (persuasion techniques in memes): ``SPLIT/labels.json`` + ``SPLIT/images/``.

Each ``labels.json`` is a JSON array of ``{id, labels: [technique names], text, image}``; the image
path becomes ``SPLIT/images/NAME`` (relative to the root). Label names are the 22 techniques of
the shipped ``techniques.txt``, in file order; an unknown technique name is an error naming the id.
A record without ``labels`` is unlabeled.
"""
from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from memeprobe.data.builder import DatasetBuilder, meme_id, ordered_splits, text_value
from memeprobe.data.readers import read_json
from memeprobe.data.records import Dataset, Meme
from memeprobe.errors import MemeprobeError


def techniques() -> tuple[str, ...]:
    """The 22 technique names shipped with memeprobe, in file order."""
    text = resources.files("memeprobe.data").joinpath("techniques.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def split_dirs(root: Path) -> list[Path]:
    dirs = {p.name: p for p in root.iterdir() if (p / "labels.json").is_file()}
    return [dirs[s] for s in ordered_splits(dirs)]


def detect(root: Path) -> bool:
    return bool(split_dirs(root))


def _multi_hot(names, names_index: dict[str, int], where: str, mid: str) -> tuple[int, ...]:
    if not isinstance(names, list):
        raise MemeprobeError(f"{where} (id {mid}): 'labels' must be a list of technique names, got {names!r}")
    hot = [0] * len(names_index)
    for name in names:
        if name not in names_index:
            close = difflib.get_close_matches(str(name), names_index, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise MemeprobeError(
                f"{where} (id {mid}): unknown technique {name!r}{hint}; the known techniques are listed "
                "in memeprobe/data/techniques.txt — fix the name in the annotations"
            )
        hot[names_index[name]] = 1
    return tuple(hot)


def load(root: Path, allow_empty_text: bool = False, allow_duplicate_ids: bool = False) -> Dataset:
    root = Path(root)
    dirs = split_dirs(root)
    if not dirs:
        raise MemeprobeError(f"{root}: no SPLIT/labels.json files (SemEval-2021 Task 6 layout)")
    names = techniques()
    index = {n: i for i, n in enumerate(names)}
    b = DatasetBuilder(root, "semeval2021_task6", allow_empty_text, allow_duplicate_ids)
    for d in dirs:
        path = d / "labels.json"
        records = read_json(path)
        if not isinstance(records, list):
            raise MemeprobeError(f"{path}: expected a JSON array of memes, got {type(records).__name__}")
        for i, rec in enumerate(records, start=1):
            where = f"{path} record {i}"
            if not isinstance(rec, dict):
                raise MemeprobeError(f"{where}: expected a JSON object, got {rec!r}")
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
