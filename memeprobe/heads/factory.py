"""Heads by name (open_clip style): name → default config → object, and back from a saved dict."""
from __future__ import annotations

from memeprobe.errors import MemeprobeError


def _registry() -> dict:
    from memeprobe.heads.fusion import FusionHead
    from memeprobe.heads.logreg import LogRegHead
    from memeprobe.heads.mlp import MLPHead
    from memeprobe.heads.retrieval import RetrievalHead

    return {"logreg": LogRegHead, "mlp": MLPHead, "fusion": FusionHead, "retrieval": RetrievalHead}


HEAD_NAMES = ("logreg", "mlp", "fusion", "retrieval")


def head_config(name: str) -> dict:
    """Default hyper-parameters of head ``name``."""
    return create_head(name).get_params()


def create_head(name: str, **config):
    """A new unfitted head; unknown names or parameters raise :class:`MemeprobeError`."""
    registry = _registry()
    if name not in registry:
        raise MemeprobeError(f"unknown head {name!r}; choose one of {', '.join(HEAD_NAMES)}")
    cls = registry[name]
    valid = cls().get_params()
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise MemeprobeError(f"head {name!r} has no parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    return cls(**config)


def head_from_dict(d: dict):
    """Rebuild a fitted head (or ensemble) from :meth:`to_dict` output."""
    if d["head"] == "ensemble":
        from memeprobe.heads.ensemble import EnsembleHead

        ens = EnsembleHead([head_from_dict(m) for m in d["members"]], d.get("weights"))
        ens.thresholds_ = d["thresholds"].numpy()
        ens.rule_ = dict(d.get("rule") or {})
        return ens
    head = create_head(d["head"], **{k: (tuple(v) if isinstance(v, list) else v) for k, v in d["params"].items()})
    head._restore(d)
    return head
