"""The GPU pool: the GPUs of a host shared by every sweep of the store.

A GPU is held by one sweep at a time, as long as its controller renews the lease; a sweep
that lacks GPUs waits in line, by priority and then by how long it has waited.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from nbsweep._timing import LEASE_TTL_S
from nbsweep.store import _schema as s
from nbsweep.store._engine import Database
from nbsweep.store._liveness import owner_alive
from nbsweep.store._records import PoolEntry


class GpuPool(Database):
    """The GPU leases and waits of every host of the store."""

    def pool_request(
        self,
        host: str,
        sweep_id: str,
        owner: str,
        priority: int,
        groups: Sequence[Sequence[str]],
        count: int,
        ttl: float,
    ) -> list[int]:
        """Lease up to ``count`` of the GPU ``groups`` that are wholly free; returns their indices.

        Free GPUs go first to the sweeps waiting ahead (higher priority, then waiting longer).
        What this sweep still lacks is written as its wait row, or the row is dropped.
        """
        now = time.time()
        leases, waits = s.gpu_leases, s.gpu_waits
        with self.write() as conn:
            if not self.is_sqlite:  # SQLite's BEGIN IMMEDIATE already serialises this
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7319)")
            _pool_expire(conn, host, now)
            held = set(conn.execute(sa.select(leases.c.gpu).where(leases.c.host == host)).scalars())
            waiting = conn.execute(sa.select(waits).where(waits.c.host == host)).all()
            mine = next((w for w in waiting if w.sweep_id == sweep_id), None)
            since = mine.since if mine is not None else now
            ahead = sum(
                max(0, w.wanted)
                for w in waiting
                if w.sweep_id != sweep_id and (w.priority, -w.since) > (priority, -since)
            )
            free = [i for i, group in enumerate(groups) if not held.intersection(group)]
            spare = len({gpu for i in free for gpu in groups[i]}) - ahead
            granted: list[int] = []
            taken: set[str] = set()
            for i in free:
                if len(granted) == count or len(taken) + len(groups[i]) > spare:
                    break
                if not taken.intersection(groups[i]):
                    granted.append(i)
                    taken.update(groups[i])
            if taken:
                conn.execute(
                    leases.insert(),
                    [
                        {
                            "host": host,
                            "gpu": gpu,
                            "sweep_id": sweep_id,
                            "owner": owner,
                            "priority": priority,
                            "since": now,
                            "expires_at": now + ttl,
                        }
                        for gpu in sorted(taken)
                    ],
                )
            lacking = (count - len(granted)) * max((len(g) for g in groups), default=0)
            if lacking > 0 and mine is None:
                conn.execute(
                    waits.insert().values(
                        sweep_id=sweep_id,
                        host=host,
                        owner=owner,
                        priority=priority,
                        wanted=lacking,
                        since=now,
                        expires_at=now + ttl,
                    )
                )
            elif lacking > 0:
                kept = max(0, (mine.promised or 0) - len(taken))  # the grant fulfils promises
                conn.execute(
                    waits.update()
                    .where(waits.c.sweep_id == sweep_id)
                    .values(
                        owner=owner,
                        priority=priority,
                        wanted=lacking,
                        expires_at=now + ttl,
                        promised=kept,
                    )
                )
            elif mine is not None:
                conn.execute(waits.delete().where(waits.c.sweep_id == sweep_id))
        return granted

    def pool_release(self, host: str, gpus: Iterable[str], owner: str) -> None:
        """Give GPUs back to the pool."""
        leases = s.gpu_leases
        with self.write() as conn:
            conn.execute(
                leases.delete().where(
                    leases.c.host == host, leases.c.gpu.in_(list(gpus)), leases.c.owner == owner
                )
            )

    def pool_renew(self, owner: str, priority: int, ttl: float) -> None:
        """Keep the owner's GPUs and wait alive for ``ttl`` more seconds, at ``priority``."""
        values = {"priority": priority, "expires_at": time.time() + ttl}
        with self.write() as conn:
            for table in (s.gpu_leases, s.gpu_waits):
                conn.execute(table.update().where(table.c.owner == owner).values(**values))

    def pool_leave(self, owner: str) -> None:
        """Drop the owner's GPUs and wait (its controller is ending)."""
        with self.write() as conn:
            for table in (s.gpu_leases, s.gpu_waits):
                conn.execute(table.delete().where(table.c.owner == owner))

    def pool_set_priority(self, sweep_id: str, priority: int) -> None:
        with self.write() as conn:
            for table in (s.gpu_leases, s.gpu_waits):
                conn.execute(
                    table.update().where(table.c.sweep_id == sweep_id).values(priority=priority)
                )

    def pool_yield(self, host: str, sweep_id: str, gpus: Sequence[str], busy: bool) -> bool:
        """Whether an agent of ``sweep_id`` on ``gpus`` gives them to a waiting sweep now.

        After a run (``busy``) it gives way to a higher priority only; an idle agent to any
        sweep that waits. The GPUs are promised to the waiter at once, so one want does not
        send several agents away; the waiter keeps its whole want, and so its place ahead of
        the sweeps behind it, until it gets them.
        """
        leases, waits = s.gpu_leases, s.gpu_waits
        now = time.time()
        promised = _promised(now)
        anyone = (
            sa.select(waits.c.sweep_id)
            .where(
                waits.c.host == host,
                waits.c.sweep_id != sweep_id,
                waits.c.wanted > promised,
                waits.c.expires_at > now,
            )
            .limit(1)
        )
        with self.read() as conn:
            if conn.execute(anyone).first() is None:
                return False  # the usual case, answered without a write
        with self.write() as conn:
            mine = conn.execute(
                sa.select(sa.func.max(leases.c.priority)).where(
                    leases.c.host == host,
                    leases.c.gpu.in_(list(gpus)),
                    leases.c.sweep_id == sweep_id,
                )
            ).scalar()
            if mine is None:
                return False  # not a pooled agent (or its lease expired): nothing to give
            pick = sa.select(waits.c.sweep_id).where(
                waits.c.host == host,
                waits.c.sweep_id != sweep_id,
                waits.c.wanted > promised,
                waits.c.expires_at > now,
                waits.c.priority > (mine if busy else -1),
            )
            waiter = conn.execute(
                pick.order_by(waits.c.priority.desc(), waits.c.since).limit(1)
            ).scalar()
            if waiter is None:
                return False
            conn.execute(
                waits.update()
                .where(waits.c.sweep_id == waiter)
                .values(promised=promised + len(gpus), promised_until=now + LEASE_TTL_S)
            )
        return True

    def pool(self, host: str | None = None) -> list[PoolEntry]:
        """The live GPU leases and waits (of ``host``, else of every host), oldest first."""
        leases, waits = s.gpu_leases, s.gpu_waits
        now = time.time()
        out: list[PoolEntry] = []
        with self.read() as conn:
            for table, kind in ((leases, "holds"), (waits, "waits")):
                stmt = sa.select(table).where(table.c.expires_at > now)
                if host is not None:
                    stmt = stmt.where(table.c.host == host)
                for r in conn.execute(stmt):
                    fields = {k: v for k, v in r._mapping.items() if not k.startswith("promised")}
                    out.append(PoolEntry(state=kind, **fields))
        return sorted((r for r in out if owner_alive(r.owner)), key=lambda r: (r.host, r.since))


def _pool_expire(conn: sa.Connection, host: str, now: float) -> None:
    """Drop the GPU leases and waits of controllers that stopped renewing them or died."""
    for table in (s.gpu_leases, s.gpu_waits):
        owners = conn.execute(
            sa.select(table.c.owner).where(table.c.host == host).distinct()
        ).scalars()
        dead = [o for o in owners if not owner_alive(o)]
        conn.execute(
            table.delete().where(
                table.c.host == host, sa.or_(table.c.expires_at < now, table.c.owner.in_(dead))
            )
        )


def _promised(now: float) -> sa.ColumnElement[int]:
    """A wait's GPUs still on their way from agents that gave way (0 once overdue)."""
    waits = s.gpu_waits
    live = sa.and_(waits.c.promised.is_not(None), waits.c.promised_until > now)
    return sa.case((live, waits.c.promised), else_=0)
