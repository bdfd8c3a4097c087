"""The local executor: agent processes on this machine, spawned (never forked).

Each agent is ``python -m nbsweep.agents`` (``start_agent``) with its GPUs in the
environment. Its stdin is a pipe from the kernel: when the kernel dies the pipe closes and
the agent stops its run and exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from nbsweep.agents._executor import start_agent
from nbsweep.agents._gpus import Slot
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
        """The agents that exited since the last call, with their return codes."""
        gone = []
        for agent, handle in list(self.processes.items()):
            code = handle.process.poll()
            if code is not None:
                del self.processes[agent]
                _close(handle)
                gone.append((handle, code))
        return gone

    def alive(self) -> int:
        return len(self.processes)

    def kill(self, agent: int) -> None:
        handle = self.processes.get(agent)
        if handle is not None and handle.process.poll() is None:
            self._kill(handle)

    def _kill(self, handle: AgentProcess) -> None:
        # The programs of a ``program:`` sweep run in their own sessions, out of reach of the
        # agent's death but for the SIGTERM Linux sends them then: note them first.
        self._programs.extend(children(handle.pid))
        handle.process.kill()

    def shutdown(self, grace: float = 5.0) -> None:
        """Wait up to ``grace`` seconds for agents to leave on their own, then kill them.

        They stay listed, so that ``reap`` then reports how each one ended.
        """
        deadline = time.monotonic() + grace
        for handle in self.processes.values():
            try:
                handle.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill(handle)
                handle.process.wait()
        end_programs(self._programs, deadline)
        self._programs = []


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc; [] where there is none)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # it ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(entry.parent.name))
    return found


def end_programs(programs: list[int], deadline: float) -> None:
    """Give the process groups of ``programs`` until ``deadline`` to end, then SIGKILL them."""
    while any(_group_alive(pid) for pid in programs):
        if time.monotonic() >= deadline:
            for pid in programs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _close(handle: AgentProcess) -> None:
    if handle.process.stdin is not None:
        handle.process.stdin.close()
