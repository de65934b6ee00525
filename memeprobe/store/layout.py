"""What the loads of a store rely on, declared once (SCHEMA.md): the root attributes, the meme table's columns,
and the attributes and parts of a feature set. The checks below read metadata only (plus the meme table's
values, which every open reads anyway) and return problems, one line each naming the object.

``FeatureStore`` runs :func:`read_root` and :func:`table_problems` on open, :func:`content_problems` and
:func:`label_problems` before the first load of the open store (a writer given the dataset rewrites damaged
labels instead), :func:`set_problems` before the first use of a feature set, and raises the first problem
found; ``verify`` lists them all.
"""
from __future__ import annotations

import hashlib
import json
import re

import h5py
import numpy as np

from memeprobe.data.records import fingerprint_rows
from memeprobe.errors import ConfigError
from memeprobe.store import spans as span_table
from memeprobe.store.schema import (ALGORITHM, ARRAYS, CHECKSUM_GROUP, CHECKSUMMED, CREATED, FEATURES, IDENTITY,
                                    IDENTITY_KEYS, LEGACY_CHECKSUM, MEMES, PROVENANCE, REASON_BYTES, REASON_GROUP,
                                    SCHEMA_VERSION, SPANS, STATUS_GROUP, STATUS_NAMES, VERSION, ArraySpec,
                                    check_array_name)

