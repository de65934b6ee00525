"""Model files: one format for every head kind, written atomically, read once without running code, and
checked entry by entry before anything is built from them (a crafted or damaged file gets one line).

A model file is ``torch.save({"format": FORMAT, "model": ..., "meta": ...})`` of plain values and tensors only,
so it loads with ``weights_only=True``. ``model`` is a head's dict ``{"head": kind, "params", "fitted": {output
layout, normalisation, thresholds, rule}, "state", "tuning"}`` (``state``: the kind's own, declared by its
``_state_spec``) or an ensemble's ``{"head": "ensemble", "members": [dicts], "weights", "thresholds", "rule",
"tuning"}``. The thresholds and rule are the saved model's decisions: a
:class:`~memeprobe.heads.tuned.TunedHead`'s (``tuning`` holds its parameters), or the span tagger's own.
:func:`load_model` gives the model back as it was saved: a ``TunedHead`` (the span tagger: its ``SpanHead``).
``meta`` holds what ``predict`` needs to meet the right data (:func:`check_meta`). Span models written before
this format (``memeprobe.span-head/1``) are read into it.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from memeprobe.atomic import atomic_write
from memeprobe.errors import MemeprobeError, ModelError
from memeprobe.heads.choices import METRICS
from memeprobe.heads.ensemble import EnsembleHead
from memeprobe.heads.factory import head_class
from memeprobe.heads.kinds import HEAD_NAMES
from memeprobe.heads.span import SPAN_TARGET, TOKEN_ARRAYS
from memeprobe.heads.thresholds import NO_RULE
from memeprobe.heads.tuned import TunedHead
from memeprobe.heads.validate import BadModel, Number, Tensor, check_entries, check_model_path, check_value, tensors
from memeprobe.store.features import TARGETS
from memeprobe.torchfiles import LOAD_ERRORS

FORMAT = "memeprobe-head/1"
SPAN_V1 = "memeprobe.span-head/1"  # the span tagger's files before it shared this format
META_KEYS = {"feature_sets": list, "identity": dict, "target": str, "label_names": list}
MODEL_TARGETS = tuple(t for t in TARGETS if t != "auto")  # a saved model's target is resolved
LAYERS = {"hidden": lambda v: len(v) if isinstance(v, list) else 1,  # parameters that say how many layers to build
          "n_layers": lambda v: v}


# ---------------------------------------------------------------- writing
def save_model(path, model, meta: dict | None = None) -> Path:
    """Write ``model`` (a fitted head, ensemble or :class:`TunedHead`) and ``meta`` (feature refs, store identity,
    label names...) to ``path`` atomically: a crash or a full disk leaves the previous file untouched."""
    path = Path(path)
    with atomic_write(path, "wb", kind="model", parents=True) as f:
        torch.save({"format": FORMAT, "model": model_dict(model), "meta": meta or {}}, f)
    return path


def model_dict(model) -> dict:
    """The ``model`` entry of a file: the fitted estimator with the decisions it makes (its thresholds and rule)."""
    est = getattr(model, "estimator_", model)
    decisions = {"thresholds": torch.as_tensor(np.asarray(model.thresholds_)), "rule": _rule(model),
                 **({"tuning": _plain(model.get_params(deep=False), skip="estimator")} if est is not model else {})}
    if isinstance(est, EnsembleHead):
        return {"head": est.name, "members": [model_dict(m) for m in est.estimators_],
                "weights": [float(w) for w in est.weights_], **decisions}
    layout = est._layout()
    fitted = {**layout, "mean": _tensor(layout["mean"]), "scale": _tensor(layout["scale"]),
              "thresholds": decisions.pop("thresholds"), "rule": decisions.pop("rule")}
    return {"head": est.name, "params": _plain(est.get_params()), "fitted": fitted, "state": est._state(),
            **decisions}


def _tensor(a):
    return None if a is None else torch.as_tensor(np.asarray(a))


def _rule(model) -> dict:
    return {k: int(v) for k, v in {**NO_RULE, **(getattr(model, "rule_", None) or {})}.items()}


def _plain(value, skip=None):
    """Params as JSON-able plain values (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != skip}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


