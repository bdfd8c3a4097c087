"""The Python API of a sweep: start it, watch it, steer it, read its results.

A ``Sweep`` is a view of one sweep in the store plus, in the process that runs it, the
controller thread. Everything it shows is read from the store, so ``nbsweep.load`` in a new
kernel (or a second notebook) sees the same sweep. Sweep states: ``running``, ``paused`` (no
new runs, pending ones wait), ``stopping`` (no new runs, running ones finish), ``finished``
and ``cancelled`` (running runs killed).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from nbsweep._errors import StoreError, SweepError
from nbsweep._runs import CRASHED, FAILED, RUNNING, TERMINAL, RunRecord, is_valid_metric
from nbsweep.agents._dask import DaskExecutor, dask_slots
from nbsweep.agents._local import LocalExecutor
from nbsweep.agents._loop import CONTROLLER_DIED, log_path
from nbsweep.agents._shipping import reference, ship
from nbsweep.controller import (
    CANCELLED,
    PAUSED,
    STOPPING,
    SWEEP_ACTIVE,
    SWEEP_DONE,
    SWEEP_FINISHED,
    SWEEP_RUNNING,
    Controller,
)
from nbsweep.schedulers._launch import (
    forward_env,
    launch_note,
    plan,
    queue_client,
    queue_groups,
    resume_config,
)
from nbsweep.store import Store, open_store
from nbsweep.store._store import dumps, loads, new_id, owner_alive

StoreArg = str | os.PathLike[str] | Store | None

# Controllers running in this process, so that load() of the same sweep can steer them.
_controllers: dict[str, Controller] = {}
_controllers_lock = threading.Lock()


def _time(value: float | None) -> pd.Timestamp | None:
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
    "steps",
    "error",
    "requeued_from",
]
_TIME_COLUMNS = ("created_at", "started_at", "ended_at")


def run_record(r: Mapping[str, Any], now: float) -> dict[str, Any]:
    """One row of ``Sweep.runs`` from a store row; times stay epoch seconds until
    ``runs_frame`` converts each time column at once (a Timestamp per value is slow)."""
    started, ended = r["started_at"], r["ended_at"]
    record = {
        "run_id": r["id"],
        "state": r["state"],
        "created_at": r["created_at"],
        "started_at": started,
        "ended_at": ended,
        "runtime_s": None if started is None else (ended or now) - started,
        "agent": r["agent"],
        "gpu": r["gpu"],
        "gpu_util": r["gpu_util"],
        "gpu_mem_mb": r["gpu_mem_mb"],
        "gpu_seconds": r["gpu_seconds"],
        "steps": r["steps"],
        "error": r["error"],
        "requeued_from": r["requeued_from"],
    }
    _flatten("config/", loads(r["config"]), record)
    for key, value in loads(r["summary"]).items():
        record[f"summary/{key}"] = value
    return record


def runs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``Sweep.runs`` frame of ``run_record`` records, times as UTC timestamps."""
    frame = pd.DataFrame.from_records(records, columns=None if records else RUN_COLUMNS)
    for column in _TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame


def progress_of(config: Mapping[str, Any], runs: list[dict[str, Any]]) -> tuple[int, int | None]:
    """(runs done, total) of store rows: a run queued again counts once, by its retry."""
    replaced = {r["requeued_from"] for r in runs if r["requeued_from"]}
    done = sum(1 for r in runs if r["state"] in TERMINAL and r["id"] not in replaced)
    total: int | None = config.get("run_cap")
    if config.get("method") == "grid":
        from nbsweep.search import grid_size

        size = grid_size(config)
        total = size if total is None else min(total, size)
    return done, total


