"""The record types every adapter produces and every later stage consumes."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple


class Span(NamedTuple):
    """A labelled character span of a meme's text: ``text[start:end]`` uses technique ``label_names[label]``."""

    start: int
    end: int
    label: int


@dataclass(frozen=True)
class Meme:
    """One meme. ``(split, id)`` is unique within a dataset; ``id`` alone may repeat across splits."""

    id: str
    split: str
    text: str
    image: str | None = None  # path relative to the dataset root, as written in the annotations
    label: int | None = None  # binary label (0/1); None when unlabeled
    labels: tuple[int, ...] | None = None  # multi-hot over Dataset.label_names; None when unlabeled
    spans: tuple[Span, ...] | None = None  # technique spans of the text (labelled rows of span datasets only)


@dataclass
class Dataset:
    """All memes of a dataset, in a fixed order (the store's row order)."""

    root: Path
    format: str
    memes: list[Meme]
    label_names: tuple[str, ...] = ()  # multi-label classes (empty when the dataset has none)
    binary_name: str | None = None  # meaning of Meme.label, e.g. "hateful"; None when there is none
    notes: list[str] = field(default_factory=list)  # facts worth reporting (e.g. ids shared across splits)
    image_dir: Path | None = None  # the folder image paths are relative to, when not the root
    options: dict = field(default_factory=dict)  # the dataset options it was loaded with (JSON-able)

    @property
    def image_root(self) -> Path:
        """The folder image paths are relative to (the dataset root unless an image root was given)."""
        return self.image_dir or self.root

    def splits(self) -> list[str]:
        """Split names in first-seen order."""
        return list(dict.fromkeys(m.split for m in self.memes))

    def split(self, name: str) -> list[Meme]:
        return [m for m in self.memes if m.split == name]

    def image_folders(self) -> list[Path]:
        """The folders the memes' images are in (each once), and the image root when one was given."""
        folders = {os.path.dirname(m.image) for m in self.memes if m.image}
        return [self.image_root / f for f in sorted(folders)] + ([self.image_dir] if self.image_dir else [])

    def image_path(self, meme: Meme) -> Path | None:
        """Absolute path of a meme's image (it may not exist); None when the meme has no image."""
        return (self.image_root / meme.image) if meme.image else None

    def fingerprint(self) -> str:
        """sha256 over (split, id, text, image) of every row, in order: ties a store to its dataset."""
        return fingerprint_rows([m.split for m in self.memes], [m.id for m in self.memes],
                                [m.text for m in self.memes], [m.image or "" for m in self.memes])


def fingerprint_rows(splits, ids, texts, images) -> str:
    """:meth:`Dataset.fingerprint` of the rows given as columns (``""`` = no image): each row's fields joined
    by U+001F and ended by U+001E, UTF-8, one sha256; hashed in blocks of rows (bounded memory)."""
    h = hashlib.sha256()
    for lo in range(0, len(ids), 8192):
        block = (list(c[lo:lo + 8192]) if isinstance(c, list) else c[lo:lo + 8192].tolist()
                 for c in (splits, ids, texts, images))
        h.update(("\x1e".join(map("\x1f".join, zip(*block))) + "\x1e").encode("utf-8"))
    return h.hexdigest()
