"""What each sweep view shows, computed once from a snapshot and drawn by any renderer.

The dashboard (ipywidgets or plotly), the static matplotlib figures and the HTML report all
draw the same info objects, so the numbers a user sees never depend on where they look.
Everything here is plain data: no widgets, no figures, no store.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
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
    controller_alive: bool = True  # False: the sweep is live but no controller holds its lease

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
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
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


# --------------------------------------------------------------------------- run styles


# Tableau 10, a qualitative map designed for telling lines apart; past ten runs the colours
# come round again with the next line style, so no two runs of a plot look the same (up to 50).
RUN_COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")  # plotly's names; plot.py maps them


@dataclass(frozen=True)
class RunStyle:
    """How one run is drawn in every plot: the same colour and line style everywhere."""

    colour: str
    dash: str


def run_style(index: int) -> RunStyle:
    """The style of the ``index``-th run of a sweep (queue order)."""
    return RunStyle(
        RUN_COLOURS[index % len(RUN_COLOURS)], DASHES[(index // len(RUN_COLOURS)) % len(DASHES)]
    )


def run_styles(snap: Snapshot) -> dict[str, RunStyle]:
    """Each run's style, by its position in the sweep (runs only in the history come last)."""
    order = [str(r) for r in snap.runs["run_id"]] if "run_id" in snap.runs.columns else []
    if snap.history is not None and "run_id" in snap.history.columns:
        seen = set(order)
        order += [r for r in map(str, pd.unique(snap.history["run_id"])) if r not in seen]
    return {run_id: run_style(i) for i, run_id in enumerate(order)}


# Values spanning this ratio or more (all positive) are drawn on a log axis.
LOG_RATIO = 100.0


def wants_log(values: Iterable[float]) -> bool:
    """Whether values span orders of magnitude: then a log axis keeps outliers from squashing
    the rest. Any value at or below zero keeps the axis linear."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2 or min(finite) <= 0:
        return False
    return max(finite) / min(finite) >= LOG_RATIO


def _log_y(values: Iterable[float], log_y: bool | None) -> bool:
    finite = [v for v in values if math.isfinite(v)]
    if log_y is None:
        return wants_log(finite)
    return bool(log_y) and bool(finite) and min(finite) > 0


# --------------------------------------------------------------------------- header


@dataclass(frozen=True)
class HeaderInfo:
    """The dashboard header: what the sweep is, how far it got, the best run so far.

    ``best_*`` come from ended runs (finished or stopped), whose summary is final; a running
    run's latest value is ``best_running`` when it beats them.
    """

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
    best_running: float | None = None
    best_running_id: str | None = None
    created_text: str = ""
    taken_at: float = 0.0
    live: bool = False  # the sweep may still change: its clock runs on
    controller_alive: bool = True  # False: live in the store, but no controller runs it

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

    def elapsed_at(self, now: float) -> float | None:
        """The elapsed time at ``now``: it runs on between snapshots while the sweep is live."""
        if self.elapsed_s is None or not self.live:
            return self.elapsed_s
        return self.elapsed_s + max(0.0, now - self.taken_at)


def format_time(value: Any) -> str:
    """``2026-01-01 10:00:05 UTC`` for an epoch, datetime or Timestamp; an em dash if absent."""
    seconds = to_epoch(value)
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


ENDED_WITH_SUMMARY = (RunState.FINISHED, RunState.STOPPED)


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
    running = snap.state == SweepState.RUNNING and snap.controller_alive
    if total and done and elapsed is not None and running and done < total:
        eta = elapsed / done * (total - done)
    values = metric_values(runs, snap.metric)
    states = runs["state"].astype(str) if "state" in runs.columns else pd.Series("", runs.index)
    ended = values.where(states.isin([str(s) for s in ENDED_WITH_SUMMARY]))
    live = values.where(states == RunState.RUNNING)
    best_index = _best_index(ended, snap.goal)
    best_value = best_run_id = None
    best_config: dict[str, Any] = {}
    if best_index is not None:
        best_value = float(values[best_index])
        best_run_id = str(runs.at[best_index, "run_id"])
        best_config = {
            col.removeprefix("config/"): runs.at[best_index, col]
            for col in runs.columns
            if col.startswith("config/")
        }
    best_running = best_running_id = None
    running_index = _best_index(live, snap.goal)
    if running_index is not None:
        value = float(values[running_index])
        if best_value is None or _better(value, best_value, snap.goal):
            best_running, best_running_id = value, str(runs.at[running_index, "run_id"])
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
        best_running=best_running,
        best_running_id=best_running_id,
        created_text=format_time(snap.created_at),
        taken_at=snap.taken_at,
        live=snap.state in SWEEP_LIVE and snap.controller_alive,
        controller_alive=snap.controller_alive,
    )


def _best_index(values: pd.Series, goal: str) -> Any:
    """The index label of the best value (first among ties), None when there is none."""
    if not values.notna().any():
        return None
    return values.idxmax() if goal == "maximize" else values.idxmin()


def _better(a: float, b: float, goal: str) -> bool:
    return a > b if goal == "maximize" else a < b


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
    """The runs table: parameter columns, sorted rows, and what it is sorted by.

    With a filter (``only``), the table holds exactly the filtered runs; ``hidden`` counts the
    runs the parallel-coordinates plot draws that the filter leaves out, and ``not_plotted``
    the runs left out because they have no line there (pending runs, runs without the metric).
    """

    metric: str | None
    parameters: list[str]
    rows: list[RunRow]
    sort_by: str
    ascending: bool
    hidden: int
    total: int  # rows after the filter; ``rows`` holds the first ``limit`` of them
    not_plotted: int = 0


SORT_KEYS = ("metric", "created", "state", "runtime", "steps")


def default_ascending(snap: Snapshot, sort_by: str) -> bool:
    """Best first for the metric, A to Z for the state, newest or largest first otherwise."""
    return snap.goal != "maximize" if sort_by == "metric" else sort_by == "state"


def plotted(snap: Snapshot) -> pd.Series:
    """Which runs have a line in the parallel-coordinates plot (a boolean per row of runs):
    those with the metric, or every run that left the queue when the sweep has none."""
    runs = snap.runs
    if snap.metric is not None:
        return metric_values(runs, snap.metric).notna()
    if "state" in runs.columns:
        return runs["state"].astype(str) != RunState.PENDING
    return pd.Series(True, index=runs.index)


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
    hidden = not_plotted = 0
    if only is not None:
        keep = set(only)
        mask = runs["run_id"].astype(str).isin(keep)
        drawn = plotted(snap)
        hidden = int((~mask & drawn).sum())
        not_plotted = int((~mask & ~drawn).sum())
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
    return RunsTableInfo(
        snap.metric, params, rows, sort_by, bool(ascending), hidden, total, not_plotted
    )


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
    """One run's logged values of a key, against iteration (from 1) or ``_step``."""

    run_id: str
    state: str
    x: list[float]
    y: list[float]
    colour: str = RUN_COLOURS[0]
    dash: str = DASHES[0]
    smoothed: list[float] | None = None  # ``y`` smoothed, when smoothing was asked for


