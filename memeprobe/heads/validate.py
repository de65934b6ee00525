"""Checks of a loaded model file's dict before anything is built from it (crafted or damaged files).

Keys and types are checked, the device must exist here, and every size parameter is bounded by the
largest dimension of the stored weights, so a file cannot ask for a huge allocation."""
from __future__ import annotations

from memeprobe.errors import WeightsError

META_KEYS = {"feature_sets": list, "identity": dict, "target": str, "label_names": list}
FITTED_KEYS = {"multilabel": bool, "n_outputs": int, "blocks": list}
SIZE_PARAMS = ("hidden", "proj_dim", "d_model", "image_tokens", "text_tokens", "split", "cross_rank", "n_layers",
               "n_heads", "n_C")


def _fail(path, what) -> WeightsError:
    return WeightsError(f"{path} is not a valid memeprobe model file: {what}; retrain it with "
                        "`memeprobe train-head ... --out`")


def _tensors(value):
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def _ints(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _ints(v)


def _check_device(path, device) -> None:
    import torch

    if device in (None, "auto", "cpu"):
        return
    if not isinstance(device, str) or not device.startswith("cuda"):
        raise _fail(path, f"unknown device {device!r}")
    index = int(device.partition(":")[2] or 0) if device.partition(":")[2].isdigit() or device == "cuda" else -1
    if index < 0 or not torch.cuda.is_available() or index >= torch.cuda.device_count():
        raise WeightsError(f"{path} asks for device {device!r}, which this machine does not have "
                           f"({torch.cuda.device_count()} CUDA device(s)); retrain with device auto or cpu")


def _check_head(path, m, where="model") -> None:
    from memeprobe.heads.factory import HEAD_NAMES

    if not isinstance(m, dict) or "head" not in m:
        raise _fail(path, f"{where} has no 'head' entry")
    if m["head"] == "ensemble":
        if not isinstance(m.get("members"), list) or not m["members"]:
            raise _fail(path, f"{where} is an ensemble without members")
        for i, member in enumerate(m["members"]):
            _check_head(path, member, f"{where} member {i}")
        return
    if m["head"] not in HEAD_NAMES:
        raise _fail(path, f"{where} names unknown head {m['head']!r}")
    for key, kind in (("params", dict), ("fitted", dict), ("state", dict)):
        if not isinstance(m.get(key), kind):
            raise _fail(path, f"{where} has no '{key}' {kind.__name__}")
    fitted = m["fitted"]
    for key, kind in FITTED_KEYS.items():
        if not isinstance(fitted.get(key), kind):
            raise _fail(path, f"{where} fitted['{key}'] is missing or not {kind.__name__}")
    if "thresholds" not in fitted or len(list(_tensors(fitted["thresholds"]))) != 1:
        raise _fail(path, f"{where} has no thresholds tensor")
    dims = [int(d) for t in _tensors(m["state"]) for d in t.shape] + [int(b) for b in _ints(fitted["blocks"])]
    bound = max(dims, default=0)
    for key in SIZE_PARAMS:
        big = [v for v in _ints(m["params"].get(key)) if v > max(bound, 64)]
        if big:
            raise _fail(path, f"{where} parameter {key}={big[0]} exceeds every stored weight dimension ({bound})")
    _check_device(path, m["params"].get("device"))


def check_model_dict(d: dict, path) -> None:
    """Raise :class:`WeightsError` naming ``path`` and the problem unless ``d`` is a sound model dict."""
    if not isinstance(d.get("meta"), dict):
        raise _fail(path, "no 'meta' dict")
    _check_head(path, d.get("model"))


def check_meta(meta: dict, path) -> None:
    """The meta entries ``predict`` needs (written by ``train-head --out``)."""
    for key, kind in META_KEYS.items():
        if not isinstance(meta.get(key), kind):
            raise _fail(path, f"meta['{key}'] is missing or not {kind.__name__}")
