"""Text normalisation, exact-hash pairs and token-Jaccard pairs (checked against brute force)."""
import itertools

import numpy as np
import pytest

from memeprobe.leakage.classes import class_ids, same_class
from memeprobe.leakage.text import TokenSets, normalize_text, text_hash, tokens


@pytest.mark.parametrize("a, b", [
    ("Hello, World!", "hello world"),
    ("  hello\tworld  ", "HELLO WORLD"),
    ("ｈｅｌｌｏ world", "hello world"),  # full-width letters (NFKC)
    ("STRASSE", "straße"),  # casefold
    ("don't stop", "don t stop"),
    ("a—b", "a b"),
])
def test_normalisation_equates_variants(a, b):
    assert normalize_text(a) == normalize_text(b)
    assert text_hash(a) == text_hash(b) != ""


@pytest.mark.parametrize("a, b", [("hello world", "hello worlds"), ("a b", "ab"), ("1 2", "12")])
def test_normalisation_keeps_differences(a, b):
    assert normalize_text(a) != normalize_text(b)


def test_empty_text_never_matches():
    assert text_hash("  ...!! ") == ""
    assert class_ids([normalize_text(t) for t in ["!!", "", "a", "A.", "b"]]).tolist() == [-1, -1, 0, 0, 1]


def test_exact_classes_pair_exactly_the_equal_keys():
    rng = np.random.default_rng(0)
    keys = [f"k{v}" if v else "" for v in rng.integers(0, 30, 200)]
    i, j = np.triu_indices(200, 1)
    same = same_class(class_ids(keys), i, j)
    want = {(a, b) for a, b in itertools.combinations(range(200), 2) if keys[a] and keys[a] == keys[b]}
    assert set(zip(i[same].tolist(), j[same].tolist())) == want


def jaccard_pairs(texts, threshold, rows=None, **kw):
    """All the blocks of the join as one ``(i, j, jaccard)``."""
    blocks = list(TokenSets(texts, rows).join(threshold, **kw))
    return tuple(np.concatenate([b[k] for b in blocks]) for k in range(3)) if blocks else ([], [], [])


def test_jaccard_pairs_match_brute_force():
    rng = np.random.default_rng(1)
    words = [f"w{k}" for k in range(40)]
    texts = [" ".join(rng.choice(words, rng.integers(1, 9))) for _ in range(300)]
    texts += [t + " extra" for t in texts[:20]] + ["", "..."]
    for threshold in (0.5, 0.7, 1.0):
        i, j, s = jaccard_pairs(texts, threshold, chunk=50)  # several chunks
        got = {(a, b): v for a, b, v in zip(i.tolist(), j.tolist(), s.tolist())}
        want = {}
        for a, b in itertools.combinations(range(len(texts)), 2):
            ta, tb = tokens(texts[a]), tokens(texts[b])
            if ta and tb and len(ta & tb) / len(ta | tb) >= threshold - 1e-6:
                want[(a, b)] = len(ta & tb) / len(ta | tb)
        assert set(got) == set(want)
        assert all(abs(got[k] - want[k]) < 1e-5 for k in want)


def test_jaccard_respects_row_subset():
    texts = ["a b c", "a b c", "a b c", "x y"]
    i, j, _ = jaccard_pairs(texts, 0.9, rows=[0, 2, 3])
    assert list(zip(i, j)) == [(0, 2)]
