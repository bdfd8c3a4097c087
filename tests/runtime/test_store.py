"""The store on SQLite and PostgreSQL: schema checks, private files, atomic claims, rows."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from nbsweep import StoreError
from nbsweep.store import SCHEMA_VERSION, Finish, Store, open_store
from nbsweep.store import _store as store_module
from tests.runtime import workers


def _forget(url: str) -> None:
    """Drop the process's cached store so the next open reads the database again."""
    key = store_module.resolve_url(url)
    with store_module._stores_lock:
        found = store_module._stores.pop(key, None)
    if found is not None:
        found.dispose()


def _sweep(store: Store, sweep_id: str = "sw", state: str = "running") -> str:
    store.create_sweep(sweep_id, "test", "grid", {"method": "grid"}, None, None, state)
    return sweep_id


def test_store_files_and_directories_are_private(sqlite_store: str) -> None:
    store = open_store(sqlite_store)
    _sweep(store)
    root = Path(sqlite_store).parent
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for path in root.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_schema_version_mismatch_is_refused(store_url: str) -> None:
    store = open_store(store_url)
    with store.write() as conn:
        conn.execute(sa.text("UPDATE nbsweep_meta SET value = '99' WHERE key = 'schema_version'"))
    _forget(store_url)
    with pytest.raises(
        StoreError, match=f"schema version 99, this nbsweep reads version {SCHEMA_VERSION}"
    ):
        open_store(store_url)


def test_foreign_sqlite_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    with pytest.raises(StoreError, match="not an nbsweep store.*accounts"):
        Store(store_module.resolve_url(path))
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["accounts"]


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="cannot be opened"):
        Store(store_module.resolve_url(path))
    assert path.read_text().startswith("these are my notes")


def test_store_url_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBSWEEP_STORE", str(tmp_path / "env.db"))
    assert store_module.resolve_url(None) == f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.delenv("NBSWEEP_STORE")
    monkeypatch.chdir(tmp_path)
    assert store_module.resolve_url(None) == f"sqlite:///{tmp_path / '.nbsweep' / 'nbsweep.db'}"


@pytest.mark.timeout(120)
def test_no_run_is_claimed_twice_by_four_racing_processes(store_url: str) -> None:
    store = open_store(store_url)
    sweep_id = _sweep(store)
    ids = store.add_runs(sweep_id, [{"i": i} for i in range(300)])
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(workers.claim_all, [(store_url, sweep_id, a) for a in range(4)])
    claimed = [run_id for result in results for run_id in result]
    assert sorted(claimed) == sorted(ids)
    assert len(set(claimed)) == len(claimed)
    rows = store.runs(sweep_id)
    assert {r["state"] for r in rows} == {"finished"}
    by_agent = {r["id"]: r["agent"] for r in rows}
    for agent, result in enumerate(results):
        assert all(by_agent[run_id] == agent for run_id in result)


def test_claims_follow_queue_order_and_wait_while_paused(store_url: str) -> None:
    store = open_store(store_url)
    sweep_id = _sweep(store, state="paused")
    ids = store.add_runs(sweep_id, [{"i": i} for i in range(3)])
    assert store.claim(sweep_id, 0) is None
    store.update_sweep(sweep_id, state="running")
    first = store.claim(sweep_id, 0)
    assert first is not None and (first.run_id, first.config) == (ids[0], {"i": 0})
    second = store.claim(sweep_id, 0, finish=Finish(first.run_id, "finished", {"loss": 1}))
    assert second is not None and second.run_id == ids[1]
    assert store.run(first.run_id)["state"] == "finished"


def test_a_logged_row_is_visible_to_another_connection_at_once(store_url: str) -> None:
    store = open_store(store_url)
    sweep_id = _sweep(store)
    (run_id,) = store.add_runs(sweep_id, [{"x": 1}])
    store.claim(sweep_id, 0)
    other = sa.create_engine(store.url)
    try:
        for step in range(3):
            row_id, reason = store.log_row(
                sweep_id,
                run_id,
                step=step,
                data={"loss": 1.0 / (step + 1)},
                metric=1.0 / (step + 1),
                metric_iter=step + 1,
                steps=step + 1,
                summary={"loss": 1.0 / (step + 1)},
            )
            assert row_id is not None and reason is None
            with other.connect() as conn:
                count = conn.execute(
                    sa.text("SELECT count(*) FROM nbsweep_rows WHERE run_id = :r"), {"r": run_id}
                ).scalar()
            assert count == step + 1
    finally:
        other.dispose()
    assert store.metric_histories([run_id]) == {run_id: [1.0, 0.5, 1.0 / 3]}


def test_rows_of_a_stopped_run_are_refused(store_url: str) -> None:
    store = open_store(store_url)
    sweep_id = _sweep(store)
    (run_id,) = store.add_runs(sweep_id, [{"x": 1}])
    store.claim(sweep_id, 0)
    assert store.end_runs(sweep_id, [run_id], "stopped", {run_id: "test"}) == [run_id]
    row_id, _ = store.log_row(
        sweep_id, run_id, step=0, data={}, metric=None, metric_iter=None, steps=1, summary={}
    )
    assert row_id is None
    assert store.history(sweep_id) == []


def test_only_one_controller_holds_the_lease(store_url: str) -> None:
    store = open_store(store_url)
    sweep_id = _sweep(store)
    assert store.acquire_lease(sweep_id, "elsewhere:1:a", 30) is None
    assert store.acquire_lease(sweep_id, "elsewhere:2:b", 30) == "elsewhere:1:a"
    assert store.lease_owner(sweep_id) == "elsewhere:1:a"
    store.release_lease(sweep_id, "elsewhere:1:a")
    assert store.acquire_lease(sweep_id, "elsewhere:2:b", 30) is None


def test_a_dead_local_owner_loses_the_lease_at_once(sqlite_store: str) -> None:
    store = open_store(sqlite_store)
    sweep_id = _sweep(store)
    process = multiprocessing.get_context("spawn").Process(target=os.getpid)
    process.start()
    process.join()
    dead = f"{store_module.socket.gethostname()}:{process.pid}:x"
    assert store.acquire_lease(sweep_id, dead, 60) is None
    assert store.lease_owner(sweep_id) is None
    assert store.acquire_lease(sweep_id, store_module.owner_id(), 60) is None
