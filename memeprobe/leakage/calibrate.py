"""Cosine thresholds chosen from the data: the cosine above which an embedding's nearest neighbours agree with a
near-duplicate detector that needs no model (perceptual-hash distance for pictures, token Jaccard for texts).

One cosine threshold for every dataset and encoder is wrong somewhere: EfficientNet-Lite0 ImageNet features
score unrelated simple-layout pictures of the synthetic sample up to 0.961 while a JPEG round trip of one of its
pictures scores 0.855; on the SemEval-2021 photos no unrelated pair scores above 0.85 and one photo under two
captions scores 0.89-0.94 (benchmarks/RESULTS.md). So, per feature set (:func:`choose`):

1. *candidates*: the ``NEIGHBOURS`` nearest neighbours by cosine of each exact-duplicate class representative (of
   at most ``QUERIES`` of them, a seeded sample beyond), searched in the index the near-duplicate search uses;
2. the *reference* measures each candidate. A candidate *agrees* when the reference alone calls it a near
   duplicate (hash distance <= ``--phash-distance``, Jaccard >= ``--jaccard``); it *differs* when the reference
   finds it no closer than the closest 1 % of random pairs of the same dataset (the 1st percentile of hash
   distances, the 99th of Jaccard, over ``RANDOM_PAIRS`` seeded random pairs). In between it is undecided (a crop,
   a new caption over the same photo, a paraphrase: what the embedding is for) and does not count;
3. down the cosine ranking, (a) the first differing candidate at which the differing ones exceed ``1 - PRECISION``
   of the decided ones so far is where the embedding stops agreeing with the reference: the threshold lies halfway
   between its cosine and the lowest cosine of an agreeing candidate above it (the middle of the gap between what
   the reference calls different and what it calls the same). When no agreeing one is above, nothing shows where
   near duplicates lie: the threshold is just above it, but never below the former fixed default (``FALLBACK``).
   (b) Undecided pairs do not count for (a), so the threshold is raised, where needed, above the first rank at
   which more than half of ``WINDOW`` consecutive candidates are not confirmed by the reference (on Hateful Memes
   texts, from MiniLM cosine 0.79 to 0.93: below it, near-paraphrases of one joke mix with memes that only share a
   topic).

Without a reference (no decoded picture, no text) or without a differing candidate, the previous fixed default
is used (``FALLBACK``) and the choice says why; a threshold the user gives is used as given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

NEIGHBOURS = 5  # nearest neighbours per representative
QUERIES = 10_000  # representatives whose neighbours are searched (a seeded sample beyond)
RANDOM_PAIRS = 20_000  # random pairs that say how close unrelated memes of this dataset are
RANDOM_SHARE = 0.01  # "differs": no closer by the reference than this share of random pairs
PRECISION = 0.98  # share of decided candidates above the threshold that must agree
WINDOW = 20  # consecutive candidates of which at least half must agree above the threshold
FALLBACK = {"text": 0.9, "image": 0.95}  # without evidence: the former fixed defaults
REFERENCE = {"text": "token Jaccard", "image": "perceptual hash"}


@dataclass
class Choice:
    """A cosine threshold and how it was chosen: ``chosen`` is "given", "from the data" or "default"; ``why`` one
    sentence; ``evidence`` the numbers behind it (rows as ``"split/id"``)."""

    value: float
    chosen: str
    why: str
    evidence: dict = field(default_factory=dict)


def given(value: float, option: str) -> Choice:
    return Choice(float(value), "given", f"given by {option}")


def _up(x: float) -> float:
    """``x`` rounded up to 4 decimals (a threshold printed as it is used)."""
    return math.ceil(round(float(x) * 1e4, 6)) / 1e4


def random_cut(reference, rng) -> float:
    """How close the closest ``RANDOM_SHARE`` of random pairs of the reference's representatives are."""
    m = len(reference.reps)
    pa, pb = rng.integers(0, m, RANDOM_PAIRS), rng.integers(0, m, RANDOM_PAIRS)
    keep = pa != pb
    value = reference.similarity(pa[keep], pb[keep])
    value = value[np.isfinite(value)]
    return float(np.quantile(value, RANDOM_SHARE if reference.lower_is_closer else 1 - RANDOM_SHARE))


def candidates(index, source, reps: np.ndarray, rng):
    """Unique nearest-neighbour pairs ``(a, b, cosine)`` of (a sample of) the representatives ``reps``."""
    queries = reps if len(reps) <= QUERIES else np.sort(rng.choice(reps, QUERIES, replace=False))
    q, nbr, cos = index.search(source, queries, k=NEIGHBOURS + 1)
    a, b, c = np.repeat(q, nbr.shape[1]), nbr.ravel(), cos.ravel()
    keep = (b >= 0) & (a != b)
    a, b, c = np.minimum(a, b)[keep], np.maximum(a, b)[keep], c[keep]
    _, first = np.unique(a * (int(b.max(initial=0)) + 1) + b, return_index=True)
    return a[first], b[first], c[first].astype(np.float64)


