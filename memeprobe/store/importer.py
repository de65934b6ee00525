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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memeprobe.errors import ConfigError, DatasetError, MemeprobeError, StoreError
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

    format: str | None = None  # a SOURCE_FORMATS name; None = detect
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


def _clean_path(value: str) -> str:
    p = value.replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


class MemeIndex:
    """Rows of a store (or of its rows ``rows``) by the names a source may give a meme. A name shared by rows
    holding different memes (other text or image) is ambiguous; the same meme in two splits gets both rows."""

    AMBIGUOUS = ()

    def __init__(self, st: FeatureStore, rows: np.ndarray):
        self.st, self.rows = st, rows
        self._maps: dict[str, dict] = {}

    def _keys(self, kind: str, r: int) -> list:
        mid, image = self.st.ids[r], _clean_path(self.st.images[r])
        base = image.rsplit("/", 1)[-1]
        if kind == "id":
            return [mid]
        if kind == "image":
            return [image] if image else []
        if kind == "file":
            return [base] if base else []
        if kind == "stem":
            return list({_stem(base), _stem(mid)} - {"", mid})
        return [int(x) for x in {mid, _stem(base)} if x.isdigit()]  # "number": no zero padding

    def map(self, kind: str) -> dict:
        """``{name: tuple of rows}`` (``AMBIGUOUS`` where the rows hold different memes), built on first use."""
        if kind not in self._maps:
            found: dict = {}
            for r in self.rows.tolist():
                for key in self._keys(kind, r):
                    found.setdefault(key, []).append(r)
            st = self.st
            out = {}
            for key, rows in found.items():
                rows = tuple(sorted(set(rows)))
                same = len(rows) == 1 or len({(st.texts[r], st.images[r]) for r in rows}) == 1
                out[key] = rows if same else self.AMBIGUOUS
            self._maps[kind] = out
        return self._maps[kind]

    def lookup(self, value: str):
        """Rows ``value`` names (a tuple), ``AMBIGUOUS``, or None: the most specific name that matches wins."""
        hit = self.map("id").get(value)
        if hit is not None:
            return hit
        p = _clean_path(value)
        parts = [x for x in p.split("/") if x]
        images = self.map("image")
        for k in range(len(parts), 0, -1):  # the path, then ever shorter tails of it (an absolute path)
            hit = images.get("/".join(parts[-k:]))
            if hit is not None:
                return hit
        base = parts[-1] if parts else p
        stem = _stem(base)
        for kind, key in (("file", base), ("id", stem), ("stem", stem)):
            hit = self.map(kind).get(key)
            if hit is not None:
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
        return [None if v is None else indices[None if splits is None else splits[i]].lookup(v)
                for i, v in zip(where, values)]

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
            score[c] = sum(1 for h in found if h)
        column = max(src.ids, key=lambda c: score[c])  # max keeps the first of equals
    values = _as_text(src.ids[column])
    found = hits(_cut(values, pattern), range(src.n))
    pair_src, pair_row, extra, ambiguous = [], [], [], []
    for i, h in enumerate(found):
        if h is None:
            extra.append(i)
        elif h == MemeIndex.AMBIGUOUS:
            ambiguous.append(i)
        else:
            pair_src += [i] * len(h)
            pair_row += h
    pair_src, pair_row = np.array(pair_src, dtype=np.int64), np.array(pair_row, dtype=np.int64)
    order = np.argsort(pair_row, kind="stable")
    pair_src, pair_row = pair_src[order], pair_row[order]
    dup = np.flatnonzero(np.diff(pair_row) == 0)
    if len(dup):
        clash = {}
        for k in dup:
            clash.setdefault(int(pair_row[k]), {int(pair_src[k])}).add(int(pair_src[k + 1]))
        shown = "; ".join(f"{st.splits[r]}/{st.ids[r]} by " + " and ".join(
            f"{values[i]!r} (row {i} of {src.file_of(i).name})" for i in sorted(s)) for r, s in list(clash.items())[:3])
        raise DatasetError(f"{src.files[0]}: {len(clash)} memes are given by several source rows (duplicate ids: "
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
        "--id-pattern, or lower --min-match", option="id_column")


def _check_labels(st: FeatureStore, src: Source, a: Alignment) -> dict[str, int]:
    """Source label entries must agree with the store's labels where both are labelled (a misalignment shows)."""
    agreed = {}
    for key, values in src.labels.items():
        v = values[a.src]
        if v.ndim == 1 and (st.binary_name is not None or (st.label >= 0).any()):
            mine, theirs = st.label[a.rows].astype(np.int64), v
        elif v.ndim == 2 and v.shape[1] == len(st.label_names) and st.label_names:
            mine, theirs = st.labels[a.rows].astype(np.int64), v
        else:
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
    return agreed


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
        raise ConfigError(f"cannot tell whether array {name!r} holds image or text features; say it with "
                          f"--modality {name}=image (or =text)", option="modality")
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
        except MemeprobeError as e:
            raise ConfigError(f"{e}; rename it with --array {key}=NAME", option="array") from None
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
        except MemeprobeError as e:
            raise DatasetError(f"{first.file}: array {key!r}: {e}") from None
    return out


