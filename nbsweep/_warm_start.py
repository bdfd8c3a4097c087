"""Warm start: earlier sweeps' finished runs as observations for a new bayes sweep.

The runs are read from the store whenever a controller starts (so a resumed sweep sees them
again), cut down to the new sweep's parameters, and used only when the new space can produce
every value they hold. They feed the searcher and nothing else: they are not runs of the new
sweep, so they are neither in its runs table nor counted against ``run_cap``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nbsweep._errors import SweepError, SweepNotFoundError
from nbsweep._runs import RunRecord, is_valid_metric
from nbsweep._states import RunState
from nbsweep.config import SweepConfig
from nbsweep.space import Parameter, Space, value_key
from nbsweep.store import Store


@dataclass(frozen=True)
class WarmStart:
    """What a sweep learned from earlier sweeps before its first run."""

    sources: tuple[str, ...]
    records: tuple[RunRecord, ...] = field(repr=False)
    ignored: Mapping[str, int] = field(default_factory=dict)  # why -> how many runs

    @property
    def used(self) -> int:
        return len(self.records)

    @property
    def note(self) -> str:
        """One line for events and warnings: how many runs were used, why others were not."""
        text = f"warm start: {self.used} runs of sweep {', '.join(self.sources)} used"
        if self.ignored:
            reasons = "; ".join(f"{count} {why}" for why, count in self.ignored.items())
            text += f"; ignored: {reasons}"
        return text

    def __repr__(self) -> str:
        return f"<nbsweep.WarmStart {self.note}>"


def source_ids(warm_start: Any, store: Store) -> list[str]:
    """The ids of the sweeps named by ``warm_start`` (a Sweep, an id, or a list of them)."""
    items = warm_start if isinstance(warm_start, (list, tuple)) else [warm_start]
    ids: list[str] = []
    for item in items:
        if isinstance(item, str):
            sweep_id = item
        elif hasattr(item, "id") and hasattr(item, "store"):
            if item.store.url != store.url:
                raise SweepError(
                    f"warm_start: sweep {item.id} lives in store {item.store.where}, not in"
                    f" {store.where}; start the new sweep in the same store"
                )
            sweep_id = item.id
        else:
            raise SweepError(
                f"warm_start: expected a Sweep, a sweep id or a list of them, not"
                f" {type(item).__name__}"
            )
        if store.sweep(sweep_id) is None:
            raise SweepNotFoundError(
                f"warm_start: sweep {sweep_id!r} is not in store {store.where}"
            )
        if sweep_id not in ids:
            ids.append(sweep_id)
    if not ids:
        raise SweepError("warm_start: name at least one earlier sweep")
    return ids


def load(store: Store, sources: Sequence[str], config: SweepConfig) -> WarmStart:
    """The finished runs of ``sources`` as records of the sweep ``config`` describes."""
    space = config.space
    metric = config.metric_name
    records: list[RunRecord] = []
    ignored: Counter[str] = Counter()
    for sweep_id in sources:
        row = store.sweep(sweep_id)
        if row is None:
            ignored[f"from sweep {sweep_id}, which is no longer in the store"] += 1
            continue
        # The stored metric history is the source sweep's metric; another name: summary only.
        same_metric = row.config.metric_name == metric
        for run in store.run_records(sweep_id, metric, histories=same_metric):
            if run.state not in (RunState.FINISHED, RunState.STOPPED):
                ignored["not finished"] += 1
                continue
            if not is_valid_metric(run.summary_metric) and not run.metric_history:
                ignored[f"without a value of {metric}"] += 1
                continue
            config_or_why = _project(space, run.config)
            if isinstance(config_or_why, str):
                ignored[config_or_why] += 1
                continue
            records.append(replace(run, config=config_or_why))
    return WarmStart(tuple(sources), tuple(records), dict(ignored))


def _project(space: Space, config: Mapping[str, Any]) -> dict[str, Any] | str:
    """The run's config cut to ``space``, or why the run lies outside it."""
    flat = space.flatten(config)
    active = space.active(flat)  # a parameter the run's values switch off is not needed
    for parameter in space.parameters:
        if parameter.path not in active:
            continue
        if parameter.path not in flat:
            return f"without {parameter.key_path}"
        if not _inside(parameter, flat[parameter.path]):
            return f"with {parameter.key_path} outside the new space"
    return space.nest(flat)


def _inside(parameter: Parameter, value: Any) -> bool:
    """The parameter can produce ``value``: its quantile maps back to the same value."""
    try:
        back = parameter.ppf(parameter.cdf(value))
    except (ValueError, TypeError):  # not a number, or not one of the values
        return False
    if parameter.is_categorical:
        return parameter.identity(back) == parameter.identity(value)
    numbers = [v for v in (back, value) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) == 2:
        return math.isclose(float(back), float(value), rel_tol=1e-6, abs_tol=1e-12)
    return value_key(back) == value_key(value)
