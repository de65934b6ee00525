"""The store's file handling: HDF5 opening and chunked datasets, row runs, the errors of a damaged or unwritable
file, and the copy-on-write commit (a complete new file beside the store, fsynced, renamed over it). Crash-safety
design: SCHEMA.md beside this module."""
from __future__ import annotations

import errno
import functools
import os
import shutil
from pathlib import Path

import h5py
import numpy as np

from memeprobe.atomic import fsync_dir
from memeprobe.errors import MemeprobeError, OutputError, StoreError
from memeprobe.store.schema import (ALGORITHM, CHECKSUM, CHECKSUM_GROUP, FEATURES, MEMES, REASON_BYTES, REASON_GROUP,
                                    STATUS_GROUP, TODO, ArraySpec, chunk_rows)


def h5open(path: Path, mode: str) -> h5py.File:
    """Open without HDF5 file locking (the sidecar lock rules writers) and without a chunk cache, so every
    read and write goes straight to the file: readers never see stale chunks, writers never hold rows back."""
    return h5py.File(path, mode, locking=False, rdcc_nbytes=0)


def dcpl(shape: tuple[int, ...], chunks: tuple[int, ...], fill) -> h5py.h5p.PropDCID:
    """Chunked, no filters, space allocated and filled at creation: later row writes touch raw bytes only.

    ``fill=None`` keeps HDF5's default fill, zero bytes (h5py's ``set_fill_value`` would copy uninitialised
    memory for fixed-length strings)."""
    plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    plist.set_chunk(chunks)
    plist.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    plist.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    if fill is not None:
        plist.set_fill_value(np.array(fill))
    return plist


def create(group: h5py.Group, name: str, n: int, spec: ArraySpec, fill=0) -> h5py.Dataset:
    shape = (n, *spec.shape)
    chunks = (chunk_rows(n, spec), *spec.shape)
    return group.create_dataset(name, shape=shape, dtype=spec.dtype, track_times=False,
                                dcpl=dcpl(shape, chunks, np.array(fill, dtype=spec.dtype)))


def create_set(g: h5py.Group, n: int, arrays: dict[str, ArraySpec], attrs: dict) -> None:
    """Fill the new feature set group ``g`` (``attrs`` on it): its arrays, a status (to do) and a failure reason
    column per modality, and a row checksum column per array, all allocated at creation."""
    g.attrs.update(attrs)
    for a, spec in arrays.items():
        create(g, a, n, spec).attrs["modality"] = spec.modality
    for mod in sorted({s.modality for s in arrays.values()}):
        create(g.require_group(STATUS_GROUP), mod, n, ArraySpec((), mod, "uint8"), TODO)
        reasons = g.require_group(REASON_GROUP).create_dataset(
            mod, shape=(n,), dtype=f"S{REASON_BYTES}", track_times=False,
            dcpl=dcpl((n,), (max(1, min(n, 4096)),), None))
        reasons.attrs["encoding"] = "utf-8"
    g.create_group(CHECKSUM_GROUP).attrs[ALGORITHM] = CHECKSUM
    for a in arrays:
        g[CHECKSUM_GROUP].create_dataset(a, shape=(n,), dtype=np.uint64, track_times=False,
                                      dcpl=dcpl((n,), (max(1, min(n, 8192)),), None))


def set_bytes(n: int, arrays: dict[str, ArraySpec]) -> int:
    """Bytes to reserve for a new feature set of ``n`` rows (data, status, reasons, checksums, 2% + 1 MiB slack)."""
    row_bytes = sum(int(np.prod(s.shape)) * np.dtype(s.dtype).itemsize for s in arrays.values())
    n_mod = len({s.modality for s in arrays.values()})
    data = n * (row_bytes + n_mod * (1 + REASON_BYTES) + 8 * len(arrays))
    return data + data // 50 + (1 << 20)


def runs(rows: np.ndarray) -> list[tuple[int, int, int]]:
    """Sorted unique rows → (row start, row stop, position in rows) of each contiguous run."""
    if len(rows) == 0:
        return []
    cuts = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[0], cuts])
    stops = np.concatenate([cuts, [len(rows)]])
    return [(int(rows[a]), int(rows[b - 1]) + 1, int(a)) for a, b in zip(starts, stops)]


def read_rows(ds: h5py.Dataset, rows) -> np.ndarray:
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


def write_runs(ds: h5py.Dataset, rows: np.ndarray, data: np.ndarray) -> None:
    """``ds[rows] = data`` for sorted unique ``rows``, one write per contiguous run."""
    for start, stop, at in runs(rows):
        ds[start:stop] = data[at:at + stop - start]


def first_line(e: Exception) -> str:
    text = str(e).strip().strip('"').splitlines()
    return text[0] if text else type(e).__name__


def describe_os_error(path: Path, e: Exception) -> str:
    text = (str(e).splitlines() or [type(e).__name__])[0]
    full = getattr(e, "errno", None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or any(
        f"errno = {n}," in str(e) for n in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT))
    if full:
        return f"cannot write store {path}: the disk is full ({text}); free space or use another --store path"
    if getattr(e, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write store {path}: {text}; choose a writable --store path"
    return f"cannot write store {path}: {text}"


def damaged_guard(method):
    """Turn the errors h5py raises on a damaged file (bad header, bad B-tree, bad JSON) into one StoreError."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (KeyError, OSError, RuntimeError, TypeError, AttributeError, ValueError) as e:
            raise StoreError(f"store {self.path} is damaged ({first_line(e)}); run `memeprobe store verify` on it, "
                             "then rebuild it with --overwrite or a new --store path") from None
    return guarded


def real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def temp(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def clean_temps(path: Path) -> None:
    """Remove temp files a killed writer left behind (we hold the lock, so none is in use)."""
    for p in path.parent.glob(f"{path.name}.tmp-*"):
        p.unlink(missing_ok=True)


def copy_without(source: Path, f: h5py.File, drop: str) -> None:
    """Copy the store file ``source`` into the empty open file ``f``, leaving out feature set ``drop``."""
    with h5py.File(source, "r", locking=False) as src:
        f.attrs.update(dict(src.attrs))
        src.copy(src[MEMES], f, MEMES)
        f.create_group(FEATURES)
        for name in src[FEATURES]:
            if name != drop:
                src.copy(src[FEATURES][name], f[FEATURES], name)


def commit(path: Path, build, need_bytes: int, source: Path | None = None) -> None:
    """Write a complete new file to a temp path, fsync it, rename it over ``path`` atomically.

    The temp file starts as a copy of ``source`` (or an empty HDF5 file) and is extended by ``need_bytes``
    with posix_fallocate before HDF5 writes to it, so a full disk fails here, cleanly, in Python (HDF5
    truncates the file to its real size on close). ``build(f)`` then edits the open temp file."""
    tmp = temp(path)
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
        raise OutputError(describe_os_error(path, e)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
