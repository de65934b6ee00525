"""One image loader and one perceptual hash for featurize, leakage and the synthetic sample: EXIF
orientation, 16-bit pixels, special files, bombs, and image symlinks that leave the dataset root."""
import json
import os
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from memeprobe.cli import main
from memeprobe.data import load_dataset
from memeprobe.data.images import ImageFailure, load_image, open_image, phash_bits
from memeprobe.errors import DatasetError
from memeprobe.featurize.pixels import pixel_features
from memeprobe.data.thumbnails import thumbnail_jpeg
from memeprobe.leakage.images import hash_images


def _photo(w=320, h=200, seed=0):
    """A smooth, asymmetric picture (rotations of it hash far apart)."""
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    rng = np.random.default_rng(seed)
    a = np.stack([np.sin(6 * x + rng.uniform(0, 3)) * np.cos(3 * y), x * y * 4 - 1, np.sin(9 * y * x)], -1)
    return Image.fromarray(((a - a.min()) / np.ptp(a) * 255).astype(np.uint8))


def _hamming(a, b):
    return int((a != b).sum())


def test_exif_rotated_copy_decodes_upright_and_hashes_as_a_duplicate(tmp_path):
    im = _photo()
    im.save(tmp_path / "a.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored pixels are the picture turned the other way
    im.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "b.jpg", quality=95, exif=exif)
    upright = load_image(tmp_path / "b.jpg")
    assert upright.size == im.size
    h = hash_images([tmp_path / "a.jpg", tmp_path / "b.jpg"])
    assert _hamming(h.phash[0], h.phash[1]) <= 4
    raw = Image.open(tmp_path / "b.jpg").convert("RGB")  # what ignoring EXIF sees
    assert _hamming(phash_bits(raw), h.phash[0]) > 10


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    ramp = (np.linspace(0, 65535, 256 * 64).reshape(64, 256)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    rgb = np.asarray(load_image(tmp_path / "deep.png"))
    assert (rgb == 255).mean() < 0.01  # a plain convert makes ~all of them 255
    np.testing.assert_allclose(rgb[..., 0], np.rint(ramp / 257.0), atol=1)


def test_fifo_and_folder_are_refused_before_opening(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would block forever
    (tmp_path / "dir.png").mkdir()
    for name in ("pipe.png", "dir.png"):
        with pytest.raises(ImageFailure, match="not a regular file"):
            open_image(tmp_path / name)
    h = hash_images([tmp_path / "pipe.png"])
    assert not h.ok[0] and "not a regular file" in h.problems[0]
    assert thumbnail_jpeg(tmp_path / "pipe.png") is None


def test_leakage_refuses_a_20000_px_square_png_like_featurize(tmp_path):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                                        + chunk(b"IDAT", zlib.compress(b"\0" * 4)) + chunk(b"IEND", b""))
    h = hash_images([tmp_path / "bomb.png"])
    assert not h.ok[0] and "decompression bomb refused: 20000x20000" in h.problems[0]
    assert thumbnail_jpeg(tmp_path / "bomb.png") is None


def test_pixels_phash_equals_the_leakage_phash_on_a_large_image(tmp_path):
    big = _photo(1900, 1300, seed=3)  # reduced before hashing: the old copies disagreed here
    big.save(tmp_path / "big.png", compress_level=1)
    stored = pixel_features(load_image(tmp_path / "big.png"))["image_phash"]
    np.testing.assert_array_equal(stored, hash_images([tmp_path / "big.png"]).phash[0])
    np.testing.assert_array_equal(stored, phash_bits(big))


def _dataset_with_link(tmp_path, target):
    root = tmp_path / "data"
    root.mkdir()
    os.symlink(target, root / "a.png")
    Image.new("RGB", (20, 20), "red").save(root / "b.png")
    rows = [{"id": "a", "text": "one", "img": "a.png", "label": 0}, {"id": "b", "text": "two", "img": "b.png", "label": 1}]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_image_symlink_leaving_the_root_is_refused_unless_allowed(tmp_path):
    secret = tmp_path / "private.png"
    Image.new("RGB", (20, 20), "blue").save(secret)
    root = _dataset_with_link(tmp_path, secret)
    with pytest.raises(DatasetError, match=r"train/a: image 'a.png' is a symlink to .*private.png, outside"):
        load_dataset(root)
    assert len(load_dataset(root, allow_outside_root=True).memes) == 2
    args = ["featurize", "image", str(root), "--store", str(tmp_path / "s.h5"), "--featurizer", "pixels", "--no-progress"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "outside the dataset root" in refused.output and "Traceback" not in refused.output
    assert not (tmp_path / "s.h5").exists()
    allowed = CliRunner().invoke(main, args + ["--allow-outside-root"])
    assert allowed.exit_code == 0, allowed.output


def test_image_symlink_inside_the_root_is_fine(tmp_path):
    root = _dataset_with_link(tmp_path, "b.png")
    assert [m.id for m in load_dataset(root).memes] == ["a", "b"]
