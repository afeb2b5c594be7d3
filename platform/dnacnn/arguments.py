"""Checks of the Python API's scalar arguments: an error naming the argument and the value,
not Python's own words from deep inside (``'<' not supported between 'NoneType' and 'int'``)
nor a value quietly read as another (``bool("false")`` is True)."""

from __future__ import annotations

import numpy as np


def check_count(name: str, value, low: int = 1) -> int:
    """``value`` as an ``int`` when it is an integer >= ``low`` (a bool, float or string is not).

    Raises:
        ValueError: naming ``name`` and the value.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r:.60}")
    return int(value)


def check_flag(name: str, value) -> bool:
    """``value`` when it is True or False (a string such as "false" is not).

    Raises:
        ValueError: naming ``name`` and the value.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r:.60}")
    return bool(value)
