"""Competition submission files, written and read back for validation.

* hateful_memes: CSV with header ``id,proba,label`` (label from the tuned threshold).
* mami: ``answer.txt``, tab-separated, no header: file name, misogynous[, shaming, stereotype,
  objectification, violence] (2 or 6 columns, as the MAMI scorer expects).
* semeval2021: JSON list ``[{"id": ..., "labels": [technique names]}]``.
* csv (any other dataset): CSV with header ``id,label,proba_<class>...``. ``label`` is the predicted class
  name: for a binary target ``<name>`` or ``not_<name>`` (``<name>`` = the dataset's binary label, one
  ``proba_<name>`` column); for classes, the predicted class (multi-class) or the predicted classes joined
  by ``|`` (multi-label, empty when none), one probability column per class. It is for people: a cell a
  spreadsheet would run as a formula (``=...``) starts with ``'`` (:mod:`memeprobe.spreadsheet`).

The competition formats keep the exact ids (the scorers match them); :func:`formula_ids` names those a
spreadsheet would run.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from memeprobe.atomic import atomic_write
from memeprobe.errors import ConfigError, DatasetError, ModelError
from memeprobe.heads.choices import FORMATS
from memeprobe.spreadsheet import is_formula, safe_cell

# the competition format of a dataset format (memeprobe.data); other datasets get the generic csv
FORMAT_OF_DATASET = {"hateful_memes": "hateful_memes", "mami": "mami", "semeval2021_task6": "semeval2021"}


def default_format(dataset_format: str) -> str:
    """The submission format ``predict`` writes for a dataset of ``dataset_format``."""
    return FORMAT_OF_DATASET.get(dataset_format, "csv")


def _check_ids(ids) -> list[str]:
    ids = [str(i) for i in ids]
    seen, dup = set(), []
    for i in ids:
        if i in seen:
            dup.append(i)
        seen.add(i)
    if dup:
        raise DatasetError(f"ids repeat in the split ({', '.join(dup[:5])}); a submission needs every id once, "
                             "predict one split at a time")
    return ids


def write_hateful_memes(path, ids, proba, labels) -> Path:
    ids, proba, labels = _check_ids(ids), np.asarray(proba, np.float64), np.asarray(labels).astype(int)
    if proba.ndim != 1:
        raise ConfigError("the hateful_memes format needs a binary model (one probability per meme)", option="fmt")
    path = Path(path)
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "proba", "label"])
        for i, p, lab in zip(ids, proba, labels):
            w.writerow([i, repr(float(p)), int(lab)])
    return path


def write_mami(path, ids, pred) -> Path:
    """``pred``: (n,) misogynous, (n, 5) misogynous + four types, or (n, 4) types (misogynous = any), 0/1.
    The MAMI hierarchy holds in the file: no type without misogynous = 1."""
    ids, pred = _check_ids(ids), np.asarray(pred).astype(int)
    pred = pred[:, None] if pred.ndim == 1 else pred
    if pred.shape[1] == 4:  # the four types only: misogynous when any type is
        pred = np.hstack([pred.max(1, keepdims=True), pred])
    if pred.shape[1] not in (1, 5):
        raise ConfigError(f"the mami format needs 1, 4 or 5 label columns, the model gives {pred.shape[1]}",
                          option="fmt")
    pred[:, 1:] *= pred[:, :1]
    path = Path(path)
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        for i, row in zip(ids, pred):
            w.writerow([i, *(int(v) for v in row)])
    return path


def write_semeval2021(path, ids, pred, names) -> Path:
    ids, pred = _check_ids(ids), np.asarray(pred).astype(int)
    if pred.ndim != 2 or pred.shape[1] != len(names):
        raise ConfigError(f"the semeval2021 format needs a multi-label model over the {len(names)} techniques",
                          option="fmt")
    path = Path(path)
    data = [{"id": i, "labels": [n for n, v in zip(names, row) if v]} for i, row in zip(ids, pred)]
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


def write_csv(path, ids, proba, pred, names) -> Path:
    """The generic prediction file (see the module doc), written atomically."""
    ids, proba, pred = _check_ids(ids), np.asarray(proba, np.float64), np.asarray(pred).astype(int)
    names = [str(n) for n in names]
    if proba.ndim == 1:
        labels = [names[0] if v else f"not_{names[0]}" for v in pred]
        proba = proba[:, None]
    else:
        labels = ["|".join(n for n, v in zip(names, row) if v) for row in pred]
    if proba.shape[1] != len(names):
        raise ModelError(f"the csv format needs one name per output: {proba.shape[1]} outputs, {len(names)} names")
    path = Path(path)
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([safe_cell(c) for c in ["id", "label", *(f"proba_{n}" for n in names)]])
        for i, lab, row in zip(ids, labels, proba):
            w.writerow([safe_cell(i), safe_cell(lab), *(repr(float(v)) for v in row)])
    return path


def read_submission(path, fmt: str):
    """Parse a written file back: hateful_memes → list of (id, proba, label); mami → list of
    (id, [0/1...]); semeval2021 → list of (id, [names]); csv → list of (id, label, {class: proba}).
    Malformed content raises DatasetError."""
    path = Path(path)
    if fmt == "hateful_memes":
        with open(path, newline="", encoding="utf-8") as f:
            r = csv.reader(f)
            if next(r, None) != ["id", "proba", "label"]:
                raise DatasetError(f"{path}: header must be id,proba,label")
            out = [(row[0], float(row[1]), int(row[2])) for row in r]
        if any(lab not in (0, 1) or not 0 <= p <= 1 for _, p, lab in out):
            raise DatasetError(f"{path}: proba must be in [0, 1] and label 0 or 1")
    elif fmt == "mami":
        with open(path, newline="", encoding="utf-8") as f:
            out = [(row[0], [int(v) for v in row[1:]]) for row in csv.reader(f, delimiter="\t")]
        if {len(v) for _, v in out} - {1, 5} or len({len(v) for _, v in out}) > 1:
            raise DatasetError(f"{path}: every line needs 2 or 6 tab-separated columns, all alike")
    elif fmt == "semeval2021":
        out = [(d["id"], list(d["labels"])) for d in json.loads(path.read_text(encoding="utf-8"))]
    elif fmt == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            r = csv.reader(f)
            header = next(r, None) or []
            if header[:2] != ["id", "label"] or len(header) < 3 or not all(h.startswith("proba_") for h in header[2:]):
                raise DatasetError(f"{path}: header must be id,label,proba_<class>...")
            out = [(row[0], row[1], {h[6:]: float(v) for h, v in zip(header[2:], row[2:])}) for row in r]
    else:
        raise ConfigError(f"unknown submission format {fmt!r}; choose one of {', '.join(FORMATS)}", option="fmt")
    ids = [i for i, *_ in out]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{path}: an id appears more than once")
    return out


def formula_ids(fmt: str, ids) -> list[str]:
    """The ids that format ``fmt`` writes verbatim into a CSV/TSV although a spreadsheet would run them as
    formulas (the competition formats; the generic csv escapes them)."""
    return [str(i) for i in ids if is_formula(str(i))] if fmt in ("hateful_memes", "mami") else []


def write_submission(path, fmt, ids, proba, pred, names) -> Path:
    """Dispatch on ``fmt``; ``names`` are the model's output names (binary: one name)."""
    if fmt == "hateful_memes":
        return write_hateful_memes(path, ids, proba, pred)
    if fmt == "mami":
        return write_mami(path, ids, pred)
    if fmt == "semeval2021":
        return write_semeval2021(path, ids, pred, names)
    if fmt == "csv":
        return write_csv(path, ids, proba, pred, names)
    raise ConfigError(f"unknown submission format {fmt!r}; choose one of {', '.join(FORMATS)}", option="fmt")
