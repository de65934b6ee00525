"""Import embeddings computed elsewhere into one feature set of a store (``memeprobe store import``).

Alignment is by id, never by position: the store's meme table is the reference. A source value names a meme by
its id, its image path (or any path ending in it, e.g. an absolute one), the image's file name or stem, or its
number without zero padding; ``id_pattern`` first cuts the id out of each value. Every check (match rate,
duplicate ids, labels, dimensions, dtypes, NaN/inf, float16 range) runs before the first write, so a refused
import leaves the store as it was; rows are then written through the store's writer API (values, checksums,
status), memes the source lacks are marked failed with a reason. Provenance: what the user declares (encoder,
weights, preprocessing) plus the source files' sha256 and sizes; the files' hashes are part of the set's
identity, so a re-import of the same files is a no-op and of other files is refused unless ``overwrite``.
"""
from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memeprobe.data.records import Dataset
from memeprobe.errors import ConfigError, DatasetError, StoreError
from memeprobe.store.schema import DONE, FAILED, IDENTITY_KEYS, ArraySpec, check_array_name, dumps, now
from memeprobe.store.sources import Source, read_source
from memeprobe.store.store import FeatureStore

DEFAULT_MIN_MATCH = 0.5
BLOCK_ROWS = 16384  # rows per read/convert block and per write_rows commit
MISSING_REASON = "not in the imported files (memeprobe store import)"
_SHOW = 5
_MODALITY_WORDS = {"image": ("img", "image", "vis", "vision", "visual", "pixel", "photo", "picture"),
                   "text": ("text", "txt", "caption", "sent", "lang", "word", "token", "ocr")}


@dataclass
class ImportOptions:
    """How to read, align and describe the source (the CLI options of ``store import``)."""

    layout: str | None = None  # a SOURCE_FORMATS name; None = detect
    ids: Path | None = None  # ids file (one a line / JSON list / .npy), in row order
    id_column: str | None = None  # the source entry holding ids; None = the one matching most memes
    id_pattern: str | None = None  # regex cutting the id out of each value (group "id", else group 1, else all)
    arrays: dict[str, str] | None = None  # source key -> array name; None = every row array, named as in the source
    modalities: dict[str, str] = field(default_factory=dict)  # array name -> image|text where the name does not tell
    min_match: float = DEFAULT_MIN_MATCH  # refuse when fewer of the store's memes match
    dtype: str = "float16"  # storage dtype of float arrays
    encoder: str | None = None
    weights: str | None = None
    preprocessing: str | None = None
    overwrite: bool = False


@dataclass
class ImportReport:
    """What an import found and did; :meth:`lines` is what the command prints."""

    store: Path
    name: str
    source: Source
    column: str = ""
    arrays: dict[str, tuple[str, ArraySpec]] = field(default_factory=dict)  # name -> (source key, spec)
    matched: int = 0
    missing: list[str] = field(default_factory=list)  # split/id of store memes the source lacks
    extra: list[str] = field(default_factory=list)  # source ids matching no meme
    ambiguous: list[str] = field(default_factory=list)  # source ids naming several different memes
    labels: dict[str, int] = field(default_factory=dict)  # label entry -> labelled memes it agreed on
    notes: list[str] = field(default_factory=list)
    written: int = 0
    marked_missing: int = 0
    noop: bool = False

    def lines(self) -> list[str]:
        src, n = self.source, self.matched + len(self.missing)
        arrays = ", ".join(f"{a} {s.modality} {tuple(s.shape)}" + (f" (from {k})" if k != a else "")
                           for a, (k, s) in self.arrays.items())
        out = [f"source: {src.format}, {len(src.files)} file(s), {src.n} rows; ids from {self.column!r}; arrays: {arrays}"]
        out.append(f"ids: {self.matched} of {n} memes matched ({100 * self.matched / max(n, 1):.1f} %), "
                   f"{len(self.missing)} missing{_eg(self.missing)}, {len(self.extra)} extra source rows{_eg(self.extra)}"
                   + (f", {len(self.ambiguous)} naming several memes{_eg(self.ambiguous)}" if self.ambiguous else ""))
        out += [f"labels: {k!r} agrees with the store on all {m} labelled memes" for k, m in self.labels.items()]
        out += self.notes
        if self.noop:
            out.append(f"feature set {self.name} already holds these files' rows: nothing to write")
        else:
            out.append(f"wrote {self.written} rows of feature set {self.name} to {self.store}"
                       + (f"; {self.marked_missing} missing memes marked failed ({MISSING_REASON})"
                          if self.marked_missing else ""))
        return out


