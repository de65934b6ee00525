"""Checks of a loaded model file's dict before anything is built from it (crafted or damaged files).

A model file holds plain values and tensors (``torch.load(weights_only=True)``). Everything a head relies on
is declared: the fitted sizes every head has (outputs, classes, input blocks, thresholds, decision rule,
normalisation) and each head kind's state (:meth:`~memeprobe.heads.base.Head._state_spec`: tensor shapes
derived from the declared sizes, numbers with their ranges; neural heads build their module on torch's meta
device, which allocates nothing). Shapes are compared as integers, every tensor must be finite floats, and
the layers a file asks to build are at most its stored tensors, all before any array or module is built: a
file cannot ask for a huge allocation, and a mis-shaped or NaN tensor never reaches a prediction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

from memeprobe.errors import MemeprobeError, WeightsError
from memeprobe.store.features import TARGETS

META_KEYS = {"feature_sets": list, "identity": dict, "target": str, "label_names": list}
MODEL_TARGETS = tuple(t for t in TARGETS if t != "auto")  # a saved model's target is resolved
COUNT_PARAMS = ("hidden", "n_layers")  # layers to build: at most one per stored tensor


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


def fail(path, what: str) -> WeightsError:
    return WeightsError(f"{path} is not a valid memeprobe model file: {what}; retrain it with "
                        "`memeprobe train-head ... --out`")


def tensors(value):
    """Every tensor inside nested dicts / lists of ``value``."""
    import torch

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
    import torch

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
    import torch

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


def _check_device(path, device) -> None:
    import torch

    if device in (None, "auto", "cpu"):
        return
    if not isinstance(device, str) or not device.startswith("cuda"):
        raise fail(path, f"unknown device {device!r}")
    index = int(device.partition(":")[2] or 0) if device.partition(":")[2].isdigit() or device == "cuda" else -1
    if index < 0 or not torch.cuda.is_available() or index >= torch.cuda.device_count():
        raise WeightsError(f"{path} asks for device {device!r}, which this machine does not have "
                           f"({torch.cuda.device_count()} CUDA device(s)); retrain with device auto or cpu")


@dataclass(frozen=True)
class Outputs:
    """The output layout of a checked head: what an ensemble's members must share."""

    n_outputs: int
    multilabel: bool
    multiclass: bool
    classes: tuple
    n_features: int


def _check_layout(fitted: dict, norm: str, where: str) -> Outputs:
    """The fitted sizes every head has: outputs, classes, blocks, thresholds, rule, normalisation."""
    for key, kind in (("multilabel", bool), ("n_outputs", int), ("blocks", list)):
        if not isinstance(fitted.get(key), kind) or (kind is int and isinstance(fitted[key], bool)):
            raise BadModel(f"{where} fitted['{key}'] is missing or not {kind.__name__}")
    multiclass = fitted.get("multiclass", False)
    if not isinstance(multiclass, bool) or (multiclass and fitted["multilabel"]):
        raise BadModel(f"{where} fitted['multiclass'] is not a bool consistent with 'multilabel'")
    blocks = fitted["blocks"]
    if not blocks or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in blocks):
        raise BadModel(f"{where} fitted['blocks'] is not a list of positive integers")
    n_out, n_features = fitted["n_outputs"], sum(blocks)
    check_value(fitted.get("thresholds"), Tensor((max(n_out, 1),)), f"{where} thresholds")  # bounds n_out by the file
    if n_out < 1 or (not fitted["multilabel"] and not multiclass and n_out != 1):
        raise BadModel(f"{where} declares {n_out} outputs for a {'binary' if n_out else 'empty'} target")
    n_classes = n_out if fitted["multilabel"] or multiclass else 2
    classes = fitted.get("classes", list(range(n_classes)))
    if (not isinstance(classes, list) or len(classes) != n_classes or len(set(map(repr, classes))) != n_classes
            or not all(isinstance(c, (int, float, str)) for c in classes)
            or (fitted["multilabel"] and classes != list(range(n_classes)))):
        raise BadModel(f"{where} classes {str(classes)[:80]} do not fit its {n_out} output(s)")
    for key, low in (("mean", -math.inf), ("scale", 1e-12)):
        want = Tensor((n_features,), low=low, optional="standard" not in norm)
        if "standard" not in norm and fitted.get(key) is not None:
            raise BadModel(f"{where} has a {key} but its norm {norm!r} uses none")
        check_value(fitted.get(key), want, f"{where} {key}")
    check_rule(fitted.get("rule"), n_out, where)
    return Outputs(n_out, fitted["multilabel"], multiclass, tuple(classes), n_features)


def check_rule(rule, n_out: int, where: str) -> None:
    """The multi-label decision rule (thresholds.NO_RULE keys): absent, or ints within the outputs."""
    if rule is None:
        return
    bounds = {"min_labels": (0, n_out), "max_labels": (0, n_out), "parent": (-1, n_out - 1)}
    if not isinstance(rule, dict) or set(rule) - set(bounds):
        raise BadModel(f"{where} rule is not a dict of {', '.join(bounds)}")
    for key, (low, high) in bounds.items():
        if key in rule:
            check_value(rule[key], Number(int, low, high), f"{where} rule {key!r}")


