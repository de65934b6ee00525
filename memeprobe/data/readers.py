"""Annotation-file readers (UTF-8 text, JSON, JSON lines, CSV/TSV) that fail with file + line."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from memeprobe.errors import DatasetError


def read_text(path: Path) -> str:
    """The file decoded as UTF-8 (a leading BOM is dropped); bad bytes name the line and byte offset."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file; check the path (or pass the dataset folder)")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DatasetError(
            f"{path} line {line} (byte offset {e.start}): not valid UTF-8 ({e.reason}); "
            "re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
        ) from None
    return text.removeprefix("\ufeff")


def parse_json(text: str):
    """``json.loads``; nesting too deep for Python's stack is a JSONDecodeError too, not a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def jsonl_lines(text: str):
    """``(line number, line)`` of a JSON-lines text, split on ``\\n`` only: U+2028, U+2029, U+0085 and the
    like are valid inside JSON strings (a ``\\r`` before the ``\\n`` is JSON whitespace)."""
    return enumerate(text.split("\n"), start=1)


def read_json(path: Path):
    """A whole JSON document; a syntax error names the line and column."""
    try:
        return parse_json(read_text(path))
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"{path} line {e.lineno} column {e.colno}: invalid JSON ({e.msg}); fix the file"
        ) from None


def read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line; a bad or truncated line is named."""
    rows = []
    for n, line in jsonl_lines(read_text(path)):
        if not line.strip():
            continue
        try:
            obj = parse_json(line)
        except json.JSONDecodeError as e:
            raise DatasetError(
                f"{path} line {n}: invalid or truncated JSON ({e.msg}); fix or delete that line"
            ) from None
        if not isinstance(obj, dict):
            raise DatasetError(f"{path} line {n}: expected a JSON object, got {type(obj).__name__}")
        rows.append((n, obj))
    return rows


_DELIMITERS = ",;\t|"
_SNIFF_BYTES = 64 * 1024


def sniff_delimiter(sample: str, path: Path) -> str:
    """The delimiter of a CSV/TSV sample (its first lines): tab when the header has one (MAMI ships
    tab-separated ``.csv`` files), else csv.Sniffer's pick among ``, ; TAB |`` when it splits the header
    into several columns, else the one the header holds most of, else by extension (tab for ``.tsv``)."""
    header = sample.split("\n", 1)[0]
    if "\t" in header:
        return "\t"
    try:
        found = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
        if found in header:
            return found
    except csv.Error:
        pass
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    if counts[best]:
        return best
    return "\t" if Path(path).suffix.lower() == ".tsv" else ","


def _sample(text: str) -> str:
    """The whole lines among the first ``_SNIFF_BYTES`` characters (all of a short text)."""
    if len(text) <= _SNIFF_BYTES:
        return text
    cut = text.rfind("\n", 0, _SNIFF_BYTES)
    return text[: cut if cut > 0 else _SNIFF_BYTES]


def read_table(path: Path, sep: str | None = None) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header and ``(line number, row dict)`` of a CSV/TSV file (``sep``: the delimiter; None = sniffed);
    ragged rows are an error."""
    text = read_text(path)
    delimiter = sep or sniff_delimiter(_sample(text), path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if not header:
            raise DatasetError(f"{path}: empty file, expected a header line")
        header = [h.strip() for h in header]
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise DatasetError(
                    f"{path} line {reader.line_num}: {len(values)} fields, the header has {len(header)} "
                    f"(columns separated by {delimiter!r}); fix the row (quote fields that contain the separator), "
                    "or name the right separator", option="sep"
                )
            rows.append((reader.line_num, dict(zip(header, values))))
    except csv.Error as e:
        raise DatasetError(f"{path} line {reader.line_num}: malformed CSV ({e}); fix the row") from None
    return header, rows


def read_header(path: Path) -> list[str]:
    """Column names of a CSV/TSV file (first line only; empty list when unreadable)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            line = f.readline().rstrip("\r\n")
    except OSError:
        return []
    return [h.strip() for h in next(csv.reader([line], delimiter=sniff_delimiter(line, path)), [])]