def _eg(items) -> str:
    return f" (e.g. {', '.join(map(str, items[:_SHOW]))})" if items else ""


# ------------------------------------------------------------------ alignment
def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name[1:] else name


def _parts(path: str) -> list[str]:
    """A path's components (``\\`` or ``/`` separated; empty and ``.`` components dropped)."""
    return [x for x in path.replace("\\", "/").split("/") if x and x != "."]


def _plain(path: str) -> bool:
    """True when ``path`` is already its components joined by "/" (the common case: no work to do)."""
    return not ("\\" in path or "//" in path or path.startswith(("/", "./")) or path.endswith("/") or "/./" in path)


class MemeIndex:
    """Rows of a store (or of its rows ``rows``) by the names a source may give a meme. A name shared by rows
    holding different memes (other text or image) is ambiguous; the same meme in two splits gets both rows."""

    AMBIGUOUS = ()

    def __init__(self, st: FeatureStore, rows: np.ndarray):
        self.st, self.rows = st, rows.tolist()
        self.ids = st.ids[rows].tolist()
        self.images = [p if _plain(p) else "/".join(_parts(p)) for p in st.images[rows].tolist()]
        self.depths = sorted({p.count("/") + 1 for p in self.images if p}, reverse=True)
        self._maps: dict[str, dict] = {}

    def _names(self, kind: str):
        """(name, row) pairs of one kind of name."""
        bases = [p.rsplit("/", 1)[-1] for p in self.images] if kind in ("file", "stem", "number") else None
        if kind == "id":
            return zip(self.ids, self.rows)
        if kind == "image":
            return ((p, r) for p, r in zip(self.images, self.rows) if p)
        if kind == "file":
            return ((b, r) for b, r in zip(bases, self.rows) if b)
        if kind == "stem":  # the image's file stem, and the id's when the id is a file name
            return ((k, r) for i, b, r in zip(self.ids, bases, self.rows) for k in {_stem(b), _stem(i)} - {"", i})
        return ((int(k), r) for i, b, r in zip(self.ids, bases, self.rows)  # "number": no zero padding
                for k in {i, _stem(b)} if k.isdigit())

    def map(self, kind: str) -> dict:
        """``{name: row}``, or a tuple of rows for a name of several rows (``AMBIGUOUS`` where they hold different
        memes), built on first use."""
        if kind not in self._maps:
            pairs = list(self._names(kind))
            out = dict(pairs)
            if len(out) < len(pairs):  # some names cover several rows
                several: dict = {}
                for key, r in pairs:
                    several.setdefault(key, set()).add(r)
                st = self.st
                for key, rows in several.items():
                    if len(rows) > 1:
                        same = len({(st.texts[r], st.images[r]) for r in rows}) == 1
                        out[key] = tuple(sorted(rows)) if same else self.AMBIGUOUS
            self._maps[kind] = out
        return self._maps[kind]

    def lookup(self, values: list) -> list:
        """Per value: the row it names (an int, or a tuple of rows), ``AMBIGUOUS``, or None; the most specific name that matches
        wins: the id, the image path or a path ending in it (e.g. an absolute one), the image's file name, the
        stem of either, the number without zero padding."""
        ids, images, depths = self.map("id"), self.map("image"), self.depths
        out = []
        for v in values:
            hit = None if v is None else ids.get(v)
            if hit is None and v is not None:
                # a leading "/" only adds an empty first component, which no tail below reaches
                parts = _parts(v) if ("\\" in v or "/." in v or "//" in v or v.startswith(".") or v.endswith("/")) \
                    else v.split("/")
                for k in depths:  # store image paths have k components: the value's last k
                    if len(parts) >= k and (hit := images.get("/".join(parts[-k:]))) is not None:
                        break
                else:
                    hit = self._by_file_name(parts[-1] if parts else v)
            out.append(hit)
        return out

    def _by_file_name(self, base: str):
        stem = _stem(base)
        for kind, key in (("file", base), ("id", stem), ("stem", stem)):
            if (hit := self.map(kind).get(key)) is not None:
                return hit
        return self.map("number").get(int(stem)) if stem.isdigit() else None


