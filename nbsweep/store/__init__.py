"""The store: sweeps, runs, metric rows, events, agents and controller leases in one database.

Callers get typed records (``StoredSweep``, ``StoredRun``...) with JSON already decoded, and
the engine's ``RunRecord``s from ``Store.run_records``; nothing outside this package sees a
row or JSON text.
"""

from __future__ import annotations

from nbsweep.store._codec import as_stored, encode_row, logged_row, logged_step
from nbsweep.store._engine import DEFAULT_STORE, ENV_VAR, missing, private_dir, resolve_url
from nbsweep.store._liveness import new_id, owner_alive, owner_id, pid_alive
from nbsweep.store._records import (
    Claim,
    Finish,
    GpuUse,
    PoolEntry,
    StoredAgent,
    StoredEvent,
    StoredRow,
    StoredRun,
    StoredSweep,
)
from nbsweep.store._schema import SCHEMA_VERSION
from nbsweep.store._store import Store, forget_store, open_store

__all__ = [
    "DEFAULT_STORE",
    "ENV_VAR",
    "SCHEMA_VERSION",
    "Claim",
    "Finish",
    "GpuUse",
    "PoolEntry",
    "Store",
    "StoredAgent",
    "StoredEvent",
    "StoredRow",
    "StoredRun",
    "StoredSweep",
    "as_stored",
    "encode_row",
    "forget_store",
    "logged_row",
    "logged_step",
    "missing",
    "new_id",
    "open_store",
    "owner_alive",
    "owner_id",
    "pid_alive",
    "private_dir",
    "resolve_url",
]
