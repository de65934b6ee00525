"""Robust image loading: every kind of bad file becomes a reason, good bytes load whatever the extension."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from memeprobe.data.images import ImageFailure, load_image


def _png_header_only(width, height):
    """A PNG whose IHDR claims width x height (one tiny IDAT): a cheap decompression-bomb stand-in."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4)) + chunk(b"IEND", b"")


def write_bad_images(folder):
    """name → file content of every bad-image case (also used by the runner test)."""
    good = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8))
    png, jpeg = io.BytesIO(), io.BytesIO()
    good.save(png, format="PNG")
    good.save(jpeg, format="JPEG")
    cases = {
        "corrupt.png": b"this is not an image at all" * 10,
        "empty.png": b"",
        "truncated.png": png.getvalue()[: len(png.getvalue()) // 2],
        "bomb.png": _png_header_only(30000, 30000),
        "jpeg_bytes.png": jpeg.getvalue(),
    }
    for name, data in cases.items():
        (folder / name).write_bytes(data)
    return good


@pytest.mark.parametrize("name, reason", [
    ("corrupt.png", "not an image"),
    ("empty.png", "empty file"),
    ("truncated.png", "corrupt image"),
    ("bomb.png", "decompression bomb"),
    ("missing.png", "missing file"),
])
def test_bad_images_give_reasons(tmp_path, name, reason):
    write_bad_images(tmp_path)
    with pytest.raises(ImageFailure, match=reason) as e:
        load_image(tmp_path / name)
    assert "\n" not in str(e.value)


def test_jpeg_bytes_in_png_load_and_downscale(tmp_path):
    good = write_bad_images(tmp_path)
    image = load_image(tmp_path / "jpeg_bytes.png")
    assert image.mode == "RGB" and image.size == good.size
    with Image.open(io.BytesIO((tmp_path / "jpeg_bytes.png").read_bytes())) as direct:
        assert direct.format == "JPEG"
        np.testing.assert_array_equal(np.asarray(image), np.asarray(direct.convert("RGB")))
    assert load_image(tmp_path / "jpeg_bytes.png", downscale=16).size == (16, 16)


def test_max_pixels_limit_is_configurable(tmp_path):
    write_bad_images(tmp_path)
    assert load_image(tmp_path / "jpeg_bytes.png", max_pixels=50 * 40).size == (50, 40)
    with pytest.raises(ImageFailure, match="2000 pixels > limit 1999"):
        load_image(tmp_path / "jpeg_bytes.png", max_pixels=1999)
    with pytest.raises(ImageFailure, match="no image"):
        load_image(None)


def test_max_pixels_decides_above_pillows_own_limit(tmp_path):
    path = tmp_path / "big.png"  # 100 Mpx claimed: over Pillow's default limit, under ours
    path.write_bytes(_png_header_only(10000, 10000))
    with pytest.raises(ImageFailure) as refused:
        load_image(path)
    assert "decompression bomb refused" in str(refused.value) and str(path) in str(refused.value)
    with pytest.raises(ImageFailure) as allowed:  # the size passes, so decoding the fake data fails
        load_image(path, max_pixels=200_000_000)
    assert "decompression bomb" not in str(allowed.value) and "corrupt image" in str(allowed.value)
