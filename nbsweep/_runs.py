"""What the pure engine (search, stopping) knows of a run: no store, no processes."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunRecord:
    """One run as the engine sees it.

    ``config`` is the nested run config of plain values (``{"lr": 0.01, "model": {"depth": 3}}``).
    ``metric_history`` holds the raw values logged for the sweep's metric, one per history row
    that contained the key, in order (may include NaN, inf, strings, None: the engine filters).
    ``summary_metric`` is the summary value of the metric, if any. ``state`` is one of
    ``nbsweep._states.RunState`` (stored as its plain string).
    """

    id: str
    config: Mapping[str, Any]
    state: str
    metric_history: Sequence[Any] = field(default_factory=tuple)
    summary_metric: Any = None


def is_valid_metric(value: Any) -> bool:
    """A metric value counts when it is a finite real number (bools do not count)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # A numpy scalar counts; without numpy imported there is none (and an agent whose
        # runs never use numpy is spared importing it: 0.2 s of CPU).
        np = sys.modules.get("numpy")
        if np is None or not isinstance(value, (np.integer, np.floating)):
            return False
    return math.isfinite(float(value))


def valid_metric_values(values: Sequence[Any]) -> list[float]:
    """The finite numeric values of a metric history, as floats, in order."""
    return [float(v) for v in values if is_valid_metric(v)]
