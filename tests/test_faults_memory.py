"""Memory bounded by the work, not by the input's shape (issue 24 item 3).

Images: an extreme aspect ratio fails its row with one line before any pixel is decoded, for every
consumer; an allowed but wide image never grows past 100 x (the model's short side)^2 pixels in the real
transform; an image above the decode budget is decoded reduced (JPEG draft / box reduction), upright,
whatever its format. Leakage: hundreds of one-token variants of a meme template (and near-identical
pictures, and a chain of one-token edits) are counted exactly (against a brute force over every pair),
grouped exactly, listed by capped witnesses, and the report says how many pairs each summarised group
stands for.
"""
import csv
import itertools
import json
import math
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from memeprobe.cli import main
from memeprobe.data import images as image_io
from memeprobe.data import load_dataset
from memeprobe.data.images import MAX_ASPECT, ImageFailure, load_image, open_image, phash_bits
from memeprobe.featurize.pixels import pixel_features
from memeprobe.data.thumbnails import thumbnail_jpeg
from memeprobe.leakage.images import hash_images
from memeprobe.leakage.text import normalize_text, tokens
from memeprobe.store import FeatureStore

STRIPS = {"wide.png": (30000, 1), "tall.png": (1, 200000)}


def _photo(w, h, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR)


# -- images -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(STRIPS))
def test_an_extreme_strip_is_refused_with_one_line_by_every_image_consumer(tmp_path, name):
    path = tmp_path / name
    Image.new("RGB", STRIPS[name], (200, 10, 10)).save(path)
    assert path.stat().st_size < 2000  # a few hundred bytes that would have cost gigabytes
    w, h = STRIPS[name]
    with pytest.raises(ImageFailure) as e:
        open_image(path)
    line = str(e.value)
    assert "\n" not in line and f"{w}x{h}" in line and f"1:{max(w, h)}" in line and f"1:{MAX_ASPECT}" in line
    assert "crop or pad" in line and str(path) in line
    hashes = hash_images([path])  # leakage: no hashes, the same reason
    assert not hashes.ok[0] and hashes.problems[0] == line
    assert thumbnail_jpeg(path) is None  # report thumbnails


def _timm_spec(tmp_path):
    import torch
    import timm

    import memeprobe.featurize  # noqa: F401  (torchvision shim before timm)

    torch.manual_seed(0)
    weights = tmp_path / "test_resnet.pth"
    torch.save(timm.create_model("test_resnet", num_classes=0).state_dict(), weights)
    return f"timm:test_resnet:{weights}"


def test_featurize_fails_only_the_strips_and_says_why(tmp_path):
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    for name, size in STRIPS.items():
        Image.new("RGB", size, (10, 200, 10)).save(data / "img" / name)
    _photo(10, 1000).save(data / "img" / "limit.png")  # 1:100, the widest shape decoded
    _photo(60, 40).save(data / "img" / "meme.jpg")
    names = ["wide.png", "limit.png", "tall.png", "meme.jpg"]
    (data / "train.jsonl").write_text("".join(
        json.dumps({"id": str(k), "text": f"meme {k}", "img": f"img/{n}", "label": k % 2}) + "\n"
        for k, n in enumerate(names)))
    store = tmp_path / "s.h5"
    for spec in (_timm_spec(tmp_path), "pixels"):
        out = CliRunner().invoke(main, ["featurize", "image", str(data), "--store", str(store), "--featurizer", spec,
                                        "--device", "cpu", "--no-progress", "--workers", "0"])
        assert out.exit_code == 3, out.output  # completed with failures
        assert "Traceback" not in out.output
        failed = [line for line in out.output.splitlines() if line.startswith("failed ")]
        assert len(failed) == 2 and all("aspect ratio refused" in line and "crop or pad" in line for line in failed)
        assert {line.split()[1] for line in failed} == {"train/0", "train/2"}
    with FeatureStore.open(store) as st:
        for fs in st.feature_sets():
            assert st.status(fs, "image").tolist() == [2, 1, 2, 1]  # failed, done, failed, done


