"""Parameter constraints declared once, as data: ``{name: [allowed, ...]}``, each allowed entry ``None``, a type
(``int``, ``float``, ``str``, ``bool``, ``list``, ``Integral``, ``Real``...), ``"array-like"``, :class:`Choices` or
:class:`Range` (the vocabulary of sklearn's ``_parameter_constraints``).

:func:`check` validates a configuration against them without importing sklearn, so a command can refuse a bad
option before any heavy import; :func:`to_sklearn` gives sklearn's constraint objects for an estimator's
``_parameter_constraints``, so heads and configs share one declaration."""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Number, Real

from memeprobe.errors import ConfigError


class Choices(frozenset):
    """The allowed strings of a parameter."""


@dataclass(frozen=True)
class Range:
    """Numbers of ``kind`` (``Integral`` or ``Real``) between ``low`` and ``high`` (None: unbounded);
    ``closed``: which ends belong to it ("both", "left", "right", "neither")."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def __contains__(self, value) -> bool:
        if not isinstance(value, self.kind) or (isinstance(value, Real) and not math.isfinite(value)):
            return False
        if self.low is not None and (value < self.low or (value == self.low and self.closed in ("right", "neither"))):
            return False
        return not (self.high is not None and (value > self.high or (value == self.high
                                                                      and self.closed in ("left", "neither"))))

    def __str__(self) -> str:
        what = "an int" if self.kind is Integral else "a float"
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{what} in the range {left}{low}, {high}{right}"


def _allows(allowed, value) -> bool:
    if allowed is None:
        return value is None
    if isinstance(allowed, (Choices, Range)):
        return value in allowed if isinstance(allowed, Range) or isinstance(value, str) else False
    if allowed == "array-like":  # as sklearn's: a sequence or array, not a scalar (str, numpy scalar)
        return (hasattr(value, "__len__") or hasattr(value, "shape") or hasattr(value, "__array__")) \
            and not isinstance(value, (str, bytes, Number)) and getattr(value, "ndim", 1) != 0
    if allowed == "boolean":
        return isinstance(value, bool)
    return isinstance(value, allowed)


def _describe(allowed) -> str:
    if allowed is None:
        return "None"
    if isinstance(allowed, Choices):
        return "one of " + ", ".join(repr(c) for c in sorted(allowed))
    if isinstance(allowed, str):
        return allowed
    return f"{'an' if allowed.__name__[0] in 'AEIOU' else 'a'} {allowed.__name__}" if isinstance(allowed, type) \
        else str(allowed)


def check(constraints: dict, params: dict, owner: str) -> None:
    """Refuse (ConfigError naming the option) the first value of ``params`` that its constraints do not allow."""
    for name, value in params.items():
        allowed = constraints.get(name)
        if allowed is not None and not any(_allows(a, value) for a in allowed):
            raise ConfigError(f"{owner}: {name.replace('_', '-')} must be "
                              f"{' or '.join(_describe(a) for a in allowed)}; got {value!r}", option=name)


def to_sklearn(constraints: dict) -> dict:
    """The same constraints as sklearn's objects (``StrOptions``, ``Interval``), for ``_parameter_constraints``."""
    from sklearn.utils._param_validation import Interval, StrOptions  # only estimators (which import sklearn) ask

    def one(allowed):
        if isinstance(allowed, Choices):
            return StrOptions(set(allowed))
        if isinstance(allowed, Range):  # sklearn wants an unbounded end open
            left = allowed.low is not None and allowed.closed in ("both", "left")
            right = allowed.high is not None and allowed.closed in ("both", "right")
            closed = {(True, True): "both", (True, False): "left", (False, True): "right"}.get((left, right), "neither")
            return Interval(allowed.kind, allowed.low, allowed.high, closed=closed)
        return allowed

    return {name: [one(a) for a in allowed] for name, allowed in constraints.items()}
