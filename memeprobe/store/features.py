"""Feature references: the one grammar and resolver of a store's features (used by heads, leakage, export and
the notebook API), and what is loaded through them: arrays, targets and the features' identity.

A reference is ``SET`` (its ``*_embed`` arrays), ``SET:a,b`` or ``SET/a`` (e.g.
``st-minilm/text_embed``). Targets: ``label`` (binary), ``labels`` (multi-hot), ``all``
(the binary label followed by the multi-hot classes, e.g. MAMI misogynous + 4 types) and
``auto`` (binary when the dataset has binary labels, else multi-hot).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from memeprobe.errors import ConfigError, StoreError
from memeprobe.registry import did_you_mean as closest
from memeprobe.store.schema import IDENTITY_KEYS

TARGETS = ("auto", "label", "labels", "all")


@dataclass
class Features:
    X: np.ndarray  # float32 (m, D)
    ids: np.ndarray  # (m,) str
    y: np.ndarray  # (m,) or (m, K) int, -1 = unlabeled
    rows: np.ndarray  # store row of each returned row
    blocks: list[int]  # width of each array, in column order
    modalities: list[str]  # modality of each block


def parse_ref(ref: str) -> tuple[str, list[str] | None]:
    """``"SET"`` → (SET, None); ``"SET:a,b"`` / ``"SET/a"`` → (SET, [a, b])."""
    for sep in (":", "/"):
        if sep in ref:
            name, arrays = ref.split(sep, 1)
            names = [a.strip() for a in arrays.split(",") if a.strip()]
            if not name or not names:
                break
            return name, names
    else:
        if ref.strip():
            return ref.strip(), None
    raise ConfigError(f"bad feature reference {ref!r}; write SET, SET:array[,array] or SET/array")


def resolve(store, ref: str) -> tuple[str, list[str]]:
    """The feature set and arrays a reference names in ``store`` (checked)."""
    return resolve_set(store, *parse_ref(ref), ref=ref)


def resolve_set(store, name: str, arrays=None, every: bool = False, ref: str | None = None) -> tuple[str, list[str]]:
    """Feature set ``name`` of ``store`` and its ``arrays`` (None: its ``*_embed`` arrays, or every array with
    ``every``), checked. ``ref``: the reference they were read from, for the hint on a missing set."""
    if name not in store.feature_sets():
        close = did_you_mean(ref or name, store.feature_sets())
        raise StoreError(f"store {store.path} has no feature set {name!r}{close} (it has: "
                         f"{', '.join(store.feature_sets()) or 'none'}); run `memeprobe featurize` first")
    spec = store.arrays(name)
    if arrays is None:
        arrays = list(spec) if every else [a for a in spec if a.endswith("_embed")]
        if not arrays:
            raise StoreError(f"feature set {name!r} has no *_embed array; name the arrays: {name}:{','.join(spec)}")
    store.array_specs(name, arrays)
    return name, list(arrays)


def did_you_mean(ref: str, names) -> str:
    """`` (did you mean 'st-minilm'?)`` for the name closest to ``ref`` (``st:minilm``, ``st-minlm``...), else ``""``."""
    names = list(names)
    # a featurizer spec (``st:minilm``) names its feature set with a dash (``st-minilm``)
    for guess in (ref.replace(":", "-").replace("/", "-"), parse_ref(ref)[0]):
        if hint := closest(guess, names):
            return hint
    return ""


def canonical(store, refs) -> list[str]:
    """References in the explicit ``SET:a,b`` form (what a model file records)."""
    out = []
    for ref in refs:
        name, arrays = resolve(store, ref)
        out.append(f"{name}:{','.join(arrays)}")
    return out


def label_names(store, target: str) -> list[str]:
    target = resolve_target(store, target)
    binary = [store.binary_name or "label"]
    return {"label": binary, "labels": list(store.label_names), "all": binary + list(store.label_names)}[target]


def resolve_target(store, target: str) -> str:
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if target == "auto":
        has_binary = store.binary_name is not None or (store.label >= 0).any()
        return "label" if has_binary or not store.label_names else "labels"
    if target in ("labels", "all") and not store.label_names:
        raise ConfigError(f"store {store.path} has no multi-label classes; use the binary label target",
                          option="target")
    return target


def target_values(store, target: str, rows: np.ndarray) -> np.ndarray:
    """The ``target`` labels of store ``rows``, as stored (int8; -1 = unlabeled)."""
    target = resolve_target(store, target)
    if target == "label":
        return store.label[rows]
    if target == "labels":
        return store.labels[rows]
    both = np.hstack([store.label[rows, None], store.labels[rows]])
    both[(both < 0).any(1)] = -1  # a row is labeled only when both parts are
    return both


def load_features(store, refs, splits, target="auto") -> Features:
    """The referenced arrays of the rows of ``splits``, concatenated in reference order."""
    parts, blocks, mods, rows = [], [], [], None
    for ref in refs:
        name, arrays = resolve(store, ref)
        spec = store.arrays(name)
        for a in arrays:
            X, _, _, r = store.load_rows(name, [a], splits=splits, target="auto", missing="error")
            if rows is not None and not np.array_equal(rows, r):
                raise StoreError(f"feature set {name!r} covers other rows than {refs[0]!r}")
            rows = r
            parts.append(X)
            blocks.append(X.shape[1])
            mods.append(spec[a].modality)
    if rows is None:
        raise ConfigError("give at least one --feature-set")
    if not len(rows):
        raise StoreError(f"store {store.path} has no rows in split(s) {', '.join(splits)} "
                         f"(it has: {', '.join(store.split_names())})")
    return Features(np.hstack(parts), store.ids[rows], target_values(store, target, rows).astype(np.int64), rows,
                    blocks, mods)


def identity(store, refs) -> dict:
    """What identifies the features of ``refs``: per set, array specs and the provenance identity keys."""
    out = {}
    for ref in refs:
        name, arrays = resolve(store, ref)
        spec, prov = store.arrays(name), store.provenance(name)
        entry = out.setdefault(name, {"identity": {k: prov.get(k) for k in IDENTITY_KEYS}, "arrays": {}})
        for a in arrays:
            entry["arrays"][a] = spec[a].to_json()
    return out


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def store_checksum(store, refs) -> str:
    """sha256 of the meme-table fingerprint plus the features' identity."""
    return digest({"dataset": store.info()["dataset"]["fingerprint"], "features": identity(store, refs)})
