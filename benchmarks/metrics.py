"""The numbers the report shows: best-after-budget, trials to target, paired tests, latency."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.harness import Trace

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Spread:
    """Median and interquartile range over seeds."""

    median: float
    q25: float
    q75: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        q25, median, q75 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
        return cls(float(median), float(q25), float(q75))


def best_spread(traces: Sequence[Trace], budget: int) -> Spread:
    return Spread.of([t.best_after(budget) for t in traces])


def trials_to_target(trace: Trace, target: float) -> float:
    """1-based trial at which the running best first reaches ``target``; inf if never."""
    for i, best in enumerate(trace.running_best(), start=1):
        if best <= target:
            return float(i)
    return math.inf


def target_of(random_traces: Sequence[Trace], budget: int = 200) -> float:
    """The target: the median over seeds of the best of ``budget`` random trials."""
    return float(np.median([t.best_after(budget) for t in random_traces]))


@dataclass(frozen=True)
class Comparison:
    """nbsweep (``a``) against a peer (``b``) on paired seeds; lower is better."""

    wins: int  # seeds where a is strictly better
    ties: int
    losses: int
    p_value: float
    median_a: float
    median_b: float

    @property
    def verdict(self) -> str:
        """``better``/``worse`` when Wilcoxon says so at 5%, else ``tie`` (ties are ties)."""
        if self.p_value < SIGNIFICANCE:
            return "better" if self.wins > self.losses else "worse"
        return "tie"


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Paired Wilcoxon signed-rank test of two methods' values over the same seeds."""
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    # Equal to float precision is a tie: the same config found, or the same grid point.
    close = np.isclose(x, y, rtol=1e-12, atol=1e-12)
    wins = int(np.sum((x < y) & ~close))
    losses = int(np.sum((x > y) & ~close))
    ties = int(np.sum(close))
    if wins + losses == 0:
        p_value = 1.0
    else:
        diff = np.where(close, 0.0, x - y)
        p_value = float(wilcoxon(diff, zero_method="wilcox").pvalue)
    return Comparison(wins, ties, losses, p_value, float(np.median(x)), float(np.median(y)))


def latency_summary(seconds: Sequence[float]) -> Mapping[str, Any]:
    values = np.asarray(seconds, dtype=float)
    return {
        "samples": len(values),
        "median_ms": float(np.median(values) * 1000),
        "p90_ms": float(np.percentile(values, 90) * 1000),
    }
