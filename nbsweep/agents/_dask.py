"""The Dask executor: one nbsweep agent on each worker of a Dask cluster.

A Dask cluster (``dask-jobqueue`` on SLURM/PBS, ``dask-cuda``'s one-worker-per-GPU cluster,
Kubernetes, or a ``LocalCluster``) is a ready-made pool of machines. Each agent is one
long-running task that executes ``nbsweep.agent`` there: it claims runs from the store, runs
the train function (or the config's ``program``) and writes rows back, exactly as a
``nbsweep agent`` started by hand. The controller stays where the sweep was started.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from nbsweep._errors import SweepError
from nbsweep.store import Store, open_store


def _agent_task(
    sweep_id: str, function: Callable[..., Any] | None, count: int | None, store: str
) -> int:
    """What runs on a Dask worker: a plain agent, against the store the sweep lives in."""
    from nbsweep.agents import agent

    return agent(sweep_id, function, count=count, store=store)


def dask_agents(
    sweep_id: str,
    client: Any,
    function: Callable[..., Any] | None = None,
    *,
    count: int | None = None,
    store: str | os.PathLike[str] | Store | None = None,
    workers: Sequence[str] | None = None,
) -> list[Any]:
    """Start one agent per Dask worker (or per address in ``workers``); returns their futures.

    ``client`` is a ``distributed.Client``. ``function`` travels to the workers by Dask's own
    pickling (by value when defined in a notebook); leave it out for a ``program:`` sweep.
    Each future's result is the number of runs that agent executed. The store must be one
    every worker reaches: PostgreSQL for a real cluster, an SQLite file for a local one.

    The agent owns its worker process while it runs (the current run is per process), so it
    is pinned to one worker address and no two agents share a worker.
    """
    opened = open_store(store)
    if opened.sweep(sweep_id) is None:
        raise SweepError(f"sweep {sweep_id!r} is not in store {opened.url}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise SweepError(f"count={count!r} must be a positive number of runs")
    addresses = list(workers) if workers is not None else list(client.nthreads())
    if not addresses:
        raise SweepError(
            "the Dask cluster has no workers yet: scale it up first (e.g. cluster.scale(4))"
            " or wait for them with client.wait_for_workers(n)"
        )
    return [
        client.submit(
            _agent_task,
            sweep_id,
            function,
            count,
            opened.url,
            key=f"nbsweep-agent-{sweep_id}-{i}",
            workers=[address],
            allow_other_workers=False,
            pure=False,
        )
        for i, address in enumerate(addresses)
    ]
