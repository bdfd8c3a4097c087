"""``wandb.sweep`` and ``wandb.agent`` on nbsweep: create a sweep, then run it in agents.

``wandb.sweep`` only creates the sweep (state ``pending``), as W&B's does; ``wandb.agent``
starts its controller here with agent processes, shows the dashboard in a notebook, and
blocks until ``count`` runs are done or the sweep ends. ``count`` is shared out among the
agents (W&B gives each agent its own count), so the call runs exactly ``count`` runs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from nbsweep._errors import SweepError, SweepNotFoundError, SweepStateError
from nbsweep._start import controller_of, crash_orphans, slots, start_controller
from nbsweep._states import RUN_ENDED, SWEEP_ENDED, SweepState
from nbsweep._sweep import Sweep
from nbsweep.agents.__main__ import COUNT_ENV
from nbsweep.agents._shipping import resolve, ship
from nbsweep.config import validate
from nbsweep.schedulers import make_scheduler
from nbsweep.store import Store, new_id, open_store
from nbsweep.wandb._sdk import NoConfig, note

StoreArg = str | os.PathLike[str] | Store | None


def sweep(
    sweep: Mapping[str, Any] | str | os.PathLike[str],
    entity: str | None = None,
    project: str | None = None,
    prior_runs: list[str] | None = None,
    *,
    store: StoreArg = None,
) -> str:
    """W&B's ``wandb.sweep``: create the sweep (not started); returns its id.

    ``sweep`` is a config dict, YAML text or a YAML file. ``store`` (nbsweep's) is where it
    is kept (default ``$NBSWEEP_STORE``, else ``./.nbsweep/nbsweep.db``).
    """
    for key, value in (("entity", entity), ("project", project), ("prior_runs", prior_runs)):
        if value is not None:
            note(f"sweep:{key}", f"wandb.sweep({key}=...) has no effect here")
    config = validate(sweep)
    make_scheduler(config)  # its errors (an unknown scheduler) show here, not in agent()
    opened = open_store(store)
    sweep_id = new_id()
    opened.create_sweep(
        sweep_id, config.name or sweep_id, config.method, config, None, None, SweepState.PENDING
    )
    return sweep_id


def agent(
    sweep_id: str,
    function: Callable[[], Any] | None = None,
    entity: str | None = None,
    project: str | None = None,
    count: int | None = None,
    *,
    workers: int | None = None,
    store: StoreArg = None,
) -> None:
    """W&B's ``wandb.agent``: run the sweep's runs in agent processes until ``count`` are done
    or the sweep ends.

    ``function`` is called with no arguments, as W&B calls it; without it, the sweep's
    ``program`` runs. ``workers`` (nbsweep's) is the number of agents: one per GPU by
    default (one per core without GPUs), never more than ``count``.
    """
    for key, value in (("entity", entity), ("project", project)):
        if value is not None:
            note(f"agent:{key}", f"wandb.agent({key}=...) has no effect here")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise SweepError(f"count={count!r} must be a positive number of runs")
    opened = open_store(store, create=False)
    row = opened.sweep(sweep_id)
    if row is None:
        raise SweepNotFoundError(f"sweep {sweep_id!r} is not in store {opened.where}")
    if row.state in SWEEP_ENDED:
        return
    if opened.lease_owner(sweep_id) is not None:
        raise SweepStateError(
            f"sweep {sweep_id} is already run by another process; its runs go on there"
            " (add agents with nbsweep.agent(), or watch it with nbsweep.load())"
        )
    train = _train_function(row.config, row.train_ref, function)
    planned = slots(row.config, workers, row.gpus_per_run, None)
    if count is not None:
        planned = [
            dataclasses.replace(slot, env={**slot.env, COUNT_ENV: str(share)})
            for slot, share in zip(planned, _shares(count, len(planned)), strict=False)
        ]
    spec = ship(train, opened.root / "sweeps" / sweep_id)
    crash_orphans(opened, sweep_id)
    ended_before = {r.id for r in opened.runs(sweep_id) if r.state in RUN_ENDED}
    opened.update_sweep(
        sweep_id,
        only_from=[SweepState.PENDING, SweepState.RUNNING, SweepState.PAUSED],
        state=SweepState.RUNNING,
        message="",
        event=f"wandb.agent: {len(planned)} agents"
        + (f" for {count} runs" if count is not None else ""),
    )
    start_controller(opened, sweep_id, spec, planned)
    controller = controller_of(sweep_id)
    assert controller is not None
    view = _show(Sweep(opened, sweep_id))
    spawned = False  # no agent is alive before the controller's first spawn: not a reason to stop
    try:
        while controller.is_alive():
            state = opened.sweep(sweep_id).state  # type: ignore[union-attr]
            if state in SWEEP_ENDED or state == SweepState.PAUSED:
                break
            if count is not None:
                ended = [r for r in opened.runs(sweep_id) if r.state in RUN_ENDED]
                done = sum(r.id not in ended_before for r in ended)
                alive = controller.executor.alive()  # type: ignore[union-attr]
                spawned = spawned or alive > 0
                if done >= count or (spawned and alive == 0):
                    break
            time.sleep(0.1)
    finally:
        # Interrupted or done: the agents leave (a run cut short is queued again next time).
        controller.quit()
        controller.join()
        waits = opened.update_sweep(
            sweep_id,
            only_from=[SweepState.RUNNING],
            state=SweepState.PENDING,
            event="wandb.agent done: the sweep waits for the next agent",
        )
        if waits:
            opened.drop_pending(sweep_id)  # the next agent's controller queues runs afresh
        if view is not None:
            view.refresh(force=True)  # the cell's output ends on the final state


def _train_function(
    config: Any, train_ref: str | None, function: Callable[[], Any] | None
) -> Callable[..., Any]:
    """What the agents run: ``function`` called W&B's way, else the sweep's own."""
    if function is not None:
        if not callable(function):
            raise SweepError(f"function must be callable, not {type(function).__name__}")
        return NoConfig(function)
    if train_ref is not None:
        return resolve(train_ref)
    from nbsweep._command import script_function

    return script_function(config)


def _shares(count: int, agents: int) -> list[int]:
    """``count`` runs shared out among at most ``count`` agents, as evenly as can be."""
    agents = min(agents, count)
    return [count // agents + (i < count % agents) for i in range(agents)]


def _show(handle: Sweep) -> Any:
    """The live dashboard, shown when called in a notebook (a kernel shows widgets)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    from IPython.display import display

    from nbsweep.widgets import dashboard

    view = dashboard(handle)
    display(view)
    return view
