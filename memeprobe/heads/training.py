"""Shared torch training loop of the neural heads (MLP, fusion, the span tagger).

AdamW with weight decay, mini-batches, optional class weighting (``"balanced"`` → positive
weight ``n_neg / n_pos`` per class), BCE or focal loss with label smoothing, early stopping
on the dev score (AUROC / macro AP) with the best epoch's weights restored. A module may
return ``(n, K, M)`` member logits (late fusion): each member gets the loss, the prediction
is the mean of their probabilities. Runs on CUDA when ``device="auto"`` finds one.

Speed (benchmarks/README_heads.md): float32 contiguous tensors, one shuffled index per epoch and
``index_select`` batches (no DataLoader), the fused AdamW kernel, the running loss kept as a tensor
(no per-batch ``.item()``), dev scored once per epoch under ``inference_mode``. ``precision="bf16"``
(opt-in, heads that expose it) runs the forward pass under bfloat16 autocast.
"""
from __future__ import annotations

import contextlib
import contextvars
import sys
from numbers import Integral, Real

import numpy as np
from tqdm import tqdm

from memeprobe.heads.base import BASE_CONSTRAINTS, Head
from memeprobe.heads.choices import CLASS_WEIGHTS, LOSSES, PRECISIONS
from memeprobe.heads.metrics import dev_score
from memeprobe.heads.validate import Number, Tensor
from memeprobe.heap import reuse_freed_memory
from memeprobe.params import Choices, Range
from memeprobe.threads import recheck

COUNT = Range(Integral, 1)
# the parameters of the shared training loop (every torch head has them)
TORCH_CONSTRAINTS = {
    **BASE_CONSTRAINTS,
    "hidden": ["array-like", COUNT],
    "dropout": [Range(Real, 0, 1, closed="left")],
    "lr": [Range(Real, 0, None, closed="neither")],
    "weight_decay": [Range(Real, 0)],
    "epochs": [COUNT],
    "batch_size": [COUNT],
    "patience": [None, Range(Integral, 0)],
    "loss": [Choices(LOSSES)],
    "focal_gamma": [Range(Real, 0)],
    "label_smoothing": [Range(Real, 0, 1, closed="left")],
    "class_weight": [None, Choices(CLASS_WEIGHTS)],
    "device": [str],
    "precision": [None, Choices(PRECISIONS)],
}


_PROGRESS = contextvars.ContextVar("memeprobe_epoch_progress", default=False)


@contextlib.contextmanager
def epoch_progress(enabled: bool = True):
    """Report training epochs on stderr inside this block: a tqdm bar on a terminal, else one plain line
    per fit."""
    token = _PROGRESS.set(bool(enabled))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


class _Epochs:
    """The epoch loop's progress: a tqdm bar (stderr is a terminal), a closing plain line, or nothing."""

    def __init__(self, name, total):
        self.name, self.total, self.bar = name, total, None
        self.on = _PROGRESS.get()
        if self.on and sys.stderr.isatty():
            self.bar = tqdm(total=total, desc=f"{name} epochs", unit="epoch", leave=False, file=sys.stderr)

    def update(self, loss):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self, epochs, loss):
        if self.bar is not None:
            self.bar.close()
        elif self.on:
            print(f"{self.name}: {epochs}/{self.total} epochs, training loss {loss:.4f}", file=sys.stderr, flush=True)


def _combine(out):
    import torch

    if out.dim() == 3:
        return torch.logit(torch.sigmoid(out).mean(-1), eps=1e-7)
    return out


