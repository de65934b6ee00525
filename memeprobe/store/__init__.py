"""memeprobe.store: the crash-safe HDF5 feature store (schema in SCHEMA.md)."""
from memeprobe.store.schema import DONE, FAILED, SCHEMA_VERSION, TODO, ArraySpec
from memeprobe.store.store import FeatureStore

__all__ = ["FeatureStore", "ArraySpec", "SCHEMA_VERSION", "TODO", "DONE", "FAILED"]
