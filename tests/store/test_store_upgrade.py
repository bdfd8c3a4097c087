"""Stores written by earlier nbsweeps (schemas 1 to 4) open, upgraded in place, with their runs."""

from __future__ import annotations

import sqlalchemy as sa

from nbsweep.store import (
    SCHEMA_VERSION,
    Finish,
    GpuUse,
    Store,
    forget_store,
    open_store,
    resolve_url,
)

GPU_COLUMNS = ("gpu_util", "gpu_mem_mb", "gpu_seconds", "gpu_mem_start_mb")


def _make_version_1(url: str) -> None:
    """A store with one finished run, then stripped of what schemas 2 to 4 added."""
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
        conn.exec_driver_sql("ALTER TABLE nbsweep_sweeps DROP COLUMN fresh_process")
        conn.exec_driver_sql("UPDATE nbsweep_meta SET value = '1' WHERE key = 'schema_version'")
    forget_store(url)


def test_a_version_1_store_is_upgraded_on_open_and_keeps_its_runs(store_url: str) -> None:
    _make_version_1(store_url)
    store = Store(resolve_url(store_url))
    try:
        inspector = sa.inspect(store.engine)
        assert {"nbsweep_gpu_leases", "nbsweep_gpu_waits"} <= set(inspector.get_table_names())
        columns = {c["name"] for c in inspector.get_columns("nbsweep_runs")}
        assert set(GPU_COLUMNS) <= columns
        assert "fresh_process" in {c["name"] for c in inspector.get_columns("nbsweep_sweeps")}
        with store.read() as conn:
            version = conn.exec_driver_sql(
                "SELECT value FROM nbsweep_meta WHERE key = 'schema_version'"
            ).scalar()
        assert version == str(SCHEMA_VERSION) == "5"
        [run] = store.runs("old")
        assert run.state == "finished" and run.gpu_seconds is None
        # The upgraded store takes the new figures.
        [second] = store.add_runs("old", [{"x": 2}])
        assert store.claim("old", 0) is not None
        store.finish(Finish(second, "finished", {}, gpu=GpuUse(40.0, 512.0, 3.0, 256.0)))
        assert [getattr(store.run(second), c) for c in GPU_COLUMNS] == [40.0, 512.0, 3.0, 256.0]
        # A second process opening the same (now current) store changes nothing.
        Store(resolve_url(store_url)).dispose()
    finally:
        store.dispose()


def test_a_version_2_store_gets_64_bit_steps(store_url: str) -> None:
    store = open_store(store_url)
    store.create_sweep("old", "old", "grid", {"method": "grid"}, None, None, "running")
    [run_id] = store.add_runs("old", [{"x": 1}])
    assert store.claim("old", 0) is not None
    row = {"data": {}, "metric": None, "metric_iter": None, "summary": {}}
    store.log_row("old", run_id, step=7, steps=1, **row)
    with store.write() as conn:
        if not store.is_sqlite:  # schema 2 made them int4 there (SQLite's INTEGER is 64-bit)
            conn.exec_driver_sql("ALTER TABLE nbsweep_rows ALTER COLUMN step TYPE INTEGER")
            conn.exec_driver_sql("ALTER TABLE nbsweep_runs ALTER COLUMN steps TYPE INTEGER")
        conn.exec_driver_sql("UPDATE nbsweep_meta SET value = '2' WHERE key = 'schema_version'")
    forget_store(store_url)
    store = Store(resolve_url(store_url))
    try:
        types = {
            c["name"]: c["type"]
            for t in ("nbsweep_rows", "nbsweep_runs")
            for c in sa.inspect(store.engine).get_columns(t)
        }
        if not store.is_sqlite:
            assert isinstance(types["step"], sa.BigInteger)
            assert isinstance(types["steps"], sa.BigInteger)
        store.log_row("old", run_id, step=2**40, steps=2**40, **row)
        assert [r.step for r in store.history("old")] == [7, 2**40]
        assert store.run(run_id).steps == 2**40
    finally:
        store.dispose()