class TorchHead(Head):
    """A :class:`Head` whose model is a torch module built by ``_build(in_dim, n_out)``.

    ``single_thread``: the whole fit runs on one torch thread (a head of small matrices gains nothing from more,
    and they stall on a busy machine: the span tagger's fit took 19.6 s on two threads, 3.8 s on one, under
    load 4.8 on 2 cores), with denormals flushed to zero (denormal gradients slow CPU math several-fold);
    otherwise only the optimiser step runs on one thread (:func:`one_thread`). ``fused_adamw``: AdamW's fused
    kernel, or (False) its per-parameter loop. :meth:`_epoch_orders` gives each epoch's batch order."""

    single_thread = False
    fused_adamw = True

    def _fit(self, X, Y, dev):
        with _small_matrices() if self.single_thread else contextlib.nullcontext():
            self._train(X, Y, dev)

    def _epoch_orders(self, n: int):
        """Each epoch's permutation of the ``n`` training rows: torch's, seeded by ``seed``."""
        import torch  # lazy: torch only when a torch head trains

        gen = torch.Generator().manual_seed(self.seed)
        while True:
            yield torch.randperm(n, generator=gen)

    def _device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _build(self, in_dim: int, n_out: int):
        raise NotImplementedError

    def _train(self, X, Y, dev):
        import torch  # lazy: torch only when a torch head trains

        from memeprobe.heads._losses import make_loss  # lazy: the losses are torch functions

        dev_ = self._device()
        if dev_.type == "cpu":
            reuse_freed_memory()
        torch.manual_seed(self.seed)
        orders = self._epoch_orders(len(X))
        self.in_dim_ = X.shape[1]
        self.module_ = self._build(self.in_dim_, Y.shape[1]).to(dev_)
        Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(dev_)
        Yt = torch.from_numpy(np.ascontiguousarray(Y, dtype=np.float32)).to(dev_)
        pos_weight = None
        if self.class_weight == "balanced":
            pos = Y.sum(0)
            pos_weight = torch.from_numpy(np.clip((len(Y) - pos) / np.maximum(pos, 1), 0.01, 100.0).astype(np.float32)).to(dev_)
        loss_fn = make_loss(self.loss, self.label_smoothing, self.focal_gamma, pos_weight)
        opt = _adamw(self.module_.parameters(), self.lr, self.weight_decay, self.fused_adamw)
        autocast = _autocast(self.precision, dev_)
        best, best_state, bad = -np.inf, None, 0
        self.history_ = []
        n, bs = len(X), int(self.batch_size)
        progress = _Epochs(self.name, int(self.epochs))
        for epoch in range(int(self.epochs)):
            self.module_.train()
            total = torch.zeros((), device=dev_)
            # one permutation per epoch (same batches as before); gather rows with index_select, no DataLoader
            for idx in next(orders).to(dev_).split(bs):
                with autocast:
                    out = self.module_(Xt.index_select(0, idx))
                out = out.float()
                y = Yt.index_select(0, idx)
                loss = (sum(loss_fn(out[..., m], y) for m in range(out.shape[-1])) / out.shape[-1]
                        if out.dim() == 3 else loss_fn(out, y))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                with one_thread():
                    opt.step()
                total += loss.detach() * len(idx)
            score = dev_score(dev[1], self._logits(dev[0])) if dev is not None else float("nan")
            self.history_.append((epoch + 1, float(total) / n, float(score)))
            progress.update(self.history_[-1][1])
            if not self.single_thread:  # the machine got busier or quieter: move torch's threads
                recheck()
            if dev is None:
                continue
            if score > best:
                best, bad, self.best_epoch_ = score, 0, epoch + 1
                best_state = {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
            else:
                bad += 1
                if self.patience and bad >= self.patience:
                    break
        progress.close(len(self.history_), self.history_[-1][1] if self.history_ else float("nan"))
        if best_state is not None:
            self.module_.load_state_dict(best_state)
        else:
            self.best_epoch_ = len(self.history_)

    def _logits(self, X):
        import torch

        dev_ = next(self.module_.parameters()).device
        self.module_.eval()
        outs = []
        with torch.inference_mode():
            for start in range(0, len(X), 8192):
                xb = torch.from_numpy(np.ascontiguousarray(X[start:start + 8192])).to(dev_)
                outs.append(_combine(self.module_(xb)).float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, self.n_outputs_), np.float32)

    def __getstate__(self):  # the module as its weights: fusion's modules are local classes
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns the live __dict__
        if "module_" in state:
            state["module_"] = {k: v.detach().cpu() for k, v in self.module_.state_dict().items()}
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if isinstance(getattr(self, "module_", None), dict):
            weights, self.module_ = self.module_, self._build(self.in_dim_, self.n_outputs_)
            self.module_.load_state_dict(weights)
            self.module_.to(self._device())

    def _state(self):
        return {"in_dim": int(self.in_dim_), "best_epoch": int(self.best_epoch_),
                "weights": {k: v.detach().cpu() for k, v in self.module_.state_dict().items()}}

    def _state_spec(self, state, n_features, n_outputs):
        """The module this head's parameters build, on torch's meta device (shapes only, no memory)."""
        import torch

        with torch.device("meta"):
            module = self._build(n_features, n_outputs)
        return {"in_dim": Number(int, n_features, n_features), "best_epoch": Number(int, 0),
                **{f"weights.{k}": Tensor(tuple(v.shape)) for k, v in module.state_dict().items()}}

    def _set_state(self, s):
        self.in_dim_, self.best_epoch_ = s["in_dim"], s["best_epoch"]
        self.module_ = self._build(self.in_dim_, self.n_outputs_)
        self.module_.load_state_dict(s["weights"])
        self.module_.to(self._device())


def _autocast(precision, device):
    """``fp32`` (default): plain float32. ``bf16`` (opt-in): matrix products in bfloat16 under
    torch.autocast (parameters, optimiser and loss stay float32); 2-3x faster GEMMs on CPUs with
    AVX512-BF16 / AMX, at bfloat16 rounding of the activations. Inference is always float32."""
    import torch

    if precision in (None, "fp32"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _adamw(params, lr, weight_decay, fused=True):
    """AdamW; the fused kernel (one pass over each parameter) where asked and this torch has it."""
    import torch

    params = list(params)
    if not fused:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


@contextlib.contextmanager
def _small_matrices():
    """One torch thread and denormals flushed to zero, for a whole fit of small matrices."""
    import torch

    with one_thread():
        torch.set_flush_denormal(True)
        try:
            yield
        finally:
            torch.set_flush_denormal(False)


@contextlib.contextmanager
def one_thread():
    """Run the optimiser step on one thread: the fused AdamW kernel is memory-bound, and with two
    OpenMP threads it took 15-24 ms per step for a 394k-parameter MLP instead of 0.17 ms on one
    (benchmarks/README_heads.md)."""
    import torch

    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def mlp(in_dim: int, hidden, out_dim: int, dropout: float):
    """Linear → GELU → Dropout blocks, then a linear output layer."""
    from torch import nn

    layers, d = [], in_dim
    for h in ([hidden] if isinstance(hidden, int) else list(hidden)):
        layers += [nn.Linear(d, int(h)), nn.GELU(), nn.Dropout(dropout)]
        d = int(h)
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)
