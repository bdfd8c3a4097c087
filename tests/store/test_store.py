"""The store on SQLite and PostgreSQL: schema checks, private files, atomic claims, rows."""

from __future__ import annotations

import multiprocessing
import os
import socket
import sqlite3
import stat
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from nbsweep import StoreError
from nbsweep._runs import RunRecord
from nbsweep.config import SweepConfig, validate
from nbsweep.store import (
    SCHEMA_VERSION,
    Finish,
    GpuUse,
    PoolEntry,
    Store,
    StoredAgent,
    StoredEvent,
    StoredRow,
    StoredRun,
    StoredSweep,
    forget_store,
    open_store,
    owner_id,
    resolve_url,
)
from tests.store import workers

CONFIG = {"method": "grid", "metric": {"name": "loss"}, "parameters": {"x": {"values": [1, 2]}}}


def _sweep(store: Store, sweep_id: str = "sw", state: str = "running") -> str:
    store.create_sweep(sweep_id, "test", "grid", CONFIG, None, None, state)
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
    forget_store(store_url)
    with pytest.raises(
        StoreError, match=f"schema version 99, this nbsweep reads version {SCHEMA_VERSION}"
    ):
        open_store(store_url)


def test_foreign_sqlite_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    with pytest.raises(StoreError, match="not an nbsweep store.*accounts"):
        Store(resolve_url(path))
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["accounts"]


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="cannot be opened"):
        Store(resolve_url(path))
    assert path.read_text().startswith("these are my notes")


def test_store_url_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBSWEEP_STORE", str(tmp_path / "env.db"))
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.delenv("NBSWEEP_STORE")
    monkeypatch.chdir(tmp_path)
    assert resolve_url(None) == f"sqlite:///{tmp_path / '.nbsweep' / 'nbsweep.db'}"


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
    assert {r.state for r in rows} == {"finished"}
    by_agent = {r.id: r.agent for r in rows}
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
    assert store.run(first.run_id).state == "finished"


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
    dead = f"{socket.gethostname()}:{process.pid}:x"
    assert store.acquire_lease(sweep_id, dead, 60) is None
    assert store.lease_owner(sweep_id) is None
    assert store.acquire_lease(sweep_id, owner_id(), 60) is None


# -- the store's contract, on every backend: typed records out, JSON decoded once ------------


def test_a_sweep_comes_back_as_a_record_with_its_config_decoded(store_url: str) -> None:
    store = open_store(store_url)
    store.create_sweep("sw", "test", "grid", validate(CONFIG), "m:f", 3, "running", 2, ["a", "b"])
    sweep = store.sweep("sw")
    assert isinstance(sweep, StoredSweep) and isinstance(sweep.config, SweepConfig)
    assert sweep.config == validate(CONFIG) and sweep.config.metric.name == "loss"
    assert (sweep.name, sweep.state, sweep.train_ref, sweep.seed) == ("test", "running", "m:f", 3)
    assert (sweep.gpus_per_run, sweep.warm_start, sweep.failure_guard) == (2, ("a", "b"), True)
    assert store.sweep("nope") is None
    store.add_runs("sw", [{"x": 1}, {"x": 2}])
    assert store.update_sweep("sw", only_from=["paused"], state="finished") is False
    changed = validate(CONFIG).with_priority("high")
    assert store.update_sweep("sw", config=changed, message="why", event="priority high")
    [listed] = store.sweeps()
    assert listed.config.scheduler.priority == "high" and listed.message == "why"
    assert listed.run_counts == {"pending": 2}
    assert [e.kind for e in store.events("sw")] == ["created", "sweep"]


def test_runs_come_back_as_records_and_as_the_engines_run_records(store_url: str) -> None:
    import numpy as np

    store = open_store(store_url)
    sweep_id = _sweep(store)
    first, second = store.add_runs(sweep_id, [{"x": np.int64(1)}, {"x": (2, 3)}])
    claim = store.claim(sweep_id, 0, gpu="GPU-1")
    assert claim is not None and claim.config == {"x": 1}
    for step, loss in enumerate([3.0, 2.0]):
        store.log_row(
            sweep_id,
            first,
            step=step,
            data={"loss": np.float32(loss), "seen": (1, 2)},
            metric=loss,
            metric_iter=step + 1,
            steps=step + 1,
            summary={"loss": loss},
        )
    store.finish(Finish(first, "finished", {"loss": 2.0}, gpu=GpuUse(50.0, 100.0, 4.0)))
    run = store.run(first)
    assert isinstance(run, StoredRun) and run.summary == {"loss": 2.0}
    assert (run.state, run.agent, run.gpu, run.steps, run.metric_count) == (
        "finished",
        0,
        "GPU-1",
        2,
        2,
    )
    assert (run.gpu_util, run.gpu_mem_mb, run.gpu_seconds) == (50.0, 100.0, 4.0)
    assert store.run(second).config == {"x": [2, 3]}
    assert store.history(sweep_id) == [
        StoredRow(first, 0, pytest.approx(time.time(), abs=60), {"loss": 3.0, "seen": [1, 2]}),
        StoredRow(first, 1, pytest.approx(time.time(), abs=60), {"loss": 2.0, "seen": [1, 2]}),
    ]
    assert store.run_records(sweep_id, "loss") == [
        RunRecord(first, {"x": 1}, "finished", (3.0, 2.0), 2.0),
        RunRecord(second, {"x": [2, 3]}, "pending", (), None),
    ]
    assert store.run_records(sweep_id, "loss", histories=False)[0].metric_history == ()


