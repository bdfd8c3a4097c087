"""W&B's hyperband early termination, rule for rule (``sweeps`` 0.3.0, ``hyperband_stopping.py``).

A W&B user moving a sweep here must see the same runs stopped at the same iterations, so the
quirks are kept: bands by float division with int truncation, thresholds pooled over every run
of any state, ties survive, and ``strict: false`` compares the best value of the whole history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nbsweep._errors import ConfigError
from nbsweep._runs import RunRecord, valid_metric_values
from nbsweep._states import RunState
from nbsweep.config import EarlyTerminate, SweepConfig
from nbsweep.stopping._base import Band, StopDecision, Stopper

# W&B builds exactly this many bands from ``min_iter``.
_MIN_ITER_BANDS = 100


def hyperband_bands(early_terminate: EarlyTerminate) -> list[int]:
    """The iterations where hyperband compares runs, ascending, as W&B computes them.

    ``max_iter`` (with ``s``) wins over ``min_iter`` when both are given; validation makes
    sure there is at least one band.
    """
    eta = early_terminate.eta
    if early_terminate.max_iter is None:
        return _geometric_iterations(early_terminate.min_iter or 1, eta, _MIN_ITER_BANDS)
    bands = []
    band = float(early_terminate.max_iter)
    for _ in range(early_terminate.s or 0):
        band /= eta
        if band < 1:
            break
        bands.append(int(band))
    return sorted(bands)


def _geometric_iterations(start: float, eta: float, count: int) -> list[int]:
    """``int(start * eta**k)`` for k < count, as W&B multiplies a float; distinct, ascending.

    Stops early once the float overflows (W&B would crash there; no run logs that many rows).
    """
    out: list[int] = []
    value = float(start)
    for _ in range(count):
        if not math.isfinite(value):
            break
        iteration = int(value)
        if not out or iteration != out[-1]:
            out.append(iteration)
        value *= eta
    return out


def metric_sign(config: SweepConfig) -> tuple[str, float]:
    """The metric name and the sign that makes lower better (``-1`` for ``maximize``)."""
    metric = config.metric
    if metric is None:
        raise ConfigError("metric: early_terminate needs a metric with a name to compare runs on")
    return metric.name, (-1.0 if metric.maximize else 1.0)


def signed_histories(runs: Sequence[RunRecord], sign: float) -> list[list[float]]:
    """Each run's valid metric values, multiplied by ``sign`` so that lower is better."""
    return [[sign * v for v in valid_metric_values(run.metric_history)] for run in runs]


def closest_band(bands: Sequence[int], length: int) -> int | None:
    """The largest band not beyond ``length`` valid values; None before the first band."""
    found = None
    for band in bands:
        if band > length:
            break
        found = band
    return found


def band_report(
    bands: Sequence[int],
    thresholds: Sequence[float],
    runs: Sequence[RunRecord],
    histories: Sequence[Sequence[float]],
    stop: Sequence[str],
    sign: float,
) -> list[Band]:
    """Per band: threshold in the metric's sign and how many runs reached, stopped, continued.

    ``reached``: runs (any state) with at least ``band`` valid values. ``stopped``: those
    stopped at this band, i.e. whose closest band (the one they were judged at) is this one:
    runs already in state ``stopped`` and the runs this decision stops, even when they logged
    a few values past the band before the stop reached them. ``continued``: every other run
    that reached it, so that ``reached == stopped + continued``. An empty band's threshold is
    ``inf`` in the lower-is-better sense, so ``-inf`` for a maximized metric.
    """
    stopping = set(stop)
    lengths = [len(h) for h in histories]
    stopped_at: dict[int, int] = {}
    for run, length in zip(runs, lengths, strict=True):
        if run.state == RunState.STOPPED or run.id in stopping:
            band = closest_band(bands, length)
            if band is not None:
                stopped_at[band] = stopped_at.get(band, 0) + 1
    bands_out = []
    for band, threshold in zip(bands, thresholds, strict=True):
        reached = sum(length >= band for length in lengths)
        stopped = stopped_at.get(band, 0)
        bands_out.append(Band(band, sign * threshold, reached, stopped, reached - stopped))
    return bands_out


def shown_bands(bands: Sequence[int], histories: Sequence[Sequence[float]]) -> int:
    """How many bands a view needs: those some run reached, and the next one it is heading to."""
    longest = max((len(h) for h in histories), default=0)
    reached = sum(band <= longest for band in bands)
    return min(len(bands), reached + 1)


class Hyperband(Stopper):
    """W&B's ``early_terminate: {type: hyperband}``: stop running runs below a band's threshold.

    An iteration is one valid logged value of the metric (NaN, strings, None, bools and the
    summary do not count). At band ``b`` the threshold is the value of rank
    ``int(len(vals) / eta)`` among the ``b``-th values of every run that has one (any state).
    A running run is judged at its closest band: with ``strict`` (the default) its value there,
    otherwise the best value of its whole history; it stops when that is strictly worse.
    """

    def __init__(self, config: SweepConfig) -> None:
        super().__init__(config)
        early_terminate = self.early_terminate
        self.metric, self._sign = metric_sign(config)
        self.bands: list[int] = hyperband_bands(early_terminate)
        self.eta = early_terminate.eta
        self.strict = early_terminate.strict
        # The min_iter form has 100 bands, mostly far beyond any run: views get the useful ones.
        self._show_all = early_terminate.max_iter is not None

    def thresholds(self, histories: Sequence[Sequence[float]]) -> list[float]:
        """Per band, in the lower-is-better sign: the value a run must not exceed."""
        r = 1.0 / self.eta
        pool = [h for h in histories if h]
        out = []
        for band in self.bands:
            vals = sorted(h[band - 1] for h in pool if len(h) >= band)
            out.append(vals[int(r * len(vals))] if vals else math.inf)
        return out

    def decide(self, runs: Sequence[RunRecord]) -> StopDecision:
        """Stop each running run whose value at its closest band is worse than the threshold."""
        histories = signed_histories(runs, self._sign)
        thresholds = self.thresholds(histories)
        stop = []
        for run, history in zip(runs, histories, strict=True):
            if run.state != RunState.RUNNING:
                continue
            band = closest_band(self.bands, len(history))
            if band is None:
                continue
            cond = history[band - 1] if self.strict else min(history)
            if cond > thresholds[self.bands.index(band)]:
                stop.append(run.id)
        count = len(self.bands) if self._show_all else shown_bands(self.bands, histories)
        bands = band_report(
            self.bands[:count], thresholds[:count], runs, histories, stop, self._sign
        )
        return StopDecision(stop=stop, bands=bands)
