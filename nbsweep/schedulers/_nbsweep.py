"""nbsweep's own scheduler: W&B's search methods and early termination, as W&B runs them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nbsweep._runs import RunRecord
from nbsweep.schedulers._base import Scheduler
from nbsweep.search import make_searcher
from nbsweep.stopping import make_stopper


class NbsweepScheduler(Scheduler):
    """``method`` (grid, random, bayes) suggests; ``early_terminate`` (hyperband, asha) stops.

    Both parts are stateless: everything they decide comes from the runs they are given.
    """

    def __init__(self, config: Mapping[str, Any], seed: int | None = None) -> None:
        super().__init__(config, seed)
        self.searcher = make_searcher(config, seed=self.seed)
        self.stopper = make_stopper(config)
        learns = config.get("method") == "bayes"
        self.reads_histories = learns or self.stopper is not None
        self.queue_ahead = not learns

    def suggest(self, runs: Sequence[RunRecord], n: int) -> list[dict[str, Any]]:
        return self.searcher.suggest(runs, n)

    def stop(self, runs: Sequence[RunRecord]) -> dict[str, str]:
        if self.stopper is None:
            return {}
        decision = self.stopper.decide(runs)
        iterations = {r.id: len(r.metric_history) for r in runs}
        return {
            run_id: f"early_terminate: stopped at {iterations[run_id]} iterations"
            for run_id in decision.stop
        }
