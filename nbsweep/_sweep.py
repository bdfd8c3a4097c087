"""The Python API of a sweep: start it, watch it, steer it, read its results.

A ``Sweep`` is a view of one sweep in the store plus, in the process that runs it, the
controller thread. Everything it shows is read from the store, so ``nbsweep.load`` in a new
kernel (or a second notebook) sees the same sweep. Sweep states: ``running``, ``paused`` (no
new runs, pending ones wait), ``stopping`` (no new runs, running ones finish), ``finished``
and ``cancelled`` (running runs killed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from nbsweep._errors import StoreError, StoreFault, SweepError, SweepNotFoundError, SweepStateError
from nbsweep._frames import history_frame, progress_of, run_record, runs_frame, utc_time
from nbsweep._runs import is_valid_metric
from nbsweep._start import (
    StoreArg,
    controller_of,
    last_controller,
    slots,
    start,
    take_over,
    train_spec,
)
from nbsweep._states import SWEEP_ACTIVE, SWEEP_ENDED, AgentState, RunState, SweepState
from nbsweep.agents._dask import DaskExecutor
from nbsweep.agents._loop import log_path
from nbsweep.config import SweepConfig
from nbsweep.controller import Controller
from nbsweep.schedulers._launch import queue_client, resume_config
from nbsweep.store import Store, StoredRun, StoredSweep, missing, open_store


class Run:
    """One run of a sweep, read from the store on each access."""

    def __init__(self, store: Store, sweep_id: str, run_id: str) -> None:
        self._store = store
        self.sweep_id = sweep_id
        self.id = run_id

    def _row(self) -> StoredRun:
        row = self._store.run(self.id)
        if row is None:
            raise SweepError(f"run {self.id} is no longer in the store")
        return row

    @property
    def state(self) -> str:
        return self._row().state

    @property
    def config(self) -> dict[str, Any]:
        return self._row().config

    @property
    def summary(self) -> dict[str, Any]:
        return self._row().summary

    @property
    def error(self) -> str | None:
        """The traceback of a failed run (or why a crashed one died)."""
        return self._row().error

    @property
    def log_path(self) -> Path:
        """The run's stdout and stderr; the file exists once the run has written something."""
        return log_path(self._store, self.sweep_id, self.id)

    def history(self) -> pd.DataFrame:
        return history_frame(self._store.history(self.sweep_id, self.id))

    def __repr__(self) -> str:
        return f"<nbsweep.Run {self.id} {self.state}>"


