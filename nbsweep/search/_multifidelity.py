"""Multi-fidelity bayes: one Gaussian process over (config, iteration), fitted to every curve.

With ``early_terminate: {type: multifidelity}``, ``method: bayes`` learns from every run's
curve, stopped and running runs included, instead of from one value per finished run: each
run adds its best value so far at each fidelity level it reached (the rungs
``min_iter * eta**k`` and ``max_iter``), at the fidelity coordinate
``log(iteration) / log(max_iter)``, as MOBSTER's and Hyper-Tune's joint models do (Klein et
al. 2020, arXiv:2003.10865; Li et al. 2022, arXiv:2201.06834). The pieces are bayes's own
(the warped targets, the Matern 5/2 kernel with one length scale per column, now with one
more column for the fidelity, the fitted hyperparameters, log EI and its optimiser), so the
two searches differ only in what they observe and where EI is scored.

EI is scored at the highest fidelity level that enough runs reached (``MIN_AT_LEVEL``), against
the best value observed there: at first that is a low rung, so the search follows what the
first epochs say, and it moves to ``max_iter`` as runs get there. Runs in flight below that
level are fantasised there, as bayes fantasises pending runs, so parallel agents get points
apart.

Every ``RANDOM_EVERY``-th run of the sweep is drawn at random instead, as random search would
draw it there: BOHB's share of random configurations (Falkner et al. 2018, arXiv:1807.01774,
``random_fraction`` 1/3). The model alone settles in the basin whose curves drop fastest, and
the rung thresholds rise with it, so a config elsewhere whose curve crosses late is never
observed past the first rungs and the model never learns it ends best (sgd_digits, seed 0:
390 of 500 runs and 2,534 of 2,700 epochs in ``learning_rate: optimal``, 43 epochs in
``constant``, where the target lies). The random third keeps sampling the whole space
whatever the model believes (BOHB keeps Hyperband's guarantees this way, at worst a constant
factor slower).

The same model predicts each run's value at ``max_iter`` from its partial curve and from the
curves of the runs near it; the ``multifidelity`` stopping rule uses it to keep slow starters.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from nbsweep._errors import ConfigError
from nbsweep._runs import RunRecord, is_valid_metric, valid_metric_values
from nbsweep._states import RunState
from nbsweep.config import EarlyTerminate, SweepConfig
from nbsweep.search._bayes import (
    _GP,
    MAX_OBSERVATIONS,
    BayesSearch,
    _cap,
    _fit_theta,
    _one_blas_thread,
    _point_key,
    _sobol,
    _warp,
)
from nbsweep.search._random import derive_rng

# EI moves up to a fidelity level once this many runs reached it.
MIN_AT_LEVEL = 6
# Every third run of the sweep is drawn at random (BOHB's random_fraction, 1/3).
RANDOM_EVERY = 3
# The kernel's hyperparameters are fitted on at most this many rows. Each run adds a row per
# level it reaches, so the rows change at every call: bayes's refits on 100 to 200 of them
# would take most of a sweep's time (about 0.3 s a call against 0.03 s here).
THETA_ROWS = 64
_FAILED = (RunState.FAILED, RunState.CRASHED, RunState.KILLED)


def fidelity_levels(early_terminate: EarlyTerminate) -> list[int]:
    """The iterations the model observes: ``min_iter * eta**k`` below ``max_iter``, then
    ``max_iter`` (the rungs of the ``multifidelity`` rule, and the end of a run)."""
    if early_terminate.max_iter is None:
        raise ConfigError("early_terminate.max_iter: multi-fidelity search needs it")
    last = early_terminate.max_iter
    levels: list[int] = []
    value = float(early_terminate.min_iter or 1)
    while value < last:
        if not levels or int(value) != levels[-1]:
            levels.append(int(value))
        value *= early_terminate.eta
    return [*levels, last]


class Curves(NamedTuple):
    """Every run's curve as rows of the model, losses in the lower-is-better sign."""

    x: np.ndarray  # (m, d) the runs' points of the cube
    iteration: np.ndarray  # (m,) at which iteration each row's value was reached
    loss: np.ndarray  # (m,) the run's best value up to that iteration
    pending_ids: list[str]  # runs in flight, and how far each has come
    pending: np.ndarray  # (k, d)
    pending_reached: np.ndarray  # (k,) valid values logged so far


