"""Sweep schedulers: what suggests a sweep's runs and decides which of them stop.

nbsweep's own scheduler (``method`` + ``early_terminate``) runs every sweep unless the config
names another one, as W&B Launch configs do: ``scheduler.job`` naming Optuna's scheduler job
(``wandb/sweep-jobs/job-optuna-sweep-scheduler:latest``), ``scheduler.engine: optuna``, or the
name of a scheduler registered with ``nbsweep.register_scheduler`` or declared by a package
under the entry-point group ``nbsweep.schedulers``. ``method: custom`` without a name takes
the one scheduler registered in this process.
"""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from typing import Any

from nbsweep._errors import ConfigError, SweepError
from nbsweep.config import (
    SCHEDULER_GROUP,
    SweepConfig,
    known_scheduler_names,
    register_scheduler_name,
)
from nbsweep.schedulers._base import Scheduler

__all__ = [
    "Scheduler",
    "agent_scheduler",
    "make_scheduler",
    "register_scheduler",
    "scheduler_name",
]

OWN = "nbsweep"
# W&B's names for its own scheduler: ``engine: wandb`` and the standard scheduler job.
OWN_ALIASES = ("wandb", "wandb-sweep-scheduler")

_registered: dict[str, type[Scheduler]] = {}


def register_scheduler(name: str, cls: type[Scheduler]) -> None:
    """Make ``cls`` the scheduler named ``name`` (in ``scheduler.engine`` or ``.job``).

    Registered in this process only: register it again after a kernel restart, or declare
    it as an entry point (group ``nbsweep.schedulers``) in a package.
    """
    if not (isinstance(cls, type) and issubclass(cls, Scheduler)):
        raise SweepError(
            f"register_scheduler({name!r}, ...): {cls!r} is not a subclass of"
            " nbsweep.schedulers.Scheduler"
        )
    if not isinstance(name, str) or not name or name == OWN or name in OWN_ALIASES:
        raise SweepError(f"register_scheduler: {name!r} cannot name a scheduler; pick another name")
    _registered[name] = cls
    register_scheduler_name(name)


def _declared() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=SCHEDULER_GROUP)}


def _job_name(job: str) -> str:
    """``entity/project/job-optuna-sweep-scheduler:latest`` -> ``optuna-sweep-scheduler``."""
    last = job.rsplit("/", 1)[-1].split(":", 1)[0]
    return last.removeprefix("job-")


def scheduler_name(config: SweepConfig) -> str:
    """The name of the scheduler a sweep config asks for (``nbsweep`` for the own one)."""
    engine, job = config.scheduler.engine, config.scheduler.job
    if isinstance(engine, str):
        return OWN if engine in OWN_ALIASES else engine
    if isinstance(job, str):
        name = _job_name(job)
        names = set(_registered) | set(_declared())
        if name in names:
            return name
        if name in OWN_ALIASES:
            return OWN
        # W&B's scheduler jobs are named ``<name>-sweep-scheduler``; Optuna's in any spelling.
        words = re.split(r"[^a-z0-9]+", name.lower())
        found = [n for n in names if n.lower() in words]
        if len(found) == 1:
            return found[0]
    if config.method == "custom":
        if len(_registered) == 1:
            return next(iter(_registered))
        known = ", ".join(known_scheduler_names())
        raise SweepError(
            "method: 'custom' needs a scheduler: register one with"
            " nbsweep.register_scheduler(name, cls) and name it in scheduler.engine, or use"
            f" method grid, random or bayes (schedulers known here: {known})"
        )
    return OWN


def _class_of(name: str) -> type[Scheduler] | None:
    """The scheduler class of a name, from nbsweep, this process's registry or entry points."""
    if name == OWN:
        from nbsweep.schedulers._nbsweep import NbsweepScheduler

        return NbsweepScheduler
    if name in _registered:
        return _registered[name]
    declared = _declared().get(name)
    return None if declared is None else declared.load()


def make_scheduler(config: SweepConfig, seed: int | None = None) -> Scheduler:
    """The scheduler a sweep config asks for, ready to suggest and stop."""
    name = scheduler_name(config)
    cls = _class_of(name)
    if cls is None:
        known = ", ".join(known_scheduler_names())
        raise ConfigError(
            f"scheduler: no scheduler named {name!r} here (known: {known});"
            " register it with nbsweep.register_scheduler(name, cls) in this process"
        )
    return cls(config, seed)


def agent_scheduler(config: SweepConfig, seed: int | None = None) -> Scheduler | None:
    """The scheduler an agent asks as it logs (at its ``checkpoints``), or None.

    None when it has no checkpoints, keeps its state in the controller (``in_agents``), or is
    unknown in this process: one registered only in the kernel. Declare it by entry point, or
    register it in a module the train function's module imports, to have agents ask it too.
    """
    try:
        cls = _class_of(scheduler_name(config))
    except SweepError:  # method: custom with no scheduler registered here
        return None
    if cls is None or not cls.in_agents:
        return None
    scheduler = cls(config, seed)
    return scheduler if scheduler.checkpoints else None
