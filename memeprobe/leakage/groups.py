"""Duplicate groups: connected components of the duplicate-pair graph."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components


def group_rows(pairs: pd.DataFrame, n_rows: int) -> np.ndarray:
    """Component id per row (``-1`` for rows in no pair); ids are numbered largest group first."""
    if len(pairs) == 0:
        return np.full(n_rows, -1, dtype=np.int64)
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs.a.to_numpy(), pairs.b.to_numpy())),
                              shape=(n_rows, n_rows))
    _, comp = connected_components(graph, directed=False)
    in_pair = np.zeros(n_rows, bool)
    in_pair[pairs.a.to_numpy()] = in_pair[pairs.b.to_numpy()] = True
    sizes = np.bincount(comp[in_pair], minlength=comp.max() + 1)
    ranked = np.argsort(-sizes, kind="stable")
    renumber = np.empty_like(ranked)
    renumber[ranked] = np.arange(len(ranked))
    return np.where(in_pair, renumber[comp], -1)


def summarize_groups(pairs: pd.DataFrame, group_of_row: np.ndarray, ids, splits, train_split=None) -> list[dict]:
    """One record per group: its representative (first ``train_split`` member, else first member) and every
    member ``[split, id]``, splits, kinds present, whether labels flip in it, pairs listed."""
    if len(pairs) == 0:
        return []
    rows = np.flatnonzero(group_of_row >= 0)
    members = pd.Series(rows).groupby(group_of_row[rows]).agg(list)
    by_group = pairs.assign(flip=pairs.label_relation == "flip").groupby(group_of_row[pairs.a.to_numpy()])
    kinds = by_group.kind.agg(lambda k: sorted(set(k)))
    flips = by_group.flip.any()
    listed = by_group.size()

    def representative(rows):
        return next((r for r in rows if splits[r] == train_split), rows[0])
    return [{
        "group": int(g),
        "size": len(members[g]),
        "representative": [str(splits[representative(members[g])]), str(ids[representative(members[g])])],
        "members": [[str(splits[r]), str(ids[r])] for r in members[g]],
        "pairs": int(listed[g]),
        "splits": sorted({str(splits[r]) for r in members[g]}),
        "kinds": kinds[g],
        "label_flip": bool(flips[g]),
    } for g in members.index]
