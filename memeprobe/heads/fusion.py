"""Two-modality fusion heads: ``concat``, ``late``, ``align``, ``cross`` (Hate-CLIPper), ``attention``.

``X`` is ``[image part | text part]``; ``split`` is the width of the image part. For
``attention`` the image part is ``image_tokens`` tokens (e.g. ``image_regions`` (R, D)) and
the text part ``text_tokens`` tokens (1 = one vector).

* concat: an MLP on both parts.
* late: one MLP per modality, each trained with its own loss; the prediction averages their probabilities.
* align / cross (Kumar & Nandakumar 2022, Hate-CLIPper): per-modality linear projection to
  ``proj_dim`` + dropout, L2-normalised, then the element-wise product (align) or the flattened
  ``proj_dim``² outer product (cross) feeds an MLP. ``proj_dim=None`` means 256 for align and 64
  for cross: the paper's 256² = 65 536-wide cross features are costly on a CPU
  (see benchmarks/README_heads.md), 64² = 4 096 keeps it laptop-sized.
  Opt-in ``cross_rank=r`` (not in the paper): the first MLP layer on the outer product is
  factorised, each hidden unit's ``proj_dim × proj_dim`` weight matrix being a rank-``r`` sum
  ``Σ u vᵀ``, so ``h_j = Σ_r (zi·u_jr)(zt·v_jr)`` is computed without forming the outer product:
  ``2·r·proj_dim·hidden`` multiply-adds per row instead of ``proj_dim²·hidden``. Default ``None`` =
  the exact (paper) layer.
* attention: tokens projected to ``d_model`` plus a modality embedding and a [CLS] token go
  through a small pre-norm transformer encoder; the [CLS] output is classified.
"""
from __future__ import annotations

from numbers import Integral

from memeprobe.errors import ConfigError
from memeprobe.heads.choices import FUSIONS
from memeprobe.heads.training import TORCH_CONSTRAINTS, TorchHead, mlp
from memeprobe.params import Choices, Range, to_sklearn


