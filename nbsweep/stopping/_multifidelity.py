"""``early_terminate: {type: multifidelity}``: ASHA's rungs, with a model that keeps slow starters.

ASHA ranks the runs at a rung by what they reached so far, so a run that starts slowly and
would end best (a small learning rate, strong regularisation: curves that cross) is stopped at
the first rung. Here a run that ASHA would stop goes on when the curve model
(``nbsweep.search.MultiFidelitySearch``: a Gaussian process over config and iteration, fitted
to every run's curve) predicts that its value at ``max_iter`` ranks among the best ``1/eta`` of
the runs at the rung. The model can only keep runs that ASHA stops, never stop one that ASHA
keeps.

The model needs every run's config and whole curve, which only the controller has, so agents
do not judge at the rungs: the controller stops a run as soon as it reads the row that took it
to a rung (a run may log a row or two past the rung before the stop reaches it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nbsweep._runs import RunRecord
from nbsweep._states import RunState
from nbsweep.config import SweepConfig
from nbsweep.search._multifidelity import MultiFidelitySearch
from nbsweep.stopping._asha import Asha
from nbsweep.stopping._base import StopDecision
from nbsweep.stopping._hyperband import band_report, closest_band, shown_bands, signed_histories


class MultiFidelity(Asha):
    """``{type: multifidelity, max_iter, min_iter: 1, eta: 3}``: ASHA, and the model's say.

    Rungs sit at ``min_iter * eta**k`` valid values below ``max_iter``. At its highest rung a
    running run goes on when ASHA keeps it (its best value so far ranks in the best
    ``floor(n / eta)`` of the ``n`` runs that reached the rung) or when the model's predicted
    value at ``max_iter`` ranks there among the same runs. Without a searchable parameter
    there is no model, and the rule is ASHA's.
    """

    def __init__(self, config: SweepConfig) -> None:
        super().__init__(config)
        self.model = MultiFidelitySearch(config) if config.space.searchable else None

    def decide(self, runs: Sequence[RunRecord]) -> StopDecision:
        """ASHA's stops, less the runs the model predicts among the best at their rung."""
        histories = signed_histories(runs, self._sign)
        thresholds = self.thresholds(histories)
        candidates = []
        for run, history in zip(runs, histories, strict=True):
            if run.state != RunState.RUNNING:
                continue
            rung = closest_band(self.bands, len(history))
            if rung is not None and min(history[:rung]) > thresholds[self.bands.index(rung)]:
                candidates.append((run.id, rung))
        kept = self._kept(runs, histories, candidates) if candidates else set()
        stop = [run_id for run_id, _ in candidates if run_id not in kept]
        count = len(self.bands) if self._show_all else shown_bands(self.bands, histories)
        bands = band_report(
            self.bands[:count], thresholds[:count], runs, histories, stop, self._sign
        )
        return StopDecision(stop=stop, bands=bands)

    def _kept(
        self,
        runs: Sequence[RunRecord],
        histories: Sequence[Sequence[float]],
        candidates: Sequence[tuple[str, int]],
    ) -> set[str]:
        """The candidates whose predicted value at ``max_iter`` ranks in the best
        ``floor(n / eta)`` of the ``n`` runs at their rung (ties go on, as in ASHA)."""
        if self.model is None:
            return set()
        lengths = {run.id: len(h) for run, h in zip(runs, histories, strict=True)}
        first = self.bands[0]
        predicted = self.model.predict_final(runs, [i for i, n in lengths.items() if n >= first])
        kept = set()
        for run_id, rung in candidates:
            if run_id not in predicted:
                continue
            reached = [i for i, n in lengths.items() if n >= rung]
            better = sum(predicted.get(i, math.inf) < predicted[run_id] for i in reached)
            if better < math.floor(len(reached) / self.eta):
                kept.add(run_id)
        return kept
