"""Encoder stage: a loaded featurizer run on collated batches → ``{array name: np.ndarray}`` (one row per item).

Batches run under ``torch.inference_mode`` (bf16 autocast on CUDA); on CUDA out-of-memory a batch is
split and the batch size halved (``auto``) until it fits.
"""
from __future__ import annotations

import sys

import numpy as np

from memeprobe.errors import MemeprobeError

CPU_BATCH = {"image": 32, "text": 128}  # --batch-size auto on CPU
CUDA_START_BATCH = 1024  # --batch-size auto on CUDA: halved on out-of-memory until it fits


def batch_size(requested, modality: str, cuda: bool) -> int:
    """Items per batch: ``requested`` (--batch-size) or, for auto, 32/128 on CPU and CUDA_START_BATCH on CUDA."""
    if requested != "auto":
        return int(requested)
    return CUDA_START_BATCH if cuda else CPU_BATCH[modality]


def resolve_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MemeprobeError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")
    return dev


def to_device(inputs, device, channels_last):
    import torch

    out = {}
    for k, v in inputs.items():
        if isinstance(v, torch.Tensor) and k != "size":
            v = v.to(device, non_blocking=True)
            if channels_last and v.ndim == 4:
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


class Encoder:
    """Runs a loaded featurizer on batches of one modality, halving the batch size on CUDA out-of-memory."""

    def __init__(self, featurizer, modality, batch_size, auto, channels_last=False):
        self.f, self.modality, self.device = featurizer, modality, featurizer.device
        self.batch_size, self.auto = batch_size, auto and self.device.type == "cuda"
        self.channels_last = channels_last and modality == "image" and getattr(featurizer, "model", None) is not None
        if self.channels_last:
            import torch

            featurizer.model.to(memory_format=torch.channels_last)

    def __call__(self, inputs) -> dict:
        import torch

        n = len(next(v for v in inputs.values() if isinstance(v, torch.Tensor)))
        parts, start = [], 0
        while start < n:
            stop = min(n, start + self.batch_size)
            chunk = {k: v[start:stop] for k, v in inputs.items()}
            try:
                with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=self.device.type == "cuda"):
                    parts.append(self.f.encode(to_device(chunk, self.device, self.channels_last), self.modality))
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if not self.auto or self.batch_size == 1:
                    raise MemeprobeError(f"{self.f.name}: out of GPU memory at batch size {self.batch_size}; "
                                         "use a smaller --batch-size (or --batch-size auto)") from None
                self.batch_size //= 2
                print(f"{self.f.name}/{self.modality}: out of GPU memory, batch size now {self.batch_size}",
                      file=sys.stderr, flush=True)
                continue
            start = stop
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
