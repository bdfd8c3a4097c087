"""One GPU pool per machine, shared by every sweep of a store (kernels, notebooks, scripts).

A GPU is held by one sweep at a time: its controller leases it (a row per host and GPU UUID,
renewed with the controller's own lease, so a crashed kernel's GPUs free themselves) before
it starts agents on it, and gives it back when its last agent there leaves. A sweep with more
agents than GPU groups (``workers=N``, for small models) puts up to ceil(agents / groups) of
them on each group it holds, spread in turn; other sweeps never share those GPUs.

A sweep that wants more GPUs than it holds waits in the store with its
``scheduler.priority``; a freed GPU goes to the highest priority, then to the sweep that
waited longest. An agent of a lower-priority sweep gives its GPU up after its current run
when a higher one waits (never mid-run), and an agent left idle gives it to any sweep that
waits; the sweep's other agents on that GPU then leave after their current run, and the GPU
changes hands when the last one is gone.
"""

from __future__ import annotations

import socket
from typing import Any

from nbsweep._errors import PlacementError
from nbsweep.agents._gpus import GPU, Slot
from nbsweep.config import SweepConfig
from nbsweep.store import Store

PRIORITIES = {"low": 0, "medium": 1, "high": 2}
DEFAULT_PRIORITY = "medium"
# The exit status of an agent that gave its GPU to another sweep (it is started again later).
YIELDED = 75


def priority_of(config: SweepConfig) -> int:
    """``scheduler.priority`` of a sweep config as a rank (low 0, medium 1, high 2)."""
    return PRIORITIES[config.scheduler.priority or DEFAULT_PRIORITY]


def check_priority(level: Any) -> str:
    if level not in PRIORITIES:
        raise PlacementError(
            f"priority {level!r} is not one of {', '.join(PRIORITIES)} (scheduler.priority)"
        )
    return str(level)


class GpuPool:
    """A controller's side of the pool: the GPU groups it may use, those it holds, and how
    many of its agents each held group carries."""

    def __init__(
        self, store: Store, sweep_id: str, owner: str, groups: list[Slot], agents: int = 1
    ) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self.owner = owner
        self.groups = groups  # may change on resume (another queue); held groups stay held
        self.host = socket.gethostname()
        self.held: dict[tuple[GPU, ...], int] = {}  # agents on each group held
        self.leaving: set[tuple[GPU, ...]] = set()  # given to another sweep: no new agents
        self.waiting = False
        self.per_group = 1
        self.plan(agents)

    def plan(self, agents: int) -> None:
        """Share ``agents`` agents out: up to ceil(agents / groups) on each group held."""
        self.per_group = max(1, -(-agents // len(self.groups)))

    def request(self, count: int, priority: int, ttl: float) -> list[Slot]:
        """The slots of up to ``count`` more agents; the groups they lack are waited for.

        Leases one more group per agent while there are groups, then places each agent on
        the held group carrying fewest (``per_group`` at most), so agents spread over GPUs.
        """
        if count <= 0 and not self.waiting:
            return []
        usable = {g.gpus: g for g in self.groups if self.keeps(g)}
        placed = sum(self.held[gpus] for gpus in usable)
        more = max(0, min(placed + count, len(self.groups)) - len(usable)) if count > 0 else 0
        free = [g for g in self.groups if g.gpus not in self.held]
        picked = self.store.pool_request(
            self.host,
            self.sweep_id,
            self.owner,
            priority,
            [[gpu.uuid for gpu in g.gpus] for g in free],
            more,
            ttl,
        )
        for i in picked:
            self.held[free[i].gpus] = 0
            usable[free[i].gpus] = free[i]
        self.waiting = more > len(picked)
        slots = []
        for _ in range(max(0, count)):
            room = [gpus for gpus in usable if self.held[gpus] < self.per_group]
            if not room:
                break
            group = min(room, key=lambda gpus: self.held[gpus])
            self.held[group] += 1
            slots.append(usable[group])
        return slots

    def keeps(self, slot: Slot) -> bool:
        """Whether new agents may go on the slot's GPUs: held, and not being given away."""
        return slot.gpus in self.held and slot.gpus not in self.leaving

    def give_away(self, slot: Slot) -> None:
        """The GPUs go to a waiting sweep once their agents leave: none start on them."""
        if slot.gpus in self.held:
            self.leaving.add(slot.gpus)

    def left(self, slot: Slot) -> None:
        """An agent on ``slot`` left; with the group's last one the GPUs go back to the pool."""
        if slot.gpus not in self.held:
            return
        self.held[slot.gpus] -= 1
        if self.held[slot.gpus] <= 0:
            del self.held[slot.gpus]
            self.leaving.discard(slot.gpus)
            self.store.pool_release(self.host, [gpu.uuid for gpu in slot.gpus], self.owner)

    def renew(self, priority: int, ttl: float) -> None:
        if self.held or self.waiting:
            self.store.pool_renew(self.owner, priority, ttl)

    def leave(self) -> None:
        self.held = {}
        self.leaving = set()
        self.waiting = False
        self.store.pool_leave(self.owner)
