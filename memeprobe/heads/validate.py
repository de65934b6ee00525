"""What a model file's entries must be, declared and checked before anything is built from them.

A head declares its saved state (:meth:`~memeprobe.heads.base.Head._state_spec`) as {dotted key: :class:`Tensor`
| :class:`Number`}: tensor shapes derived from the declared sizes (neural heads build their module on torch's
meta device, which allocates nothing), numbers with their ranges. :func:`check_entries` compares shapes as
integers and requires finite float tensors, so a mis-shaped or NaN tensor never reaches a prediction and a file
cannot ask for a huge allocation; :mod:`memeprobe.heads.persist` checks whole model files with these rules.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

from memeprobe.errors import ModelError
from memeprobe.torchfiles import describe, kind


class BadModel(ValueError):
    """What is wrong with a model file's dict (the caller names the file)."""


@dataclass(frozen=True)
class Tensor:
    """A floating-point tensor of ``shape`` (None: any size >= 1), finite, with values in [low, high]."""

    shape: tuple
    low: float = -math.inf
    high: float = math.inf
    optional: bool = False  # may be absent or None


@dataclass(frozen=True)
class Number:
    """A number of ``kind`` (int, or float which accepts an int) in [low, high] (``low`` excluded if ``open``)."""

    kind: type
    low: float = -math.inf
    high: float = math.inf
    open: bool = False
    optional: bool = False


def tensors(value):
    """Every tensor inside nested dicts / lists of ``value``."""
    import torch  # lazy: torch only where a model file is read (heads declare their rules without it)

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from tensors(v)


def check_value(value, rule, what: str) -> None:
    """BadModel unless ``value`` follows ``rule`` (a :class:`Tensor` or :class:`Number`)."""
    import torch  # lazy: torch only where a model file is read

    if value is None and rule.optional:
        return
    if isinstance(rule, Number):
        ok_kind = isinstance(value, Real) if rule.kind is float else isinstance(value, int)
        if isinstance(value, bool) or not ok_kind or not math.isfinite(value):
            raise BadModel(f"{what} is {value!r}, not {'an integer' if rule.kind is int else 'a number'}")
        if value < rule.low or value > rule.high or (rule.open and value == rule.low):
            raise BadModel(f"{what} is {value!r}, outside {'(' if rule.open else '['}{rule.low}, {rule.high}]")
        return
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise BadModel(f"{what} is not a float tensor")
    shape = tuple(value.shape)
    if len(shape) != len(rule.shape) or any(w is None and s < 1 or w is not None and s != w
                                            for s, w in zip(shape, rule.shape)):
        want = tuple("any" if w is None else w for w in rule.shape)
        raise BadModel(f"{what} has shape {shape}, expected {want}")
    if value.numel() and not bool(torch.isfinite(value).all()):
        raise BadModel(f"{what} holds NaN or infinite values")
    if value.numel() and (float(value.min()) < rule.low or float(value.max()) > rule.high):
        raise BadModel(f"{what} holds values outside [{rule.low}, {rule.high}]")


def check_entries(values: dict, spec: dict, what: str) -> None:
    """Every entry ``spec`` declares (dotted paths into nested dicts) follows its rule; no undeclared tensor."""
    import torch  # lazy: torch only where a model file is read

    flat = dict(_flatten(values))
    for key, rule in spec.items():
        if key not in flat and not rule.optional:
            raise BadModel(f"{what} has no {key!r}")
        check_value(flat.get(key), rule, f"{what} {key!r}")
    extra = [k for k, v in flat.items() if isinstance(v, torch.Tensor) and k not in spec]
    if extra:
        raise BadModel(f"{what} has undeclared tensors {', '.join(extra[:3])}")


def _flatten(value: dict, prefix: str = ""):
    for k, v in value.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def check_model_path(path) -> None:
    """One clear line unless ``path`` is a torch file (told by its first bytes, without importing torch): a missing
    file, a folder, a text file, a store..."""
    what = kind(path)
    if what == "missing":
        raise ModelError(f"model file {describe(path, what)}; train one with `memeprobe train-head ... --out "
                         f"{path}`")
    if what != "torch":
        raise ModelError(f"{describe(path, what)}, not a memeprobe model file; pass the file written by "
                         "`memeprobe train-head --out`")
