"""The one interface every sweep scheduler implements: suggest new runs, decide stops."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from nbsweep._runs import RunRecord


class Scheduler(ABC):
    """Suggests the configs of new runs and decides which running runs stop.

    The sweep's controller builds one from the normalised sweep config and calls it from its
    thread, each time with every run of the sweep as the store has it (pending, running and
    ended runs, in queue order). A scheduler may keep state between calls, but must rebuild
    it from ``runs`` when it meets runs it has not seen: a resumed sweep gets a new scheduler.

    ``reads_histories``: the controller reads each run's metric history for it (needed to
    learn from results or to stop runs; leave it off for a scheduler that ignores results).
    ``queue_ahead``: suggestions may wait in the queue before an agent takes them (true for
    a search that does not learn from results; a learning one should see them all first).
    """

    reads_histories: bool = True
    queue_ahead: bool = False

    def __init__(self, config: Mapping[str, Any], seed: int | None = None) -> None:
        self.config = config
        self.seed = seed if seed is not None else config.get("seed")

    @abstractmethod
    def suggest(self, runs: Sequence[RunRecord], n: int) -> list[dict[str, Any]]:
        """Up to ``n`` nested run configs; fewer means the search space is exhausted."""

    def stop(self, runs: Sequence[RunRecord]) -> dict[str, str]:
        """The running runs that must stop now, each with why (recorded on the run)."""
        return {}
