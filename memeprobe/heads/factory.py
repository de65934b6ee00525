"""Heads by name (open_clip style): name → default config → object, and back from a saved dict.

``HEADS`` is the one registry of head kinds (imported lazily: ``memeprobe --help`` loads no torch);
the CLI's choices derive from it."""
from __future__ import annotations

from memeprobe.errors import ConfigError
from memeprobe.registry import resolve

HEADS = {
    "logreg": "memeprobe.heads.logreg:LogRegHead",
    "mlp": "memeprobe.heads.mlp:MLPHead",
    "fusion": "memeprobe.heads.fusion:FusionHead",
    "retrieval": "memeprobe.heads.retrieval:RetrievalHead",
}
HEAD_NAMES = tuple(HEADS)


def head_class(name: str):
    if name not in HEADS:
        raise ConfigError(f"unknown head {name!r}; choose one of {', '.join(HEAD_NAMES)}")
    return resolve(HEADS[name])


def head_config(name: str) -> dict:
    """Default hyper-parameters of head ``name``."""
    return create_head(name).get_params()


def create_head(name: str, **config):
    """A new unfitted head; unknown names or parameters raise :class:`ConfigError` (values are checked by ``fit``)."""
    cls = head_class(name)
    valid = cls().get_params()
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise ConfigError(f"head {name!r} has no parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    return cls(**config)


def head_from_dict(d: dict):
    """Rebuild a fitted head (or ensemble) from :meth:`to_dict` output."""
    if d["head"] == "ensemble":
        from memeprobe.heads.ensemble import EnsembleHead

        ens = EnsembleHead.from_fitted([head_from_dict(m) for m in d["members"]], d.get("weights"))
        ens.thresholds_ = d["thresholds"].numpy()
        ens.rule_ = dict(d.get("rule") or {})
        return ens
    head = create_head(d["head"], **{k: (tuple(v) if isinstance(v, list) else v) for k, v in d["params"].items()})
    head._restore(d)
    return head
