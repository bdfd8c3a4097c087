"""Asynchronous successive halving (ASHA, Li et al. 2018, arXiv:1810.05934).

nbsweep's own ``early_terminate: {type: asha}``, next to W&B's hyperband. Hyperband pools the
``b``-th value of every run and keeps the best ``1 - 1/eta`` of them, so with ``eta: 3`` it stops
only the worst third; ASHA keeps only the top ``1/eta`` at each rung, so most of the budget goes
to the few promising runs, and it never stops anyone on too little evidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nbsweep._runs import RunRecord
from nbsweep._states import RunState
from nbsweep.config import EarlyTerminate, SweepConfig
from nbsweep.stopping._base import StopDecision, Stopper
from nbsweep.stopping._hyperband import (
    band_report,
    closest_band,
    metric_sign,
    shown_bands,
    signed_histories,
)

# Without max_iter the rungs go on to an iteration count no run will ever log.
_NO_MAX_ITER = 2**53


def asha_rungs(early_terminate: EarlyTerminate) -> list[int]:
    """The rung iterations ``int(min_iter * eta**k)``, distinct, below ``max_iter`` if given.

    A run at ``max_iter`` has had its whole budget: stopping it there would save nothing.
    """
    eta = early_terminate.eta
    first = early_terminate.min_iter or 1
    last = early_terminate.max_iter or _NO_MAX_ITER
    rungs: list[int] = []
    value = float(first)
    while value < last:
        if not rungs or int(value) != rungs[-1]:
            rungs.append(int(value))
        value *= eta
    return rungs


class Asha(Stopper):
    """``early_terminate: {type: asha, min_iter, eta: 3, max_iter?}``: asynchronous halving.

    ``min_iter`` is the grace period (Ray Tune's ``grace_period``, Optuna's ``min_resource``):
    no run is judged before it has logged that many valid metric values. ``eta`` is the
    reduction factor (``reduction_factor``): rungs sit at ``min_iter * eta**k`` valid values
    (below ``max_iter``, Ray Tune's ``max_t``), and at each rung only the best ``1/eta`` of the
    runs go on.

    A running run is judged at the highest rung it has reached. Its value there is its best
    value over its first ``rung`` iterations, so one noisy epoch at the rung does not kill a
    good run. It is compared with the same value of every run (any state) that reached the
    rung: with ``n`` of them and ``n >= eta``, it goes on when it ranks within the best
    ``floor(n / eta)`` (ties survive); with fewer than ``eta`` it goes on (too little evidence).

    The engine is stateless, so a run is judged again on every call until it reaches its next
    rung: a run promoted while few peers had reached the rung can still be stopped there when
    better ones arrive, which is what synchronous halving would decide with the same runs.
    """

    def __init__(self, config: SweepConfig) -> None:
        super().__init__(config)
        early_terminate = self.early_terminate
        self.metric, self._sign = metric_sign(config)
        self.bands: list[int] = asha_rungs(early_terminate)
        self.eta = early_terminate.eta
        self._show_all = early_terminate.max_iter is not None

    def thresholds(self, histories: Sequence[Sequence[float]]) -> list[float]:
        """Per rung, in the lower-is-better sign: the worst value that still goes on."""
        out = []
        for rung in self.bands:
            vals = sorted(min(h[:rung]) for h in histories if len(h) >= rung)
            keep = math.floor(len(vals) / self.eta)
            out.append(vals[keep - 1] if keep >= 1 else math.inf)
        return out

    def decide(self, runs: Sequence[RunRecord]) -> StopDecision:
        """Stop each running run that is not in the top ``1/eta`` at its highest rung (less
        those ``_spared``)."""
        histories = signed_histories(runs, self._sign)
        thresholds = self.thresholds(histories)
        candidates = []
        for run, history in zip(runs, histories, strict=True):
            if run.state != RunState.RUNNING:
                continue
            rung = closest_band(self.bands, len(history))
            if rung is not None and min(history[:rung]) > thresholds[self.bands.index(rung)]:
                candidates.append((run.id, rung))
        spared = self._spared(runs, histories, candidates) if candidates else set()
        stop = [run_id for run_id, _ in candidates if run_id not in spared]
        count = len(self.bands) if self._show_all else shown_bands(self.bands, histories)
        bands = band_report(
            self.bands[:count], thresholds[:count], runs, histories, stop, self._sign
        )
        return StopDecision(stop=stop, bands=bands)

    def _spared(
        self,
        runs: Sequence[RunRecord],
        histories: Sequence[Sequence[float]],
        candidates: Sequence[tuple[str, int]],
    ) -> set[str]:
        """Of the ``(run id, rung)`` pairs ASHA stops, the runs that go on all the same: none
        here (the ``multifidelity`` rule keeps some)."""
        return set()
