"""The one interface every search method implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from nbsweep._runs import RunRecord
from nbsweep.config import SweepConfig


class Searcher(ABC):
    """Suggests run configs from the runs so far; stateless between calls.

    ``config`` is the sweep config ``nbsweep.validate`` returns. Everything a
    suggestion depends on is in ``runs`` (any state, pending and running included), so a
    controller can be restarted and ask again with the same answer. ``seed`` (the config's
    ``seed`` key when the controller builds it) makes suggestions reproducible.
    """

    def __init__(self, config: SweepConfig, seed: int | None = None) -> None:
        self.config = config
        self.seed = seed if seed is not None else config.seed

    @abstractmethod
    def suggest(self, runs: Sequence[RunRecord], n: int = 1) -> list[dict[str, Any]]:
        """Return up to ``n`` nested run configs (plain values, constants included).

        A list shorter than ``n`` means the search space is exhausted (only grid does that).
        """
