"""Leakage on the real datasets in ../shared/data (skipped when absent)."""
import warnings

import numpy as np
import pandas as pd
import regex
from PIL import Image

from memeprobe.data import load_dataset
from memeprobe.leakage.analysis import analyze

HM_EVAL = ("dev_seen", "dev_unseen", "test_seen", "test_unseen")


def independent_norm(s: pd.Series) -> pd.Series:
    """The documented normalisation written independently: NFKC, casefold, \\p{P} -> space, squeeze."""
    s = s.str.normalize("NFKC").str.casefold()
    return s.map(lambda t: " ".join(regex.sub(r"\p{P}", " ", t).split()))


def test_hateful_memes_exact_text_duplicates_match_an_independent_count(shared_data):
    root = shared_data / "hateful_memes"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = analyze(load_dataset(root), check_images=False)
    p = result.pairs
    train = pd.read_json(root / "train.jsonl", lines=True, dtype={"id": str})
    train["norm"] = independent_norm(train.text)
    train = train[train.norm != ""]
    total = 0
    for split in HM_EVAL:
        ev = pd.read_json(root / f"{split}.jsonl", lines=True, dtype={"id": str})
        ev["norm"] = independent_norm(ev.text)
        joined = train.merge(ev[ev.norm != ""], on="norm", suffixes=("_train", "_eval"))
        mine = p[(p.split_a == "train") & (p.split_b == split) & p.text_exact.notna()]
        assert len(mine) == len(joined)
        assert set(zip(mine.id_a, mine.id_b)) == set(zip(joined.id_train, joined.id_eval))
        assert len(set(mine.id_b)) == joined.id_eval.nunique()
        total += len(joined)
    assert total > 100  # Hateful Memes reuses many train texts in its eval splits


def _near_identical(a, b) -> float:
    """Correlation of the two decoded images, both as 64x64 grey."""
    x = np.asarray(Image.open(a).convert("L").resize((64, 64)), dtype=float).ravel()
    y = np.asarray(Image.open(b).convert("L").resize((64, 64)), dtype=float).ravel()
    return float(np.corrcoef(x, y)[0, 1])


def test_semeval_image_duplicates_between_train_and_dev(shared_data):
    ds = load_dataset(shared_data / "semeval2021_task6")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = analyze(ds)
    assert "images_missing" not in result.skipped
    p = result.pairs
    found = p[(p.split_a == "train") & (p.split_b == "dev") & (p.image_exact.notna() | p.image_phash.notna())]
    assert len(found) >= 1
    for a, b in zip(found.a, found.b):
        assert _near_identical(ds.image_path(ds.memes[a]), ds.image_path(ds.memes[b])) > 0.9
    assert set(found.id_b).isdisjoint(result.clean_ids["dev"])
