"""Many identical texts / images: duplicate classes listed as groups, pairs bounded, nothing lost."""
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from memeprobe.data import load_dataset
from memeprobe.leakage.analysis import LeakageConfig, analyze
from memeprobe.leakage.classes import PairStream, class_ids
from memeprobe.leakage.report import write_report

CAPTION = "the same caption everyone shares"


def crowd(root, n, copies, same_image, seed=0, caption=CAPTION, variants=0):
    """``n`` memes (train 80 %, dev_seen 10 %, test_unseen 10 %); every (n // copies)-th shares one caption,
    the first ``same_image`` of those also one picture, the other copies a picture of their own; the memes
    after the first ``variants`` copies carry a near-duplicate variant of the caption (one word more)."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(3000)]
    (root / "img").mkdir(parents=True)
    shared = Image.new("RGB", (32, 32), (200, 30, 30))
    step, in_group = n // copies, 0
    for split, lo, hi in (("train", 0, int(n * .8)), ("dev_seen", int(n * .8), int(n * .9)),
                          ("test_unseen", int(n * .9), n)):
        with open(root / f"{split}.jsonl", "w") as f:
            for i in range(lo, hi):
                row = {"id": str(i), "text": " ".join(rng.choice(words, 8, replace=False))}
                if i % step == 0:
                    row["text"] = caption
                    if in_group < same_image:
                        shared.save(root / "img" / f"{i}.png")
                        row["img"] = f"img/{i}.png"
                    in_group += 1
                if i % step == 1 and i // step < variants:
                    row["text"] = f"{caption} v{i}"
                if "img" not in row and (i % 7 == 0 or i % step == 0):
                    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "img" / f"{i}.png")
                    row["img"] = f"img/{i}.png"
                if split != "test_unseen":
                    row["label"] = int(rng.integers(0, 2))
                f.write(json.dumps(row) + "\n")
    return [str(i) for i in range(0, n, step)][:copies]


def run(root, **config):
    ds = load_dataset(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ds, analyze(ds, config=LeakageConfig(**config))


def test_a_500_copy_group_is_complete_and_its_pairs_are_bounded(tmp_path):
    group_ids = crowd(tmp_path / "d", 2000, 500, same_image=200, variants=100)
    ds, result = run(tmp_path / "d")
    splits = {m.id: m.split for m in ds.memes}
    labels = {(m.split, m.id): m.label for m in ds.memes}
    biggest = result.groups[0]
    variant_ids = {str(i) for i in range(1, 100 * 4, 4)}
    assert {i for _, i in biggest["members"]} == set(group_ids) | variant_ids and biggest["size"] == 600
    assert biggest["representative"][0] == "train" and biggest["representative"] in biggest["members"]
    cells = len({(splits[i], labels[(splits[i], i)]) for i in group_ids})
    # all pairs would be 500 * 499 / 2 = 124750; listed: each member x one anchor per (split, label) cell,
    # for the caption class and for the picture class inside it
    # 124,750 pairs in the caption class alone; listed: its members and the picture class x one anchor per
    # cell, each variant x the anchors, and the 100 variants among themselves (4,950 near pairs of distinct texts)
    assert len(result.pairs) <= 500 * cells + 200 * cells + 100 * cells + 4950
    assert biggest["pairs"] == int((result.pairs.group == 0).sum()) <= len(result.pairs)
    mine = result.pairs[result.pairs.id_a.isin(group_ids) & result.pairs.id_b.isin(group_ids)]
    same_picture = mine.id_a.isin(group_ids[:200]) & mine.id_b.isin(group_ids[:200])
    assert (mine.kind[same_picture] == "same_text_same_image").all()
    assert set(mine.kind) == {"same_text_same_image", "same_text_other_image"}
    for split in ("dev_seen", "test_unseen"):  # every eval copy of the caption has a train copy: none is clean
        assert not set(result.clean_ids[split]) & set(group_ids)
        leaked = set(result.pairs.id_b[result.pairs.scope == "train-eval"])
        assert {i for i in group_ids if splits[i] == split} <= leaked
    paths = write_report(result, ds, tmp_path / "out")
    doc = json.loads(paths["json"].read_text())
    assert len(doc["pairs"]) == len(result.pairs) and doc["groups"][0]["members"] == biggest["members"]
    assert any("anchor" in w for w in doc["warnings"])


def test_bounded_listing_keeps_clean_ids_groups_and_kinds_of_the_full_listing(tmp_path):
    crowd(tmp_path / "d", 400, 40, same_image=15, seed=3, variants=30)
    _, full = run(tmp_path / "d", max_group_pairs=10**9)
    _, bounded = run(tmp_path / "d", max_group_pairs=10)
    assert len(bounded.pairs) < len(full.pairs)
    assert bounded.clean_ids == full.clean_ids
    assert sorted(g["members"] for g in bounded.groups) == sorted(g["members"] for g in full.groups)
    key = ["id_a", "id_b", "split_a", "split_b"]
    both = bounded.pairs.merge(full.pairs, on=key, suffixes=("", "_full"))
    assert len(both) == len(bounded.pairs)  # every listed pair is a true pair, with the same evidence
    for col in ("kind", "scope", "label_relation"):
        assert (both[col] == both[f"{col}_full"]).all()
    flips = full.pairs.groupby("group").label_relation.apply(lambda r: (r == "flip").any())
    assert sorted(flips) == sorted(g["label_flip"] for g in bounded.groups)


@pytest.mark.parametrize("k, bound", [(2, 1), (5, 10), (6, 14), (50, 10)])
def test_a_class_lists_all_pairs_up_to_the_bound_then_each_member_against_the_anchors(k, bound):
    rows = np.arange(k) * 3
    cell = np.zeros(3 * k, np.int64)
    cell[rows[k // 2:]] = 1
    cls = class_ids(["x" if r in set(rows) else "" for r in range(3 * k)])
    blocks = list(PairStream([cls], {}, cell, cell, bound))
    a, b = (np.concatenate([blk[i] for blk in blocks]) for i in (0, 1))
    assert {blk[2] for blk in blocks} <= {0} and (a < b).all() and len(set(zip(a, b))) == len(a)  # each pair once
    if k * (k - 1) // 2 <= bound:
        assert len(a) == k * (k - 1) // 2
    else:
        anchors = {rows[0], rows[k // 2]}  # the first member of each cell
        assert all(x in anchors or y in anchors for x, y in zip(a, b))
        assert len(a) == 2 * k - 3  # each member x both anchors, less its pair with itself; the anchors' pair once
