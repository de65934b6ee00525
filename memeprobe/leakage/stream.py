"""One pass over every duplicate pair (``classes.PairStream``), keeping per-row and per-split-pair numbers
and the pairs to list, so memory is linear in the memes and the listed pairs however many pairs there are.

:class:`Tally` classifies each block of pairs (``pairs.evidence``, kinds, scopes, label relations) and
keeps: the counts per split pair of the report's summary table, the connected components (groups), the
eval rows with a train duplicate (clean ids), the leak-exploit votes, and per row what its pairs hold
(how many, how many from near-duplicate links, kinds, label flips). These are exact: every pair the
detectors found counts, listed or not.

It also picks the pairs the report lists: every pair of a group with at most ``max_pairs``
near-duplicate pairs; in a larger group (thousands of one-token variants of one caption are millions of
pairs) the pairs of identical texts / pictures as ``classes`` bounds them, and of its near-duplicate
pairs only *witnesses*: for each member, the first pair with a partner of each split and label relation
(agree, flip, unlabelled). So every member is listed, with a train partner when it has one and a label
flip when it has one, in O(members) pairs; the group records how many pairs it stands for. Near pairs
wait in a buffer until their group is known to be too large, checked whenever the groups are merged.
"""
from __future__ import annotations

import numpy as np

from memeprobe.leakage import exploit, groups, pairs

COUNTS = ("pairs", "exact_text", "near_text", "exact_image", "near_image", "confounders", "label_flips")


