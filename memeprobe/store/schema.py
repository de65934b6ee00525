"""Constants and small value types of the versioned store schema (documented in SCHEMA.md)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata

import numpy as np

from memeprobe.errors import ConfigError

SCHEMA_VERSION = 3  # 2: the meme table gained /memes/spans; 3: row checksums name their algorithm (older: migrated on write)
MAGIC = "memeprobe.store"  # value of the root attribute "kind": marks a file as a memeprobe store

TODO, DONE, FAILED = 0, 1, 2
STATUS_NAMES = {TODO: "todo", DONE: "done", FAILED: "failed"}
REASON_BYTES = 256  # failure reasons are stored as fixed-length UTF-8 (no heap writes after creation)
IDENTITY_KEYS = ("encoder", "weights_sha256", "preprocessing")  # provenance keys that identify features
CHUNK_BYTES = 1 << 20  # target size of one row-chunk
CHECKSUM = "mulsum64"  # row checksum of new feature sets
LEGACY_CHECKSUM = "xxh3-64"  # the row checksum of sets written by schema 2 (their `_checksum` group does not name it)

# the names of the layout (SCHEMA.md), their one home: groups, then attributes
MEMES, FEATURES = "memes", "features"  # root groups: the meme table; one group per feature set
SPANS = "spans"  # the span table, in MEMES
STATUS_GROUP, REASON_GROUP = "_status", "_reason"  # in a feature set: status and failure reason, one per modality
CHECKSUM_GROUP = "_checksum"  # in a feature set: the row checksums, one per array
KIND, VERSION = "kind", "schema_version"  # root attributes: MAGIC, and the schema the file was written with
ARRAYS, IDENTITY, PROVENANCE, CREATED = "arrays", "identity", "provenance", "created"  # a feature set's attributes
CHECKSUMMED = "row_checksums"  # feature set attribute (1) of sets written with row checksums: they must keep them
ALGORITHM = "algorithm"  # attribute of CHECKSUM_GROUP: its row checksum (absent: LEGACY_CHECKSUM)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_ARRAY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DTYPES = ("float16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool")
_LIBRARIES = ("numpy", "h5py", "torch", "torchvision", "open_clip_torch", "transformers",
              "sentence-transformers", "timm", "Pillow")


@dataclass(frozen=True)
class ArraySpec:
    """One array of a feature set: per-row ``shape``, the ``modality`` whose status covers it, ``dtype``."""

    shape: tuple[int, ...]
    modality: str = "image"
    dtype: str = "float16"

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype).name)
        if any(s < 1 for s in self.shape):
            raise ConfigError(f"array shape {self.shape} has a dimension < 1; every dimension must be >= 1")
        if self.dtype not in _DTYPES:
            raise ConfigError(f"array dtype {self.dtype!r} is not supported; use one of {', '.join(_DTYPES)}")
        if not _ARRAY.match(self.modality):
            raise ConfigError(f"modality {self.modality!r} is not a plain name such as 'image' or 'text'")

    def to_json(self) -> dict:
        return {"shape": list(self.shape), "modality": self.modality, "dtype": self.dtype}

    @classmethod
    def from_json(cls, d: dict) -> "ArraySpec":
        return cls(tuple(d["shape"]), d["modality"], d["dtype"])


def check_feature_set_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"feature set name {name!r} must be letters, digits and . _ + - (e.g. 'clip-ViT-B-32-openai')")


def check_array_name(name: str) -> None:
    if not isinstance(name, str) or not _ARRAY.match(name):
        raise ConfigError(f"array name {name!r} must start with a letter and hold letters, digits, _ (e.g. 'image_embed')")


def now() -> str:
    """UTC timestamp, ISO 8601 to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape features (read from metadata, nothing imported)."""
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def dumps(obj) -> str:
    """Canonical JSON (sorted keys) so that equal values give equal attribute strings."""
    try:
        return json.dumps(obj, sort_keys=True, ensure_ascii=False)
    except TypeError as e:
        raise ConfigError(f"provenance must hold JSON values only (str, number, bool, None, list, dict): {e}") from None


def chunk_rows(n: int, spec: ArraySpec) -> int:
    """Rows per chunk: about CHUNK_BYTES per chunk, at least 1, at most n."""
    row_bytes = int(np.prod(spec.shape, dtype=np.int64)) * np.dtype(spec.dtype).itemsize
    return int(max(1, min(n, CHUNK_BYTES // max(row_bytes, 1))))
