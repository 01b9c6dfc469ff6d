"""Reading a stored score as a number: the two conventions the families use, in one place."""

from __future__ import annotations

import math
from typing import Any


def as_float_or_nan(v: Any) -> float:
    """A feature value as a float, NaN where it is missing (None) or a category (a string): the form of a
    numeric column (``purge.rules.columns``), where NaN never fires a rule."""
    if v is None or isinstance(v, str):
        return float("nan")
    return float(v)


def finite_number(v: Any) -> float | None:
    """``v`` as a float when it is a real number (not a bool, not NaN), else None: for scores that may be
    missing or failed (a rating that did not parse is stored as None)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(float(v)):
        return float(v)
    return None
