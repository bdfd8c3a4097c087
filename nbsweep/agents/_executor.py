"""What the controller asks of an executor, and the agent process every executor starts.

An executor starts the agents of one sweep (local processes, or Dask tasks that start the same
process on a worker), reports the ones that ended, and kills them on cancel. The controller
knows only this protocol; ``LocalExecutor`` and ``DaskExecutor`` implement it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from nbsweep._timing import AGENT_GRACE_S
from nbsweep.agents._gpus import Slot
from nbsweep.store import ENV_VAR, Store, private_dir


class AgentHandle(Protocol):
    """One agent an executor started: its number in the sweep and the slot it runs on."""

    agent: int
    slot: Slot

    @property
    def pid(self) -> int | None:
        """Its process id, once known."""

    @property
    def why(self) -> str | None:
        """Why it ended, when its exit code does not say (a lost Dask worker)."""


class Executor(Protocol):
    """Starts, watches and stops the agents of one sweep, for its controller."""

    @property
    def processes(self) -> Mapping[int, AgentHandle]:
        """The agents started and not yet reaped, by agent number."""

    def spawn(self, slot: Slot) -> AgentHandle:
        """Start one agent on ``slot`` (its GPUs, or none)."""

    def reap(self) -> list[tuple[AgentHandle, int]]:
        """The agents that ended since the last call, with their exit codes."""

    def alive(self) -> int:
        """How many agents are started and not yet reaped."""

    def kill(self, agent: int, why: str | None = None) -> None:
        """Kill one agent now, with the processes of its runs (cancel, or it hung); ``reap``
        then reports it, with ``why`` when given."""

    def shutdown(self, grace: float = AGENT_GRACE_S) -> None:
        """Give the agents ``grace`` seconds to leave on their own, then kill them."""


def start_agent(
    store: Store,
    sweep_id: str,
    agent: int,
    train_spec: Path,
    gpu: str,
    env: Mapping[str, str],
    parent_died: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``python -m nbsweep.agents`` for one agent, in its own session: its process
    group holds every process its runs start, and ends with it (``_procs``).

    Ctrl-C in the notebook does not reach it; its output goes to ``logs/<sweep>/agent-N.log``.
    Its stdin is a pipe from us: when we die the pipe closes, and the agent ends its run as
    crashed with ``parent_died`` (``controller process died`` by default) and exits.
    The store's URL, which may hold a password, goes in its environment (``$NBSWEEP_STORE``):
    any local user can read a command line, only its owner an environment.
    """
    argv = [
        sys.executable,
        "-m",
        "nbsweep.agents",
        "--sweep",
        sweep_id,
        "--agent",
        str(agent),
        "--train",
        str(train_spec),
        "--gpu",
        gpu,
        "--watch-parent",
    ]
    if parent_died is not None:
        argv += ["--parent-died", parent_died]
    logs = private_dir(store.root / "logs" / sweep_id)
    fd = os.open(logs / f"agent-{agent}.log", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=fd,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1", ENV_VAR: store.url},
            start_new_session=True,
        )
    finally:
        os.close(fd)
