"""Average of several fitted heads' probabilities (``--ensemble`` over ``--seeds``)."""
from __future__ import annotations

import numpy as np

from memeprobe.errors import MemeprobeError


class EnsembleHead:
    """Mean probability of ``members`` (fitted heads of one target shape); has its own thresholds."""

    name = "ensemble"

    def __init__(self, members):
        if not members:
            raise MemeprobeError("an ensemble needs at least one fitted head")
        self.members = list(members)
        self.multilabel_ = members[0].multilabel_
        self.n_outputs_ = members[0].n_outputs_
        self.thresholds_ = np.full(self.n_outputs_, 0.5)

    def get_params(self, deep=True):
        return {"members": [m.name for m in self.members], "member_params": self.members[0].get_params()}

    def predict_proba(self, X):
        return np.mean([m.predict_proba(X) for m in self.members], axis=0)

    def predict(self, X):
        from memeprobe.heads.thresholds import decide

        return decide(self.predict_proba(X), self.thresholds_, getattr(self, "rule_", None))

    def to_dict(self):
        import torch

        from memeprobe.heads.base import _rule

        return {"head": self.name, "members": [m.to_dict() for m in self.members],
                "thresholds": torch.as_tensor(self.thresholds_), "rule": _rule(self)}

    def save(self, path, meta=None):
        from memeprobe.heads.base import save_model

        return save_model(path, self, meta or {})
