"""The one interface every sweep scheduler implements: suggest new runs, decide stops.

Stopping is one contract, as Ray Tune's ``TrialScheduler.on_trial_result`` answers CONTINUE or
STOP: ``on_result`` decides for one running run. Two places ask it. The controller asks after
new metric values (``stop``, every running run at once); the agent asks inside the very
transaction that writes a row reaching one of ``checkpoints``, so that a run stopped there
never logs a row past it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from typing import Any, ClassVar

from nbsweep._runs import RunRecord
from nbsweep._states import RunState
from nbsweep.config import SweepConfig


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
    ``checkpoints``: the iterations (counts of valid metric values) at which agents ask
    ``on_result`` as they log; empty, only the controller asks. ``in_agents``: whether agent
    processes build this scheduler at all (off for one whose state lives in the controller).
    """

    reads_histories: bool = True
    queue_ahead: bool = False
    checkpoints: Collection[int] = ()
    in_agents: ClassVar[bool] = True

    def __init__(self, config: SweepConfig, seed: int | None = None) -> None:
        self.config = config
        self.seed = seed if seed is not None else config.seed

    @abstractmethod
    def suggest(self, runs: Sequence[RunRecord], n: int) -> list[dict[str, Any]]:
        """Up to ``n`` nested run configs; fewer means the search space is exhausted."""

    def on_result(self, run: RunRecord, runs: Sequence[RunRecord]) -> str | None:
        """Whether ``run``, running, stops now: why (recorded on the run), or None to go on.

        The controller passes every run of the sweep in ``runs``. An agent, at a checkpoint,
        passes the other runs that reached it, as finished runs without configs and with their
        histories cut there: all that a decision at that iteration may depend on.
        """
        return None

    def stop(self, runs: Sequence[RunRecord]) -> dict[str, str]:
        """The running runs that must stop now, each with why (recorded on the run).

        ``on_result`` for each running run; override it to decide for all runs at once.
        """
        decided = {r.id: self.on_result(r, runs) for r in runs if r.state == RunState.RUNNING}
        return {run_id: why for run_id, why in decided.items() if why is not None}
