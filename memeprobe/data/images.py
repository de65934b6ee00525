"""The one image loader and the one perceptual hash, used by featurize, leakage and the synthetic generator.

Loading refuses what is not a regular file (FIFOs, devices, folders) before opening it, sniffs the
format from the bytes (JPEG bytes in a .png are fine), refuses decompression bombs before decoding,
applies the EXIF orientation and scales 16-bit / 32-bit pixels to 8 bit (instead of clipping).
Every failure is an :class:`ImageFailure` whose message is the short reason recorded for the row.
"""
from __future__ import annotations

import os
import stat
import warnings
from contextlib import contextmanager, nullcontext

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's decompression-bomb threshold (~89.5 Mpx)
warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # open_image refuses those images itself
_WIDE = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # 16/32-bit grey modes
HASH_SIDE = 256  # phash works on the image box-reduced to a shortest side of about this many pixels


class ImageFailure(Exception):
    """An image that cannot be used; ``str(e)`` is the short reason recorded for the row."""


def open_image(path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``path`` into RGB (RGBA when some pixel is transparent), upright and 8 bits per channel."""
    if path is None:
        raise ImageFailure("no image for this meme")
    path = os.fspath(path)
    try:
        st = os.stat(path)  # follows symlinks: the file that would be opened
    except FileNotFoundError:
        raise ImageFailure(f"missing file {path}") from None
    except OSError as e:
        raise ImageFailure(f"cannot read {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ImageFailure(f"not a regular file (a folder, FIFO or device) {path}")
    if st.st_size == 0:
        raise ImageFailure(f"empty file (0 bytes) {path}")
    lift = max_pixels is None or max_pixels > DEFAULT_MAX_PIXELS  # else Pillow's own limit is no stricter
    try:
        with _pillow_limit_lifted() if lift else nullcontext():
            with Image.open(path) as probe:  # reads the header only; format sniffed from the bytes
                _check_size(probe.size, max_pixels, path)
                probe.verify()
            with Image.open(path) as im:
                im.load()
                return _canonical(ImageOps.exif_transpose(im))
    except ImageFailure:
        raise
    except Image.DecompressionBombError:  # over twice Pillow's limit (>= max_pixels): refused while opening
        with _pillow_limit_lifted(), Image.open(path) as probe:
            size = probe.size
        _check_size(size, max_pixels, path)
        raise
    except UnidentifiedImageError:
        raise ImageFailure(f"not an image (unrecognised bytes) {path}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated / corrupt streams
        raise ImageFailure(f"corrupt image {path}: {e}") from None


def load_image(path, max_pixels: int | None = DEFAULT_MAX_PIXELS, downscale: int | None = None) -> Image.Image:
    """:func:`open_image` as RGB; ``downscale`` resizes to ``downscale x downscale`` (the OS-AI 64x64 setting)."""
    image = open_image(path, max_pixels).convert("RGB")
    if downscale:
        image = image.resize((downscale, downscale), Image.Resampling.BICUBIC)
    return image


def reduced(image: Image.Image) -> Image.Image:
    """Box-reduce by an integer factor to a shortest side of ``HASH_SIDE``..2*``HASH_SIDE`` (idempotent)."""
    factor = min(image.size) // HASH_SIDE
    return image.reduce(factor) if factor > 1 else image


def phash_bits(image: Image.Image) -> np.ndarray:
    """64-bit DCT perceptual hash (``imagehash.phash`` of the reduced grey image) as uint8 0/1."""
    import imagehash

    return np.asarray(imagehash.phash(reduced(image).convert("L")).hash, dtype=np.uint8).reshape(64)


def _canonical(im: Image.Image) -> Image.Image:
    if im.mode in _WIDE:  # scale to 8 bit (a plain convert would clip everything above 255)
        a = np.asarray(im, dtype=np.float64)
        peak = float(a.max(initial=0))
        if im.mode.startswith("I;16"):
            top = 65535.0
        elif im.mode == "F" and peak <= 1.0:
            top = 1.0
        else:
            top = 255.0 if peak <= 255 else max(65535.0, peak)
        return Image.fromarray(np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            return rgba
    return im.convert("RGB")


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
