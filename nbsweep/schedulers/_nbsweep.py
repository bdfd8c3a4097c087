"""nbsweep's own scheduler: W&B's search methods and early termination, as W&B runs them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbsweep._runs import RunRecord, valid_metric_values
from nbsweep._states import RunState
from nbsweep.config import SweepConfig
from nbsweep.schedulers._base import Scheduler
from nbsweep.stopping import MultiFidelity, make_stopper

if TYPE_CHECKING:
    from nbsweep.search import Searcher


class NbsweepScheduler(Scheduler):
    """``method`` (grid, random, bayes) suggests; ``early_terminate`` (hyperband, asha,
    multifidelity) stops.

    Both parts are stateless: everything they decide comes from the runs they are given.
    Agents judge their run at the stopper's bands; the searcher is built on first use, so an
    agent, which only judges, never builds one.
    """

    def __init__(self, config: SweepConfig, seed: int | None = None) -> None:
        super().__init__(config, seed)
        self.stopper = make_stopper(config)
        # The multifidelity rule needs every run's config and whole curve, which only the
        # controller has: its agents do not judge at the rungs.
        judged_by_agents = self.stopper is not None and not isinstance(self.stopper, MultiFidelity)
        self.checkpoints = frozenset(self.stopper.bands) if judged_by_agents else ()
        learns = config.method == "bayes"
        self.reads_histories = learns or self.stopper is not None
        self.queue_ahead = not learns
        self._searcher: Searcher | None = None

    def suggest(self, runs: Sequence[RunRecord], n: int) -> list[dict[str, Any]]:
        if self._searcher is None:
            from nbsweep.search import make_searcher

            self._searcher = make_searcher(self.config, seed=self.seed)
        return self._searcher.suggest(runs, n)

    def on_result(self, run: RunRecord, runs: Sequence[RunRecord]) -> str | None:
        """Hyperband's (or ASHA's) verdict on ``run`` at the band it has reached."""
        if self.stopper is None:
            return None
        others = [r for r in runs if r.id != run.id]
        decision = self.stopper.decide([*others, run])
        if run.id not in decision.stop:
            return None
        values = valid_metric_values(run.metric_history)
        band = len(values)
        threshold = next((b.threshold for b in decision.bands if b.iteration == band), None)
        if threshold is None:
            return f"early_terminate: stopped at {band} iterations"
        metric = self.stopper.config.metric
        name = metric.name if metric is not None else "metric"
        return (
            f"early_terminate: stopped at band {band} ({name}={values[band - 1]:g},"
            f" threshold {threshold:g})"
        )

    def stop(self, runs: Sequence[RunRecord]) -> dict[str, str]:
        """The stopper's decision, less the runs at the sweep's last iteration: they are done."""
        if self.stopper is None:
            return {}
        decision = self.stopper.decide(runs)
        iterations = {r.id: len(valid_metric_values(r.metric_history)) for r in runs}
        last = last_iteration(runs)
        return {
            run_id: f"early_terminate: stopped at {iterations[run_id]} iterations"
            for run_id in decision.stop
            if last is None or iterations[run_id] < last
        }


def last_iteration(runs: Sequence[RunRecord]) -> int | None:
    """How many values runs of the sweep log in all, once known: the count of a finished run,
    when no run logged more. A run that reached it has had its whole budget; stopping it would
    save nothing, so it ends ``finished`` (the store applies the same rule to agents' checks)."""
    counts = [(r.state, len(valid_metric_values(r.metric_history))) for r in runs]
    longest = max((n for _, n in counts), default=0)
    if any(state == RunState.FINISHED and n == longest for state, n in counts) and longest:
        return longest
    return None
