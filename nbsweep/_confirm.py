"""Confirming a sweep's best config: the same config again under several seeds.

A sweep's best run is the luckiest of many draws; its value overstates what the config gives.
``Sweep.confirm`` runs the best config again as a small grid sweep over ``seed`` and reports
mean ± standard deviation, the number to publish.
"""

from __future__ import annotations

import copy
import math
import os
import random
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from nbsweep._errors import SweepError
from nbsweep._runs import is_valid_metric
from nbsweep._states import RunState, SweepState
from nbsweep.config import SweepConfig

if TYPE_CHECKING:
    from nbsweep._sweep import Sweep

# The run-config key that carries the seed of a confirmation run.
SEED_KEY = "seed"


class Seeded:
    """The train function, run after seeding from the run's ``config.seed``.

    Sets ``NBSWEEP_SEED`` and ``PYTHONHASHSEED`` (read by programs the run starts) and seeds
    Python's ``random``, NumPy's global generator and PyTorch when they are loaded. A train
    function with its own generators should seed them from ``config.seed``.
    """

    def __init__(self, train: Callable[..., Any]) -> None:
        self.train = train

    def __call__(self, run_config: Mapping[str, Any]) -> Any:
        seed = int(run_config[SEED_KEY])
        os.environ["NBSWEEP_SEED"] = os.environ["PYTHONHASHSEED"] = str(seed)
        random.seed(seed)
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed(seed % 2**32)
        if "torch" in sys.modules:
            sys.modules["torch"].manual_seed(seed)  # CUDA generators included
        return self.train(run_config)


@dataclass(frozen=True)
class Confirmation:
    """The best config's metric over seeds: ``mean``, ``std`` (sample), ``n``, ``values``."""

    metric: str
    values: tuple[float, ...]
    seeds: tuple[int, ...]
    sweep: Sweep = field(repr=False)  # the confirmation sweep, with its runs
    failed: int = 0

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation (n - 1); NaN for one value."""
        return statistics.stdev(self.values) if self.n > 1 else math.nan

    def __repr__(self) -> str:
        failed = f"; {self.failed} runs failed" if self.failed else ""
        return f"{self.metric} = {self.mean:.4g} ± {self.std:.2g} (n={self.n}{failed})"


def seed_list(seeds: int | Sequence[int]) -> list[int]:
    """``5`` means seeds 0..4; a list is taken as given (distinct integers)."""
    if isinstance(seeds, (bool, str)) or not isinstance(seeds, (int, Sequence)):
        raise SweepError(f"seeds: expected a count or a list of integers, not {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 2:
            raise SweepError(f"seeds: {seeds} gives no spread; confirm with at least 2 seeds")
        return list(range(seeds))
    found = list(seeds)
    if len(found) < 2 or len(set(found)) != len(found):
        raise SweepError(f"seeds: {found!r} must hold at least 2 distinct integers")
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in found):
        raise SweepError(f"seeds: {found!r} must be integers")
    return found


def confirm_config(config: SweepConfig, best: Mapping[str, Any], seeds: list[int]) -> SweepConfig:
    """A grid sweep config: every parameter fixed at the best run's value, ``seed`` varied.

    Early termination, ``run_cap`` and ``metric.target`` go: every seed must run to the end.
    """
    assert config.metric is not None  # confirm checked it
    metric = {k: v for k, v in asdict(config.metric).items() if k != "target"}
    parameters = _fixed(config.parameters, best)
    parameters[SEED_KEY] = {"values": seeds}
    return config.replace(
        method="grid",
        metric=metric,
        parameters=parameters,
        early_terminate=None,
        run_cap=None,
        seed=None,
        name=None,
    )


def _fixed(parameters: Mapping[str, Any], best: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in parameters.items():
        value = best.get(name) if isinstance(best, Mapping) else None
        nested = isinstance(spec, Mapping) and "parameters" in spec and "distribution" not in spec
        if nested and isinstance(value, Mapping):
            out[name] = {"parameters": _fixed(spec["parameters"], value)}
        elif name in best:
            out[name] = {"value": copy.deepcopy(value)}
    return out


def confirm(
    sweep: Sweep,
    seeds: int | Sequence[int],
    train: Callable[..., Any] | None,
    workers: int | None,
    timeout: float | None,
    start: Callable[..., Sweep],
) -> Confirmation:
    """Start the confirmation sweep of ``sweep``'s best config with ``start`` (``nbsweep.sweep``,
    passed in by ``Sweep.confirm`` so that this module never imports the handle), wait for it,
    sum it up."""
    from nbsweep.agents._shipping import load

    chosen = seed_list(seeds)
    config = sweep.config
    metric = config.metric_name
    if not metric:
        raise SweepError(f"sweep {sweep.id} has no metric.name: confirm measures the metric")
    best = sweep.best_run
    if best is None:
        raise SweepError(f"sweep {sweep.id} has no run with a valid {metric} to confirm")
    if train is None:
        try:
            train = load(sweep._spec(None))
        except SweepError as exc:
            raise SweepError(f"{exc}; or pass it to confirm: sweep.confirm(train=...)") from None
    child = start(
        confirm_config(config, best.config, chosen),
        Seeded(train),
        workers=workers,
        store=sweep.store,
        name=f"{sweep.name}-confirm",
    )
    state = child.wait(timeout)
    if state != SweepState.FINISHED:
        raise SweepError(
            f"confirmation sweep {child.id} is {state} ({child.message or 'timed out'});"
            f" nbsweep.load({child.id!r}) to look at it"
        )
    runs = child.runs
    column = f"summary/{metric}"
    values, used = [], []
    for _, run in runs.iterrows():
        value = run.get(column)
        if run["state"] == RunState.FINISHED and is_valid_metric(value):
            values.append(float(value))
            used.append(int(run[f"config/{SEED_KEY}"]))
    if not values:
        error = next((e for e in runs["error"] if isinstance(e, str)), "no error recorded")
        raise SweepError(
            f"no confirmation run of sweep {child.id} logged a valid {metric}; first error:\n"
            f"{error}"
        )
    return Confirmation(metric, tuple(values), tuple(used), child, len(runs) - len(values))
