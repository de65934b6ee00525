"""What ``memeprobe store info`` and ``store verify`` report on an open store: :func:`info`, what it holds, and
:func:`verify`, every problem, one line each (the loads stop at the first): the meme table's contents and labels,
then per feature set its layout (:mod:`~memeprobe.store.layout`), status values, and the checksums and NaN/inf of
its done rows, read block by block (memory bounded by the block)."""
from __future__ import annotations

from collections import Counter

import h5py
import numpy as np

from memeprobe.store import layout
from memeprobe.store.checksums import ROW_CHECKSUMS, checksum_failures, nonfinite_rows
from memeprobe.store.schema import CHECKSUM_GROUP, DONE, FAILED, FEATURES, STATUS_GROUP, STATUS_NAMES, TODO


def info(st, attrs) -> dict:
    """Everything worth knowing about the store ``st`` (``attrs``: its root attributes), JSON-able."""
    splits = {}
    for s in st.split_names():
        sel = st.splits == s
        labeled = (st.label[sel] >= 0) | ((st.labels[sel] >= 0).any(axis=1) if st.labels.shape[1] else False)
        splits[s] = {"n": int(sel.sum()), "labeled": int(np.sum(labeled))}
        known = [st.spans[r] for r in np.flatnonzero(sel) if st.spans[r] is not None]
        if known:
            splits[s]["spans"] = sum(len(x) for x in known)
    sets = {}
    for name in st.feature_sets():
        status = {}
        for mod in st.modalities(name):
            column = st.status(name, mod)
            status[mod] = {STATUS_NAMES[c]: int((column == c).sum()) for c in (DONE, FAILED, TODO)}
        sets[name] = {"arrays": {a: s.to_json() for a, s in st.arrays(name).items()},
                      "status": status, "provenance": st.provenance(name)}
    return {"path": str(st.path), "file_size": st.path.stat().st_size,
            "schema_version": st.schema_version, "memeprobe_version": str(attrs["memeprobe_version"]),
            "created": str(attrs["created"]),
            "dataset": {"format": str(attrs["dataset_format"]), "root": str(attrs["dataset_root"]),
                        "fingerprint": str(attrs["dataset_fingerprint"]), "n": st.n,
                        "label_names": list(st.label_names), "binary_name": st.binary_name,
                        "options": st.dataset_options},
            "splits": splits, "feature_sets": sets}


def verify(f: h5py.File, table, n_labels: int, schema_version: int) -> list[str]:
    """Problems found (empty list = ok) in the open store file ``f`` whose meme table was read as ``table``."""
    problems = (layout.content_problems(table, f.attrs.get("dataset_fingerprint"))
                + layout.label_problems(f, table, n_labels, schema_version))
    keys = list(zip(table.splits.tolist(), table.ids.tolist()))
    if len(set(keys)) != len(keys):
        dup = [k for k, c in Counter(keys).items() if c > 1][:5]
        problems.append(f"meme table: duplicate (split, id): {', '.join(f'{s}/{i}' for s, i in dup)}")
    for name in sorted(f[FEATURES]):
        problems += _verify_set(f[FEATURES][name], name, table)
    return problems


def _verify_set(g, name: str, table) -> list[str]:
    """The layout problems of feature set ``name`` (``g``: its group), then the values of its sound parts."""
    n = len(table.ids)
    problems, sound = layout.check_set(g, name, n, ROW_CHECKSUMS)
    try:
        spec = layout.read_arrays(g, name)
    except ValueError:
        return problems
    done = {}
    for mod in sorted({s.modality for s in spec.values()} & {m for part, m in sound if part == STATUS_GROUP}):
        st = g[STATUS_GROUP][mod][()]
        if len(layout.unknown_status(st)):
            problems.append(f"feature set {name!r}: status {mod!r} holds values other than 0, 1, 2")
        done[mod] = st == DONE
    for a, s in spec.items():
        if ("array", a) not in sound or s.modality not in done:
            continue
        ds, checked = g[a], (CHECKSUM_GROUP, a) in sound
        bad, mismatch = 0, []
        step = max((ds.chunks or (1,))[0], (64 << 20) // max(1, ds.dtype.itemsize * int(np.prod(s.shape))))
        for lo in range(0, n, step):
            rows_done = done[s.modality][lo:lo + step]
            if rows_done.any():
                block = ds[lo:lo + step]
                if checked:
                    mismatch.append(checksum_failures(g, a, s.modality, block, np.arange(lo, lo + len(block)),
                                                      done[s.modality]))
                if ds.dtype.kind == "f":
                    bad += int((nonfinite_rows(block) & rows_done).sum())
        if bad:
            problems.append(f"feature set {name!r} array {a!r}: {bad} done rows hold NaN/inf")
        mismatch = np.concatenate(mismatch) if mismatch else []
        if len(mismatch):
            problems.append(f"feature set {name!r} array {a!r}: {len(mismatch)} done rows do not match their "
                            f"checksum (e.g. {layout.rows_named(table, mismatch)})")
    return problems


def unchecked_rows(g, name: str, spec: dict, n: int) -> int:
    """Done rows of feature set ``name`` (``g``: its group, ``spec``: its arrays), summed over arrays, that carry
    no checksum: written before checksums existed."""
    _, sound = layout.check_set(g, name, n, ROW_CHECKSUMS)
    return sum(int((g[STATUS_GROUP][s.modality][()] == DONE).sum()) for a, s in spec.items()
               if (CHECKSUM_GROUP, a) not in sound and (STATUS_GROUP, s.modality) in sound)
