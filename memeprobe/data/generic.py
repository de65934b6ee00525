"""Any JSONL/JSON/CSV/TSV annotation file(s), read through a column mapping.

``path`` is one file (the split is its stem, or the ``split_col`` value) or a folder of such files
(one split per file). Image paths are relative to ``image_root`` (default: the folder holding the file(s)).
CSV/TSV columns are separated by ``sep`` (default: sniffed from the first lines).
Columns: ``id_col`` (default ``id``), ``text_col`` (``text``), ``image_col`` (default ``image``, else
``img``, else none), ``label_col`` (default ``label``, else ``labels``, else unlabeled); ``label_col``
``"labels[0]"`` takes element 0 of a list-valued field (a column literally named so wins).

Labels (a missing, null or empty value = unlabeled; a CSV cell that starts with ``[`` is read as a
JSON list). ``label_map`` ``{raw: name}`` renames (or merges) raw values first; a key that matches no
value is an error. Then:
- ``label_names`` given: multi-hot over those names, in that order; other values are an error;
- else, if any value is a list: multi-hot over all names seen, sorted;
- else, scalar values all in {0, 1}: binary label named after the label column;
- else, exactly two classes: binary label, 1 = ``positive_label`` (default: the later one sorted),
  0 = the other, named after the positive class;
- else (one class, or more than two): one-hot over the classes, sorted (numbers numerically).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from memeprobe.data.builder import DatasetBuilder, meme_id, ordered_splits, text_value
from memeprobe.data.readers import parse_json, read_json, read_jsonl, read_table
from memeprobe.registry import did_you_mean
from memeprobe.data.records import Dataset, Meme
from memeprobe.errors import DatasetError

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")
_ELEMENT = re.compile(r"^(?P<name>.+)\[(?P<index>-?\d+)\]$")


def split_element(column: str) -> tuple[str, int | None]:
    """``"labels[0]"`` → ``("labels", 0)``; a plain column name → ``(name, None)``."""
    m = _ELEMENT.match(column)
    return (m["name"], int(m["index"])) if m else (column, None)


def split_files(path: Path) -> list[Path]:
    """The annotation files of ``path``: itself, or those in the folder, in split order."""
    if path.is_file():
        return [path] if path.suffix.lower() in SUFFIXES else []
    files = {p.stem: p for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in SUFFIXES}
    return [files[s] for s in ordered_splits(files)]


def detect(path: Path) -> bool:
    return bool(split_files(path))


def _rows(path: Path, sep: str | None) -> tuple[set[str], list[tuple[str, dict]]]:
    """Column names and ``(where, row)`` pairs of one file."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = [(f"{path} line {n}", r) for n, r in read_jsonl(path)]
    elif suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise DatasetError(f"{path}: expected a JSON array of objects (or use .jsonl, one object per line)")
        rows = [(f"{path} record {i}", r) for i, r in enumerate(data, start=1)]
        bad = next(((where, r) for where, r in rows if not isinstance(r, dict)), None)
        if bad:
            raise DatasetError(f"{bad[0]}: expected a JSON object, got {type(bad[1]).__name__}")
    else:
        header, table = read_table(path, sep)
        rows = [(f"{path} line {n}", r) for n, r in table]
        return set(header), rows
    return {k for _, r in rows for k in r}, rows


def _pick(explicit: str | None, defaults: tuple[str, ...], columns: set[str], path: Path, role: str) -> str | None:
    if explicit:
        base = explicit if explicit in columns else split_element(explicit)[0]
        if base not in columns:
            raise DatasetError(
                f"{path}: no {role} column {explicit!r}{did_you_mean(base, columns)} (columns: "
                f"{', '.join(sorted(columns))}); name the right {role} column", option=f"{role}_col"
            )
        return explicit
    return next((c for c in defaults if c in columns), None)