# ---------------------------------------------------------------- reading
def read_model_file(path):
    """The object in a model file, read without running code (``weights_only``); one clear line if the file is
    none (a folder, a text file, a link to a store...: told by its first bytes, before torch reads it)."""
    path = Path(path)
    check_model_path(path)
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of odd files: the error says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as e:
        first = (str(e).strip().splitlines() or [""])[0][:120]
        raise ModelError(f"{path} is not a memeprobe model file ({e.__class__.__name__}: {first}); "
                         "pass the file written by `memeprobe train-head --out`") from None


def load_model(path) -> tuple[object, dict]:
    """``(model, meta)`` from a model file, read once and every entry checked first: a :class:`TunedHead` (the
    span tagger: its :class:`~memeprobe.heads.span.SpanHead`) deciding as the saved model did."""
    d = read_model_file(path)
    if isinstance(d, dict) and d.get("format") == SPAN_V1:
        d = _from_span_v1(d, path)
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ModelError(f"{path} is not a memeprobe model file (format {FORMAT} expected)")
    check_model_dict(d, path)
    return _build(d["model"]), d["meta"]


def _build(m: dict):
    if m["head"] == "ensemble":
        model = EnsembleHead.from_fitted([_build(member) for member in m["members"]], m.get("weights"))
        return TunedHead.restored(model, m["thresholds"].numpy(), m.get("rule"), m.get("tuning"))
    head = head_class(m["head"])(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in m["params"].items()})
    f = m["fitted"]
    head._restore({**f, **{k: None if f[k] is None else f[k].numpy() for k in ("mean", "scale")}}, m["state"])
    if head.task == "spans":  # the tagger decides itself (its span threshold is part of its state)
        return head
    return TunedHead.restored(head, f["thresholds"].numpy(), f.get("rule"), m.get("tuning"))


def fail(path, what: str) -> ModelError:
    return ModelError(f"{path} is not a valid memeprobe model file: {what}; retrain it with "
                      "`memeprobe train-head ... --out`")


# ---------------------------------------------------------------- checks
def check_model_dict(d: dict, path) -> None:
    """Raise :class:`ModelError` naming ``path`` and the problem unless ``d`` is a sound model dict."""
    if not isinstance(d.get("meta"), dict):
        raise fail(path, "no 'meta' dict")
    try:
        _check_model(d.get("model"), "model")
    except BadModel as e:
        raise fail(path, str(e)) from None
    for m in _heads(d["model"]):
        _check_device(path, m["params"].get("device"))


def _check_model(m, where: str) -> tuple:
    """The output layout ``(n_outputs, multilabel, multiclass, classes, n_features)`` of a checked model dict."""
    if not isinstance(m, dict) or "head" not in m:
        raise BadModel(f"{where} has no 'head' entry")
    if m["head"] not in HEAD_NAMES:
        raise BadModel(f"{where} names unknown head {m['head']!r}")
    layout = _check_ensemble(m, where) if m["head"] == "ensemble" else _check_head(m, where)
    _check_tuning(m.get("tuning"), where)
    return layout


def _check_head(m: dict, where: str) -> tuple:
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
        head._validate_params()
    except ValueError as e:
        raise BadModel(f"{where} {str(e).splitlines()[0]}") from None
    stored = list(tensors(state))
    for key, layers in LAYERS.items():
        value = params.get(key)
        count = layers(value) if isinstance(value, (list, int)) and not isinstance(value, bool) else 0
        if count > len(stored):
            raise BadModel(f"{where} parameter {key} asks for {count} layers; the file stores {len(stored)} tensors")
    layout = _check_layout(m["fitted"], head.norm, where)
    try:
        spec = head._state_spec(state, layout[-1], layout[0])
    except (MemeprobeError, AssertionError, ValueError, RuntimeError, TypeError, ZeroDivisionError) as e:
        # parameters torch cannot build a module from (e.g. d_model not divisible by n_heads)
        raise BadModel(f"{where} parameters build no module ({type(e).__name__}: "
                       f"{(str(e).splitlines() or [''])[0][:120]})") from None
    check_entries(state, spec, f"{where} state")
    return layout