def _check_ensemble(m: dict, where: str) -> Outputs:
    members = m.get("members")
    if not isinstance(members, list) or not members:
        raise BadModel(f"{where} is an ensemble without members")
    layouts = [_check_head(member, f"{where} member {i}") for i, member in enumerate(members)]
    if len(set(layouts)) != 1:
        raise BadModel(f"{where} members differ in their outputs, classes or inputs")
    weights = m.get("weights")
    if weights is not None:
        if not isinstance(weights, list) or len(weights) != len(members):
            raise BadModel(f"{where} has {len(weights) if isinstance(weights, list) else 'no list of'} weights "
                           f"for {len(members)} members")
        for i, w in enumerate(weights):
            check_value(w, Number(float, 0), f"{where} weight {i}")
        if sum(weights) <= 0:
            raise BadModel(f"{where} weights sum to 0")
    check_value(m.get("thresholds"), Tensor((layouts[0].n_outputs,)), f"{where} thresholds")
    check_rule(m.get("rule"), layouts[0].n_outputs, where)
    return layouts[0]


def _check_head(m, where: str) -> Outputs:
    from memeprobe.heads.factory import HEAD_NAMES, head_class

    if not isinstance(m, dict) or "head" not in m:
        raise BadModel(f"{where} has no 'head' entry")
    if m["head"] == "ensemble":
        return _check_ensemble(m, where)
    if m["head"] not in HEAD_NAMES:
        raise BadModel(f"{where} names unknown head {m['head']!r}")
    for key in ("params", "fitted", "state"):
        if not isinstance(m.get(key), dict):
            raise BadModel(f"{where} has no '{key}' dict")
    params, state = m["params"], m["state"]
    head = head_class(m["head"])()
    unknown = sorted(set(params) - set(head.get_params()))
    if unknown:
        raise BadModel(f"{where} has unknown parameter(s) {', '.join(map(str, unknown))}")
    head.set_params(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
    try:
        head._check_params()
    except MemeprobeError as e:
        raise BadModel(f"{where} {str(e).splitlines()[0]}") from None
    stored = list(tensors(state))
    for key in COUNT_PARAMS:
        value = params.get(key)
        count = len(value) if isinstance(value, list) else value if isinstance(value, int) else 0
        if count > len(stored):
            raise BadModel(f"{where} parameter {key} asks for {count} layers; the file stores {len(stored)} tensors")
    layout = _check_layout(m["fitted"], head.norm, where)
    try:
        spec = head._state_spec(state, layout.n_features, layout.n_outputs)
    except (MemeprobeError, AssertionError, ValueError, RuntimeError, TypeError, ZeroDivisionError) as e:
        # parameters torch cannot build a module from (e.g. d_model not divisible by n_heads)
        raise BadModel(f"{where} parameters build no module ({type(e).__name__}: "
                       f"{(str(e).splitlines() or [''])[0][:120]})") from None
    check_entries(state, spec, f"{where} state")
    return layout


def check_model_dict(d: dict, path) -> None:
    """Raise :class:`WeightsError` naming ``path`` and the problem unless ``d`` is a sound model dict."""
    if not isinstance(d.get("meta"), dict):
        raise fail(path, "no 'meta' dict")
    try:
        _check_head(d.get("model"), "model")
    except BadModel as e:
        raise fail(path, str(e)) from None
    for m in _heads(d["model"]):
        _check_device(path, m["params"].get("device"))


def _heads(m: dict):
    """The heads of a model dict (an ensemble's members, recursively)."""
    if m["head"] == "ensemble":
        for member in m["members"]:
            yield from _heads(member)
    else:
        yield m


def check_identity(identity) -> bool:
    """Whether a model file's feature identity has the shape ``features.identity`` writes."""
    return isinstance(identity, dict) and all(
        isinstance(v, dict) and isinstance(v.get("identity"), dict) and isinstance(v.get("arrays"), dict)
        for v in identity.values())


def check_meta(meta: dict, path, n_outputs: int) -> None:
    """The meta entries ``predict`` needs (written by ``train-head --out``), and label names for every output."""
    for key, kind in META_KEYS.items():
        if not isinstance(meta.get(key), kind):
            raise fail(path, f"meta['{key}'] is missing or not {kind.__name__}")
    if not all(isinstance(r, str) for r in meta["feature_sets"]) or not meta["feature_sets"]:
        raise fail(path, "meta['feature_sets'] is not a list of feature references")
    if not check_identity(meta["identity"]):
        raise fail(path, "meta['identity'] is not {feature set: {identity, arrays}}")
    if meta["target"] not in MODEL_TARGETS:
        raise fail(path, f"meta['target'] is {meta['target']!r}, not one of {', '.join(MODEL_TARGETS)}")
    names = meta["label_names"]
    if not all(isinstance(n, str) for n in names) or len(names) != n_outputs:
        raise fail(path, f"meta['label_names'] has {len(names)} names for the model's {n_outputs} output(s)")
    for key in ("dataset_fingerprint", "dataset_format"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise fail(path, f"meta['{key}'] is not a string")
