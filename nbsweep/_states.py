"""Run, sweep and agent states, and why a run crashed: defined here once.

The values are W&B's words. They are stored in the database and shown to users, so each
member is its plain string: it compares equal to it, hashes like it, and formats as it
(``f"{RunState.RUNNING}"`` is ``running``), and drivers store it as that string.
"""

from __future__ import annotations

import signal
from enum import Enum


class _Words(str, Enum):
    """A ``str`` enum that prints as its value on every Python (``enum.StrEnum`` is 3.11+)."""

    __str__ = str.__str__
    __format__ = str.__format__


class RunState(_Words):
    """W&B's run states: ``stopped`` is an early-terminated run, ``killed`` a cancelled one."""

    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CRASHED = "crashed"
    STOPPED = "stopped"
    KILLED = "killed"


RUN_ALIVE = frozenset({RunState.PENDING, RunState.RUNNING})
RUN_ENDED = frozenset(RunState) - RUN_ALIVE


class SweepState(_Words):
    """W&B's sweep states. ``stopping``: no new runs; the running ones finish, then
    ``finished``."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    FINISHED = "finished"
    CANCELLED = "cancelled"


# A controller keeps working on an active sweep; a live one may still run; an ended one not.
SWEEP_ACTIVE = frozenset({SweepState.RUNNING, SweepState.PAUSED, SweepState.STOPPING})
SWEEP_LIVE = SWEEP_ACTIVE | {SweepState.PENDING}
SWEEP_ENDED = frozenset({SweepState.FINISHED, SweepState.CANCELLED})


class AgentState(_Words):
    """An agent's row: waiting for a run, running one, leaving after its run, or gone."""

    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"
    DEAD = "dead"


class CrashReason(_Words):
    """Why a run crashed when its machine, not its train function, failed.

    Each starts the run's error (a detail may follow); the controller queues such runs again.
    """

    CONTROLLER_DIED = "controller process died"  # the kernel or script running the sweep
    AGENT_SILENT = "no heartbeat from its agent"  # gone from another host, or hung here
    WORKER_LOST = "Dask worker lost"  # the Dask worker the agent ran on


def cut_by_machine(error: str | None) -> bool:
    """Whether a crashed run's error names a lost machine, so the run is queued again.

    A lost Dask worker is named after the agent's own words (``agent 3 (pid 9) died: Dask
    worker lost (tcp://...)``), the others at the start.
    """
    error = error or ""
    return error.startswith((CrashReason.CONTROLLER_DIED, CrashReason.AGENT_SILENT)) or (
        CrashReason.WORKER_LOST in error
    )


def describe_exit(returncode: int) -> str:
    """How an agent process ended, as a user reads it: ``exit code 3``, ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"
