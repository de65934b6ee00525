"""How to read a dataset: :class:`DatasetOptions`, checked from the keyword values a Python caller or the CLI
(:mod:`memeprobe.data.cli_options`) gives. Python keyword names = CLI option names (``id_col`` = ``--id-col``)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from memeprobe.data.formats import FORMATS
from memeprobe.errors import DatasetError
from memeprobe.registry import did_you_mean

GENERIC_ONLY = ("id_col", "text_col", "image_col", "label_col", "split_col", "label_names", "positive_label",
                "label_map", "sep")
_SEPS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def parse_label_map(value) -> dict[str, str] | None:
    """``"a=x,b=y"`` (or a mapping) → ``{"a": "x", "b": "y"}``; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = []
        for part in str(value).split(","):
            if not part.strip():
                continue
            key, eq, new = part.partition("=")
            if not eq or not key.strip() or not new.strip():
                raise DatasetError(f"label map item {part.strip()!r} is not FROM=TO (e.g. 'not harmful=0,"
                                   "somewhat harmful=1')", option="label_map")
            items.append((key, new))
    out = {k.strip(): v.strip() for k, v in items}
    if not out:
        raise DatasetError("the label map is empty; give FROM=TO pairs separated by commas", option="label_map")
    return out


def _sep(value) -> str | None:
    if value is None or value == "":
        return None
    sep = _SEPS.get(str(value).lower(), str(value))
    if len(sep) != 1 or sep in "\"\r\n":
        raise DatasetError(f"column separator {value!r} must be one character (or tab, comma, semicolon, pipe)",
                           option="sep")
    return sep


@dataclass(frozen=True)
class DatasetOptions:
    """How to read a dataset. The column mapping, labels and ``sep`` apply to the ``generic`` format;
    ``image_root`` (the folder image paths are relative to; default: the dataset folder) to every format."""

    format: str | None = None  # None = detect from the files
    id_col: str | None = None
    text_col: str | None = None
    image_col: str | None = None
    label_col: str | None = None  # "labels[0]" = element 0 of a list-valued field
    split_col: str | None = None
    label_names: tuple[str, ...] | None = None
    positive_label: str | None = None
    label_map: dict[str, str] | None = None  # raw label value -> class name
    sep: str | None = None  # CSV delimiter; None = sniffed
    image_root: str | None = None
    allow_empty_text: bool = False
    allow_outside_root: bool = False
    allow_duplicate_ids: bool = False  # diagnosis only (data summary)

    @classmethod
    def of(cls, **kwargs) -> "DatasetOptions":
        """Checked options from keyword values as the CLI or a Python caller gives them (strings allowed)."""
        names = [f.name for f in fields(cls)]
        for key in kwargs:
            if key not in names:
                raise DatasetError(f"unknown dataset option {key!r}{did_you_mean(key, names)}; "
                                   f"the options are {', '.join(names)}")
        o = {k: (None if v == "" else v) for k, v in kwargs.items()}
        fmt = o.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise DatasetError(f"unknown dataset format {fmt!r}{did_you_mean(fmt, FORMATS)}; choose one of "
                               f"{', '.join(FORMATS)}", option="format")
        label_names = o.get("label_names")
        if isinstance(label_names, str):
            label_names = label_names.split(",")
        if label_names is not None:
            o["label_names"] = tuple(str(n).strip() for n in label_names if str(n).strip()) or None
        o["label_map"] = parse_label_map(o.get("label_map"))
        o["sep"] = _sep(o.get("sep"))
        root = o.get("image_root")
        if root is not None:
            path = Path(root).expanduser()
            if not path.is_dir():
                raise DatasetError(f"image root {root}: no such folder; give the folder the image paths are "
                                   "relative to", option="image_root")
            o["image_root"] = str(path.resolve())
        for key in ("allow_empty_text", "allow_outside_root", "allow_duplicate_ids"):
            o[key] = bool(o.get(key, False))
        return cls(**o)

    def generic(self) -> dict:
        """The generic-format keyword arguments that are set."""
        return {k: getattr(self, k) for k in GENERIC_ONLY if getattr(self, k) is not None}

    def to_json(self) -> dict:
        """JSON-able record of the options that are set (kept in the store as ``dataset_options``)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()
                if v is not None and v is not False}
