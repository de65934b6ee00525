"""Registries as data: an entry names its implementation as ``"package.module:attribute"``, resolved only
when used, so a registry lists what exists (for choices, help and checks) without importing torch.

:func:`resolve` is the one resolver of every registry (heads, featurizers, engines, formats);
:func:`lazy_names` a package's public names resolved on first use; :func:`did_you_mean` the one suggestion for
a name that is not in a registry."""
from __future__ import annotations

import difflib
import importlib


def resolve(target: str):
    """The object a ``"package.module:attribute"`` string names (importing its module)."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def lazy_names(package: str, names: dict[str, str]):
    """A module ``__getattr__`` giving ``package``'s public ``names`` (``{name: "module:attribute"}``), each
    resolved on first use."""
    def __getattr__(name):
        if name in names:
            return resolve(names[name])
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__


def did_you_mean(value: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
