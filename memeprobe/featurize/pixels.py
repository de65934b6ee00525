"""``pixels``: weight-free image features (the offline image default, labelled honestly as such).

``image_embed`` = joint RGB colour histogram (4x4x4 bins, sums to 1) ‖ per-channel mean and std
‖ 16x16 grey thumbnail (values 0..1); ``image_phash`` = the 64-bit perceptual hash of :func:`memeprobe.data.images.phash_bits` as 0/1 bytes.
Large images are first box-reduced by an integer factor to a shortest side of about 256 px, as the
hash does (the statistics barely change; the cost drops ~10x). These capture near-duplicates and
colour/layout cues, not semantics.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageStat

from memeprobe.data.images import HASH_SIDE, phash_bits, reduced
from memeprobe.featurize.base import Featurizer
from memeprobe.store import ArraySpec

HIST_BINS = 4
THUMB = 16
EMBED_DIM = HIST_BINS**3 + 6 + THUMB * THUMB
BAND = 1 << 18  # pixels histogrammed at a time


def pixel_features(image) -> dict:
    """Features of one RGB PIL image (see module docstring)."""
    image = reduced(image)
    rgb = np.asarray(image, dtype=np.uint8)
    hist, step = np.zeros(HIST_BINS**3, np.int64), max(1, BAND // rgb.shape[1])
    for lo in range(0, rgb.shape[0], step):  # a band of rows at a time (uint8 codes < 64): bounded memory
        q = rgb[lo:lo + step] // (256 // HIST_BINS)
        hist += np.bincount(((q[..., 0] * HIST_BINS + q[..., 1]) * HIST_BINS + q[..., 2]).ravel(),
                            minlength=HIST_BINS**3)
    hist = hist.astype(np.float32)
    hist /= max(hist.sum(), 1.0)
    stat = ImageStat.Stat(image)
    stats = np.asarray(stat.mean + stat.stddev, dtype=np.float32) / 255.0
    grey = image.convert("L")
    thumb = np.asarray(grey.resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.float32).ravel() / 255.0
    bits = phash_bits(image)
    return {"image_embed": np.concatenate([hist, stats, thumb]).astype(np.float32), "image_phash": bits}


class PixelFeaturizer(Featurizer):
    """All the work happens in the DataLoader workers; ``encode_image`` only hands the arrays over."""

    modalities = ("image",)

    def weights_sha256(self) -> str:
        return ""  # no weights

    def prepare(self) -> None:
        """No weights, no model: ready as built."""

    def preprocessing(self) -> dict:
        return {
            "features": f"reduce-to-{HASH_SIDE}+rgb-hist{HIST_BINS}^3+mean-std+grey-thumb{THUMB}+phash64",
            "downscale": self.options.downscale,
        }

    def arrays(self) -> dict:
        return {
            "image_embed": ArraySpec(shape=(EMBED_DIM,), modality="image", dtype="float16"),
            "image_phash": ArraySpec(shape=(64,), modality="image", dtype="uint8"),
        }

    def image_transform(self):
        return pixel_features

    def encode_image(self, batch: dict) -> dict:
        return {k: np.asarray(v.cpu() if hasattr(v, "cpu") else v) for k, v in batch.items()
                if k in ("image_embed", "image_phash")}