def test_a_1_to_100_image_stays_within_100_short_sides_squared_in_the_real_transform(tmp_path):
    from memeprobe.featurize import create_featurizer
    from memeprobe.featurize.spec import Options

    import torch

    f = create_featurizer(_timm_spec(tmp_path), Options())
    f.load(torch.device("cpu"))
    steps = f.image_transform().transform.transforms
    _photo(10, 1000).save(tmp_path / "limit.png")
    x, largest = load_image(tmp_path / "limit.png"), 0
    for step in steps:  # the timm eval transform, one step at a time
        x = step(x)
        largest = max(largest, x.size[0] * x.size[1] if isinstance(x, Image.Image) else x[0].numel())
    side = math.ceil(f.data_cfg["input_size"][1] / f.data_cfg["crop_pct"])  # the resize before the centre crop
    assert tuple(x.shape) == tuple(f.data_cfg["input_size"])
    assert largest <= MAX_ASPECT * (side + 1) ** 2  # 168 x 16,800 here; 1x30000 would have been 168 x 5.04M


@pytest.mark.parametrize("fmt, mode", [("JPEG", "RGB"), ("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "P"), ("PNG", "I;16"),
                                       ("TIFF", "F"), ("WEBP", "RGB"), ("BMP", "RGB"), ("GIF", "P")])
def test_an_image_above_the_decode_budget_is_decoded_reduced_in_every_format(tmp_path, monkeypatch, fmt, mode):
    picture = _photo(640, 480, seed=1)
    if mode == "RGBA":
        picture = picture.convert("RGBA")
        picture.putalpha(Image.linear_gradient("L").resize(picture.size))
    elif mode in ("P", "I;16", "F"):
        grey = np.asarray(picture.convert("L"), np.float64)
        picture = {"P": picture.convert("P"), "I;16": Image.fromarray((grey * 257).astype(np.uint16)),
                   "F": Image.fromarray((grey / 255).astype(np.float32))}[mode]
    path = tmp_path / f"big.{fmt.lower()}"
    picture.save(path, format=fmt)
    full = open_image(path)  # within the budget: as decoded before
    monkeypatch.setattr(image_io, "DECODE_PIXELS", 200 * 150)
    small = open_image(path)
    assert small.size[0] * small.size[1] <= 200 * 150 and small.mode == full.mode
    assert max(small.size) >= 640 // 4 - 1  # reduced by a small integer factor, not squashed
    a = np.asarray(small.convert("RGB").resize((32, 24)), np.float64)
    b = np.asarray(full.convert("RGB").resize((32, 24)), np.float64)
    assert np.abs(a - b).mean() < 12  # the same picture
    assert int((phash_bits(small) != phash_bits(full)).sum()) <= 10  # still a near duplicate of itself


def test_a_reduced_image_is_still_turned_upright(tmp_path, monkeypatch):
    picture = _photo(300, 200, seed=2)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 to display
    for fmt in ("JPEG", "PNG", "TIFF", "WEBP"):
        path = tmp_path / f"rotated.{fmt.lower()}"
        picture.transpose(Image.Transpose.ROTATE_90).save(path, format=fmt, exif=exif)
        upright = open_image(path)
        monkeypatch.setattr(image_io, "DECODE_PIXELS", 100 * 70)
        small = open_image(path)
        monkeypatch.undo()
        assert upright.size == (300, 200) and small.size[0] > small.size[1], fmt
        assert int((phash_bits(small) != phash_bits(upright)).sum()) <= 10, fmt


def test_animated_images_give_their_first_frame(tmp_path):
    frames = [_photo(80, 60, seed=k) for k in range(3)]
    for fmt in ("GIF", "PNG", "WEBP"):
        path = tmp_path / f"anim.{fmt.lower()}"
        frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:],
                       **({"lossless": True} if fmt == "WEBP" else {}))
        first = np.asarray(open_image(path), np.float64)
        assert first.shape == (60, 80, 3)
        assert np.abs(first - np.asarray(frames[0], np.float64)).mean() < 8, fmt  # (GIF: a palette)


def test_pixel_statistics_of_a_wide_image_are_histogrammed_in_bands(tmp_path):
    wide = _photo(20000, 200, seed=3)  # 1:100, 4 Mpx
    tracemalloc.start()
    try:
        features = pixel_features(wide)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rgb = 20000 * 200 * 3
    assert peak < 3 * rgb  # Pillow's bytes and their array, plus bands (int64 codes of every pixel were 12.8x)
    q = np.asarray(wide) // 64
    hist = np.bincount(((q[..., 0] * 4 + q[..., 1]) * 4 + q[..., 2]).ravel().astype(np.int64), minlength=64)
    np.testing.assert_array_equal(features["image_embed"][:64], (hist / hist.sum()).astype(np.float32))


