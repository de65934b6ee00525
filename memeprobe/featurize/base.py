"""The featurizer interface every family implements, and the tensor helpers they share.

A featurizer is built cheaply from a :class:`~memeprobe.featurize.spec.Spec` (no weights read) and
states its provenance without loading the model. It is *ready* (its arrays and pre-processing known)
after ``load(device)``, which reads the weights, or after ``prepare()``, which does not where the family
allows (a Ray run needs only :class:`Prepared` and :class:`Preprocess` before its actors load). Pre-processing (``image_transform`` /
``text_collate``) returns picklable callables that run in DataLoader worker processes or Ray tasks;
``encode_image`` / ``encode_text`` run the loaded model on a collated batch and return
``{array name: numpy array with one row per item}``.
"""
from __future__ import annotations

import abc
from typing import NamedTuple

import numpy as np


class ImageTransform:
    """Picklable (runs in DataLoader workers): PIL image → {"pixels": transform(image), "size": (w, h)}."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image) -> dict:
        import torch  # lazy: torch

        return {"pixels": self.transform(image), "size": torch.tensor(image.size)}


class Prepared(NamedTuple):
    """What the store needs from a ready featurizer: its feature set's arrays and provenance."""

    arrays: dict  # {array name: ArraySpec}
    provenance: dict

    @classmethod
    def of(cls, f: "Featurizer") -> "Prepared":
        return cls(f.arrays(), f.provenance())


class Preprocess(NamedTuple):
    """What the readers need from a ready featurizer (picklable: DataLoader workers and Ray tasks run it)."""

    transform: object  # image_transform(), or None without the image modality
    collate: object  # text_collate(), or None without the text modality

    @classmethod
    def of(cls, f: "Featurizer") -> "Preprocess":
        return cls(f.image_transform() if "image" in f.modalities else None,
                   f.text_collate() if "text" in f.modalities else None)


class Featurizer(abc.ABC):
    """Encoder-stage contract: cheap ``__init__`` (no weights read), explicit ``load(device)``,
    ``encode(batch, modality) -> {array name: np.ndarray}``. Subclasses set ``modalities`` and implement
    the abstract hooks, plus the pre-processing and ``encode_*`` hooks of their modalities."""

    modalities: tuple[str, ...] = ()

    def __init__(self, spec, options):
        self.spec = spec
        self.options = options
        self.device = None

    @property
    def name(self) -> str:
        return self.spec.name

    def provenance(self) -> dict:
        """Identity of the features: encoder spec, weights sha256, preprocessing (no model load)."""
        return {"encoder": self.spec.text, "weights_sha256": self.weights_sha256(), "preprocessing": self.preprocessing()}

    @abc.abstractmethod
    def weights_sha256(self) -> str:
        raise NotImplementedError

    @abc.abstractmethod
    def preprocessing(self) -> dict:
        raise NotImplementedError

    def load(self, device) -> None:
        """Read the weights and move the model to ``device`` (a torch.device); makes the featurizer ready."""
        self.device = device

    def prepare(self) -> None:
        """Make the featurizer ready without reading its weights where the family allows (configs, a
        tokeniser, the architecture on torch's meta device). This default loads on the CPU; so do the
        families' own versions when the weights are not local yet, so that the provenance names the file
        that a later ``load`` reads."""
        import torch  # lazy: torch

        self.load(torch.device("cpu"))

    @abc.abstractmethod
    def arrays(self) -> dict:
        """``{array name: ArraySpec}`` written by this featurizer (once ready)."""
        raise NotImplementedError

    def image_transform(self):
        """Picklable ``PIL.Image -> dict`` run in workers (image modality)."""
        raise NotImplementedError

    def text_collate(self):
        """Picklable ``list[str] -> dict`` run in workers (text modality)."""
        raise NotImplementedError

    def encode(self, batch: dict, modality: str) -> dict:
        """Run the loaded model on one collated batch of ``modality``: ``{array name: np.ndarray}``."""
        return self.encode_image(batch) if modality == "image" else self.encode_text(batch)

    def encode_image(self, batch: dict) -> dict:
        raise NotImplementedError

    def encode_text(self, batch: dict) -> dict:
        raise NotImplementedError


def char_limit(max_tokens: int, vocabulary) -> int:
    """Characters that hold more than ``max_tokens`` tokens once whitespace runs are single spaces, unless
    a word is too long for the vocabulary (then one unknown token): no other token covers more characters
    than the longest vocabulary entry (plus the space before it)."""
    longest = max((len(t) for t in vocabulary), default=64)
    return max_tokens * (longest + 1)


def cap_text(text: str, limit: int) -> tuple[str, bool]:
    """``(text, False)`` for a text of at most ``limit`` characters; else the text with whitespace runs
    collapsed, cut at ``limit`` characters, and whether it was cut. Keeps a megabyte of text from
    costing hundreds of MB in the tokeniser; callers check that the cut still overflows the token limit."""
    if len(text) <= limit:
        return text, False
    end = 2 * limit
    while True:  # grow the prefix until its collapsed form is long enough (linear overall)
        kept = " ".join(text[:end].split())
        if len(kept) > limit or end >= len(text):
            return kept[:limit], len(kept) > limit
        end *= 2


def to_numpy(t) -> np.ndarray:
    """float32 numpy copy of a (possibly bf16, possibly CUDA) tensor."""
    return t.detach().float().cpu().numpy()


def grid_pool(fmap, grid: int):
    """(B, C, H, W) feature map → (B, grid*grid, C) by adaptive average pooling, rows top-left first."""
    import torch.nn.functional as F  # lazy: torch

    pooled = F.adaptive_avg_pool2d(fmap.float(), grid)
    return pooled.flatten(2).transpose(1, 2)


def grid_boxes(grid: int, sizes, resize_mode: str = "squash", crop: float = 1.0) -> np.ndarray:
    """Normalised (x1, y1, x2, y2) of each grid cell in the image given to the transform, one (grid*grid, 4) per size.

    ``resize_mode="shortest"`` accounts for the centre crop (resize the shortest side, keep the middle
    square, ``crop`` = fraction of the shortest side kept): cells then cover only the cropped part.
    ``"squash"`` maps linearly. (After ``--downscale`` the given image is a linear squash of the
    original, so the boxes are in original normalised coordinates too.)
    """
    edges = np.linspace(0.0, 1.0, grid + 1)
    y1, x1 = np.meshgrid(edges[:-1], edges[:-1], indexing="ij")
    y2, x2 = np.meshgrid(edges[1:], edges[1:], indexing="ij")
    cells = np.stack([x1.ravel(), y1.ravel(), x2.ravel(), y2.ravel()], axis=1)
    out = []
    for w, h in sizes:
        fx = fy = 1.0
        if resize_mode == "shortest":
            side = crop * min(w, h)
            fx, fy = side / w, side / h
        ox, oy = (1 - fx) / 2, (1 - fy) / 2
        out.append(cells * [fx, fy, fx, fy] + [ox, oy, ox, oy])
    return np.stack(out).astype(np.float32)
