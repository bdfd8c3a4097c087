"""``nbsweep.agent``: run trials of a sweep in this process, with a controller if none runs.

Above the controller in the layers (it may start one), as is the Dask module that runs it on
workers; the rest of ``agents`` sits below the controller, which drives it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from nbsweep._errors import SweepError, SweepNotFoundError
from nbsweep.agents._loop import Agent
from nbsweep.store import Store, open_store


def agent(
    sweep_id: str,
    function: Callable[..., Any] | None = None,
    count: int | None = None,
    store: str | os.PathLike[str] | Store | None = None,
) -> int:
    """Run trials of a sweep in this process, as ``wandb.agent`` does; returns runs executed.

    Stops after ``count`` runs, or when the sweep ends. When no controller runs the sweep,
    this process runs one for as long as the agent works. Without ``function`` it runs the
    sweep's importable train function, else the config's ``program``.
    """
    from nbsweep.controller import Controller

    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise SweepError(f"count={count!r} must be a positive number of runs")
    opened = open_store(store, create=False)
    row = opened.sweep(sweep_id)
    if row is None:
        raise SweepNotFoundError(f"sweep {sweep_id!r} is not in store {opened.where}")
    if function is None:
        # The importable train function the sweep was started with, else its program.
        from nbsweep._command import script_function
        from nbsweep.agents._shipping import resolve

        function = resolve(row.train_ref) if row.train_ref else script_function(row.config)
    controller = None
    if opened.lease_owner(sweep_id) is None:
        controller = Controller(opened, sweep_id)
        if controller.acquire() is None:
            controller.start()
        else:
            controller = None
    number = opened.add_agent(sweep_id, os.getpid())
    try:
        return Agent(opened, sweep_id, function, number, count=count, redirect=False).run()
    finally:
        if controller is not None:
            controller.quit()
            controller.join()