MAX_JSON_CHARS = 1 << 20  # a JSON attribute longer than this is not one memeprobe wrote
MAX_JSON_DEPTH = 32  # nor one nested deeper (json.dumps of a 1000-deep value overflows the stack)
LOST = "the '_checksum' group is missing (the set was written with row checksums)"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_JSON_NAMES = {dict: "object", list: "list", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


# ---------------------------------------------------------------- attribute values
def parse_json(value, kind: type | None = dict):
    """A JSON attribute's value (of type ``kind`` when given); ValueError saying what is wrong."""
    if not isinstance(value, str):
        raise ValueError(f"not a JSON string but {type(value).__name__}")
    if len(value) > MAX_JSON_CHARS:
        raise ValueError(f"{len(value)} characters long (at most {MAX_JSON_CHARS})")
    try:
        obj = json.loads(value)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as e:
        raise ValueError(f"invalid JSON: {e}") from None
    if _depth(obj) > MAX_JSON_DEPTH:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
    if kind is not None and not isinstance(obj, kind):
        raise ValueError(f"a JSON {_JSON_NAMES.get(type(obj), type(obj).__name__)}, not "
                         f"{'an object' if kind is dict else 'a ' + _JSON_NAMES.get(kind, kind.__name__)}")
    return obj


def _depth(obj) -> int:
    deepest, todo = 0, [(obj, 1)]
    while todo:
        value, d = todo.pop()
        deepest = max(deepest, d)
        if deepest > MAX_JSON_DEPTH:
            break
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        todo += [(c, d + 1) for c in children]
    return deepest


def _text(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not a string but {type(value).__name__}")
    return value


def _sha256(value) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise ValueError("not a sha256 hex digest")
    return value


def _names(value) -> list[str]:
    names = parse_json(value, list)
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError("not a list of distinct non-empty names")
    return names


def _name_or_null(value) -> str | None:
    name = parse_json(value, None)
    if name is not None and not (isinstance(name, str) and name):
        raise ValueError("neither a name nor null")
    return name


def parse_arrays(value) -> dict[str, ArraySpec]:
    """The ``arrays`` attribute of a feature set: {array: ArraySpec}."""
    spec = parse_json(value)
    if not spec:
        raise ValueError("it declares no array")
    out = {}
    for name, d in spec.items():
        try:
            check_array_name(name)
            if not isinstance(d, dict) or set(d) != {"shape", "modality", "dtype"}:
                raise ValueError(f"array {name!r} is not declared as {{shape, modality, dtype}}")
            if not isinstance(d["shape"], list) or not all(type(s) is int for s in d["shape"]):
                raise ValueError(f"array {name!r} has a shape that is not a list of integers")
            out[name] = ArraySpec.from_json(d)
        except (ConfigError, TypeError) as e:
            raise ValueError(str(e)) from None
    return out


# root attribute -> parser (``kind`` and ``schema_version`` are checked first, by the store)
ROOT_ATTRS = {"memeprobe_version": _text, "created": _text, "dataset_format": _text, "dataset_root": _text,
              "dataset_fingerprint": _sha256, "label_names": _names, "binary_name": _name_or_null,
              "dataset_options": parse_json, "labels_sha256": _sha256}
OPTIONAL_ROOT_ATTRS = ("dataset_options", "labels_sha256")  # absent in stores written before they were kept
# meme table column -> (kind, number of dimensions)
TABLE = {"id": ("text", 1), "split": ("text", 1), "text": ("text", 1), "image": ("text", 1),
         "label": ("int8", 1), "labels": ("int8", 2)}


def read_root(f: h5py.File) -> tuple[dict, list[str]]:
    """The parsed root attributes (absent optional ones left out), and problems."""
    values, problems = {}, []
    for key, parse in ROOT_ATTRS.items():
        if key not in f.attrs:
            if key not in OPTIONAL_ROOT_ATTRS:
                problems.append(f"root attribute {key!r} is missing")
            continue
        try:
            values[key] = parse(f.attrs[key])
        except ValueError as e:
            problems.append(f"root attribute {key!r} is not valid ({e})")
    return values, problems


def _unstored(ds: h5py.Dataset) -> str | None:
    """Why ``ds`` does not hold every element its shape claims, or None. Store datasets are allocated when
    written or created (no filters), so a shape beyond the stored bytes is crafted: reading it would cost
    memory the file does not back."""
    string = h5py.check_string_dtype(ds.dtype)
    vlen = h5py.check_vlen_dtype(ds.dtype) is not None or (string is not None and string.length is None)
    need = int(np.prod(ds.shape, dtype=np.int64)) * (16 if vlen else ds.dtype.itemsize)  # 16: a heap reference
    stored = ds.id.get_storage_size()
    return None if stored >= need else f"claims shape {ds.shape} but stores {stored} of its {need} bytes"


def _kind_problem(obj, want: str) -> str | None:
    """Why ``obj`` is not an HDF5 ``want`` ("group" or "dataset"), or None."""
    cls = h5py.Group if want == "group" else h5py.Dataset
    if isinstance(obj, cls):
        return None
    return f"is an HDF5 {'group' if isinstance(obj, h5py.Group) else type(obj).__name__.lower()}, not a {want}"


def table_problems(f: h5py.File, n_labels: int, schema_version: int) -> list[str]:
    """The structure of ``/memes`` and ``/features``: groups, column kinds, dtypes, shapes and lengths."""
    problems = [f"'/{g}' {why}" for g in (MEMES, FEATURES) if g in f and (why := _kind_problem(f[g], "group"))]
    problems += [f"'/{g}' is missing" for g in (MEMES, FEATURES) if g not in f]
    if problems:
        return problems
    m = f[MEMES]
    lengths = {}
    for key, (kind, ndim) in TABLE.items():
        if key not in m:
            problems.append(f"meme table: dataset {key!r} is missing")
            continue
        ds = m[key]
        if why := _kind_problem(ds, "dataset"):
            problems.append(f"meme table: {key!r} {why}")
            continue
        ok_dtype = h5py.check_string_dtype(ds.dtype) is not None if kind == "text" else ds.dtype == np.int8
        if not ok_dtype or len(ds.shape) != ndim:
            problems.append(f"meme table: {key!r} is stored as {ds.shape} {ds.dtype}, expected {ndim}-D {kind}")
            continue
        if why := _unstored(ds):
            problems.append(f"meme table: {key!r} {why}")
            continue
        lengths[key] = ds.shape[0]
    n = lengths.get("id")
    for key, length in lengths.items():
        if n is not None and length != n:
            problems.append(f"meme table: {key!r} has {length} rows, ids have {n}")
    if "labels" in lengths and m["labels"].shape[1] != n_labels:
        problems.append(f"meme table: labels has {m['labels'].shape[1]} columns for {n_labels} label names")
    if schema_version >= 2:
        if SPANS not in m:
            problems.append("meme table: span table 'spans' is missing (schema 2)")
        elif why := _kind_problem(m[SPANS], "group"):
            problems.append(f"meme table: 'spans' {why}")
        else:
            for key in span_table.COLUMNS:
                column = m[SPANS].get(key)
                if column is not None and (_kind_problem(column, "dataset") or column.ndim != 1
                                           or column.dtype.kind not in "iu" or _unstored(column)):
                    problems.append(f"meme table: span column {key!r} is not a stored 1-D integer dataset")
    return problems


def table_fingerprint(splits, ids, texts, images) -> str:
    """The dataset fingerprint of the meme table's columns as read (cheapest on h5py's object arrays)."""
    return fingerprint_rows(splits, ids, texts, images)


def content_problems(table, fingerprint: str) -> list[str]:
    """The meme table's rows (split, id, text, image) against the stored dataset ``fingerprint``. ``table``: an
    object with the ``fingerprint`` of its rows (:func:`table_fingerprint`)."""
    return [] if table.fingerprint == fingerprint else ["meme table: contents do not match the stored dataset "
                                                        "fingerprint"]


def label_problems(f: h5py.File, table, n_labels: int, schema_version: int) -> list[str]:
    """What the dataset's labels put in the meme table: 0/1/-1 values, the stored ``labels_sha256``, spans inside
    their texts. ``table``: an object with ``splits``, ``ids``, ``texts``, ``label``, ``labels``."""
    problems = []
    for key, y in (("label", table.label), ("labels", table.labels)):
        rows = np.flatnonzero(~np.isin(y, (-1, 0, 1)).reshape(len(y), -1).all(axis=1))
        if len(rows):
            problems.append(f"meme table: {key} holds values other than -1, 0, 1 in {len(rows)} rows "
                            f"(e.g. {rows_named(table, rows)})")
    if "labels_sha256" in f.attrs and labels_sha256(f) != f.attrs["labels_sha256"]:
        problems.append("meme table: labels or label names do not match the stored labels_sha256")
    if schema_version >= 2:
        problems += span_table.check_table(f[MEMES], table.texts, n_labels)
    return problems


def labels_sha256(f: h5py.File) -> str:
    """sha256 over the labels the meme table holds: ``label``, ``labels`` (shape and bytes), the ``label_names``
    and ``binary_name`` attributes (the ``labels_sha256`` root attribute; spans are checked by their table's
    rules: inside their texts, of known techniques)."""
    h = hashlib.sha256()
    m = f[MEMES]
    for key in ("label", "labels"):
        values = np.ascontiguousarray(m[key][()], dtype=np.int8)
        h.update(repr(values.shape).encode() + values.tobytes())
    for key in ("label_names", "binary_name"):
        h.update(str(f.attrs[key]).encode("utf-8") + b"\0")
    return h.hexdigest()


# ---------------------------------------------------------------- feature sets
def read_arrays(g, name: str) -> dict[str, ArraySpec]:
    """The declared arrays of feature set ``name`` (``g``: its group); ValueError with the problem line."""
    try:
        return parse_arrays(g.attrs.get(ARRAYS))
    except ValueError as e:
        raise ValueError(f"feature set {name!r}: the 'arrays' attribute is not a valid array spec ({e})") from None


def set_problems(g, name: str, n: int, algorithms, lost: bool = True) -> list[str]:
    """Problems of feature set ``name`` (see :func:`check_set`)."""
    return check_set(g, name, n, algorithms, lost)[0]


def check_set(g, name: str, n: int, algorithms, lost: bool = True) -> tuple[list[str], set]:
    """The structure of feature set ``name`` (``g``: its HDF5 object): its attributes, one status and one reason
    column per modality, its arrays as declared, and its row checksums. Returns (problems, sound parts:
    ``("_status", modality)``, ``("array", name)``, ``("_checksum", array)``). ``lost``: include :data:`LOST`
    when it applies (reads report it with what they found instead)."""
    where = f"feature set {name!r}"
    if why := _kind_problem(g, "group"):
        return [f"{where} {why}"], set()
    problems, spec, prov, sound = [], None, None, set()
    try:
        spec = read_arrays(g, name)
    except ValueError as e:
        problems.append(str(e))
    try:
        prov = parse_json(g.attrs.get(PROVENANCE))
    except ValueError as e:
        problems.append(f"{where}: the 'provenance' attribute is not a JSON object ({e})")
    if IDENTITY not in g.attrs:
        problems.append(f"{where}: the 'identity' attribute is missing")
    else:
        try:
            identity = parse_json(g.attrs[IDENTITY])
            if prov is not None and identity != {k: prov.get(k) for k in IDENTITY_KEYS}:
                problems.append(f"{where}: the 'identity' attribute does not match the provenance's "
                                f"{', '.join(IDENTITY_KEYS)}")
        except ValueError as e:
            problems.append(f"{where}: the 'identity' attribute is not a JSON object ({e})")
    if not isinstance(g.attrs.get(CREATED), str):
        problems.append(f"{where}: the 'created' attribute is missing or not a string")
    if spec is None:
        return problems, sound
    for part, dtype in ((STATUS_GROUP, np.dtype(np.uint8)), (REASON_GROUP, np.dtype(f"S{REASON_BYTES}"))):
        problems += _columns(g, where, part, sorted({s.modality for s in spec.values()}), n, dtype, sound)
    for a, s in spec.items():
        if a not in g:
            problems.append(f"{where}: array {a!r} is missing")
        elif why := _kind_problem(g[a], "dataset"):
            problems.append(f"{where}: array {a!r} {why}")
        elif g[a].shape != (n, *s.shape) or g[a].dtype != np.dtype(s.dtype):
            problems.append(f"{where}: array {a!r} is stored as {g[a].shape} {g[a].dtype} but declared "
                            f"{(n, *s.shape)} {s.dtype}")
        elif why := _unstored(g[a]):
            problems.append(f"{where}: array {a!r} {why}")
        else:
            sound.add(("array", a))
    return problems + _checksum_problems(g, where, list(spec), n, algorithms, lost, sound), sound


def _columns(g, where: str, part: str, keys, n: int, dtype, sound: set) -> list[str]:
    """Problems of the group ``part`` of ``g``: one (n,) ``dtype`` dataset per key (sound ones added to ``sound``)."""
    what = {STATUS_GROUP: "status", REASON_GROUP: "failure reasons", CHECKSUM_GROUP: "checksum"}[part]
    if part not in g:
        return [f"{where}: no {what} for {'modality' if part != '_checksum' else 'array'} {k!r}" for k in keys]
    if why := _kind_problem(g[part], "group"):
        return [f"{where}: {part!r} {why}"]
    problems = []
    for k in keys:
        if k not in g[part]:
            problems.append(f"{where}: no {what} for {'modality' if part != '_checksum' else 'array'} {k!r}")
        elif why := _kind_problem(g[part][k], "dataset"):
            problems.append(f"{where}: {what} {k!r} {why}")
        elif g[part][k].shape != (n,) or g[part][k].dtype != dtype:
            problems.append(f"{where}: {what} {k!r} is stored as {g[part][k].shape} {g[part][k].dtype}, "
                            f"expected ({n},) {dtype}")
        elif why := _unstored(g[part][k]):
            problems.append(f"{where}: {what} {k!r} {why}")
        else:
            sound.add((part, k))
    return problems


def _checksum_problems(g, where: str, arrays: list[str], n: int, algorithms, lost: bool, sound: set) -> list[str]:
    if CHECKSUM_GROUP not in g:
        return [f"{where}: {LOST}"] if lost and lost_checksums(g) else []
    if why := _kind_problem(g[CHECKSUM_GROUP], "group"):
        return [f"{where}: '_checksum' {why}"]
    algorithm = g[CHECKSUM_GROUP].attrs.get(ALGORITHM, LEGACY_CHECKSUM)
    if algorithm not in algorithms:
        return [f"{where}: names an unknown row checksum {algorithm!r}"]
    required = CHECKSUMMED in g.attrs  # sets written since then checksum every array
    return _columns(g, where, CHECKSUM_GROUP, [a for a in arrays if required or a in g[CHECKSUM_GROUP]], n,
                    np.dtype(np.uint64), sound)


def lost_checksums(g) -> bool:
    """The set was written with row checksums (:data:`~memeprobe.store.schema.CHECKSUMMED` attribute) but its
    ``_checksum`` group is gone."""
    return CHECKSUMMED in g.attrs and CHECKSUM_GROUP not in g


def unknown_status(values: np.ndarray) -> np.ndarray:
    """Rows whose status byte is none of the known codes."""
    return np.flatnonzero(~np.isin(values, list(STATUS_NAMES)))


def rows_named(table, rows, k: int = 5) -> str:
    """``split/id`` of the first ``k`` of ``rows``."""
    return ", ".join(f"{table.splits[r]}/{table.ids[r]}" for r in rows[:k])


# ---------------------------------------------------------------- older schemas
def upgrade(f: h5py.File) -> None:
    """Bring the open store ``f`` (a copy being written) from an older schema to :data:`SCHEMA_VERSION`, keeping
    every feature set."""
    if int(f.attrs[VERSION]) < 2:
        span_table.migrate_v1(f)
    for g in f[FEATURES].values():  # schema 2 checksummed rows with xxh3-64: name it, keep verifying it
        if CHECKSUM_GROUP in g and ALGORITHM not in g[CHECKSUM_GROUP].attrs:
            g[CHECKSUM_GROUP].attrs[ALGORITHM] = LEGACY_CHECKSUM
    f.attrs[VERSION] = SCHEMA_VERSION
