"""Sweeps: created once, read as records, their state and config changed in place."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from nbsweep.store import _schema as s
from nbsweep.store._codec import capped, encode
from nbsweep.store._engine import Database
from nbsweep.store._events import record_event
from nbsweep.store._records import StoredSweep


class Sweeps(Database):
    """The sweeps table: what ``sweep()`` created, read back as ``StoredSweep``s."""

    def create_sweep(
        self,
        sweep_id: str,
        name: str,
        method: str,
        config: Mapping[str, Any],
        train_ref: str | None,
        seed: int | None,
        state: str,
        gpus_per_run: int = 1,
        warm_start: Sequence[str] = (),
        fresh_process: bool = False,
    ) -> None:
        now = time.time()
        with self.write() as conn:
            conn.execute(
                s.sweeps.insert().values(
                    id=sweep_id,
                    name=name,
                    method=method,
                    config=encode(config),
                    state=state,
                    message="",
                    train_ref=train_ref,
                    seed=seed,
                    gpus_per_run=gpus_per_run,
                    created_at=now,
                    updated_at=now,
                    failure_guard=True,
                    warm_start=encode(list(warm_start)) if warm_start else None,
                    fresh_process=fresh_process,
                )
            )
            record_event(conn, sweep_id, "created", message=f"sweep {name} created ({method})")

    def sweep(self, sweep_id: str) -> StoredSweep | None:
        with self.read() as conn:
            row = conn.execute(s.sweeps.select().where(s.sweeps.c.id == sweep_id)).first()
        return StoredSweep.of(row) if row else None

    def sweeps(self) -> list[StoredSweep]:
        """Every sweep of the store, oldest first, with its count of runs in each state."""
        with self.read() as conn:
            found = conn.execute(s.sweeps.select().order_by(s.sweeps.c.created_at)).all()
            counts = conn.execute(
                sa.select(s.runs.c.sweep_id, s.runs.c.state, sa.func.count()).group_by(
                    s.runs.c.sweep_id, s.runs.c.state
                )
            ).all()
        per: dict[str, dict[str, int]] = {}
        for sweep_id, state, count in counts:
            per.setdefault(sweep_id, {})[state] = count
        return [StoredSweep.of(row, per.get(row.id, {})) for row in found]

    def update_sweep(
        self,
        sweep_id: str,
        *,
        only_from: Iterable[str] | None = None,
        event: str | None = None,
        config: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> bool:
        """Set sweep fields (``state``, ``message``...), only from the given states if any."""
        if config is not None:
            values["config"] = encode(config)
        if "message" in values:
            values["message"] = capped(values["message"])
        stmt = s.sweeps.update().where(s.sweeps.c.id == sweep_id)
        if only_from is not None:
            stmt = stmt.where(s.sweeps.c.state.in_(list(only_from)))
        with self.write() as conn:
            changed = conn.execute(stmt.values(updated_at=time.time(), **values)).rowcount > 0
            if changed and event:
                record_event(conn, sweep_id, values.get("state", "sweep"), message=event)
        return changed
