"""glibc's heap policy for CPU tensor work: keep freed blocks instead of returning them to the kernel."""
from __future__ import annotations

import ctypes

LIMIT = 1 << 29  # 512 MiB


def reuse_freed_memory(limit: int = LIMIT) -> None:
    """Let glibc serve allocations up to ``limit`` bytes from its heap and keep freed memory.

    Its default sends blocks over 32 MiB (a p=256 cross layer's 64 MiB activations, a batch of 32 images'
    EfficientNet activations) to fresh ``mmap``s that the kernel zero-fills page by page on every step: 30 %
    of a cross p=256 training step on one thread (benchmarks/README_heads.md), 20 of the 50 CPU seconds of
    EfficientNet-Lite0 over 670 images (benchmarks/README.md). No-op off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, limit)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, limit)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def default_heap(*_) -> None:
    """DataLoader workers: the ceiling glibc's own dynamic threshold reaches (32 MiB), so a decoded 81-Mpx image
    goes back to the kernel while ordinary decodes reuse the heap (a fixed 128 KiB made pixels 1.2x slower)."""
    reuse_freed_memory(32 << 20)
