"""Batch policy, decided here for both engines: items per batch (``--batch-size``, ``auto``), whether a batch
halves on CUDA out-of-memory, DataLoader workers, and how a job's rows are grouped into batches."""
from __future__ import annotations

import numpy as np

from memeprobe.threads import worker_count

CPU_BATCH = {"image": 32, "text": 128}  # --batch-size auto on CPU
CUDA_START_BATCH = 1024  # --batch-size auto on CUDA: halved on out-of-memory until it fits


def parse_batch_size(value: str) -> int | str:
    """``--batch-size``: ``"auto"`` or a positive integer (ValueError otherwise)."""
    if value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        raise ValueError("expected 'auto' or a positive integer")
    return int(value)


def batch_size(requested, modality: str, cuda: bool) -> int:
    """Items per batch: ``requested`` (--batch-size) or, for auto, 32/128 on CPU and CUDA_START_BATCH on CUDA."""
    if requested != "auto":
        return int(requested)
    return CUDA_START_BATCH if cuda else CPU_BATCH[modality]


def halves(requested, cuda: bool) -> bool:
    """Whether a batch that runs out of GPU memory is split and the batch size halved (``auto`` on CUDA)."""
    return requested == "auto" and cuda


def workers(requested: int | None, rows: int, size: int) -> int:
    """DataLoader workers for a job of ``rows`` in batches of ``size``: ``requested`` (None =
    :func:`memeprobe.threads.worker_count`), none for a single batch (a worker would only add start-up time)."""
    wanted = worker_count() if requested is None else requested
    return wanted if rows > size else 0


def batches(modality: str, texts, rows: int, size: int) -> list[list[int]]:
    """Positions (0..rows-1) per batch: texts of similar length together, longest first (less padding);
    images in order. ``texts``: the job's texts (text modality only)."""
    if modality == "text":
        order = np.argsort([-len(t) for t in texts], kind="stable")
        return [order[i:i + size].tolist() for i in range(0, len(order), size)]
    return [list(range(i, min(i + size, rows))) for i in range(0, rows, size)]
