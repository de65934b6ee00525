"""The Python API for notebooks: open a store read-only, load features with the CLI's feature syntax, load datasets.

    import memeprobe
    store = memeprobe.open_store("hm.h5")
    f = store.load("st-minilm/text_embed", splits=["train"])   # f.X, f.ids, f.y
    df = store.to_pandas(features=["st-minilm"])
    ds = memeprobe.load_dataset("data/mami", allow_empty_text=True)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from memeprobe.data import load_dataset
from memeprobe.store import FeatureStore
from memeprobe.store.features import Features, load_features, resolve

__all__ = ["Store", "open_store", "load_dataset"]


def open_store(path) -> "Store":
    """A read-only :class:`Store` on the feature store at ``path`` (takes no lock; safe while a writer appends)."""
    return Store(FeatureStore.open(path))


class Store:
    """A read-only feature store: its meme table, and features named as on the command line (``SET``,
    ``SET:a,b``, ``SET/a``). Close it with :meth:`close` or use it in a ``with`` block."""

    def __init__(self, store: FeatureStore):
        self.store = store

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"memeprobe.Store({str(self.store.path)!r}, n={self.store.n}, feature_sets={self.feature_sets()})"

    def close(self) -> None:
        self.store.close()

    def feature_sets(self) -> list[str]:
        return self.store.feature_sets()

    def splits(self) -> list[str]:
        return self.store.split_names()

    def load(self, features, splits=None, target: str = "auto") -> Features:
        """The arrays ``features`` names (one reference or a list, concatenated in order) for the rows of
        ``splits`` (a name or list; None = all), every row checked against its checksum. Returns
        :class:`~memeprobe.store.features.Features`: ``X`` float32 (m, D), ``ids``, ``y`` (target "auto",
        "label", "labels" or "all", as ``train-head --target``; -1 = unlabeled), store ``rows``."""
        refs = [features] if isinstance(features, str) else list(features)
        return load_features(self.store, refs, self._splits(splits), target)

    def to_pandas(self, features=(), splits=None):
        """A DataFrame of the meme table (id, split, text, image, label, one ``label:NAME`` column per class;
        labels are nullable integers, missing = unlabeled) plus one column per feature value of ``features``,
        named ``SET/ARRAY/j``. With features, every selected row must be done."""
        st = self.store
        refs = [features] if isinstance(features, str) else list(features)
        rows = st.rows(self._splits(splits))
        columns = []
        if refs:
            f = load_features(st, refs, self._splits(splits), "auto")
            rows = f.rows
            arrays = [f"{name}/{a}" for name, names in (resolve(st, ref) for ref in refs) for a in names]
            columns = [f"{a}/{j}" for a, width in zip(arrays, f.blocks) for j in range(width)]
        table = {"id": st.ids[rows], "split": st.splits[rows], "text": st.texts[rows], "image": st.images[rows],
                 "label": _nullable(st.label[rows])}
        for k, name in enumerate(st.label_names):
            table[f"label:{name}"] = _nullable(st.labels[rows, k])
        frame = pd.DataFrame(table)
        if not columns:
            return frame
        return pd.concat([frame, pd.DataFrame(f.X, columns=columns)], axis=1)

    @staticmethod
    def _splits(splits):
        return [splits] if isinstance(splits, str) else (None if splits is None else list(splits))


def _nullable(values: np.ndarray):
    return pd.array(np.where(values < 0, None, values).tolist(), dtype="Int8")
