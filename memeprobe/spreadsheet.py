"""CSV cells for people: a text cell a spreadsheet would run as a formula gets a leading ``'``.

A cell starting with ``= + - @``, tab or CR is read as a formula by Excel, LibreOffice and Google Sheets
(OWASP "CSV injection"). Files for people (pairs.csv, the generic prediction CSV) escape such cells;
files for machines (report.json, clean-id lists, competition submissions) keep the exact text."""
from __future__ import annotations

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def is_formula(value) -> bool:
    """Whether a spreadsheet would read the text ``value`` as a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_START)


def safe_cell(value):
    """``value`` with a leading ``'`` when a spreadsheet would read it as a formula; anything else unchanged."""
    return f"'{value}" if is_formula(value) else value


def spreadsheet_safe(table):
    """A copy of the pandas DataFrame ``table`` whose text cells are :func:`safe_cell`."""
    out = table.copy()
    for col in out.columns:
        if pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(out[col]):
            out[col] = [safe_cell(v) for v in out[col]]
    return out
