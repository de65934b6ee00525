"""Make ``import torchvision`` work with a CPU-only torch.

The PyPI torchvision wheel is built against CUDA torch; next to a CPU torch build its
C extension fails to load and ``import torchvision`` dies with
``operator torchvision::nms does not exist`` (breaking open_clip, timm and transformers,
which import it). When that extension cannot load, we define the two operators that
torchvision's import registers fake kernels for (``nms`` and ``qnms``) with a pure-torch
CPU implementation. Where torchvision's own extension loads, this does nothing.

``import memeprobe`` installs :class:`_TorchvisionHook`, which runs the fix just before the first
``import torchvision`` (directly or via open_clip/timm/transformers), so that torch is only imported
when torchvision is.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

_LIB = None  # keeps the torch.library.Library alive for the life of the process


def _op_exists(name: str) -> bool:
    import torch

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
    import torch

    try:
        torch.ops.load_library(os.path.join(folder, libs[0]))
        return True
    except (OSError, RuntimeError):
        return False


def nms_reference(boxes, scores, iou_threshold: float):
    """Greedy non-maximum suppression (x1, y1, x2, y2 boxes); indices of kept boxes, best first."""
    import torch

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
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TorchvisionHook)]  # runs once
    if _LIB is not None or _op_exists("nms") or _torchvision_extension_loads():
        return False
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", nms_reference, "CompositeExplicitAutograd")
    lib.impl("qnms", lambda d, s, t: nms_reference(d.dequantize(), s.dequantize(), t), "CompositeExplicitAutograd")
    _LIB = lib
    return True


class _TorchvisionHook(importlib.abc.MetaPathFinder):
    """Runs :func:`ensure_torchvision_ops` right before torchvision is first imported, then leaves."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision":
            ensure_torchvision_ops()
        return None  # the regular finders do the import


def install_import_hook() -> None:
    """Arrange for the fix to run before torchvision loads (a no-op once torchvision is imported)."""
    if "torchvision" not in sys.modules and not any(isinstance(f, _TorchvisionHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionHook())
