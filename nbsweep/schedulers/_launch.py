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

from nbsweep._errors import SweepError
from nbsweep.agents._gpus import Slot, detect_gpus, get_nvml, gpu_groups, plan_slots, visible_gpus
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
        raise SweepError(f"register_queue: the queue name must be a non-empty string, got {name!r}")
    if (executor is None) == (gpus is None):
        raise SweepError(
            f"register_queue({name!r}, ...): give either a Dask client or gpus=[...], not"
            f" {'both' if executor is not None else 'neither'}"
        )
    if gpus is not None:
        chosen = tuple(gpus)
        if not chosen or not all(isinstance(g, (int, str)) and g != "" for g in chosen):
            raise SweepError(
                f"register_queue({name!r}, gpus={gpus!r}): list GPU indices or UUIDs, e.g."
                " gpus=[0, 1]"
            )
        _queues[name] = Queue(name, gpus=chosen)
        return
    from distributed import Client

    if not isinstance(executor, Client):
        raise SweepError(
            f"register_queue({name!r}, {type(executor).__name__}): the executor must be a"
            " distributed.Client (or pass gpus=[...] for a subset of this machine's GPUs)"
        )
    _queues[name] = Queue(name, client=executor)


def queue_of(config: Mapping[str, Any]) -> Queue | None:
    """The registered queue the config's ``queue`` names (None: this machine's GPUs)."""
    name = config.get("queue")
    return _queues.get(name) if isinstance(name, str) else None


def queue_client(config: Mapping[str, Any]) -> Any:
    """The Dask client of the config's queue, if it was registered with one."""
    queue = queue_of(config)
    return queue.client if queue is not None else None


def forwarded_env(config: Mapping[str, Any]) -> dict[str, str]:
    """``scheduler.resource_args.env``: the named variables, with their values here."""
    names = ((config.get("scheduler") or {}).get("resource_args") or {}).get("env") or []
    return {name: os.environ[name] for name in names if name in os.environ}


def forward_env(config: Mapping[str, Any], slots: list[Slot]) -> list[Slot]:
    """The slots with the variables ``scheduler.resource_args.env`` forwards added."""
    env = forwarded_env(config)
    return [Slot(slot.gpus, {**env, **slot.env}) for slot in slots] if env else slots


def queue_groups(config: Mapping[str, Any], gpus_per_run: int, nvml: Any) -> list[Slot]:
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
                raise SweepError(
                    f"queue {queue.name!r} names GPU {token!r}, which is not visible here"
                    f" (GPUs: {seen}); register the queue again with gpus=[...] that exist"
                )
            wanted.update(match)
        groups = [g for g in groups if all(gpu.uuid in wanted for gpu in g.gpus)]
        if not groups:
            raise SweepError(
                f"queue {queue.name!r} holds no group of gpus_per_run={gpus_per_run} GPUs"
                " (groups are consecutive GPUs); lower gpus_per_run or register more GPUs"
            )
    return forward_env(config, groups)


def plan(
    config: Mapping[str, Any], workers: int | None, gpus_per_run: int, nvml: Any
) -> list[Slot]:
    """The local agents' slots: on the queue's GPUs (all by default), variables forwarded."""
    queue = queue_of(config)
    if queue is None or not queue.gpus or not gpus_per_run:
        return forward_env(config, plan_slots(workers, gpus_per_run, nvml))
    groups = queue_groups(config, gpus_per_run, nvml)
    count = len(groups) if workers is None else workers
    return [groups[i % len(groups)] for i in range(count)]


# -- reported once, when the sweep starts -----------------------------------------------------


def launch_note(config: Mapping[str, Any], scheduler: str) -> str | None:
    """Which Launch keys of the config have no effect here, and where its runs go."""
    sched = config.get("scheduler") or {}
    idle = [f"{key} {config[key]!r}" for key in ("job", "image_uri") if key in config]
    if "launch" in config:
        idle.append("launch")
    idle += [
        f"scheduler.{key} {sched[key]!r}" for key in ("docker_image", "resource") if key in sched
    ]
    other = [k for k in sched.get("resource_args") or {} if k != "env"]
    idle += [f"scheduler.resource_args.{key}" for key in other]
    job = sched.get("job")
    if isinstance(job, str) and scheduler == OWN and _job_name(job) not in OWN_ALIASES:
        idle.append(f"scheduler.job {job!r} (nbsweep's own scheduler runs the sweep here)")
    parts = []
    if idle:
        parts.append(
            "W&B Launch keys kept in the config, with no effect on this machine (no W&B"
            " cloud, no containers; the train function or program is the job): " + ", ".join(idle)
        )
    queue = config.get("queue")
    if isinstance(queue, str) and queue not in _queues:
        parts.append(
            f"queue {queue!r} is not registered here: its runs go to this machine's agents"
            " (nbsweep.register_queue binds a queue name to GPUs or a Dask cluster)"
        )
    names = ((sched.get("resource_args") or {}).get("env")) or []
    missing = [name for name in names if name not in os.environ]
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
    old: Mapping[str, Any], given: Mapping[str, Any] | str | os.PathLike[str]
) -> dict[str, Any]:
    """The sweep's config after ``resume(config=given)``, validated; refuses a new search.

    ``given`` replaces the keys it has (a whole config file, or only the keys to change);
    its ``scheduler`` block updates the sweep's key by key.
    """
    from nbsweep.config import validate
    from nbsweep.config._validate import _to_mapping

    changes = dict(_to_mapping(given))
    merged = {**old, **changes}
    if isinstance(changes.get("scheduler"), Mapping) and isinstance(old.get("scheduler"), Mapping):
        merged["scheduler"] = {**old["scheduler"], **changes["scheduler"]}
    new = validate(merged)
    changed = [key for key in FIXED if new.get(key) != old.get(key)]
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