@dataclass(frozen=True)
class CurvesInfo:
    """A key against iteration or step for every run that logged it."""

    key: str | None
    keys: list[str]  # every numeric key that was logged, for a key picker
    curves: list[Curve]
    x: str = "iteration"  # or "step"
    log_y: bool = False
    smoothing: float = 0.0

    @property
    def x_label(self) -> str:
        return "step (_step)" if self.x == "step" else "iteration (values logged, from 1)"


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


def smooth(values: list[float], weight: float) -> list[float]:
    """Exponential moving average with debiasing, as TensorBoard and W&B smooth curves:
    ``weight`` 0 leaves the values alone, 0.99 smooths hard; the first value is kept."""
    out, last, scale = [], 0.0, 0.0
    for value in values:
        last = last * weight + (1 - weight) * value
        scale = scale * weight + (1 - weight)
        out.append(last / scale)
    return out


def curves_info(
    snap: Snapshot,
    key: str | None = None,
    x: str = "iteration",
    smoothing: float = 0.0,
    log_y: bool | None = None,
) -> CurvesInfo:
    """``key`` (default: the metric, else the first logged key) per run.

    ``x="iteration"`` counts the key's values from 1, as the Bands view and hyperband do;
    ``x="step"`` uses the logged ``_step``. ``log_y=None`` picks a log axis when the values
    span orders of magnitude. ``smoothing`` in [0, 1) adds each curve's ``smoothed`` values.
    """
    if x not in ("iteration", "step"):
        raise ValueError(f"x must be 'iteration' or 'step', not {x!r}")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), not {smoothing!r}")
    keys = logged_keys(snap.history)
    if key is None:
        key = snap.metric if snap.metric in keys else (keys[0] if keys else snap.metric)
    curves: list[Curve] = []
    history = snap.history
    if history is not None and key in history.columns and len(history):
        states = _states(snap)
        styles = run_styles(snap)
        for run_id, xs, ys in _runs_values(history, key, by_step=x == "step"):
            style = styles.get(run_id, run_style(0))
            curves.append(
                Curve(
                    run_id,
                    states.get(run_id, ""),
                    xs,
                    ys,
                    style.colour,
                    style.dash,
                    smooth(ys, smoothing) if smoothing > 0 else None,
                )
            )
    log = _log_y((v for c in curves for v in c.y), log_y)
    return CurvesInfo(key, keys, curves, x, log, smoothing)


