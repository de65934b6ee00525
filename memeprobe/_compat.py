"""Make ``import torchvision`` work with a CPU-only torch.

The PyPI torchvision wheel is built against CUDA torch; next to a CPU torch build its
C extension fails to load and ``import torchvision`` dies with
``operator torchvision::nms does not exist`` (breaking open_clip, timm and transformers,
which import it). When that extension cannot load, we define the two operators that
torchvision's import registers fake kernels for (``nms`` and ``qnms``) with a pure-torch
CPU implementation. Where torchvision's own extension loads, this does nothing.
"""
from __future__ import annotations

import importlib.util
import os

import torch

_LIB = None  # keeps the torch.library.Library alive for the life of the process


def _op_exists(name: str) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
        return True
    except RuntimeError:
        return False


def _torchvision_extension_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    folder = spec.submodule_search_locations[0]
    libs = [f for f in os.listdir(folder) if f.startswith("_C.") and f.endswith((".so", ".pyd"))]
    if not libs:
        return False
    try:
        torch.ops.load_library(os.path.join(folder, libs[0]))
        return True
    except (OSError, RuntimeError):
        return False


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression (x1, y1, x2, y2 boxes); indices of kept boxes, best first."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    x1, y1, x2, y2 = boxes.float().unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel():
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep).to(torch.long)


def ensure_torchvision_ops() -> bool:
    """Register CPU ``torchvision::nms``/``qnms`` if torchvision's extension cannot provide them.

    Returns True when this module registered the fallback, False when nothing was needed.
    """
    global _LIB
    if _LIB is not None or _op_exists("nms") or _torchvision_extension_loads():
        return False
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", nms_reference, "CompositeExplicitAutograd")
    lib.impl("qnms", lambda d, s, t: nms_reference(d.dequantize(), s.dequantize(), t), "CompositeExplicitAutograd")
    _LIB = lib
    return True
