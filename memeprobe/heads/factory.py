"""Heads by name (open_clip style): name → default config → estimator.

:func:`create_head` makes a head of a kind registered in :data:`~memeprobe.heads.kinds.HEADS` wrapped in a
:class:`~memeprobe.heads.tuned.TunedHead`, so its ``fit`` tunes the decisions as ``train-head`` does; every
lookup goes through :func:`memeprobe.registry.resolve`."""
from __future__ import annotations

from memeprobe.errors import ConfigError
from memeprobe.heads.kinds import HEAD_NAMES, HEADS
from memeprobe.heads.selection import CV_FOLDS
from memeprobe.heads.tuned import TunedHead
from memeprobe.registry import resolve

MEMBER_SETTINGS = ("seed", "blocks")  # what an ensemble passes on to the members it makes from head kinds


def head_class(name: str):
    """The class registered as head kind ``name``."""
    if name not in HEADS:
        raise ConfigError(f"unknown head {name!r}; choose one of {', '.join(HEAD_NAMES)}")
    return resolve(HEADS[name])


def head_config(name: str) -> dict:
    """Default hyper-parameters of head ``name``."""
    return head_class(name)().get_params()


def create_head(name: str, *, metric=None, label_names=None, cv=CV_FOLDS, **config):
    """A new unfitted head of kind ``name`` with ``config`` (unknown names or parameters raise
    :class:`ConfigError`; values are checked by ``fit``), wrapped in a :class:`TunedHead` that tunes its decisions
    for ``metric`` (see there); the span tagger, which tunes its own span threshold, comes unwrapped.

    An ensemble's ``members`` may be head kinds: each is made here with the ensemble's ``seed`` and ``blocks``."""
    cls = head_class(name)
    valid = cls().get_params()
    tuning = {"metric": metric, "label_names": label_names, "cv": cv}
    passed = {k: config.pop(k) for k in MEMBER_SETTINGS if cls._member_params and k in config and k not in valid}
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise ConfigError(f"head {name!r} has no parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    for key in cls._member_params:
        if key in config:
            config[key] = [create_head(m, **tuning, **passed) if isinstance(m, str) else m for m in config[key]]
    head = cls(**config)
    return head if head.task == "spans" else TunedHead(head, **tuning)