def _runs_values(
    history: pd.DataFrame, key: str, by_step: bool
) -> Iterable[tuple[str, list[float], list[float]]]:
    """Each run's valid values of ``key`` in ``_step`` order, with x as ``_step`` or counted
    from 1: runs in their first row's order, those without a valid value left out.

    One sort for every run, not a filter per run: at 10,000 runs that took 15 s.
    """
    has_step = "_step" in history.columns
    valid = history.loc[history[key].map(is_valid_metric)]
    if has_step:
        valid = valid.sort_values("_step", kind="stable")
    order = pd.unique(history["run_id"])
    codes = pd.Categorical(valid["run_id"], categories=order).codes
    perm = np.argsort(codes, kind="stable")
    codes = codes[perm]
    values = valid[key].to_numpy(dtype=float)[perm]
    steps = valid["_step"].to_numpy(dtype=float)[perm] if has_step else None
    if not len(codes):
        return
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    for start, end in zip(starts, [*starts[1:], len(codes)], strict=True):
        ys = values[start:end].tolist()
        if by_step and steps is not None:
            xs = steps[start:end].tolist()
        else:
            xs = [float(i) for i in range(1, end - start + 1)]
        yield str(order[codes[start]]), xs, ys


# --------------------------------------------------------------------------- bands


@dataclass(frozen=True)
class BandsInfo:
    """Hyperband bands with the metric against iteration (the count of valid values, from 1).

    The x axis is the iteration, not ``_step``: that is what the W&B band rule counts. In every
    band, ``reached == stopped + continued`` (docs/notebook.md defines the columns).
    """

    metric: str | None
    goal: str
    enabled: bool  # the sweep has a hyperband early_terminate block
    bands: list[Band]
    curves: list[Curve]  # stopped runs carry state RunState.STOPPED so renderers can mark them
    log_y: bool = False

    @property
    def rows(self) -> list[Band]:
        """The bands worth a table row: those some run reached, and the next one."""
        reachable = max((len(c.x) for c in self.curves), default=0)
        return [b for b in self.bands if b.reached or b.iteration <= max(1, reachable)]


def has_bands(config: SweepConfig) -> bool:
    """Whether a sweep has hyperband bands to draw (its ``early_terminate`` is hyperband)."""
    return config.early_terminate is not None and config.early_terminate.type == "hyperband"


def band_label(band: Band) -> str:
    """``4 stopped / 12 reached``: the short text a plot writes at a band."""
    return f"{band.stopped} stopped / {band.reached} reached"


def bands_info(snap: Snapshot, log_y: bool | None = None) -> BandsInfo:
    """Bands from the sweep, curves of the metric by iteration (from 1)."""
    curves: list[Curve] = []
    history = snap.history
    metric = snap.metric
    if history is not None and metric is not None and metric in history.columns:
        states = _states(snap)
        styles = run_styles(snap)
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
                style = styles.get(run_id, run_style(0))
                curves.append(
                    Curve(run_id, states.get(run_id, ""), x, values, style.colour, style.dash)
                )
    log = _log_y((v for c in curves for v in c.y), log_y)
    return BandsInfo(metric, snap.goal, has_bands(snap.config), snap.bands, curves, log)


# --------------------------------------------------------------------------- parallel coordinates


