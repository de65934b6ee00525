"""Writer stage: the feature store, written by one process: it is the ledger of what is done.

``write(rows, values)`` takes encoded rows and commits them to the store (values, then "done" marks,
each fsynced) in groups: as soon as ``COMMIT_ROWS`` rows are waiting or ``COMMIT_SECONDS`` have passed
since the last commit (the first batch at once), and at ``flush()`` (the end of a job, or an interrupted run). So a slow encoder's
batches are committed one by one, while many fast workers' small batches share one commit (two fsyncs)
instead of paying one each. ``fail(rows, reasons)`` marks rows failed at once; ``batch`` does both for
one reader batch. Progress and counts move only when rows are committed, so every reported row survives
a killed run, which resumes from the ledger.
"""
from __future__ import annotations

import time

import numpy as np

COMMIT_ROWS = 256  # rows per commit when batches arrive faster than COMMIT_SECONDS apart
COMMIT_SECONDS = 0.05  # so at most ~20 commits (two fsyncs each) a second


class StoreWriter:
    """Writes one (feature set, modality) of an open store and counts what it wrote into ``summary``."""

    def __init__(self, store, name, modality, summary, progress=None):
        self.store, self.name, self.modality, self.summary = store, name, modality, summary
        self.progress = progress  # callable(n items), e.g. a tqdm bar's update
        self.truncated = 0
        self.pending, self.committed = [], float("-inf")  # a job's first batch does not wait for its second

    def fail(self, rows, reasons) -> None:
        if len(rows):
            self.store.mark_failed(self.name, rows, self.modality, list(reasons))
            self.summary.new_failures += len(rows)
            self._tick(len(rows))

    def write(self, rows, values: dict) -> None:
        if len(rows):
            self.pending.append((np.asarray(rows), values))
            waiting = sum(len(r) for r, _ in self.pending)
            if waiting >= COMMIT_ROWS or time.monotonic() - self.committed >= COMMIT_SECONDS:
                self.flush()

    def flush(self) -> None:
        """Commit the rows waiting (durable when it returns)."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        rows = np.concatenate([r for r, _ in pending])
        values = {a: np.concatenate([v[a] for _, v in pending]) for a in pending[0][1]}
        self.store.write_rows(self.name, rows, values, self.modality)
        self.committed = time.monotonic()
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
