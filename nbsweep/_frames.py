"""The frames of a sweep read from store rows: ``Sweep.runs``, ``Sweep.history``, progress.

Apart from the handle so that the dashboards (``widgets``) build the same frames from the rows
they cache without importing the ``Sweep`` handle that shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from nbsweep._states import RUN_ENDED, RunState
from nbsweep.config import SweepConfig
from nbsweep.store import StoredRow, StoredRun


def utc_time(value: float | None) -> pd.Timestamp | None:
    return pd.Timestamp(value, unit="s", tz="UTC") if value is not None else None


def _flatten(prefix: str, value: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            _flatten(f"{prefix}{key}/", item, out)
        else:
            out[f"{prefix}{key}"] = item
    return out


RUN_COLUMNS = [
    "run_id",
    "state",
    "created_at",
    "started_at",
    "ended_at",
    "runtime_s",
    "agent",
    "gpu",
    "gpu_util",
    "gpu_mem_mb",
    "gpu_seconds",
    "gpu_mem_start_mb",
    "steps",
    "error",
    "requeued_from",
]
_TIME_COLUMNS = ("created_at", "started_at", "ended_at")


def run_record(r: StoredRun, now: float) -> dict[str, Any]:
    """One row of ``Sweep.runs`` from a stored run; times stay epoch seconds until
    ``runs_frame`` converts each time column at once (a Timestamp per value is slow)."""
    started, ended = r.started_at, r.ended_at
    record = {
        "run_id": r.id,
        "state": r.state,
        "created_at": r.created_at,
        "started_at": started,
        "ended_at": ended,
        "runtime_s": None if started is None else (ended or now) - started,
        "agent": r.agent,
        "gpu": r.gpu,
        "gpu_util": r.gpu_util,
        "gpu_mem_mb": r.gpu_mem_mb,
        "gpu_seconds": r.gpu_seconds,
        "gpu_mem_start_mb": r.gpu_mem_start_mb,
        "steps": r.steps,
        "error": r.error,
        "requeued_from": r.requeued_from,
    }
    _flatten("config/", r.config, record)
    for key, value in r.summary.items():
        record[f"summary/{key}"] = value
    return record


def runs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``Sweep.runs`` frame of ``run_record`` records, times as UTC timestamps."""
    frame = pd.DataFrame.from_records(records, columns=None if records else RUN_COLUMNS)
    for column in _TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame


def progress_of(config: SweepConfig, runs: list[StoredRun]) -> tuple[int, int | None]:
    """(runs done, total) of stored runs.

    Against ``run_cap``, runs count as the cap counts them (the controller's ``_counted``):
    every ended run but a crashed or killed one that logged nothing, so "30 / 30 runs" goes
    with "run_cap 30 reached". Otherwise (a grid, or no end) a run queued again counts once,
    by its retry: a grid's total is its points.
    """
    total = config.run_cap
    size = config.grid_size  # None unless grid
    if total is None or (size is not None and size < total):
        replaced = {r.requeued_from for r in runs if r.requeued_from}
        done = sum(1 for r in runs if r.state in RUN_ENDED and r.id not in replaced)
        return done, size
    uncounted = (RunState.CRASHED, RunState.KILLED)
    done = sum(
        1 for r in runs if r.state in RUN_ENDED and not (r.state in uncounted and r.steps == 0)
    )
    return done, total


def history_frame(rows: list[StoredRow]) -> pd.DataFrame:
    records = [{"run_id": r.run_id, "_step": r.step, "_timestamp": r.at, **r.data} for r in rows]
    return pd.DataFrame.from_records(records, columns=None if records else ["run_id", "_step"])
