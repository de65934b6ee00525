"""The report folder's manifest and the clean-id lists read back against it.

``manifest.json`` is written last into the folder (which ``write_report`` swaps in as a whole) and lists
every file with its sha256 and size, and the number of clean ids per split. A reader of ``clean_ids/``
checks the lists against it, so lists from one run beside a report of another are refused.

Clean-id lists hold one id per line (``\\n``; a ``\\r`` before it is dropped). Ids are written and read
verbatim (spaces kept); ids never hold a control character (the dataset loader refuses them).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from memeprobe.data.readers import parse_json
from memeprobe.errors import ReportError
from memeprobe.outputs import name_problem

MANIFEST = "manifest.json"
CLEAN_DIR = "clean_ids"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def format_ids(ids) -> str:
    return "".join(f"{i}\n" for i in ids)


def parse_ids(text: str) -> list[str]:
    """Ids of a clean-id list, verbatim (blank lines skipped)."""
    lines = text.split("\n")
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines if ln not in ("", "\r")]


def write_manifest(folder: Path, clean_counts: dict[str, int], **about) -> dict:
    """Write ``folder/manifest.json`` over every file already in ``folder``."""
    files = {p.relative_to(folder).as_posix(): {"sha256": file_sha256(p), "bytes": p.stat().st_size}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    doc = {**about, "files": files, "clean_ids": clean_counts}
    (folder / MANIFEST).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def foreign_files(folder: Path) -> list[str]:
    """Files in ``folder`` that no earlier report wrote (not in its manifest; for a report without one,
    not one of the report's own names)."""
    try:
        listed = set(parse_json((folder / MANIFEST).read_text(encoding="utf-8"))["files"]) | {MANIFEST}
    except (OSError, ValueError, KeyError, TypeError):
        listed = None
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())
    if listed is not None:
        return [f for f in found if f not in listed]
    own = {"report.json", "pairs.csv", "report.html", MANIFEST}
    return [f for f in found if f not in own and not (f.startswith(f"{CLEAN_DIR}/") and f.endswith(".txt"))]


def report_folders(directory) -> list[Path]:
    """The folders a reader of the clean ids ``directory`` reads: it, and the report above a ``clean_ids`` folder."""
    directory = Path(directory)
    return [directory, directory.parent] if directory.name == CLEAN_DIR else [directory]


def _manifest_for(directory: Path) -> tuple[Path, dict] | None:
    """``(report folder, manifest)`` for a report folder or its ``clean_ids`` subfolder; None if there is none."""
    for folder in report_folders(directory):
        path = folder / MANIFEST
        if path.is_file():
            try:
                doc = parse_json(path.read_text(encoding="utf-8"))
                files, counts = doc["files"], doc["clean_ids"]
                assert isinstance(files, dict) and isinstance(counts, dict)
            except (ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError):
                raise ReportError(f"{path} is not a readable leakage-report manifest; "
                                  "re-run `memeprobe leakage report`") from None
            return folder, doc
        if (folder / "report.json").is_file():
            raise ReportError(f"{folder} has report.json but no {MANIFEST} (an unfinished or older report); "
                              "re-run `memeprobe leakage report` to write a checked clean-id list")
    return None


def read_clean_ids(directory, splits) -> dict[str, set[str]]:
    """Leak-free ids per split from ``DIR/clean_ids/SPLIT.txt`` or ``DIR/SPLIT.txt`` (one id per line).
    When the folder is a leakage report, its manifest must list those lists with their counts, and every
    file it lists (report.json, ...) must be there unchanged."""
    directory = Path(directory)
    found = _manifest_for(directory)
    out = {}
    for s in splits:
        if name_problem(s) is not None:  # a split that cannot name a file has no list (none outside the folder)
            continue
        for p in (directory / CLEAN_DIR / f"{s}.txt", directory / f"{s}.txt"):
            if p.is_file():
                ids = parse_ids(p.read_text(encoding="utf-8"))
                if found is not None:
                    _check(p, ids, s, *found)
                out[s] = set(ids)
                break
    if not out:
        raise ReportError(f"clean ids {directory}: no clean_ids/SPLIT.txt or SPLIT.txt for split(s) "
                          f"{', '.join(splits)}; pass the output folder of `memeprobe leakage report`")
    if found is not None:
        _verify(*found)
    return out


def _verify(folder: Path, doc: dict) -> None:
    """Every file the manifest lists is there with its recorded sha256 (the folder is one report)."""
    for name, entry in doc["files"].items():
        path = folder / name
        if not path.is_file():
            raise ReportError(f"{path} is missing from the report in {folder} (listed in {MANIFEST}); "
                              "re-run `memeprobe leakage report`")
        if file_sha256(path) != (entry or {}).get("sha256"):
            raise ReportError(f"{path} differs from the file {folder / MANIFEST} lists: the folder mixes files "
                              "of two reports or was edited; re-run `memeprobe leakage report`")


def _check(path: Path, ids: list[str], split: str, folder: Path, doc: dict) -> None:
    name = path.relative_to(folder).as_posix()
    entry = doc["files"].get(name)
    want = doc["clean_ids"].get(split)
    if entry is None or want is None:
        raise ReportError(f"{path} is not listed in {folder / MANIFEST}: it does not belong to this report; "
                          "re-run `memeprobe leakage report`")
    if len(ids) != want or file_sha256(path) != entry.get("sha256"):
        raise ReportError(f"{path} ({len(ids)} ids) does not match {folder / MANIFEST} ({want} clean ids of "
                          f"{split}): the folder mixes files of two reports or was edited; "
                          "re-run `memeprobe leakage report`")