@dataclass(frozen=True)
class Dimension:
    """One axis of the parallel-coordinates plot, values already placed on it.

    ``values`` are the axis positions: log10 of the value on a log axis, the category's index
    on a categorical one, the value itself otherwise; ``value_at`` and ``position_of`` map
    between the two exactly, so a range dragged on the axis is a range of values.
    ``low``/``high`` are the axis limits in positions: the search space of the parameter as the
    config defines it, widened to any value outside it. ``ticks``/``tick_labels`` say what to
    print along the axis (integers on integer axes, powers of ten on log axes).
    """

    name: str
    values: list[float]
    is_log: bool
    is_categorical: bool
    ticks: list[float]
    tick_labels: list[str]
    low: float = 0.0
    high: float = 1.0
    is_integer: bool = False
    categories: tuple[str, ...] = ()

    @property
    def range(self) -> tuple[float, float]:
        """The axis limits in positions (a flat axis is widened so it can be drawn)."""
        if self.low == self.high:
            return (self.low - 0.5, self.high + 0.5)
        return (self.low, self.high)

    @property
    def label(self) -> str:
        return f"{self.name} (log)" if self.is_log else self.name

    def value_at(self, position: float) -> Any:
        """The value at an axis position (a category's text on a categorical axis)."""
        if self.is_categorical:
            index = min(max(int(round(position)), 0), len(self.categories) - 1)
            return self.categories[index]
        return 10.0**position if self.is_log else position

    def position_of(self, value: Any) -> float:
        """The axis position of a value (NaN for a value the axis cannot show)."""
        if self.is_categorical:
            text = format_value(value)
            return float(self.categories.index(text)) if text in self.categories else math.nan
        number = _float_or_none(value)
        if number is None:
            return math.nan
        if self.is_log:
            return math.log10(number) if number > 0 else math.nan
        return number


@dataclass(frozen=True)
class ParallelInfo:
    """One line per run that has the metric (every run when the sweep has no metric).

    Lines are coloured by ``colour_ranks``, the run's quantile rank by the metric (1 = best):
    a linear scale of the raw values paints every good run the same colour.
    """

    metric: str | None
    goal: str
    run_ids: list[str]
    dimensions: list[Dimension]
    colour_values: list[float]  # the metric per run (NaN without one)
    colour_ranks: list[float] = field(default_factory=list)
    colour_ticks: list[float] = field(default_factory=list)  # ranks, for a colour bar
    colour_tick_labels: list[str] = field(default_factory=list)  # the metric at those ranks
    best_run_id: str | None = None

    @property
    def best_index(self) -> int | None:
        """Where the best run is in ``run_ids`` (draw it last, on top)."""
        return self.run_ids.index(self.best_run_id) if self.best_run_id is not None else None


def parallel_info(snap: Snapshot) -> ParallelInfo:
    """Axes per parameter (log or categorical as the config says), the metric last."""
    runs = snap.runs
    values = metric_values(runs, snap.metric)
    keep = plotted(snap)
    runs, values = runs[keep], values[keep]
    space = {p.name: p for p in snap.config.space.searchable}
    dimensions = [_dimension(p, runs, space.get(p.name)) for p in parameters_of(snap.config)]
    numbers = [float(v) for v in values]
    if snap.metric is not None and len(runs):
        dimensions.append(_numeric_dimension(snap.metric, numbers, wants_log(numbers), False))
    ranks = quantile_ranks(numbers, snap.goal)
    ticks, labels = _colour_ticks(numbers, snap.goal)
    run_ids = [str(r) for r in runs.get("run_id", [])]
    best = _best_index(pd.Series(numbers, dtype=float), snap.goal)
    return ParallelInfo(
        metric=snap.metric,
        goal=snap.goal,
        run_ids=run_ids,
        dimensions=dimensions,
        colour_values=numbers,
        colour_ranks=ranks,
        colour_ticks=ticks,
        colour_tick_labels=labels,
        best_run_id=None if best is None else run_ids[best],
    )


def quantile_ranks(values: list[float], goal: str) -> list[float]:
    """Each value's rank among the finite ones, scaled to [0, 1] with 1 the best (ties share
    their mean rank); NaN stays NaN."""
    series = pd.Series(values, dtype=float)
    ranks = series.rank(method="average", ascending=goal == "maximize")
    count = int(series.notna().sum())
    if count <= 1:
        return [1.0 if math.isfinite(v) else math.nan for v in values]
    return [float(r) for r in (ranks - 1) / (count - 1)]


def _colour_ticks(values: list[float], goal: str) -> tuple[list[float], list[str]]:
    """Colour-bar ticks at ranks 0, ¼, ½, ¾, 1 (1 the best), labelled with the metric there."""
    finite = sorted((v for v in values if math.isfinite(v)), reverse=goal != "maximize")
    if not finite:
        return [], []
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0] if len(finite) > 1 else [1.0]
    return ticks, [format_value(finite[round(t * (len(finite) - 1))]) for t in ticks]