def choose(modality: str, index, source, reps: np.ndarray, reference, name=str, seed: int = 0) -> Choice:
    """The cosine threshold of one feature set (see the module docstring). ``index``: a fitted
    ``neighbors.CosineIndex`` over ``reps`` (representative rows of ``source``); ``reference``: the links of the
    modality's model-free detector (``links.PhashLinks``, ``links.JaccardLinks``) or None; ``name(row)`` names a
    meme in the evidence."""
    fallback, what = FALLBACK[modality], REFERENCE[modality]
    if reference is None or len(reference.reps) < 2 or len(reps) < 2:
        return Choice(fallback, "default", f"the former default: no {what} to compare with")
    rng = np.random.default_rng(seed)
    a, b, cos = candidates(index, source, reps, rng)
    ref = reference.measure(a, b)
    cut = random_cut(reference, rng)
    with np.errstate(invalid="ignore"):
        agree = reference.passes(ref)
        differ = ~agree & ((ref >= cut) if reference.lower_is_closer else (ref <= cut))
    order = np.argsort(-cos, kind="stable")
    a, b, cos, ref, agree, differ = a[order], b[order], cos[order], ref[order], agree[order], differ[order]
    evidence = {"reference": what, "candidates": len(cos), "agreeing": int(agree.sum()),
                "differing": int(differ.sum()), "undecided": int((~agree & ~differ).sum()),
                "differs_when": f"{'>=' if reference.lower_is_closer else '<='} {_fmt(cut)} (as close as the "
                                f"closest {RANDOM_SHARE:.0%} of {RANDOM_PAIRS:,} random pairs)"}
    counts = (f"{len(cos):,} nearest-neighbour pairs: {evidence['agreeing']:,} near by the {what}, "
              f"{evidence['differing']:,} different, {evidence['undecided']:,} undecided")

    def pair(k):
        return {"cosine": round(float(cos[k]), 4), "reference": _fmt(ref[k]), "memes": [name(a[k]), name(b[k])]}

    def shown(k):
        measure = f"{_fmt(ref[k])} bits" if reference.lower_is_closer else f"Jaccard {_fmt(ref[k])}"
        return f"{cos[k]:.4f} ({measure}: {name(a[k])} ~ {name(b[k])})"

    # (a) precision: the first differing pair at which the differing ones exceed 1 - PRECISION of the decided ones
    n_agree, n_differ = np.cumsum(agree), np.cumsum(differ)
    fails = np.flatnonzero(differ & (n_differ > (1 - PRECISION) * (n_agree + n_differ)))
    if not len(fails):
        if not differ.any():
            return Choice(fallback, "default", f"the former default: no nearest-neighbour pair that the {what} "
                          f"calls different ({counts})", evidence)
        low = int(np.flatnonzero(agree)[-1])
        evidence["lowest_agreeing"] = pair(low)
        value, why = _up(cos[low]), (f"the lowest nearest-neighbour pair that the {what} calls near, {shown(low)}: "
                                     f"at no rank do more than {1 - PRECISION:.0%} of the decided pairs differ")
    else:
        f = int(fails[0])
        evidence["first_differing"] = pair(f)
        above = np.flatnonzero(agree[:f])
        if len(above):
            low = int(above[-1])
            evidence["lowest_agreeing_above"] = pair(low)
            value, why = _up((cos[f] + cos[low]) / 2), (
                f"halfway between {shown(low)}, the lowest nearest-neighbour pair that the {what} calls near above "
                f"{shown(f)}, where the pairs it calls different first pass {1 - PRECISION:.0%} of those it decides")
        else:  # no evidence of where near duplicates lie: never below the former default
            value = max(_up(cos[f] + 1e-6), fallback)
            why = (f"{'just above' if value > fallback else 'the former default, above'} {shown(f)}, the "
                   f"highest-ranked pair that the {what} calls different, with no pair it calls near above it")
    # (b) majority: the first rank where more than half of WINDOW consecutive pairs are not near by the reference
    unconfirmed = np.cumsum(~agree)
    crowd = np.flatnonzero(unconfirmed - np.concatenate([np.zeros(WINDOW, np.int64), unconfirmed])[:len(cos)]
                           > WINDOW / 2)
    if len(crowd) and _up(cos[crowd[0]] + 1e-6) > value:
        k = int(crowd[0])
        evidence["majority_lost"] = pair(k)
        value = _up(cos[k] + 1e-6)
        why += (f"; raised to {value:.4f}: from {cos[k]:.4f} down, more than half of {WINDOW} consecutive pairs are "
                f"not near by the {what}")
    return Choice(value, "from the data", f"{why} ({counts})", evidence)


def _fmt(x) -> float | int:
    x = float(x)
    return int(x) if x.is_integer() else round(x, 4)
