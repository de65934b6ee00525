"""Run every duplicate detector over a dataset (and optionally store embeddings) and collect the result.

Defaults: Jaccard >= 0.7 and phash distance <= 12 find every planted near-duplicate of ``make-sample``
(near texts have Jaccard >= 0.8, edited pictures phash distance <= 8) while unrelated sample memes stay
below (Jaccard <= 0.6, distance >= 13). Embedding cosine thresholds are chosen per feature set from the data
(``calibrate``: where the nearest neighbours stop agreeing with the perceptual hash or token Jaccard), since
one cosine is wrong for some encoder and dataset; each pair keeps every detector's measure as its evidence.
The weight-free ``pixels`` image statistics are not used for cosine unless named (``--image-array
pixels/image_embed``): colour histograms of unrelated memes are too similar; its ``image_phash`` is used instead.
Cross-split pairs between the train split and an eval split are the leakage; eval-eval and
within-split pairs are reported too. Clean subsets keep the eval memes with no train duplicate.
Identical texts / images form exact-duplicate classes: near searches run on one representative per
class and pairs are listed per class with a bound (``max_group_pairs``, see ``classes``), so time and
memory stay linear in the memes when thousands share one caption. Near searches yield their pairs in
blocks, as class links (``links``); member pairs are then streamed once (``classes.PairStream`` into
``stream.Tally``), never held: the summary counts, groups, clean ids and leak-exploit estimate come from
every pair, and a group with more than ``max_group_pairs`` near-duplicate pairs (thousands of one-token
variants of a caption) lists only witnesses of them, recording how many pairs it stands for.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from memeprobe.errors import ConfigError, StoreError
from memeprobe.leakage import calibrate, classes, groups, images, links, neighbors, pairs, shift, stream, text
from memeprobe.leakage.config import LeakageConfig
from memeprobe.store.features import parse_ref, resolve_set
from memeprobe.store.schema import DONE


STAGES = ("text duplicates", "image hashes", "text embeddings", "image embeddings", "pairs and groups", "shift audit")


@dataclass
class LeakageResult:
    """Everything the report writers need."""

    pairs: pd.DataFrame
    groups: list[dict]
    splits: list[str]
    eval_splits: list[str]
    split_sizes: dict[str, int]
    clean_ids: dict[str, list[str]]
    exploit: dict[str, dict]
    skipped: dict[str, int]
    sources: dict[str, str]
    config: LeakageConfig
    labelled_splits: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: list[dict] = field(default_factory=list)  # every pair found, per split pair (``stream.Tally.summary``)
    thresholds: dict = field(default_factory=dict)  # evidence name -> how its threshold was chosen
    shift: shift.ShiftAudit | None = None  # every split against train (``shift.audit``)

    def summary(self) -> list[dict]:
        """Counts per split pair (cross-split pairs first, then within-split) over every pair found."""
        return self.counts


class _StoreSource:
    """One store array seen as a sliceable (n, D) source, read block by block."""

    def __init__(self, store, feature_set, array):
        self.store, self.fs, self.array = store, feature_set, array
        spec = store.arrays(feature_set)[array]
        self.shape = (store.n, int(np.prod(spec.shape)))

    def __getitem__(self, rows):
        """A slice or sorted row numbers."""
        rows = np.arange(*rows.indices(self.shape[0])) if isinstance(rows, slice) else np.asarray(rows, np.int64)
        return self.store.read(self.fs, self.array, rows).reshape(len(rows), -1)


def _check_store(store, ds) -> None:
    ids = [m.id for m in ds.memes]
    splits = [m.split for m in ds.memes]
    if store.n != len(ids) or list(store.ids) != ids or list(store.splits) != splits:
        raise StoreError(
            f"store {store.path} was built from another dataset ({store.n} rows vs {len(ids)} memes in "
            f"{ds.root}); pass the store made from this dataset or re-run `memeprobe featurize`")


def pick_array(store, modality: str, name: str | None, feature_sets=None) -> tuple[str, str] | None:
    """``(feature_set, array)`` to use: ``name`` (a feature reference to one array, "set/array") if given, else
    the first ``*_embed`` array of that modality (``pixels`` statistics only when named: their cosine does not mean
    near-duplicate)."""
    if name:
        fs, arrays = parse_ref(name)
        if arrays is None or len(arrays) != 1:
            raise ConfigError(f"--{modality}-array {name!r}: give FEATURE_SET/ARRAY, e.g. st-minilm/text_embed")
        fs, (array,) = resolve_set(store, fs, arrays, ref=name)
        held = store.arrays(fs)[array].modality
        if held != modality:
            raise ConfigError(f"{fs}/{array} holds {held} features, not {modality}")
        return fs, array
    for fs in feature_sets or store.feature_sets():
        if fs == "pixels":
            continue
        spec = store.arrays(fs).get(f"{modality}_embed")
        if spec is not None and spec.modality == modality:
            return fs, f"{modality}_embed"
    return None


def _vector_links(source, rows, cls, threshold, index, what, skipped, notes):
    """Cosine self-join over ``rows`` of a source (``index`` fitted on them) as links of ``cls``; invalid vectors
    are counted and warned about. Returns the links and the rows that had a usable vector.
    """
    bad: set = set()
    found = links.Links.collect(cls, neighbors.cosine_pair_blocks(source, threshold, rows, skipped=bad, index=index),
                                rows, source)
    if bad:
        skipped[f"{what}_vectors_invalid"] = len(bad)
        notes.append(f"{len(bad)} {what} vectors are all-zero or not finite (NaN/inf); "
                     f"those rows were skipped for {what} cosine search")
    return found, np.setdiff1d(rows, np.array(sorted(bad), dtype=np.int64))


def analyze(ds, store=None, config: LeakageConfig | None = None, text_array: str | None = None,
            image_array: str | None = None, feature_sets=None, text_vectors=None, image_vectors=None,
            check_images: bool = True, progress=None) -> LeakageResult:
    """Find within- and cross-split duplicates of a :class:`~memeprobe.data.Dataset`.

    Exact text and image hashes always run (images are decoded when present); embedding cosine runs on
    store arrays (``text_array``/``image_array`` as "set/array", else picked automatically) or on
    ``text_vectors``/``image_vectors`` (arrays with one row per meme, dataset order). ``progress``, if
    given, is called with the name of each stage (one of ``STAGES``) as it starts. Every split is then audited
    for shift against the train split (:func:`memeprobe.leakage.shift.audit`: label priors, and with a store
    the domain classifier and coverage per embedding array, duplicate groups kept whole).
    """
    progress = progress or (lambda stage: None)
    config = config or LeakageConfig()
    memes = ds.memes
    n = len(memes)
    ids = np.array([m.id for m in memes], dtype=object)
    splits = np.array([m.split for m in memes], dtype=object)
    split_names = ds.splits()
    if config.train_split not in split_names:
        raise ConfigError(f"{ds.root}: no split named {config.train_split!r} (splits: {', '.join(split_names)}); "
                          "pass --train-split")
    split_names = [config.train_split] + [s for s in split_names if s != config.train_split]  # train first
    label = np.array([-1 if m.label is None else int(m.label) for m in memes], dtype=np.int64)
    multi = None
    if ds.label_names and not (label >= 0).any():
        k = len(ds.label_names)
        multi = np.array([m.labels if m.labels is not None else (-1,) * k for m in memes], dtype=np.int64)
    notes: list[str] = []
    skipped: dict[str, int] = {}
    sources: dict[str, str] = {"text_exact": "normalised text hash", "text_jaccard": "token sets"}

    # texts: exact classes (normalised text), token Jaccard between class representatives
    progress(STAGES[0])
    keys = [text.normalize_text(m.text) for m in memes]
    text_ok = np.array([bool(k) for k in keys])
    if (~text_ok).any():
        skipped["text_empty"] = int((~text_ok).sum())
        notes.append(f"{int((~text_ok).sum())} memes have empty text (after normalisation); no text checks for them")
    tcls = classes.class_ids(keys)
    near: dict = {"text_jaccard": links.JaccardLinks(tcls, [m.text for m in memes],
                                                     classes.representatives(tcls, text_ok), config.jaccard)}

    # images: exact classes (decoded-pixel hash), perceptual hash between class representatives
    progress(STAGES[1])
    phash_given = None
    if store is not None:
        _check_store(store, ds)
        if check_images and "pixels" in store.feature_sets() and "image_phash" in store.arrays("pixels"):
            done = store.status("pixels", "image") == DONE
            phash_given = np.where(done[:, None], store.read("pixels", "image_phash").reshape(n, -1), 0)
            sources["image_phash"] = "store pixels/image_phash (computed for rows not done)"
    paths = [ds.image_path(m) if check_images else None for m in memes]
    hashes = images.hash_images(paths, phash_given)
    image_ok = hashes.ok
    if not check_images:
        skipped["images_not_checked"] = n
        notes.append("image checks turned off: no image duplicates searched")
    else:
        sources["image_exact"] = "hash of the decoded pixels"
        sources.setdefault("image_phash", "imagehash.phash of the decoded images")
        if (~image_ok).any():
            skipped["images_missing"] = int((~image_ok).sum())
            first = next(iter(hashes.problems.items()))
            notes.append(f"{int((~image_ok).sum())} memes have no readable image (e.g. {ids[first[0]]}: "
                         f"{first[1]}); image checks skipped for them")
    icls = classes.class_ids(hashes.pixel)
    near["image_phash"] = links.PhashLinks(icls, hashes.phash, classes.representatives(icls, image_ok),
                                           config.phash_distance)

    # embeddings, between class representatives (image vectors also count for rows whose file is not here), at a
    # threshold chosen from the data (``calibrate``) unless given
    thresholds = {"text_jaccard": calibrate.Choice(config.jaccard, "option", "--jaccard"),
                  "image_phash": calibrate.Choice(config.phash_distance, "option", "--phash-distance")}
    has_image = np.array([m.image is not None for m in memes])
    vcls = np.where(icls >= 0, icls, icls.max(initial=-1) + 1 + np.arange(n))  # no decoded image: own class
    for modality, given, name, threshold, ok, cls in (
            ("text", text_vectors, text_array, config.text_threshold, text_ok, tcls),
            ("image", image_vectors, image_array, config.image_threshold, has_image, vcls)):
        source = None
        rows = np.flatnonzero(ok)
        if given is not None:
            source = np.asarray(given)
            if source.shape[0] != n:
                raise ConfigError(f"{modality} vectors have {source.shape[0]} rows but the dataset {ds.root} "
                                  f"has {n} memes; give one row per meme in dataset order")
            sources[f"{modality}_cosine"] = "vectors given"
        elif store is not None:
            pick = pick_array(store, modality, name, feature_sets)
            if pick is not None:
                source = _StoreSource(store, *pick)
                done = store.status(pick[0], modality) == DONE
                if (~done[rows]).any():
                    skipped[f"{modality}_not_featurized"] = int((~done[rows]).sum())
                    notes.append(f"{int((~done[rows]).sum())} rows have no {pick[0]}/{pick[1]} vectors yet "
                                 "(not done in the store); skipped for cosine search")
                rows = rows[done[rows]]
                sources[f"{modality}_cosine"] = f"store {pick[0]}/{pick[1]}"
        if source is not None:
            progress(STAGES[2] if modality == "text" else STAGES[3])
            eligible = np.zeros(n, bool)
            eligible[rows] = True
            reps = classes.representatives(cls, eligible)
            index = neighbors.CosineIndex(exact_limit=config.exact_limit).fit(source, reps)
            reference = near["text_jaccard" if modality == "text" else "image_phash"]
            choice = calibrate.given(threshold, f"--{modality}-threshold") if threshold is not None else \
                calibrate.choose(modality, index, source, reps, reference, name=lambda r: f"{splits[r]}/{ids[r]}")
            thresholds[f"{modality}_cosine"] = choice
            near[f"{modality}_cosine"], used = _vector_links(source, reps, cls, choice.value, index, modality,
                                                             skipped, notes)
            if modality == "image":
                image_ok = image_ok.copy()
                image_ok[used] = True  # comparable by embedding even without the file

    # member pairs, streamed once (never held): every pair counts, a bounded set is listed
    progress(STAGES[4])
    sizes = np.concatenate([np.bincount(c[c >= 0]) for c in (tcls, icls)])
    big = sizes[sizes * (sizes - 1) // 2 > config.max_group_pairs]
    if len(big):
        notes.append(f"{len(big)} exact-duplicate classes have more than {config.max_group_pairs} member pairs "
                     f"(largest: {big.max()} memes): each member is paired with one anchor per split and label "
                     "instead of every other member; their groups list every member")
    cell = pd.factorize(pd.Series(list(zip(splits, label if multi is None else map(tuple, multi)))))[0]
    order = np.array([split_names.index(s) for s in splits], dtype=np.int64)
    spaces = [tcls, icls]  # classes whose members are paired (stream sources 0, 1; near detectors after)
    tally = stream.Tally(order=order, n_splits=len(split_names), tcls=tcls, icls=icls, near=near,
                         image_ok=image_ok, text_ok=text_ok, label=label, labels=multi,
                         near_sources=len(spaces), max_pairs=config.max_group_pairs)
    for a, b, source, known in classes.PairStream(spaces, near, cell, pd.factorize(splits)[0],
                                                  config.max_group_pairs):
        tally.add(a, b, source, known)
    group_of_row, facts, summarised, (a, b), tree = tally.finish()
    evidence = pairs.evidence(a, b, tcls, icls, near)
    merged = pairs.merge_evidence({name: (a[hit], b[hit], score) for name, (hit, score) in evidence.items()}, n)
    table = pairs.classify(merged, ids=ids, splits=splits, split_order=split_names,
                           train_split=config.train_split, image_ok=image_ok, text_ok=text_ok,
                           label=label, labels=multi)
    table.insert(8, "group", group_of_row[table.a.to_numpy()] if len(table) else np.zeros(0, np.int64))
    if summarised.any():
        table["group_pairs_found"] = facts["found"][table.group.to_numpy()]
        top = int(np.argmax(summarised))
        notes.append(f"{int(summarised.sum())} groups have more than {config.max_group_pairs} near-duplicate pairs "
                     f"(largest: {int((group_of_row == top).sum())} memes, {int(facts['found'][top]):,} pairs): "
                     "each member is listed with one partner per split and label relation; the summary counts, "
                     f"clean ids and leak-exploit estimate use all {int(tally.counts[0].sum()):,} pairs found")
    table["found_by"] = pairs.found_by(table)
    pairs.add_measures(table, near)
    eval_splits = [s for s in split_names if s != config.train_split]
    labelled = [s for s in split_names
                if ((label >= 0) if multi is None else (multi >= 0).all(axis=1))[splits == s].any()]
    leaks = {s: tally.votes.leak_exploit(splits, s) for s in eval_splits} if multi is None else {}
    if store is not None:
        progress(STAGES[5])
    audit = shift.audit(ds, store, group_of_row, config.train_split, feature_sets, named=(text_array, image_array))
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return LeakageResult(
        pairs=table, groups=groups.summarize_groups(table, group_of_row, ids, splits, config.train_split,
                                                    facts=facts, summarised=summarised, tree=tree),
        splits=split_names,
        eval_splits=eval_splits, split_sizes={s: int((splits == s).sum()) for s in split_names},
        clean_ids=tally.clean_ids(ids, splits, eval_splits), exploit=leaks, skipped=skipped, sources=sources,
        config=config, warnings=notes, labelled_splits=labelled,
        counts=tally.summary(split_names, labelled), thresholds=thresholds, shift=audit)