class Sweep:
    """A sweep in the store; steer it with pause/resume/stop/cancel, read runs and history."""

    def __init__(self, store: Store, sweep_id: str) -> None:
        self._store = store
        self.id = sweep_id
        self._train_spec: Path | None = None

    # -- what it is ------------------------------------------------------------------------

    def _row(self) -> StoredSweep:
        row = self._store.sweep(self.id)
        if row is None:
            raise SweepNotFoundError(f"sweep {self.id} is no longer in store {self._store.where}")
        return row

    @property
    def store(self) -> Store:
        return self._store

    @property
    def name(self) -> str:
        return self._row().name

    @property
    def state(self) -> str:
        return self._row().state

    @property
    def message(self) -> str:
        """Why the sweep paused or ended (the first traceback when failures paused it)."""
        return self._row().message

    @property
    def controller_alive(self) -> bool:
        """Whether a live process controls the sweep now (holds its controller lease).

        False for an ended sweep, and for one whose controller died with its kernel or
        process: its ``state`` still says where it stopped (``running``, ``paused``), and
        ``sweep.resume()`` (``%sweep resume ID``, ``nbsweep resume ID``) takes it over here.
        """
        return self._controller() is not None or self._store.lease_owner(self.id) is not None

    @property
    def config(self) -> SweepConfig:
        """The normalised sweep config (read-only; ``config.as_dict()`` is a plain copy)."""
        return self._row().config

    @property
    def method(self) -> str:
        return self._row().method

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self._row().created_at, tz=timezone.utc)

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
        return history_frame(self._store.history(self.id))

    def get_run(self, run_id: str) -> Run:
        row = self._store.run(run_id)
        if row is None or row.sweep_id != self.id:
            raise SweepError(f"sweep {self.id} has no run {run_id!r}")
        return Run(self._store, self.id, run_id)

    @property
    def best_run(self) -> Run | None:
        """The run with the best summary value of ``metric.name`` (None without one)."""
        metric = self.config.metric
        if metric is None:
            return None
        name, sign = metric.name, (-1.0 if metric.maximize else 1.0)
        best: tuple[float, str] | None = None
        for r in self._store.runs(self.id):
            value = r.summary.get(name)
            if is_valid_metric(value) and (best is None or sign * float(value) < best[0]):
                best = (sign * float(value), r.id)
        return None if best is None else Run(self._store, self.id, best[1])

    def events(self) -> pd.DataFrame:
        """What happened, in order: runs stopped or crashed, agents died, state changes."""
        rows = [asdict(e) for e in self._store.events(self.id)]
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
            state = a.state
            if state not in (AgentState.DEAD, AgentState.DRAINING):
                state = AgentState.BUSY if a.run_id else AgentState.IDLE
            records.append(
                {
                    "agent": a.agent,
                    "pid": a.pid,
                    "host": a.host,
                    "gpu": a.gpu,
                    "gpu_name": a.gpu_name,
                    "state": state,
                    "run_id": a.run_id,
                }
            )
        columns = ["agent", "pid", "host", "gpu", "gpu_name", "state", "run_id"]
        return pd.DataFrame.from_records(records, columns=columns)

    def drain(self, agent: int) -> None:
        """Let ``agent`` finish its current run, then exit (releasing its GPU)."""
        if not any(a.agent == agent for a in self._store.agents(self.id)):
            raise SweepError(f"sweep {self.id} has no agent {agent!r}")
        self._store.update_agent(self.id, agent, drain=True, state=AgentState.DRAINING)

    def set_priority(self, priority: str) -> None:
        """Change ``scheduler.priority`` (low, medium, high) for the GPUs freed from now on.

        When a GPU frees, the waiting sweep of highest priority gets it; an agent of a lower
        priority sweep gives its GPU to a waiting higher one after its current run.
        """
        from nbsweep.agents._pool import PRIORITIES, check_priority

        level = check_priority(priority)
        config = self.config.with_priority(level)
        self._store.update_sweep(self.id, config=config, event=f"priority {level}")
        self._store.pool_set_priority(self.id, PRIORITIES[level])
        self._wake()

    @property
    def gpu_pool(self) -> pd.DataFrame:
        """Which sweep holds which GPU of the machines this store's sweeps share, and which
        sweeps wait for one (``state`` holds/waits, ``wanted`` GPUs, ``priority``)."""
        from nbsweep.agents._pool import PRIORITIES

        names = {v: k for k, v in PRIORITIES.items()}
        rows = self._store.pool()
        sweeps = {r.sweep_id: self._store.sweep(r.sweep_id) for r in rows}
        records = [
            {
                "host": r.host,
                "gpu": r.gpu,
                "sweep_id": r.sweep_id,
                "sweep": getattr(sweeps[r.sweep_id], "name", None),
                "priority": names.get(r.priority, r.priority),
                "state": r.state,
                "wanted": r.wanted,
                "since": utc_time(r.since),
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
        records = self._store.run_records(self.id, config.metric_name)
        return list(stopper.decide(records).bands)

    # -- steering --------------------------------------------------------------------------

    def _controller(self) -> Controller | None:
        return controller_of(self.id)

    def _wake(self) -> None:
        controller = self._controller()
        if controller is not None:
            controller.wake()

    def pause(self) -> None:
        """No new runs start; pending ones wait, running ones go on."""
        self._store.update_sweep(
            self.id,
            only_from=[SweepState.RUNNING],
            state=SweepState.PAUSED,
            message="",
            event="paused",
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
        leaving = self._controller()
        if leaving is not None and leaving.error is not None:
            leaving.quit()  # it failed; once it has left, this process takes the sweep over
            leaving.join()
        here = self._controller() is not None
        if executor is not None:
            self._check_executor(executor)
        if config is not None:
            self._change_config(row, config, here)
        if here or self._store.lease_owner(self.id) is not None:
            if train is not None and not here:
                raise SweepStateError(
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
                planned = slots(self.config, workers, row.gpus_per_run, None, client)
                controller.reconfigure(planned)
            self._store.update_sweep(
                self.id,
                only_from=[SweepState.PAUSED],
                state=SweepState.RUNNING,
                message="",
                event="resumed",
            )
            self._wake()
            return self
        if row.state in SWEEP_ENDED:
            raise SweepStateError(
                f"sweep {self.id} is {row.state}: nothing to resume"
                " (sweep.retry_failed() queues its failed runs again)"
            )
        self._take_over(train, workers, executor)
        return self

    def _check_executor(self, executor: Any) -> None:
        """``resume(executor=...)`` places new agents only when this process takes over."""
        controller = self._controller()
        if controller is None and self._store.lease_owner(self.id) is None:
            return  # taken over below; _start.slots checks that it is a Dask client
        executing = controller.executor if controller is not None else None
        if isinstance(executing, DaskExecutor) and executing.client is executor:
            return  # the agents already run there
        where = "in this process" if controller is not None else "by another live process"
        raise SweepStateError(
            f"sweep {self.id} is controlled {where}, with its own agents; executor= only"
            " applies when this process takes a sweep over (after its controller ended):"
            " leave executor out, or add Dask agents with nbsweep.agents.dask_agents()"
        )

    def _change_config(
        self, row: StoredSweep, given: Mapping[str, Any] | str | os.PathLike[str], here: bool
    ) -> None:
        """Store the config ``resume(config=...)`` asks for, or say why it cannot be."""
        old = row.config
        new = resume_config(old, given)
        if not here and self._store.lease_owner(self.id) is not None:
            raise SweepStateError(
                f"sweep {self.id} is controlled by another live process: resume it with"
                " config= there, or stop that process first"
            )
        if not here and row.state in SWEEP_ENDED:
            raise SweepStateError(f"sweep {self.id} is {row.state}: nothing to resume")
        changed = sorted(old.changed_keys(new))
        if changed:
            self._store.update_sweep(
                self.id, config=new, event=f"config changed on resume: {', '.join(changed)}"
            )

    def _take_over(
        self, train: Callable[..., Any] | None, workers: int | None, executor: Any = None
    ) -> None:
        take_over(self._store, self.id, lambda: self._spec(train), workers, executor)

    def _spec(self, train: Callable[..., Any] | None) -> Path:
        self._train_spec = train_spec(self._store, self.id, train, self._train_spec)
        return self._train_spec

    def stop(self) -> None:
        """No new runs; running ones finish, then the sweep is finished."""
        self._store.update_sweep(
            self.id,
            only_from=[SweepState.RUNNING, SweepState.PAUSED],
            state=SweepState.STOPPING,
            message="stopped by the user",
            event="stopping",
        )
        self._store.drop_pending(self.id)
        self._wake()

    def cancel(self) -> None:
        """No new runs; running ones are killed (state ``killed``)."""
        self._store.update_sweep(
            self.id,
            only_from=[*SWEEP_ACTIVE, SweepState.PENDING],
            state=SweepState.CANCELLED,
            message="cancelled by the user",
            event="cancelled",
        )
        running = self._store.running_ids(self.id)
        self._store.end_runs(self.id, running, RunState.KILLED, {r: "cancelled" for r in running})
        self._store.drop_pending(self.id)
        self._wake()

    def retry_failed(
        self,
        executor: Any = None,
        train: Callable[..., Any] | None = None,
        workers: int | None = None,
    ) -> list[str]:
        """Queue the configs of failed and crashed runs again as new runs; returns their ids.

        On a finished sweep a controller starts again here, with ``train`` (the fixed function)
        and ``workers`` when given, as ``resume`` takes them. Its agents go to ``executor`` (a
        ``distributed.Client``), else to the Dask client this process last ran the sweep's
        agents on, else where ``resume`` would put them (the queue's client, local processes).
        """
        if executor is not None and self.state != SweepState.FINISHED:
            raise SweepStateError(
                f"sweep {self.id} is {self.state}: its agents stay where they are; executor="
                " only applies to a finished sweep, which retry_failed starts again"
            )
        runs = self._store.runs(self.id)
        replaced = {r.requeued_from for r in runs if r.requeued_from}
        failed = (RunState.FAILED, RunState.CRASHED)
        again = [r for r in runs if r.state in failed and r.id not in replaced]
        ids = self._store.add_runs(self.id, [r.config for r in again], [r.id for r in again])
        if ids and self.state == SweepState.FINISHED:
            controller = self._controller()
            if controller is not None:
                controller.join()  # it is leaving: the sweep was over
            if self._store.lease_owner(self.id) is None:
                self._take_over(train, workers, executor or self._last_client())
        return ids

    def _last_client(self) -> Any:
        """The Dask client this process last ran the sweep's agents on, while it is open
        (None: local agents, none yet, or a client closed since)."""
        last = last_controller(self.id)
        executing = last.executor if last is not None else None
        if isinstance(executing, DaskExecutor) and executing.client.status == "running":
            return executing.client
        return None

    def wait(self, timeout: float | None = None) -> str:
        """Block until the sweep is finished, cancelled or paused; returns its state.

        Returns early (with the current state) after ``timeout`` seconds, or when no
        controller runs the sweep any more. Raises ``StoreFault`` when the controller stopped
        on a store that takes no writes (a full disk...) and cannot even record that it paused.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        check_lease = time.monotonic() + 1.0
        while True:
            state = self.state
            controller = self._controller()
            fault = controller.fault if controller is not None else None
            if controller is not None and fault is not None and not controller.recorded():
                # It stopped, and the store refuses to record even that (disk full...).
                raise StoreFault(f"sweep {self.id} {fault[0]}")
            if state in SWEEP_ENDED or state == SweepState.PAUSED:
                if controller is not None and (state in SWEEP_ENDED or controller.error):
                    # It is leaving: once joined, resume() takes the sweep over at once.
                    controller.join(None if deadline is None else deadline - time.monotonic())
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
        sources = self._row().warm_start
        if not sources:
            return None
        from nbsweep._warm_start import load

        return load(self._store, sources, self.config)

    def importance(self) -> pd.DataFrame:
        """W&B's parameter importance of ``metric.name`` over the runs so far."""
        from nbsweep.analysis import importance

        metric = self.config.metric
        if metric is None:
            raise SweepError(f"sweep {self.id} has no metric.name: importance needs a metric")
        return importance(self.runs, metric.name, metric.goal)

    def refine(self, top: float = 0.2, margin: float = 0.1) -> SweepConfig:
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

        return confirm(self, seeds, train, workers, timeout, start=sweep)


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
    fresh_process: bool = False,
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

    ``fresh_process=True`` runs each run in a new agent process, for code that leaks memory
    (GPU or host) from one run to the next; it costs a process start (and imports) per run.
    """
    store_, sweep_id, spec = start(
        config,
        train,
        workers,
        store,
        name,
        gpus_per_run,
        seed,
        nvml,
        executor,
        warm_start,
        fresh_process,
    )
    handle = Sweep(store_, sweep_id)
    handle._train_spec = spec
    return handle


def load(sweep_id: str, store: StoreArg = None) -> Sweep:
    """Reopen a sweep from the store (after a kernel restart, or from another notebook)."""
    try:
        opened = open_store(store, create=False)
    except StoreError as exc:
        raise StoreError(f"sweep {sweep_id!r}: {exc}") from None
    if opened.sweep(sweep_id) is None:
        known = ", ".join(s.id for s in opened.sweeps()[-5:]) or "none"
        raise SweepNotFoundError(
            f"sweep {sweep_id!r} is not in store {opened.where} (latest sweeps: {known})"
        )
    return Sweep(opened, sweep_id)


def controller_text(row: StoredSweep, leases: Mapping[str, str]) -> str:
    """``alive``, or for a live sweep nobody controls: ``no controller: nbsweep resume ID``."""
    if row.state in SWEEP_ENDED:
        return ""
    if controller_of(row.id) is not None or row.id in leases:
        return "alive"
    return f"no controller: nbsweep resume {row.id}"


def list_sweeps(store: StoreArg = None) -> pd.DataFrame:
    """Every sweep in the store with its state, whether a controller runs it, and run counts.

    ``controller`` is ``alive`` while a process runs the sweep, ``no controller: nbsweep
    resume ID``
    for an unfinished sweep whose controller died (its ``state`` is where it stopped), and
    empty for an ended one.
    """
    columns = [
        "sweep_id", "name", "method", "state", "controller", "created_at", "runs", "running",
    ]  # fmt: skip
    if not isinstance(store, Store) and missing(store):
        return pd.DataFrame(columns=columns)  # no store, no sweeps; and none is made
    records = []
    opened = open_store(store)
    leases = opened.live_lease_owners()
    for s in opened.sweeps():
        counts = s.run_counts
        records.append(
            {
                "sweep_id": s.id,
                "name": s.name,
                "method": s.method,
                "state": s.state,
                "controller": controller_text(s, leases),
                "created_at": utc_time(s.created_at),
                "runs": sum(counts.values()),
                "running": counts.get(RunState.RUNNING, 0),
                "finished": counts.get(RunState.FINISHED, 0),
                "message": s.message,
            }
        )
    return pd.DataFrame.from_records(records, columns=None if records else columns)


__all__ = ["Run", "Sweep", "list_sweeps", "load", "sweep"]
