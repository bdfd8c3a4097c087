"""Agents: registered per sweep, kept alive by heartbeats, told to drain through their row."""

from __future__ import annotations

import socket
import time
from typing import Any

import sqlalchemy as sa

from nbsweep._errors import StoreError
from nbsweep._states import AgentState, RunState
from nbsweep.store import _schema as s
from nbsweep.store._engine import Database
from nbsweep.store._records import GpuUse, StoredAgent
from nbsweep.store._runs import gpu_params


class Agents(Database):
    """The agents table, read back as ``StoredAgent``s."""

    def add_agent(
        self, sweep_id: str, pid: int | None, gpu: str = "", gpu_name: str = "", host: str = ""
    ) -> int:
        """Register an agent; returns its number in the sweep (0, 1, ...)."""
        for _ in range(5):
            now = time.time()
            try:
                with self.write() as conn:
                    top = conn.execute(
                        sa.select(sa.func.max(s.agents.c.agent)).where(
                            s.agents.c.sweep_id == sweep_id
                        )
                    ).scalar()
                    number = 0 if top is None else top + 1
                    conn.execute(
                        s.agents.insert().values(
                            sweep_id=sweep_id,
                            agent=number,
                            pid=pid,
                            host=host or socket.gethostname(),
                            gpu=gpu,
                            gpu_name=gpu_name,
                            state="starting",
                            drain=False,
                            started_at=now,
                            heartbeat_at=now,
                        )
                    )
                return number
            except sa.exc.IntegrityError:
                continue
        raise StoreError(f"sweep {sweep_id}: could not register an agent after 5 tries")

    def update_agent(self, sweep_id: str, agent: int, **values: Any) -> None:
        with self.write() as conn:
            conn.execute(
                s.agents.update()
                .where(s.agents.c.sweep_id == sweep_id, s.agents.c.agent == agent)
                .values(**values)
            )

    def agent_started(self, sweep_id: str, agent: int, **values: Any) -> bool:
        """The agent's process runs: it is ``idle``, with ``values``. False when it was told to
        drain before it started (a Drain click while it was starting): it stays ``draining``
        and must leave without claiming a run."""
        where = (s.agents.c.sweep_id == sweep_id, s.agents.c.agent == agent)
        with self.write() as conn:
            drain = conn.execute(sa.select(s.agents.c.drain).where(*where)).scalar()
            state = {} if drain else {"state": AgentState.IDLE}
            conn.execute(s.agents.update().where(*where).values(**values, **state))
        return not drain

    def agents(self, sweep_id: str) -> list[StoredAgent]:
        """Every agent of the sweep with the run it is on (from the runs table)."""
        with self.read() as conn:
            found = conn.execute(
                s.agents.select().where(s.agents.c.sweep_id == sweep_id).order_by(s.agents.c.agent)
            ).all()
            busy = dict(
                conn.execute(
                    sa.select(s.runs.c.agent, s.runs.c.id).where(
                        s.runs.c.sweep_id == sweep_id, s.runs.c.state == RunState.RUNNING
                    )
                ).all()
            )
        return [StoredAgent(**{**r._mapping, "run_id": busy.get(r.agent)}) for r in found]

    def heartbeat(
        self, sweep_id: str, agent: int, run_id: str | None, gpu: GpuUse | None = None
    ) -> bool:
        """Mark the agent (and its run) alive; False when the agent was told to drain.

        ``gpu``: the run's GPU figures so far, so that a run that crashes keeps them.
        """
        now = time.time()
        with self.write() as conn:
            if run_id is not None:
                figures = gpu_params(gpu) if gpu is not None else {}
                conn.execute(
                    s.runs.update()
                    .where(s.runs.c.id == run_id, s.runs.c.state == RunState.RUNNING)
                    .values(heartbeat_at=now, **figures)
                )
            conn.execute(
                s.agents.update()
                .where(s.agents.c.sweep_id == sweep_id, s.agents.c.agent == agent)
                .values(heartbeat_at=now)
            )
            drain = conn.execute(
                sa.select(s.agents.c.drain).where(
                    s.agents.c.sweep_id == sweep_id, s.agents.c.agent == agent
                )
            ).scalar()
        return not drain
