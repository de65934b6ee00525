"""Encoder stage: a loaded featurizer run on collated batches → ``{array name: np.ndarray}`` (one row per item).

Batches run under ``torch.inference_mode`` (bf16 autocast on CUDA); on CUDA out-of-memory a batch is
split and the batch size halved (``auto``) until it fits.
"""
from __future__ import annotations

import sys

import numpy as np

from memeprobe.errors import ConfigError

def resolve_device(device: str):
    import torch  # lazy: torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")
    return dev


def to_device(inputs, device, channels_last):
    import torch  # lazy: torch

    out = {}
    for k, v in inputs.items():
        if isinstance(v, torch.Tensor) and k != "size":
            v = v.to(device, non_blocking=True)
            if channels_last and v.ndim == 4:
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


class Encoder:
    """Runs a loaded featurizer on batches of one modality, halving the batch size on CUDA out-of-memory when
    ``halve`` (:func:`~memeprobe.featurize.batching.halves`)."""

    def __init__(self, featurizer, modality, batch_size, halve, channels_last=False):
        self.f, self.modality, self.device = featurizer, modality, featurizer.device
        self.batch_size, self.halve = batch_size, halve
        self.channels_last = channels_last and modality == "image" and getattr(featurizer, "model", None) is not None
        if self.channels_last:
            import torch  # lazy: torch

            featurizer.model.to(memory_format=torch.channels_last)

    def __call__(self, inputs) -> dict:
        import torch  # lazy: torch

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
                if not self.halve or self.batch_size == 1:
                    raise ConfigError(f"{self.f.name}: out of GPU memory at batch size {self.batch_size}; "
                                      "use a smaller --batch-size (or --batch-size auto)") from None
                self.batch_size //= 2
                print(f"{self.f.name}/{self.modality}: out of GPU memory, batch size now {self.batch_size}",
                      file=sys.stderr, flush=True)
                continue
            start = stop
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