def _dimension(param: Parameter, runs: pd.DataFrame, spec: Any) -> Dimension:
    column = f"config/{param.name}"
    raw = list(runs[column]) if column in runs.columns else [None] * len(runs)
    if param.is_categorical or any(
        isinstance(v, (str, bool, list, dict)) for v in raw if v is not None
    ):
        # A run leaves out a parameter its conditions switch off: no point on that axis.
        inactive = [bool(spec is not None and spec.when and _missing(v)) for v in raw]
        categories = [format_value(v) for v in param.values] or []
        for value, off in zip(raw, inactive, strict=True):
            if not off and format_value(value) not in categories:
                categories.append(format_value(value))
        positions = [
            math.nan if off else float(categories.index(format_value(v)))
            for v, off in zip(raw, inactive, strict=True)
        ]
        ticks = [float(i) for i in range(len(categories))]
        return Dimension(
            param.name,
            positions,
            False,
            True,
            ticks,
            categories,
            0.0,
            float(max(len(categories) - 1, 0)),
            categories=tuple(categories),
        )
    numbers = [_float_or_none(v) for v in raw]
    bounds = _space_bounds(spec)
    is_integer = _integer_parameter(spec) or (
        bool(raw) and all(isinstance(v, (int, np.integer)) for v in raw if v is not None)
    )
    return _numeric_dimension(
        param.name,
        [math.nan if v is None else v for v in numbers],
        param.is_log,
        is_integer,
        bounds,
    )


# Unbounded distributions (normal, log_normal) span these quantiles of the search space.
_UNBOUNDED_SPAN = (0.01, 0.99)


def _space_bounds(spec: Any) -> tuple[float, float] | None:
    """The least and greatest value of a parameter's search space (its config distribution)."""
    if spec is None:
        return None
    distribution = spec.distribution
    low_q, high_q = (0.0, 1.0)
    if "normal" in distribution:
        low_q, high_q = _UNBOUNDED_SPAN
    try:
        low, high = float(spec.ppf(low_q)), float(spec.ppf(high_q))
    except (TypeError, ValueError):
        return None
    return (min(low, high), max(low, high))


def _integer_parameter(spec: Any) -> bool:
    if spec is None:
        return False
    q = spec.spec.get("q")
    q_int = isinstance(q, int) and not isinstance(q, bool)
    return spec.distribution == "int_uniform" or (spec.distribution.startswith("q_") and q_int)


def _numeric_dimension(
    name: str,
    values: list[float],
    is_log: bool,
    is_integer: bool,
    bounds: tuple[float, float] | None = None,
) -> Dimension:
    finite = [v for v in values if math.isfinite(v) and (v > 0 or not is_log)]
    if bounds is not None and is_log and bounds[0] <= 0:
        bounds = None
    span = [*finite, *(bounds or ())]
    if is_log:
        positions = [math.log10(v) if math.isfinite(v) and v > 0 else math.nan for v in values]
        if not span:
            return Dimension(name, positions, True, False, [], [], 0.0, 1.0, is_integer)
        low, high = math.log10(min(span)), math.log10(max(span))
        ticks = _log_ticks(low, high)
        labels = [log_label(t) for t in ticks]
        return Dimension(name, positions, True, False, ticks, labels, low, high, is_integer)
    if not span:
        return Dimension(name, values, False, False, [], [], 0.0, 1.0, is_integer)
    low, high = min(span), max(span)
    ticks = _linear_ticks(low, high, is_integer)
    labels = [format_value(int(t) if is_integer else t) for t in ticks]
    return Dimension(name, values, False, False, ticks, labels, low, high, is_integer)


def _linear_ticks(low: float, high: float, is_integer: bool, count: int = 5) -> list[float]:
    """Round ticks within [low, high]: steps of 1, 2 or 5 times a power of ten (whole numbers
    on an integer axis)."""
    if low == high:
        return [low]
    raw = (high - low) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = min((f * power for f in (1, 2, 5, 10)), key=lambda c: abs(math.log(c / raw)))
    if is_integer:
        step = float(max(1, round(step)))
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    tick = first
    while tick <= high + 1e-9 * step:
        ticks.append(round(tick, 12))
        tick += step
    return ticks