class Run:
    """One run of a sweep, read from the store on each access."""

    def __init__(self, store: Store, sweep_id: str, run_id: str) -> None:
        self._store = store
        self.sweep_id = sweep_id
        self.id = run_id

    def _row(self) -> dict[str, Any]:
        row = self._store.run(self.id)
        if row is None:
            raise SweepError(f"run {self.id} is no longer in the store")
        return row

    @property
    def state(self) -> str:
        return self._row()["state"]

    @property
    def config(self) -> dict[str, Any]:
        return loads(self._row()["config"])

    @property
    def summary(self) -> dict[str, Any]:
        return loads(self._row()["summary"])

    @property
    def error(self) -> str | None:
        """The traceback of a failed run (or why a crashed one died)."""
        return self._row()["error"]

    @property
    def log_path(self) -> Path:
        """The run's stdout and stderr; the file exists once the run has written something."""
        return log_path(self._store, self.sweep_id, self.id)

    def history(self) -> pd.DataFrame:
        return _history_frame(self._store.history(self.sweep_id, self.id))

    def __repr__(self) -> str:
        return f"<nbsweep.Run {self.id} {self.state}>"


def _history_frame(rows: list[tuple[str, int, float, str]]) -> pd.DataFrame:
    records = [
        {"run_id": run_id, "_step": step, "_timestamp": at, **loads(data)}
        for run_id, step, at, data in rows
    ]
    return pd.DataFrame.from_records(records, columns=None if records else ["run_id", "_step"])