def test_a_run_stopped_meanwhile_keeps_its_state_and_takes_its_summary(store_url: str) -> None:
    store = open_store(store_url)
    sweep_id = _sweep(store)
    (run_id,) = store.add_runs(sweep_id, [{"x": 1}])
    store.claim(sweep_id, 0)
    assert store.running_ids(sweep_id) == [run_id]
    store.end_runs(sweep_id, [run_id], "killed", {run_id: "cancel"})
    store.finish(Finish(run_id, "finished", {"loss": 1.0}))
    run = store.run(run_id)
    assert (run.state, run.summary) == ("killed", {"loss": 1.0})
    assert store.events(sweep_id)[-1].kind == "killed"
    assert store.drop_pending(sweep_id) == 0


def test_the_judge_stops_a_run_inside_the_transaction_of_its_row(store_url: str) -> None:
    store = open_store(store_url)
    sweep_id = _sweep(store)
    a, b = store.add_runs(sweep_id, [{"x": 1}, {"x": 2}])
    store.claim(sweep_id, 0)
    store.claim(sweep_id, 1)
    row = {"step": 0, "metric_iter": 1, "steps": 1}
    store.log_row(sweep_id, a, data={"loss": 1.0}, metric=1.0, summary={}, **row)
    seen: list[dict[str, list[float]]] = []

    def judge(histories: dict[str, list[float]]) -> str | None:
        seen.append(histories)
        return "worse than run a"

    row_id, reason = store.log_row(
        sweep_id, b, data={"loss": 9.0}, metric=9.0, summary={}, judge=(1, judge), **row
    )
    assert row_id is not None and reason == "worse than run a"
    assert seen == [{a: [1.0]}]
    assert store.run_state(b) == "stopped"
    event = store.events(sweep_id)[-1]
    assert isinstance(event, StoredEvent)
    assert (event.kind, event.run_id, event.message) == ("stopped", b, "worse than run a")


def test_agents_are_numbered_and_a_drained_one_hears_it_at_its_heartbeat(store_url: str) -> None:
    store = open_store(store_url)
    sweep_id = _sweep(store)
    assert [store.add_agent(sweep_id, pid) for pid in (11, 12)] == [0, 1]
    (run_id,) = store.add_runs(sweep_id, [{"x": 1}])
    store.claim(sweep_id, 1)
    assert store.heartbeat(sweep_id, 1, run_id, GpuUse(10.0, 20.0, 1.0)) is True
    store.update_agent(sweep_id, 1, drain=True, state="draining")
    assert store.heartbeat(sweep_id, 1, run_id) is False
    agents = store.agents(sweep_id)
    assert all(isinstance(a, StoredAgent) for a in agents)
    assert [(a.agent, a.pid, a.state, a.run_id) for a in agents] == [
        (0, 11, "starting", None),
        (1, 12, "draining", run_id),
    ]
    assert store.run(run_id).gpu_seconds == 1.0
    store.add_event(sweep_id, "agent died", "exit code 7", agent=0)
    assert store.events(sweep_id)[-1].agent == 0


def test_the_gpu_pool_grants_free_gpus_and_queues_the_rest(store_url: str) -> None:
    store = open_store(store_url)
    groups = [["g0"], ["g1"]]
    assert store.pool_request("h", "a", "elsewhere:1:a", 0, groups, 1, 30) == [0]
    assert store.pool_request("h", "b", "elsewhere:2:b", 2, groups, 2, 30) == [1]
    entries = store.pool("h")
    assert all(isinstance(e, PoolEntry) for e in entries)
    assert [(e.state, e.sweep_id, e.gpu, e.wanted) for e in entries] == [
        ("holds", "a", "g0", None),
        ("holds", "b", "g1", None),
        ("waits", "b", None, 1),
    ]
    # Sweep a's agent gives its GPU to b, which waits with a higher priority.
    assert store.pool_yield("h", "a", ["g0"], busy=True) is True
    store.pool_release("h", ["g0"], "elsewhere:1:a")
    assert store.pool_request("h", "b", "elsewhere:2:b", 2, groups, 1, 30) == [0]
    store.pool_leave("elsewhere:2:b")
    assert store.pool("h") == []


def test_a_gpu_given_way_to_a_waiter_is_not_taken_by_a_third_sweep(store_url: str) -> None:
    store = open_store(store_url)
    groups = [["g0"]]
    assert store.pool_request("h", "a", "elsewhere:1:a", 0, groups, 1, 30) == [0]
    assert store.pool_request("h", "c", "elsewhere:3:c", 2, groups, 1, 30) == []
    # a's agent gives g0 way to c; before c asks again, b (low priority) asks first.
    assert store.pool_yield("h", "a", ["g0"], busy=True) is True
    store.pool_release("h", ["g0"], "elsewhere:1:a")
    assert store.pool_request("h", "b", "elsewhere:2:b", 0, groups, 1, 30) == []
    # The one want of c sends no second agent away.
    assert store.pool_yield("h", "a", ["g0"], busy=False) is False
    assert store.pool_request("h", "c", "elsewhere:3:c", 2, groups, 1, 30) == [0]
    pool = sorted((e.state, e.sweep_id) for e in store.pool("h"))
    assert pool == [("holds", "c"), ("waits", "b")]
    for owner in ("elsewhere:2:b", "elsewhere:3:c"):
        store.pool_leave(owner)
