"""The leakage analysis's options (``LeakageConfig``), checked against one constraint dict before any heavy
import (sklearn, faiss): a bad option costs nothing."""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

from memeprobe.leakage.neighbors import EXACT_LIMIT
from memeprobe.params import Range, check

MAX_PAIRS = 1000  # member pairs listed in full per link; beyond, member x anchor pairs (see classes)

_SIMILARITY = Range(Real, 0, 1, closed="right")


@dataclass
class LeakageConfig:
    """Detection thresholds (why these defaults: :mod:`memeprobe.leakage.analysis`); checked against :data:`CONSTRAINTS`."""

    text_threshold: float | None = None  # cosine of text embeddings; None: chosen from the data (calibrate)
    image_threshold: float | None = None  # cosine of image embeddings; None: chosen from the data (calibrate)
    phash_distance: int = 12  # max Hamming distance of 64-bit perceptual hashes
    jaccard: float = 0.7  # token Jaccard of normalised texts
    train_split: str = "train"
    exact_limit: int = EXACT_LIMIT  # rows searched exactly (tiled matmul); FAISS IVF beyond (measured crossover)
    max_group_pairs: int = MAX_PAIRS  # member pairs listed in full per duplicate class (see classes)

    def __post_init__(self):
        check(CONSTRAINTS, vars(self), "leakage")


CONSTRAINTS = {  # LeakageConfig's options, in the vocabulary of memeprobe.params
    "text_threshold": [_SIMILARITY, None], "image_threshold": [_SIMILARITY, None], "jaccard": [_SIMILARITY],
    "phash_distance": [Range(Integral, 0, 64)],  # bits of a 64-bit hash
    "train_split": [str],
    "exact_limit": [Range(Integral, 0, None)],
    "max_group_pairs": [Range(Integral, 1, None)],
}
