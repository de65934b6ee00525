"""Text normalisation: the form two captions must share to count as the same text.

Normalisation (:func:`normalize_text`), applied in this order:
1. Unicode NFKC (full-width letters, ligatures, non-breaking spaces become their plain forms);
2. ``str.casefold`` (case-insensitive, also for non-ASCII);
3. every Unicode punctuation character (general category ``P*``) becomes a space;
4. runs of whitespace collapse to one space; leading/trailing whitespace is removed.
The leakage report's exact and near text duplicates and the synthetic sample's planted copies use it.
"""
from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")


class _Punctuation(dict):
    """``str.translate`` table: punctuation (category ``P*``) to a space, anything else to itself; filled in
    per character on first sight."""

    def __missing__(self, c: int):
        self[c] = " " if unicodedata.category(chr(c)).startswith("P") else c
        return self[c]


_PUNCTUATION = _Punctuation()


def normalize_text(text: str) -> str:
    """The normalised form two texts must share to count as exact duplicates."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_PUNCTUATION)
    return _SPACE.sub(" ", text).strip()


def tokens(text: str) -> set[str]:
    """Word tokens of the normalised text."""
    return set(normalize_text(text).split())
