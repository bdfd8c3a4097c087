"""What the store hands out: frozen records with their JSON already decoded.

Callers read attributes (``run.state``, ``sweep.config``) and never see rows or JSON text;
``Claim``, ``Finish`` and ``GpuUse`` are what an agent hands in and gets back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from nbsweep._runs import RunRecord
from nbsweep.config import SweepConfig
from nbsweep.store._codec import decode


@dataclass(frozen=True)
class StoredSweep:
    """A sweep as stored: its normalised config, state and the message of its last change."""

    id: str
    name: str
    method: str
    config: SweepConfig
    state: str
    message: str
    train_ref: str | None  # "module:qualname" of an importable train function
    seed: int | None
    gpus_per_run: int
    created_at: float
    updated_at: float
    failure_guard: bool  # armed until a run succeeds or the guard trips once
    warm_start: tuple[str, ...]  # sweeps whose finished runs bayes observes first
    fresh_process: bool  # each run in a process of its own
    run_counts: Mapping[str, int] = field(default_factory=dict)  # by state; from sweeps()

    @classmethod
    def of(cls, row: Any, run_counts: Mapping[str, int] | None = None) -> StoredSweep:
        return cls(
            id=row.id,
            name=row.name,
            method=row.method,
            config=_sweep_config(row.config),
            state=row.state,
            message=row.message or "",
            train_ref=row.train_ref,
            seed=row.seed,
            gpus_per_run=row.gpus_per_run,
            created_at=row.created_at,
            updated_at=row.updated_at,
            failure_guard=bool(row.failure_guard),
            warm_start=tuple(decode(row.warm_start) or ()),
            fresh_process=bool(row.fresh_process),
            run_counts=dict(run_counts or {}),
        )


@lru_cache(maxsize=256)
def _sweep_config(text: str) -> SweepConfig:
    """The config of its stored text; read once per text, as a controller reads every tick."""
    return SweepConfig.from_stored(decode(text))


@dataclass(frozen=True)
class StoredRun:
    """A run as stored: config, summary, where and when it ran, and how it ended."""

    id: str
    sweep_id: str
    seq: int  # position in the sweep's queue
    state: str
    config_json: str = field(repr=False)  # ``config`` as stored, decoded on first use
    summary_json: str = field(repr=False)
    created_at: float
    started_at: float | None
    ended_at: float | None
    heartbeat_at: float | None
    agent: int | None
    gpu: str | None
    steps: int  # rows logged
    metric_count: int  # valid values of the sweep's metric logged
    error: str | None  # traceback of a failed run, why a crashed one died
    requeued_from: str | None  # the run this one retries
    gpu_util: float | None  # mean utilisation, percent
    gpu_mem_mb: float | None  # peak memory used, MiB
    gpu_seconds: float | None  # runtime x GPUs held
    gpu_mem_start_mb: float | None  # GPU memory at its start above the agent's baseline

    @cached_property
    def config(self) -> dict[str, Any]:
        """The run's parameters (decoded once, when first read: a controller reads thousands
        of runs a tick and looks at few configs)."""
        return decode(self.config_json)  # type: ignore[no-any-return]

    @cached_property
    def summary(self) -> dict[str, Any]:
        """Its summary: the last logged values, or what train returned."""
        return decode(self.summary_json)  # type: ignore[no-any-return]

    @classmethod
    def of(cls, row: Any) -> StoredRun:
        return cls(
            id=row.id,
            sweep_id=row.sweep_id,
            seq=row.seq,
            state=row.state,
            config_json=row.config,
            summary_json=row.summary,
            created_at=row.created_at,
            started_at=row.started_at,
            ended_at=row.ended_at,
            heartbeat_at=row.heartbeat_at,
            agent=row.agent,
            gpu=row.gpu,
            steps=row.steps,
            metric_count=row.metric_count,
            error=row.error,
            requeued_from=row.requeued_from,
            gpu_util=row.gpu_util,
            gpu_mem_mb=row.gpu_mem_mb,
            gpu_seconds=row.gpu_seconds,
            gpu_mem_start_mb=row.gpu_mem_start_mb,
        )

    def record(self, metric: str | None, history: Sequence[Any] = ()) -> RunRecord:
        """The run as the engine sees it, judged on ``metric`` with its ``history`` of it."""
        return RunRecord(
            id=self.id,
            config=self.config,
            state=self.state,
            metric_history=tuple(history),
            summary_metric=self.summary.get(metric) if metric else None,
        )


@dataclass(frozen=True)
class StoredRow:
    """One row a run logged, as ``nbsweep.log`` received it."""

    run_id: str
    step: int
    at: float
    data: dict[str, Any]


@dataclass(frozen=True)
class StoredEvent:
    """Something that happened to a sweep: a state change, a run stopped, an agent died."""

    id: int
    sweep_id: str
    at: float
    kind: str
    run_id: str | None
    agent: int | None
    message: str


@dataclass(frozen=True)
class StoredAgent:
    """An agent of a sweep, with the run it is on (from the runs table)."""

    sweep_id: str
    agent: int
    pid: int | None
    host: str | None
    gpu: str
    gpu_name: str
    state: str
    run_id: str | None
    drain: bool
    started_at: float
    heartbeat_at: float


@dataclass(frozen=True)
class PoolEntry:
    """A GPU a sweep holds (``state`` "holds") or a sweep waiting for GPUs ("waits")."""

    state: str
    host: str
    sweep_id: str
    owner: str
    priority: int
    since: float
    expires_at: float
    gpu: str | None = None  # the GPU held
    wanted: int | None = None  # GPUs a waiting sweep lacks


@dataclass(frozen=True)
class Claim:
    """A run an agent now owns: its id, position in the sweep and config."""

    run_id: str
    seq: int
    config: dict[str, Any]


@dataclass(frozen=True)
class GpuUse:
    """What a run used of its GPUs, sampled from NVML (None where NVML gave nothing)."""

    util: float | None  # mean utilisation, percent
    mem_mb: float | None  # peak memory used, MiB
    seconds: float  # runtime x GPUs held
    mem_start_mb: float | None = None  # at the run's start, above the agent's baseline


@dataclass(frozen=True)
class Finish:
    """How an agent's run ended, written in the same transaction as the next claim."""

    run_id: str
    state: str
    summary: dict[str, Any]
    error: str | None = None
    gpu: GpuUse | None = None  # None for a run on CPU
