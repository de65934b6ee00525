"""FeatureStore: one crash-safe HDF5 file per dataset holding its meme table and row-aligned feature sets.

Layout, status codes, crash-safety and locking design: see SCHEMA.md beside this module. The class opens, reads
and writes; beside it: ``files`` (HDF5 handling, the copy-on-write commit), ``checksums`` (row checksums and the
checks of done rows), ``table`` (the meme table written from a dataset), ``verify`` (every problem of a store),
``layout`` (what each open checks) and ``features`` (feature references, targets).
"""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np

from memeprobe import __version__
from memeprobe.data.records import Dataset
from memeprobe.errors import ConfigError, MemeprobeError, OutputError, StoreError, StoreLockedError
from memeprobe.store import layout
from memeprobe.store import spans as span_table
from memeprobe.store import verify as checks
from memeprobe.store.checksums import ROW_CHECKSUMS, checksum_failures, checksums, nonfinite_done, nonfinite_rows
from memeprobe.store.features import resolve_target, target_values
from memeprobe.store.files import (clean_temps, commit, copy_without, create_set, damaged_guard, describe_os_error,
                                   first_line, h5open, read_rows, real, set_bytes, write_runs)
from memeprobe.store.lock import WriterLock
from memeprobe.store.schema import (ARRAYS, CHECKSUMMED, CREATED, DONE, FAILED, FEATURES, IDENTITY, IDENTITY_KEYS,
                                    KIND, MAGIC, PROVENANCE, REASON_BYTES, REASON_GROUP, SCHEMA_VERSION, STATUS_GROUP,
                                    STATUS_NAMES, TODO, VERSION, ArraySpec, check_array_name, check_feature_set_name,
                                    dumps, library_versions, now)
from memeprobe.store.table import check_dataset, label_arrays, read_table, write_labels, write_new

_FIX = ("use a new --store path, or --overwrite to rebuild it")
REBUILD = "rebuild it with --overwrite or a new --store path"
RELABEL = ("`memeprobe featurize` on it with its dataset rewrites the labels from the dataset (feature sets are "
           f"kept); or {REBUILD}")
REBUILD_SET = ("re-featurize with --overwrite to rebuild that feature set (the store's other sets are kept), or use "
               "a new --store path")