class Sweep:
    """A sweep in the store; steer it with pause/resume/stop/cancel, read runs and history."""

    def __init__(self, store: Store, sweep_id: str) -> None:
        self._store = store
        self.id = sweep_id
        self._train_spec: Path | None = None

    # -- what it is ------------------------------------------------------------------------

    def _row(self) -> dict[str, Any]:
        row = self._store.sweep(self.id)
        if row is None:
            raise SweepError(f"sweep {self.id} is no longer in store {self._store.url}")
        return row

    @property
    def store(self) -> Store:
        return self._store

    @property
    def name(self) -> str:
        return self._row()["name"]

    @property
    def state(self) -> str:
        return self._row()["state"]

    @property
    def message(self) -> str:
        """Why the sweep paused or ended (the first traceback when failures paused it)."""
        return self._row()["message"]

    @property
    def config(self) -> dict[str, Any]:
        """The normalised sweep config."""
        return loads(self._row()["config"])

    @property
    def method(self) -> str:
        return self._row()["method"]

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self._row()["created_at"], tz=timezone.utc)

    @property
    def progress(self) -> tuple[int, int | None]:
        """(runs done, total) with the total from run_cap or the grid size, else None."""
        return progress_of(self.config, self._store.runs(self.id))

    # -- runs ------------------------------------------------------------------------------

    @property
    def runs(self) -> pd.DataFrame:
        """One row per run: state, times, agent, GPU, ``config/<name>``, ``summary/<key>``.

        ``gpu_util`` (mean %), ``gpu_mem_mb`` (peak MiB) and ``gpu_seconds`` (runtime x GPUs)
        are sampled from NVML while the run is live; empty for a run on CPU.
        """
        now = time.time()
        return runs_frame([run_record(r, now) for r in self._store.runs(self.id)])

    def history(self) -> pd.DataFrame:
        """Every logged row: ``run_id``, ``_step``, ``_timestamp`` and one column per key."""
        return _history_frame(self._store.history(self.id))

    def get_run(self, run_id: str) -> Run:
        row = self._store.run(run_id)
        if row is None or row["sweep_id"] != self.id:
            raise SweepError(f"sweep {self.id} has no run {run_id!r}")
        return Run(self._store, self.id, run_id)

    @property
    def best_run(self) -> Run | None:
        """The run with the best summary value of ``metric.name`` (None without one)."""
        metric = self.config.get("metric") or {}
        name = metric.get("name")
        if not name:
            return None
        sign = -1.0 if metric.get("goal") == "maximize" else 1.0
        best: tuple[float, str] | None = None
        for r in self._store.runs(self.id):
            value = loads(r["summary"]).get(name)
            if is_valid_metric(value) and (best is None or sign * float(value) < best[0]):
                best = (sign * float(value), r["id"])
        return None if best is None else Run(self._store, self.id, best[1])

    def events(self) -> pd.DataFrame:
        """What happened, in order: runs stopped or crashed, agents died, state changes."""
        rows = self._store.events(self.id)
        frame = pd.DataFrame.from_records(
            rows, columns=["id", "sweep_id", "at", "kind", "run_id", "agent", "message"]
        )
        frame["at"] = pd.to_datetime(frame["at"], unit="s", utc=True)
        return frame.drop(columns=["sweep_id"])

    @property
    def agents(self) -> pd.DataFrame:
        """Agents with their GPU and state (idle, busy, draining, dead) and current run."""
        records = []
        for a in self._store.agents(self.id):
            state = a["state"]
            if state not in ("dead", "draining"):
                state = "busy" if a["run_id"] else "idle"
            records.append(
                {
                    "agent": a["agent"],
                    "pid": a["pid"],
                    "host": a["host"],
                    "gpu": a["gpu"],
                    "gpu_name": a["gpu_name"],
                    "state": state,
                    "run_id": a["run_id"],
                }
            )
        columns = ["agent", "pid", "host", "gpu", "gpu_name", "state", "run_id"]
        return pd.DataFrame.from_records(records, columns=columns)

    def drain(self, agent: int) -> None:
        """Let ``agent`` finish its current run, then exit (releasing its GPU)."""
        if not any(a["agent"] == agent for a in self._store.agents(self.id)):
            raise SweepError(f"sweep {self.id} has no agent {agent!r}")
        self._store.update_agent(self.id, agent, drain=True, state="draining")

    def set_priority(self, priority: str) -> None:
        """Change ``scheduler.priority`` (low, medium, high) for the GPUs freed from now on.

        When a GPU frees, the waiting sweep of highest priority gets it; an agent of a lower
        priority sweep gives its GPU to a waiting higher one after its current run.
        """
        from nbsweep.agents._pool import PRIORITIES, check_priority
        from nbsweep.store._store import dumps

        level = check_priority(priority)
        config = self.config
        config["scheduler"] = {**(config.get("scheduler") or {}), "priority": level}
        self._store.update_sweep(self.id, config=dumps(config), event=f"priority {level}")
        self._store.pool_set_priority(self.id, PRIORITIES[level])
        self._wake()

    @property
    def gpu_pool(self) -> pd.DataFrame:
        """Which sweep holds which GPU of the machines this store's sweeps share, and which
        sweeps wait for one (``state`` holds/waits, ``wanted`` GPUs, ``priority``)."""
        from nbsweep.agents._pool import PRIORITIES

        names = {v: k for k, v in PRIORITIES.items()}
        rows = self._store.pool()
        sweeps = {r["sweep_id"]: self._store.sweep(r["sweep_id"]) or {} for r in rows}
        records = [
            {
                "host": r["host"],
                "gpu": r.get("gpu"),
                "sweep_id": r["sweep_id"],
                "sweep": sweeps[r["sweep_id"]].get("name"),
                "priority": names.get(r["priority"], r["priority"]),
                "state": r["state"],
                "wanted": r.get("wanted"),
                "since": _time(r["since"]),
            }
            for r in rows
        ]
        columns = ["host", "gpu", "sweep_id", "sweep", "priority", "state", "wanted", "since"]
        return pd.DataFrame.from_records(records, columns=columns)

    def cost(self) -> Any:
        """GPU-hours used and GPU-hours early termination saved (a ``Cost``; see ``_cost``)."""
        from nbsweep._cost import sweep_cost

        return sweep_cost(self.config, self._store.runs(self.id))

    def bands(self) -> list[Any]:
        """The early-termination bands as they stand ([] without ``early_terminate``)."""
        from nbsweep.stopping import make_stopper

        config = self.config
        stopper = make_stopper(config)
        if stopper is None:
            return []
        name = (config.get("metric") or {}).get("name")
        runs = self._store.runs(self.id)
        histories = self._store.metric_histories([r["id"] for r in runs], sweep_id=self.id)
        records = [
            RunRecord(
                id=r["id"],
                config=loads(r["config"]),
                state=r["state"],
                metric_history=histories[r["id"]],
                summary_metric=loads(r["summary"]).get(name),
            )
            for r in runs
        ]
        return list(stopper.decide(records).bands)

    # -- steering --------------------------------------------------------------------------

    def _controller(self) -> Controller | None:
        with _controllers_lock:
            found = _controllers.get(self.id)
        return found if found is not None and found.is_alive() else None

    def _wake(self) -> None:
        controller = self._controller()
        if controller is not None:
            controller.wake()

    def pause(self) -> None:
        """No new runs start; pending ones wait, running ones go on."""
        self._store.update_sweep(
            self.id, only_from=[SWEEP_RUNNING], state=PAUSED, message="", event="paused"
        )
        self._wake()

    def resume(
        self,
        train: Callable[..., Any] | None = None,
        workers: int | None = None,
        config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        executor: Any = None,
    ) -> Sweep:
        """Un-pause; or, when no controller runs the sweep any more, restart it here.

        ``train`` replaces the train function for agents started from now on (after a fix).
        Runs cut short by the death of the previous controller stay ``crashed`` (their rows
        kept) and their configs are queued again, so a grid still completes exactly once.
        New agents get GPUs as the sweep first did (same ``gpus_per_run``; NVML, or the one
        given to ``nbsweep.agents.set_nvml``); ``workers`` overrides their number.

        ``config`` (a dict, YAML text or file; its keys replace the sweep's, its ``scheduler``
        keys update the sweep's one by one) changes what W&B lets ``wandb launch-sweep
        --resume_id`` change: ``scheduler`` settings (``num_workers``, Optuna's sampler and
        pruner, ...), ``queue``, ``run_cap`` and names. The agents follow at once: those the
        new plan has no room for finish their run and leave. Parameters, method, metric,
        early_terminate, job and program cannot change (a ``SweepError`` says so).

        ``executor`` (a ``distributed.Client``): when this process takes the sweep over, its
        new agents run as tasks on that Dask cluster, as with ``nbsweep.sweep(...,
        executor=client)``. Without it they go to the Dask client the config's ``queue`` was
        registered with (``nbsweep.register_queue``), else they are local processes.
        """
        row = self._row()
        here = self._controller() is not None
        if executor is not None:
            self._check_executor(executor)
        if config is not None:
            self._change_config(row, config, here)
        if here or self._store.lease_owner(self.id) is not None:
            if train is not None and not here:
                raise SweepError(
                    f"sweep {self.id} is controlled by another live process; train= only"
                    " applies to a sweep controlled here, or whose controller died"
                )
            if train is not None:
                self._spec(train)  # agents started from now on load the new function
            controller = self._controller()
            if config is not None and controller is not None:
                client = (
                    controller.executor.client
                    if isinstance(controller.executor, DaskExecutor)
                    else queue_client(self.config)
                )
                slots = _slots(self.config, workers, row["gpus_per_run"], None, client)
                controller.reconfigure(slots)
            self._store.update_sweep(
                self.id, only_from=[PAUSED], state=SWEEP_RUNNING, message="", event="resumed"
            )
            self._wake()
            return self
        if row["state"] in SWEEP_DONE:
            raise SweepError(
                f"sweep {self.id} is {row['state']}: nothing to resume"
                " (sweep.retry_failed() queues its failed runs again)"
            )
        self._take_over(train, workers, executor)
        return self

    def _check_executor(self, executor: Any) -> None:
        """``resume(executor=...)`` places new agents only when this process takes over."""
        controller = self._controller()
        if controller is None and self._store.lease_owner(self.id) is None:
            return  # taken over below; _slots checks that it is a Dask client
        executing = controller.executor if controller is not None else None
        if isinstance(executing, DaskExecutor) and executing.client is executor:
            return  # the agents already run there
        where = "in this process" if controller is not None else "by another live process"
        raise SweepError(
            f"sweep {self.id} is controlled {where}, with its own agents; executor= only"
            " applies when this process takes a sweep over (after its controller ended):"
            " leave executor out, or add Dask agents with nbsweep.agents.dask_agents()"
        )

    def _change_config(
        self, row: Mapping[str, Any], given: Mapping[str, Any] | str | os.PathLike[str], here: bool
    ) -> None:
        """Store the config ``resume(config=...)`` asks for, or say why it cannot be."""
        old = loads(row["config"])
        new = resume_config(old, given)
        if not here and self._store.lease_owner(self.id) is not None:
            raise SweepError(
                f"sweep {self.id} is controlled by another live process: resume it with"
                " config= there, or stop that process first"
            )
        if not here and row["state"] in SWEEP_DONE:
            raise SweepError(f"sweep {self.id} is {row['state']}: nothing to resume")
        changed = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
        if changed:
            self._store.update_sweep(
                self.id, config=dumps(new), event=f"config changed on resume: {', '.join(changed)}"
            )

    def _take_over(
        self, train: Callable[..., Any] | None, workers: int | None, executor: Any = None
    ) -> None:
        """Become the sweep's controller in this process, with new agents: on ``executor``
        (a Dask client), else on the queue's Dask client, else local processes."""
        gpus = self._row()["gpus_per_run"]
        client = executor if executor is not None else queue_client(self.config)
        # Planned first: a wrong executor or workers= leaves the sweep as it was.
        slots = _slots(self.config, workers, gpus, None, client)
        groups = queue_groups(self.config, gpus, None) if client is None else []
        spec = self._spec(train)
        ended = self._crash_orphans()
        # The new controller queues the cut runs again (and any its agents still report).
        self._store.update_sweep(
            self.id,
            only_from=[*SWEEP_ACTIVE, SWEEP_FINISHED, "pending"],
            state=SWEEP_RUNNING,
            message="",
            event=f"resumed here; {ended} orphaned runs",
        )
        self._start(spec, slots, client, gpu_groups=groups)

    def _spec(self, train: Callable[..., Any] | None) -> Path:
        directory = self._store.root / "sweeps" / self.id
        if train is not None:
            self._train_spec = ship(train, directory)
        if self._train_spec is not None:
            return self._train_spec
        ref = self._row()["train_ref"]
        if ref is None:
            raise SweepError(
                f"sweep {self.id}: its train function was defined in a notebook or script;"
                " pass it again: sweep.resume(train=...)"
            )
        from nbsweep.agents._shipping import resolve

        self._train_spec = ship(resolve(ref), directory)
        return self._train_spec

    def _crash_orphans(self) -> int:
        """Mark crashed the running runs whose agent process on this host is gone."""
        agents = {a["agent"]: a for a in self._store.agents(self.id)}
        orphans = []
        for run_id in self._store.running_ids(self.id):
            run = self._store.run(run_id) or {}
            agent = agents.get(run.get("agent"))
            owner = f"{agent['host']}:{agent['pid']}:" if agent and agent["pid"] else None
            if owner is None or not owner_alive(owner):
                orphans.append(run_id)
        self._store.end_runs(self.id, orphans, CRASHED, {r: CONTROLLER_DIED for r in orphans})
        return len(orphans)

    def _start(
        self, spec: Path, slots: list[Any], client: Any = None, gpu_groups: list[Any] = ()
    ) -> None:
        """Start the controller here; ``gpu_groups``: the local GPUs its agents share with
        the other sweeps of the store (see ``agents._pool``)."""
        executor: LocalExecutor | DaskExecutor | None = None
        if slots and client is not None:
            gpus = self._row()["gpus_per_run"]
            executor = DaskExecutor(self._store, self.id, client, spec, gpus)
        elif slots:
            executor = LocalExecutor(self._store, self.id, spec)
        groups = list(gpu_groups) if isinstance(executor, LocalExecutor) else []
        controller = Controller(self._store, self.id, executor, slots, groups)
        holder = controller.acquire()
        if holder is not None:
            raise SweepError(
                f"sweep {self.id} is already run by controller {holder}; watch it with"
                " nbsweep.load() or add agents with nbsweep.agent()"
            )
        with _controllers_lock:
            _controllers[self.id] = controller
        controller.start()

    def stop(self) -> None:
        """No new runs; running ones finish, then the sweep is finished."""
        self._store.update_sweep(
            self.id,
            only_from=[SWEEP_RUNNING, PAUSED],
            state=STOPPING,
            message="stopped by the user",
            event="stopping",
        )
        self._store.drop_pending(self.id)
        self._wake()

    def cancel(self) -> None:
        """No new runs; running ones are killed (state ``killed``)."""
        self._store.update_sweep(
            self.id,
            only_from=[*SWEEP_ACTIVE, "pending"],
            state=CANCELLED,
            message="cancelled by the user",
            event="cancelled",
        )
        running = self._store.running_ids(self.id)
        self._store.end_runs(self.id, running, "killed", {r: "cancelled" for r in running})
        self._store.drop_pending(self.id)
        self._wake()

    def retry_failed(self, executor: Any = None) -> list[str]:
        """Queue the configs of failed and crashed runs again as new runs; returns their ids.

        On a finished sweep a controller starts again here. Its agents go to ``executor`` (a
        ``distributed.Client``), else to the Dask client this process last ran the sweep's
        agents on, else where ``resume`` would put them (the queue's client, local processes).
        """
        if executor is not None and self.state != SWEEP_FINISHED:
            raise SweepError(
                f"sweep {self.id} is {self.state}: its agents stay where they are; executor="
                " only applies to a finished sweep, which retry_failed starts again"
            )
        runs = self._store.runs(self.id)
        replaced = {r["requeued_from"] for r in runs if r["requeued_from"]}
        again = [r for r in runs if r["state"] in (FAILED, CRASHED) and r["id"] not in replaced]
        ids = self._store.add_runs(
            self.id, [loads(r["config"]) for r in again], [r["id"] for r in again]
        )
        if ids and self.state == SWEEP_FINISHED:
            controller = self._controller()
            if controller is not None:
                controller.join()  # it is leaving: the sweep was over
            if self._store.lease_owner(self.id) is None:
                self._take_over(None, None, executor or self._last_client())
        return ids

    def _last_client(self) -> Any:
        """The Dask client this process last ran the sweep's agents on, while it is open
        (None: local agents, none yet, or a client closed since)."""
        with _controllers_lock:
            last = _controllers.get(self.id)
        executing = last.executor if last is not None else None
        if isinstance(executing, DaskExecutor) and executing.client.status == "running":
            return executing.client
        return None

    def wait(self, timeout: float | None = None) -> str:
        """Block until the sweep is finished, cancelled or paused; returns its state.

        Returns early (with the current state) after ``timeout`` seconds, or when no
        controller runs the sweep any more.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        check_lease = time.monotonic() + 1.0
        while True:
            state = self.state
            controller = self._controller()
            if state in SWEEP_DONE:
                if controller is not None:
                    controller.join(None if deadline is None else deadline - time.monotonic())
                return state
            if state == PAUSED:
                return state
            if deadline is not None and time.monotonic() >= deadline:
                return state
            if controller is None and time.monotonic() >= check_lease:
                if self._store.lease_owner(self.id) is None:
                    return state
                check_lease = time.monotonic() + 1.0
            time.sleep(0.05)

    # -- views -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        done, total = self.progress
        return (
            f"<nbsweep.Sweep {self.id} {self.name!r} {self.method} {self.state}:"
            f" {done}/{total if total is not None else '?'} runs done>"
        )

    def _dashboard(self) -> Any:
        try:
            from nbsweep.widgets import dashboard
        except ImportError:
            return None
        return dashboard(self)

    def _ipython_display_(self) -> None:
        view = self._dashboard()
        if view is None:
            print(repr(self))
            return
        from IPython.display import display

        display(view)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        view = self._dashboard()
        bundle = getattr(view, "_repr_mimebundle_", None)
        if bundle is not None:
            return bundle(include=include, exclude=exclude)
        return {"text/plain": repr(self)}

    @property
    def plot(self) -> Any:
        from nbsweep.plot import SweepPlots

        return SweepPlots(self)

    def report(self, path: str | os.PathLike[str]) -> Any:
        from nbsweep.report import write_report

        return write_report(self, path)

    @property
    def warm_start(self) -> Any:
        """The earlier runs bayes learned from first (``None`` without ``warm_start=``).

        A ``WarmStart``: ``sources`` (sweep ids), ``used`` (how many runs), ``ignored`` (why
        others were not used: not finished, outside the new space, ...), ``note``.
        """
        sources = loads(self._row()["warm_start"])
        if not sources:
            return None
        from nbsweep._warm_start import load

        return load(self._store, sources, self.config)

    def importance(self) -> pd.DataFrame:
        """W&B's parameter importance of ``metric.name`` over the runs so far."""
        from nbsweep.analysis import importance

        metric = self.config.get("metric") or {}
        if not metric.get("name"):
            raise SweepError(f"sweep {self.id} has no metric.name: importance needs a metric")
        return importance(self.runs, metric["name"], metric.get("goal", "minimize"))

    def refine(self, top: float = 0.2, margin: float = 0.1) -> dict[str, Any]:
        """A narrower sweep config around the best ``top`` share of the finished runs."""
        from nbsweep.analysis import refine

        return refine(self.config, self.runs, top=top, margin=margin)

    def confirm(
        self,
        seeds: int | list[int] = 5,
        train: Callable[..., Any] | None = None,
        workers: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run the best config again under ``seeds`` (a count or a list); mean ± std of the metric.

        A grid sweep named ``<name>-confirm`` in the same store, over ``config.seed``, with
        every other parameter fixed at the best run's value; before each run Python's
        ``random``, NumPy and PyTorch are seeded and ``NBSWEEP_SEED``/``PYTHONHASHSEED`` set
        from it. Blocks until it is done; returns a ``Confirmation`` (``mean``, ``std``,
        ``n``, ``values``, ``seeds``, ``sweep``). ``train`` replaces the sweep's function.
        """
        from nbsweep._confirm import confirm

        return confirm(self, seeds, train, workers, timeout)


def _slots(
    config: Mapping[str, Any],
    workers: int | None,
    gpus_per_run: int,
    nvml: Any,
    client: Any = None,
) -> list[Any]:
    if client is not None:
        slots = forward_env(config, dask_slots(client, workers, gpus_per_run))
    else:
        slots = plan(config, workers, gpus_per_run, nvml)
    cap = (config.get("scheduler") or {}).get("num_workers")
    return slots[:cap] if isinstance(cap, int) else slots


def sweep(
    config: Mapping[str, Any] | str | os.PathLike[str],
    train: Callable[..., Any] | None = None,
    workers: int | None = None,
    store: StoreArg = None,
    name: str | None = None,
    gpus_per_run: int = 1,
    seed: int | None = None,
    nvml: Any = None,
    executor: Any = None,
    warm_start: Any = None,
) -> Sweep:
    """Start a sweep of ``train`` over ``config`` on local agents; returns at once.

    ``workers`` defaults to one agent per GPU (one per core without GPUs);
    ``scheduler.num_workers`` in the config caps it. ``store`` is a SQLAlchemy URL or a path
    (default ``$NBSWEEP_STORE``, else ``./.nbsweep/nbsweep.db``). ``warm_start`` (a Sweep,
    a sweep id or a list of them, in the same store; bayes only) lets bayes learn from their
    finished runs first; see ``Sweep.warm_start``.

    ``executor`` (a ``distributed.Client``, or the one ``nbsweep.register_queue`` bound to
    the config's ``queue``) runs the agents as tasks on its Dask cluster instead, each
    asking for ``resources={"GPU": gpus_per_run}`` when the workers advertise GPUs;
    ``workers`` then defaults to those GPUs (see ``nbsweep.agents.DaskExecutor``).
    """
    from nbsweep._command import script_function
    from nbsweep.config import ConfigWarning, validate
    from nbsweep.schedulers import make_scheduler, scheduler_name

    normalised = validate(config)
    if train is None:
        # A ``program:`` sweep runs its script per run, as ``wandb agent`` does.
        train = script_function(normalised)
    make_scheduler(normalised, seed=seed)  # its errors show here, not in the controller
    if executor is None:
        executor = queue_client(normalised)  # a queue registered with a Dask cluster
    slots = _slots(normalised, workers, gpus_per_run, nvml, executor)
    opened = open_store(store)
    sources = _warm_sources(warm_start, normalised, opened)
    sweep_id = new_id()
    spec = ship(train, opened.root / "sweeps" / sweep_id)
    chosen_seed = seed if seed is not None else normalised.get("seed")
    opened.create_sweep(
        sweep_id,
        name or normalised.get("name") or sweep_id,
        normalised["method"],
        normalised,
        reference(train),
        chosen_seed,
        SWEEP_RUNNING,
        gpus_per_run,
        warm_start=sources,
    )
    note = launch_note(normalised, scheduler_name(normalised))
    if note is not None:
        opened.add_event(sweep_id, "launch", note)
        warnings.warn(ConfigWarning(note), stacklevel=2)
    handle = Sweep(opened, sweep_id)
    handle._train_spec = spec
    groups = queue_groups(normalised, gpus_per_run, nvml) if executor is None else []
    handle._start(spec, slots, executor, groups)
    if workers == 0:
        warnings.warn(
            f"workers=0: no agent runs sweep {sweep_id} until one is started:"
            f" nbsweep.agent({sweep_id!r}) in this or another process, or"
            f" `nbsweep agent {sweep_id}` in a terminal",
            stacklevel=2,
        )
    return handle


def _warm_sources(warm_start: Any, config: Mapping[str, Any], store: Store) -> list[str]:
    """The sweeps to warm-start from, checked; warns when some of their runs do not fit."""
    if warm_start is None:
        return []
    if config.get("method") != "bayes":
        raise SweepError(
            f"warm_start: method {config.get('method')!r} does not learn from earlier runs;"
            " use method: bayes, or leave warm_start out"
        )
    from nbsweep._warm_start import load, source_ids

    sources = source_ids(warm_start, store)
    warm = load(store, sources, config)
    if warm.ignored or not warm.used:
        warnings.warn(warm.note, stacklevel=3)
    return sources


def load(sweep_id: str, store: StoreArg = None) -> Sweep:
    """Reopen a sweep from the store (after a kernel restart, or from another notebook)."""
    try:
        opened = open_store(store, create=False)
    except StoreError as exc:
        raise StoreError(f"sweep {sweep_id!r}: {exc}") from None
    if opened.sweep(sweep_id) is None:
        known = ", ".join(s["id"] for s in opened.sweeps()[-5:]) or "none"
        raise SweepError(
            f"sweep {sweep_id!r} is not in store {opened.url} (latest sweeps: {known})"
        )
    return Sweep(opened, sweep_id)


def list_sweeps(store: StoreArg = None) -> pd.DataFrame:
    """Every sweep in the store with its state and run counts."""
    records = []
    for s in open_store(store).sweeps():
        counts = s["run_counts"]
        records.append(
            {
                "sweep_id": s["id"],
                "name": s["name"],
                "method": s["method"],
                "state": s["state"],
                "created_at": _time(s["created_at"]),
                "runs": sum(counts.values()),
                "running": counts.get(RUNNING, 0),
                "finished": counts.get("finished", 0),
                "message": s["message"],
            }
        )
    columns = ["sweep_id", "name", "method", "state", "created_at", "runs", "running"]
    return pd.DataFrame.from_records(records, columns=None if records else columns)


__all__ = ["Run", "Sweep", "list_sweeps", "load", "sweep"]
