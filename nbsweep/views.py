"""What each sweep view shows, computed once from a snapshot and drawn by any renderer.

The dashboard (ipywidgets or plotly), the static matplotlib figures and the HTML report all
draw the same info objects, so the numbers a user sees never depend on where they look.
Everything here is plain data: no widgets, no figures, no store.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from nbsweep._runs import is_valid_metric
from nbsweep._states import SWEEP_LIVE, RunState, SweepState
from nbsweep.config import SweepConfig
from nbsweep.stopping import Band

# Distributions drawn on a log axis and distributions drawn as categories.
LOG_DISTRIBUTIONS = frozenset(
    {
        "log_uniform",
        "log_uniform_values",
        "q_log_uniform",
        "q_log_uniform_values",
        "inv_log_uniform",
        "inv_log_uniform_values",
        "log_normal",
        "q_log_normal",
    }
)
CATEGORICAL_DISTRIBUTIONS = frozenset({"categorical", "categorical_w_probabilities"})

# One colour per run state, shared by every renderer (W&B's palette, roughly).
STATE_COLOURS = {
    RunState.PENDING: "#9e9e9e",
    RunState.RUNNING: "#1e88e5",
    RunState.FINISHED: "#43a047",
    RunState.FAILED: "#e53935",
    RunState.CRASHED: "#8e24aa",
    RunState.STOPPED: "#fb8c00",
    RunState.KILLED: "#6d4c41",
}


@dataclass(frozen=True)
class Snapshot:
    """Everything the views read from a sweep, taken at one moment."""

    id: str
    name: str
    method: str
    state: str
    message: str
    config: SweepConfig
    created_at: float | None  # epoch seconds
    progress: tuple[int, int | None]
    runs: pd.DataFrame
    agents: pd.DataFrame = field(default_factory=pd.DataFrame)
    bands: list[Band] = field(default_factory=list)
    history: pd.DataFrame | None = None
    taken_at: float = field(default_factory=time.time)
    cost: Any = None  # a ``Cost``: GPU-hours used and saved
    gpu_pool: pd.DataFrame | None = None  # which sweep holds which GPU, who waits
    warm_start: Any = None  # a ``WarmStart``: the earlier runs bayes learned from first

    @classmethod
    def from_sweep(cls, sweep: Any, history: bool = True) -> Snapshot:
        """Read a live or loaded ``Sweep``.

        ``history=False`` skips the largest reads, the logged rows and the bands (which are
        computed from every run's metric history): the header, table, parallel coordinates
        and importance do not need them.
        """
        return cls(
            id=str(sweep.id),
            name=str(sweep.name or ""),
            method=str(sweep.method),
            state=str(sweep.state),
            message=str(sweep.message or ""),
            config=sweep.config,
            created_at=to_epoch(sweep.created_at),
            progress=tuple(sweep.progress),  # type: ignore[arg-type]
            runs=sweep.runs,
            agents=sweep.agents,
            bands=list(sweep.bands()) if history else [],
            history=sweep.history() if history else None,
            cost=sweep.cost() if hasattr(sweep, "cost") else None,
            gpu_pool=getattr(sweep, "gpu_pool", None),
            warm_start=getattr(sweep, "warm_start", None),
        )

    @property
    def metric(self) -> str | None:
        """The sweep metric's name, or None for a sweep without one."""
        return self.config.metric_name

    @property
    def goal(self) -> str:
        """``minimize`` or ``maximize`` (W&B's default is minimize)."""
        metric = self.config.metric
        return metric.goal if metric is not None else "minimize"


def to_epoch(value: Any) -> float | None:
    """Seconds since the epoch for a datetime, Timestamp, ISO string or number; None if absent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        return (value.tz_localize("UTC") if value.tzinfo is None else value).timestamp()
    if isinstance(value, datetime):
        # The store writes UTC; a naive datetime is read as UTC, not as local time.
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    raise TypeError(f"cannot read a time from {value!r}")


def format_duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``12s``; an em dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_value(value: Any) -> str:
    """A compact text for a config or metric value (4 significant digits for floats)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) or (hasattr(value, "dtype") and "float" in str(value.dtype)):
        return f"{float(value):.4g}"
    return str(value)


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Parameter:
    """One searched parameter: its column name ("model/depth") and how to draw its axis."""

    name: str
    distribution: str
    is_log: bool
    is_categorical: bool
    values: tuple[Any, ...] = ()  # the categories, in config order


