"""MAMI (SemEval-2022 Task 5): one TSV/CSV per split with ``file_name``, labels and text.

Columns: ``file_name``; ``misogynous`` or ``label`` (sub-task A, binary); ``shaming``, ``stereotype``,
``objectification``, ``violence`` (sub-task B, multi-label); ``text`` or ``Text Transcription``.
A file without label columns (the test file) gives unlabeled memes. The split is the file stem.
Images are looked for, per split, in ``images/SPLIT/``, ``SPLIT/``, ``SPLIT/images/``, ``images/``,
``img/`` and the root itself; the folder holding most of the split's files wins. When none has any,
paths are ``images/NAME`` and the images count as missing.
"""
from __future__ import annotations

import os
from pathlib import Path

from memeprobe.data.builder import DatasetBuilder, binary_value, meme_id, ordered_splits, text_value
from memeprobe.data.readers import read_header, read_table
from memeprobe.data.records import Dataset, Meme
from memeprobe.errors import DatasetError

LABEL_NAMES = ("shaming", "stereotype", "objectification", "violence")
BINARY_COLUMNS = ("misogynous", "label")
TEXT_COLUMNS = ("text", "Text Transcription")


def split_files(root: Path) -> list[Path]:
    """The ``.tsv``/``.csv`` files under ``root`` whose header has ``file_name``, in split order."""
    files = {p.stem: p for p in sorted(root.iterdir()) if p.suffix.lower() in (".tsv", ".csv")
             and "file_name" in read_header(p)}
    return [files[s] for s in ordered_splits(files)]


def detect(root: Path) -> bool:
    return bool(split_files(root))


def _image_folder(root: Path, split: str, names: list[str]) -> str:
    """The candidate folder (relative to root) holding most of ``names``; ``images`` when none does."""
    best, best_found = "images", 0
    for folder in (f"images/{split}", split, f"{split}/images", "images", "img", ""):
        base = root / folder
        if not base.is_dir():
            continue
        found = sum(1 for n in names if os.path.exists(base / n))
        if found > best_found:
            best, best_found = folder, found
        if found == len(names):
            break
    return best


def _column(header: list[str], choices: tuple[str, ...]) -> str | None:
    return next((c for c in choices if c in header), None)


def load(root: Path, allow_empty_text: bool = False, allow_duplicate_ids: bool = False, image_root=None) -> Dataset:
    root = Path(root)
    files = split_files(root)
    if not files:
        raise DatasetError(f"{root}: no MAMI split files (.tsv/.csv with a file_name column)")
    b = DatasetBuilder(root, "mami", allow_empty_text, allow_duplicate_ids, image_root)
    for path in files:
        header, rows = read_table(path)
        text_col = _column(header, TEXT_COLUMNS)
        if text_col is None:
            raise DatasetError(f"{path}: no text column (expected one of {', '.join(TEXT_COLUMNS)})")
        binary_col = _column(header, BINARY_COLUMNS)
        has_b = all(c in header for c in LABEL_NAMES)
        folder = _image_folder(Path(image_root or root), path.stem, [r["file_name"].strip() for _, r in rows])
        for line, row in rows:
            where = f"{path} line {line}"
            mid = meme_id(row["file_name"], where)
            labels = None
            if has_b:
                values = [binary_value(row[c], where, mid) for c in LABEL_NAMES]
                if None in values and any(v is not None for v in values):
                    missing = [c for c, v in zip(LABEL_NAMES, values) if v is None]
                    raise DatasetError(
                        f"{where} (id {mid}): empty {', '.join(missing)} label(s) while other sub-task B "
                        "labels are given; fill in 0 or 1"
                    )
                labels = None if None in values else tuple(values)
            b.add(Meme(
                id=mid,
                split=path.stem,
                text=text_value(row[text_col], where),
                image=b.image(f"{folder}/{mid}" if folder else mid, where),
                label=binary_value(row[binary_col], where, mid) if binary_col else None,
                labels=labels,
            ), where)
    return b.build(label_names=LABEL_NAMES, binary_name="misogynous")
