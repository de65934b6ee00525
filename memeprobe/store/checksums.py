"""Row checksums of feature sets, and the checks of done rows' values against them (or, in sets written before
checksums, for NaN/inf). Algorithms by name: :data:`ROW_CHECKSUMS` (the ``_checksum`` group's ``algorithm``)."""
from __future__ import annotations

import functools

import numpy as np
import xxhash

from memeprobe.store.files import read_rows
from memeprobe.store.schema import ALGORITHM, CHECKSUM, CHECKSUM_GROUP, DONE, LEGACY_CHECKSUM, STATUS_GROUP


def nonfinite_rows(values: np.ndarray) -> np.ndarray:
    """Boolean per row: any NaN/inf (float16 checked on its exponent bits: numpy's float16 math is slow)."""
    flat = values.reshape(len(values), int(np.prod(values.shape[1:])))
    if flat.dtype == np.float16:
        return ((flat.view(np.uint16) & 0x7C00) == 0x7C00).any(axis=1)
    return ~np.isfinite(flat).all(axis=1)


def nonfinite_done(values: np.ndarray, rows, done: np.ndarray, n: int) -> np.ndarray:
    """Store rows among ``rows`` (all when None) that are done (``done``: bool (n,)) but hold NaN/inf."""
    if values.dtype.kind != "f":
        return np.zeros(0, np.int64)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    return np.unique(rows[nonfinite_rows(values) & done[rows]])


def checksums(g):
    """(``_checksum`` group, its row checksum function) of a checked feature set group; (None, None) without."""
    if CHECKSUM_GROUP not in g:
        return None, None
    return g[CHECKSUM_GROUP], ROW_CHECKSUMS[g[CHECKSUM_GROUP].attrs.get(ALGORITHM, LEGACY_CHECKSUM)]


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


def checksum_failures(g, array, modality, values, rows, done) -> np.ndarray:
    """Store rows among ``rows`` (all when None) of set group ``g`` that were done (``done``: the status, read
    before ``values`` were) but whose values differ from their checksum."""
    sums, checksum = checksums(g)
    if sums is None or array not in sums:
        return np.zeros(0, np.int64)
    rows = np.arange(len(done)) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    done = done[rows]
    if not done.all():  # (a copy: skipped in the common case, every row done)
        if not done.any():
            return np.zeros(0, np.int64)
        rows, values = rows[done], values[done]
    bad = rows[checksum(values) != read_rows(sums[array], rows)]
    if len(bad):  # a writer may have re-written those rows meanwhile: read them again, status first
        bad = bad[g[STATUS_GROUP][modality][()][bad] == DONE]
        bad = bad[checksum(read_rows(g[array], bad)) != read_rows(sums[array], bad)]
    return np.unique(bad)
