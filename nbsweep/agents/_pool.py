"""One GPU pool per machine, shared by every sweep of a store (kernels, notebooks, scripts).

A GPU is held by one sweep at a time: its controller leases it (a row per host and GPU UUID,
renewed with the controller's own lease, so a crashed kernel's GPUs free themselves) before
it starts an agent on it, and gives it back when the agent leaves. A sweep that wants more
GPUs than it holds waits in the store with its ``scheduler.priority``; a freed GPU goes to the
highest priority, then to the sweep that waited longest. An agent of a lower-priority sweep
gives its GPU up after its current run when a higher one waits (never mid-run), and an agent
left idle gives it to any sweep that waits.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from nbsweep._errors import SweepError
from nbsweep.agents._gpus import Slot
from nbsweep.store import Store

PRIORITIES = {"low": 0, "medium": 1, "high": 2}
DEFAULT_PRIORITY = "medium"
# The exit status of an agent that gave its GPU to another sweep (it is started again later).
YIELDED = 75
# An agent without a run for this long lets a waiting sweep have its GPU.
IDLE_YIELD_S = 5.0


def priority_of(config: Mapping[str, Any]) -> int:
    """``scheduler.priority`` of a sweep config as a rank (low 0, medium 1, high 2)."""
    scheduler = config.get("scheduler") or {}
    return PRIORITIES[scheduler.get("priority") or DEFAULT_PRIORITY]


def check_priority(level: Any) -> str:
    if level not in PRIORITIES:
        raise SweepError(
            f"priority {level!r} is not one of {', '.join(PRIORITIES)} (scheduler.priority)"
        )
    return str(level)


class GpuPool:
    """A controller's side of the pool: the GPU groups it may use and those it holds."""

    def __init__(self, store: Store, sweep_id: str, owner: str, groups: list[Slot]) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self.owner = owner
        self.groups = groups
        self.host = socket.gethostname()
        self.held: list[Slot] = []
        self.waiting = False

    def request(self, count: int, priority: int, ttl: float) -> list[Slot]:
        """Lease up to ``count`` more GPU groups now; the rest is waited for in the store."""
        if count <= 0 and not self.waiting:
            return []
        free = [g for g in self.groups if g not in self.held]
        picked = self.store.pool_request(
            self.host,
            self.sweep_id,
            self.owner,
            priority,
            [[gpu.uuid for gpu in g.gpus] for g in free],
            max(0, count),
            ttl,
        )
        granted = [free[i] for i in picked]
        self.held += granted
        self.waiting = count > len(granted)
        return granted

    def release(self, slot: Slot) -> None:
        if slot in self.held:
            self.held.remove(slot)
            self.store.pool_release(self.host, [gpu.uuid for gpu in slot.gpus], self.owner)

    def renew(self, priority: int, ttl: float) -> None:
        if self.held or self.waiting:
            self.store.pool_renew(self.owner, priority, ttl)

    def leave(self) -> None:
        self.held = []
        self.waiting = False
        self.store.pool_leave(self.owner)
