"""Shared record checks of every adapter: unique ids, non-empty texts, image paths inside the root."""
from __future__ import annotations

import os
import re
from collections import defaultdict
from itertools import combinations
from pathlib import Path

from memeprobe.data.records import Dataset, Meme
from memeprobe.errors import DatasetError
from memeprobe.outputs import name_problem

_SHOW = 5  # ids named in an error message
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # not allowed in an id (ids are lines of clean-id lists and CSVs)


def binary_value(value, where: str, meme_id: str) -> int | None:
    """0/1 from an int or a "0"/"1" string; None/"" = unlabeled; anything else names the row."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value).strip() not in ("0", "1"):
        raise DatasetError(
            f"{where} (id {meme_id}): unknown label value {value!r}; allowed values: 0, 1"
        )
    return int(str(value).strip())


def meme_id(value, where: str) -> str:
    """An id as written: strings stay as they are (zero padding kept), ints become ``str(int)``."""
    if isinstance(value, bool) or value is None or not isinstance(value, (int, str)) or not str(value).strip():
        raise DatasetError(f"{where}: missing or invalid id {value!r}; every meme needs an id (string or int)")
    if isinstance(value, str) and (bad := _CONTROL.search(value.strip())):
        raise DatasetError(f"{where}: id {value!r} contains the control character {bad.group()!r}; an id must be "
                           "one line of printable text: fix it in the annotations")
    return str(value).strip() if isinstance(value, str) else str(value)


def text_value(value, where: str) -> str:
    """The caption text; missing/null becomes "" (caught by the empty-text check), numbers become strings."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        raise DatasetError(f"{where}: text must be a string, got {value!r}")
    return str(value)


_SPLIT_ORDER = ("train", "training", "dev", "dev_seen", "dev_unseen", "val", "validation", "trial",
                "test", "test_seen", "test_unseen")


def ordered_splits(names) -> list[str]:
    """Split names in the usual order (train, dev/validation, test), unknown names after, sorted."""
    rank = {n: i for i, n in enumerate(_SPLIT_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n.lower(), len(rank)), n))


class DatasetBuilder:
    """Collects memes split by split, checking each; :meth:`build` makes the :class:`Dataset`."""

    def __init__(self, root: Path, fmt: str, allow_empty_text: bool = False, allow_duplicate_ids: bool = False,
                 image_root=None):
        self.root = Path(root)
        self.image_dir = Path(image_root) if image_root else None
        self.format = fmt
        self.allow_empty_text = allow_empty_text
        self.allow_duplicate_ids = allow_duplicate_ids
        self.memes: list[Meme] = []
        self.notes: list[str] = []
        self._seen: dict[tuple[str, str], str] = {}
        self._empty: list[tuple[Meme, str]] = []
        self._duplicates: list[tuple[Meme, str]] = []
        self._root_abs = os.path.normpath(os.path.abspath(self.image_dir or self.root))

    def image(self, path, where: str) -> str | None:
        """The image path relative to the image root (as written when relative); outside it is an error."""
        if path is None or (isinstance(path, str) and not path.strip()):
            return None
        if not isinstance(path, str):
            raise DatasetError(f"{where}: image path must be a string, got {path!r}")
        path = path.strip()
        if not os.path.isabs(path) and ".." not in Path(path).parts:
            return path
        full = os.path.normpath(os.path.join(self._root_abs, path))
        if os.path.commonpath([full, self._root_abs]) != self._root_abs:
            kind = "image root" if self.image_dir else "dataset root"
            raise DatasetError(
                f"{where}: image path {path!r} points outside the {kind} {self.image_dir or self.root}; "
                f"image paths must be relative to the {kind} (move the images inside it, or name the folder "
                "they are relative to)", option="image_root"
            )
        return os.path.relpath(full, self._root_abs) if os.path.isabs(path) else path

    def add(self, meme: Meme, where: str) -> None:
        """Adds one meme; ``where`` ("FILE line N") is used in error messages. A split name becomes file
        names (``clean_ids/SPLIT.txt``, plots): it must be one file name."""
        why = name_problem(meme.split)
        if why is not None:
            raise DatasetError(f"{where} (id {meme.id}): split {meme.split!r} cannot be a file name ({why}); "
                               "give the split a plain name such as dev or test_2")
        for field in ("text", "image"):  # HDF5 strings (the store) end at a NUL: the value would be cut
            at = (getattr(meme, field) or "").find("\x00")
            if at >= 0:
                raise DatasetError(f"{where} (id {meme.id}): the {field} holds a NUL byte (\\x00) at character {at}; "
                                   "remove it from the annotations")
        key = (meme.split, meme.id)
        if key in self._seen:
            if not self.allow_duplicate_ids:
                raise DatasetError(
                    f"{where}: duplicate id {meme.id!r} in split {meme.split!r} (first at {self._seen[key]}); "
                    "ids must be unique within a split: remove or renumber the duplicate"
                )
            self._duplicates.append((meme, where))
        else:
            self._seen[key] = where
        if not meme.text.strip():
            self._empty.append((meme, where))
        self.memes.append(meme)

    def build(self, label_names: tuple[str, ...] = (), binary_name: str | None = None) -> Dataset:
        """The dataset, after the empty-text check; notes name shared ids, kept empty texts, duplicates."""
        if self._empty and not self.allow_empty_text:
            shown = "; ".join(f"id {m.id!r} at {w}" for m, w in self._empty[:_SHOW])
            more = f" and {len(self._empty) - _SHOW} more" if len(self._empty) > _SHOW else ""
            raise DatasetError(
                f"{len(self._empty)} meme(s) have empty text: {shown}{more}; fill in the text, or keep them "
                "explicitly", option="allow_empty_text"
            )
        if self._empty:
            self.notes.append(f"{len(self._empty)} meme(s) have empty text (kept)")
        if self._duplicates:
            self.notes.append(
                f"{len(self._duplicates)} duplicate id row(s) within splits, e.g. id {self._duplicates[0][0].id!r} "
                f"at {self._duplicates[0][1]} (kept for diagnosis only)"
            )
        ids = defaultdict(set)
        for m in self.memes:
            ids[m.split].add(m.id)
        for a, b in combinations(ids, 2):
            shared = len(ids[a] & ids[b])
            if shared:
                self.notes.append(f"{a} and {b} share {shared} ids (both splits kept)")
        return Dataset(self.root, self.format, self.memes, tuple(label_names), binary_name, self.notes, self.image_dir)

