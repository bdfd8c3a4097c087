"""Train functions for the PostgreSQL tests (importable, so agents load them by reference)."""

from __future__ import annotations

from typing import Any

import psutil
import sqlalchemy as sa

import nbsweep
from nbsweep._train import current_run

ROWS = 12
CUT_AT = (3, 7)


def cut_own_connections() -> int:
    """Terminate, on the server, every connection this process holds; returns how many."""
    run = current_run()
    assert run is not None
    ports = [
        c.laddr.port
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == run.store.engine.url.port
    ]
    killer = sa.create_engine(run.store.url, poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(:ports)"
                " AND pid <> pg_backend_pid() AND pg_terminate_backend(pid)"
            ),
            {"ports": ports},
        ).scalar_one()


def logs_through_lost_connections(config: Any) -> dict[str, int]:
    """Logs ROWS rows; before rows CUT_AT the server drops every connection of the agent."""
    cut = 0
    for step in range(ROWS):
        if step in CUT_AT:
            cut += cut_own_connections()
        nbsweep.log({"loss": float(config.x * step), "i": step})
    return {"connections_cut": cut}