def _check_layout(fitted: dict, norm: str, where: str) -> tuple:
    """The fitted sizes every head has: outputs, classes, blocks, thresholds, rule, normalisation."""
    for key, type_ in (("multilabel", bool), ("n_outputs", int), ("blocks", list)):
        if not isinstance(fitted.get(key), type_) or (type_ is int and isinstance(fitted[key], bool)):
            raise BadModel(f"{where} fitted['{key}'] is missing or not {type_.__name__}")
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
    return n_out, fitted["multilabel"], multiclass, tuple(classes), n_features


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


def _check_ensemble(m: dict, where: str) -> tuple:
    members = m.get("members")
    if not isinstance(members, list) or not members:
        raise BadModel(f"{where} is an ensemble without members")
    layouts = [_check_model(member, f"{where} member {i}") for i, member in enumerate(members)]
    if len(set(layouts)) != 1:
        raise BadModel(f"{where} members differ in their outputs, classes or inputs")
    if any(head_class(member["head"]).task != "labels" for member in members):
        raise BadModel(f"{where} has a member that predicts no labels (a span tagger)")
    weights = m.get("weights")
    if weights is not None:
        if not isinstance(weights, list) or len(weights) != len(members):
            raise BadModel(f"{where} has {len(weights) if isinstance(weights, list) else 'no list of'} weights "
                           f"for {len(members)} members")
        for i, w in enumerate(weights):
            check_value(w, Number(float, 0), f"{where} weight {i}")
        if sum(weights) <= 0:
            raise BadModel(f"{where} weights sum to 0")
    check_value(m.get("thresholds"), Tensor((layouts[0][0],)), f"{where} thresholds")
    check_rule(m.get("rule"), layouts[0][0], where)
    return layouts[0]


def _check_tuning(tuning, where: str) -> None:
    """A :class:`TunedHead`'s parameters (files from before they were kept have none)."""
    if tuning is None:
        return
    if not isinstance(tuning, dict) or set(tuning) - {"metric", "label_names", "cv"}:
        raise BadModel(f"{where} tuning is not a dict of metric, label_names, cv")
    names, cv = tuning.get("label_names"), tuning.get("cv", 2)
    if tuning.get("metric") not in (None, *METRICS) or not (
            names is None or isinstance(names, list) and all(isinstance(n, str) for n in names)) or not (
            cv == "prefit" or isinstance(cv, int) and not isinstance(cv, bool) and cv >= 2):
        raise BadModel(f"{where} tuning {str(tuning)[:80]} is not a threshold metric, label names and folds")


def _heads(m: dict):
    """The heads of a model dict (an ensemble's members, recursively)."""
    if m["head"] == "ensemble":
        for member in m["members"]:
            yield from _heads(member)
    else:
        yield m


def _check_device(path, device) -> None:
    if device in (None, "auto", "cpu"):
        return
    if not isinstance(device, str) or not device.startswith("cuda"):
        raise fail(path, f"unknown device {device!r}")
    index = int(device.partition(":")[2] or 0) if device.partition(":")[2].isdigit() or device == "cuda" else -1
    if index < 0 or not torch.cuda.is_available() or index >= torch.cuda.device_count():
        raise ModelError(f"{path} asks for device {device!r}, which this machine does not have "
                         f"({torch.cuda.device_count()} CUDA device(s)); retrain with device auto or cpu")


def check_identity(identity) -> bool:
    """Whether a model file's feature identity has the shape ``features.identity`` writes."""
    return isinstance(identity, dict) and all(
        isinstance(v, dict) and isinstance(v.get("identity"), dict) and isinstance(v.get("arrays"), dict)
        for v in identity.values())


