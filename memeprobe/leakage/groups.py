"""Duplicate groups: connected components of the duplicate-pair graph, fed block by block."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

MERGE_EVERY = 1 << 20  # pairs buffered between two component merges (besides one per row)


class Components:
    """Connected components of pairs added in blocks; memory is the rows plus a bounded buffer of pairs."""

    def __init__(self, n_rows: int):
        self.n = n_rows
        self.label = np.arange(n_rows)
        self.in_pair = np.zeros(n_rows, bool)
        self._a: list[np.ndarray] = []
        self._b: list[np.ndarray] = []
        self._buffered = 0
        self.merges = 0  # times ``label`` was brought up to date

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        self.in_pair[a] = True
        self.in_pair[b] = True
        self._a.append(a)
        self._b.append(b)
        self._buffered += len(a)
        if self._buffered >= max(self.n, MERGE_EVERY):
            self.merge()

    def merge(self) -> None:
        """Bring ``label`` (a component id per row) up to date with the pairs added."""
        if not self._buffered:
            return
        self.merges += 1
        a = np.concatenate(self._a + [np.arange(self.n)])
        b = np.concatenate(self._b + [self.label])
        graph = sparse.coo_matrix((np.ones(len(a), np.float32), (a, b)), shape=(self.n, self.n))
        _, self.label = connected_components(graph, directed=False)
        self._a, self._b, self._buffered = [], [], 0

    def group_of_row(self) -> np.ndarray:
        """Group id per row (``-1`` for rows in no pair); ids are numbered largest group first, then by
        first row."""
        self.merge()
        comp = self.label
        sizes = np.bincount(comp[self.in_pair], minlength=int(comp.max(initial=-1)) + 1)
        ranked = np.argsort(-sizes, kind="stable")
        renumber = np.empty_like(ranked)
        renumber[ranked] = np.arange(len(ranked))
        return np.where(self.in_pair, renumber[comp], -1)


def summarize_groups(pairs: pd.DataFrame, group_of_row: np.ndarray, ids, splits, train_split=None,
                     facts: dict | None = None, summarised: np.ndarray | None = None) -> list[dict]:
    """One record per group: its representative (first ``train_split`` member, else first member) and every
    member ``[split, id]``, splits, kinds present, whether labels flip in it, pairs listed.

    ``facts`` (``stream.Tally.group_facts``) give the kinds and label flips of every pair found, not only
    the listed ones; a ``summarised`` group also records ``pairs_found``, the pairs it stands for."""
    rows = np.flatnonzero(group_of_row >= 0)
    if len(rows) == 0:
        return []
    members = pd.Series(rows).groupby(group_of_row[rows]).agg(list)
    by_group = pairs.assign(flip=pairs.label_relation == "flip").groupby(group_of_row[pairs.a.to_numpy()])
    listed = by_group.size()
    if facts is None:
        kinds, flips = by_group.kind.agg(lambda k: sorted(set(k))), by_group.flip.any()
    else:
        kinds, flips = facts["kinds"], facts["flip"]

    def representative(rows):
        return next((r for r in rows if splits[r] == train_split), rows[0])
    return [{
        "group": int(g),
        "size": len(members[g]),
        "representative": [str(splits[representative(members[g])]), str(ids[representative(members[g])])],
        "members": [[str(splits[r]), str(ids[r])] for r in members[g]],
        "pairs": int(listed.get(g, 0)),
        **({"pairs_found": int(facts["found"][g])} if summarised is not None and summarised[g] else {}),
        "splits": sorted({str(splits[r]) for r in members[g]}),
        "kinds": kinds[g],
        "label_flip": bool(flips[g]),
    } for g in members.index]