def _as_text(values: np.ndarray) -> list[str]:
    if values.dtype.kind in "iu":
        return values.astype(str).tolist()
    return [str(v).strip() for v in values.tolist()]


def _cut(values: list[str], pattern: re.Pattern | None) -> list[str | None]:
    if pattern is None:
        return values
    group = "id" if "id" in pattern.groupindex else (1 if pattern.groups else 0)
    return [m.group(group) if (m := pattern.search(v)) else None for v in values]


@dataclass
class Alignment:
    column: str
    src: np.ndarray  # source row of each matched store row
    rows: np.ndarray  # matched store rows, ascending
    extra: np.ndarray  # source rows matching no meme
    ambiguous: np.ndarray  # source rows naming several different memes
    values: list  # the id of every source row as given (before the id pattern)
    split_note: str | None = None


def _split_of_rows(st: FeatureStore, src: Source) -> tuple[np.ndarray | None, str | None]:
    """Per source row, the store split it must match within (from a split column or split-named files)."""
    names = set(st.split_names())
    if src.split is not None:
        if set(src.split.tolist()) <= names:
            return src.split, "ids matched within the split named by the source's 'split' column"
        return None, (f"the source's split column ({', '.join(sorted(set(src.split.tolist()))[:5])}) does not name "
                      "the store's splits: ids matched across all splits")
    stems = [p.stem for p, _ in src.segments]
    if len(stems) > 1 and set(stems) <= names:
        return (np.concatenate([np.full(k, p.stem) for p, k in src.segments]),
                f"ids matched within the split each file is named after ({', '.join(stems)})")
    return None, None


def align(st: FeatureStore, src: Source, id_column: str | None = None, id_pattern: str | None = None) -> Alignment:
    """Match every source row to the store memes its id names (see :class:`MemeIndex`)."""
    try:
        pattern = re.compile(id_pattern) if id_pattern else None
    except re.error as e:
        raise ConfigError(f"id pattern {id_pattern!r} is not a regular expression ({e})", option="id_pattern") from None
    splits, note = _split_of_rows(st, src)
    if splits is None:
        indices = {None: MemeIndex(st, np.arange(st.n))}
    else:
        indices = {s: MemeIndex(st, st.rows([s])) for s in sorted(set(splits.tolist()))}

    def hits(values, where):
        if splits is None:
            return indices[None].lookup(values)
        out = [None] * len(values)
        of = splits[np.asarray(where, dtype=np.int64)]
        for s, index in indices.items():
            at = np.flatnonzero(of == s).tolist()
            for k, h in zip(at, index.lookup([values[k] for k in at])):
                out[k] = h
        return out

    if id_column is not None:
        if id_column not in src.ids:
            raise ConfigError(f"{src.files[0]}: no id column {id_column!r}; its id columns are "
                              f"{', '.join(src.ids) or 'none'}", option="id_column")
        column = id_column
    else:  # the candidate naming most memes on a sample; ties go to the preferred name
        sample = np.unique(np.linspace(0, src.n - 1, min(src.n, 2000)).astype(np.int64)) if src.n else np.zeros(0, int)
        score = {}
        for c, v in src.ids.items():
            found = hits(_cut(_as_text(v[sample]), pattern), sample)
            score[c] = sum(1 for h in found if h is not None and h != MemeIndex.AMBIGUOUS)
        column = max(src.ids, key=lambda c: score[c])  # max keeps the first of equals
    values = _as_text(src.ids[column])
    found = hits(_cut(values, pattern), np.arange(src.n))
    single = np.fromiter((h if type(h) is int else -1 for h in found), dtype=np.int64, count=len(found))
    pair_src, pair_row, extra, ambiguous = [np.flatnonzero(single >= 0)], [single[single >= 0]], [], []
    for i in np.flatnonzero(single < 0).tolist():  # no meme, several memes, or one meme in several splits
        h = found[i]
        if h is None:
            extra.append(i)
        elif h == MemeIndex.AMBIGUOUS:
            ambiguous.append(i)
        else:
            pair_src.append(np.full(len(h), i))
            pair_row.append(np.array(h, dtype=np.int64))
    pair_src, pair_row = np.concatenate(pair_src), np.concatenate(pair_row)
    order = np.argsort(pair_row, kind="stable")
    pair_src, pair_row = pair_src[order], pair_row[order]
    dup = np.flatnonzero(np.diff(pair_row) == 0)
    if len(dup):
        clash = {}
        for k in dup:
            clash.setdefault(int(pair_row[k]), {int(pair_src[k])}).add(int(pair_src[k + 1]))
        shown = "; ".join(f"{st.splits[r]}/{st.ids[r]} by " + " and ".join(
            f"{values[i]!r} (row {i} of {src.file_of(i).name})" for i in sorted(s)) for r, s in list(clash.items())[:3])
        raise DatasetError(f"{src.files[0]}: {len(clash)} meme(s) given by several source rows (duplicate ids: "
                           f"{shown}); keep one row per id")
    return Alignment(column, pair_src, pair_row, np.array(extra, dtype=np.int64), np.array(ambiguous, dtype=np.int64),
                     values, note)


