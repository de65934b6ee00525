"""JPEG thumbnails of a dataset's pictures for the self-contained HTML pages (the leakage report, the explain
page): decoded by :func:`memeprobe.data.images.open_image` in threads, embedded only when the picture lies
(symlinks followed) inside the folder its paths are relative to, so a page never carries a file from elsewhere."""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from memeprobe.data.images import ImageFailure, open_image
from memeprobe.threads import worker_count


def thumbnail_jpeg(path, size: int = 160) -> bytes | None:
    """A small JPEG of the image (None when it cannot be read)."""
    try:
        im = open_image(path).convert("RGB")
    except ImageFailure:
        return None
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def inside(root, path) -> bool:
    """Whether the file ``path`` resolves (symlinks followed) inside the folder ``root``."""
    try:
        return Path(path).resolve(strict=True).is_relative_to(Path(root).resolve())
    except OSError:
        return False


def thumbnails(paths: dict, root, size: int) -> dict:
    """``{key: JPEG bytes}`` of the pictures ``paths`` (``{key: Path or None}``) that lie inside ``root`` and can
    be read; a picture several keys share is decoded once."""
    paths = {k: p for k, p in paths.items() if p is not None and inside(root, p)}
    distinct = list(dict.fromkeys(paths.values()))
    with ThreadPoolExecutor(max_workers=worker_count()) as pool:
        done = dict(zip(distinct, pool.map(lambda p: thumbnail_jpeg(p, size), distinct)))
    return {k: done[p] for k, p in paths.items() if done[p]}


def missing_note(path, root) -> str:
    """Why a meme whose picture is at ``path`` (None: it has none) has no thumbnail."""
    if path is None:
        return "no image"
    if not Path(path).exists():
        return "picture missing"
    return "picture not readable" if inside(root, path) else "picture outside the dataset folder: not embedded"
