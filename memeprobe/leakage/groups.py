"""Duplicate groups: connected components of the duplicate-pair graph, fed block by block, and for every member
the pair that links it to its group.

A group is a connected component, so two members may share nothing but a path of duplicate pairs (A's text is
B's, B's picture is C's). Each group is therefore shown as a tree around its *anchor* (its representative: the
first member in the train split, else its first member): every other member is listed with its *linking pair*,
its partner one step closer to the anchor and the number of pairs (``hops``) between it and the anchor. The tree
is the breadth-first tree over the listed pairs and a spanning forest kept while the pairs stream by (one real
pair per merge of two components, at most one per row), so it is a shortest-path tree wherever every pair of the
group is listed, and memory stays linear in the rows however many pairs there are.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import breadth_first_order, connected_components

from memeprobe.leakage.pairs import EVIDENCE

MERGE_EVERY = 1 << 20  # pairs buffered between two component merges (besides one per row)


def _graph(n_nodes: int, a: np.ndarray, b: np.ndarray):
    return sparse.coo_matrix((np.ones(len(a), np.float32), (a, b)), shape=(n_nodes, n_nodes)).tocsr()


def bfs_tree(n_rows: int, a: np.ndarray, b: np.ndarray, roots: np.ndarray):
    """Breadth-first tree of the undirected graph of pairs ``(a, b)``, grown from every row of ``roots`` at once:
    ``(order, parent)``: the rows reached, parents first, and each row's parent (-1 for the roots and the rows
    not reached)."""
    virtual = n_rows  # one extra node linked to every root: one search reaches every component with a root
    graph = _graph(n_rows + 1, np.concatenate([a, np.full(len(roots), virtual)]), np.concatenate([b, roots]))
    order, pred = breadth_first_order(graph, virtual, directed=False, return_predecessors=True)
    parent = np.where((pred[:n_rows] >= 0) & (pred[:n_rows] != virtual), pred[:n_rows], -1)
    return order[1:], parent


def hops_from_roots(order: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Pairs between each row and its tree's root (from :func:`bfs_tree`; -1 for rows not reached)."""
    hops = np.full(len(parent), -1, np.int64)
    hops[order] = 0
    for row in order:  # parents come first
        if parent[row] >= 0:
            hops[row] = hops[parent[row]] + 1
    return hops


class Components:
    """Connected components of pairs added in blocks, and a spanning forest of them (``forest``: (2, m) real pairs,
    m < rows); memory is the rows plus a bounded buffer of pairs."""

    def __init__(self, n_rows: int):
        self.n = n_rows
        self.label = np.arange(n_rows)  # component per row, named by its first row
        self.in_pair = np.zeros(n_rows, bool)
        self.forest = np.zeros((2, 0), np.int64)
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
        """Bring ``label`` and ``forest`` up to date with the pairs added."""
        if not self._buffered:
            return
        self.merges += 1
        a = np.concatenate([self.forest[0]] + self._a)
        b = np.concatenate([self.forest[1]] + self._b)
        self._a, self._b, self._buffered = [], [], 0
        _, comp = connected_components(_graph(self.n, a, b), directed=False)
        first = np.zeros(int(comp.max(initial=-1)) + 1, np.int64)
        first[comp[::-1]] = np.arange(self.n)[::-1]
        self.label = first[comp]
        _, parent = bfs_tree(self.n, a, b, first)
        child = np.flatnonzero(parent >= 0)
        self.forest = np.stack([parent[child], child])

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


def anchors(group_of_row: np.ndarray, first_split: np.ndarray) -> np.ndarray:
    """Each group's anchor (indexed by group id): its first row with ``first_split`` (the train split), else its
    first row."""
    rows = np.flatnonzero(group_of_row >= 0)
    g = group_of_row[rows]
    width = int(g.max(initial=-1)) + 1
    anchor = np.full(width, np.iinfo(np.int64).max)
    np.minimum.at(anchor, g, rows)
    train = rows[first_split[rows]]
    in_train = np.full(width, np.iinfo(np.int64).max)
    np.minimum.at(in_train, group_of_row[train], train)
    return np.where(in_train < np.iinfo(np.int64).max, in_train, anchor)


