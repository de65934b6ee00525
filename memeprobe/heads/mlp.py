"""MLP head on the concatenated arrays (torch; CPU, or CUDA when present)."""
from __future__ import annotations

from memeprobe.heads.training import TORCH_CONSTRAINTS, TorchHead, mlp
from memeprobe.params import to_sklearn


class MLPHead(TorchHead):
    name = "mlp"
    _parameter_constraints = to_sklearn(TORCH_CONSTRAINTS)

    def __init__(self, hidden=(256,), dropout=0.2, lr=1e-3, weight_decay=1e-2, epochs=30, batch_size=256,
                 patience=5, loss="bce", focal_gamma=2.0, label_smoothing=0.0, class_weight=None,
                 norm="standard", blocks=None, seed=0, device="auto", precision="fp32"):
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.loss = loss
        self.focal_gamma = focal_gamma
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.norm = norm
        self.blocks = blocks
        self.seed = seed
        self.device = device
        self.precision = precision

    def _build(self, in_dim, n_out):
        return mlp(in_dim, self.hidden, n_out, self.dropout)
