"""Image duplicates: a hash of the decoded pixels (exact) and perceptual hashes (near, Hamming distance).

Images are decoded by :func:`memeprobe.data.images.open_image` (the loader featurize uses: upright,
8 bit, RGB or RGBA when some pixel is transparent). The pixel hash is sha1 over mode, size and raw
pixels, so a PNG re-saved (or a JPEG stored under a .png name) with the same pixels matches; the
perceptual hash is :func:`memeprobe.data.images.phash_bits` (64 bits, the one ``pixels`` stores).
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from memeprobe.data.images import ImageFailure, open_image, phash_bits
from memeprobe.threads import worker_count


def pixel_hash(im) -> str:
    """sha1 hex digest of the decoded pixels of an image from :func:`memeprobe.data.images.open_image`."""
    h = hashlib.sha1(f"{im.mode}:{im.size[0]}x{im.size[1]}:".encode())
    h.update(im.tobytes())
    return h.hexdigest()


@dataclass
class ImageHashes:
    """Per-row hashes: ``pixel[i]`` ("" = not available), ``phash[i]`` (64 bits), ``ok[i]``."""

    pixel: list[str]
    phash: np.ndarray  # (n, 64) uint8 0/1
    ok: np.ndarray  # (n,) bool: hashes are valid for this row
    problems: dict[int, str] = field(default_factory=dict)  # row -> why it has no hashes


def _hash_one(path, given):
    """``(pixel hash, phash bits, problem)`` of one image file."""
    if path is None:
        return "", None, "no image in the annotations"
    try:
        im = open_image(path)
    except ImageFailure as e:
        return "", None, str(e)
    bits = phash_bits(im) if given is None or not given.any() else given
    return pixel_hash(im), bits, None


def hash_images(paths, phash_given: np.ndarray | None = None, workers: int | None = None) -> ImageHashes:
    """Decode every image once and hash it (in ``workers`` threads; Pillow decodes without the GIL).

    ``paths[i]`` is a Path or None (no image). Rows whose image is absent or undecodable get ``ok=False``
    and a reason in ``problems``; ``phash_given`` (n, 64) rows that are not all-zero replace the
    computed perceptual hash.
    """
    n = len(paths)
    pixel, phash, ok = [""] * n, np.zeros((n, 64), np.uint8), np.zeros(n, bool)
    problems: dict[int, str] = {}
    given = [None] * n if phash_given is None else list(phash_given)
    todo = [i for i in range(n) if paths[i] is not None]  # (no thread hop for rows without an image)
    with ThreadPoolExecutor(max_workers=workers or worker_count()) as pool:
        done = dict(zip(todo, pool.map(_hash_one, [paths[i] for i in todo], [given[i] for i in todo])))
    for i in range(n):
        digest, bits, problem = done.pop(i) if i in done else _hash_one(None, None)
        if problem is not None:
            problems[i] = problem
            continue
        pixel[i], phash[i], ok[i] = digest, bits, True
    return ImageHashes(pixel, phash, ok, problems)


def hamming(bits: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance of the 64-bit hashes of rows ``a`` and ``b`` (what ``phash_blocks`` thresholds)."""
    return (bits[a] != bits[b]).sum(axis=1)


def phash_blocks(bits: np.ndarray, max_distance: int, rows=None, block: int | None = None):
    """Blocks of pairs ``(i, j, hamming)``, ``i < j``, of 64-bit hashes within ``max_distance`` bits (faiss
    binary range search, ``block`` queries at a time, by default as many as give at most ~1M pairs when
    every hash is near every other: memory bounded however many pairs there are)."""
    import faiss  # lazy: faiss only when hashes are compared

    rows = np.arange(len(bits)) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(rows) < 2:
        return
    block = block or max(16, (1 << 20) // len(rows))
    packed = np.packbits(bits[rows].astype(np.uint8), axis=1)
    index = faiss.IndexBinaryFlat(64)
    index.add(packed)
    for start in range(0, len(rows), block):
        lims, dist, nbr = index.range_search(packed[start:start + block], max_distance + 1)  # faiss keeps < radius
        q = start + np.repeat(np.arange(len(lims) - 1), np.diff(lims).astype(np.int64))
        keep = q < nbr
        yield rows[q[keep]], rows[nbr[keep]], dist[keep].astype(np.int32)
