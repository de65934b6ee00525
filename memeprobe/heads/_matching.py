"""Does a model meet the data it was made for? A store's features, dataset and labels against what the model
file recorded when it was trained (``predict``, for every head kind and the span head).

Each mismatch is named in one line. The caller may allow another dataset or other labels
(``allow_other_dataset``: e.g. the same encoder's features of new memes) and, separately, features of another
provenance (``allow_other_features``: encoder, weights or preprocessing differ); array shapes must always
match. A model file from before a field was recorded is checked for what it records, and says so once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from memeprobe.errors import MemeprobeError, ModelError, StoreError
from memeprobe.store.features import identity as identity_of
from memeprobe.store.features import label_names, resolve


@dataclass
class Match:
    """What :func:`check_match` found: whether the dataset is the model's (None: the file does not record it),
    whether the store labels what the model predicts (its scores then mean something), and notes to print."""

    same_dataset: bool | None
    same_labels: bool
    notes: list = field(default_factory=list)


def check_match(store, model_path, refs, identity: dict, fingerprint: str | None, names, store_names, *,
                allow_other_dataset: bool = False, allow_other_features: bool = False) -> Match:
    """Refuse (ModelError naming every mismatch) a store whose features, dataset or label names differ from
    the model's: ``refs``/``identity`` (the feature references and their identity at training), ``fingerprint``
    (the training dataset's; None in older files), ``names`` (what the model predicts) against ``store_names``
    (the store's label names for the model's target)."""
    try:
        for ref in refs:
            resolve(store, ref)
        current = identity_of(store, refs)
    except StoreError:  # a damaged store is reported as such
        raise
    except MemeprobeError as e:
        raise ModelError(f"{model_path} was trained on features {', '.join(refs)}, but store {store.path} does "
                           f"not match: {e}") from None
    notes = []
    shapes = [n for n in identity if current.get(n, {}).get("arrays") != identity[n].get("arrays")]
    if shapes:
        raise ModelError(f"{model_path} was trained on arrays of other shapes than store {store.path} holds in "
                           f"feature set(s) {', '.join(shapes)} (model: {_json(identity, shapes, 'arrays')}; store: "
                           f"{_json(current, shapes, 'arrays')}); featurize with the same spec or retrain")
    differ = [n for n in identity if current.get(n) != identity[n]]
    if differ:
        what = (f"{model_path} was trained on other features than store {store.path} holds: feature set(s) "
                f"{', '.join(differ)} differ in encoder/weights/preprocessing (model: "
                f"{_json(identity, differ, 'identity')}; store: {_json(current, differ, 'identity')})")
        if not allow_other_features:
            raise ModelError(f"{what}; featurize with the same spec, retrain, or allow other features explicitly",
                               option="allow_other_features")
        notes.append(f"{what}: allowed")
    same_dataset = None if fingerprint is None else fingerprint == store.dataset_fingerprint
    if fingerprint is None:
        notes.append(f"{model_path} was saved by an older memeprobe that did not record its dataset: the dataset "
                     "is not checked, only the features and label names")
    problems = []
    if same_dataset is False:
        problems.append(f"it was trained on another dataset (fingerprint {fingerprint[:12]}) than the store holds "
                        f"({store.dataset_format}, {store.n} memes, fingerprint {store.dataset_fingerprint[:12]})")
    same_labels = list(names) == list(store_names)
    if not same_labels:
        problems.append(f"it predicts {', '.join(names)}, the store labels {', '.join(store_names) or 'nothing'}")
    if problems:
        what = f"{model_path} does not match store {store.path}: {'; '.join(problems)}"
        if not allow_other_dataset:
            raise ModelError(f"{what}; use a model trained on this dataset, or allow another dataset explicitly "
                               "(the output then follows the model's labels)", option="allow_other_dataset")
        notes.append(f"{what}: allowed" + ("" if same_labels else "; no scores (the store's labels are not what "
                                                                   "the model predicts)"))
    return Match(same_dataset, same_labels, notes)


def match_model(store, model_path, meta: dict, **allow) -> Match:
    """:func:`check_match` of a model file's ``meta`` against ``store``: the store's label names are those of the
    model's target, or (a store without classes for that target) those it does label."""
    try:
        store_names = label_names(store, meta["target"])
    except MemeprobeError:  # the store has no classes for the model's target: what it does label
        store_names = label_names(store, "auto")
    return check_match(store, model_path, meta["feature_sets"], meta["identity"], meta.get("dataset_fingerprint"),
                       meta["label_names"], store_names, **allow)


def _json(identity: dict, names, key: str) -> str:
    return json.dumps({n: (identity.get(n) or {}).get(key) for n in names}, sort_keys=True)