def _json_list(value, where: str):
    """A CSV cell that starts with ``[`` as the JSON list it holds; other values unchanged."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            return parse_json(value)
        except json.JSONDecodeError:
            shown = value if len(value) <= 80 else value[:80] + "..."
            raise DatasetError(f"{where}: label {shown!r} looks like a list but is not valid JSON") from None
    return value


def _field(row: dict, column: str, where: str):
    """``row[column]``; for ``"name[i]"`` (no such column) element i of the list in ``row["name"]``."""
    if column in row:
        return row[column]
    name, index = split_element(column)
    value = _json_list(row.get(name), where)
    if index is None or value is None or value == "":
        return None
    if not isinstance(value, list):
        raise DatasetError(f"{where}: field {name!r} holds {value!r}, not a list, so it has no element [{index}]",
                           option="label_col")
    if not -len(value) <= index < len(value):
        raise DatasetError(f"{where}: field {name!r} holds {len(value)} element(s) {value!r}, no element [{index}]",
                           option="label_col")
    return value[index]


def _raw_label(value, where: str):
    """None (unlabeled), a list of class names, or one class name."""
    if value is None or value == "":
        return None
    value = _json_list(value, where)
    if isinstance(value, list):
        if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            raise DatasetError(f"{where}: label list {value!r} must hold strings or ints")
        return [str(v).strip() for v in value]
    if isinstance(value, (dict, float, bool)):
        raise DatasetError(f"{where}: unsupported label value {value!r}; use an int, a string or a list of strings")
    return str(value).strip()


def _mapped(raw, label_map: dict[str, str] | None):
    """``raw`` with every class name renamed by ``label_map``."""
    if raw is None or not label_map:
        return raw
    return [label_map.get(n, n) for n in raw] if isinstance(raw, list) else label_map.get(raw, raw)


def _class_key(name: str):
    return (0, int(name), "") if name.lstrip("-").isdigit() else (1, 0, name)


def _label_scheme(raw: list, label_names, positive_label):
    """``(kind, names, binary_name, positive)`` with kind "binary" or "multi"."""
    if label_names:
        return "multi", tuple(label_names), None, None
    labeled = [v for v in raw if v is not None]
    classes = {c for v in labeled for c in (v if isinstance(v, list) else [v])}
    if any(isinstance(v, list) for v in labeled):
        return "multi", tuple(sorted(classes, key=_class_key)), None, None
    if classes and classes <= {"0", "1"} and positive_label in (None, "1"):
        return "binary", (), None, "1"
    if len(classes) == 2:
        positive = positive_label or sorted(classes, key=_class_key)[1]
        if positive not in classes:
            raise DatasetError(f"positive label {positive!r} is not one of the classes {sorted(classes)}"
                               f"{did_you_mean(positive, classes)}", option="positive_label")
        return "binary", (), positive, positive
    if positive_label is not None and classes:
        raise DatasetError(f"a positive label ({positive_label!r}) needs two classes, the labels have {len(classes)}: "
                           f"{', '.join(sorted(classes, key=_class_key))}", option="positive_label")
    return "multi", tuple(sorted(classes, key=_class_key)), None, None


def load(path: Path, id_col: str | None = None, text_col: str | None = None, image_col: str | None = None,
         label_col: str | None = None, split_col: str | None = None, label_names=None,
         positive_label: str | None = None, label_map: dict[str, str] | None = None, sep: str | None = None,
         image_root=None, allow_empty_text: bool = False, allow_duplicate_ids: bool = False) -> Dataset:
    path = Path(path)
    files = split_files(path)
    if not files:
        raise DatasetError(f"{path}: no annotation files ({', '.join(SUFFIXES)})")
    root = path if path.is_dir() else path.parent
    b = DatasetBuilder(root, "generic", allow_empty_text, allow_duplicate_ids, image_root)
    pending = []  # (where, id, split, text, image, raw label)
    label_cols = set()
    seen = set()  # raw label values, to check the label map
    for f in files:
        columns, rows = _rows(f, sep)
        ids = _pick(id_col or "id", (), columns, f, "id")
        texts = _pick(text_col or "text", (), columns, f, "text")
        images = _pick(image_col, ("image", "img"), columns, f, "image")
        labels = _pick(label_col, ("label", "labels"), columns, f, "label")
        splits = _pick(split_col, (), columns, f, "split")
        label_cols.add(labels)
        for where, row in rows:
            if texts not in row:
                raise DatasetError(f"{where}: no {texts!r} field; add it or name the right text column",
                                   option="text_col")
            split = str(row.get(splits) or "").strip() if splits else f.stem
            if not split:
                raise DatasetError(f"{where}: empty split value in column {splits!r}")
            mid = meme_id(row.get(ids), where)
            raw = _raw_label(_field(row, labels, where), where) if labels else None
            seen.update(raw if isinstance(raw, list) else [raw])
            pending.append((where, mid, split, text_value(row[texts], where),
                            b.image(row.get(images), where) if images else None,
                            _mapped(raw, label_map)))
    if label_map:
        unused = sorted(set(label_map) - seen)
        if unused:
            values = sorted(v for v in seen if v is not None)
            raise DatasetError(f"{path}: label map key(s) {', '.join(map(repr, unused))} match no label value"
                               f"{did_you_mean(unused[0], values)}; the values are {', '.join(map(repr, values))}",
                               option="label_map")
    kind, names, binary_name, positive = _label_scheme([p[5] for p in pending], label_names, positive_label)
    label_col_name = next(iter(label_cols - {None}), None)
    index = {n: i for i, n in enumerate(names)}
    allowed = ", ".join(names) if kind == "multi" else None
    for where, mid, split, text, image, raw in pending:
        label = labels = None
        if raw is not None and kind == "binary":
            label = int(raw == positive)
        elif raw is not None:
            hot = [0] * len(names)
            for c in raw if isinstance(raw, list) else [raw]:
                if c not in index:
                    raise DatasetError(
                        f"{where} (id {mid}): unknown label value {c!r}; allowed values: {allowed}"
                    )
                hot[index[c]] = 1
            labels = tuple(hot)
        b.add(Meme(id=mid, split=split, text=text, image=image, label=label, labels=labels), where)
    if binary_name:
        b.notes.append(f"binary label: 1 = {positive!r}, 0 = the other class (choose with positive_label=)")
    return b.build(label_names=names if kind == "multi" else (),
                   binary_name=(binary_name or label_col_name) if kind == "binary" else None)