# ------------------------------------------------------------------ checks
def _check_match(st: FeatureStore, src: Source, a: Alignment, min_match: float) -> None:
    matched = len(a.rows)
    if matched >= min_match * st.n and matched:
        return
    given = ", ".join(repr(v) for v in a.values[:3])
    ids = ", ".join(repr(str(x)) for x in st.ids[:3])
    raise DatasetError(
        f"{src.files[0]}: only {matched} of the {st.n} memes of store {st.path} ({100 * matched / st.n:.1f} %, "
        f"below {100 * min_match:.0f} %) match an id of column {a.column!r} (it holds e.g. {given}; the store's ids "
        f"are e.g. {ids}); name the id column (--id-column, one of {', '.join(src.ids)}), cut the id out with "
        "--id-pattern, or lower --min-match")


def _check_labels(st: FeatureStore, src: Source, a: Alignment) -> tuple[dict[str, int], list[str]]:
    """Source label entries must agree with the store's labels where both are labelled (a misalignment shows);
    returns the labelled memes each agreed on, and notes on entries the store has no labels to check against."""
    agreed, notes = {}, []
    for key, values in src.labels.items():
        v = values[a.src]
        if v.ndim == 1 and (st.binary_name is not None or (st.label >= 0).any()):
            mine, theirs = st.label[a.rows].astype(np.int64), v
        elif v.ndim == 2 and v.shape[1] == len(st.label_names) and st.label_names:
            mine, theirs = st.labels[a.rows].astype(np.int64), v
        else:
            per_row = "one value" if v.ndim == 1 else f"{v.shape[1]} values"
            notes.append(f"labels: {key!r} ({per_row} per row) not checked: the store has no such labels")
            continue
        theirs = np.asarray(theirs, dtype=np.float64).reshape(mine.shape)
        both = (mine >= 0) & (theirs >= 0) & np.isfinite(theirs)
        if mine.ndim == 2:
            both = both.all(axis=1, keepdims=True) & both
        bad = (both & (theirs != mine)).reshape(len(mine), -1).any(axis=1)
        labelled = both.reshape(len(mine), -1).any(axis=1)
        if bad.any():
            k = np.flatnonzero(bad)
            shown = ", ".join(f"{st.splits[r]}/{st.ids[r]} ({_fmt(theirs[i])} vs {_fmt(mine[i])})"
                              for i, r in zip(k[:_SHOW], a.rows[k[:_SHOW]]))
            raise DatasetError(f"{src.file_of(int(a.src[k[0]]))}: {key!r} disagrees with the store's labels on "
                               f"{len(k)} of {int(labelled.sum())} labelled memes (e.g. {shown}; source vs store): "
                               "the ids may name other memes (check --id-column / --id-pattern) or the labels "
                               "another class order")
        agreed[key] = int(labelled.sum())
    return agreed, notes


def _fmt(v) -> str:
    v = np.asarray(v)
    return str(int(v)) if v.ndim == 0 else "[" + ",".join(str(int(x)) for x in v) + "]"