def parameters_of(config: SweepConfig) -> list[Parameter]:
    """The searched parameters of a sweep config, nested names joined by "/".

    Constants are left out: they would be flat axes and zero-importance rows.
    """
    found: list[Parameter] = []

    def walk(block: Mapping[str, Any], prefix: str) -> None:
        for key, spec in block.items():
            name = f"{prefix}{key}"
            if not isinstance(spec, Mapping):
                continue
            if "parameters" in spec and "distribution" not in spec:
                walk(spec["parameters"], name + "/")
                continue
            distribution = str(spec.get("distribution", "categorical" if "values" in spec else ""))
            if distribution == "constant" or (not distribution and "value" in spec):
                continue
            found.append(
                Parameter(
                    name=name,
                    distribution=distribution,
                    is_log=distribution in LOG_DISTRIBUTIONS,
                    is_categorical=distribution in CATEGORICAL_DISTRIBUTIONS,
                    values=tuple(spec.get("values", ())),
                )
            )

    walk(config.parameters, "")
    return found


def metric_values(runs: pd.DataFrame, metric: str | None) -> pd.Series:
    """Each run's summary value of the metric as floats, NaN where missing or invalid."""
    column = f"summary/{metric}"
    if metric is None or column not in runs.columns:
        return pd.Series(math.nan, index=runs.index, dtype=float)
    values = runs[column]
    if pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values):
        numbers = values.astype(float)  # all numbers already: one pass, not one call per run
        return numbers.where(np.isfinite(numbers))
    return values.map(lambda v: float(v) if is_valid_metric(v) else math.nan).astype(float)


# --------------------------------------------------------------------------- header


@dataclass(frozen=True)
class HeaderInfo:
    """The dashboard header: what the sweep is, how far it got, the best run so far."""

    name: str
    id: str
    method: str
    state: str
    message: str
    done: int
    total: int | None
    elapsed_s: float | None
    eta_s: float | None
    metric: str | None
    goal: str
    best_value: float | None
    best_run_id: str | None
    best_config: dict[str, Any]
    counts: dict[str, int]
    cost: Any = None  # a ``Cost``, shown when some run used a GPU
    warm_runs: int | None = None  # earlier runs bayes learned from (None: no warm start)
    warm_sources: tuple[str, ...] = ()  # the sweeps they came from

    @property
    def progress_text(self) -> str:
        """``7 / 12 runs`` or ``7 runs`` when the sweep has no end."""
        return f"{self.done} / {self.total} runs" if self.total else f"{self.done} runs"

    @property
    def warm_start_text(self) -> str | None:
        """``warm start: 9 runs from abc123, def456``, or None for a sweep started cold."""
        if self.warm_runs is None:
            return None
        return f"warm start: {self.warm_runs} runs from {', '.join(self.warm_sources)}"


