"""The store: sweeps, runs, metric rows, events, agents and controller leases in one database."""

from __future__ import annotations

from nbsweep.store._schema import SCHEMA_VERSION
from nbsweep.store._store import (
    DEFAULT_STORE,
    ENV_VAR,
    Claim,
    Finish,
    Store,
    open_store,
    resolve_url,
)

__all__ = [
    "DEFAULT_STORE",
    "ENV_VAR",
    "SCHEMA_VERSION",
    "Claim",
    "Finish",
    "Store",
    "open_store",
    "resolve_url",
]
