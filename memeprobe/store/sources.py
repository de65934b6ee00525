"""Layouts of embeddings computed elsewhere, one registry (``SOURCE_FORMATS``): each reader turns files into
a :class:`Source` — candidate id columns, row arrays in parts (one per shard or file), label vectors —
reading .npy shards memory-mapped. Alignment with a store's memes happens in :mod:`memeprobe.store.importer`.
"""
from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from memeprobe.errors import DatasetError

ID_NAMES = ("id", "ids", "meme_id", "image_id", "img_id", "image_ids", "img_ids", "key", "image_path", "img",
            "image", "path", "file_name", "filename")  # preferred id columns, in order
SPLIT_NAMES = ("split",)
LABEL_NAMES = ("label", "labels", "target", "targets", "y")  # checked against the store's labels, not stored


@dataclass
class Part:
    """Rows ``values`` (rows, *shape) of one array, read from ``file`` (a memmap for .npy shards)."""

    file: Path
    values: np.ndarray


@dataclass
class Source:
    """What a reader found: ``n`` rows, every entry with one value per row."""

    format: str
    files: list[Path]  # every file the values come from (hashed for provenance)
    n: int
    ids: dict[str, np.ndarray]  # candidate id columns (1-D str or int), preferred first
    arrays: dict[str, list[Part]]  # row arrays by source key; parts in row order
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    split: np.ndarray | None = None  # per-row split names when the source has them
    segments: list[tuple[Path, int]] = field(default_factory=list)  # (file, rows) in row order: names a row's file
    names: dict[str, str] = field(default_factory=dict)  # array name per source key where not the key itself
    modalities: dict[str, str] = field(default_factory=dict)  # declared by the source (memeprobe exports)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # per-row shapes of flattened list columns
    ignored: list[str] = field(default_factory=list)  # entries that are neither ids, labels nor row arrays

    def file_of(self, row: int) -> Path:
        """The file source row ``row`` came from."""
        for path, rows in self.segments:
            if row < rows:
                return path
            row -= rows
        return self.segments[-1][0]

    def array_file(self, key: str, row: int) -> Path:
        """The file holding source row ``row`` of array ``key``."""
        for part in self.arrays[key]:
            if row < len(part.values):
                return part.file
            row -= len(part.values)
        return self.arrays[key][-1].file


@dataclass(frozen=True)
class SourceFormat:
    """One layout: ``detect(paths)`` says whether the paths are in it; ``read(paths, ids_file)`` reads them."""

    name: str
    description: str
    detect: Callable[[list[Path]], bool]
    read: Callable[[list[Path], Path | None], Source]


def _fail(path, message: str) -> DatasetError:
    return DatasetError(f"{path}: {message}")