def _log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten within [low, high] (log10 positions); 1-2-5 steps when under two decades."""
    multiples = (1,) if high - low >= 2 else (1, 2, 5)
    ticks = [
        math.log10(m) + k
        for k in range(math.floor(low), math.ceil(high) + 1)
        for m in multiples
        if low - 1e-9 <= math.log10(m) + k <= high + 1e-9
    ]
    return ticks or [low]


def log_label(position: float) -> str:
    """The value at a log-axis position, short: ``1e-4``, ``2e-5``, ``0.01``, ``100``."""
    value = 10.0**position
    if abs(round(position)) < 3:
        return format_value(float(f"{value:.3g}"))
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def runs_in_ranges(
    info: ParallelInfo, ranges: Mapping[str, Sequence[tuple[float, float]]]
) -> set[str]:
    """The runs whose line passes through the brushed ranges, exactly.

    ``ranges`` are axis positions per dimension name, inclusive: several ranges on one axis
    keep a run inside any of them, ranges on several axes keep a run inside all of them. A
    run without a value on a brushed axis is outside.
    """
    by_name = {d.name: d for d in info.dimensions}
    keep = set(info.run_ids)
    for name, spans in ranges.items():
        dim = by_name.get(name)
        if dim is None or not spans:
            continue
        keep &= {
            run_id
            for run_id, v in zip(info.run_ids, dim.values, strict=True)
            if any(min(lo, hi) <= v <= max(lo, hi) for lo, hi in spans)
        }
    return keep


def runs_in_value_ranges(
    info: ParallelInfo, ranges: Mapping[str, Sequence[tuple[Any, Any]]]
) -> set[str]:
    """``runs_in_ranges`` with ranges given in values (``{"lr": [(1e-4, 1e-3)]}``)."""
    by_name = {d.name: d for d in info.dimensions}
    positions = {
        name: [(by_name[name].position_of(lo), by_name[name].position_of(hi)) for lo, hi in spans]
        for name, spans in ranges.items()
        if name in by_name
    }
    return runs_in_ranges(info, positions)


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class HistoryPoint:
    """One ended run with the metric: when it ended and its value."""

    index: int  # 1-based, in order of ending
    run_id: str
    value: float
    ended_s: float | None  # seconds since the sweep was created
    state: str


@dataclass(frozen=True)
class HistoryInfo:
    """Optuna's optimisation history: every ended run's metric and the best so far."""

    metric: str | None
    goal: str
    points: list[HistoryPoint]
    best_so_far: list[float]  # aligned with ``points``
    best_run_id: str | None
    log_y: bool = False


def history_info(snap: Snapshot, log_y: bool | None = None) -> HistoryInfo:
    """Ended runs with the metric in the order they ended, and the best value after each."""
    runs = snap.runs
    values = metric_values(runs, snap.metric)
    states = runs["state"].astype(str) if "state" in runs.columns else pd.Series("", runs.index)
    keep = values.notna() & states.isin([str(s) for s in ENDED_WITH_SUMMARY])
    ended = (
        pd.to_datetime(runs["ended_at"], utc=True)
        if "ended_at" in runs.columns
        else pd.Series(pd.NaT, index=runs.index)
    )
    order = pd.DataFrame({"ended": ended, "seq": range(len(runs))})[keep]
    order = order.sort_values(["ended", "seq"], na_position="last", kind="stable")
    points: list[HistoryPoint] = []
    best: list[float] = []
    best_run_id = None
    for i, index in enumerate(order.index, start=1):
        value = float(values[index])
        run_id = str(runs.at[index, "run_id"])
        at = to_epoch(ended[index])
        since = None if at is None or snap.created_at is None else at - snap.created_at
        points.append(HistoryPoint(i, run_id, value, since, str(states[index])))
        if not best or _better(value, best[-1], snap.goal):
            best.append(value)
            best_run_id = run_id
        else:
            best.append(best[-1])
    log = _log_y((p.value for p in points), log_y)
    return HistoryInfo(snap.metric, snap.goal, points, best, best_run_id, log)


# --------------------------------------------------------------------------- slice


@dataclass(frozen=True)
class SlicePanel:
    """One parameter against the metric: a dot per run."""

    parameter: str
    is_log: bool
    is_categorical: bool
    x: list[float]  # the value (the category's index on a categorical panel)
    y: list[float]
    run_ids: list[str]
    colours: list[str]  # each run's colour (``run_styles``)
    tick_values: list[float] = field(default_factory=list)  # categorical panels only
    tick_labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SliceInfo:
    """Optuna's slice plot: each parameter against the metric, for runs that have both."""

    metric: str | None
    goal: str
    panels: list[SlicePanel]
    best_run_id: str | None
    log_y: bool = False


