"""Losses on sigmoid outputs: BCE and focal, with label smoothing and per-class positive weights."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from memeprobe.errors import ConfigError
from memeprobe.heads.choices import LOSSES


def smooth(targets: torch.Tensor, eps: float) -> torch.Tensor:
    """Binary label smoothing: 1 → 1 - eps/2, 0 → eps/2."""
    return targets * (1 - eps) + eps / 2 if eps else targets


def bce(logits, targets, pos_weight=None, label_smoothing=0.0):
    return F.binary_cross_entropy_with_logits(logits, smooth(targets, label_smoothing), pos_weight=pos_weight)


def focal(logits, targets, pos_weight=None, label_smoothing=0.0, gamma=2.0, alpha=-1.0):
    """Sigmoid focal loss (Lin et al. 2017): BCE scaled by ``(1 - p_t) ** gamma``; ``alpha`` < 0 = no alpha."""
    t = smooth(targets, label_smoothing)
    ce = F.binary_cross_entropy_with_logits(logits, t, pos_weight=pos_weight, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * t + (1 - alpha) * (1 - t))
    return loss.mean()


def make_loss(name="bce", label_smoothing=0.0, gamma=2.0, pos_weight=None):
    """``loss(logits, targets)`` for ``name`` in :data:`LOSSES`."""
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    if not 0 <= label_smoothing < 1:
        raise ConfigError(f"label smoothing must be in [0, 1), got {label_smoothing}")
    if name == "bce":
        return lambda z, y: bce(z, y, pos_weight, label_smoothing)
    return lambda z, y: focal(z, y, pos_weight, label_smoothing, gamma)
