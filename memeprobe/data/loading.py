"""``load_dataset``: pick the adapter (by name or by looking at the files) and load a :class:`Dataset`."""
from __future__ import annotations

from pathlib import Path

from memeprobe.data import generic, hateful_memes, mami, semeval2021_task6
from memeprobe.data.records import Dataset
from memeprobe.errors import MemeprobeError

# name -> adapter module (``detect(path) -> bool``, ``load(path, **opts) -> Dataset``); detection order
FORMATS = {
    "hateful_memes": hateful_memes,
    "semeval2021_task6": semeval2021_task6,
    "mami": mami,
    "generic": generic,
}
_FOLDER_FORMATS = ("hateful_memes", "semeval2021_task6", "mami")


def _existing(path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise MemeprobeError(f"{path}: no such file or folder; check the dataset path")
    return path


def detect_format(path) -> str:
    """The format name of a dataset file or folder; MemeprobeError when none fits."""
    path = _existing(path)
    if path.is_dir():
        for name in _FOLDER_FORMATS:
            if FORMATS[name].detect(path):
                return name
    if generic.detect(path):
        return "generic"
    raise MemeprobeError(
        f"{path}: cannot tell the dataset format (no Hateful Memes *.jsonl, SPLIT/labels.json or train/dev/test.json, MAMI "
        f"file_name table, or {'/'.join(generic.SUFFIXES)} file); pass --format, one of {', '.join(FORMATS)}"
    )


def load_dataset(path, format: str | None = None, **opts) -> Dataset:
    """Load a dataset; ``format=None`` auto-detects. ``opts``: ``allow_empty_text`` (keep memes with empty
    text instead of failing), ``allow_duplicate_ids`` (diagnosis only: keep repeated ids within a split),
    and for ``generic`` the column mapping (see :mod:`memeprobe.data.generic`)."""
    path = _existing(path)
    name = format or detect_format(path)
    if name not in FORMATS:
        raise MemeprobeError(f"unknown dataset format {name!r}; choose one of {', '.join(FORMATS)}")
    if name != "generic":
        if not path.is_dir():
            raise MemeprobeError(f"{path}: the {name} format expects the dataset folder, not a file")
        common = ("allow_empty_text", "allow_duplicate_ids")
        extra = sorted(k for k, v in opts.items() if v is not None and k not in common)
        if extra:
            flags = ", ".join(f"{k} (--{k.replace('_', '-')})" for k in extra)
            raise MemeprobeError(f"options {flags} only apply to --format generic, not {name}")
        opts = {k: v for k, v in opts.items() if k in common}
    return FORMATS[name].load(path, **opts)
