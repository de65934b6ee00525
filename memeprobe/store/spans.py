"""The span table of the meme table (schema 2): technique spans of meme texts, and the v1 → v2 migration.

``/memes/spans`` holds one row per span, sorted by meme row: ``row``, ``start``, ``end`` (character offsets
into the meme text, end exclusive) and ``label`` (index into ``label_names``). Its attribute ``annotated``
is 1 when the dataset carries span annotations; a meme's spans are then known where its ``labels`` row is
labelled (not -1), and an empty list there means "no technique".
"""
from __future__ import annotations

import h5py
import numpy as np

from memeprobe.data.records import Span
from memeprobe.store.schema import MEMES, SPANS, VERSION

COLUMNS = {"row": np.int32, "start": np.int32, "end": np.int32, "label": np.int16}


def span_bytes(memes) -> int:
    """Bytes the span table of ``memes`` needs (for the store's disk-space reservation)."""
    return 14 * sum(len(m.spans or ()) for m in memes) + 4096


def write_table(memes_group: h5py.Group, memes) -> None:
    """Create ``spans`` inside ``memes_group`` from the records' ``spans`` (empty when none has any)."""
    rows = [(i, s.start, s.end, s.label) for i, m in enumerate(memes) for s in (m.spans or ())]
    table = np.array(rows, dtype=np.int64).reshape(-1, 4)
    g = memes_group.create_group(SPANS, track_order=False)
    for j, (key, dtype) in enumerate(COLUMNS.items()):
        g.create_dataset(key, data=table[:, j].astype(dtype), track_times=False)
    g.attrs["annotated"] = np.int8(any(m.spans is not None for m in memes))


def migrate_v1(f: h5py.File) -> None:
    """Schema 1 → 2: add an empty, not-annotated span table (v1 stores never held spans)."""
    write_table(f[MEMES], [])
    f.attrs[VERSION] = 2


def read_table(memes_group: h5py.Group, labelled: np.ndarray) -> list[tuple[Span, ...] | None]:
    """Per meme row: its spans, or None where unknown (not annotated, or the row is unlabelled)."""
    n = len(labelled)
    g = memes_group.get(SPANS)
    if g is None or not int(g.attrs.get("annotated", 0)):
        return [None] * n
    cols = {k: g[k][()] for k in COLUMNS}
    out: list[list[Span] | None] = [[] if labelled[i] else None for i in range(n)]
    for r, s, e, lab in zip(cols["row"].tolist(), cols["start"].tolist(), cols["end"].tolist(), cols["label"].tolist()):
        if out[r] is not None:
            out[r].append(Span(s, e, lab))
    return [None if x is None else tuple(x) for x in out]


def check_table(memes_group: h5py.Group, texts, n_labels: int) -> list[str]:
    """Problems of the span table (empty list = ok): columns, row order, offsets inside the texts, labels."""
    g = memes_group.get(SPANS)
    if g is None:
        return ["meme table: span table 'spans' is missing (schema 2)"]
    missing = [k for k in COLUMNS if k not in g]
    if missing:
        return [f"meme table: span table lacks {', '.join(missing)}"]
    cols = {k: g[k][()].astype(np.int64) for k in COLUMNS}
    if len({len(c) for c in cols.values()}) != 1:
        return ["meme table: span table columns differ in length"]
    rows, start, end, label = cols["row"], cols["start"], cols["end"], cols["label"]
    problems = []
    if len(rows) and (rows.min() < 0 or rows.max() >= len(texts) or (np.diff(rows) < 0).any()):
        problems.append("meme table: span rows out of range or not sorted")
        return problems
    lengths = np.array([len(texts[r]) for r in rows], dtype=np.int64)
    if ((start < 0) | (end <= start) | (end > lengths)).any():
        problems.append("meme table: span offsets outside their meme text")
    if ((label < 0) | (label >= n_labels)).any():
        problems.append("meme table: span labels outside label_names")
    return problems