def header_info(snap: Snapshot) -> HeaderInfo:
    """Progress, timing and the best run of a snapshot."""
    runs = snap.runs
    done, total = snap.progress
    elapsed = None
    if snap.created_at is not None:
        end = snap.taken_at
        if snap.state not in SWEEP_LIVE and "ended_at" in runs.columns and len(runs):
            last = pd.to_datetime(runs["ended_at"], utc=True).max()
            end = to_epoch(last) or end
        elapsed = max(0.0, end - snap.created_at)
    eta = None
    if total and done and elapsed is not None and snap.state == SweepState.RUNNING and done < total:
        eta = elapsed / done * (total - done)
    values = metric_values(runs, snap.metric)
    best_value = best_run_id = None
    best_config: dict[str, Any] = {}
    if values.notna().any():
        index = values.idxmax() if snap.goal == "maximize" else values.idxmin()
        best_value = float(values[index])
        best_run_id = str(runs.at[index, "run_id"])
        best_config = {
            col.removeprefix("config/"): runs.at[index, col]
            for col in runs.columns
            if col.startswith("config/")
        }
    counts = runs["state"].value_counts().to_dict() if "state" in runs.columns else {}
    warm = snap.warm_start
    return HeaderInfo(
        name=snap.name,
        id=snap.id,
        method=snap.method,
        state=snap.state,
        message=snap.message,
        done=int(done),
        total=int(total) if total else None,
        elapsed_s=elapsed,
        eta_s=eta,
        metric=snap.metric,
        goal=snap.goal,
        best_value=best_value,
        best_run_id=best_run_id,
        best_config=best_config,
        counts={str(k): int(v) for k, v in counts.items()},
        cost=snap.cost,
        warm_runs=None if warm is None else int(warm.used),
        warm_sources=() if warm is None else tuple(warm.sources),
    )


# --------------------------------------------------------------------------- runs table


@dataclass(frozen=True)
class RunRow:
    """One row of the runs table."""

    run_id: str
    state: str
    metric: float | None
    runtime_s: float | None
    steps: int | None
    agent: str
    params: dict[str, Any]
    error: str
    gpu_util: float | None = None  # mean %, sampled while the run was live
    gpu_mem_mb: float | None = None  # peak
    gpu_seconds: float | None = None  # None for a run on CPU
    gpu_mem_start_mb: float | None = None  # at its start, above its agent's baseline

    @property
    def colour(self) -> str:
        """The state's colour."""
        return STATE_COLOURS.get(self.state, "#9e9e9e")


@dataclass(frozen=True)
class RunsTableInfo:
    """The runs table: parameter columns, sorted rows, and what it is sorted by."""

    metric: str | None
    parameters: list[str]
    rows: list[RunRow]
    sort_by: str
    ascending: bool
    hidden: int  # rows filtered out (e.g. by brushing a parallel-coordinates axis)
    total: int  # rows after the filter; ``rows`` holds the first ``limit`` of them


SORT_KEYS = ("metric", "created", "state", "runtime", "steps")


def default_ascending(snap: Snapshot, sort_by: str) -> bool:
    """Best first for the metric, A to Z for the state, newest or largest first otherwise."""
    return snap.goal != "maximize" if sort_by == "metric" else sort_by == "state"


