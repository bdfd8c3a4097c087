"""The Dask executor: the agents of a sweep as tasks on a Dask cluster.

A Dask cluster (``dask-jobqueue`` on SLURM/PBS, ``dask-kubernetes``, ``dask-cuda``'s
one-worker-per-GPU cluster, or a ``LocalCluster``) is a ready-made pool of machines.
``nbsweep.sweep(config, train, executor=client)`` starts each agent as a task asking for a
``GPU`` resource (``DaskExecutor``); the controller stays in the kernel. ``dask_agents``
adds agents to a sweep started elsewhere, one per worker (``nbsweep agent --dask``). Either
way an agent claims runs from the store and writes rows back, exactly as a local one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbsweep._errors import PlacementError, SweepError, SweepNotFoundError
from nbsweep._states import AgentState, CrashReason, RunState
from nbsweep._timing import AGENT_GRACE_S, DASK_WATCH_S
from nbsweep.agents._executor import start_agent
from nbsweep.agents._gpus import Slot, detect_gpus, visible_gpus
from nbsweep.agents._shipping import PICKLE_NAME, SPEC_NAME, _write_private
from nbsweep.store import Store, open_store, private_dir


def _agent_task(
    sweep_id: str, function: Callable[..., Any] | None, count: int | None, store: str
) -> int:
    """What runs on a Dask worker: a plain agent, against the store the sweep lives in."""
    from nbsweep.agents._agent import agent

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
    opened = open_store(store, create=False)
    if opened.sweep(sweep_id) is None:
        raise SweepNotFoundError(f"sweep {sweep_id!r} is not in store {opened.where}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise SweepError(f"count={count!r} must be a positive number of runs")
    addresses = list(workers) if workers is not None else list(client.nthreads())
    if not addresses:
        raise PlacementError(
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


# -- the executor of nbsweep.sweep(..., executor=client) ------------------------------------

# GPUs handed out to the agents running in this worker process (worker side).
_taken: set[str] = set()
_taken_lock = threading.Lock()


def dask_slots(client: Any, workers: int | None, gpus_per_run: int) -> list[Slot]:
    """One empty slot per agent the sweep starts on ``client``'s cluster.

    The GPUs are chosen on each worker when its agent starts. ``workers`` defaults to the
    workers' GPU resources divided by ``gpus_per_run`` (their threads on a cluster without
    GPU resources); an adaptive cluster with no workers yet needs ``workers=N``.
    """
    from distributed import Client

    if not isinstance(client, Client):
        raise PlacementError(
            f"executor={type(client).__name__}: pass a distributed.Client, e.g."
            " Client(SLURMCluster(...)), or leave executor out for local agents"
        )
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise PlacementError(f"workers={workers!r}: a Dask sweep needs at least one agent")
    if isinstance(gpus_per_run, bool) or not isinstance(gpus_per_run, int) or gpus_per_run < 0:
        raise PlacementError(f"gpus_per_run={gpus_per_run!r} must be a whole number of GPUs")
    if workers is None:
        found = client.scheduler_info()["workers"].values()
        gpus = sum(int(w.get("resources", {}).get("GPU", 0)) for w in found)
        workers = (
            gpus // gpus_per_run if gpus and gpus_per_run else sum(w["nthreads"] for w in found)
        )
        if not workers:
            raise PlacementError(
                "the Dask cluster has no workers yet: pass workers=N (the agents to run; an"
                " adaptive cluster starts workers for them) or scale the cluster first"
            )
    return [Slot() for _ in range(workers)]


def gpu_request(client: Any, gpus_per_run: int) -> dict[str, int] | None:
    """``{"GPU": gpus_per_run}`` when the cluster's workers advertise a ``GPU`` resource.

    A cluster with no worker yet (adaptive) is taken to be a GPU cluster: its workers must
    then be started with ``resources={"GPU": n}``, else pass ``gpus_per_run=0``.
    """
    if not gpus_per_run:
        return None
    found = list(client.scheduler_info()["workers"].values())
    if found and not any(w.get("resources", {}).get("GPU") for w in found):
        return None
    return {"GPU": gpus_per_run}


@dataclass
class DaskAgent:
    """One agent running as a Dask task: its number, its future and where it was seen."""

    agent: int
    slot: Slot
    future: Any
    pid: int | None = None
    worker: str | None = None  # the worker last seen holding the task
    why: str | None = None  # why it ended, when an exit code does not say (a lost worker)


class DaskExecutor:
    """The ``Executor`` of Dask tasks: starts one sweep's agents, notices lost workers.

    Each agent is a task asking for ``resources={"GPU": k}``; on its worker it runs
    ``python -m nbsweep.agents`` as a child process with the worker's GPUs in
    ``CUDA_VISIBLE_DEVICES``, so several agents can share a worker and a dying worker takes
    its agents along. An agent whose worker is lost is reported dead (``WORKER_LOST``): the
    controller marks its run crashed, queues it again and starts another agent.
    """

    def __init__(
        self, store: Store, sweep_id: str, client: Any, train_spec: Path, gpus_per_run: int
    ) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self.client = client
        self.train = _pack(train_spec)
        self.resources = gpu_request(client, gpus_per_run)
        self.gpus_per_run = gpus_per_run if self.resources else 0
        self.processes: dict[int, DaskAgent] = {}
        self._watched = 0.0

    def spawn(self, slot: Slot) -> DaskAgent:
        agent = self.store.add_agent(self.sweep_id, None, host="dask")
        future = self.client.submit(
            _agent_on_worker,
            self.store.url,
            self.sweep_id,
            agent,
            self.train,
            self.gpus_per_run,
            dict(slot.env),
            key=f"nbsweep-agent-{agent}-{self.sweep_id}",
            resources=self.resources,
            pure=False,
        )
        handle = self.processes[agent] = DaskAgent(agent, slot, future)
        return handle

    def reap(self) -> list[tuple[DaskAgent, int]]:
        """The agents that ended (or whose worker was lost) since the last call."""
        if time.monotonic() >= self._watched + DASK_WATCH_S:
            self._watch_workers()
        gone = []
        for agent, handle in list(self.processes.items()):
            if handle.why is None and not handle.future.done():
                continue
            del self.processes[agent]
            code = 1
            if handle.why is None:
                code, handle.why = _outcome(handle.future)
            # Dask would start a lost agent's task again elsewhere: the controller's new
            # agent takes its place instead.
            handle.future.cancel()
            handle.pid = self._pid(agent)
            gone.append((handle, code))
        return gone

    def _watch_workers(self) -> None:
        """Note where each agent's task is; an agent whose worker is gone is lost."""
        processing = self.client.processing()
        self._watched = time.monotonic()
        where = {key: worker for worker, keys in processing.items() for key in keys}
        for handle in self.processes.values():
            if handle.worker is not None and handle.worker not in processing:
                handle.why = f"{CrashReason.WORKER_LOST} ({handle.worker})"
            elif handle.future.key in where:
                handle.worker = where[handle.future.key]

    def _pid(self, agent: int) -> int | None:
        return next((a.pid for a in self.store.agents(self.sweep_id) if a.agent == agent), None)

    def alive(self) -> int:
        return len(self.processes)

    def kill(self, agent: int, why: str | None = None) -> None:
        """Kill the agent's process group on its worker (cancelling a task does not stop it)."""
        handle = self.processes.get(agent)
        if handle is None:
            return
        handle.why = handle.why or why
        handle.future.cancel()
        pid = self._pid(agent)
        if pid is not None and handle.worker is not None:
            self.client.run(_kill, pid, workers=[handle.worker], wait=False)

    def shutdown(self, grace: float = AGENT_GRACE_S) -> None:
        """Wait up to ``grace`` seconds for the agents to leave on their own, then kill them."""
        from distributed import wait

        futures = [h.future for h in self.processes.values()]
        if not futures:
            return
        try:
            wait(futures, timeout=grace)
        except TimeoutError:
            for agent in list(self.processes):
                self.kill(agent)