def slice_info(snap: Snapshot, log_y: bool | None = None) -> SliceInfo:
    """A panel per searched parameter (log x for log distributions)."""
    runs = snap.runs
    values = metric_values(runs, snap.metric)
    keep = values.notna()
    runs, values = runs[keep], values[keep]
    run_ids = [str(r) for r in runs.get("run_id", [])]
    styles = run_styles(snap)
    panels = []
    for param in parameters_of(snap.config):
        dim = _dimension(param, runs, None)
        column = f"config/{param.name}"
        raw = list(runs[column]) if column in runs.columns else [None] * len(runs)
        x, y, ids = [], [], []
        for position, value, run_id, given in zip(dim.values, values, run_ids, raw, strict=True):
            if math.isfinite(position):
                x.append(position if dim.is_categorical else float(given))
                y.append(float(value))
                ids.append(run_id)
        panels.append(
            SlicePanel(
                param.name,
                dim.is_log,
                dim.is_categorical,
                x,
                y,
                ids,
                [styles.get(r, run_style(0)).colour for r in ids],
                dim.ticks if dim.is_categorical else [],
                dim.tick_labels if dim.is_categorical else [],
            )
        )
    best = _best_index(values.reset_index(drop=True), snap.goal)
    log = _log_y((float(v) for v in values), log_y)
    return SliceInfo(snap.metric, snap.goal, panels, None if best is None else run_ids[best], log)


# --------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class TimelineBar:
    """One run on its agent's row: from its start to its end (or now, while it runs)."""

    run_id: str
    state: str
    colour: str  # the state's
    start_s: float  # seconds since the timeline's start
    end_s: float
    gpu_util: float | None  # the run's mean GPU utilisation, % (None on CPU)


@dataclass(frozen=True)
class TimelineRow:
    """One agent (one GPU group) and the runs it executed, in order."""

    agent: str
    label: str  # "agent 0 · GPU 0 (A100)" or "agent 0 · CPU"
    bars: list[TimelineBar]


@dataclass(frozen=True)
class TimelineInfo:
    """Where the time went: a row per agent, its runs as bars coloured by state."""

    start: float | None  # epoch seconds of the first run's start
    end: float | None
    rows: list[TimelineRow]

    @property
    def has_gpu(self) -> bool:
        return any(b.gpu_util is not None for r in self.rows for b in r.bars)


def timeline_info(snap: Snapshot) -> TimelineInfo:
    """Runs that started, grouped by the agent that ran them; a live run ends at the snapshot."""
    runs = snap.runs
    if not len(runs) or "started_at" not in runs.columns:
        return TimelineInfo(None, None, [])
    started = [to_epoch(v) for v in runs["started_at"]]
    ended = [to_epoch(v) for v in runs["ended_at"]] if "ended_at" in runs.columns else []
    ended = ended or [None] * len(runs)
    first = min((s for s in started if s is not None), default=None)
    if first is None:
        return TimelineInfo(None, None, [])
    gpus = _agent_gpus(snap.agents)
    by_agent: dict[str, list[TimelineBar]] = {}
    last = first
    for row, start, end in zip(runs.to_dict("records"), started, ended, strict=True):
        if start is None:
            continue
        end = end if end is not None else max(snap.taken_at, start)
        last = max(last, end)
        state = str(row.get("state", ""))
        agent = _text(row.get("agent")) or "?"
        by_agent.setdefault(agent, []).append(
            TimelineBar(
                str(row["run_id"]),
                state,
                STATE_COLOURS.get(state, "#9e9e9e"),
                start - first,
                end - first,
                _float_or_none(row.get("gpu_util")),
            )
        )
    rows = [
        TimelineRow(agent, _agent_label(agent, gpus.get(agent, "")), sorted(bars, key=_start))
        for agent, bars in sorted(by_agent.items(), key=lambda item: _agent_key(item[0]))
    ]
    return TimelineInfo(first, last, rows)


def _start(bar: TimelineBar) -> float:
    return bar.start_s


def _agent_key(agent: str) -> tuple[int, Any]:
    return (0, int(agent)) if agent.isdigit() else (1, agent)


def _agent_gpus(agents: pd.DataFrame) -> dict[str, str]:
    if not len(agents) or "agent" not in agents.columns:
        return {}
    names = agents["gpu_name"] if "gpu_name" in agents.columns else agents.get("gpu")
    if names is None:
        return {}
    return {_text(a): _text(n) for a, n in zip(agents["agent"], names, strict=True)}


