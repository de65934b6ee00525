"""The one image loader and the one perceptual hash, used by featurize, leakage and the synthetic generator.

Loading refuses what is not a regular file (FIFOs, devices, folders) before opening it, sniffs the
format from the bytes (JPEG bytes in a .png are fine), refuses decompression bombs before decoding,
applies the EXIF orientation and scales 16-bit / 32-bit pixels to 8 bit (instead of clipping).
Animated GIF / PNG / WebP and multi-page TIFF give their first frame (no other frame is decoded).
Every failure is an :class:`ImageFailure` whose message is the short reason recorded for the row.

Memory is bounded by these rules, so that every consumer (each featurizer's transform, the pixel
statistics, the hashes and thumbnails of the leakage report) costs at most a few hundred MB per image:

- the header is checked before any pixel is decoded: more than ``max_pixels`` pixels is a
  decompression bomb, and a side more than ``MAX_ASPECT`` times the other is refused too (a 1x30000
  strip is 30,000 pixels, but a transform that resizes its short side to 256 makes it 256x7.7M,
  ~8 GB); the row fails with one line saying to crop or pad the image;
- an image of more than ``DECODE_PIXELS`` pixels is decoded at a reduced size: JPEGs scaled by
  1/2..1/8 while decoding (Pillow's draft mode), other formats box-reduced by an integer factor right
  after decoding, to at most ``DECODE_PIXELS`` pixels (every model input and the hashes need far less);
  such a full decode (at most ``max_pixels`` x 4 bytes, ~360 MB by default) runs one at a time per
  process, so the leakage report's decoding threads never hold several. Images within both limits
  decode exactly as before: their features and hashes do not change;
- wide pixel modes (16/32-bit) are scaled to 8 bit a band of rows at a time.
"""
from __future__ import annotations

import math
import os
import stat
import threading
import warnings
from contextlib import contextmanager, nullcontext

import imagehash
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's decompression-bomb threshold (~89.5 Mpx)
warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # open_image refuses those images itself
_WIDE = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # 16/32-bit grey modes
HASH_SIDE = 256  # phash works on the image box-reduced to a shortest side of about this many pixels
MAX_ASPECT = 100  # longest side / shortest side beyond which an image is refused (see the module docstring)
DECODE_PIXELS = 4096 * 4096  # images above are decoded reduced to at most this many pixels (~67 MB as RGB)
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")  # modes Image.reduce averages as colours
_BAND = 1 << 20  # pixels per band when scaling wide modes to 8 bit
_FULL_SIZE = threading.Lock()  # held while an image above DECODE_PIXELS is decoded in full (threads of leakage)


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
                _check_size(im.size, max_pixels, path)  # (a GIF's first frame may outgrow its header)
                return _decode(im)
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
    image = open_image(path, max_pixels)
    image = image if image.mode == "RGB" else image.convert("RGB")
    if downscale:
        image = image.resize((downscale, downscale), Image.Resampling.BICUBIC)
    return image


def reduced(image: Image.Image) -> Image.Image:
    """Box-reduce by an integer factor to a shortest side of ``HASH_SIDE``..2*``HASH_SIDE`` (idempotent)."""
    factor = min(image.size) // HASH_SIDE
    return image.reduce(factor) if factor > 1 else image


def phash_bits(image: Image.Image) -> np.ndarray:
    """64-bit DCT perceptual hash (``imagehash.phash`` of the reduced grey image) as uint8 0/1."""
    return np.asarray(imagehash.phash(reduced(image).convert("L")).hash, dtype=np.uint8).reshape(64)


def _reduction(size) -> int:
    """The integer factor that brings ``size`` within ``DECODE_PIXELS`` (1: decode as is)."""
    w, h = size
    return 1 if w * h <= DECODE_PIXELS else math.ceil(math.sqrt(w * h / DECODE_PIXELS))


def _decode(im: Image.Image) -> Image.Image:
    """The opened image decoded, within ``DECODE_PIXELS``, upright, as :func:`_canonical` makes it."""
    factor = _reduction(im.size)
    if factor > 1:  # JPEG: decode at 1/2, 1/4 or 1/8 scale (a no-op for other formats)
        im.draft(None, (-(-im.size[0] // factor), -(-im.size[1] // factor)))
    if _reduction(im.size) == 1:
        im.load()
    else:
        with _FULL_SIZE:  # decoded in full, then reduced: one such image at a time per process
            full = im
            full.load()
            orientation = full.getexif().get(ExifTags.Base.Orientation)  # not every format keeps it through reduce()
            src = full if full.mode in _REDUCIBLE else _eight_bit(full) if full.mode in _WIDE else _canonical(full)
            im = src.reduce(_reduction(full.size))
            del src
            full.close()  # the full-size pixels are freed here, not when the caller closes the file
        if orientation:
            im.getexif()[ExifTags.Base.Orientation] = orientation
    ImageOps.exif_transpose(im, in_place=True)
    return _canonical(im)


def _eight_bit(im: Image.Image) -> Image.Image:
    """A 16/32-bit grey image scaled to 8-bit "L" (a plain convert would clip everything above 255), a band
    of rows at a time."""
    a = np.asarray(im)
    peak = float(a.max(initial=0))
    if im.mode.startswith("I;16"):
        top = 65535.0
    elif im.mode == "F" and peak <= 1.0:
        top = 1.0
    else:
        top = 255.0 if peak <= 255 else max(65535.0, peak)
    out = np.empty(a.shape, np.uint8)
    step = max(1, _BAND // max(1, a.shape[1]))
    for lo in range(0, a.shape[0], step):
        out[lo:lo + step] = np.clip(np.rint(a[lo:lo + step].astype(np.float64) * (255.0 / top)), 0, 255)
    return Image.fromarray(out, "L")


def _canonical(im: Image.Image) -> Image.Image:
    if im.mode in _WIDE:
        return _eight_bit(im).convert("RGB")
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
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise ImageFailure(f"aspect ratio refused: {w}x{h} is 1:{max(w, h) // min(w, h)}, beyond the limit "
                           f"1:{MAX_ASPECT} ({path}; crop or pad the image)")
