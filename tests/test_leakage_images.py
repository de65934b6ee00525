"""Decoded-pixel hashes and perceptual-hash pairs."""
import io
import itertools

import numpy as np
from PIL import Image

from memeprobe.data.thumbnails import thumbnail_jpeg
from memeprobe.leakage.images import hash_images, phash_bits, phash_blocks, pixel_hash


def picture(seed, size=96):
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((12, 12, 3)) * 255).astype("uint8")).resize((size, size))


def test_pixel_hash_ignores_file_encoding(tmp_path):
    im = picture(0)
    im.save(tmp_path / "a.png", compress_level=1)
    im.save(tmp_path / "b.png", compress_level=9, pnginfo=None)
    im.convert("RGBA").save(tmp_path / "c.png")  # opaque alpha channel: same pixels
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    (tmp_path / "d.png").write_bytes(buf.getvalue())  # JPEG bytes under a .png name
    Image.open(tmp_path / "d.png").save(tmp_path / "e.png")  # the decoded JPEG re-saved as PNG
    paths = [tmp_path / f"{k}.png" for k in "abcde"] + [tmp_path / "missing.png", None]
    h = hash_images(paths)
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()
    assert h.pixel[0] == h.pixel[1] == h.pixel[2] != h.pixel[3]
    assert h.pixel[3] == h.pixel[4]
    assert h.ok.tolist() == [True] * 5 + [False, False]
    assert "missing file" in h.problems[5] and 6 in h.problems


def test_pixel_hash_sees_one_pixel():
    a = picture(1)
    b = a.copy()
    b.putpixel((3, 3), (0, 0, 0) if a.getpixel((3, 3)) != (0, 0, 0) else (1, 1, 1))
    assert pixel_hash(a) != pixel_hash(b)


def test_undecodable_file_is_reported(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not an image")
    h = hash_images([tmp_path / "x.png"])
    assert not h.ok[0] and "not an image" in h.problems[0]


def test_phash_is_robust_to_small_edits():
    a = picture(2, 200)
    near = a.resize((150, 150)).resize((200, 200))
    other = picture(3, 200)
    d = lambda x, y: int((phash_bits(x) != phash_bits(y)).sum())  # noqa: E731
    assert d(a, near) <= 4 < 16 <= d(a, other)


def test_phash_pairs_match_brute_force():
    rng = np.random.default_rng(4)
    bits = rng.integers(0, 2, (300, 64)).astype(np.uint8)
    bits[100:120] = bits[:20] ^ (rng.random((20, 64)) < 0.05)
    for radius in (0, 6, 26):
        i, j, d = (np.concatenate(x) for x in zip(*phash_blocks(bits, radius, block=64)))
        want = {(a, b) for a, b in itertools.combinations(range(300), 2) if (bits[a] != bits[b]).sum() <= radius}
        assert set(zip(i.tolist(), j.tolist())) == want
        assert all((bits[a] != bits[b]).sum() == k for a, b, k in zip(i, j, d))


def test_thumbnail_is_a_small_jpeg(tmp_path):
    picture(5, 400).save(tmp_path / "a.png")
    jpeg = thumbnail_jpeg(tmp_path / "a.png", 64)
    im = Image.open(io.BytesIO(jpeg))
    assert im.format == "JPEG" and max(im.size) == 64
    assert thumbnail_jpeg(tmp_path / "missing.png") is None