def runs_table_info(
    snap: Snapshot,
    sort_by: str = "metric",
    ascending: bool | None = None,
    only: Iterable[str] | None = None,
    limit: int | None = None,
) -> RunsTableInfo:
    """Rows sorted by ``sort_by`` (one of ``SORT_KEYS`` or a parameter name).

    ``ascending=None`` is ``default_ascending``; rows without a value always go last.
    ``only`` keeps those run ids (a brushing filter). ``limit`` builds only the first rows:
    a table of 10,000 runs shows a few hundred.
    """
    runs = snap.runs.copy()
    params = [p.name for p in parameters_of(snap.config)]
    runs["_metric"] = metric_values(runs, snap.metric)
    runs["_created"] = range(len(runs))
    if "created_at" in runs.columns:
        created = pd.to_datetime(runs["created_at"], utc=True)
        runs["_created"] = (created - pd.Timestamp(0, tz="UTC")).dt.total_seconds().fillna(0.0)
    keys = {
        "metric": "_metric",
        "created": "_created",
        "state": "state",
        "runtime": "runtime_s",
        "steps": "steps",
    }
    if sort_by not in keys and sort_by not in params:
        raise ValueError(f"cannot sort by {sort_by!r}: use one of {list(SORT_KEYS) + params}")
    column = keys.get(sort_by, f"config/{sort_by}")
    if ascending is None:
        ascending = default_ascending(snap, sort_by)
    hidden = 0
    if only is not None:
        keep = set(only)
        mask = runs["run_id"].astype(str).isin(keep)
        hidden = int((~mask).sum())
        runs = runs[mask]
    if column in runs.columns:
        # Mixed categorical values (1, "a") do not compare; sort them by their text.
        key = None if pd.api.types.is_numeric_dtype(runs[column]) else _text_key
        runs = runs.sort_values(column, ascending=ascending, na_position="last", key=key)
    total = len(runs)
    if limit is not None:
        runs = runs.head(limit)
    rows = [
        RunRow(
            run_id=str(row["run_id"]),
            state=str(row.get("state", "")),
            metric=None if math.isnan(row["_metric"]) else float(row["_metric"]),
            runtime_s=_float_or_none(row.get("runtime_s")),
            steps=_int_or_none(row.get("steps")),
            agent=_text(row.get("agent")),
            params={p: row.get(f"config/{p}") for p in params},
            error=_text(row.get("error")),
            gpu_util=_float_or_none(row.get("gpu_util")),
            gpu_mem_mb=_float_or_none(row.get("gpu_mem_mb")),
            gpu_seconds=_float_or_none(row.get("gpu_seconds")),
            gpu_mem_start_mb=_float_or_none(row.get("gpu_mem_start_mb")),
        )
        for row in runs.to_dict("records")  # iterrows builds a Series per row: 10x slower
    ]
    return RunsTableInfo(snap.metric, params, rows, sort_by, bool(ascending), hidden, total)


def _text_key(series: pd.Series) -> pd.Series:
    return series.map(lambda v: None if v is None or v != v else str(v))