def numbered(folder: Path, prefix: str, suffix: str) -> dict[int, Path]:
    """``{N: folder/PREFIX_N.SUFFIX}``, sorted by N as a number (shard 10 after shard 9)."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+){re.escape(suffix)}$")
    found = {int(m.group(1)): p for p in folder.iterdir() if (m := pattern.match(p.name))} if folder.is_dir() else {}
    return dict(sorted(found.items()))


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise _fail(path, f"is not a plain .npy array ({e}); save numeric arrays with np.save") from None
    except OSError as e:
        raise _fail(path, f"cannot be read ({e})") from None


# ------------------------------------------------------------------ entries: classify a file's named values
def _is_id_like(values: np.ndarray) -> bool:
    return values.ndim == 1 and values.dtype.kind in "USOiu"


def _text_column(path: Path, key: str, values) -> np.ndarray:
    """A 1-D column of str or int values as a numpy array; mixed types are named."""
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8", "replace")
    if arr.dtype.kind == "O":
        kinds = {type(v).__name__ for v in arr.tolist()}
        if kinds <= {"str"}:
            arr = arr.astype(str)
        elif kinds <= {"int"}:
            arr = arr.astype(np.int64)
        else:
            raise _fail(path, f"entry {key!r} mixes value types ({', '.join(sorted(kinds))}); give ids of one type")
    return arr


def from_entries(fmt: str, path: Path, entries: dict[str, np.ndarray], shapes=None, modalities=None,
                 notes=()) -> Source:
    """A source from a file's named entries: 1-D str/int entries are id candidates (``split`` gives splits,
    label names are labels); numeric entries with one row per id are row arrays; the rest is ignored."""
    for k, v in entries.items():  # ids saved as whole floats (e.g. a float tensor of ids) are ints
        if k.lower() in ID_NAMES and v.ndim == 1 and v.dtype.kind == "f" and len(v) and np.all(np.mod(v, 1) == 0):
            entries = {**entries, k: v.astype(np.int64)}
    ids, rejected = {}, {}
    for k, v in entries.items():
        if _is_id_like(np.asarray(v)) and k.lower() not in LABEL_NAMES:
            try:
                column = _text_column(path, k, v)
            except DatasetError as e:  # e.g. a caption column with nulls: not an id column
                rejected[k] = f"{k} (not an id column: {str(e).split(': ', 1)[1].split(';')[0]})"
                continue
            if k.lower() in SPLIT_NAMES:
                entries = {**entries, k: column}
            else:
                ids[k] = column
    if not ids:
        raise _fail(path, f"no id entry (1-D strings or integers such as 'ids'; it has {', '.join(entries) or 'nothing'}"
                          f"{'; ' + '; '.join(rejected.values()) if rejected else ''}); give the ids with --ids FILE")
    rank = {name: i for i, name in enumerate(ID_NAMES)}
    ids = dict(sorted(ids.items(), key=lambda kv: rank.get(kv[0].lower(), len(rank))))
    n = len(next(iter(ids.values())))
    ids = {k: v for k, v in ids.items() if len(v) == n}
    src = Source(fmt, [path], n, ids, {}, segments=[(path, n)], shapes=dict(shapes or {}),
                 modalities=dict(modalities or {}), ignored=list(notes) + list(rejected.values()))
    for key, v in entries.items():
        v = np.asarray(v) if not isinstance(v, np.ndarray) else v
        if key in ids or key in rejected:
            continue
        if key.lower() in SPLIT_NAMES and v.ndim == 1 and len(v) == n and v.dtype.kind == "U":
            src.split = v
        elif key.lower() in LABEL_NAMES and v.ndim in (1, 2) and len(v) == n and v.dtype.kind in "biuf":
            src.labels[key] = v
        elif v.ndim >= 1 and len(v) == n and (v.dtype.kind == "f" or (v.dtype.kind in "biu" and v.ndim >= 2)):
            src.arrays[key] = [Part(path, v if v.ndim > 1 else v.reshape(n, 1))]
        else:
            what = f"shape {v.shape}" if v.ndim else "a single value"
            src.ignored.append(f"{key} ({what}, {v.dtype}: not one vector per id)")
    return src


def concat(sources: list[Source]) -> Source:
    """Several files of one layout (e.g. one per split) as one source, rows in file order."""
    if len(sources) == 1:
        return sources[0]
    first = sources[0]
    for s in sources[1:]:
        if set(s.arrays) != set(first.arrays):
            raise _fail(s.files[0], f"holds arrays {sorted(s.arrays)} but {first.files[0]} holds "
                                    f"{sorted(first.arrays)}; import files with the same arrays together")
    ids = {}
    for key in first.ids:
        if all(key in s.ids for s in sources):
            kinds = {s.ids[key].dtype.kind for s in sources}
            if len(kinds) > 1:
                files = ", ".join(f"{s.files[0].name} ({s.ids[key].dtype})" for s in sources)
                raise _fail(first.files[0], f"id entry {key!r} has mixed types across files ({files}); "
                                            "give ids of one type")
            ids[key] = np.concatenate([s.ids[key] for s in sources])
    if not ids:
        raise _fail(first.files[0], "the files share no id entry; give every file the same id column")
    labels = {k: np.concatenate([s.labels[k] for s in sources]) for k in first.labels
              if all(k in s.labels and s.labels[k].shape[1:] == first.labels[k].shape[1:] for s in sources)}
    split = np.concatenate([s.split for s in sources]) if all(s.split is not None for s in sources) else None
    return Source(first.format, [f for s in sources for f in s.files], sum(s.n for s in sources), ids,
                  {k: [p for s in sources for p in s.arrays[k]] for k in first.arrays}, labels, split,
                  [seg for s in sources for seg in s.segments], first.names, first.modalities, first.shapes,
                  sorted({x for s in sources for x in s.ignored}))


# ------------------------------------------------------------------ Arrow tables (Parquet, datasets folders)
def _list_column(path: Path, key: str, column, name_of) -> np.ndarray:
    """A (fixed-size) list column as an (n, width) array; null or ragged rows are named by id."""

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if column.null_count:
        bad = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
        raise _fail(path, f"column {key!r} has no vector for {len(bad)} rows (e.g. ids {name_of(bad)}); "
                          "drop those rows or fill them in")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        width = int(np.bincount(lengths).argmax())
        bad = np.flatnonzero(lengths != width)
        raise _fail(path, f"column {key!r} has vectors of length {sorted(set(lengths[bad].tolist()))[:5]} where "
                          f"most have {width} (e.g. ids {name_of(bad)}); every vector must have the same length")
    flat = pc.list_flatten(column)
    if pa.types.is_list(flat.type) or pa.types.is_fixed_size_list(flat.type) or pa.types.is_large_list(flat.type):
        raise _fail(path, f"column {key!r} holds nested lists; store one flat vector per row")
    if flat.null_count:
        raise _fail(path, f"column {key!r} holds null values inside vectors; fill them in")
    values = flat.to_numpy(zero_copy_only=False)
    return values.reshape(len(column), int(lengths[0]) if len(lengths) else 0)


def from_table(fmt: str, path: Path, table, split: str | None = None) -> Source:
    """A source from an Arrow table: list columns are vectors, string/int columns ids/split/labels (other scalar
    columns are ignored). A memeprobe export's schema metadata gives each array's per-row shape and modality."""

    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    declared = json.loads(meta.get("memeprobe.arrays", "{}"))
    scalars = {f.name: table.column(f.name).to_numpy(zero_copy_only=False) for f in table.schema
               if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_integer(f.type)
               or (f.name.lower() in LABEL_NAMES and (pa.types.is_floating(f.type) or pa.types.is_boolean(f.type)))}
    id_col = next((c for c in sorted(scalars, key=lambda c: (c.lower() not in ID_NAMES, c))
                   if _is_id_like(scalars[c])), None)

    def name_of(rows):
        return ", ".join(repr(str(scalars[id_col][r]) if id_col else int(r)) for r in rows[:5])

    entries = dict(scalars)
    notes = []
    for f in table.schema:
        if f.name in scalars:
            continue
        if pa.types.is_list(f.type) or pa.types.is_fixed_size_list(f.type) or pa.types.is_large_list(f.type):
            entries[f.name] = _list_column(path, f.name, table.column(f.name), name_of)
        else:
            notes.append(f"{f.name} ({f.type})")
    if split is not None and not any(k.lower() in SPLIT_NAMES for k in entries):
        entries["split"] = np.full(table.num_rows, split)
    return from_entries(fmt, path, entries, notes=notes, shapes={k: tuple(d["shape"]) for k, d in declared.items()},
                        modalities={k: d["modality"] for k, d in declared.items()})


def _read_parquet(paths: list[Path], ids_file) -> Source:

    files = []
    for p in paths:
        files += sorted(p.glob("*.parquet"), key=_natural) if p.is_dir() else [p]
    out = []
    for f in files:
        try:
            out.append(from_table("parquet", f, pq.read_table(f)))
        except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
            raise _fail(f, f"is not a readable Parquet file ({str(e).splitlines()[0]})") from None
    return concat(out)


def _natural(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def _arrow_files(folder: Path) -> list[Path]:
    state = folder / "state.json"
    if state.is_file():
        try:
            return [folder / d["filename"] for d in json.loads(state.read_text())["_data_files"]]
        except (ValueError, KeyError, TypeError) as e:
            raise _fail(state, f"is not a datasets state file ({e})") from None
    return sorted(folder.glob("*.arrow"), key=_natural)


def _read_arrow(path: Path):

    try:
        with pa.memory_map(str(path)) as f:
            try:
                return pa.ipc.open_stream(f).read_all()  # what datasets writes
            except pa.ArrowInvalid:
                f.seek(0)
                return pa.ipc.open_file(f).read_all()
    except (OSError, ValueError) as e:
        raise _fail(path, f"is not a readable Arrow file ({str(e).splitlines()[0]})") from None


def _read_hf(paths: list[Path], ids_file) -> Source:
    """``Dataset.save_to_disk`` folders (data-*.arrow + state.json); a ``DatasetDict`` folder gives each split."""
    out = []
    for folder in paths:
        dict_file = folder / "dataset_dict.json"
        if dict_file.is_file():
            try:
                splits = json.loads(dict_file.read_text())["splits"]
            except (ValueError, KeyError, TypeError) as e:
                raise _fail(dict_file, f"is not a datasets dict file ({e})") from None
            parts = [(folder / s, s) for s in splits]
        else:
            parts = [(folder, None)]
        for sub, split in parts:
            files = _arrow_files(sub)
            if not files:
                raise _fail(sub, "holds no .arrow files; give a folder written by datasets' save_to_disk")
            out += [from_table("hf-datasets", f, _read_arrow(f), split) for f in files]
    return concat(out)


def _is_hf(paths: list[Path]) -> bool:
    return all(p.is_dir() and ((p / "state.json").is_file() or (p / "dataset_dict.json").is_file()
                               or any(p.glob("*.arrow"))) for p in paths)


# ------------------------------------------------------------------ clip-retrieval, .npy, .npz, .pt
CLIP_RETRIEVAL = {"img_emb": ("image_embed", "image"), "text_emb": ("text_embed", "text")}


def _read_clip_retrieval(paths: list[Path], ids_file) -> Source:
    """clip-retrieval's inference output: ``img_emb/img_emb_N.npy``, ``text_emb/text_emb_N.npy`` and
    ``metadata/metadata_N.parquet`` per shard N (row i of each shard's files is the same item)."""

    out = []
    for folder in paths:
        shards = {kind: numbered(folder / kind, f"{kind}_", ".npy") for kind in CLIP_RETRIEVAL}
        shards = {k: v for k, v in shards.items() if v}
        meta = numbered(folder / "metadata", "metadata_", ".parquet")
        if not meta:
            raise _fail(folder, "has no metadata/metadata_N.parquet files: they hold the ids of the embedding rows")
        for kind, files in shards.items():
            if set(files) != set(meta):
                raise _fail(folder, f"{kind} has shards {sorted(files)} but metadata has {sorted(meta)}; "
                                    "every shard needs its embeddings and its metadata")
        for i, meta_file in meta.items():
            try:
                table = pq.read_table(meta_file)
            except (OSError, ValueError) as e:
                raise _fail(meta_file, f"is not a readable Parquet file ({str(e).splitlines()[0]})") from None
            src = from_table("clip-retrieval", meta_file, table)
            src.ignored += [f"{k} (a metadata column)" for k in src.arrays]
            src.arrays = {}
            for kind, files in shards.items():
                values = _load_npy(files[i])
                if values.ndim < 2 or len(values) != src.n:
                    raise _fail(files[i], f"has shape {values.shape} but {meta_file.name} has {src.n} rows; "
                                          "each shard needs one embedding per metadata row")
                src.arrays[kind] = [Part(files[i], values)]
                src.files.append(files[i])
            src.segments = [(meta_file, src.n)]
            src.names = {k: CLIP_RETRIEVAL[k][0] for k in shards}
            src.modalities = {CLIP_RETRIEVAL[k][0]: CLIP_RETRIEVAL[k][1] for k in shards}
            out.append(src)
    return concat(out)


def _is_clip_retrieval(paths: list[Path]) -> bool:
    return all(p.is_dir() and (p / "metadata").is_dir() and any((p / k).is_dir() for k in CLIP_RETRIEVAL)
               for p in paths)


def read_ids_file(path: Path) -> np.ndarray:
    """Ids from a .txt (one a line), .json (a list) or .npy (1-D) file."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        elif path.suffix == ".json":
            values = json.loads(path.read_text(encoding="utf-8"))
        else:
            values = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise _fail(path, f"cannot be read as an ids file ({str(e).splitlines()[0]}); give one id a line "
                          "(.txt), a JSON list or a 1-D .npy") from None
    values = _text_column(path, "ids", values if isinstance(values, np.ndarray) else np.array(values, dtype=object))
    if values.ndim != 1:
        raise _fail(path, f"holds shape {values.shape}; give one id per row")
    return values


def _read_npy(paths: list[Path], ids_file) -> Source:
    """One .npy per array (its file stem is the array name), rows in the order of ``--ids FILE``."""
    if ids_file is None:
        raise _fail(paths[0], "a .npy file has no ids; give them with --ids FILE (one id a line, in row order)")
    ids = read_ids_file(ids_file)
    src = Source("npy", [Path(ids_file)], len(ids), {"ids": ids}, {}, segments=[(paths[0], len(ids))])
    for p in paths:
        values = _load_npy(p)
        if values.ndim == 0 or len(values) != len(ids):
            raise _fail(p, f"has shape {values.shape} but {ids_file} has {len(ids)} ids; give one row per id")
        if values.dtype.kind not in "biuf":
            raise _fail(p, f"holds {values.dtype} values; give numeric vectors")
        src.arrays[p.stem] = [Part(p, values if values.ndim > 1 else values.reshape(len(ids), 1))]
        src.files.append(p)
    return src


def _read_npz(paths: list[Path], ids_file) -> Source:
    out = []
    for p in paths:
        try:
            with np.load(p, allow_pickle=False) as z:
                entries = {k: z[k] for k in z.files}
        except ValueError as e:
            raise _fail(p, f"holds pickled objects ({e}); save plain arrays (np.savez with str/numeric arrays)") from None
        except OSError as e:
            raise _fail(p, f"is not a readable .npz file ({e})") from None
        out.append(from_entries("npz", p, _with_ids(entries, ids_file)))
    return concat(out)


def _with_ids(entries: dict, ids_file) -> dict:
    return {**entries, "ids": read_ids_file(ids_file)} if ids_file is not None else entries


def _tensor_values(path: Path, key: str, value):
    """A .pt entry as numpy: tensors as they are (bfloat16 as float32), lists of tensors stacked (one dtype and
    shape), lists of str/int as a column; other values are not rows (None)."""
    import torch  # lazy: torch only for .pt sources

    def numpy(t):
        return (t.float() if t.dtype == torch.bfloat16 else t).detach().cpu().numpy()

    if isinstance(value, torch.Tensor):
        return numpy(value)
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, torch.Tensor) for v in value):
            dtypes = sorted({str(v.dtype) for v in value})
            shapes = sorted({tuple(v.shape) for v in value})
            if len(dtypes) > 1 or len(shapes) > 1:
                what = f"mixed dtypes ({', '.join(dtypes)})" if len(dtypes) > 1 else f"mixed shapes {shapes[:3]}"
                raise _fail(path, f"entry {key!r} is a list of tensors with {what}; give tensors of one dtype "
                                  "and shape")
            return numpy(torch.stack(list(value)))
        if all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            return _text_column(path, key, np.array(list(value), dtype=object))
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return np.array(value, dtype=np.float64 if any(isinstance(v, float) for v in value) else np.int64)
        kinds = sorted({type(v).__name__ for v in value})
        raise _fail(path, f"entry {key!r} is a list of {', '.join(kinds)}; give tensors, or lists of "
                          "tensors, numbers or strings")
    return None


def _refusal(e: Exception) -> str:
    """Why torch refused a file, in a few words (its message goes on about loading it unsafely)."""
    text = str(e)
    if m := re.search(r"Unsupported global: GLOBAL (\S+)", text):
        return f"it holds a {m.group(1)}, not a tensor"
    if m := re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text):
        return f"not a torch.save file: {m.group(1).strip()}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def _read_pt(paths: list[Path], ids_file) -> Source:
    """``torch.save``d dicts of tensors and lists (e.g. RGCL's ``{"ids", "img_feats", "text_feats", "labels"}``),
    loaded with ``weights_only=True``: a pickle of anything else is refused."""
    import torch  # lazy: torch only for .pt sources

    out = []
    for p in paths:
        try:
            try:
                obj = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                obj = torch.load(p, map_location="cpu", weights_only=True)  # a legacy (non-zip) file
        except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError) as e:
            raise _fail(p, f"is not a dict of tensors and lists that torch.load(weights_only=True) accepts "
                           f"({_refusal(e)}); save plain tensors, e.g. torch.save({{'ids': ..., 'img_feats': ...}})") from None
        if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
            raise _fail(p, f"holds a {type(obj).__name__}, not a dict of named tensors; save "
                           "{'ids': ..., 'img_feats': ..., 'text_feats': ...}")
        entries, notes = {}, []
        for key, value in obj.items():
            v = _tensor_values(p, key, value)
            if v is None:
                notes.append(f"{key} ({type(value).__name__}: not one vector per id)")
            else:
                entries[key] = v
        out.append(from_entries("pt", p, _with_ids(entries, ids_file), notes=notes))
    return concat(out)


def _suffix(paths: list[Path], suffix: str) -> bool:
    return all(p.is_file() and p.suffix.lower() == suffix for p in paths)


SOURCE_FORMATS: dict[str, SourceFormat] = {f.name: f for f in (
    SourceFormat("clip-retrieval", "clip-retrieval folder (img_emb/, text_emb/, metadata/)", _is_clip_retrieval,
                 _read_clip_retrieval),
    SourceFormat("hf-datasets", "Hugging Face datasets save_to_disk folder", _is_hf, _read_hf),
    SourceFormat("parquet", "Parquet file(s) with vector (list) columns",
                 lambda ps: all((p.is_file() and p.suffix.lower() == ".parquet")
                                or (p.is_dir() and any(p.glob("*.parquet"))) for p in ps), _read_parquet),
    SourceFormat("npz", ".npz archive of named arrays", lambda ps: _suffix(ps, ".npz"), _read_npz),
    SourceFormat("pt", "torch.save'd dict of tensors", lambda ps: _suffix(ps, ".pt") or _suffix(ps, ".pth"), _read_pt),
    SourceFormat("npy", ".npy arrays with an ids file", lambda ps: _suffix(ps, ".npy"), _read_npy),
)}


def read_source(paths, fmt: str | None = None, ids_file=None) -> Source:
    """Read ``paths`` (one layout) as ``fmt``, or as the first format whose ``detect`` accepts them."""
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.exists():
            raise _fail(p, "does not exist")
    if fmt is None:
        fmt = next((f.name for f in SOURCE_FORMATS.values() if f.detect(paths)), None)
        if fmt is None:
            known = "; ".join(f"{f.name}: {f.description}" for f in SOURCE_FORMATS.values())
            raise _fail(paths[0], f"is not a layout memeprobe can import ({known}); name one with --format")
    elif fmt not in SOURCE_FORMATS:
        raise DatasetError(f"unknown source format {fmt!r}; choose one of {', '.join(SOURCE_FORMATS)}")
    return SOURCE_FORMATS[fmt].read(paths, Path(ids_file) if ids_file else None)
