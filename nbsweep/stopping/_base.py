"""The one interface every early-termination rule implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from nbsweep._errors import ConfigError
from nbsweep._runs import RunRecord
from nbsweep.config import EarlyTerminate, SweepConfig


@dataclass(frozen=True)
class Band:
    """One band (W&B's "bracket"): an iteration where runs are compared, and what happened.

    ``reached == stopped + continued`` always (docs/notebook.md, "Bands").
    """

    iteration: int
    threshold: float  # in the metric's own sign (not negated for maximize); inf when empty
    reached: int  # runs (any state) with at least ``iteration`` valid values
    stopped: int  # of those, runs stopped at this band (judged here, whatever they logged after)
    continued: int  # of those, the others: not stopped here (running, ended, or stopped later)

    def __repr__(self) -> str:
        # 4 significant digits: a threshold's 17 digits say nothing a reader can use.
        return (
            f"Band(iteration={self.iteration}, threshold={self.threshold:.4g},"
            f" reached={self.reached}, stopped={self.stopped}, continued={self.continued})"
        )


@dataclass(frozen=True)
class StopDecision:
    """Which running runs must stop now, and what a view needs to draw the bands."""

    stop: list[str] = field(default_factory=list)  # run ids, in input order
    bands: list[Band] = field(default_factory=list)


class Stopper(ABC):
    """Decides which running runs stop, from every run's metric history; stateless.

    ``bands``: the iterations (counts of valid metric values) where runs are judged, so that
    an agent judges its run exactly there, as it logs (the scheduler's ``checkpoints``).
    """

    bands: Sequence[int]

    def __init__(self, config: SweepConfig) -> None:
        if config.early_terminate is None:
            raise ConfigError("early_terminate: a stopper needs the rule it applies")
        self.config = config
        self.early_terminate: EarlyTerminate = config.early_terminate

    @abstractmethod
    def decide(self, runs: Sequence[RunRecord]) -> StopDecision:
        """Return the running runs to stop now and the bands as they stand."""
