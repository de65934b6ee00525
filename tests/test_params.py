"""memeprobe.params: the light checker and sklearn's validation agree on one declaration."""
from numbers import Integral, Real

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from memeprobe.errors import ConfigError
from memeprobe.params import Choices, Range, check, to_sklearn

CONSTRAINTS = {
    "threshold": [Range(Real, 0, 1, closed="right")],
    "count": [None, Range(Integral, 1)],
    "rate": [Range(Real, 0, None, closed="neither")],
    "norm": [Choices({"l2", "none"})],
    "flag": ["boolean"],
    "blocks": [None, "array-like"],
}
VALUES = [None, 0, 1, 2, -1, 0.0, 0.5, 1.0, 1.5, float("nan"), float("inf"), True, False, "l2", "none", "L2",
          [1, 2], (3,), np.array([1]), np.int64(3), np.float32(0.25)]


@pytest.mark.parametrize("name", sorted(CONSTRAINTS))
def test_check_agrees_with_sklearn_on_every_value(name):
    theirs = to_sklearn(CONSTRAINTS)
    for value in VALUES:
        try:
            validate_parameter_constraints({name: theirs[name]}, {name: value}, caller_name="x")
            sklearn_ok = True
        except InvalidParameterError:
            sklearn_ok = False
        try:
            check(CONSTRAINTS, {name: value}, "x")
            ours_ok = True
        except ConfigError as e:
            ours_ok = False
            assert e.option == name and name.replace("_", "-") in str(e)
        assert ours_ok == sklearn_ok, (name, value)