def _modality(name: str, src: Source, given: dict[str, str]) -> str:
    if name in given:
        return given[name]
    if name in src.modalities:
        return src.modalities[name]
    words = re.split(r"[^a-z]+|(?<=[a-z])(?=[A-Z])", name.lower())
    found = {m for m, keys in _MODALITY_WORDS.items() if any(w.startswith(k) for w in words for k in keys)}
    if len(found) != 1:
        raise ConfigError(f"{src.files[0]}: cannot tell whether array {name!r} holds image or text features; say it "
                          f"with --modality {name}=image (or =text)")
    return found.pop()


def _specs(src: Source, opts: ImportOptions) -> dict[str, tuple[str, ArraySpec]]:
    """Array name -> (source key, spec): per-row shapes and dtypes checked across the source's parts."""
    chosen = opts.arrays if opts.arrays is not None else {k: src.names.get(k, k) for k in src.arrays}
    unknown = [k for k in chosen if k not in src.arrays]
    if unknown or not chosen:
        raise ConfigError(f"{src.files[0]}: no row array {', '.join(map(repr, unknown)) or 'at all'}; its row arrays "
                          f"are {', '.join(src.arrays) or 'none'}" + (f" (ignored: {'; '.join(src.ignored)})"
                                                                      if src.ignored else ""), option="array")
    if opts.dtype not in ("float16", "float32"):
        raise ConfigError(f"storage dtype {opts.dtype!r}: choose float16 or float32", option="dtype")
    out = {}
    for key, name in chosen.items():
        try:
            check_array_name(name)
        except ConfigError as e:
            raise ConfigError(f"{src.files[0]}: {e}; rename it with --array {key}=NAME") from None
        parts = src.arrays[key]
        first = parts[0]
        for p in parts[1:]:
            if p.values.dtype != first.values.dtype:
                raise DatasetError(f"{p.file}: array {key!r} is {p.values.dtype} but {first.file.name} holds it as "
                                   f"{first.values.dtype} (mixed dtypes); give every file the same dtype")
            if p.values.shape[1:] != first.values.shape[1:]:
                raise DatasetError(f"{p.file}: array {key!r} has rows of shape {p.values.shape[1:]} but "
                                   f"{first.file.name} has {first.values.shape[1:]} (wrong dimension); every row "
                                   "needs the same dimension")
        shape = tuple(first.values.shape[1:])
        declared = src.shapes.get(key)
        if declared and int(np.prod(declared)) == int(np.prod(shape)):
            shape = tuple(declared)
        dtype = opts.dtype if first.values.dtype.kind == "f" else first.values.dtype.name
        modality = _modality(name, src, opts.modalities)
        try:
            out[name] = (key, ArraySpec(shape, modality, dtype))
        except ConfigError as e:
            raise DatasetError(f"{first.file}: array {key!r}: {e}") from None
    return out


# ------------------------------------------------------------------ provenance
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def file_facts(paths) -> list[dict]:
    """Path, sha256 and size of each file."""
    return [{"path": str(Path(f).resolve()), "sha256": _sha256(f), "size": Path(f).stat().st_size} for f in paths]


def provenance(src: Source, a: Alignment, specs, opts: ImportOptions, files: list[dict]) -> dict:
    """Declared encoder/weights/preprocessing, the recipe (in the identity: a sha256 over the files' sorted
    sha256s, whatever their order or paths; id column and pattern; array names) and the files' paths, sizes and
    import time."""
    contents = hashlib.sha256(" ".join(sorted(f["sha256"] for f in files)).encode()).hexdigest()
    recipe = {"format": src.format, "files_sha256": contents, "id_column": a.column,
              "id_pattern": opts.id_pattern, "arrays": {name: key for name, (key, _) in specs.items()}}
    return {"encoder": opts.encoder, "weights": opts.weights,
            "preprocessing": {"declared": opts.preprocessing, "import": recipe},
            "import": {"files": files, "imported": now()}}


def _identity(prov: dict) -> str:
    return dumps({k: prov.get(k) for k in IDENTITY_KEYS})


def _describe(prov: dict) -> str:
    imported = prov.get("import")
    if imported:
        files = ", ".join(f"{Path(f['path']).name} ({f['sha256'][:12]})" for f in imported.get("files", [])[:3])
        return f"imported from {files}, encoder {prov.get('encoder')!r}"
    return f"computed by encoder {prov.get('encoder')!r}"


