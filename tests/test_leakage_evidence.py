"""Duplicates you can believe: cosine thresholds chosen from the data as documented (memeprobe.leakage.calibrate),
every pair with its evidence for and against, groups whose members each show the pair that links them."""
import json
import math
import warnings

import imagehash
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from memeprobe.data import load_dataset
from memeprobe.data.images import open_image
from memeprobe.data.text import tokens
from memeprobe.demo.synthetic import make_sample
from memeprobe.leakage.analysis import LeakageConfig, analyze
from memeprobe.leakage.groups import Components
from memeprobe.leakage.report import write_report
from tests.chromium import CHROMIUM
from tests.test_leakage_html import dom

OLD_COLUMNS = ["a", "b", "id_a", "id_b", "split_a", "split_b", "scope", "kind", "group", "text_exact", "text_jaccard",
               "text_cosine", "image_exact", "image_phash", "image_cosine", "label_a", "label_b", "label_relation",
               "strength"]


LOOK_ALIKE = {"image": 0.96331, "text": 0.95123}  # cosines of one unrelated pair per modality


def quiet(ds, config=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyze(ds, config=config, **kw)


def up(x):
    return math.ceil(round(x * 1e4, 6)) / 1e4


def unit(v):
    return v / np.linalg.norm(v)


def near_copy(rng, v, cos):
    """A vector at exactly cosine ``cos`` from ``v`` (unit vectors)."""
    v = unit(v)
    w = rng.normal(size=v.shape)
    w = unit(w - (w @ v) * v)
    return cos * v + math.sqrt(1 - cos * cos) * w


def phash_of(path):
    return np.asarray(imagehash.phash(open_image(path).convert("L")).hash, dtype=np.uint8).ravel()


def jaccard(s, t):
    a, b = tokens(s), tokens(t)
    return len(a & b) / len(a | b)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A 300-meme sample and embeddings made for it: unrelated memes random (cosine < 0.7), planted near copies
    at cosine 0.977-0.995, identical pictures / texts identical vectors, and one unrelated pair per modality that
    the embedding calls close (``LOOK_ALIKE``): a look-alike the reference calls different."""
    root = tmp_path_factory.mktemp("evidence") / "s"
    truth = make_sample(root, n=300, seed=0)
    ds = load_dataset(root)
    n = len(ds.memes)
    row = {(m.split, m.id): k for k, m in enumerate(ds.memes)}
    planted = {}
    for p in truth["pairs"]:
        a, b = row[(p["a"]["split"], p["a"]["id"])], row[(p["b"]["split"], p["b"]["id"])]
        planted[(min(a, b), max(a, b))] = p
    rng = np.random.default_rng(7)
    image, text = rng.normal(size=(n, 48)), rng.normal(size=(n, 48))
    want = {"image": [], "text": []}
    for k, ((a, b), p) in enumerate(sorted(planted.items())):
        if p["kind"] == "exact_image":
            image[b] = image[a]
        elif p["kind"] == "near_image":
            image[b] = near_copy(rng, image[a], 0.97713 + 0.0043 * (k % 5))
            want["image"].append(float(unit(image[a]) @ unit(image[b])))
        elif p["kind"] in ("exact_text", "confounder"):
            text[b] = text[a]
        elif p["kind"] == "near_text":
            text[b] = near_copy(rng, text[a], 0.97713 + 0.0043 * (k % 5))
            want["text"].append(float(unit(text[a]) @ unit(text[b])))
    paired = {r for pair in planted for r in pair}
    free = [r for r in range(n) if r not in paired]
    hashes = {r: phash_of(ds.image_path(ds.memes[r])) for r in free[:40]}
    x, y = next((i, j) for i in free[:40] for j in free[:40] if i < j and (hashes[i] != hashes[j]).sum() >= 30)
    image[y] = near_copy(rng, image[x], LOOK_ALIKE["image"])
    u, v = next((i, j) for i in free for j in free if i < j and jaccard(ds.memes[i].text, ds.memes[j].text) == 0)
    text[v] = near_copy(rng, text[u], LOOK_ALIKE["text"])
    return {"root": root, "ds": ds, "planted": planted, "image": image.astype(np.float32),
            "text": text.astype(np.float32), "look_alike": {"image": (x, y), "text": (u, v)}, "want": want}


def listed(result):
    return {(min(a, b), max(a, b)) for a, b in zip(result.pairs.a, result.pairs.b)}


@pytest.fixture(scope="module")
def calibrated(sample):
    return quiet(sample["ds"], text_vectors=sample["text"], image_vectors=sample["image"])


def test_each_cosine_threshold_lies_halfway_between_what_the_reference_calls_different_and_near(sample, calibrated):
    for modality, look_alike_cos in LOOK_ALIKE.items():
        choice = calibrated.thresholds[f"{modality}_cosine"]
        ev = choice.evidence
        lowest_near = min(sample["want"][modality])  # the planted near copies: the reference calls them near
        assert choice.chosen == "from the data"
        assert ev["first_differing"]["cosine"] == pytest.approx(look_alike_cos, abs=1e-4)
        x, y = sample["look_alike"][modality]
        memes = sample["ds"].memes
        assert ev["first_differing"]["memes"] == [f"{memes[x].split}/{memes[x].id}", f"{memes[y].split}/{memes[y].id}"]
        assert ev["lowest_agreeing_above"]["cosine"] == pytest.approx(lowest_near, abs=1e-4)
        middle = (look_alike_cos + lowest_near) / 2
        assert choice.value == up(middle) and 0 <= choice.value - middle < 1e-4  # rounded up to 4 decimals
        assert look_alike_cos < choice.value < lowest_near
        assert "halfway between" in choice.why
    for name, value in (("text_jaccard", 0.7), ("image_phash", 12)):
        assert calibrated.thresholds[name].value == value and calibrated.thresholds[name].chosen == "option"


def test_planted_pairs_are_found_and_look_alikes_are_not(sample, calibrated):
    found = listed(calibrated)
    assert set(sample["planted"]) <= found
    assert found <= set(sample["planted"])  # precision 1: no look-alike, no unrelated pair
    for modality, (x, y) in sample["look_alike"].items():
        assert (x, y) not in found
    # the former fixed thresholds report the look-alikes (the test can fail), and a given threshold wins
    fixed = quiet(sample["ds"], LeakageConfig(text_threshold=0.9, image_threshold=0.95),
                  text_vectors=sample["text"], image_vectors=sample["image"])
    assert {sample["look_alike"]["image"], sample["look_alike"]["text"]} <= listed(fixed)
    assert fixed.thresholds["image_cosine"].chosen == "given" and fixed.thresholds["image_cosine"].value == 0.95


def test_without_a_near_pair_above_a_look_alike_the_threshold_is_never_below_the_former_default(sample):
    text = sample["text"].copy()
    for (a, b), p in sample["planted"].items():
        if p["kind"] == "near_text":
            text[b] = np.random.default_rng(b).normal(size=text.shape[1])  # the embedding misses them
    result = quiet(sample["ds"], text_vectors=text, check_images=False)
    choice = result.thresholds["text_cosine"]
    assert "no pair it calls near above it" in choice.why
    assert choice.value == up(LOOK_ALIKE["text"]) and sample["look_alike"]["text"] not in listed(result)
    text[sample["look_alike"]["text"][1]] = near_copy(np.random.default_rng(1), text[sample["look_alike"]["text"][0]],
                                                      0.8)
    lower = quiet(sample["ds"], text_vectors=text, check_images=False).thresholds["text_cosine"]
    assert lower.value == 0.9 and "the former default" in lower.why  # 0.8001 would be below it


def test_a_crowd_of_pairs_the_reference_cannot_confirm_raises_the_threshold(tmp_path):
    """Five near-duplicate captions (Jaccard 0.9), fifteen pairs on one topic (Jaccard 0.5, the embedding scores
    them 0.95), the rest unrelated: the precision rule alone would stop at the unrelated memes; the majority rule
    raises the threshold above the topic pairs."""
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(4000)]
    texts, pairs = [], {}
    for k in range(5):
        base = list(rng.choice(words, 9, replace=False))
        texts += [" ".join(base), " ".join(base + ["extra"])]
        pairs[(len(texts) - 2, len(texts) - 1)] = 0.99
    for k in range(15):
        shared, own = list(rng.choice(words, 4, replace=False)), rng.choice(words, 8, replace=False)
        texts += [" ".join(shared + list(own[:4])), " ".join(shared + list(own[4:]))]  # Jaccard 4/12
        pairs[(len(texts) - 2, len(texts) - 1)] = 0.95
    texts += [" ".join(rng.choice(words, 8, replace=False)) for _ in range(160)]
    root = tmp_path / "topics"
    root.mkdir()
    for split, rows in (("train", range(0, 150)), ("dev_seen", range(150, 200))):
        with open(root / f"{split}.jsonl", "w") as f:
            for r in rows:
                f.write(json.dumps({"id": f"{r:04d}", "text": texts[r], "label": r % 2}) + "\n")
    ds = load_dataset(root)
    vec = rng.normal(size=(len(texts), 64))
    for (a, b), cos in pairs.items():
        vec[b] = near_copy(rng, vec[a], cos)
    choice = quiet(ds, text_vectors=vec, check_images=False).thresholds["text_cosine"]
    assert 0.95 < choice.value < 0.99 and "raised to" in choice.why
    assert choice.evidence["lowest_agreeing_above"]["cosine"] == pytest.approx(0.99, abs=1e-4)
    assert (choice.evidence["first_differing"]["cosine"] + 0.99) / 2 < 0.95  # (a) alone would keep the topics


def test_every_pair_shows_its_evidence_for_and_against(sample, calibrated, tmp_path):
    ds, p = sample["ds"], calibrated.pairs
    paths = write_report(calibrated, ds, tmp_path / "out")
    csv = pd.read_csv(paths["csv"], dtype={"id_a": str, "id_b": str, "found_by": str})
    assert list(csv.columns) == OLD_COLUMNS + ["found_by"]  # the former columns, in their order, then one more
    doc = json.loads(paths["json"].read_text())
    assert set(doc["thresholds"]) == {"text_jaccard", "image_phash", "text_cosine", "image_cosine"}
    assert doc["thresholds"]["image_cosine"]["why"].startswith("halfway between")
    vec = {"text": sample["text"] / np.linalg.norm(sample["text"], axis=1, keepdims=True),
           "image": sample["image"] / np.linalg.norm(sample["image"], axis=1, keepdims=True)}
    cache = {}

    def bits(r):
        return cache.setdefault(r, phash_of(ds.image_path(ds.memes[r])))
    for rec, r in zip(doc["pairs"], p.itertuples()):
        a, b = r.a, r.b
        assert rec["found_by"] == r.found_by and r.found_by
        for name in r.found_by.split("+"):  # a detector named found it: it has a score
            assert not math.isnan(getattr(r, name))
        same_text = not math.isnan(r.text_exact)
        same_image = not math.isnan(r.image_exact)
        if not same_text:  # measured for and against, as computed here independently
            assert r.text_jaccard == pytest.approx(jaccard(ds.memes[a].text, ds.memes[b].text), abs=1e-6)
            assert r.text_cosine == pytest.approx(float(vec["text"][a] @ vec["text"][b]), abs=1e-4)
            assert ("text_jaccard" in r.found_by) == (r.text_jaccard >= 0.7)
            assert ("text_cosine" in r.found_by) == (r.text_cosine >= calibrated.thresholds["text_cosine"].value)
        if not same_image:
            assert r.image_phash == int((bits(a) != bits(b)).sum())
            assert r.image_cosine == pytest.approx(float(vec["image"][a] @ vec["image"][b]), abs=1e-4)
            assert ("image_phash" in r.found_by) == (r.image_phash <= 12)
        for col in ("text_jaccard", "text_cosine", "image_phash", "image_cosine"):  # the JSON keeps every measure
            assert (rec[col] is None) == math.isnan(getattr(r, col))
    confounders = p[p.kind == "same_text_other_image"]
    assert len(confounders) and (confounders.image_phash > 12).all() and confounders.image_cosine.notna().all()
    page = paths["html"].read_text()
    assert "how the threshold was chosen" in page and "halfway between" in page


def chain_dataset(root):
    """train: a-b same caption, b-c same picture, c-d near captions (a chain: a and d share nothing); e, f, g one
    caption (a clique); filler memes with captions and pictures of their own."""
    rng = np.random.default_rng(5)
    (root / "img").mkdir(parents=True)

    def picture(name, seed):
        Image.fromarray(np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            root / "img" / name)
        return f"img/{name}"
    words = [f"w{i}" for i in range(3000)]
    rows = [("a", "alpha beta gamma delta", picture("a.png", 1)), ("b", "alpha beta gamma delta", picture("b.png", 2)),
            ("c", "epsilon zeta eta theta", picture("c.png", 2)),
            ("d", "epsilon zeta eta theta iota", picture("d.png", 3)),
            ("e", "one caption for three", picture("e.png", 4)), ("f", "one caption for three", picture("f.png", 5)),
            ("g", "one caption for three", picture("g.png", 6))]
    rows += [(f"x{k}", " ".join(rng.choice(words, 8, replace=False)), picture(f"x{k}.png", 100 + k)) for k in range(20)]
    with open(root / "train.jsonl", "w") as f:
        for k, (i, t, img) in enumerate(rows[:20]):
            f.write(json.dumps({"id": i, "text": t, "img": img, "label": k % 2}) + "\n")
    with open(root / "dev_seen.jsonl", "w") as f:
        for k, (i, t, img) in enumerate(rows[20:]):
            f.write(json.dumps({"id": i, "text": t, "img": img, "label": k % 2}) + "\n")


def test_every_group_member_is_shown_with_the_pair_that_links_it(tmp_path):
    chain_dataset(tmp_path / "d")
    ds = load_dataset(tmp_path / "d")
    result = quiet(ds)
    groups = {tuple(sorted(m[1] for m in g["members"])): g for g in result.groups}
    chain, clique = groups[("a", "b", "c", "d")], groups[("e", "f", "g")]
    assert chain["representative"] == ["train", "a"] and chain["hops"] == 3
    links = {x["member"][1]: x for x in chain["links"]}
    assert {k: (v["linked_to"][1], v["hops"], v["found_by"]) for k, v in links.items()} == {
        "b": ("a", 1, "text_exact"), "c": ("b", 2, "image_exact"), "d": ("c", 3, "text_jaccard")}
    assert links["d"]["evidence"]["text_jaccard"] == 0.8 and "image_phash" in links["d"]["evidence"]
    assert clique["hops"] == 1 and {x["linked_to"][1] for x in clique["links"]} == {"e"}
    pairs = {frozenset((r.id_a, r.id_b)) for r in result.pairs.itertuples()}
    for g in result.groups:  # every linking pair is listed, and every member but the anchor has one
        assert {x["member"][1] for x in g["links"]} | {g["representative"][1]} == {m[1] for m in g["members"]}
        assert all(frozenset((x["member"][1], x["linked_to"][1])) in pairs for x in g["links"])
    if CHROMIUM is None:
        return
    html = write_report(result, ds, tmp_path / "out")["html"]
    page = dom(html, tmp_path, f"view=groups&group={chain['group']}")
    assert "chained: up to 3 pairs from the anchor" in page
    assert "\u2190 train / c (3 pairs from the anchor): text jaccard 0.800" in page


def test_groups_stay_apart_across_component_merges():
    """Rows {0, 2} and {3, 4} are pairs, row 1 alone: bringing the components up to date twice must not join them
    (component numbers are not rows)."""
    c = Components(7)
    c.add(np.array([0, 3]), np.array([2, 4]))
    c.merge()
    c.add(np.array([5]), np.array([6]))
    g = c.group_of_row()
    assert g[0] == g[2] and g[3] == g[4] and g[5] == g[6] and len({g[0], g[3], g[5]}) == 3 and g[1] == -1
    assert c.forest.shape == (2, 3)  # one pair per merge of two rows' components


def test_the_cli_records_how_each_threshold_was_chosen(sample, tmp_path):
    from click.testing import CliRunner

    from memeprobe.cli import main

    out = tmp_path / "r"
    res = CliRunner().invoke(main, ["leakage", "report", str(sample["root"]), "--out", str(out), "--no-progress",
                                    "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "report.json").read_text())
    assert doc["config"]["image_threshold"] is None and doc["config"]["phash_distance"] == 12
    assert doc["thresholds"]["image_phash"] == {"value": 12, "chosen": "option", "why": "--phash-distance",
                                                "evidence": {}}
    assert "image_cosine" not in doc["thresholds"]  # no embeddings without a store
