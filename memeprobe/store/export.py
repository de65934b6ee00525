"""Export one feature set of a store to Parquet, NPZ or a Hugging Face ``datasets`` folder (written atomically:
never half-written)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from memeprobe.atomic import atomic_dir, atomic_write
from memeprobe.errors import OutputError
from memeprobe.outputs import check_output, guarded
from memeprobe.store.features import resolve_set
from memeprobe.store.store import FeatureStore

FORMATS = (".parquet", ".npz")
HF_DATA_FILE = "data-00000-of-00001.arrow"  # the one shard of a datasets save_to_disk folder


@guarded(paths={"store": "st"})
def export_feature_set(st: FeatureStore, name: str, out, splits=None, arrays=None, missing: str = "error") -> int:
    """Write rows of ``splits`` (done rows only with missing="drop") to ``out``; returns the row count.

    Columns: id, split, text, image, label (when the dataset has binary labels), labels (when it has label
    names), one column per array. Parquet and a datasets folder (``out`` a folder or a name without suffix):
    arrays as fixed-size lists of the flattened row in the stored dtype; NPZ: arrays keep their per-row shape."""
    out = Path(out)
    folder = out.is_dir() or not out.suffix
    if not folder and out.suffix not in FORMATS:
        raise OutputError(f"cannot export to {out}: give a file name ending in .parquet or .npz, or a folder "
                          "(without a suffix) for a Hugging Face datasets folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "state.json").is_file():
        raise OutputError(f"cannot export to {out}: it is a folder holding other files (it would be replaced "
                          "whole); give a new or empty folder, or a datasets folder exported before")
    check_output(out, "datasets" if folder else "file")
    name, arrays = resolve_set(st, name, arrays or None, every=True)
    rows = st.select_rows(name, arrays, splits, missing)
    columns = {"id": st.ids[rows], "split": st.splits[rows], "text": st.texts[rows], "image": st.images[rows]}
    if st.binary_name is not None or (st.label >= 0).any():
        columns["label"] = st.label[rows]
    if st.label_names:
        columns["labels"] = st.labels[rows]
    values = {a: st.read(name, a, rows) for a in arrays}
    clash = set(values) & set(columns)
    if clash:
        raise OutputError(f"feature set {name!r}: array names {sorted(clash)} clash with meme table columns")
    if folder:
        with atomic_dir(out, "datasets") as tmp:
            _write_hf(tmp, _arrow_table(st, name, columns, values))
        return len(rows)
    with atomic_write(out, "wb") as f:
        if out.suffix == ".npz":
            np.savez(f, **columns, **values, label_names=np.array(st.label_names, dtype=str))
        else:
            _write_parquet(f, st, name, columns, values)
    return len(rows)


def _write_parquet(out, st: FeatureStore, name: str, columns: dict, values: dict) -> None:

    pq.write_table(_arrow_table(st, name, columns, values), out)


def _arrow_table(st: FeatureStore, name: str, columns: dict, values: dict):
    """Meme-table columns and arrays (fixed-size lists of the flattened row) with the feature set's label names,
    array specs and provenance in the schema metadata."""

    table = {}
    for key, col in columns.items():
        if col.ndim == 2:
            table[key] = pa.FixedSizeListArray.from_arrays(pa.array(col.reshape(-1)), col.shape[1])
        else:
            table[key] = pa.array(col)
    for key, v in values.items():
        flat = v.reshape(len(v), int(np.prod(v.shape[1:])))
        table[key] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])
    meta = {"memeprobe.feature_set": name, "memeprobe.label_names": json.dumps(list(st.label_names)),
            "memeprobe.arrays": json.dumps({a: s.to_json() for a, s in st.arrays(name).items() if a in values}),
            "memeprobe.provenance": json.dumps(st.provenance(name))}
    return pa.table(table).replace_schema_metadata(meta)


def _hf_feature(t) -> dict:
    """The ``datasets`` feature of an Arrow type (fixed-size lists as ``Sequence`` with a length, which every
    datasets version reads)."""

    if pa.types.is_fixed_size_list(t):
        return {"_type": "Sequence", "feature": _hf_feature(t.value_type), "length": t.list_size}
    dtype = {"float16": "float16", "halffloat": "float16", "float": "float32", "double": "float64"}.get(str(t), str(t))
    return {"_type": "Value", "dtype": "string" if pa.types.is_string(t) or pa.types.is_large_string(t) else dtype}


def _write_hf(folder: Path, table) -> None:
    """A ``Dataset.save_to_disk`` folder: one Arrow stream shard, dataset_info.json, state.json."""

    features = {f.name: _hf_feature(f.type) for f in table.schema}
    meta = dict(table.schema.metadata or {})
    meta[b"huggingface"] = json.dumps({"info": {"features": features}}).encode()
    table = table.replace_schema_metadata(meta)
    with pa.OSFile(str(folder / HF_DATA_FILE), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=1000)
    info = {"citation": "", "description": f"memeprobe feature set {meta[b'memeprobe.feature_set'].decode()}",
            "features": features, "homepage": "", "license": ""}
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2))
    fingerprint = hashlib.sha256(json.dumps([features, table.num_rows, meta[b"memeprobe.provenance"].decode()])
                                 .encode()).hexdigest()[:16]
    state = {"_data_files": [{"filename": HF_DATA_FILE}], "_fingerprint": fingerprint, "_format_columns": None,
             "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False, "_split": None}
    (folder / "state.json").write_text(json.dumps(state, indent=2))