# ------------------------------------------------------------------ values
def scan_values(src: Source, key: str, spec: ArraySpec) -> tuple[np.ndarray, np.ndarray]:
    """Source rows of array ``key`` holding NaN/inf, and rows holding values beyond the storage dtype's range
    (one pass of row-wise min/max; numpy releases the GIL, so it runs beside the alignment)."""
    parts = src.arrays[key]
    if spec.dtype[0] != "f" and parts[0].values.dtype.kind != "f":
        return np.zeros(0, np.int64), np.zeros(0, np.int64)  # integers stored as they are
    limit = float(np.finfo(spec.dtype).max) if spec.dtype[0] == "f" else float("inf")
    bad, over, offset = [], [], 0
    for part in parts:
        for b in range(0, len(part.values), BLOCK_ROWS):
            flat = np.asarray(part.values[b:b + BLOCK_ROWS]).reshape(min(BLOCK_ROWS, len(part.values) - b), -1)
            wrong = np.flatnonzero(~((flat.max(axis=1) <= limit) & (flat.min(axis=1) >= -limit)))  # NaN fails both
            if len(wrong):
                nonfinite = ~np.isfinite(flat[wrong]).all(axis=1)
                bad.append(wrong[nonfinite] + offset + b)
                over.append(wrong[~nonfinite] + offset + b)
        offset += len(part.values)
    return (np.concatenate(bad) if bad else np.zeros(0, np.int64)), (np.concatenate(over) if over else np.zeros(0, np.int64))


def check_values(src: Source, key: str, spec: ArraySpec, a: Alignment, scanned) -> None:
    """Refuse matched rows that :func:`scan_values` found bad, named by file and id (before anything is written)."""
    matched = np.unique(a.src)
    for what, rows, fix in (("NaN/inf values", scanned[0], "drop or recompute those rows"),
                            (f"values beyond {spec.dtype}'s range", scanned[1], "import with --dtype float32")):
        rows = np.intersect1d(rows, matched)
        if len(rows):
            ids = ", ".join(repr(a.values[i]) for i in rows[:_SHOW])
            raise DatasetError(f"{src.array_file(key, int(rows[0]))}: array {key!r} has {what} in {len(rows)} rows "
                               f"(ids {ids}); {fix}")


def gather(src: Source, key: str, spec: ArraySpec, source_rows: np.ndarray) -> np.ndarray:
    """Rows ``source_rows`` (any order) of array ``key``, converted to ``spec.dtype``."""
    parts = src.arrays[key]
    starts = np.cumsum([0] + [len(p.values) for p in parts])
    which = np.searchsorted(starts, source_rows, side="right") - 1
    out = np.empty((len(source_rows), *spec.shape), dtype=spec.dtype)
    for k in np.unique(which).tolist():
        at = np.flatnonzero(which == k)
        local = source_rows[at] - starts[k]
        values = parts[k].values
        if (np.diff(local) == 1).all():  # a run of rows: a slice reads it in one go
            block = values[local[0]:local[-1] + 1]
        else:
            block = values[local]
        out[at] = np.asarray(block).reshape(len(at), *spec.shape)  # the cast happens in this copy
    return out


def _write(st: FeatureStore, name: str, specs: dict, src: Source, a: Alignment, todo: dict, overwrite: bool,
           prov: dict) -> None:
    """Create the set, then write the rows ``todo[modality]`` (positions in ``a.rows``) block by block: a writer
    thread commits block k (values, checksums, fsync, status) while this one reads and converts block k + 1."""
    with ThreadPoolExecutor(max_workers=1) as io:
        waiting = [io.submit(st.add_feature_set, name, {n: s for n, (_, s) in specs.items()}, prov, overwrite)]
        for m, pos in todo.items():
            for b in range(0, len(pos), BLOCK_ROWS):
                p = pos[b:b + BLOCK_ROWS]
                values = {n: gather(src, key, s, a.src[p]) for n, (key, s) in specs.items() if s.modality == m}
                while len(waiting) > 1:  # at most one block converted ahead of the writer
                    waiting.pop(0).result()
                waiting.append(io.submit(st.write_rows, name, a.rows[p], values, m))
        for w in waiting:
            w.result()


