"""The featurizer interface every family implements, and the tensor helpers they share.

A featurizer is built cheaply from a :class:`~memeprobe.featurize.spec.Spec` (no weights read),
states its provenance without loading the model, and only ``load(device)`` touches the weights.
Pre-processing (``image_transform`` / ``text_collate``) returns picklable callables that run in
DataLoader worker processes; ``encode_image`` / ``encode_text`` run the model on a collated batch
and return ``{array name: numpy array with one row per item}``.
"""
from __future__ import annotations

import numpy as np


class ImageTransform:
    """Picklable (runs in DataLoader workers): PIL image → {"pixels": transform(image), "size": (w, h)}."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image) -> dict:
        import torch

        return {"pixels": self.transform(image), "size": torch.tensor(image.size)}


class Featurizer:
    """Base class: subclasses set ``modalities`` and implement the hooks below."""

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

    def weights_sha256(self) -> str:
        raise NotImplementedError

    def preprocessing(self) -> dict:
        raise NotImplementedError

    def load(self, device) -> None:
        """Read the weights and move the model to ``device`` (a torch.device)."""
        self.device = device

    def arrays(self) -> dict:
        """``{array name: ArraySpec}`` written by this featurizer (after ``load``)."""
        raise NotImplementedError

    def image_transform(self):
        """Picklable ``PIL.Image -> dict`` run in workers (image modality)."""
        raise NotImplementedError

    def text_collate(self):
        """Picklable ``list[str] -> dict`` run in workers (text modality)."""
        raise NotImplementedError

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
    import torch.nn.functional as F

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
