"""Hateful Memes (Kiela et al. 2020): ``SPLIT.jsonl`` files of ``{"id","img","label","text"}``.

Ids are kept as written (``"01235"`` stays zero-padded; an int id ``1235`` becomes ``"1235"``);
``img`` is relative to the dataset root; test files without ``label`` give unlabeled memes.
Ids shared across splits (dev_seen/dev_unseen share 400) are kept in both and reported in notes.
"""
from __future__ import annotations

from pathlib import Path

from memeprobe.data.builder import DatasetBuilder, binary_value, meme_id, ordered_splits, text_value
from memeprobe.data.readers import read_jsonl
from memeprobe.data.records import Dataset, Meme
from memeprobe.errors import DatasetError

SPLITS = ("train", "dev_seen", "dev_unseen", "test_seen", "test_unseen", "dev", "test")


def split_files(root: Path) -> list[Path]:
    """The known split files present under ``root``, in split order."""
    return [root / f"{s}.jsonl" for s in ordered_splits(SPLITS) if (root / f"{s}.jsonl").is_file()]


def detect(root: Path) -> bool:
    """A folder with known split files whose first record has an ``img`` key."""
    files = split_files(root)
    if not files:
        return False
    with open(files[0], encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    return '"img"' in first


def load(root: Path, allow_empty_text: bool = False, allow_duplicate_ids: bool = False, image_root=None) -> Dataset:
    root = Path(root)
    files = split_files(root)
    if not files:
        raise DatasetError(
            f"{root}: no Hateful Memes split files (expected some of {', '.join(s + '.jsonl' for s in SPLITS)})"
        )
    b = DatasetBuilder(root, "hateful_memes", allow_empty_text, allow_duplicate_ids, image_root)
    for path in files:
        for line, row in read_jsonl(path):
            where = f"{path} line {line}"
            mid = meme_id(row.get("id"), where)
            b.add(Meme(
                id=mid,
                split=path.stem,
                text=text_value(row.get("text"), where),
                image=b.image(row.get("img"), where),
                label=binary_value(row.get("label"), where, mid),
            ), where)
    return b.build(binary_name="hateful")