# ------------------------------------------------------------------ the import
def import_features(store_path, paths, name: str, opts: ImportOptions | None = None,
                    dataset: Dataset | None = None) -> ImportReport:
    """Import ``paths`` (one layout) into feature set ``name`` of the store at ``store_path``; with ``dataset``,
    a store that does not exist yet is created for it (and removed again when the import is refused)."""
    opts = opts or ImportOptions()
    if not 0 < opts.min_match <= 1:
        raise ConfigError(f"min match {opts.min_match} must be in (0, 1]", option="min_match")
    if dataset is None and not Path(store_path).exists():
        raise StoreError(f"store {store_path} does not exist; give the dataset (--data DATA) to create it, or "
                         "featurize it first")
    src = read_source(paths, opts.layout, opts.ids)
    created = dataset is not None and not Path(store_path).exists()
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return _import(store_path, src, name, opts, pool, dataset)
    except BaseException:
        if created:
            Path(store_path).unlink(missing_ok=True)
        raise
    finally:
        pool.shutdown(cancel_futures=True)  # a refused import does not wait for scans it no longer needs


def _import(store_path, src: Source, name: str, opts: ImportOptions, pool: ThreadPoolExecutor,
            dataset: Dataset | None) -> ImportReport:
    """:func:`import_features` with ``pool`` running the file hashing and value scans."""
    opened = FeatureStore.open_writer(store_path) if dataset is None else FeatureStore.open_or_create(store_path, dataset)
    with opened as st:
        hashed = pool.submit(file_facts, src.files)  # hashlib and numpy release the GIL: beside the alignment
        report = ImportReport(Path(store_path), name, src)
        specs = _specs(src, opts)
        scanned = {n: pool.submit(scan_values, src, key, spec) for n, (key, spec) in specs.items()}
        a = align(st, src, opts.id_column, opts.id_pattern)
        _check_match(st, src, a, opts.min_match)
        report.labels, label_notes = _check_labels(st, src, a)
        missing = np.setdiff1d(np.arange(st.n), a.rows)
        report.column, report.arrays, report.matched = a.column, specs, len(a.rows)
        report.missing = [f"{st.splits[r]}/{st.ids[r]}" for r in missing]
        report.extra = [a.values[i] for i in a.extra]
        report.ambiguous = [a.values[i] for i in a.ambiguous]
        report.notes = ([st.label_update] if st.label_update else []) + label_notes + (
            [a.split_note] if a.split_note else []) + (
            [f"ignored: {'; '.join(src.ignored)}"] if src.ignored else [])
        modalities = sorted({s.modality for _, s in specs.values()})
        prov = provenance(src, a, specs, opts, hashed.result())
        todo = {m: np.arange(len(a.rows)) for m in modalities}  # positions in a.rows
        lack = {m: missing for m in modalities}
        if name in st.feature_sets():
            old = st.provenance(name)
            same = (dumps({k: s.to_json() for k, s in st.arrays(name).items()})
                    == dumps({k: s.to_json() for k, (_, s) in specs.items()}) and _identity(old) == _identity(prov))
            if not same and not opts.overwrite:
                raise StoreError(f"store {st.path} already has feature set {name!r} ({_describe(old)}; arrays "
                                 f"{', '.join(st.arrays(name))}), not this import ({_describe(prov)}; arrays "
                                 f"{', '.join(specs)}); use another --feature-set name, or --overwrite to "
                                 "replace it")
            if same:  # the same files again: only what an interrupted import left
                todo = {m: np.flatnonzero(st.status(name, m)[a.rows] != DONE) for m in modalities}
                lack = {m: missing[st.status(name, m)[missing] != FAILED] for m in modalities}
                if not any(len(t) for t in todo.values()) and not any(len(x) for x in lack.values()):
                    report.noop = True
                    return report
        for n, (key, spec) in specs.items():
            check_values(src, key, spec, a, scanned[n].result())
        _write(st, name, specs, src, a, todo, opts.overwrite, prov)
        for m, rows in lack.items():
            if len(rows):
                st.mark_failed(name, rows, m, MISSING_REASON)
        report.written = max(len(t) for t in todo.values())
        report.marked_missing = max(len(x) for x in lack.values())
    return report