# ------------------------------------------------------------------ provenance
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def provenance(src: Source, a: Alignment, specs, opts: ImportOptions) -> dict:
    """Declared encoder/weights/preprocessing, the recipe (in the identity: file hashes, id column and pattern,
    array names) and the files' paths, sizes and import time."""
    files = [{"path": str(Path(f).resolve()), "sha256": _sha256(f), "size": Path(f).stat().st_size} for f in src.files]
    recipe = {"format": src.format, "sha256": sorted(f["sha256"] for f in files), "id_column": a.column,
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
def _gather(st: FeatureStore, src: Source, key: str, spec: ArraySpec, a: Alignment) -> np.ndarray:
    """The matched rows of array ``key`` in store-row order, converted to ``spec.dtype``; rows with NaN/inf (or
    out of the storage dtype's range) are named by id."""
    out = np.empty((len(a.rows), *spec.shape), dtype=spec.dtype)
    order = np.argsort(a.src, kind="stable")
    wanted = a.src[order]
    bad: dict[Path, list[int]] = {}
    overflow: dict[Path, list[int]] = {}
    offset = 0
    for part in src.arrays[key]:
        lo, hi = np.searchsorted(wanted, [offset, offset + len(part.values)])
        for b in range(lo, hi, BLOCK_ROWS):
            e = min(b + BLOCK_ROWS, hi)
            local = wanted[b:e] - offset
            if local[-1] - local[0] + 1 == len(local):  # a run of rows: a slice reads it in one go
                values = np.asarray(part.values[local[0]:local[-1] + 1])
            else:
                values = np.asarray(part.values[local])
            values = values.reshape(len(local), *spec.shape)
            if values.dtype.kind == "f":
                finite = np.isfinite(values.reshape(len(local), -1)).all(axis=1)
                with np.errstate(over="ignore", invalid="ignore"):
                    conv = values.astype(spec.dtype)
                fits = np.isfinite(conv.reshape(len(local), -1)).all(axis=1)
                bad.setdefault(part.file, []).extend((wanted[b:e][~finite]).tolist())
                overflow.setdefault(part.file, []).extend((wanted[b:e][finite & ~fits]).tolist())
            else:
                conv = values.astype(spec.dtype)
            out[order[b:e]] = conv
        offset += len(part.values)
    for what, rows, fix in (("NaN/inf values", bad, "drop or recompute those rows"),
                            (f"values beyond {spec.dtype}'s range", overflow, "import with --dtype float32")):
        for path, r in rows.items():
            if r:
                ids = ", ".join(repr(a.values[i]) for i in r[:_SHOW])
                raise DatasetError(f"{path}: array {key!r} has {what} in {len(r)} rows (ids {ids}); {fix}")
    return out


# ------------------------------------------------------------------ the import
def import_features(store_path, paths, name: str, opts: ImportOptions | None = None) -> ImportReport:
    """Import ``paths`` (one layout) into feature set ``name`` of the store at ``store_path``."""
    opts = opts or ImportOptions()
    if not 0 < opts.min_match <= 1:
        raise ConfigError(f"min match {opts.min_match} must be in (0, 1]", option="min_match")
    src = read_source(paths, opts.format, opts.ids)
    with FeatureStore.open_writer(store_path) as st:
        report = ImportReport(Path(store_path), name, src)
        specs = _specs(src, opts)
        a = align(st, src, opts.id_column, opts.id_pattern)
        _check_match(st, src, a, opts.min_match)
        report.labels = _check_labels(st, src, a)
        missing = np.setdiff1d(np.arange(st.n), a.rows)
        report.column, report.arrays, report.matched = a.column, specs, len(a.rows)
        report.missing = [f"{st.splits[r]}/{st.ids[r]}" for r in missing]
        report.extra = [a.values[i] for i in a.extra]
        report.ambiguous = [a.values[i] for i in a.ambiguous]
        report.notes = ([a.split_note] if a.split_note else []) + (
            [f"ignored: {'; '.join(src.ignored)}"] if src.ignored else [])
        prov = provenance(src, a, specs, opts)
        array_specs = {n: s for n, (_, s) in specs.items()}
        modalities = sorted({s.modality for s in array_specs.values()})
        if name in st.feature_sets():
            old = st.provenance(name)
            same = (dumps({k: s.to_json() for k, s in st.arrays(name).items()})
                    == dumps({k: s.to_json() for k, s in array_specs.items()}) and _identity(old) == _identity(prov))
            if not same and not opts.overwrite:
                raise StoreError(f"store {st.path} already has feature set {name!r} ({_describe(old)}; arrays "
                                 f"{', '.join(st.arrays(name))}), not this import ({_describe(prov)}; arrays "
                                 f"{', '.join(array_specs)}); use another --feature-set name, or --overwrite to "
                                 "replace it", option="overwrite")
            if same:
                done = st.done(name, list(array_specs))
                failed = np.ones(st.n, bool)
                for m in modalities:
                    failed &= st.status(name, m) == FAILED
                if done[a.rows].all() and failed[missing].all():
                    report.noop = True
                    return report
        values = {n: _gather(st, src, key, spec, a) for n, (key, spec) in specs.items()}
        st.add_feature_set(name, array_specs, prov, overwrite=opts.overwrite)
        for m in modalities:
            todo = np.flatnonzero(st.status(name, m)[a.rows] != DONE)  # positions in a.rows (all, unless resuming)
            mine = [n for n, s in array_specs.items() if s.modality == m]
            for b in range(0, len(todo), BLOCK_ROWS):
                pos = todo[b:b + BLOCK_ROWS]
                st.write_rows(name, a.rows[pos], {n: values[n][pos] for n in mine}, m)
            lack = missing[st.status(name, m)[missing] != FAILED]
            if len(lack):
                st.mark_failed(name, lack, m, MISSING_REASON)
            report.written = max(report.written, len(todo))
            report.marked_missing = max(report.marked_missing, len(lack))
    return report
