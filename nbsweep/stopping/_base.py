"""The one interface every early-termination rule implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbsweep._runs import RunRecord


@dataclass(frozen=True)
class Band:
    """One band (W&B's "bracket"): an iteration where runs are compared, and what happened."""

    iteration: int
    threshold: float  # in the metric's own sign (not negated for maximize); inf when empty
    reached: int  # runs (any state) with at least ``iteration`` valid values
    stopped: int  # of those, runs stopped at this band
    continued: int  # of those, runs that went past this band


@dataclass(frozen=True)
class StopDecision:
    """Which running runs must stop now, and what a view needs to draw the bands."""

    stop: list[str] = field(default_factory=list)  # run ids, in input order
    bands: list[Band] = field(default_factory=list)


class Stopper(ABC):
    """Decides which running runs stop, from every run's metric history; stateless."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    @abstractmethod
    def decide(self, runs: Sequence[RunRecord]) -> StopDecision:
        """Return the running runs to stop now and the bands as they stand."""
