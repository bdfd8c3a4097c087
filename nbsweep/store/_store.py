"""The ``Store`` facade: one object over the store's concerns, shared per process.

Each concern lives in its own module (engine and schema in ``_engine``, then ``_sweeps``,
``_runs``, ``_events``, ``_agents``, ``_pool``, ``_leases``); callers see one class whose
methods return the typed records of ``_records``.
"""

from __future__ import annotations

import os
import threading

from nbsweep.store._agents import Agents
from nbsweep.store._engine import resolve_url
from nbsweep.store._events import Events
from nbsweep.store._leases import Leases
from nbsweep.store._pool import GpuPool
from nbsweep.store._runs import Runs
from nbsweep.store._sweeps import Sweeps


class Store(Sweeps, Runs, Events, Agents, GpuPool, Leases):
    """One process's connection pool to one store; use :func:`open_store` to share it."""


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(store: str | os.PathLike[str] | Store | None = None, create: bool = True) -> Store:
    """The process's one :class:`Store` for ``store`` (URL, path, or None for the default).

    Without ``create`` a SQLite file that does not exist is an error, not a new store.
    """
    if isinstance(store, Store):
        return store
    url = resolve_url(store)
    with _stores_lock:
        found = _stores.get(url)
        if found is None:
            found = _stores[url] = Store(url, create=create)
        return found


def forget_store(store: str | os.PathLike[str]) -> None:
    """Close the process's shared store for ``store``, so the next open reads it afresh."""
    with _stores_lock:
        found = _stores.pop(resolve_url(store), None)
    if found is not None:
        found.dispose()
