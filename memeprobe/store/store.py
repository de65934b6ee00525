"""FeatureStore: one crash-safe HDF5 file per dataset holding its meme table and row-aligned feature sets.

Layout, status codes, crash-safety and locking design: see SCHEMA.md beside this module.
"""
from __future__ import annotations

import errno
import functools
import os
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import xxhash

from memeprobe import __version__
from memeprobe.data.records import Dataset
from memeprobe.atomic import fsync_dir
from memeprobe.errors import MemeprobeError, StoreError, StoreLockedError
from memeprobe.store import layout
from memeprobe.store import spans as span_table
from memeprobe.store.features import resolve_target, target_values
from memeprobe.store.lock import WriterLock
from memeprobe.store.schema import (
    CHECKSUM, DONE, FAILED, IDENTITY_KEYS, LEGACY_CHECKSUM, MAGIC, REASON_BYTES, SCHEMA_VERSION, STATUS_NAMES, TODO,
    ArraySpec, check_array_name, check_feature_set_name, chunk_rows, dumps, library_versions, now)

_STR = h5py.string_dtype("utf-8")
_FIX = ("use a new --store path, or --overwrite to rebuild it")
REBUILD = "rebuild it with --overwrite or a new --store path"
RELABEL = ("`memeprobe featurize` on it with its dataset rewrites the labels from the dataset (feature sets are "
           f"kept); or {REBUILD}")
REBUILD_SET = ("re-featurize with --overwrite to rebuild that feature set (the store's other sets are kept), or use "
               "a new --store path")


def _h5open(path: Path, mode: str) -> h5py.File:
    """Open without HDF5 file locking (the sidecar lock rules writers) and without a chunk cache, so every
    read and write goes straight to the file: readers never see stale chunks, writers never hold rows back."""
    return h5py.File(path, mode, locking=False, rdcc_nbytes=0)


