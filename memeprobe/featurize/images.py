"""Robust image loading: sniff the content (not the extension), verify, decode, guard against bombs.

Every failure becomes an :class:`ImageFailure` whose message is the reason stored for the row,
so one bad file never stops a featurize run.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's decompression-bomb threshold (~89.5 Mpx)


class ImageFailure(Exception):
    """An image that cannot be featurized; ``str(e)`` is the short reason recorded in the store."""


def load_image(path, max_pixels: int | None = DEFAULT_MAX_PIXELS, downscale: int | None = None) -> Image.Image:
    """Open ``path`` as an RGB image whatever its extension says (JPEG bytes in a .png are fine).

    ``max_pixels`` refuses images with more pixels before decoding them (decompression bombs);
    ``downscale`` resizes to ``downscale x downscale`` right after decoding (the OS-AI 64x64 setting).
    """
    if path is None:
        raise ImageFailure("no image for this meme")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageFailure(f"missing file {path}")
    if os.path.getsize(path) == 0:
        raise ImageFailure(f"empty file (0 bytes) {path}")
    try:
        with _pillow_limit_lifted():  # max_pixels decides, not Pillow's own global limit
            with Image.open(path) as probe:  # reads the header only; format sniffed from the bytes
                _check_size(probe.size, max_pixels, path)
                probe.verify()
            with Image.open(path) as im:
                im.load()
                image = im.convert("RGB")
    except ImageFailure:
        raise
    except UnidentifiedImageError:
        raise ImageFailure(f"not an image (unrecognised bytes) {path}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated / corrupt streams
        raise ImageFailure(f"corrupt image {path}: {e}") from None
    if downscale:
        image = image.resize((downscale, downscale), Image.Resampling.BICUBIC)
    return image


@contextmanager
def _pillow_limit_lifted():
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _check_size(size, max_pixels, path):
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageFailure(f"image has no pixels ({w}x{h}) {path}")
    if max_pixels is not None and w * h > max_pixels:
        raise ImageFailure(
            f"decompression bomb refused: {w}x{h} = {w * h} pixels > limit {max_pixels} "
            f"({path}; raise --max-pixels if the image is genuine)"
        )