def _agent_label(agent: str, gpu: str) -> str:
    return f"agent {agent} · {gpu}" if gpu else f"agent {agent}"


# --------------------------------------------------------------------------- run detail


@dataclass(frozen=True)
class RunDetailInfo:
    """One run, as a click on a table row or a line shows it."""

    run_id: str
    state: str
    colour: str  # the run's colour in the plots
    agent: str
    config: dict[str, Any]  # flat, "model/depth" keys
    summary: dict[str, Any]
    metric: str | None
    metric_value: float | None
    runtime_s: float | None
    started_text: str
    ended_text: str
    error: str
    gpu: dict[str, str]  # figure name -> text; empty for a run on CPU
    curves: dict[str, Curve]  # every numeric key it logged, against iteration
    log_tail: str = ""


def run_detail_info(snap: Snapshot, run_id: str, log_tail: str = "") -> RunDetailInfo:
    """Config, summary, GPU figures and curves of ``run_id`` (``log_tail`` read by the caller,
    e.g. with ``log_tail(run.log_path)``). Raises ``KeyError`` for a run not in the snapshot."""
    runs = snap.runs
    found = runs[runs["run_id"].astype(str) == str(run_id)] if "run_id" in runs.columns else runs
    if not len(found):
        raise KeyError(f"run {run_id!r} is not in sweep {snap.id}")
    row = found.iloc[0].to_dict()
    config = {k.removeprefix("config/"): v for k, v in row.items() if k.startswith("config/")}
    summary = {
        k.removeprefix("summary/"): v
        for k, v in row.items()
        if k.startswith("summary/") and not _missing(v)
    }
    gpu = {}
    for column, label, unit in (
        ("gpu_util", "GPU utilisation (mean)", "%"),
        ("gpu_mem_mb", "GPU memory (peak)", " MiB"),
        ("gpu_mem_start_mb", "GPU memory at start", " MiB"),
        ("gpu_seconds", "GPU time", ""),
    ):
        value = _float_or_none(row.get(column))
        if value is not None:
            text = format_duration(value) if column == "gpu_seconds" else f"{value:.0f}{unit}"
            gpu[label] = text
    curves: dict[str, Curve] = {}
    history = snap.history
    style = run_styles(snap).get(str(run_id), run_style(0))
    if history is not None and "run_id" in history.columns:
        rows = history[history["run_id"].astype(str) == str(run_id)]
        if "_step" in rows.columns:
            rows = rows.sort_values("_step", kind="stable")
        for key in logged_keys(rows):
            valid = rows[key][rows[key].map(is_valid_metric)]
            if len(valid):
                y = [float(v) for v in valid]
                x = [float(i) for i in range(1, len(y) + 1)]
                curves[key] = Curve(str(run_id), str(row.get("state", "")), x, y, style.colour)
    metric_value = _float_or_none(row.get(f"summary/{snap.metric}")) if snap.metric else None
    return RunDetailInfo(
        run_id=str(run_id),
        state=str(row.get("state", "")),
        colour=style.colour,
        agent=_text(row.get("agent")),
        config=config,
        summary=summary,
        metric=snap.metric,
        metric_value=metric_value,
        runtime_s=_float_or_none(row.get("runtime_s")),
        started_text=format_time(row.get("started_at")),
        ended_text=format_time(row.get("ended_at")),
        error=_text(row.get("error")),
        gpu=gpu,
        curves=curves,
        log_tail=log_tail,
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def log_tail(path: str | os.PathLike[str], lines: int = 40) -> str:
    """The last ``lines`` lines of a run's log ("" when it wrote nothing)."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - 64 * 1024))  # a tail, not a whole multi-GB log
            text = file.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


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
    searched = {p.name for p in parameters_of(snap.config)} - _constant_columns(snap.runs)
    rows = [
        ImportanceRow(str(r["parameter"]), float(r["importance"]), float(r["correlation"]))
        for _, r in table.sort_values("importance", ascending=False).iterrows()
        if str(r["parameter"]) in searched
    ]
    return ImportanceInfo(snap.metric, snap.goal, rows, "")


def _constant_columns(runs: pd.DataFrame) -> set[str]:
    """Parameters that took one value in every run: nothing to explain the metric with."""
    return {
        column.removeprefix("config/")
        for column in runs.columns
        if column.startswith("config/") and runs[column].map(format_value).nunique() <= 1
    }