class _AtFidelity:
    """The model seen at one fidelity: points of the cube in, the function there out."""

    def __init__(self, gp: _GP, fidelity: float, incumbent: float) -> None:
        self.gp, self.fidelity, self.incumbent = gp, fidelity, incumbent

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        column = np.full((len(features), 1), self.fidelity)
        return self.gp.predict(np.hstack([features, column]))


class MultiFidelitySearch(BayesSearch):
    """Bayes over (config, iteration) for sweeps with ``early_terminate: multifidelity``."""

    # The candidates docs/benchmarks-multifidelity.md was measured with (bayes's before its
    # own were retuned on the development tasks).
    sobol_candidates = 1024
    local_candidates = 128
    polish = False

    def __init__(self, config: SweepConfig, seed: int | None = None) -> None:
        super().__init__(config, seed)
        if config.early_terminate is None:
            raise ConfigError(
                "early_terminate: multi-fidelity search needs {type: multifidelity, max_iter: N}"
            )
        self.levels = fidelity_levels(config.early_terminate)
        self.max_iter = self.levels[-1]
        self._sign = -1.0 if self.maximize else 1.0

    def fidelity(self, iteration: np.ndarray | float) -> np.ndarray:
        """The model's fidelity coordinate of an iteration: 0 at the first, 1 at ``max_iter``."""
        it = np.clip(np.asarray(iteration, dtype=float), 1.0, self.max_iter)
        return np.log(it) / math.log(self.max_iter)

    def _features(self, points: np.ndarray) -> np.ndarray:
        """Bayes's columns for the config, then the fidelity column when ``points`` has one."""
        d = len(self.space.searchable)
        return np.hstack([super()._features(points[:, :d]), points[:, d:]])

    def curves(self, runs: Sequence[RunRecord]) -> Curves:
        """The rows the model is fitted on, and the runs in flight.

        A run adds a row at each fidelity level it reached and, once ended, at its last
        iteration. A run that failed before logging any value is imputed at ``max_iter`` with
        the worst loss of the sweep (bayes's default ``impute: worst``); a run that logged
        only a summary counts it at ``max_iter``.
        """
        d = len(self.space.searchable)
        xs, iterations, losses, worst_at = [], [], [], []
        pending_ids, pending, reached = [], [], []
        for run in runs:
            x = self._point(run)
            if x is None:
                continue  # lacks a parameter of this sweep: nothing to learn from it
            values = valid_metric_values(run.metric_history)[: self.max_iter]
            best = np.minimum.accumulate(self._sign * np.array(values)) if values else []
            at = [level for level in self.levels if level <= len(values)]
            if run.state not in (RunState.RUNNING, RunState.PENDING) and values:
                at = sorted({*at, len(values)})
            for iteration in at:
                xs.append(x)
                iterations.append(iteration)
                losses.append(float(best[iteration - 1]))
            if not values and run.state in (RunState.FINISHED, RunState.STOPPED):
                if is_valid_metric(run.summary_metric):
                    xs.append(x)
                    iterations.append(self.max_iter)
                    losses.append(self._sign * float(run.summary_metric))
            elif not values and run.state in _FAILED:
                worst_at.append(x)
            if run.state in (RunState.RUNNING, RunState.PENDING):
                pending_ids.append(run.id)
                pending.append(x)
                reached.append(len(values))
        if worst_at and losses:
            worst = max(losses)
            xs.extend(worst_at)
            iterations.extend([self.max_iter] * len(worst_at))
            losses.extend([worst] * len(worst_at))
        return Curves(
            np.array(xs, dtype=float).reshape(-1, d),
            np.array(iterations, dtype=int),
            np.array(losses, dtype=float),
            pending_ids,
            np.array(pending, dtype=float).reshape(-1, d),
            np.array(reached, dtype=int),
        )

    def acquisition_level(self, curves: Curves) -> int | None:
        """The highest fidelity level with ``MIN_AT_LEVEL`` rows (with fewer rows in all, the
        first level that has two); None before two runs reached any level."""
        counts = [int(np.sum(curves.iteration == level)) for level in self.levels]
        for level, count in zip(reversed(self.levels), reversed(counts), strict=True):
            if count >= MIN_AT_LEVEL:
                return level
        return next((lv for lv, c in zip(self.levels, counts, strict=True) if c >= 2), None)

    def _theta(self, x: np.ndarray, loss: np.ndarray) -> np.ndarray:
        """Kernel hyperparameters fitted on at most ``THETA_ROWS`` rows: the best half, then
        the most recent (a function of the runs, memoised for the stopper's repeated asks)."""
        x, loss = _cap(x, loss, THETA_ROWS)
        key = hashlib.sha1(x.tobytes() + loss.tobytes()).digest()
        theta = self._thetas.get(key)
        if theta is None:
            features = self._features(x)
            # The prior docs/benchmarks-multifidelity.md was measured with: length scales
            # centred on half the side in 2-d, growing with the square root of the dimension.
            length = 0.5 * math.sqrt(features.shape[1] / 2)
            theta = _fit_theta(features, _warp(loss), length)
            self._thetas = {key: theta}
        return theta

    def _fit(self, curves: Curves) -> tuple[_GP, np.ndarray, np.ndarray]:
        """The GP on (at most ``MAX_OBSERVATIONS``) rows; with the rows' points and targets."""
        points = np.hstack([curves.x, self.fidelity(curves.iteration)[:, None]])
        kept, capped = _cap(points, curves.loss)
        target = _warp(capped)
        gp = _GP(self._theta(points, curves.loss), self._features(kept), target)
        return gp, kept, target

    def suggest(self, runs: Sequence[RunRecord], n: int = 1) -> list[dict[str, Any]]:
        """``n`` configs: the sweep's every ``RANDOM_EVERY``-th run drawn as random search
        draws it, the others distinct points of highest EI at the acquisition level."""
        rng = derive_rng(self.seed, len(runs))
        curves = self.curves(runs)
        level = self.acquisition_level(curves)
        if level is None:
            return [self.space.from_unit(p) for p in _sobol(len(self.space.searchable), n, rng)]
        positions = range(len(runs), len(runs) + n)
        drawn = [k % RANDOM_EVERY == RANDOM_EVERY - 1 for k in positions]
        chosen: list[np.ndarray] = []
        if not all(drawn):
            with _one_blas_thread():
                chosen = self._curve_points(curves, level, drawn.count(False), rng)
        modelled = iter(chosen)
        return [
            self.space.sample(derive_rng(self.seed, k))
            if random
            else self.space.from_unit(next(modelled))
            for k, random in zip(positions, drawn, strict=True)
        ]

    def _curve_points(
        self, curves: Curves, level: int, n: int, rng: np.random.Generator
    ) -> list[np.ndarray]:
        gp, kept, target = self._fit(curves)
        fidelity = float(self.fidelity(level))
        d = curves.x.shape[1]
        here = np.isclose(kept[:, d], fidelity)
        # The rows at the level may all have been capped away on a long sweep: then the best
        # rows of any level stand in for them.
        if not here.any():
            here = np.ones(len(kept), dtype=bool)
        incumbent = float(target[here].min())
        best_seen = kept[here][np.argsort(target[here])[:5], :d]
        taken = {_point_key(p) for p in np.vstack([curves.x, curves.pending])}
        # As in bayes, the most recent runs in flight; those past the level are observed there.
        pending = list(curves.pending[curves.pending_reached < level][-MAX_OBSERVATIONS // 2 :])
        chosen: list[np.ndarray] = []
        for _ in range(n):
            in_flight = pending + chosen
            model = gp
            if in_flight:
                points = np.hstack([np.array(in_flight), np.full((len(in_flight), 1), fidelity)])
                model = gp.fantasy(self._features(points))
            point = self._maximise_ei(
                _AtFidelity(model, fidelity, incumbent), best_seen, taken, rng
            )
            chosen.append(point)
            taken.add(_point_key(point))
        return chosen

    def predict_final(
        self, runs: Sequence[RunRecord], ids: Sequence[str], optimism: float = 0.0
    ) -> dict[str, float]:
        """The model's loss at ``max_iter`` of each run of ``ids`` that has a point: its mean,
        less ``optimism`` standard deviations (in the model's warped units: only the order
        means something)."""
        curves = self.curves(runs)
        if len(curves.loss) < 2:
            return {}
        by_id = {run.id: run for run in runs}
        wanted = [(i, self._point(by_id[i])) for i in ids if i in by_id]
        wanted = [(i, x) for i, x in wanted if x is not None]
        if not wanted:
            return {}
        with _one_blas_thread():
            gp, _, _ = self._fit(curves)
            points = np.array([x for _, x in wanted])
            mean, sd = gp.predict(self._features(np.hstack([points, np.ones((len(points), 1))])))
        bound = mean - optimism * sd
        return {i: float(b) for (i, _), b in zip(wanted, bound, strict=True)}
