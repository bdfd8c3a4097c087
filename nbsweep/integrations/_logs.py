"""What the framework callbacks share: turning a framework's logs into an nbsweep row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def numbers(logs: Mapping[str, Any] | None) -> dict[str, float]:
    """The scalar numbers of ``logs`` as floats (0-d tensors and NumPy scalars included).

    Strings, flags, None and arrays of several values are left out: a sweep's views and early
    termination read numbers. NaN stays (a diverged loss is worth seeing).
    """
    out: dict[str, float] = {}
    for key, value in (logs or {}).items():
        if value is None or isinstance(value, (bool, str)):
            continue
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError, RuntimeError):  # torch raises RuntimeError for arrays
            continue
    return out
