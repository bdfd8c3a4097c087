"""Starting a sweep's controller in this process: a new sweep, or one taken over.

``nbsweep.sweep`` creates the sweep and starts its controller here; ``Sweep.resume`` and
``Sweep.retry_failed`` take over a sweep whose controller has ended. This module keeps the
controllers running in this process, so that the ``Sweep`` handle (``_sweep``, above it)
steers them and never has to be imported from here.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nbsweep._errors import ShippingError, SweepError, SweepNotFoundError, SweepStateError
from nbsweep._states import SWEEP_ACTIVE, CrashReason, RunState, SweepState
from nbsweep.agents._dask import DaskExecutor, dask_slots
from nbsweep.agents._local import LocalExecutor
from nbsweep.agents._shipping import reference, ship
from nbsweep.config import ConfigWarning, SweepConfig, validate
from nbsweep.controller import Controller
from nbsweep.schedulers import Scheduler, make_scheduler, scheduler_name
from nbsweep.schedulers._launch import forward_env, launch_note, plan, queue_client, queue_groups
from nbsweep.store import Store, StoredSweep, new_id, open_store, owner_alive

StoreArg = str | os.PathLike[str] | Store | None

# Controllers running in this process, so that load() of the same sweep can steer them.
_controllers: dict[str, Controller] = {}
_controllers_lock = threading.Lock()


def controller_of(sweep_id: str) -> Controller | None:
    """The live controller of the sweep in this process, if any."""
    with _controllers_lock:
        found = _controllers.get(sweep_id)
    return found if found is not None and found.is_alive() else None


def last_controller(sweep_id: str) -> Controller | None:
    """The controller this process last ran the sweep with, alive or not."""
    with _controllers_lock:
        return _controllers.get(sweep_id)


def _row(store: Store, sweep_id: str) -> StoredSweep:
    row = store.sweep(sweep_id)
    if row is None:
        raise SweepNotFoundError(f"sweep {sweep_id} is no longer in store {store.where}")
    return row


def slots(
    config: SweepConfig,
    workers: int | None,
    gpus_per_run: int,
    nvml: Any,
    client: Any = None,
) -> list[Any]:
    if client is not None:
        slots = forward_env(config, dask_slots(client, workers, gpus_per_run))
    else:
        slots = plan(config, workers, gpus_per_run, nvml)
    cap = config.scheduler.num_workers
    return slots[:cap] if cap is not None else slots


def start(
    config: Mapping[str, Any] | str | os.PathLike[str],
    train: Callable[..., Any] | None,
    workers: int | None,
    store: StoreArg,
    name: str | None,
    gpus_per_run: int,
    seed: int | None,
    nvml: Any,
    executor: Any,
    warm_start: Any,
    fresh_process: bool = False,
) -> tuple[Store, str, Path]:
    """Create the sweep and start its controller here (``nbsweep.sweep``, whose caller its
    warnings point at); returns the store, the sweep id and the shipped train function."""
    from nbsweep._command import script_function

    normalised = validate(config)
    if train is None:
        # A ``program:`` sweep runs its script per run, as ``wandb agent`` does.
        train = script_function(normalised)
    # Built here so that its errors (an unknown scheduler, Optuna settings) show in the cell;
    # the controller then uses it.
    scheduler = make_scheduler(normalised, seed=seed)
    if executor is None:
        executor = queue_client(normalised)  # a queue registered with a Dask cluster
    planned = slots(normalised, workers, gpus_per_run, nvml, executor)
    opened = open_store(store)
    sources = warm_sources(warm_start, normalised, opened)
    sweep_id = new_id()
    spec = ship(train, opened.root / "sweeps" / sweep_id)
    chosen_seed = seed if seed is not None else normalised.seed
    opened.create_sweep(
        sweep_id,
        name or normalised.name or sweep_id,
        normalised.method,
        normalised,
        reference(train),
        chosen_seed,
        SweepState.RUNNING,
        gpus_per_run,
        warm_start=sources,
        fresh_process=bool(fresh_process),
    )
    note = launch_note(normalised, scheduler_name(normalised))
    if note is not None:
        opened.add_event(sweep_id, "launch", note)
        warnings.warn(ConfigWarning(note), stacklevel=3)
    groups = queue_groups(normalised, gpus_per_run, nvml) if executor is None else []
    start_controller(opened, sweep_id, spec, planned, executor, groups, scheduler)
    if workers == 0:
        warnings.warn(
            f"workers=0: no agent runs sweep {sweep_id} until one is started:"
            f" nbsweep.agent({sweep_id!r}) in this or another process, or"
            f" `nbsweep agent {sweep_id}` in a terminal",
            stacklevel=3,
        )
    return opened, sweep_id, spec


def warm_sources(warm_start: Any, config: SweepConfig, store: Store) -> list[str]:
    """The sweeps to warm-start from, checked; warns when some of their runs do not fit."""
    if warm_start is None:
        return []
    if config.method != "bayes":
        raise SweepError(
            f"warm_start: method {config.method!r} does not learn from earlier runs;"
            " use method: bayes, or leave warm_start out"
        )
    from nbsweep._warm_start import load, source_ids

    sources = source_ids(warm_start, store)
    warm = load(store, sources, config)
    if warm.ignored or not warm.used:
        warnings.warn(warm.note, stacklevel=4)
    return sources


def take_over(
    store: Store,
    sweep_id: str,
    spec: Callable[[], Path],
    workers: int | None,
    executor: Any = None,
) -> None:
    """Become the sweep's controller in this process, with new agents: on ``executor``
    (a Dask client), else on the queue's Dask client, else local processes. ``spec`` ships
    the train function, once the agents are planned."""
    row = _row(store, sweep_id)
    gpus, config = row.gpus_per_run, row.config
    client = executor if executor is not None else queue_client(config)
    # Planned first: a wrong executor or workers= leaves the sweep as it was.
    planned = slots(config, workers, gpus, None, client)
    groups = queue_groups(config, gpus, None) if client is None else []
    shipped = spec()
    ended = crash_orphans(store, sweep_id)
    # The new controller queues the cut runs again (and any its agents still report).
    store.update_sweep(
        sweep_id,
        only_from=[*SWEEP_ACTIVE, SweepState.FINISHED, SweepState.PENDING],
        state=SweepState.RUNNING,
        message="",
        event=(
            f"resumed here; {ended} runs cut short by the end of the last controller stay"
            " crashed, and their configs are queued again as new runs"
            if ended
            else "resumed here"
        ),
    )
    start_controller(store, sweep_id, shipped, planned, client, gpu_groups=groups)


def train_spec(
    store: Store, sweep_id: str, train: Callable[..., Any] | None, shipped: Path | None
) -> Path:
    """The shipped train function for new agents: ``train`` shipped now, else the one
    ``shipped`` before, else the one the sweep was started with, by reference."""
    directory = store.root / "sweeps" / sweep_id
    if train is not None:
        return ship(train, directory)
    if shipped is not None:
        return shipped
    ref = _row(store, sweep_id).train_ref
    if ref is None:
        raise ShippingError(
            f"sweep {sweep_id}: its train function was defined in a notebook or script;"
            " pass it again: sweep.resume(train=...)"
        )
    from nbsweep.agents._shipping import resolve

    return ship(resolve(ref), directory)


def crash_orphans(store: Store, sweep_id: str) -> int:
    """Mark crashed the running runs whose agent process on this host is gone."""
    agents = {a.agent: a for a in store.agents(sweep_id)}
    orphans = []
    for run_id in store.running_ids(sweep_id):
        run = store.run(run_id)
        agent = agents.get(run.agent) if run is not None else None
        owner = f"{agent.host}:{agent.pid}:" if agent and agent.pid else None
        if owner is None or not owner_alive(owner):
            orphans.append(run_id)
    why = {r: CrashReason.CONTROLLER_DIED for r in orphans}
    store.end_runs(sweep_id, orphans, RunState.CRASHED, why)
    return len(orphans)


def start_controller(
    store: Store,
    sweep_id: str,
    spec: Path,
    slots: list[Any],
    client: Any = None,
    gpu_groups: list[Any] = (),
    scheduler: Scheduler | None = None,
) -> None:
    """Start the controller here; ``gpu_groups``: the local GPUs its agents share with
    the other sweeps of the store (see ``agents._pool``); ``scheduler``: the one ``start``
    built to check the config."""
    executor: LocalExecutor | DaskExecutor | None = None
    if slots and client is not None:
        gpus = _row(store, sweep_id).gpus_per_run
        executor = DaskExecutor(store, sweep_id, client, spec, gpus)
    elif slots:
        executor = LocalExecutor(store, sweep_id, spec)
    groups = list(gpu_groups) if isinstance(executor, LocalExecutor) else []
    controller = Controller(store, sweep_id, executor, slots, groups, scheduler)
    holder = controller.acquire()
    if holder is not None:
        raise SweepStateError(
            f"sweep {sweep_id} is already run by controller {holder}; watch it with"
            " nbsweep.load() or add agents with nbsweep.agent()"
        )
    with _controllers_lock:
        _controllers[sweep_id] = controller
    controller.start()
