"""Writer stage: the feature store, written by one process: it is the ledger of what is done.

``write(rows, values)`` stores encoded rows and marks them done (durable when it returns);
``fail(rows, reasons)`` marks rows failed with one reason each; ``batch`` does both for one reader
batch. A killed run resumes from the ledger.
"""
from __future__ import annotations

import numpy as np


class StoreWriter:
    """Writes one (feature set, modality) of an open store and counts what it wrote into ``summary``."""

    def __init__(self, store, name, modality, summary, progress=None):
        self.store, self.name, self.modality, self.summary = store, name, modality, summary
        self.progress = progress  # callable(n items), e.g. a tqdm bar's update
        self.truncated = 0

    def fail(self, rows, reasons) -> None:
        if len(rows):
            self.store.mark_failed(self.name, rows, self.modality, list(reasons))
            self.summary.new_failures += len(rows)
            self._tick(len(rows))

    def write(self, rows, values: dict) -> None:
        if len(rows):
            self.store.write_rows(self.name, rows, values, self.modality)
            self.summary.written += len(rows)
            if "text_truncated" in values:
                self.truncated += int(np.asarray(values["text_truncated"]).sum())
            self._tick(len(rows))

    def batch(self, rows, values, failures) -> None:
        """One reader batch: its failed ``(row, reason)`` pairs, then its encoded ``rows`` (values None when none)."""
        self.fail([r for r, _ in failures], [why for _, why in failures])
        if len(rows):
            self.write(rows, values)

    def _tick(self, n: int) -> None:
        if self.progress:
            self.progress(n)
