"""The local executor: agent processes on this machine, spawned (never forked).

Each agent is ``python -m nbsweep.agents`` (``start_agent``) with its GPUs in the
environment. Its stdin is a pipe from the kernel: when the kernel dies the pipe closes and
the agent stops its run and exits. Each leads a process group of its own, which holds every
process its runs start: killing an agent, or finding it dead, kills the group (``_procs``).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from nbsweep._timing import AGENT_GRACE_S
from nbsweep.agents._executor import start_agent
from nbsweep.agents._gpus import Slot
from nbsweep.agents._procs import end_group, end_programs, outside_group
from nbsweep.store import Store


@dataclass
class AgentProcess:
    """One spawned agent: its number in the sweep, its slot and its process."""

    agent: int
    slot: Slot
    process: subprocess.Popen[bytes]
    why: str | None = None  # its exit code says why it ended

    @property
    def pid(self) -> int:
        return self.process.pid


class LocalExecutor:
    """The ``Executor`` of agent processes on this machine, for one sweep."""

    def __init__(self, store: Store, sweep_id: str, train_spec: Path) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self.train_spec = train_spec
        self.processes: dict[int, AgentProcess] = {}
        # Programs of killed agents: one that ignores its SIGTERM is killed at shutdown.
        self._programs: list[int] = []

    def spawn(self, slot: Slot) -> AgentProcess:
        agent = self.store.add_agent(self.sweep_id, None, gpu=slot.gpu, gpu_name=slot.gpu_name)
        process = start_agent(
            self.store, self.sweep_id, agent, self.train_spec, slot.gpu, {**os.environ, **slot.env}
        )
        self.store.update_agent(self.sweep_id, agent, pid=process.pid)
        handle = self.processes[agent] = AgentProcess(agent, slot, process)
        return handle

    def reap(self) -> list[tuple[AgentProcess, int]]:
        """The agents that exited since the last call, with their return codes.

        What a dead agent's run started dies with it: its process group is killed while the
        agent is still a zombie, so that its number cannot name another process's group yet.
        """
        gone = []
        for agent, handle in list(self.processes.items()):
            if not _exited(handle.process):
                continue
            end_group(handle.pid)
            del self.processes[agent]
            _close(handle)
            gone.append((handle, handle.process.wait()))
        return gone

    def alive(self) -> int:
        return len(self.processes)

    def kill(self, agent: int, why: str | None = None) -> None:
        handle = self.processes.get(agent)
        if handle is not None and handle.process.returncode is None:
            handle.why = why
            self._kill(handle)

    def _kill(self, handle: AgentProcess) -> None:
        # The programs of a ``program:`` sweep run in their own sessions, out of reach of the
        # group's death but for the SIGTERM Linux sends them then: note them first, with
        # anything else a run moved out of the group.
        self._programs.extend(outside_group(handle.pid))
        end_group(handle.pid)

    def shutdown(self, grace: float = AGENT_GRACE_S) -> None:
        """Wait up to ``grace`` seconds for agents to leave on their own, then kill them.

        They stay listed (not reaped), so that ``reap`` then reports how each one ended.
        """
        deadline = time.monotonic() + grace
        for handle in self.processes.values():
            while not _exited(handle.process) and time.monotonic() < deadline:
                time.sleep(0.01)
            if not _exited(handle.process):
                self._kill(handle)
        end_programs(self._programs, deadline)
        self._programs = []


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process ended, without reaping it: its pid stays its own until ``wait``."""
    if process.returncode is not None:
        return True
    if not hasattr(os, "waitid"):  # macOS: reaped, so its group is killed a moment late
        return process.poll() is not None
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return process.poll() is not None


def _close(handle: AgentProcess) -> None:
    if handle.process.stdin is not None:
        handle.process.stdin.close()