def _dcpl(shape: tuple[int, ...], chunks: tuple[int, ...], fill) -> h5py.h5p.PropDCID:
    """Chunked, no filters, space allocated and filled at creation: later row writes touch raw bytes only.

    ``fill=None`` keeps HDF5's default fill, zero bytes (h5py's ``set_fill_value`` would copy uninitialised
    memory for fixed-length strings)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunks)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    if fill is not None:
        dcpl.set_fill_value(np.array(fill))
    return dcpl


def _create(group: h5py.Group, name: str, n: int, spec: ArraySpec, fill=0) -> h5py.Dataset:
    shape = (n, *spec.shape)
    chunks = (chunk_rows(n, spec), *spec.shape)
    return group.create_dataset(name, shape=shape, dtype=spec.dtype, track_times=False,
                                dcpl=_dcpl(shape, chunks, np.array(fill, dtype=spec.dtype)))


def _runs(rows: np.ndarray) -> list[tuple[int, int, int]]:
    """Sorted unique rows → (row start, row stop, position in rows) of each contiguous run."""
    if len(rows) == 0:
        return []
    cuts = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[0], cuts])
    stops = np.concatenate([cuts, [len(rows)]])
    return [(int(rows[a]), int(rows[b - 1]) + 1, int(a)) for a, b in zip(starts, stops)]


def _read_rows(ds: h5py.Dataset, rows) -> np.ndarray:
    """``ds[rows]`` for any row order, read chunk-block by chunk-block (bounded memory, few calls)."""
    if rows is None:
        return ds[()]
    rows = np.asarray(rows, dtype=np.int64)
    uniq, inverse = np.unique(rows, return_inverse=True)
    out = np.empty((len(uniq), *ds.shape[1:]), dtype=ds.dtype)
    block = ds.chunks[0] if ds.chunks else 4096
    blocks = uniq // block
    bounds = np.flatnonzero(np.diff(blocks)) + 1
    for part in np.split(np.arange(len(uniq)), bounds):
        if len(part) == 0:
            continue
        lo, hi = int(uniq[part[0]]), int(uniq[part[-1]]) + 1
        out[part] = ds[lo:hi][uniq[part] - lo]
    return out[inverse]


def _nonfinite_rows(values: np.ndarray) -> np.ndarray:
    """Boolean per row: any NaN/inf (float16 checked on its exponent bits: numpy's float16 math is slow)."""
    flat = values.reshape(len(values), int(np.prod(values.shape[1:])))
    if flat.dtype == np.float16:
        return ((flat.view(np.uint16) & 0x7C00) == 0x7C00).any(axis=1)
    return ~np.isfinite(flat).all(axis=1)


def _nonfinite_done(values: np.ndarray, rows, done: np.ndarray, n: int) -> np.ndarray:
    """Store rows among ``rows`` (all when None) that are done (``done``: bool (n,)) but hold NaN/inf."""
    if values.dtype.kind != "f":
        return np.zeros(0, np.int64)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    return np.unique(rows[_nonfinite_rows(values) & done[rows]])


def _checksums(g):
    """(``_checksum`` group, its row checksum function) of a checked feature set group; (None, None) without."""
    if "_checksum" not in g:
        return None, None
    return g["_checksum"], ROW_CHECKSUMS[g["_checksum"].attrs.get("algorithm", LEGACY_CHECKSUM)]


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 values (a bijection)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@functools.lru_cache(maxsize=64)
def _word_keys(n_words: int) -> np.ndarray:
    """Odd 64-bit multiplier of each 8-byte word of a row: mix64((j + 1) * 0x9E3779B97F4A7C15) | 1."""
    return _mix64(np.arange(1, n_words + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)


def row_checksums(values: np.ndarray) -> np.ndarray:
    """mulsum64 of each row's raw bytes (uint64; 0 is reserved for "no checksum", so it maps to 1).

    The row as little-endian uint64 words w_j (zero-padded to a multiple of 8 bytes): mix64(sum_j k_j * w_j
    mod 2^64), k_j odd. One vectorised pass; a change confined to one 8-byte word (a flipped byte) always
    changes the sum, since an odd multiplier keeps any non-zero difference non-zero modulo 2^64."""
    flat = np.ascontiguousarray(values).reshape(len(values), -1 if len(values) else 0).view(np.uint8)
    if flat.shape[1] % 8:
        flat = np.pad(flat, ((0, 0), (0, -flat.shape[1] % 8)))
    words = flat.view("<u8")
    out = _mix64(np.einsum("ij,j->i", words, _word_keys(words.shape[1])))
    out[out == 0] = 1
    return out


def _xxh3_rows(values: np.ndarray) -> np.ndarray:
    """xxh3-64 of each row's raw bytes, the checksum of feature sets written by schema 2 (0 maps to 1)."""
    rows = np.ascontiguousarray(values).reshape(len(values), -1).view(np.uint8)
    out = np.fromiter(map(xxhash.xxh3_64_intdigest, rows), dtype=np.uint64, count=len(rows))
    out[out == 0] = 1
    return out


ROW_CHECKSUMS = {CHECKSUM: row_checksums, LEGACY_CHECKSUM: _xxh3_rows}  # value of the `_checksum` group's `algorithm`


def _damaged_guard(method):
    """Turn the errors h5py raises on a damaged file (bad header, bad B-tree, bad JSON) into one StoreError."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (KeyError, OSError, RuntimeError, TypeError, AttributeError, ValueError) as e:
            raise StoreError(f"store {self.path} is damaged ({_first_line(e)}); run `memeprobe store verify` on it, "
                             "then rebuild it with --overwrite or a new --store path") from None
    return guarded


def _first_line(e: Exception) -> str:
    text = str(e).strip().strip('"').splitlines()
    return text[0] if text else type(e).__name__


def _describe_os_error(path: Path, e: Exception) -> str:
    text = (str(e).splitlines() or [type(e).__name__])[0]
    full = getattr(e, "errno", None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or any(
        f"errno = {n}," in str(e) for n in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT))
    if full:
        return f"cannot write store {path}: the disk is full ({text}); free space or use another --store path"
    if getattr(e, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write store {path}: {text}; choose a writable --store path"
    return f"cannot write store {path}: {text}"


def _label_arrays(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The meme table's ``label`` (n,) and ``labels`` (n, K) of ``dataset``; -1 = unlabeled."""
    label = np.array([-1 if m.label is None else m.label for m in dataset.memes], dtype=np.int8)
    labels = np.full((len(dataset.memes), len(dataset.label_names)), -1, dtype=np.int8)
    for i, m in enumerate(dataset.memes):
        if m.labels is not None:
            labels[i] = m.labels
    return label, labels


def _write_labels(f: h5py.File, dataset: Dataset) -> None:
    """Write (or replace) the labels, spans, label names and dataset options of the meme table."""
    g = f["memes"]
    for key in ("label", "labels", "spans"):
        if key in g:
            del g[key]
    label, labels = _label_arrays(dataset)
    g.create_dataset("label", data=label, track_times=False)
    g.create_dataset("labels", data=labels, track_times=False)
    span_table.write_table(g, dataset.memes)
    f.attrs.update({"label_names": dumps(list(dataset.label_names)), "binary_name": dumps(dataset.binary_name),
                    "dataset_options": dumps(dataset.options)})
    f.attrs["labels_sha256"] = layout.labels_sha256(f)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


class FeatureStore:
    """A dataset's meme table and feature sets in one HDF5 file. Use the class methods to get one."""

    def __init__(self, path: Path, writable: bool, lock: WriterLock | None = None):
        self.path = Path(path)
        self._real = _real(self.path)  # a symlinked store path: every file operation acts on its target
        self.writable = writable
        self._lock = lock
        self._f: h5py.File | None = None
        self.label_update: str | None = None  # set by open_or_create when it rewrote the labels
        self._broken = False  # set when the file was truncated or replaced under this writer
        self._reopen()

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, path, dataset: Dataset, overwrite: bool = False) -> "FeatureStore":
        """Write a new store for ``dataset`` (atomically: a kill leaves no store or a complete one); writer."""
        path = Path(path)
        cls._check_dataset(dataset)
        lock = WriterLock(_real(path))
        try:
            if path.exists() and not overwrite:
                raise MemeprobeError(f"store {path} already exists; use another --store path or --overwrite")
            cls._clean_temps(_real(path))
            cls._write_new(_real(path), dataset)
            return cls(path, writable=True, lock=lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open_or_create(cls, path, dataset: Dataset, overwrite: bool = False) -> "FeatureStore":
        """Writer on ``path``: opened when it holds ``dataset`` (same fingerprint), created when absent.

        A store of another dataset is refused unless ``overwrite`` (then rebuilt empty)."""
        path = Path(path)
        if not path.exists():
            return cls.create(path, dataset)
        lock = WriterLock(_real(path))
        try:
            cls._clean_temps(_real(path))
            st = cls(path, writable=True)
            try:  # a damaged meme table is rebuilt (overwrite) or refused; damaged labels are rewritten below
                st._check_content(labels=False)
            except BaseException:
                st._close_quietly()
                raise
            st._lock = lock
        except MemeprobeError:
            if not overwrite:  # not a store, or a newer schema: only --overwrite may replace it
                lock.release()
                raise
            try:
                cls._write_new(_real(path), dataset)
                return cls(path, writable=True, lock=lock)
            except BaseException:
                lock.release()
                raise
        except BaseException:
            lock.release()
            raise
        fp = dataset.fingerprint()
        if st._attr("dataset_fingerprint") == fp:
            try:
                if int(st._attr("schema_version")) < SCHEMA_VERSION:
                    st._migrate()
                st.label_update = st._update_labels(dataset)
            except BaseException:
                st.close()
                raise
            return st
        if not overwrite:
            msg = (f"store {path} holds another dataset: {st._attr('dataset_format')} at {st._attr('dataset_root')} "
                   f"({st.n} memes, fingerprint {st._attr('dataset_fingerprint')[:12]}), not {dataset.format} at "
                   f"{dataset.root} ({len(dataset.memes)} memes, fingerprint {fp[:12]}); {_FIX}")
            st.close()
            raise MemeprobeError(msg)
        st._f.close()
        st._f = None
        try:
            cls._write_new(st._real, dataset)
            st._reopen()
        except BaseException:
            st.close()
            raise
        return st

    @classmethod
    def open_writer(cls, path) -> "FeatureStore":
        """Writer on an existing store, whichever dataset it holds (e.g. to import features into it); an older
        schema is upgraded as by :meth:`open_or_create`."""
        path = Path(path)
        if not path.exists():
            raise StoreError(f"store {path} does not exist; create it with `memeprobe featurize ... --store {path}`")
        lock = WriterLock(_real(path))
        try:
            cls._clean_temps(_real(path))
            st = cls(path, writable=True, lock=lock)
        except BaseException:
            lock.release()
            raise
        try:
            if int(st._attr("schema_version")) < SCHEMA_VERSION:
                st._migrate()
        except BaseException:
            st.close()
            raise
        return st

    @classmethod
    def open(cls, path) -> "FeatureStore":
        """Reader: never takes the lock, never blocks or crashes while a writer appends."""
        path = Path(path)
        if not path.exists():
            raise MemeprobeError(f"store {path} does not exist; create it with `memeprobe featurize ... --store {path}`")
        return cls(path, writable=False)

    def close(self) -> None:
        if self._broken:  # HDF5 cannot flush into a truncated or replaced file: the error was reported already
            self._close_quietly()
        if self._f is not None:
            try:
                self._f.close()
            except (OSError, RuntimeError) as e:
                raise StoreError(_describe_os_error(self.path, e)) from None
            finally:
                self._f = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"FeatureStore({str(self.path)!r}, n={self.n}, feature_sets={self.feature_sets()}, writable={self.writable})"

    def _reopen(self) -> None:
        if self._f is not None:
            self._f.close()
        try:
            self._f = _h5open(self._real, "r+" if self.writable else "r")
        except (OSError, ValueError) as e:
            if self.writable and not os.access(self.path, os.W_OK):
                raise MemeprobeError(f"cannot write store {self.path}: permission denied; "
                                     "choose a writable --store path") from None
            raise MemeprobeError(f"{self.path} is not a readable HDF5 file ({str(e).splitlines()[0]}); "
                                 "is it a memeprobe store?") from None
        self._checked: set[str] = set()  # feature sets whose layout was checked since this open
        self._content_checked = False
        try:
            self._check_schema()
            self._load_table()
        except (KeyError, ValueError, TypeError, OSError, RuntimeError) as e:
            self._close_quietly()
            raise StoreError(f"store {self.path} is damaged ({_first_line(e)}); {REBUILD}") from None
        except BaseException:
            self._close_quietly()
            raise
        self._fd = self._f.id.get_vfd_handle() if self.writable else None
        self._size = os.fstat(self._fd).st_size if self.writable else None  # row writes never change it

    def _damage(self, problems: list[str], fix: str = REBUILD, verify: bool = True) -> StoreError:
        """The one line for a damaged store: the first problem, how many more, and the fix (``verify``: name
        ``memeprobe store verify``, which lists them all; not for damage that keeps the store from opening)."""
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        listed = "`memeprobe store verify` lists what is wrong; " if verify else ""
        return StoreError(f"store {self.path} is damaged: {problems[0]}{more}; {listed}{fix}")

    def _close_quietly(self) -> None:
        """Close after an error: the first error is the one to report, not HDF5's complaints on closing."""
        f, self._f = self._f, None
        try:
            f.close()
        except Exception:  # noqa: BLE001 - HDF5 may fail to flush a damaged or unwritable file
            pass

    def _check_schema(self) -> None:
        if self._f.attrs.get("kind") != MAGIC:
            raise MemeprobeError(f"{self.path} is an HDF5 file but not a memeprobe store (no kind={MAGIC!r} "
                                 "attribute); give a store written by `memeprobe featurize`")
        version = self._f.attrs.get("schema_version")
        if not isinstance(version, (int, np.integer)) or isinstance(version, (bool, np.bool_)) or version < 1:
            raise self._damage([f"root attribute 'schema_version' is {version!r}, not a schema number"], verify=False)
        self.schema_version = int(version)
        if version > SCHEMA_VERSION:
            raise MemeprobeError(
                f"store {self.path} was written by a newer memeprobe (schema {version} > {SCHEMA_VERSION}, "
                f"written by memeprobe {self._attr('memeprobe_version')}); upgrade memeprobe")

    def _attr(self, key: str):
        return self._f.attrs.get(key)

    def _load_table(self) -> None:
        """Check the root attributes and the meme table's layout, then read the table."""
        root, problems = layout.read_root(self._f)
        if not problems:
            problems = layout.table_problems(self._f, len(root["label_names"]), self.schema_version)
        if problems:
            raise self._damage(problems, verify=False)
        m = self._f["memes"]
        columns = {k: m[key].asstr()[()] for k, key in (("splits", "split"), ("ids", "id"), ("texts", "text"),
                                                         ("images", "image"))}  # object arrays of str
        t = self._table = SimpleNamespace(**{k: np.array(v, dtype=str) for k, v in columns.items()},
                                          label=m["label"][()], labels=m["labels"][()],
                                          fingerprint=layout.table_fingerprint(*columns.values()))
        self.n = len(t.ids)
        self.label_names = tuple(root["label_names"])
        self.binary_name = root["binary_name"]
        self.dataset_options = root.get("dataset_options", {})  # {} for stores written before they were kept
        labelled = (t.labels >= 0).any(axis=1) if t.labels.shape[1] else np.zeros(self.n, bool)
        t.spans = span_table.read_table(m, labelled)  # per row: tuple of Span, or None where unknown

    def _check_content(self, labels: bool = True) -> None:
        """Before the first load of this open store: the meme table holds what its fingerprint says (one hash)
        and, with ``labels``, its labels what their digest says (-1/0/1 values, spans inside their texts).
        Raises the one-line damage error."""
        if not self._content_checked:
            problems = layout.content_problems(self._table, self._attr("dataset_fingerprint"))
            if problems:
                raise self._damage(problems)
            if not labels:
                return
            problems = layout.label_problems(self._f, self._table, len(self.label_names), self.schema_version)
            if problems:
                raise self._damage(problems, RELABEL)
            self._content_checked = True

    # the meme table, checked (:meth:`_check_content`) on first access: per row, as in the dataset
    ids = property(lambda self: self._checked_table().ids, doc="id of every row")
    splits = property(lambda self: self._checked_table().splits, doc="split of every row")
    texts = property(lambda self: self._checked_table().texts, doc="text of every row")
    images = property(lambda self: self._checked_table().images, doc='image path of every row ("" = none)')
    label = property(lambda self: self._checked_table().label, doc="binary label (n,) int8, -1 = unlabeled")
    labels = property(lambda self: self._checked_table().labels, doc="multi-hot (n, K) int8, -1 = unlabeled")
    spans = property(lambda self: self._checked_table().spans, doc="tuple of Span per row, None where unknown")

    def _checked_table(self) -> SimpleNamespace:
        self._check_content()
        return self._table

    # ------------------------------------------------------------------ structural changes (copy-on-write)
    @staticmethod
    def _temp(path: Path) -> Path:
        return path.with_name(f"{path.name}.tmp-{os.getpid()}")

    @staticmethod
    def _clean_temps(path: Path) -> None:
        """Remove temp files a killed writer left behind (we hold the lock, so none is in use)."""
        for p in path.parent.glob(f"{path.name}.tmp-*"):
            p.unlink(missing_ok=True)

    @classmethod
    def _commit(cls, path: Path, build, need_bytes: int, source: Path | None = None) -> None:
        """Write a complete new file to a temp path, fsync it, rename it over ``path`` atomically.

        The temp file starts as a copy of ``source`` (or an empty HDF5 file) and is extended by ``need_bytes``
        with posix_fallocate before HDF5 writes to it, so a full disk fails here, cleanly, in Python (HDF5
        truncates the file to its real size on close). ``build(f)`` then edits the open temp file."""
        tmp = cls._temp(path)
        try:
            if source is None:
                h5py.File(tmp, "w", locking=False).close()
            else:
                shutil.copyfile(source, tmp)  # in-kernel copy
            fd = os.open(tmp, os.O_RDWR)
            try:
                try:
                    os.posix_fallocate(fd, 0, os.fstat(fd).st_size + int(need_bytes))
                except OSError as e:
                    if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                with h5py.File(tmp, "r+", locking=False) as f:
                    build(f)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            fsync_dir(path)
        except MemeprobeError:
            tmp.unlink(missing_ok=True)
            raise
        except (OSError, RuntimeError, ValueError) as e:
            tmp.unlink(missing_ok=True)
            raise MemeprobeError(_describe_os_error(path, e)) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @staticmethod
    def _check_dataset(dataset: Dataset) -> None:
        """Refuse, before anything is written, a dataset the meme table cannot hold."""
        if not dataset.memes:
            raise MemeprobeError(f"dataset {dataset.root} has no memes; nothing to store")
        seen = set()
        for m in dataset.memes:
            if (m.split, m.id) in seen:
                raise MemeprobeError(f"dataset {dataset.root}: id {m.id} appears twice in split {m.split}; "
                                     "fix the annotations so (split, id) is unique")
            seen.add((m.split, m.id))
        k = len(dataset.label_names)
        for m in dataset.memes:
            if m.labels is not None and len(m.labels) != k:
                raise MemeprobeError(f"dataset {dataset.root}: meme {m.split}/{m.id} has {len(m.labels)} labels "
                                     f"but the dataset names {k}")

    @classmethod
    def _write_new(cls, path: Path, dataset: Dataset) -> None:
        cls._check_dataset(dataset)
        k = len(dataset.label_names)
        memes = dataset.memes
        columns = {"id": [m.id for m in memes], "split": [m.split for m in memes],
                   "text": [m.text for m in memes], "image": [m.image or "" for m in memes]}
        text_bytes = sum(len(v.encode("utf-8")) for col in columns.values() for v in col)

        def build(f: h5py.File):
            f.attrs.update({
                "kind": MAGIC, "schema_version": SCHEMA_VERSION, "memeprobe_version": __version__,
                "created": now(), "dataset_format": dataset.format, "dataset_root": str(dataset.root),
                "dataset_fingerprint": dataset.fingerprint()})
            g = f.create_group("memes")
            for key, values in columns.items():
                g.create_dataset(key, data=np.array(values, dtype=object), dtype=_STR, track_times=False)
            _write_labels(f, dataset)
            f.create_group("features")

        cls._commit(path, build, need_bytes=2 * text_bytes + len(memes) * (4 * 48 + 1 + k) + (1 << 20)
                    + span_table.span_bytes(memes))

    def _migrate(self) -> None:
        """Upgrade an older schema in place (copy-on-write), keeping every feature set."""
        def edit(f: h5py.File):
            if int(f.attrs["schema_version"]) < 2:
                span_table.migrate_v1(f)
            for g in f["features"].values():  # schema 2 checksummed rows with xxh3-64: name it, keep verifying it
                if "_checksum" in g and "algorithm" not in g["_checksum"].attrs:
                    g["_checksum"].attrs["algorithm"] = LEGACY_CHECKSUM
            f.attrs["schema_version"] = SCHEMA_VERSION

        self._restructure(edit, need_bytes=1 << 20)

    def _restructure(self, edit, need_bytes: int, drop: str | None = None) -> None:
        """Copy-on-write structural change: copy the file (leaving out feature set ``drop``), ``edit`` the copy,
        rename it over the store. A kill at any moment leaves the old or the new file, both complete."""
        self._need_writer()
        self._sync()
        self._f.close()
        self._f = None

        def build(f: h5py.File):
            if drop is not None:
                with h5py.File(self._real, "r", locking=False) as src:
                    f.attrs.update(dict(src.attrs))
                    src.copy(src["memes"], f, "memes")
                    f.create_group("features")
                    for name in src["features"]:
                        if name != drop:
                            src.copy(src["features"][name], f["features"], name)
            edit(f)

        try:
            self._check_writer()
            if drop is None:
                self._commit(self._real, build, need_bytes, source=self._real)
            else:
                self._commit(self._real, build, need_bytes + self._real.stat().st_size)
        finally:
            self._reopen()

    def _update_labels(self, dataset: Dataset) -> str | None:
        """Rewrite the labels (label names, spans, dataset options) when ``dataset`` (same memes) labels them
        otherwise: labels are not features. Copy-on-write; returns what changed, None when nothing did."""
        label, labels = _label_arrays(dataset)
        t = self._table  # (unchecked: damaged labels are what this rewrites)
        damaged = layout.label_problems(self._f, t, len(self.label_names), self.schema_version)
        if (not damaged and self.label_names == tuple(dataset.label_names) and self.binary_name == dataset.binary_name
                and np.array_equal(t.label, label) and np.array_equal(t.labels, labels)):
            if self.dataset_options != dataset.options:  # same labels: only the record of the options
                self._check_writer()
                self._f.attrs["dataset_options"] = dumps(dataset.options)
                self._sync()
                self.dataset_options, self._size = dataset.options, os.fstat(self._fd).st_size
            return None
        old_names = list(self.label_names) or [self.binary_name]
        changed = int(np.sum(t.label != label)) + (
            int(np.sum((t.labels != labels).any(axis=1))) if t.labels.shape == labels.shape else self.n)
        self._restructure(lambda f: _write_labels(f, dataset),
                          need_bytes=self.n * (1 + labels.shape[1]) + span_table.span_bytes(dataset.memes))
        new_names = list(dataset.label_names) or [dataset.binary_name]
        why = f" (the stored ones were damaged: {damaged[0]})" if damaged else ""
        return (f"store {self.path}: labels updated from the dataset{why} ({changed} row label(s) changed; label "
                f"names {old_names} -> {new_names}); feature sets kept")

    # ------------------------------------------------------------------ meme table
    @property
    def dataset_fingerprint(self) -> str:
        """``Dataset.fingerprint()`` of the memes the store was built from (checked against the table on load)."""
        return str(self._attr("dataset_fingerprint"))

    @property
    def dataset_format(self) -> str:
        return str(self._attr("dataset_format"))

    def split_names(self) -> list[str]:
        """Split names in first-seen row order."""
        return list(dict.fromkeys(self.splits.tolist()))

    def rows(self, splits=None) -> np.ndarray:
        """Row indices (ascending) of the memes in ``splits`` (a name or list; None = all)."""
        self._check_content()
        if splits is None:
            return np.arange(self.n)
        if isinstance(splits, str):
            splits = [splits]
        unknown = [s for s in splits if s not in set(self.split_names())]
        if unknown:
            raise StoreError(f"store {self.path} has no split {', '.join(unknown)} "
                             f"(it has: {', '.join(self.split_names())})")
        return np.flatnonzero(np.isin(self.splits, list(splits)))

    # ------------------------------------------------------------------ feature sets
    @_damaged_guard
    def feature_sets(self) -> list[str]:
        return sorted(self._f["features"])

    def _raw(self, name: str):
        """The HDF5 object of feature set ``name``, unchecked (see :meth:`_group`)."""
        if name not in self._f["features"]:
            have = ", ".join(self.feature_sets()) or "none"
            raise MemeprobeError(f"store {self.path} has no feature set {name!r} (it has: {have}); "
                                 "run `memeprobe featurize` first")
        return self._f["features"][name]

    def _group(self, name: str) -> h5py.Group:
        """Feature set ``name``, its layout checked on first use (and the meme table's contents before that)."""
        g = self._raw(name)
        if name not in self._checked:
            self._check_content()
            problems = layout.set_problems(g, name, self.n, ROW_CHECKSUMS, lost=False)  # lost: see read()
            if problems:
                raise self._damage(problems, REBUILD_SET)
            self._checked.add(name)
        return g

    @_damaged_guard
    def arrays(self, name: str) -> dict[str, ArraySpec]:
        try:
            return layout.read_arrays(self._raw(name), name)
        except ValueError as e:
            raise self._damage([str(e)], REBUILD_SET) from None

    def array_specs(self, name: str, arrays) -> dict[str, ArraySpec]:
        """The specs of ``arrays`` of feature set ``name``; StoreError naming those it does not have."""
        spec = self.arrays(name)
        missing = [a for a in arrays if a not in spec]
        if missing:
            raise StoreError(f"feature set {name!r} has no array {', '.join(map(repr, missing))} "
                             f"(it has: {', '.join(spec)})")
        return {a: spec[a] for a in arrays}

    @_damaged_guard
    def modalities(self, name: str) -> list[str]:
        return sorted({s.modality for s in self.arrays(name).values()})

    @_damaged_guard
    def provenance(self, name: str) -> dict:
        return layout.parse_json(self._group(name).attrs["provenance"])

    def add_feature_set(self, name: str, arrays: dict[str, ArraySpec], provenance: dict, overwrite: bool = False) -> None:
        """Declare feature set ``name``; a no-op when it exists with the same arrays and identity (resume)."""
        self._need_writer()
        check_feature_set_name(name)
        if not arrays:
            raise MemeprobeError(f"feature set {name!r} needs at least one array")
        for a, spec in arrays.items():
            check_array_name(a)
            if not isinstance(spec, ArraySpec):
                raise MemeprobeError(f"array {a!r} of feature set {name!r}: expected an ArraySpec, got {spec!r}")
        provenance = dict(provenance)
        dumps(provenance)
        spec_json = dumps({a: s.to_json() for a, s in arrays.items()})
        identity = dumps({k: provenance.get(k) for k in IDENTITY_KEYS})
        exists = name in self._f["features"]
        if exists:
            g = self._f["features"][name]
            damaged = layout.set_problems(g, name, self.n, ROW_CHECKSUMS)
            if not damaged and g.attrs["arrays"] == spec_json and g.attrs["identity"] == identity:
                return
            if damaged and not overwrite:
                raise self._damage(damaged, REBUILD_SET)
            if not overwrite:
                raise MemeprobeError(
                    f"store {self.path} already has feature set {name!r} with other arrays or identity "
                    f"(stored {g.attrs['identity']}, given {identity}); use another feature set name, "
                    "another --store path, or --overwrite to replace it")
        stamp = now()
        provenance.update({"library_versions": library_versions(), "memeprobe_version": __version__,
                           "created": stamp})
        n = self.n

        def edit(f: h5py.File):
            g = f["features"].create_group(name)
            g.attrs.update({"arrays": spec_json, "identity": identity, "provenance": dumps(provenance),
                            "created": stamp, layout.CHECKSUMMED: np.int8(1)})
            for a, spec in arrays.items():
                _create(g, a, n, spec).attrs["modality"] = spec.modality
            for mod in sorted({s.modality for s in arrays.values()}):
                _create(g.require_group("_status"), mod, n, ArraySpec((), mod, "uint8"), TODO)
                reasons = g.require_group("_reason").create_dataset(
                    mod, shape=(n,), dtype=f"S{REASON_BYTES}", track_times=False,
                    dcpl=_dcpl((n,), (max(1, min(n, 4096)),), None))
                reasons.attrs["encoding"] = "utf-8"
            g.create_group("_checksum").attrs["algorithm"] = CHECKSUM
            for a in arrays:
                g["_checksum"].create_dataset(a, shape=(n,), dtype=np.uint64, track_times=False,
                                                            dcpl=_dcpl((n,), (max(1, min(n, 8192)),), None))

        row_bytes = sum(int(np.prod(s.shape)) * np.dtype(s.dtype).itemsize for s in arrays.values())
        n_mod = len({s.modality for s in arrays.values()})
        data = n * (row_bytes + n_mod * (1 + REASON_BYTES) + 8 * len(arrays))
        self._restructure(edit, need_bytes=data + data // 50 + (1 << 20), drop=name if exists else None)

    # ------------------------------------------------------------------ rows
    @_damaged_guard
    def status(self, name: str, modality: str) -> np.ndarray:
        """Per-row status of ``modality`` in feature set ``name``: 0 to do, 1 done, 2 failed.

        A status byte that is none of these is damage: a reader refuses it; a writer treats the row as to do
        (``featurize`` redoes it: values, checksum, then status)."""
        g = self._group(name)
        if modality not in g["_status"]:
            raise MemeprobeError(f"feature set {name!r} has no modality {modality!r} "
                                 f"(it has: {', '.join(self.modalities(name))})")
        values = g["_status"][modality][()]
        bad = layout.unknown_status(values)
        if len(bad) and not self.writable:
            raise StoreError(f"store {self.path} is damaged: feature set {name!r} status {modality!r} holds values "
                             f"other than 0, 1, 2 in {len(bad)} rows (e.g. {layout.rows_named(self, bad)}), so "
                             "whether they were computed is unknown; run `memeprobe featurize` on this store "
                             "again: it redoes those rows")
        values[bad] = TODO
        return values

    def _check_rows(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.n):
            raise MemeprobeError(f"store {self.path}: row indices must be in [0, {self.n}); got {rows.min()}..{rows.max()}")
        if len(np.unique(rows)) != len(rows):
            raise MemeprobeError(f"store {self.path}: row indices given to write must be unique")
        return rows

    def write_rows(self, name: str, rows, values: dict[str, np.ndarray], modality: str) -> None:
        """Write every array of ``modality`` for ``rows``, then mark them done; durable when it returns."""
        self._need_writer()
        g = self._group(name)
        spec = {a: s for a, s in self.arrays(name).items() if s.modality == modality}
        if not spec:
            raise MemeprobeError(f"feature set {name!r} has no arrays of modality {modality!r}")
        if set(values) != set(spec):
            raise MemeprobeError(f"write_rows({name!r}, modality={modality!r}) needs exactly the arrays "
                                 f"{sorted(spec)}; got {sorted(values)}")
        rows = self._check_rows(rows)
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        data = {a: self._prepare(name, a, s, values[a], rows, order) for a, s in spec.items()}
        if not len(rows):
            return
        status = g["_status"][modality]
        sums, checksum = _checksums(g)
        if layout.lost_checksums(g):
            raise self._damage([f"feature set {name!r}: {layout.LOST}"], REBUILD_SET)
        try:
            self._check_writer()
            if (_read_rows(status, rows) == DONE).any():  # rewriting done rows: un-mark them first
                self._write_runs(status, rows, np.full(len(rows), TODO, np.uint8))
                self._sync()
            for a, v in data.items():
                self._write_runs(g[a], rows, v)
                if sums is not None:
                    self._write_runs(sums[a], rows, checksum(v))
            self._sync()
            self._check_writer()
            self._write_runs(status, rows, np.full(len(rows), DONE, np.uint8))
            self._sync()
        except (OSError, RuntimeError) as e:
            raise MemeprobeError(_describe_os_error(self.path, e) + " (the rows of this batch are not marked done)") from None

    def _prepare(self, name, array, spec: ArraySpec, value, rows, order) -> np.ndarray:
        v = np.asarray(value)
        want = (len(rows), *spec.shape)
        if v.shape != want:
            raise MemeprobeError(f"feature set {name!r} array {array!r}: values have shape {v.shape}, expected {want}")
        with np.errstate(over="ignore", invalid="ignore"):
            out = v[order].astype(spec.dtype)
        if out.dtype.kind == "f":
            bad = _nonfinite_rows(out)
            if bad.any():
                first = ", ".join(f"{self.splits[r]}/{self.ids[r]}" for r in rows[bad][:5])
                raise MemeprobeError(
                    f"feature set {name!r} array {array!r}: {int(bad.sum())} rows hold NaN/inf after conversion to "
                    f"{spec.dtype} (e.g. {first}); mark them failed, or store the array as float32")
        elif not np.array_equal(out, v[order]):
            raise MemeprobeError(f"feature set {name!r} array {array!r}: values do not fit {spec.dtype} exactly")
        return out

    @staticmethod
    def _write_runs(ds: h5py.Dataset, rows: np.ndarray, data: np.ndarray) -> None:
        for start, stop, at in _runs(rows):
            ds[start:stop] = data[at:at + stop - start]

    def _check_writer(self) -> None:
        """Before a commit: the lock on disk is still ours and the store path still names the file we have open
        (an unlinked lock lets a second writer in, whose structural change would orphan our file)."""
        self._lock.check()
        if self._f is not None:
            try:
                st = os.stat(self._real)
                same = (st.st_dev, st.st_ino) == (lambda o: (o.st_dev, o.st_ino))(os.fstat(self._fd))
            except FileNotFoundError:
                same = False
            if not same:
                raise StoreLockedError(
                    f"store {self.path} was replaced by another process while this one was writing; stopped "
                    "without marking this batch done (re-run the command once no other writer runs: it resumes)")
            size = os.fstat(self._fd).st_size
            if size != self._size:  # row writes never change it: the file was truncated (or grown) under us
                self._broken = True
                raise StoreError(
                    f"store {self.path} changed size under this writer ({self._size} -> {size} bytes: truncated or "
                    "overwritten by another program); stopped without marking this batch done; the store is "
                    f"damaged: check it with `memeprobe store verify`, then {REBUILD}")

    def _sync(self) -> None:
        self._f.flush()
        os.fsync(self._fd)

    def mark_failed(self, name: str, rows, modality: str, reasons) -> None:
        """Mark ``rows`` failed for ``modality`` with one reason each (a single string applies to all)."""
        self._need_writer()
        g = self._group(name)
        self.status(name, modality)
        rows = self._check_rows(rows)
        if isinstance(reasons, str):
            reasons = [reasons] * len(rows)
        if len(reasons) != len(rows):
            raise MemeprobeError(f"mark_failed: {len(rows)} rows but {len(reasons)} reasons")
        order = np.argsort(rows, kind="stable")
        enc = np.array([str(reasons[i]).encode("utf-8")[:REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
                        for i in order], dtype=f"S{REASON_BYTES}")
        rows = rows[order]
        try:
            self._check_writer()
            self._write_runs(g["_reason"][modality], rows, enc)
            self._sync()
            self._check_writer()
            self._write_runs(g["_status"][modality], rows, np.full(len(rows), FAILED, np.uint8))
            self._sync()
        except (OSError, RuntimeError) as e:
            raise MemeprobeError(_describe_os_error(self.path, e)) from None

    @_damaged_guard
    def failures(self, name: str) -> list[tuple[int, str, str]]:
        """(row, modality, reason) of every failed row, by row then modality."""
        g = self._group(name)
        out = []
        for mod in self.modalities(name):
            status = g["_status"][mod][()]
            rows = np.flatnonzero(status == FAILED)
            reasons = _read_rows(g["_reason"][mod], rows)
            out += [(int(r), mod, bytes(x).decode("utf-8", "replace")) for r, x in zip(rows, reasons)]
        return sorted(out)

    @_damaged_guard
    def read(self, name: str, array: str, rows=None, check: bool = True) -> np.ndarray:
        """Raw stored values of one array (all rows, or ``rows`` in the order given).

        ``check``: done rows must match the checksum written with them, or in a set written before checksums
        hold no NaN/inf (StoreError naming the rows if not); a set that lost its checksums is refused."""
        g = self._group(name)
        modality = self.array_specs(name, [array])[array].modality
        # status before values: a row done by then was written (and flushed) before it, even with a live writer
        done = self.status(name, modality) == DONE if check else None
        values = _read_rows(g[array], rows)
        if not check:
            return values
        sums, _ = _checksums(g)
        lost = layout.lost_checksums(g)
        if sums is not None and array in sums:
            bad, what = self._checksum_failures(g, array, modality, values, rows, done), "do not match their checksum"
        else:
            bad = _nonfinite_done(values, rows, done, self.n)
            what = "hold NaN/inf" + ("" if lost else " (the set has no checksums: it was written before them)")
        found = f"{len(bad)} done rows of {name}/{array} {what} (e.g. {layout.rows_named(self, bad)})"
        if lost:
            raise self._damage([f"feature set {name!r}: {layout.LOST}, so its rows cannot be checked"
                                + (f"; {found}" if len(bad) else "")], REBUILD_SET)
        if len(bad):
            raise StoreError(f"store {self.path} is damaged: {found}; run `memeprobe store verify`, then "
                             "re-featurize with --overwrite or a new --store path")
        return values

    def _checksum_failures(self, g, array, modality, values, rows, done) -> np.ndarray:
        """Store rows among ``rows`` (all when None) of set group ``g`` that were done (``done``: the status, read
        before ``values`` were) but whose values differ from their checksum."""
        sums, checksum = _checksums(g)
        if sums is None or array not in sums:
            return np.zeros(0, np.int64)
        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
        done = done[rows]
        if not done.all():  # (a copy: skipped in the common case, every row done)
            if not done.any():
                return np.zeros(0, np.int64)
            rows, values = rows[done], values[done]
        bad = rows[checksum(values) != _read_rows(sums[array], rows)]
        if len(bad):  # a writer may have re-written those rows meanwhile: read them again, status first
            bad = bad[g["_status"][modality][()][bad] == DONE]
            bad = bad[checksum(_read_rows(g[array], bad)) != _read_rows(sums[array], bad)]
        return np.unique(bad)

    @_damaged_guard
    def unchecked_rows(self, name: str) -> int:
        """Done rows (summed over arrays) that carry no checksum: written before checksums existed."""
        g = self._raw(name)
        spec = self.arrays(name)
        _, sound = layout.check_set(g, name, self.n, ROW_CHECKSUMS)
        return sum(int((g["_status"][s.modality][()] == DONE).sum()) for a, s in spec.items()
                   if ("_checksum", a) not in sound and ("_status", s.modality) in sound)

    @_damaged_guard
    def done(self, name: str, arrays: list[str]) -> np.ndarray:
        """Boolean (n,): rows done in every modality that ``arrays`` belong to."""
        spec = self.array_specs(name, arrays)
        ok = np.ones(self.n, dtype=bool)
        for mod in sorted({spec[a].modality for a in arrays}):
            ok &= self.status(name, mod) == DONE
        return ok

    @_damaged_guard
    def select_rows(self, name: str, arrays: list[str], splits=None, missing: str = "error") -> np.ndarray:
        """Rows of ``splits`` whose ``arrays`` are done; missing="error" refuses any row not done."""
        if isinstance(arrays, str):
            arrays = [arrays]
        if not arrays:
            raise MemeprobeError(f"feature set {name!r}: give at least one array")
        if missing not in ("error", "drop"):
            raise MemeprobeError(f"missing must be 'error' or 'drop', not {missing!r}")
        rows = self.rows(splits)
        ok = self.done(name, arrays)[rows]
        if ok.all():
            return rows
        if missing == "drop":
            return rows[ok]
        spec = self.arrays(name)
        counts = []
        for mod in sorted({spec[a].modality for a in arrays}):
            st = self.status(name, mod)[rows]
            parts = [f"{int((st == c).sum())} {STATUS_NAMES[c]}" for c in (TODO, FAILED) if (st == c).any()]
            if parts:
                counts.append(f"{mod}: {', '.join(parts)}")
        where = ", ".join(f"{self.splits[r]}/{self.ids[r]}" for r in rows[~ok][:5])
        raise MemeprobeError(
            f"feature set {name!r}: {int((~ok).sum())} of {len(rows)} selected rows are not done "
            f"({'; '.join(counts)}), e.g. {where}; finish them with `memeprobe featurize` (`memeprobe store import` "
            "for an imported set) or load with missing='drop'")

    @_damaged_guard
    def load_rows(self, name: str, arrays: list[str], splits=None, target: str = "auto", missing: str = "error",
                  check: bool = True):
        """Like :meth:`load`, plus the store row index of every returned row: ``(X, ids, y, rows)``."""
        if isinstance(arrays, str):
            arrays = [arrays]
        resolve_target(self, target)
        rows = self.select_rows(name, arrays, splits, missing)  # status first, then values (see SCHEMA.md)
        spec = self.arrays(name)
        parts = [self.read(name, a, rows, check).reshape(len(rows), int(np.prod(spec[a].shape))).astype(np.float32)
                 for a in arrays]
        return np.hstack(parts), self.ids[rows], target_values(self, target, rows), rows

    def load(self, name: str, arrays: list[str], splits=None, target: str = "auto", missing: str = "error",
             check: bool = True):
        """``(X float32 (m, D), ids (m,), y)``: ``arrays`` flattened per row and concatenated, rows in store order.

        ``y``: binary (m,) for target="label", multi-hot (m, K) for "labels", both for "all"; "auto" = binary when
        the dataset has binary labels, else multi-hot; -1 = unlabeled (:mod:`~memeprobe.store.features`). ``missing``: "error" refuses rows not done, "drop" skips them.
        ``check``: verify each done row against its checksum (see :meth:`read`)."""
        return self.load_rows(name, arrays, splits, target, missing, check)[:3]

    # ------------------------------------------------------------------ inspection
    @_damaged_guard
    def info(self) -> dict:
        """Everything worth knowing about the store, JSON-able."""
        self._check_content()
        splits = {}
        for s in self.split_names():
            sel = self.splits == s
            labeled = (self.label[sel] >= 0) | ((self.labels[sel] >= 0).any(axis=1) if self.labels.shape[1] else False)
            splits[s] = {"n": int(sel.sum()), "labeled": int(np.sum(labeled))}
            known = [self.spans[r] for r in np.flatnonzero(sel) if self.spans[r] is not None]
            if known:
                splits[s]["spans"] = sum(len(x) for x in known)
        sets = {}
        for name in self.feature_sets():
            status = {}
            for mod in self.modalities(name):
                st = self.status(name, mod)
                status[mod] = {STATUS_NAMES[c]: int((st == c).sum()) for c in (DONE, FAILED, TODO)}
            sets[name] = {"arrays": {a: s.to_json() for a, s in self.arrays(name).items()},
                          "status": status, "provenance": self.provenance(name)}
        a = self._f.attrs
        return {"path": str(self.path), "file_size": self.path.stat().st_size,
                "schema_version": self.schema_version, "memeprobe_version": str(a["memeprobe_version"]),
                "created": str(a["created"]),
                "dataset": {"format": str(a["dataset_format"]), "root": str(a["dataset_root"]),
                            "fingerprint": str(a["dataset_fingerprint"]), "n": self.n,
                            "label_names": list(self.label_names), "binary_name": self.binary_name,
                            "options": self.dataset_options},
                "splits": splits, "feature_sets": sets}

    @_damaged_guard
    def verify(self) -> list[str]:
        """Problems found (empty list = ok): the meme table's labels, fingerprint, spans and duplicate (split, id);
        every feature set's layout (:mod:`~memeprobe.store.layout`), status values, checksums and NaN/inf of done
        rows. (A store whose attributes or meme table cannot be read does not open.)"""
        problems = (layout.content_problems(self._table, self._attr("dataset_fingerprint"))
                    + layout.label_problems(self._f, self._table, len(self.label_names), self.schema_version))
        keys = list(zip(self._table.splits.tolist(), self._table.ids.tolist()))
        if len(set(keys)) != len(keys):
            dup = [k for k, c in Counter(keys).items() if c > 1][:5]
            problems.append(f"meme table: duplicate (split, id): {', '.join(f'{s}/{i}' for s, i in dup)}")
        for name in self.feature_sets():
            problems += self._verify_set(name)
        return problems

    def _verify_set(self, name: str) -> list[str]:
        """The layout problems of feature set ``name``, then the values of its sound parts."""
        g = self._f["features"][name]
        problems, sound = layout.check_set(g, name, self.n, ROW_CHECKSUMS)
        try:
            spec = layout.read_arrays(g, name)
        except ValueError:
            return problems
        done = {}
        for mod in sorted({s.modality for s in spec.values()} & {m for part, m in sound if part == "_status"}):
            st = g["_status"][mod][()]
            if len(layout.unknown_status(st)):
                problems.append(f"feature set {name!r}: status {mod!r} holds values other than 0, 1, 2")
            done[mod] = st == DONE
        for a, s in spec.items():
            if ("array", a) not in sound or s.modality not in done:
                continue
            ds, checked = g[a], ("_checksum", a) in sound
            bad, mismatch = 0, []
            step = max((ds.chunks or (1,))[0], (64 << 20) // max(1, ds.dtype.itemsize * int(np.prod(s.shape))))
            for lo in range(0, self.n, step):
                rows_done = done[s.modality][lo:lo + step]
                if rows_done.any():
                    block = ds[lo:lo + step]
                    if checked:
                        mismatch.append(self._checksum_failures(g, a, s.modality, block, np.arange(lo, lo + len(block)),
                                                                done[s.modality]))
                    if ds.dtype.kind == "f":
                        bad += int((_nonfinite_rows(block) & rows_done).sum())
            if bad:
                problems.append(f"feature set {name!r} array {a!r}: {bad} done rows hold NaN/inf")
            mismatch = np.concatenate(mismatch) if mismatch else []
            if len(mismatch):
                problems.append(f"feature set {name!r} array {a!r}: {len(mismatch)} done rows do not match their "
                                f"checksum (e.g. {layout.rows_named(self._table, mismatch)})")
        return problems

    def _need_writer(self) -> None:
        if not self.writable:
            raise MemeprobeError(f"store {self.path} is open read-only; open it with "
                                 "FeatureStore.open_or_create(...) to write")