# -- leakage ----------------------------------------------------------------------------------------
TEMPLATES = ("when you finally fix the bug on a", "nobody me and my cat at three in the",
             "that moment you realise it was")
SPLITS = (("train", 0.7), ("dev_seen", 0.85), ("test_unseen", 1.0))


def variants_dataset(root, n=700, per_template=60, chain=30, near_images=40, seed=0):
    """``n`` memes: ``per_template`` one-token variants of each template caption, each with its own picture
    (random, so the group is text-driven); ``near_images`` memes with their own captions and a noisy copy of
    one template picture; a chain of ``chain`` captions, each one token shifted from the last; the rest
    random. Splits 70/15/15 %, labels 0/1 but on test_unseen."""
    rng = np.random.default_rng(seed)
    words = [f"w{k}" for k in range(4000)]
    (root / "img").mkdir(parents=True)
    template = Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).resize((48, 48))
    kinds = (["variant"] * per_template * len(TEMPLATES) + ["near_image"] * near_images + ["chain"] * chain)
    kinds += ["plain"] * (n - len(kinds))
    kinds = [kinds[k] for k in rng.permutation(n)]
    count = {"variant": 0, "near_image": 0, "chain": 0}
    files = {s: open(root / f"{s}.jsonl", "w") for s, _ in SPLITS}
    for i, kind in enumerate(kinds):
        split = next(s for s, top in SPLITS if i < top * n)
        k = count.get(kind, 0)
        count[kind] = k + 1
        row = {"id": f"m{i}", "text": " ".join(rng.choice(words, 8, replace=False))}
        picture = None
        if kind == "variant":
            row["text"] = f"{TEMPLATES[k % len(TEMPLATES)]} x{k}"
            picture = Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
        elif kind == "near_image":
            noise = rng.integers(-3, 4, (48, 48, 3))
            picture = Image.fromarray(np.clip(np.asarray(template, int) + noise, 0, 255).astype(np.uint8))
        elif kind == "chain":
            row["text"] = " ".join(f"c{k + j}" for j in range(10))
        if picture is not None:
            picture.save(root / "img" / f"m{i}.png")
            row["img"] = f"img/m{i}.png"
        if split != "test_unseen":
            row["label"] = int(rng.integers(0, 2))
        files[split].write(json.dumps(row) + "\n")
    for f in files.values():
        f.close()


def brute_force(root):
    """Every duplicate pair by comparing every two memes: normalised text equal, token Jaccard >= 0.7,
    decoded pixels equal, perceptual hashes within 10 bits (the report's defaults)."""
    ds = load_dataset(root)
    memes = ds.memes
    norm = [normalize_text(m.text) for m in memes]
    sets = [tokens(m.text) for m in memes]
    hashes = hash_images([ds.image_path(m) for m in memes])
    pairs = {}
    for a, b in itertools.combinations(range(len(memes)), 2):
        text = bool(norm[a]) and (norm[a] == norm[b] or len(sets[a] & sets[b]) / len(sets[a] | sets[b]) >= 0.7 - 1e-9)
        image = hashes.ok[a] and hashes.ok[b] and (hashes.pixel[a] == hashes.pixel[b]
                                                   or int((hashes.phash[a] != hashes.phash[b]).sum()) <= 10)
        if text or image:
            pairs[(a, b)] = (text, image)
    return ds, pairs


def _components(n, pairs):
    parent = list(range(n))

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for a, b in pairs:
        parent[root(a)] = root(b)
    groups = {}
    for a, b in pairs:
        groups.setdefault(root(a), set()).update((a, b))
    return list(groups.values())


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants") / "data"
    variants_dataset(root)
    return root, *brute_force(root)


def _report(root, out, *extra):
    result = CliRunner().invoke(main, ["leakage", "report", str(root), "--out", str(out), "--no-progress", *extra])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())