def _float_or_none(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _int_or_none(value: Any) -> int | None:
    value = _float_or_none(value)
    return None if value is None else int(value)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    # Integer ids (agents) come back as floats from a column with missing values.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class Curve:
    """One run's logged values of a key, against ``_step`` or against iteration."""

    run_id: str
    state: str
    x: list[float]
    y: list[float]


@dataclass(frozen=True)
class CurvesInfo:
    """A key against step for every run that logged it."""

    key: str | None
    keys: list[str]  # every numeric key that was logged, for a key picker
    curves: list[Curve]


def logged_keys(history: pd.DataFrame | None) -> list[str]:
    """The numeric keys in a history, in logging order (``_step`` and ``run_id`` left out)."""
    if history is None:
        return []
    return [
        c
        for c in history.columns
        if c not in ("run_id", "_step") and not str(c).startswith("_") and _numeric(history[c])
    ]


def _numeric(series: pd.Series) -> bool:
    return bool(series.map(is_valid_metric).any())


def _states(snap: Snapshot) -> dict[str, str]:
    if "run_id" not in snap.runs.columns:
        return {}
    return dict(zip(snap.runs["run_id"].astype(str), snap.runs["state"].astype(str), strict=True))


def curves_info(snap: Snapshot, key: str | None = None) -> CurvesInfo:
    """``key`` (default: the metric, else the first logged key) against ``_step``."""
    keys = logged_keys(snap.history)
    if key is None:
        key = snap.metric if snap.metric in keys else (keys[0] if keys else snap.metric)
    curves: list[Curve] = []
    history = snap.history
    if history is not None and key in history.columns and len(history):
        states = _states(snap)
        for run_id, rows in history.groupby("run_id", sort=False):
            rows = rows[rows[key].map(is_valid_metric)]
            if "_step" in rows.columns:
                rows = rows.sort_values("_step")
                x = [float(s) for s in rows["_step"]]
            else:
                x = [float(i) for i in range(len(rows))]
            if len(rows):
                y = [float(v) for v in rows[key]]
                curves.append(Curve(str(run_id), states.get(str(run_id), ""), x, y))
    return CurvesInfo(key, keys, curves)


# --------------------------------------------------------------------------- bands


@dataclass(frozen=True)
class BandsInfo:
    """Hyperband bands with the metric against iteration (the count of valid values).

    The x axis is the iteration, not ``_step``: that is what the W&B band rule counts.
    """

    metric: str | None
    goal: str
    enabled: bool  # the sweep has a hyperband early_terminate block
    bands: list[Band]
    curves: list[Curve]  # stopped runs carry state RunState.STOPPED so renderers can grey them


def has_bands(config: SweepConfig) -> bool:
    """Whether a sweep has hyperband bands to draw (its ``early_terminate`` is hyperband)."""
    return config.early_terminate is not None and config.early_terminate.type == "hyperband"


def bands_info(snap: Snapshot) -> BandsInfo:
    """Bands from the sweep, curves of the metric by iteration."""
    curves: list[Curve] = []
    history = snap.history
    metric = snap.metric
    if history is not None and metric is not None and metric in history.columns:
        states = _states(snap)
        # One sort and one pass: a groupby per run costs seconds at 10,000 runs.
        order = [str(run_id) for run_id in pd.unique(history["run_id"])]
        if "_step" in history.columns:
            history = history.sort_values("_step", kind="stable")
        found: dict[str, list[float]] = {run_id: [] for run_id in order}
        for run_id, value in zip(history["run_id"], history[metric], strict=True):
            if is_valid_metric(value):
                found[str(run_id)].append(float(value))
        for run_id in order:
            values = found[run_id]
            if values:
                x = [float(i) for i in range(1, len(values) + 1)]
                curves.append(Curve(run_id, states.get(run_id, ""), x, values))
    return BandsInfo(metric, snap.goal, has_bands(snap.config), snap.bands, curves)


# --------------------------------------------------------------------------- parallel coordinates


@dataclass(frozen=True)
class Dimension:
    """One axis of the parallel-coordinates plot, values already placed on it.

    ``values`` are the axis positions: log10 of the value on a log axis, the category's index
    on a categorical one. ``ticks``/``tick_labels`` say what to print along the axis.
    """

    name: str
    values: list[float]
    is_log: bool
    is_categorical: bool
    ticks: list[float]
    tick_labels: list[str]

    @property
    def range(self) -> tuple[float, float]:
        """The axis limits (a flat axis is widened so it can be drawn)."""
        finite = [v for v in self.values if math.isfinite(v)] + list(self.ticks)
        if not finite:
            return (0.0, 1.0)
        low, high = min(finite), max(finite)
        if low == high:
            return (low - 0.5, high + 0.5)
        return (low, high)


@dataclass(frozen=True)
class ParallelInfo:
    """One line per run that has the metric (every run when the sweep has no metric)."""

    metric: str | None
    goal: str
    run_ids: list[str]
    dimensions: list[Dimension]
    colour_values: list[float]  # the metric per run (NaN without one)


def parallel_info(snap: Snapshot) -> ParallelInfo:
    """Axes per parameter (log or categorical as the config says), the metric last."""
    runs = snap.runs
    values = metric_values(runs, snap.metric)
    if snap.metric is not None:
        keep = values.notna()
    else:
        keep = runs["state"].isin(list(RunState)) if "state" in runs.columns else values.isna()
    runs, values = runs[keep], values[keep]
    dimensions = [_dimension(p, runs) for p in parameters_of(snap.config)]
    if snap.metric is not None and len(runs):
        dimensions.append(_numeric_dimension(snap.metric, list(values), is_log=False))
    return ParallelInfo(
        metric=snap.metric,
        goal=snap.goal,
        run_ids=[str(r) for r in runs.get("run_id", [])],
        dimensions=dimensions,
        colour_values=[float(v) for v in values],
    )


def _dimension(param: Parameter, runs: pd.DataFrame) -> Dimension:
    column = f"config/{param.name}"
    raw = list(runs[column]) if column in runs.columns else [None] * len(runs)
    if param.is_categorical or any(
        isinstance(v, (str, bool, list, dict)) for v in raw if v is not None
    ):
        categories = [format_value(v) for v in param.values] or []
        for value in raw:
            if format_value(value) not in categories:
                categories.append(format_value(value))
        positions = [float(categories.index(format_value(v))) for v in raw]
        ticks = [float(i) for i in range(len(categories))]
        return Dimension(param.name, positions, False, True, ticks, categories)
    numbers = [_float_or_none(v) for v in raw]
    return _numeric_dimension(
        param.name, [math.nan if v is None else v for v in numbers], is_log=param.is_log
    )


def _numeric_dimension(name: str, values: list[float], is_log: bool) -> Dimension:
    if is_log:
        positive = [v for v in values if math.isfinite(v) and v > 0]
        positions = [math.log10(v) if math.isfinite(v) and v > 0 else math.nan for v in values]
        if positive:
            low = math.floor(math.log10(min(positive)))
            high = math.ceil(math.log10(max(positive)))
            ticks = [float(k) for k in range(low, high + 1)]
            return Dimension(name, positions, True, False, ticks, [f"1e{int(k)}" for k in ticks])
        return Dimension(name, positions, True, False, [], [])
    finite = [v for v in values if math.isfinite(v)]
    ticks: list[float] = []
    if finite:
        low, high = min(finite), max(finite)
        ticks = [low] if low == high else [low + (high - low) * i / 4 for i in range(5)]
    return Dimension(name, values, False, False, ticks, [format_value(t) for t in ticks])


def runs_in_ranges(info: ParallelInfo, ranges: Mapping[str, list[tuple[float, float]]]) -> set[str]:
    """The runs whose line passes through every brushed range (axis positions, inclusive)."""
    by_name = {d.name: d for d in info.dimensions}
    keep = set(info.run_ids)
    for name, spans in ranges.items():
        dim = by_name.get(name)
        if dim is None or not spans:
            continue
        keep &= {
            run_id
            for run_id, v in zip(info.run_ids, dim.values, strict=True)
            if any(lo <= v <= hi for lo, hi in spans)
        }
    return keep


# --------------------------------------------------------------------------- importance


@dataclass(frozen=True)
class ImportanceRow:
    """One parameter's random-forest importance and its correlation with the metric."""

    parameter: str
    importance: float
    correlation: float


@dataclass(frozen=True)
class ImportanceInfo:
    """Rows sorted by importance; ``note`` says why there are none yet."""

    metric: str | None
    goal: str
    rows: list[ImportanceRow]
    note: str


MIN_RUNS_FOR_IMPORTANCE = 3


def importance_info(snap: Snapshot) -> ImportanceInfo:
    """W&B's parameter-importance panel, from ``nbsweep.analysis.importance``."""
    if snap.metric is None:
        return ImportanceInfo(None, snap.goal, [], "the sweep has no metric to explain")
    count = int(metric_values(snap.runs, snap.metric).notna().sum())
    if count < MIN_RUNS_FOR_IMPORTANCE:
        note = f"needs {MIN_RUNS_FOR_IMPORTANCE} runs with {snap.metric} (has {count})"
        return ImportanceInfo(snap.metric, snap.goal, [], note)
    from nbsweep.analysis import importance

    table = importance(snap.runs, snap.metric, snap.goal)
    rows = [
        ImportanceRow(str(r["parameter"]), float(r["importance"]), float(r["correlation"]))
        for _, r in table.sort_values("importance", ascending=False).iterrows()
    ]
    return ImportanceInfo(snap.metric, snap.goal, rows, "")
