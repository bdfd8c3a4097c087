"""The processes a run starts: found, and ended with their run or their agent.

A spawned agent leads a session of its own (``start_agent``), so whatever a train function
starts (subprocesses, multiprocessing and DataLoader workers, their children) is in the
agent's process group: the executor kills the whole group when it kills the agent or finds it
dead. A process that leaves the group (``start_new_session``, a ``program:`` run) stays the
agent's descendant, even when its parent dies, because the agent is a child subreaper. After
each run the agent kills every other process of its group and every descendant.

Processes are read from /proc (Linux); elsewhere only the process group is reached.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

from nbsweep._timing import LEFTOVER_S

# linux/prctl.h
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans among this process's descendants become its children, not init's."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)


def _table() -> dict[int, tuple[str, int, int]]:
    """Every process: its state letter, parent and process group (from /proc; {} elsewhere)."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # it ended meanwhile
        found[int(entry.parent.name)] = (fields[0], int(fields[1]), int(fields[2]))
    return found


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` ([] where there is none)."""
    return [p for p, (_, parent, _) in _table().items() if parent == pid]


def descendants(pid: int, table: dict[int, tuple[str, int, int]] | None = None) -> list[int]:
    """The processes below ``pid``: its children, theirs, and so on."""
    below: dict[int, list[int]] = defaultdict(list)
    for p, (_, parent, _) in (table if table is not None else _table()).items():
        below[parent].append(p)
    found, todo = [], [pid]
    while todo:
        for child in below.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def outside_group(pid: int) -> list[int]:
    """The descendants of ``pid`` that left its process group: killing the group misses them."""
    table = _table()
    return [p for p in descendants(pid, table) if table[p][2] != pid]


def end_others() -> None:
    """SIGKILL every other process of this process's group and every descendant, and reap
    those that are its children; waits up to ``LEFTOVER_S`` for them to go.

    For an agent that leads its own process group: every other process in it is a run's.
    """
    if not _has_children():
        return  # as a subreaper, a process with descendants has children (zombies count)
    me = os.getpid()
    leader = os.getpgrp() == me
    deadline = time.monotonic() + LEFTOVER_S
    while True:
        table = _table()
        others = set(descendants(me, table))
        if leader:
            others.update(p for p, (_, _, group) in table.items() if group == me)
        others.discard(me)
        alive = [p for p in others if table.get(p, ("Z",))[0] != "Z"]
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        ours = [p for p in others if p in table and table[p][1] == me]
        for pid in ours:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if (not alive and not ours) or time.monotonic() >= deadline:
            return
        time.sleep(0.01)


def _has_children() -> bool:
    """Whether this process has a child, alive or not yet reaped: one system call, where
    reading /proc costs milliseconds (true where ``waitid`` is missing)."""
    if not hasattr(os, "waitid"):
        return True
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def end_programs(programs: list[int], deadline: float) -> None:
    """Give the process groups of ``programs`` until ``deadline`` to end, then SIGKILL them."""
    while any(_group_alive(pid) for pid in programs):
        if time.monotonic() >= deadline:
            for pid in programs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def end_group(pgid: int) -> None:
    """SIGKILL the process group ``pgid`` (nothing if it is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
