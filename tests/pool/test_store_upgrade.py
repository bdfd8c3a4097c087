"""A store written by the previous nbsweep (schema 1) opens, upgraded in place, with its runs."""

from __future__ import annotations

import sqlalchemy as sa

from nbsweep.store import SCHEMA_VERSION, Finish, Store, open_store
from nbsweep.store import _store as store_module
from nbsweep.store._store import GpuUse

GPU_COLUMNS = ("gpu_util", "gpu_mem_mb", "gpu_seconds")


def _make_version_1(url: str) -> None:
    """A store with one finished run, then stripped of what schema 2 added."""
    store = open_store(url)
    store.create_sweep("old", "old", "grid", {"method": "grid"}, None, None, "running")
    [run_id] = store.add_runs("old", [{"x": 1}])
    claim = store.claim("old", 0)
    assert claim is not None and claim.run_id == run_id
    store.finish(Finish(run_id, "finished", {"loss": 0.5}))
    with store.write() as conn:
        for name in ("nbsweep_gpu_leases", "nbsweep_gpu_waits"):
            conn.exec_driver_sql(f"DROP TABLE {name}")
        for column in GPU_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE nbsweep_runs DROP COLUMN {column}")
        conn.exec_driver_sql("UPDATE nbsweep_meta SET value = '1' WHERE key = 'schema_version'")
    with store_module._stores_lock:
        store_module._stores.pop(store_module.resolve_url(url)).dispose()


def test_a_version_1_store_is_upgraded_on_open_and_keeps_its_runs(store_url: str) -> None:
    _make_version_1(store_url)
    store = Store(store_module.resolve_url(store_url))
    try:
        inspector = sa.inspect(store.engine)
        assert {"nbsweep_gpu_leases", "nbsweep_gpu_waits"} <= set(inspector.get_table_names())
        columns = {c["name"] for c in inspector.get_columns("nbsweep_runs")}
        assert set(GPU_COLUMNS) <= columns
        with store.read() as conn:
            version = conn.exec_driver_sql(
                "SELECT value FROM nbsweep_meta WHERE key = 'schema_version'"
            ).scalar()
        assert version == str(SCHEMA_VERSION) == "2"
        [run] = store.runs("old")
        assert run["state"] == "finished" and run["gpu_seconds"] is None
        # The upgraded store takes the new figures.
        [second] = store.add_runs("old", [{"x": 2}])
        assert store.claim("old", 0) is not None
        store.finish(Finish(second, "finished", {}, gpu=GpuUse(40.0, 512.0, 3.0)))
        assert [store.run(second)[c] for c in GPU_COLUMNS] == [40.0, 512.0, 3.0]
        # A second process opening the same (now current) store changes nothing.
        Store(store_module.resolve_url(store_url)).dispose()
    finally:
        store.dispose()