def check_meta(meta: dict, path, model) -> None:
    """The meta entries ``predict`` needs (written by ``train-head --out``), and label names for every output
    of ``model``."""
    for key, type_ in META_KEYS.items():
        if not isinstance(meta.get(key), type_):
            raise fail(path, f"meta['{key}'] is missing or not {type_.__name__}")
    if not all(isinstance(r, str) for r in meta["feature_sets"]) or not meta["feature_sets"]:
        raise fail(path, "meta['feature_sets'] is not a list of feature references")
    if not check_identity(meta["identity"]):
        raise fail(path, "meta['identity'] is not {feature set: {identity, arrays}}")
    targets = (SPAN_TARGET,) if model.task == "spans" else MODEL_TARGETS
    if meta["target"] not in targets:
        raise fail(path, f"meta['target'] is {meta['target']!r}, not one of {', '.join(targets)}")
    names = meta["label_names"]
    if not all(isinstance(n, str) for n in names) or len(names) != model.n_outputs_:
        raise fail(path, f"meta['label_names'] has {len(names)} names for the model's {model.n_outputs_} output(s)")
    if model.task == "spans" and (len(set(names)) != len(names) or len(meta["feature_sets"]) != 1):
        raise fail(path, "a span model needs distinct technique names and one feature set")
    for key in ("dataset_fingerprint", "dataset_format"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise fail(path, f"meta['{key}'] is not a string")


def _from_span_v1(d: dict, path) -> dict:
    """A span model file of the format before this one (its own dict) in this format, for the checks above."""
    try:
        for key in ("params", "fitted", "state", "meta"):
            if not isinstance(d.get(key), dict):
                raise BadModel(f"no '{key}' dict")
        params, fit, meta = d["params"], d["fitted"], d["meta"]
        bound = max([int(x) for t in tensors(d["state"]) for x in t.shape] + [1])  # d_in is a stored width
        check_value(fit.get("threshold"), Number(float, 0, 1), "fitted threshold")
        check_value(fit.get("d_in"), Number(int, 1, bound), "fitted d_in")
        names = fit.get("label_names")
        if not isinstance(names, list) or not names or meta.get("label_names") != names:
            raise BadModel("its technique names are not a list of names (the same in meta)")
        cv = fit.get("cv")
        if not isinstance(cv, dict) or not all(isinstance(f, (int, float)) and not isinstance(f, bool)
                                               for f in cv.values()):
            raise BadModel("fitted cv is not {threshold: score}")
        cuts = [float(t) for t in cv]
        if not isinstance(meta.get("feature_set"), str):
            raise BadModel("meta lacks its feature set")
    except (BadModel, TypeError, ValueError) as e:
        raise fail(path, str(e) if isinstance(e, BadModel) else "fitted cv is not {threshold: score}") from None
    k, threshold, epochs = len(names), float(fit["threshold"]), params.get("epochs")
    old = {key: value for key, value in meta.items() if key != "feature_set"}
    return {"format": FORMAT, "meta": {**old, "feature_sets": [f"{meta['feature_set']}:{','.join(TOKEN_ARRAYS)}"],
                                       "target": SPAN_TARGET},
            "model": {"head": "span", "params": params,
                      "fitted": {"multilabel": True, "n_outputs": k, "multiclass": False, "classes": list(range(k)),
                                 "blocks": [4 * fit["d_in"]], "mean": None, "scale": None,
                                 "thresholds": torch.full((k,), threshold, dtype=torch.float64),
                                 "rule": dict(NO_RULE)},
                      "state": {"in_dim": 4 * fit["d_in"], "best_epoch": epochs if isinstance(epochs, int) else 0,
                                "weights": d["state"], "threshold": threshold,
                                "cv_thresholds": torch.tensor(cuts, dtype=torch.float64),
                                "cv_f1": torch.tensor([float(f) for f in cv.values()], dtype=torch.float64)}}}
