"""Export one feature set of a store to Parquet or NPZ (written atomically: never half-written)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from memeprobe.atomic import atomic_write
from memeprobe.errors import MemeprobeError
from memeprobe.outputs import guarded
from memeprobe.store.store import FeatureStore

FORMATS = (".parquet", ".npz")


@guarded(paths={"store": "st"}, outputs={"out": "file"})
def export_feature_set(st: FeatureStore, name: str, out, splits=None, arrays=None, missing: str = "error") -> int:
    """Write rows of ``splits`` (done rows only with missing="drop") to ``out``; returns the row count.

    Columns: id, split, text, image, label (when the dataset has binary labels), labels (when it has label
    names), one column per array. Parquet: arrays as fixed-size lists of the flattened row in the stored
    dtype; NPZ: arrays keep their per-row shape."""
    out = Path(out)
    if out.suffix not in FORMATS:
        raise MemeprobeError(f"cannot export to {out}: the file name must end in .parquet or .npz")
    arrays = list(arrays or st.arrays(name))
    rows = st.select_rows(name, arrays, splits, missing)
    columns = {"id": st.ids[rows], "split": st.splits[rows], "text": st.texts[rows], "image": st.images[rows]}
    if st.binary_name is not None or (st.label >= 0).any():
        columns["label"] = st.label[rows]
    if st.label_names:
        columns["labels"] = st.labels[rows]
    values = {a: st.read(name, a, rows) for a in arrays}
    clash = set(values) & set(columns)
    if clash:
        raise MemeprobeError(f"feature set {name!r}: array names {sorted(clash)} clash with meme table columns")
    with atomic_write(out, "wb") as f:
        if out.suffix == ".npz":
            np.savez(f, **columns, **values, label_names=np.array(st.label_names, dtype=str))
        else:
            _write_parquet(f, st, name, columns, values)
    return len(rows)


def _write_parquet(out, st: FeatureStore, name: str, columns: dict, values: dict) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

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
    pq.write_table(pa.table(table).replace_schema_metadata(meta), out)
