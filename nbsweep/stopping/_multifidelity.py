"""``early_terminate: {type: multifidelity}``: ASHA's rungs, with a model that keeps slow starters.

ASHA ranks the runs at a rung by what they reached so far, so a run that starts slowly and
would end best (a small learning rate, strong regularisation: curves that cross) is stopped at
the first rung. Here a run that ASHA would stop goes on when the curve model
(``nbsweep.search.MultiFidelitySearch``: a Gaussian process over config and iteration, fitted
to every run's curve) predicts that its value at ``max_iter`` could rank among the best
``1/eta`` of the runs at the rung. The model can only keep runs that ASHA stops, never stop
one that ASHA keeps.

"Could": the runs are ranked by the model's optimistic value at ``max_iter``, one standard
deviation below its mean (a lower confidence bound, as GP-UCB scores points: Srinivas et al.
2010, arXiv:0912.3995). Ranked by the mean alone, a run in a region where no curve went past
the first rungs is judged by the early values of its neighbours, exactly what ASHA does with
curves that cross; once a search concentrates on fast starters and the rung thresholds rise,
no slow starter elsewhere gets a longer curve, and the model never learns that it ends best.
The bound keeps such a run while the model is unsure of it, and only then: where the model has
seen curves end, the bound is close to the mean.

The model needs every run's config and whole curve, which only the controller has, so agents
do not judge at the rungs: the controller stops a run as soon as it reads the row that took it
to a rung (a run may log a row or two past the rung before the stop reaches it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nbsweep._runs import RunRecord
from nbsweep.config import SweepConfig
from nbsweep.stopping._asha import Asha

# How many standard deviations below its mean the model's value at max_iter is taken.
OPTIMISM = 1.0


class MultiFidelity(Asha):
    """``{type: multifidelity, max_iter, min_iter: 1, eta: 3}``: ASHA, and the model's say.

    Rungs sit at ``min_iter * eta**k`` valid values below ``max_iter``. At its highest rung a
    running run goes on when ASHA keeps it (its best value so far ranks in the best
    ``floor(n / eta)`` of the ``n`` runs that reached the rung) or when the model's optimistic
    value at ``max_iter`` (``OPTIMISM`` standard deviations below the mean) ranks there among
    the same runs. Without a searchable parameter there is no model, and the rule is ASHA's.
    """

    def __init__(self, config: SweepConfig) -> None:
        # Imported here: the search (numpy, scipy) is for this rule alone, and agents of
        # sweeps under the other rules start without it (0.2 s of CPU each).
        from nbsweep.search._multifidelity import MultiFidelitySearch

        super().__init__(config)
        self.model = MultiFidelitySearch(config) if config.space.searchable else None

    def _spared(
        self,
        runs: Sequence[RunRecord],
        histories: Sequence[Sequence[float]],
        candidates: Sequence[tuple[str, int]],
    ) -> set[str]:
        """The candidates whose optimistic value at ``max_iter`` ranks in the best
        ``floor(n / eta)`` of the ``n`` runs at their rung (ties go on, as in ASHA)."""
        if self.model is None:
            return set()
        lengths = {run.id: len(h) for run, h in zip(runs, histories, strict=True)}
        first = self.bands[0]
        predicted = self.model.predict_final(
            runs, [i for i, n in lengths.items() if n >= first], optimism=OPTIMISM
        )
        kept = set()
        for run_id, rung in candidates:
            if run_id not in predicted:
                continue
            reached = [i for i, n in lengths.items() if n >= rung]
            better = sum(predicted.get(i, math.inf) < predicted[run_id] for i in reached)
            if better < math.floor(len(reached) / self.eta):
                kept.add(run_id)
        return kept
