"""``load_dataset``: pick the adapter (by name or by looking at the files) and load a :class:`Dataset`."""
from __future__ import annotations

import os
from pathlib import Path

from memeprobe.data import generic, hateful_memes, mami, semeval2021_task6
from memeprobe.data.records import Dataset
from memeprobe.errors import DatasetError, MemeprobeError

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


def check_inside_root(ds: Dataset) -> None:
    """DatasetError when an image path resolves (through symlinks) to a file outside the dataset root."""
    root = os.path.realpath(ds.root)
    outside = []
    for m in ds.memes:
        if m.image:
            real = os.path.realpath(ds.image_path(m))
            if os.path.commonpath([real, root]) != root:
                outside.append((m, real))
    if outside:
        m, real = outside[0]
        more = f" (and {len(outside) - 1} more)" if len(outside) > 1 else ""
        raise DatasetError(
            f"{m.split}/{m.id}: image {m.image!r} is a symlink to {real}, outside the dataset root {root}{more}; "
            "copy the image into the dataset folder, or allow it explicitly (allow_outside_root=True)"
        )


def load_dataset(path, format: str | None = None, allow_outside_root: bool = False, **opts) -> Dataset:
    """Load a dataset; ``format=None`` auto-detects. ``opts``: ``allow_empty_text`` (keep memes with empty
    text instead of failing), ``allow_duplicate_ids`` (diagnosis only: keep repeated ids within a split),
    and for ``generic`` the column mapping (see :mod:`memeprobe.data.generic`). Image paths that resolve
    outside the dataset root (symlinks) are refused unless ``allow_outside_root``."""
    ds = _load(path, format, **opts)
    if not allow_outside_root:
        check_inside_root(ds)
    return ds


def _load(path, format, **opts) -> Dataset:
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
