"""What W&B Launch's keys mean on this machine: queues, forwarded variables, resume rules.

A Launch config sends runs to a ``queue`` that agents pull from; here a queue is a pool of
agents: this machine's GPUs unless ``register_queue`` binds the name to some of them or to a
Dask cluster. ``scheduler.num_workers`` caps the agents, ``scheduler.resource_args.env``
names variables the runs get from the kernel. Keys that only mean something to W&B's cloud
(``job``, ``docker_image``, ``resource``, ``launch``) are kept in the config and reported once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbsweep._errors import PlacementError, SweepError
from nbsweep.agents._gpus import Slot, detect_gpus, get_nvml, gpu_groups, plan_slots, visible_gpus
from nbsweep.config import SweepConfig
from nbsweep.schedulers import OWN, OWN_ALIASES, _job_name, scheduler_name


@dataclass(frozen=True)
class Queue:
    """A named pool of agents: a subset of this machine's GPUs, or a Dask client."""

    name: str
    gpus: tuple[int | str, ...] = ()
    client: Any = None


_queues: dict[str, Queue] = {}


def register_queue(
    name: str, executor: Any = None, *, gpus: Sequence[int | str] | None = None
) -> None:
    """Bind the ``queue`` name of sweep configs to a pool of agents in this process.

    ``executor``: a ``distributed.Client``; the sweep's agents run on its cluster.
    ``gpus``: GPU indices (as NVML numbers them) or UUIDs of this machine; the sweep's local
    agents use only those. A name never registered means this machine's GPUs, all of them.
    """
    if not isinstance(name, str) or not name:
        raise PlacementError(
            f"register_queue: the queue name must be a non-empty string, got {name!r}"
        )
    if (executor is None) == (gpus is None):
        raise PlacementError(
            f"register_queue({name!r}, ...): give either a Dask client or gpus=[...], not"
            f" {'both' if executor is not None else 'neither'}"
        )
    if gpus is not None:
        chosen = tuple(gpus)
        if not chosen or not all(isinstance(g, (int, str)) and g != "" for g in chosen):
            raise PlacementError(
                f"register_queue({name!r}, gpus={gpus!r}): list GPU indices or UUIDs, e.g."
                " gpus=[0, 1]"
            )
        _queues[name] = Queue(name, gpus=chosen)
        return
    from distributed import Client

    if not isinstance(executor, Client):
        raise PlacementError(
            f"register_queue({name!r}, {type(executor).__name__}): the executor must be a"
            " distributed.Client (or pass gpus=[...] for a subset of this machine's GPUs)"
        )
    _queues[name] = Queue(name, client=executor)


def queue_of(config: SweepConfig) -> Queue | None:
    """The registered queue the config's ``queue`` names (None: this machine's GPUs)."""
    return _queues.get(config.queue) if config.queue is not None else None


def queue_client(config: SweepConfig) -> Any:
    """The Dask client of the config's queue, if it was registered with one."""
    queue = queue_of(config)
    return queue.client if queue is not None else None


def forwarded_env(config: SweepConfig) -> dict[str, str]:
    """``scheduler.resource_args.env``: the named variables, with their values here."""
    return {name: os.environ[name] for name in config.scheduler.env if name in os.environ}


def forward_env(config: SweepConfig, slots: list[Slot]) -> list[Slot]:
    """The slots with the variables ``scheduler.resource_args.env`` forwards added."""
    env = forwarded_env(config)
    return [Slot(slot.gpus, {**env, **slot.env}) for slot in slots] if env else slots


def queue_groups(config: SweepConfig, gpus_per_run: int, nvml: Any) -> list[Slot]:
    """The GPU groups the sweep's agents may use: the queue's, else every one of the machine."""
    groups = gpu_groups(gpus_per_run, nvml)
    queue = queue_of(config)
    if queue is not None and queue.gpus and gpus_per_run:
        gpus = visible_gpus(detect_gpus(get_nvml(nvml)))
        wanted = set()
        for token in queue.gpus:
            match = [g.uuid for g in gpus if g.index == token or g.uuid == token]
            if not match:
                seen = ", ".join(f"{g.index} ({g.uuid})" for g in gpus) or "none"
                raise PlacementError(
                    f"queue {queue.name!r} names GPU {token!r}, which is not visible here"
                    f" (GPUs: {seen}); register the queue again with gpus=[...] that exist"
                )
            wanted.update(match)
        groups = [g for g in groups if all(gpu.uuid in wanted for gpu in g.gpus)]
        if not groups:
            raise PlacementError(
                f"queue {queue.name!r} holds no group of gpus_per_run={gpus_per_run} GPUs"
                " (groups are consecutive GPUs); lower gpus_per_run or register more GPUs"
            )
    return forward_env(config, groups)


def plan(config: SweepConfig, workers: int | None, gpus_per_run: int, nvml: Any) -> list[Slot]:
    """The local agents' slots: on the queue's GPUs (all by default), variables forwarded."""
    queue = queue_of(config)
    if queue is None or not queue.gpus or not gpus_per_run:
        return forward_env(config, plan_slots(workers, gpus_per_run, nvml))
    groups = queue_groups(config, gpus_per_run, nvml)
    count = len(groups) if workers is None else workers
    return [groups[i % len(groups)] for i in range(count)]


# -- reported once, when the sweep starts -----------------------------------------------------


def launch_note(config: SweepConfig, scheduler: str) -> str | None:
    """Which Launch keys of the config have no effect here, and where its runs go."""
    idle = list(config.idle_launch_keys)
    job = config.scheduler.job
    if job is not None and scheduler == OWN and _job_name(job) not in OWN_ALIASES:
        idle.append(f"scheduler.job {job!r} (nbsweep's own scheduler runs the sweep here)")
    parts = []
    if idle:
        parts.append(
            "W&B Launch keys kept in the config, with no effect on this machine (no W&B"
            " cloud, no containers; the train function or program is the job): " + ", ".join(idle)
        )
    queue = config.queue
    if queue is not None and queue not in _queues:
        parts.append(
            f"queue {queue!r} is not registered here: its runs go to this machine's agents"
            " (nbsweep.register_queue binds a queue name to GPUs or a Dask cluster)"
        )
    missing = [name for name in config.scheduler.env if name not in os.environ]
    if missing:
        parts.append(
            "scheduler.resource_args.env names variables not set in this process, so runs"
            f" do not get them: {', '.join(missing)}"
        )
    return "; ".join(parts) or None


# -- resume with a changed config -------------------------------------------------------------

# What defines the search and the code it runs: W&B refuses to change these on resume.
FIXED = ("method", "parameters", "metric", "metrics", "early_terminate", "seed", "job")
FIXED += ("program", "command")


def resume_config(
    old: SweepConfig, given: Mapping[str, Any] | str | os.PathLike[str]
) -> SweepConfig:
    """The sweep's config after ``resume(config=given)``, validated; refuses a new search.

    ``given`` replaces the keys it has (a whole config file, or only the keys to change);
    its ``scheduler`` block updates the sweep's key by key.
    """
    new = old.updated(given)
    differ = old.changed_keys(new)
    changed = [key for key in FIXED if key in differ]
    if changed:
        raise SweepError(
            f"resume cannot change {', '.join(changed)}: the search and its job are fixed once"
            " a sweep starts (as in W&B); start a new sweep for them (sweep.refine() makes"
            " a narrower config from this one)"
        )
    before, after = scheduler_name(old), scheduler_name(new)
    if before != after:
        raise SweepError(
            f"scheduler: resume cannot switch the scheduler ({before} -> {after}); start a new"
            " sweep with it"
        )
    return new
