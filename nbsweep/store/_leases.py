"""Controller leases: one controller per sweep, whoever holds an unexpired lease runs it.

A lease of a dead process of this host is taken over at once (``owner_alive``).
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from nbsweep.store import _schema as s
from nbsweep.store._engine import Database
from nbsweep.store._liveness import owner_alive


class Leases(Database):
    """The controller lease of each sweep."""

    def acquire_lease(self, sweep_id: str, owner: str, ttl: float) -> str | None:
        """Take (or renew) the sweep's controller lease; returns the other owner if held."""
        now = time.time()
        try:
            with self.write() as conn:
                pick = sa.select(s.leases).where(s.leases.c.sweep_id == sweep_id)
                if not self.is_sqlite:
                    pick = pick.with_for_update()
                row = conn.execute(pick).first()
                if row is None:
                    conn.execute(
                        s.leases.insert().values(
                            sweep_id=sweep_id, owner=owner, expires_at=now + ttl
                        )
                    )
                    return None
                if row.owner != owner and row.expires_at > now and owner_alive(row.owner):
                    return row.owner
                conn.execute(
                    s.leases.update()
                    .where(s.leases.c.sweep_id == sweep_id)
                    .values(owner=owner, expires_at=now + ttl)
                )
                return None
        except sa.exc.IntegrityError:
            return self.acquire_lease(sweep_id, owner, ttl)

    def renew_lease(self, sweep_id: str, owner: str, ttl: float) -> bool:
        with self.write() as conn:
            return (
                conn.execute(
                    s.leases.update()
                    .where(s.leases.c.sweep_id == sweep_id, s.leases.c.owner == owner)
                    .values(expires_at=time.time() + ttl)
                ).rowcount
                > 0
            )

    def release_lease(self, sweep_id: str, owner: str) -> None:
        with self.write() as conn:
            conn.execute(
                s.leases.delete().where(s.leases.c.sweep_id == sweep_id, s.leases.c.owner == owner)
            )

    def lease_owner(self, sweep_id: str) -> str | None:
        """The live controller's owner id, or None when no controller holds the sweep."""
        with self.read() as conn:
            row = conn.execute(sa.select(s.leases).where(s.leases.c.sweep_id == sweep_id)).first()
        if row is None or row.expires_at < time.time() or not owner_alive(row.owner):
            return None
        return row.owner

    def live_lease_owners(self) -> dict[str, str]:
        """The live controller of every sweep that has one (``lease_owner`` for all at once)."""
        now = time.time()
        with self.read() as conn:
            rows = conn.execute(sa.select(s.leases).where(s.leases.c.expires_at >= now)).all()
        return {row.sweep_id: row.owner for row in rows if owner_alive(row.owner)}