class FeatureStore:
    """A dataset's meme table and feature sets in one HDF5 file. Use the class methods to get one."""

    def __init__(self, path: Path, writable: bool, lock: WriterLock | None = None):
        self.path = Path(path)
        self._real = real(self.path)  # a symlinked store path: every file operation acts on its target
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
        check_dataset(dataset)
        lock = WriterLock(real(path))
        try:
            if path.exists() and not overwrite:
                raise OutputError(f"store {path} already exists; use another --store path or --overwrite")
            clean_temps(real(path))
            write_new(real(path), dataset)
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
        lock = WriterLock(real(path))
        try:
            clean_temps(real(path))
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
                write_new(real(path), dataset)
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
                if int(st._attr(VERSION)) < SCHEMA_VERSION:
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
            raise StoreError(msg)
        st._f.close()
        st._f = None
        try:
            write_new(st._real, dataset)
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
        lock = WriterLock(real(path))
        try:
            clean_temps(real(path))
            st = cls(path, writable=True, lock=lock)
        except BaseException:
            lock.release()
            raise
        try:
            if int(st._attr(VERSION)) < SCHEMA_VERSION:
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
            raise StoreError(f"store {path} does not exist; create it with `memeprobe featurize ... --store {path}`")
        return cls(path, writable=False)

    def close(self) -> None:
        if self._broken:  # HDF5 cannot flush into a truncated or replaced file: the error was reported already
            self._close_quietly()
        if self._f is not None:
            try:
                self._f.close()
            except (OSError, RuntimeError) as e:
                raise StoreError(describe_os_error(self.path, e)) from None
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
            self._f = h5open(self._real, "r+" if self.writable else "r")
        except (OSError, ValueError) as e:
            if self.writable and not os.access(self.path, os.W_OK):
                raise OutputError(f"cannot write store {self.path}: permission denied; "
                                  "choose a writable --store path") from None
            raise StoreError(f"{self.path} is not a readable HDF5 file ({str(e).splitlines()[0]}); "
                             "is it a memeprobe store?") from None
        self._checked: set[str] = set()  # feature sets whose layout was checked since this open
        self._content_checked = False
        try:
            self._check_schema()
            self._load_table()
        except (KeyError, ValueError, TypeError, OSError, RuntimeError) as e:
            self._close_quietly()
            raise StoreError(f"store {self.path} is damaged ({first_line(e)}); {REBUILD}") from None
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
        if self._f.attrs.get(KIND) != MAGIC:
            raise StoreError(f"{self.path} is an HDF5 file but not a memeprobe store (no kind={MAGIC!r} "
                             "attribute); give a store written by `memeprobe featurize`")
        version = self._f.attrs.get(VERSION)
        if not isinstance(version, (int, np.integer)) or isinstance(version, (bool, np.bool_)) or version < 1:
            raise self._damage([f"root attribute 'schema_version' is {version!r}, not a schema number"], verify=False)
        self.schema_version = int(version)
        if version > SCHEMA_VERSION:
            raise StoreError(
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
        self._table = read_table(self._f)
        self.n = len(self._table.ids)
        self.label_names = tuple(root["label_names"])
        self.binary_name = root["binary_name"]
        self.dataset_options = root.get("dataset_options", {})  # {} for stores written before they were kept

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
    def _migrate(self) -> None:
        """Upgrade an older schema in place (copy-on-write), keeping every feature set."""
        self._restructure(layout.upgrade, need_bytes=1 << 20)

    def _restructure(self, edit, need_bytes: int, drop: str | None = None) -> None:
        """Copy-on-write structural change: copy the file (leaving out feature set ``drop``), ``edit`` the copy,
        rename it over the store. A kill at any moment leaves the old or the new file, both complete."""
        self._need_writer()
        self._sync()
        self._f.close()
        self._f = None

        def build(f: h5py.File):
            if drop is not None:
                copy_without(self._real, f, drop)
            edit(f)

        try:
            self._check_writer()
            if drop is None:
                commit(self._real, build, need_bytes, source=self._real)
            else:
                commit(self._real, build, need_bytes + self._real.stat().st_size)
        finally:
            self._reopen()

    def _update_labels(self, dataset: Dataset) -> str | None:
        """Rewrite the labels (label names, spans, dataset options) when ``dataset`` (same memes) labels them
        otherwise: labels are not features. Copy-on-write; returns what changed, None when nothing did."""
        label, labels = label_arrays(dataset)
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
        self._restructure(lambda f: write_labels(f, dataset),
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

    @property
    def image_root(self) -> Path:
        """The folder the rows' image paths are relative to: the dataset's image root, else its folder."""
        return Path(self.dataset_options.get("image_root") or str(self._attr("dataset_root")))

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
    @damaged_guard
    def feature_sets(self) -> list[str]:
        return sorted(self._f[FEATURES])

    def _raw(self, name: str):
        """The HDF5 object of feature set ``name``, unchecked (see :meth:`_group`)."""
        if name not in self._f[FEATURES]:
            have = ", ".join(self.feature_sets()) or "none"
            raise StoreError(f"store {self.path} has no feature set {name!r} (it has: {have}); "
                             "run `memeprobe featurize` first")
        return self._f[FEATURES][name]

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

    @damaged_guard
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

    @damaged_guard
    def modalities(self, name: str) -> list[str]:
        return sorted({s.modality for s in self.arrays(name).values()})

    @damaged_guard
    def provenance(self, name: str) -> dict:
        return layout.parse_json(self._group(name).attrs[PROVENANCE])

    def add_feature_set(self, name: str, arrays: dict[str, ArraySpec], provenance: dict, overwrite: bool = False) -> None:
        """Declare feature set ``name``; a no-op when it exists with the same arrays and identity (resume)."""
        self._need_writer()
        check_feature_set_name(name)
        if not arrays:
            raise ConfigError(f"feature set {name!r} needs at least one array")
        for a, spec in arrays.items():
            check_array_name(a)
            if not isinstance(spec, ArraySpec):
                raise ConfigError(f"array {a!r} of feature set {name!r}: expected an ArraySpec, got {spec!r}")
        provenance = dict(provenance)
        dumps(provenance)
        spec_json = dumps({a: s.to_json() for a, s in arrays.items()})
        identity = dumps({k: provenance.get(k) for k in IDENTITY_KEYS})
        exists = name in self._f[FEATURES]
        if exists:
            g = self._f[FEATURES][name]
            damaged = layout.set_problems(g, name, self.n, ROW_CHECKSUMS)
            if not damaged and g.attrs[ARRAYS] == spec_json and g.attrs[IDENTITY] == identity:
                return
            if damaged and not overwrite:
                raise self._damage(damaged, REBUILD_SET)
            if not overwrite:
                raise StoreError(
                    f"store {self.path} already has feature set {name!r} with other arrays or identity "
                    f"(stored {g.attrs['identity']}, given {identity}); use another feature set name, "
                    "another --store path, or --overwrite to replace it")
        stamp = now()
        provenance.update({"library_versions": library_versions(), "memeprobe_version": __version__,
                           "created": stamp})
        attrs = {ARRAYS: spec_json, IDENTITY: identity, PROVENANCE: dumps(provenance), CREATED: stamp,
                 CHECKSUMMED: np.int8(1)}
        self._restructure(lambda f: create_set(f[FEATURES].create_group(name), self.n, arrays, attrs),
                          need_bytes=set_bytes(self.n, arrays), drop=name if exists else None)

    # ------------------------------------------------------------------ rows
    @damaged_guard
    def status(self, name: str, modality: str) -> np.ndarray:
        """Per-row status of ``modality`` in feature set ``name``: 0 to do, 1 done, 2 failed.

        A status byte that is none of these is damage: a reader refuses it; a writer treats the row as to do
        (``featurize`` redoes it: values, checksum, then status)."""
        g = self._group(name)
        if modality not in g[STATUS_GROUP]:
            raise StoreError(f"feature set {name!r} has no modality {modality!r} "
                             f"(it has: {', '.join(self.modalities(name))})")
        values = g[STATUS_GROUP][modality][()]
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
            raise StoreError(f"store {self.path}: row indices must be in [0, {self.n}); got {rows.min()}..{rows.max()}")
        if len(np.unique(rows)) != len(rows):
            raise StoreError(f"store {self.path}: row indices given to write must be unique")
        return rows

    def write_rows(self, name: str, rows, values: dict[str, np.ndarray], modality: str) -> None:
        """Write every array of ``modality`` for ``rows``, then mark them done; durable when it returns."""
        self._need_writer()
        g = self._group(name)
        spec = {a: s for a, s in self.arrays(name).items() if s.modality == modality}
        if not spec:
            raise StoreError(f"feature set {name!r} has no arrays of modality {modality!r}")
        if set(values) != set(spec):
            raise StoreError(f"write_rows({name!r}, modality={modality!r}) needs exactly the arrays "
                             f"{sorted(spec)}; got {sorted(values)}")
        rows = self._check_rows(rows)
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        data = {a: self._prepare(name, a, s, values[a], rows, order) for a, s in spec.items()}
        if not len(rows):
            return
        status = g[STATUS_GROUP][modality]
        sums, checksum = checksums(g)
        if layout.lost_checksums(g):
            raise self._damage([f"feature set {name!r}: {layout.LOST}"], REBUILD_SET)
        try:
            self._check_writer()
            if (read_rows(status, rows) == DONE).any():  # rewriting done rows: un-mark them first
                write_runs(status, rows, np.full(len(rows), TODO, np.uint8))
                self._sync()
            for a, v in data.items():
                write_runs(g[a], rows, v)
                if sums is not None:
                    write_runs(sums[a], rows, checksum(v))
            self._sync()
            self._check_writer()
            write_runs(status, rows, np.full(len(rows), DONE, np.uint8))
            self._sync()
        except (OSError, RuntimeError) as e:
            raise OutputError(describe_os_error(self.path, e) + " (the rows of this batch are not marked done)") from None

    def _prepare(self, name, array, spec: ArraySpec, value, rows, order) -> np.ndarray:
        v = np.asarray(value)
        want = (len(rows), *spec.shape)
        if v.shape != want:
            raise StoreError(f"feature set {name!r} array {array!r}: values have shape {v.shape}, expected {want}")
        with np.errstate(over="ignore", invalid="ignore"):
            out = v[order].astype(spec.dtype)
        if out.dtype.kind == "f":
            bad = nonfinite_rows(out)
            if bad.any():
                first = ", ".join(f"{self.splits[r]}/{self.ids[r]}" for r in rows[bad][:5])
                raise StoreError(
                    f"feature set {name!r} array {array!r}: {int(bad.sum())} rows hold NaN/inf after conversion to "
                    f"{spec.dtype} (e.g. {first}); mark them failed, or store the array as float32")
        elif not np.array_equal(out, v[order]):
            raise StoreError(f"feature set {name!r} array {array!r}: values do not fit {spec.dtype} exactly")
        return out

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
            raise StoreError(f"mark_failed: {len(rows)} rows but {len(reasons)} reasons")
        order = np.argsort(rows, kind="stable")
        enc = np.array([str(reasons[i]).encode("utf-8")[:REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
                        for i in order], dtype=f"S{REASON_BYTES}")
        rows = rows[order]
        try:
            self._check_writer()
            write_runs(g[REASON_GROUP][modality], rows, enc)
            self._sync()
            self._check_writer()
            write_runs(g[STATUS_GROUP][modality], rows, np.full(len(rows), FAILED, np.uint8))
            self._sync()
        except (OSError, RuntimeError) as e:
            raise OutputError(describe_os_error(self.path, e)) from None

    @damaged_guard
    def failures(self, name: str) -> list[tuple[int, str, str]]:
        """(row, modality, reason) of every failed row, by row then modality."""
        g = self._group(name)
        out = []
        for mod in self.modalities(name):
            status = g[STATUS_GROUP][mod][()]
            rows = np.flatnonzero(status == FAILED)
            reasons = read_rows(g[REASON_GROUP][mod], rows)
            out += [(int(r), mod, bytes(x).decode("utf-8", "replace")) for r, x in zip(rows, reasons)]
        return sorted(out)

    @damaged_guard
    def read(self, name: str, array: str, rows=None, check: bool = True) -> np.ndarray:
        """Raw stored values of one array (all rows, or ``rows`` in the order given).

        ``check``: done rows must match the checksum written with them, or in a set written before checksums
        hold no NaN/inf (StoreError naming the rows if not); a set that lost its checksums is refused."""
        g = self._group(name)
        modality = self.array_specs(name, [array])[array].modality
        # status before values: a row done by then was written (and flushed) before it, even with a live writer
        done = self.status(name, modality) == DONE if check else None
        values = read_rows(g[array], rows)
        if not check:
            return values
        sums, _ = checksums(g)
        lost = layout.lost_checksums(g)
        if sums is not None and array in sums:
            bad, what = checksum_failures(g, array, modality, values, rows, done), "do not match their checksum"
        else:
            bad = nonfinite_done(values, rows, done, self.n)
            what = "hold NaN/inf" + ("" if lost else " (the set has no checksums: it was written before them)")
        found = f"{len(bad)} done rows of {name}/{array} {what} (e.g. {layout.rows_named(self, bad)})"
        if lost:
            raise self._damage([f"feature set {name!r}: {layout.LOST}, so its rows cannot be checked"
                                + (f"; {found}" if len(bad) else "")], REBUILD_SET)
        if len(bad):
            raise StoreError(f"store {self.path} is damaged: {found}; run `memeprobe store verify`, then "
                             "re-featurize with --overwrite or a new --store path")
        return values

    @damaged_guard
    def unchecked_rows(self, name: str) -> int:
        """Done rows (summed over arrays) that carry no checksum: written before checksums existed."""
        return checks.unchecked_rows(self._raw(name), name, self.arrays(name), self.n)

    @damaged_guard
    def done(self, name: str, arrays: list[str]) -> np.ndarray:
        """Boolean (n,): rows done in every modality that ``arrays`` belong to."""
        spec = self.array_specs(name, arrays)
        ok = np.ones(self.n, dtype=bool)
        for mod in sorted({spec[a].modality for a in arrays}):
            ok &= self.status(name, mod) == DONE
        return ok

    @damaged_guard
    def select_rows(self, name: str, arrays: list[str], splits=None, missing: str = "error") -> np.ndarray:
        """Rows of ``splits`` whose ``arrays`` are done; missing="error" refuses any row not done."""
        if isinstance(arrays, str):
            arrays = [arrays]
        if not arrays:
            raise ConfigError(f"feature set {name!r}: give at least one array")
        if missing not in ("error", "drop"):
            raise ConfigError(f"missing must be 'error' or 'drop', not {missing!r}")
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
        raise StoreError(
            f"feature set {name!r}: {int((~ok).sum())} of {len(rows)} selected rows are not done "
            f"({'; '.join(counts)}), e.g. {where}; finish them with `memeprobe featurize` (`memeprobe store import` "
            "for an imported set) or load with missing='drop'")

    @damaged_guard
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
        the dataset has binary labels, else multi-hot; -1 = unlabeled (:mod:`~memeprobe.store.features`).
        ``missing``: "error" refuses rows not done, "drop" skips them.
        ``check``: verify each done row against its checksum (see :meth:`read`)."""
        return self.load_rows(name, arrays, splits, target, missing, check)[:3]

    # ------------------------------------------------------------------ inspection
    @damaged_guard
    def info(self) -> dict:
        """Everything worth knowing about the store, JSON-able (:func:`~memeprobe.store.verify.info`)."""
        self._check_content()
        return checks.info(self, self._f.attrs)

    @damaged_guard
    def verify(self) -> list[str]:
        """Problems found (empty list = ok): the meme table's labels, fingerprint, spans and duplicate (split, id);
        every feature set's layout (:mod:`~memeprobe.store.layout`), status values, checksums and NaN/inf of done
        rows (:mod:`~memeprobe.store.verify`). (A store whose attributes or meme table cannot be read does not
        open.)"""
        return checks.verify(self._f, self._table, len(self.label_names), self.schema_version)

    def _need_writer(self) -> None:
        if not self.writable:
            raise StoreError(f"store {self.path} is open read-only; open it with "
                             "FeatureStore.open_or_create(...) to write")