def test_template_variants_are_counted_grouped_and_cleaned_exactly_and_listed_by_capped_witnesses(variants, tmp_path):
    root, ds, truth = variants
    memes = ds.memes
    split = [m.split for m in memes]
    doc = _report(root, tmp_path / "out", "--max-group-pairs", "100")
    # counts: every pair, exactly as the brute force finds them, per split pair
    for row in doc["summary"]:
        want = [p for p in truth if {split[p[0]], split[p[1]]} == {row["split_a"], row["split_b"]}
                and (row["split_a"] != row["split_b"] or split[p[0]] == row["split_a"])]
        assert row["pairs"] == len(want), row
        assert row["near_text"] + row["exact_text"] == sum(truth[p][0] for p in want), row
        assert row["near_image"] + row["exact_image"] == sum(truth[p][1] for p in want), row
        if row["labelled"]:
            assert row["label_flips"] == sum(memes[a].label != memes[b].label for a, b in want), row
    # groups: the connected components, with every member
    key = {(m.split, m.id): r for r, m in enumerate(memes)}
    got = sorted(sorted(key[tuple(m)] for m in g["members"]) for g in doc["groups"])
    want_groups = _components(len(memes), truth)
    assert got == sorted(sorted(g) for g in want_groups)
    # the three template groups (1,770 near pairs each) are summarised; the chain (29 pairs) is listed in full
    summarised = [g for g in doc["groups"] if "pairs_found" in g]
    assert len(summarised) == 4  # three caption templates and the picture template
    for g in doc["groups"]:
        members = {key[tuple(m)] for m in g["members"]}
        found = sum(1 for a, b in truth if a in members)
        listed = [p for p in doc["pairs"] if p["group"] == g["group"]]
        assert g["pairs"] == len(listed)
        if "pairs_found" in g:
            assert g["pairs_found"] == found > 100
            assert len(listed) <= len(members) * 3 * 3  # one per member, partner split and label relation
            assert {(p["id_a"], p["split_a"]) for p in listed} | {(p["id_b"], p["split_b"]) for p in listed} == \
                {(m.id, m.split) for r, m in enumerate(memes) if r in members}  # every member is listed
        else:
            assert len(listed) == found
    for p in doc["pairs"]:  # every listed pair is a true pair
        assert (min(p["a"], p["b"]), max(p["a"], p["b"])) in truth
    # clean ids: every eval meme with a train duplicate is out, no other
    for s in ("dev_seen", "test_unseen"):
        leaked = {r for a, b in truth for r, o in ((a, b), (b, a)) if split[r] == s and split[o] == "train"}
        clean = (tmp_path / "out" / "clean_ids" / f"{s}.txt").read_text().split()
        assert clean == [m.id for r, m in enumerate(memes) if m.split == s and r not in leaked]
    assert any("near-duplicate pairs" in w and "use all" in w for w in doc["warnings"])


def test_summarising_changes_only_the_listing(variants, tmp_path):
    root = variants[0]
    full = _report(root, tmp_path / "full", "--max-group-pairs", "100000")
    capped = _report(root, tmp_path / "capped", "--max-group-pairs", "100")
    assert not any("pairs_found" in g for g in full["groups"])
    assert len(full["pairs"]) == sum(s["pairs"] for s in full["summary"])
    assert len(capped["pairs"]) < len(full["pairs"]) / 3
    for k in ("summary", "eval", "leak_exploit"):  # counts, clean-subset sizes, leak-exploit AUROCs: identical
        assert capped[k] == full[k], k
    for s in ("dev_seen", "test_unseen"):
        assert (tmp_path / "full" / "clean_ids" / f"{s}.txt").read_bytes() == \
            (tmp_path / "capped" / "clean_ids" / f"{s}.txt").read_bytes()
    drop = ("pairs", "pairs_found")
    assert [{k: v for k, v in g.items() if k not in drop} for g in capped["groups"]] == \
        [{k: v for k, v in g.items() if k not in drop} for g in full["groups"]]
    listed = {(p["a"], p["b"]): p for p in full["pairs"]}
    for p in capped["pairs"]:  # a listed pair has the same evidence and kind as in the full listing
        q = listed[(p["a"], p["b"])]
        assert {k: v for k, v in p.items() if k != "group_pairs_found"} == q


def test_the_csv_and_the_page_say_what_was_summarised(variants, tmp_path):
    root = variants[0]
    doc = _report(root, tmp_path / "out", "--max-group-pairs", "100")
    found = {g["group"]: g.get("pairs_found", g["pairs"]) for g in doc["groups"]}
    with open(tmp_path / "out" / "pairs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(doc["pairs"]) and all(int(r["group_pairs_found"]) == found[int(r["group"])] for r in rows)
    page = (tmp_path / "out" / "report.html").read_text()
    total = sum(s["pairs"] for s in doc["summary"])
    assert f"{len(doc['pairs'])} of the {total} pairs found are listed" in page
    assert '"found":' in page  # the summarised groups' counts, shown in the groups view