def _modules():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class TwoPart(nn.Module):
        def __init__(self, split):
            super().__init__()
            self.split = split

        def parts(self, x):
            return x[:, :self.split], x[:, self.split:]

    class Concat(TwoPart):
        def __init__(self, split, in_dim, n_out, hidden, dropout):
            super().__init__(split)
            self.net = mlp(in_dim, hidden, n_out, dropout)

        def forward(self, x):
            return self.net(x)

    class Late(TwoPart):
        def __init__(self, split, in_dim, n_out, hidden, dropout):
            super().__init__(split)
            self.image = mlp(split, hidden, n_out, dropout)
            self.text = mlp(in_dim - split, hidden, n_out, dropout)

        def forward(self, x):
            xi, xt = self.parts(x)
            return torch.stack([self.image(xi), self.text(xt)], -1)

    class LowRankBilinear(nn.Module):
        """``h_j = Σ_r (a·U[j, r]) (b·V[j, r]) + c_j``: a rank-``r`` factorised Linear on vec(a bᵀ)."""

        def __init__(self, p, out, rank):
            super().__init__()
            self.out, self.rank = out, rank
            # same output variance at init as nn.Linear(p*p, out) on the unit-norm vec(a bᵀ)
            std = (3.0 * p * p * rank) ** -0.25
            self.U = nn.Parameter(torch.randn(out * rank, p) * std)
            self.V = nn.Parameter(torch.randn(out * rank, p) * std)
            self.bias = nn.Parameter(torch.zeros(out))

        def forward(self, a, b):
            h = (a @ self.U.t()) * (b @ self.V.t())
            return h.view(len(a), self.out, self.rank).sum(-1) + self.bias

    class Product(TwoPart):
        def __init__(self, split, in_dim, n_out, hidden, dropout, proj_dim, outer, rank=None):
            super().__init__(split)
            self.outer = outer
            self.image = nn.Sequential(nn.Linear(split, proj_dim), nn.Dropout(dropout))
            self.text = nn.Sequential(nn.Linear(in_dim - split, proj_dim), nn.Dropout(dropout))
            self.low_rank = None
            if outer and rank:
                hidden = [hidden] if isinstance(hidden, int) else list(hidden)
                self.low_rank = LowRankBilinear(proj_dim, int(hidden[0]), int(rank))
                self.after = nn.Sequential(nn.GELU(), nn.Dropout(dropout))
                self.net = mlp(int(hidden[0]), hidden[1:], n_out, dropout)
            else:
                self.net = mlp(proj_dim * proj_dim if outer else proj_dim, hidden, n_out, dropout)

        def forward(self, x):
            xi, xt = self.parts(x)
            zi, zt = F.normalize(self.image(xi), dim=-1), F.normalize(self.text(xt), dim=-1)
            if self.low_rank is not None:
                return self.net(self.after(self.low_rank(zi, zt)))
            z = (zi[:, :, None] * zt[:, None, :]).flatten(1) if self.outer else zi * zt
            return self.net(z)

    class Attention(TwoPart):
        def __init__(self, split, in_dim, n_out, dropout, image_tokens, text_tokens, d_model, n_layers, n_heads):
            super().__init__(split)
            for part, width, tokens in (("image", split, image_tokens), ("text", in_dim - split, text_tokens)):
                if width % tokens:
                    raise ConfigError(f"attention fusion: the {part} part has {width} values, not divisible "
                                         f"into {tokens} tokens; check --image/--text arrays and token counts")
            self.ri, self.rt = image_tokens, text_tokens
            self.image = nn.Linear(split // image_tokens, d_model)
            self.text = nn.Linear((in_dim - split) // text_tokens, d_model)
            self.kind = nn.Parameter(torch.zeros(2, d_model))
            self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
            layer = nn.TransformerEncoderLayer(d_model, n_heads, 2 * d_model, dropout, batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d_model)
            self.out = nn.Linear(d_model, n_out)
            nn.init.normal_(self.kind, std=0.02)
            nn.init.normal_(self.cls, std=0.02)

        def forward(self, x):
            xi, xt = self.parts(x)
            ti = self.image(xi.reshape(len(x), self.ri, -1)) + self.kind[0]
            tt = self.text(xt.reshape(len(x), self.rt, -1)) + self.kind[1]
            h = self.encoder(torch.cat([self.cls.expand(len(x), -1, -1), ti, tt], 1))
            return self.out(self.norm(h[:, 0]))

    return Concat, Late, Product, Attention


_SIZE = [Range(Integral, 1)]


class FusionHead(TorchHead):
    name = "fusion"
    _parameter_constraints = to_sklearn({
        **TORCH_CONSTRAINTS,
        "fusion": [Choices(FUSIONS)],
        "split": [None, *_SIZE],
        "proj_dim": [None, *_SIZE],
        "cross_rank": [None, *_SIZE],
        "image_tokens": _SIZE, "text_tokens": _SIZE, "d_model": _SIZE, "n_layers": _SIZE, "n_heads": _SIZE,
    })

    def __init__(self, fusion="align", split=None, proj_dim=None, cross_rank=None, hidden=(256,), dropout=0.2, image_tokens=1,
                 text_tokens=1, d_model=128, n_layers=2, n_heads=4, lr=1e-3, weight_decay=1e-2, epochs=30,
                 batch_size=256, patience=5, loss="bce", focal_gamma=2.0, label_smoothing=0.0,
                 class_weight=None, norm="l2", blocks=None, seed=0, device="auto", precision="fp32"):
        self.fusion = fusion
        self.split = split
        self.proj_dim = proj_dim
        self.cross_rank = cross_rank
        self.hidden = hidden
        self.dropout = dropout
        self.image_tokens = image_tokens
        self.text_tokens = text_tokens
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
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
        if not self.split or not 0 < int(self.split) < in_dim:
            raise ConfigError(f"fusion needs split = width of the image part (0 < split < {in_dim}), "
                                 f"got {self.split!r}; pass --image and --text arrays")
        Concat, Late, Product, Attention = _modules()
        split = int(self.split)
        if self.fusion == "concat":
            return Concat(split, in_dim, n_out, self.hidden, self.dropout)
        if self.fusion == "late":
            return Late(split, in_dim, n_out, self.hidden, self.dropout)
        if self.fusion in ("align", "cross"):
            proj = int(self.proj_dim or (256 if self.fusion == "align" else 64))
            return Product(split, in_dim, n_out, self.hidden, self.dropout, proj, self.fusion == "cross",
                           self.cross_rank)
        return Attention(split, in_dim, n_out, self.dropout, int(self.image_tokens), int(self.text_tokens),
                         int(self.d_model), int(self.n_layers), int(self.n_heads))