class Tally:
    """The pass over the pair stream (see the module docstring).

    ``order``: each row's split as its position in the split order (the train split at 0); ``near``:
    evidence name -> links; ``near_sources``: the first stream ``source`` that is a near detector;
    ``labels``: multi-label rows (then no leak-exploit votes)."""

    def __init__(self, *, order, n_splits, tcls, icls, near, image_ok, text_ok, label, labels=None,
                 near_sources: int, max_pairs: int):
        n = len(order)
        self.n, self.order, self.n_splits = n, order, n_splits
        self.tcls, self.icls, self.near = tcls, icls, near
        self.image_ok, self.text_ok, self.label, self.labels = image_ok, text_ok, label, labels
        self.near_sources, self.max_pairs = near_sources, max_pairs
        self.counts = np.zeros((len(COUNTS), n_splits * n_splits), np.int64)
        self.components = groups.Components(n)
        self.found = np.zeros(n, np.int64)  # pairs, counted at their first row
        self.near_found = np.zeros(n, np.int64)  # of them given by a near-duplicate link
        self.kinds = np.zeros((len(pairs.KINDS), n), bool)
        self.flip = np.zeros(n, bool)
        self.leaked = np.zeros(n, bool)  # eval rows with a train duplicate
        self.votes = exploit.Votes(label, order) if labels is None else None
        self._exact: list[np.ndarray] = []  # listed pairs (a, b) of identical texts / pictures
        self._near: list[np.ndarray] = []  # near pairs of groups not (yet) too large
        self._witness: list[np.ndarray] = []  # first near pair per (row, partner split, label relation)
        self._seen = np.zeros(n * n_splits * len(pairs.RELATIONS), bool)
        self._merges = 0

    def add(self, a: np.ndarray, b: np.ndarray, source: int, known: dict) -> None:
        """One block of the stream (``classes.PairStream``)."""
        if not len(a):
            return
        found = pairs.evidence(a, b, self.tcls, self.icls, self.near, known)
        kind = pairs.kind_codes(found, self.image_ok[a] & self.image_ok[b], self.text_ok[a] & self.text_ok[b])
        relation = pairs.relation_codes(a, b, self.label, self.labels)
        oa, ob = self.order[a], self.order[b]
        cell = np.minimum(oa, ob) * self.n_splits + np.maximum(oa, ob)

        def hit(*names):
            out = np.zeros(len(a), bool)
            for name in names:
                if name in found:
                    out |= found[name][0]
            return out
        exact_text, exact_image = hit("text_exact"), hit("image_exact")
        for k, mask in enumerate((None, exact_text, ~exact_text & hit("text_jaccard", "text_cosine"), exact_image,
                                  ~exact_image & hit("image_phash", "image_cosine"),
                                  np.isin(kind, [pairs.KINDS.index(k) for k in pairs.CONFOUNDER_KINDS]),
                                  relation == 2)):
            self.counts[k] += np.bincount(cell if mask is None else cell[mask], minlength=len(self.counts[k]))
        self.found += np.bincount(a, minlength=self.n)
        for k in range(len(pairs.KINDS)):
            self.kinds[k, a[kind == k]] = True
        self.flip[a[relation == 2]] = True
        cross = pairs.scope_codes(oa, ob) == 0
        self.leaked[np.where(oa == 0, b, a)[cross]] = True
        if self.votes is not None:
            self.votes.add(a, b, kind, relation)
        if source < self.near_sources:
            self._exact.append(np.stack([a, b]))
        else:
            self.near_found += np.bincount(a, minlength=self.n)
            self._near.append(np.stack([a, b]))
            self._witnesses(a, b, oa, ob, relation)
        self.components.add(a, b)
        if self.components.merges > self._merges:
            self._merges = self.components.merges
            self._near = [self._unsummarised(np.concatenate(self._near, axis=1), self.components.label)]

    def _witnesses(self, a, b, oa, ob, relation) -> None:
        s, r = self.n_splits, len(pairs.RELATIONS)
        new = np.zeros(len(a), bool)
        keys = [(a * s + ob) * r + relation, (b * s + oa) * r + relation]
        for key in keys:
            first = np.unique(key, return_index=True)[1]
            new[first[~self._seen[key[first]]]] = True
        for key in keys:
            self._seen[key[new]] = True
        self._witness.append(np.stack([a[new], b[new]]))

    def _unsummarised(self, ab: np.ndarray, label: np.ndarray) -> np.ndarray:
        """The pairs ``ab`` (2, m) whose group (``label`` per row) has at most ``max_pairs`` near pairs."""
        near = np.bincount(label, self.near_found, minlength=self.n)
        return ab[:, near[label[ab[0]]] <= self.max_pairs]

    def finish(self):
        """``(group_of_row, facts, summarised, listed (2, m) pairs, tree)`` once every block is added: groups
        numbered largest first (``groups.Components``), :meth:`group_facts`, per group whether only
        witnesses of its near pairs are listed, and each row's linking pair to its group's anchor (``tree``:
        ``(parent, hops)``, ``groups.linking_tree`` over the listed pairs and the spanning forest; the forest's
        pairs it uses are listed too)."""
        group_of_row = self.components.group_of_row()
        facts = self.group_facts(group_of_row)
        summarised = facts["near"] > self.max_pairs
        near = self._unsummarised(np.concatenate([np.zeros((2, 0), np.int64)] + self._near, axis=1),
                                  self.components.label)
        witness = np.concatenate([np.zeros((2, 0), np.int64)] + self._witness, axis=1)
        witness = witness[:, summarised[group_of_row[witness[0]]]]
        listed = np.concatenate([np.zeros((2, 0), np.int64)] + self._exact + [near, witness], axis=1)
        anchor = groups.anchors(group_of_row, self.order == 0)
        parent, hops = groups.linking_tree(self.n, group_of_row, anchor,
                                           np.concatenate([listed, self.components.forest], axis=1))
        child = np.flatnonzero(parent >= 0)
        link = np.sort(np.stack([child, parent[child]]), axis=0)
        link = link[:, ~np.isin(link[0] * self.n + link[1], listed[0] * self.n + listed[1])]
        return group_of_row, facts, summarised, np.concatenate([listed, link], axis=1), (parent, hops)

    def summary(self, split_names: list[str], labelled_splits=()) -> list[dict]:
        """Per split pair (cross-split pairs first, then within-split): pair counts by evidence,
        confounders, label flips."""
        s = len(split_names)
        order = [(i, j) for i in range(s) for j in range(i + 1, s)] + [(i, i) for i in range(s)]
        return [{"split_a": split_names[i], "split_b": split_names[j], "scope": "within" if i == j else "cross",
                 **{name: int(self.counts[k, i * s + j]) for k, name in enumerate(COUNTS)},
                 "labelled": split_names[i] in labelled_splits and split_names[j] in labelled_splits}
                for i, j in order]

    def group_facts(self, group_of_row: np.ndarray) -> dict:
        """Per group id: ``found`` (pairs), ``near`` (of them from near links), ``kinds`` (names present),
        ``flip`` (labels flip in some pair)."""
        rows = np.flatnonzero(group_of_row >= 0)
        g = group_of_row[rows]
        width = int(g.max(initial=-1)) + 1
        kinds = np.stack([np.bincount(g, self.kinds[k, rows], width) > 0 for k in range(len(pairs.KINDS))], 1)
        return {"found": np.bincount(g, self.found[rows], width).astype(np.int64),
                "near": np.bincount(g, self.near_found[rows], width).astype(np.int64),
                "kinds": [sorted(pairs.KINDS[k] for k in np.flatnonzero(row)) for row in kinds],
                "flip": np.bincount(g, self.flip[rows], width) > 0}

    def clean_ids(self, ids, splits, eval_splits) -> dict[str, list[str]]:
        """Ids of each eval split with no duplicate (text or image) in the train split."""
        return {s: [str(ids[r]) for r in np.flatnonzero((splits == s) & ~self.leaked)] for s in eval_splits}