def _outcome(future: Any) -> tuple[int, str | None]:
    """An ended agent task's exit code, and why it ended when the code does not say."""
    if future.cancelled():
        return -signal.SIGKILL, None
    error = future.exception()
    if error is None:
        code, why = future.result()
        return code, why
    if type(error).__name__ == "KilledWorker":
        return 1, f"{CrashReason.WORKER_LOST} (Dask gave up: {error})"
    return 1, f"its Dask task failed: {type(error).__name__}: {error}"


def _kill(pid: int) -> None:
    """The agent leads its process group (``start_agent``): the processes of its runs go too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _pack(train_spec: Path) -> dict[str, Any]:
    """The shipped train function as data, so that it reaches workers on other machines."""
    spec = json.loads(train_spec.read_text())
    pickled = spec.get("pickle")
    return {"spec": spec, "pickle": (train_spec.parent / pickled).read_bytes() if pickled else None}


def _unpack(train: dict[str, Any], directory: Path) -> Path:
    """Write the train function where the agent process loads it; returns the spec file."""
    private_dir(directory)
    if train["pickle"] is not None:
        _write_private(directory / PICKLE_NAME, train["pickle"])
    _write_private(directory / SPEC_NAME, json.dumps(train["spec"]).encode())
    return directory / SPEC_NAME


def _agent_on_worker(
    url: str, sweep_id: str, agent: int, train: dict[str, Any], gpus: int, extra: dict[str, str]
) -> tuple[int, str | None]:
    """What runs on a Dask worker: one agent process, with its GPUs; returns its exit code.

    ``extra``: variables the kernel forwards to the runs (``scheduler.resource_args.env``).
    """
    from distributed import get_worker

    worker = get_worker()
    store = open_store(url, create=False)
    row = next((a for a in store.agents(sweep_id) if a.agent == agent), None)
    if row is None or row.pid is not None or row.state == AgentState.DEAD:
        # Dask started this task again after the worker running it was lost.
        why = f"{CrashReason.WORKER_LOST} (agent {agent} was started again on {worker.address})"
        running = store.running_ids(sweep_id, agent=agent)
        store.end_runs(sweep_id, running, RunState.CRASHED, {r: why for r in running})
        return 1, why
    store.update_agent(sweep_id, agent, pid=os.getpid(), host=socket.gethostname())
    chosen = _take_gpus(worker, gpus)
    try:
        env = {**os.environ, **extra}
        if gpus:
            env.update(CUDA_DEVICE_ORDER="PCI_BUS_ID", CUDA_VISIBLE_DEVICES=",".join(chosen))
        spec = _unpack(train, store.root / "sweeps" / sweep_id)
        lost = f"{CrashReason.WORKER_LOST} ({worker.address})"
        process = start_agent(store, sweep_id, agent, spec, ",".join(chosen), env, lost)
        store.update_agent(sweep_id, agent, pid=process.pid)
        code = process.wait()
        if process.stdin is not None:
            process.stdin.close()
        return code, None
    finally:
        with _taken_lock:
            _taken.difference_update(chosen)


def _take_gpus(worker: Any, count: int) -> list[str]:
    """``count`` GPUs of this worker that no other agent here holds (UUIDs, or indices).

    NVML names the worker's GPUs (within its own ``CUDA_VISIBLE_DEVICES``); without NVML the
    worker's ``GPU`` resource count does, as positions in its ``CUDA_VISIBLE_DEVICES``.
    """
    if not count:
        return []
    ids = [g.uuid for g in visible_gpus(detect_gpus())]
    if not ids:
        advertised = int(worker.state.total_resources.get("GPU", 0))
        own = [t for t in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if t.strip()]
        ids = own[:advertised] if own else [str(i) for i in range(advertised)]
    with _taken_lock:
        free = [g for g in ids if g not in _taken]
        if len(free) < count:
            raise PlacementError(
                f"Dask worker {worker.address} has {len(ids)} GPU(s), {len(free)} free;"
                f" an agent needs {count}: advertise as many GPU resources as it has GPUs"
            )
        _taken.update(free[:count])
    return free[:count]
