"""Reader stage: rows still to do → decoded, pre-processed model inputs, per-row failures carried as data.

Contract (numpy terms): each batch is a :class:`Batch` ``(rows, inputs, failures)``: ``rows`` int64 (n,)
the rows that decoded, ``inputs`` their collated model inputs (``{name: array}``, None when n == 0),
``failures`` one ``(row, reason)`` per row that did not. Items and collate functions are picklable:
they run in DataLoader worker processes (local engine) or Ray tasks (Ray engine).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from memeprobe.data.images import DEFAULT_MAX_PIXELS, ImageFailure, load_image


class Batch(NamedTuple):
    rows: np.ndarray
    inputs: dict | None
    failures: list[tuple[int, str]]


def read_image(path, transform, max_pixels, downscale):
    """(pre-processed item, "") or (None, reason) for one image file."""
    try:
        return transform(load_image(path, max_pixels, downscale)), ""
    except ImageFailure as e:
        return None, str(e)
    except Exception as e:  # a transform that chokes on one odd image must not stop the run
        return None, f"preprocessing failed: {type(e).__name__}: {e}"


class ImageItems:
    """Map-style dataset: index → (row, transformed image or None, failure reason)."""

    def __init__(self, rows, paths, transform, max_pixels, downscale):
        self.rows, self.paths, self.transform = rows, paths, transform
        self.max_pixels, self.downscale = max_pixels, downscale

    @classmethod
    def of(cls, dataset, rows, options, transform=None) -> "ImageItems":
        """The image items of ``rows`` of ``dataset`` under the featurizer ``options``, pre-processed by
        ``transform`` (given later with :meth:`bound` where the items travel before it is known)."""
        paths = [str(dataset.image_path(dataset.memes[r])) for r in rows]
        return cls(rows, paths, transform, options.max_pixels or DEFAULT_MAX_PIXELS, options.downscale)

    def bound(self, transform) -> "ImageItems":
        return ImageItems(self.rows, self.paths, transform, self.max_pixels, self.downscale)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        item, why = read_image(self.paths[i], self.transform, self.max_pixels, self.downscale)
        return int(self.rows[i]), item, why


class TextItems:
    def __init__(self, rows, texts):
        self.rows, self.texts = rows, texts

    @classmethod
    def of(cls, dataset, rows) -> "TextItems":
        return cls(rows, [dataset.memes[r].text for r in rows])

    def bound(self, transform) -> "TextItems":
        return self  # texts are tokenised by the collate

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return int(self.rows[i]), self.texts[i], ""


class Collate:
    """Items → :class:`Batch`: images collated with default_collate, texts with the featurizer's tokeniser."""

    def __init__(self, text_collate=None):
        self.text_collate = text_collate

    @classmethod
    def of(cls, modality: str, pre) -> "Collate":
        """The collate of ``modality`` under a featurizer's :class:`~memeprobe.featurize.base.Preprocess`."""
        return cls(pre.collate if modality == "text" else None)

    def __call__(self, items) -> Batch:
        from torch.utils.data import default_collate  # lazy: torch

        ok = [(r, x) for r, x, why in items if not why]
        inputs = None
        if ok:
            payload = [x for _, x in ok]
            inputs = self.text_collate(payload) if self.text_collate else default_collate(payload)
        return Batch(np.array([r for r, _ in ok], dtype=np.int64), inputs, [(r, why) for r, x, why in items if why])

