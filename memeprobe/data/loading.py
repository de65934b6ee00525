"""``load_dataset``: pick the adapter (by name or by looking at the files) and load a :class:`Dataset`."""
from __future__ import annotations

import os
from pathlib import Path

from memeprobe.data import generic
from memeprobe.data.formats import FORMATS
from memeprobe.data.records import Dataset
from memeprobe.data.options import DatasetOptions
from memeprobe.errors import DatasetError

_FOLDER_FORMATS = ("hateful_memes", "semeval2021_task6", "mami")


def _existing(path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder; check the dataset path")
    return path


def detect_format(path) -> str:
    """The format name of a dataset file or folder; DatasetError when none fits."""
    path = _existing(path)
    if path.is_dir():
        for name in _FOLDER_FORMATS:
            if FORMATS[name].detect(path):
                return name
    if generic.detect(path):
        return "generic"
    raise DatasetError(
        f"{path}: cannot tell the dataset format (no Hateful Memes *.jsonl, SPLIT/labels.json or train/dev/test.json, MAMI "
        f"file_name table, or {'/'.join(generic.SUFFIXES)} file); name the format, one of {', '.join(FORMATS)}",
        option="format")


def check_inside_root(ds: Dataset) -> None:
    """DatasetError when an image path resolves (through symlinks) to a file outside the image root."""
    root = os.path.realpath(ds.image_root)
    outside = []
    for m in ds.memes:
        if m.image:
            real = os.path.realpath(ds.image_path(m))
            if os.path.commonpath([real, root]) != root:
                outside.append((m, real))
    if outside:
        m, real = outside[0]
        where = "image root" if ds.image_dir else "dataset root"
        more = f" (and {len(outside) - 1} more)" if len(outside) > 1 else ""
        raise DatasetError(
            f"{m.split}/{m.id}: image {m.image!r} is a symlink to {real}, outside the {where} {root}{more}; "
            f"copy the image into the {where}, or allow images outside it explicitly", option="allow_outside_root"
        )


def load_dataset(path, format: str | None = None, *, id_col: str | None = None, text_col: str | None = None,
                 image_col: str | None = None, label_col: str | None = None, split_col: str | None = None,
                 label_names=None, positive_label: str | None = None, label_map=None, sep: str | None = None,
                 image_root=None, allow_empty_text: bool = False, allow_outside_root: bool = False,
                 allow_duplicate_ids: bool = False) -> Dataset:
    """Load a dataset; the keywords are the CLI's dataset options (``id_col`` = ``--id-col``, see
    :class:`~memeprobe.data.options.DatasetOptions`; ``label_map`` as ``"a=x,b=y"`` or a dict). ``format=None``
    detects it. Image paths resolving outside the image root (symlinks) are refused unless ``allow_outside_root``;
    ``allow_duplicate_ids`` keeps repeated ids within a split (diagnosis only)."""
    options = dict(locals())
    return load_with(options.pop("path"), DatasetOptions.of(**options))


def load_with(path, options: DatasetOptions) -> Dataset:
    """:func:`load_dataset` with checked options; the dataset records them (``Dataset.options``)."""
    path = _existing(path)
    name = options.format or detect_format(path)
    common = dict(image_root=options.image_root, allow_empty_text=options.allow_empty_text,
                  allow_duplicate_ids=options.allow_duplicate_ids)
    if name == "generic":
        ds = generic.load(path, **options.generic(), **common)
    else:
        if not path.is_dir():
            raise DatasetError(f"{path}: the {name} format expects the dataset folder, not a file")
        extra = sorted(options.generic())
        if extra:
            raise DatasetError(f"options {', '.join(extra)} only apply to the generic format, not {name}",
                               option=extra[0])
        ds = FORMATS[name].load(path, **common)
    if not options.allow_outside_root:
        check_inside_root(ds)
    ds.options = {**options.to_json(), "format": name}
    return ds
