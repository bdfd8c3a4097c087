"""Events: what happened to a sweep, in order (state changes, runs stopped, agents died)."""

from __future__ import annotations

import time

import sqlalchemy as sa

from nbsweep.store import _schema as s
from nbsweep.store._codec import capped
from nbsweep.store._engine import Database
from nbsweep.store._records import StoredEvent


def record_event(
    conn: sa.Connection,
    sweep_id: str,
    kind: str,
    *,
    run_id: str | None = None,
    agent: int | None = None,
    message: str = "",
) -> None:
    """Add an event inside the caller's transaction, so it is kept with what it reports."""
    conn.execute(
        s.events.insert().values(
            sweep_id=sweep_id,
            at=time.time(),
            kind=kind,
            run_id=run_id,
            agent=agent,
            message=capped(message),
        )
    )


class Events(Database):
    """The events table, read back as ``StoredEvent``s in order."""

    def add_event(
        self,
        sweep_id: str,
        kind: str,
        message: str = "",
        run_id: str | None = None,
        agent: int | None = None,
    ) -> None:
        with self.write() as conn:
            record_event(conn, sweep_id, kind, run_id=run_id, agent=agent, message=message)

    def events(self, sweep_id: str) -> list[StoredEvent]:
        with self.read() as conn:
            found = conn.execute(
                s.events.select().where(s.events.c.sweep_id == sweep_id).order_by(s.events.c.id)
            )
            return [StoredEvent(**r._mapping) for r in found]
