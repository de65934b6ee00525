"""The meme table: written from a dataset (its columns once; its labels, spans and label names again when the
dataset labels the same memes otherwise), read back on open. Layout: SCHEMA.md beside this module."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np

from memeprobe import __version__
from memeprobe.data.records import Dataset
from memeprobe.errors import DatasetError
from memeprobe.store import layout
from memeprobe.store import spans as span_table
from memeprobe.store.files import commit
from memeprobe.store.schema import FEATURES, KIND, MAGIC, MEMES, SCHEMA_VERSION, SPANS, VERSION, dumps, now

_STR = h5py.string_dtype("utf-8")


def label_arrays(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The meme table's ``label`` (n,) and ``labels`` (n, K) of ``dataset``; -1 = unlabeled."""
    label = np.array([-1 if m.label is None else m.label for m in dataset.memes], dtype=np.int8)
    labels = np.full((len(dataset.memes), len(dataset.label_names)), -1, dtype=np.int8)
    for i, m in enumerate(dataset.memes):
        if m.labels is not None:
            labels[i] = m.labels
    return label, labels


def write_labels(f: h5py.File, dataset: Dataset) -> None:
    """Write (or replace) the labels, spans, label names and dataset options of the meme table."""
    g = f[MEMES]
    for key in ("label", "labels", SPANS):
        if key in g:
            del g[key]
    label, labels = label_arrays(dataset)
    g.create_dataset("label", data=label, track_times=False)
    g.create_dataset("labels", data=labels, track_times=False)
    span_table.write_table(g, dataset.memes)
    f.attrs.update({"label_names": dumps(list(dataset.label_names)), "binary_name": dumps(dataset.binary_name),
                    "dataset_options": dumps(dataset.options)})
    f.attrs["labels_sha256"] = layout.labels_sha256(f)


def check_dataset(dataset: Dataset) -> None:
    """Refuse, before anything is written, a dataset the meme table cannot hold."""
    if not dataset.memes:
        raise DatasetError(f"dataset {dataset.root} has no memes; nothing to store")
    seen = set()
    for m in dataset.memes:
        if (m.split, m.id) in seen:
            raise DatasetError(f"dataset {dataset.root}: id {m.id} appears twice in split {m.split}; "
                               "fix the annotations so (split, id) is unique")
        seen.add((m.split, m.id))
    k = len(dataset.label_names)
    for m in dataset.memes:
        if m.labels is not None and len(m.labels) != k:
            raise DatasetError(f"dataset {dataset.root}: meme {m.split}/{m.id} has {len(m.labels)} labels "
                               f"but the dataset names {k}")


def write_new(path: Path, dataset: Dataset) -> None:
    """A new store at ``path`` holding the meme table of ``dataset`` and no feature set (committed whole)."""
    check_dataset(dataset)
    k = len(dataset.label_names)
    memes = dataset.memes
    columns = {"id": [m.id for m in memes], "split": [m.split for m in memes],
               "text": [m.text for m in memes], "image": [m.image or "" for m in memes]}
    text_bytes = sum(len(v.encode("utf-8")) for col in columns.values() for v in col)

    def build(f: h5py.File):
        f.attrs.update({
            KIND: MAGIC, VERSION: SCHEMA_VERSION, "memeprobe_version": __version__,
            "created": now(), "dataset_format": dataset.format, "dataset_root": str(dataset.root),
            "dataset_fingerprint": dataset.fingerprint()})
        g = f.create_group(MEMES)
        for key, values in columns.items():
            g.create_dataset(key, data=np.array(values, dtype=object), dtype=_STR, track_times=False)
        write_labels(f, dataset)
        f.create_group(FEATURES)

    commit(path, build, need_bytes=2 * text_bytes + len(memes) * (4 * 48 + 1 + k) + (1 << 20)
           + span_table.span_bytes(memes))


def read_table(f: h5py.File) -> SimpleNamespace:
    """The meme table of the open store ``f`` (its layout checked before): ``splits``, ``ids``, ``texts``,
    ``images`` (str arrays), ``label``, ``labels``, ``spans`` and the ``fingerprint`` of its rows."""
    m = f[MEMES]
    columns = {k: m[key].asstr()[()] for k, key in (("splits", "split"), ("ids", "id"), ("texts", "text"),
                                                     ("images", "image"))}  # object arrays of str
    t = SimpleNamespace(**{k: np.array(v, dtype=str) for k, v in columns.items()},
                        label=m["label"][()], labels=m["labels"][()],
                        fingerprint=layout.table_fingerprint(*columns.values()))
    labelled = (t.labels >= 0).any(axis=1) if t.labels.shape[1] else np.zeros(len(t.ids), bool)
    t.spans = span_table.read_table(m, labelled)  # per row: tuple of Span, or None where unknown
    return t