def linking_tree(n_rows: int, group_of_row: np.ndarray, anchor: np.ndarray, edges: np.ndarray):
    """``(parent, hops)`` per row: the breadth-first tree of each group over ``edges`` ((2, m) pairs that connect
    every group: the listed pairs and the spanning forest) from its ``anchor``."""
    order, parent = bfs_tree(n_rows, edges[0], edges[1], anchor[:int(group_of_row.max(initial=-1)) + 1])
    return parent, hops_from_roots(order, parent)


def summarize_groups(pairs: pd.DataFrame, group_of_row: np.ndarray, ids, splits, train_split=None,
                     facts: dict | None = None, summarised: np.ndarray | None = None,
                     tree: tuple | None = None) -> list[dict]:
    """One record per group: its representative (the anchor: first ``train_split`` member, else first member),
    every member ``[split, id]``, splits, kinds present, whether labels flip in it, pairs listed, ``hops`` (the most
    pairs between a member and the anchor: 1 when every member pairs with the anchor) and ``links``: each other
    member with its linking pair (``linked_to``, ``hops``, ``found_by`` and the pair's ``evidence``), nearest first.

    ``facts`` (``stream.Tally.group_facts``) give the kinds and label flips of every pair found, not only
    the listed ones; a ``summarised`` group also records ``pairs_found``, the pairs it stands for. ``tree``
    (``(parent, hops)`` per row, :func:`linking_tree`) defaults to the tree over the listed pairs; every linking
    pair must be listed."""
    rows = np.flatnonzero(group_of_row >= 0)
    if len(rows) == 0:
        return []
    n = len(group_of_row)
    members = pd.Series(rows).groupby(group_of_row[rows]).agg(list)
    by_group = pairs.assign(flip=pairs.label_relation == "flip").groupby(group_of_row[pairs.a.to_numpy()])
    listed = by_group.size()
    if facts is None:
        kinds, flips = by_group.kind.agg(lambda k: sorted(set(k))), by_group.flip.any()
    else:
        kinds, flips = facts["kinds"], facts["flip"]
    anchor = anchors(group_of_row, np.asarray(splits, dtype=object) == train_split)
    if tree is None:
        tree = linking_tree(n, group_of_row, anchor, np.stack([pairs.a.to_numpy(np.int64), pairs.b.to_numpy(np.int64)]))
    parent, hops = tree
    links = _links(pairs, group_of_row, parent, hops, ids, splits)

    def key(r):
        return [str(splits[r]), str(ids[r])]
    return [{
        "group": int(g),
        "size": len(members[g]),
        "representative": key(anchor[g]),
        "members": [key(r) for r in members[g]],
        "pairs": int(listed.get(g, 0)),
        **({"pairs_found": int(facts["found"][g])} if summarised is not None and summarised[g] else {}),
        "splits": sorted({str(splits[r]) for r in members[g]}),
        "kinds": kinds[g],
        "label_flip": bool(flips[g]),
        "hops": int(hops[members[g]].max()),
        "links": links.get(g, []),
    } for g in members.index]


def _links(pairs: pd.DataFrame, group_of_row, parent, hops, ids, splits) -> dict[int, list[dict]]:
    """Per group, its members other than the anchor with their linking pair (from the listed ``pairs``)."""
    child = np.flatnonzero(parent >= 0)
    child = child[np.lexsort((child, hops[child]))]
    a, b = pairs.a.to_numpy(np.int64), pairs.b.to_numpy(np.int64)
    at = pd.Series(np.arange(len(pairs)), index=pd.MultiIndex.from_arrays([np.minimum(a, b), np.maximum(a, b)]))
    p = parent[child]
    found = at.reindex(pd.MultiIndex.from_arrays([np.minimum(child, p), np.maximum(child, p)])).to_numpy()
    assert not np.isnan(found).any(), "every linking pair is listed"
    rec = pairs.iloc[found.astype(np.int64)]
    scores = rec[list(EVIDENCE)].to_numpy(np.float64)
    by_via = rec["found_by"].to_numpy(object) if "found_by" in rec else [""] * len(rec)
    out: dict[int, list[dict]] = {}
    for k, (row, via) in enumerate(zip(child.tolist(), p.tolist())):
        out.setdefault(int(group_of_row[row]), []).append({
            "member": [str(splits[row]), str(ids[row])], "linked_to": [str(splits[via]), str(ids[via])],
            "hops": int(hops[row]), "found_by": by_via[k],
            "evidence": {name: _number(v) for name, v in zip(EVIDENCE, scores[k]) if not np.isnan(v)}})
    return out


def _number(v: float):
    return int(v) if float(v).is_integer() else round(float(v), 4)
