"""Faults of the store file: locked by another process, removed while in use, corrupted."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import nbsweep
from nbsweep import StoreError
from nbsweep._errors import StoreFault
from nbsweep._states import CrashReason
from nbsweep.store import Store
from tests.faults import faulty
from tests.faults.conftest import REPO, Fault

pytestmark = pytest.mark.timeout(120)

# Longer than three heartbeats and the controller's lease renewal (at the tests' time scale),
# so that every kind of writer meets the lock.
LOCK_S = 1.5
HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def held_grid(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "gate").mkdir()
    return {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {
            "x": {"values": [1, 2, 3, 4]},
            "epochs": {"value": 6},
            "gate": {"value": str(tmp_path / "gate")},
        },
    }


def mid_run(sweep: nbsweep.Sweep, runs: int = 2) -> None:
    """Wait until ``runs`` runs hold at their gate after three rows."""
    deadline = time.monotonic() + 60
    while (sweep.runs["steps"] >= 3).sum() < runs:
        assert time.monotonic() < deadline, "the runs never got going"
        time.sleep(0.05)


def test_store_locked_by_another_process(tmp_path: Path, fault: Callable[..., Fault]) -> None:
    store = tmp_path / "store.db"
    check = fault(f"store locked by another process for {LOCK_S:g} s", str(store))
    sweep = nbsweep.sweep(held_grid(tmp_path), faulty.held, workers=2, store=str(store))
    mid_run(sweep)
    check.before()
    locker = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(store), str(LOCK_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
    (tmp_path / "gate" / "go").touch()  # the runs log their next rows into the locked store
    assert sweep.wait(timeout=90) == "finished"
    assert locker.wait() == 0
    runs = sweep.runs
    assert list(runs["state"]) == ["finished"] * 4 and list(runs["steps"]) == [6] * 4
    assert len(sweep.history()) == 24
    check.check(
        "every writer waits on SQLite's busy timeout (30 s) while the lock is held; then the"
        " sweep goes on and finishes",
        sweep.state,
    )


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


def test_store_removed_while_in_use(
    tmp_path: Path, fault: Callable[..., Fault], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a default store would appear
    store = tmp_path / "store" / "nbsweep.db"
    check = fault("store file removed while the sweep runs", str(store))
    sweep = nbsweep.sweep(held_grid(tmp_path), faulty.held, workers=2, store=str(store))
    mid_run(sweep)
    check.before()
    for path in store.parent.glob("nbsweep.db*"):  # as `rm .nbsweep/nbsweep.db*` does
        path.unlink()
    (tmp_path / "gate" / "go").touch()
    with pytest.raises(StoreError, match=f"store {store} was removed or replaced while in use"):
        sweep.wait(timeout=30)
    assert not list(store.parent.glob("nbsweep.db*"))  # no new empty store in its place
    assert not (tmp_path / ".nbsweep").exists()
    check.check(
        "the next store access raises StoreError naming the file; the controller stops and"
        " kills its agents (5 s grace); no new store is created in its place",
        "stopped (StoreError)",
        rows=False,
    )


def test_store_file_corrupted(tmp_path: Path, fault: Callable[..., Fault]) -> None:
    store = tmp_path / "store" / "nbsweep.db"
    config = {"method": "grid", "parameters": {"x": {"values": [1, 2]}, "epochs": {"value": 2}}}
    sweep = nbsweep.sweep(config, faulty.noop, workers=1, store=str(store))
    assert sweep.wait() == "finished"
    check = fault("store file corrupted between sessions", str(store))
    check.before()
    nbsweep.store.forget_store(str(store))
    with store.open("r+b") as handle:  # a disk error, a bad copy: the header is garbage
        handle.write(b"\xde\xad\xbe\xef" * 1024)
    digest = hashlib.sha256(store.read_bytes()).hexdigest()
    before = files_under(tmp_path)
    # A new kernel, as after a restart: load the sweep, or start a new one there.
    opened = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(REPO)!r}); import nbsweep\n"
            f"nbsweep.load({sweep.id!r}, store={str(store)!r})",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert opened.returncode == 1
    message = opened.stderr.strip().splitlines()[-2:]
    assert message == [
        f"nbsweep._errors.StoreError: sweep {sweep.id!r}: store {store} cannot be opened:"
        " file is not a database",
        "Pass another store= (or NBSWEEP_STORE); nbsweep left this one as it was",
    ]
    with pytest.raises(StoreError, match="file is not a database"):
        nbsweep.sweep(config, faulty.noop, workers=1, store=str(store))
    assert hashlib.sha256(store.read_bytes()).hexdigest() == digest
    assert files_under(tmp_path) == before  # nothing written anywhere
    check.check(
        "opening it raises StoreError with SQLite's words and what to change; the file is"
        " left byte for byte as it was and nothing is written elsewhere",
        "StoreError on open",
        rows=False,
    )


CUT_EVERY_S = 0.5
CUTS = 24  # bounded: the sweep ends even if the cutting outlives it


def cut_connections(url: str, application: str, done: threading.Event, cuts: list[int]) -> None:
    """Every CUT_EVERY_S, terminate on the server every connection named ``application``."""
    killer = sa.create_engine(url.split("?")[0], poolclass=sa.pool.NullPool)
    try:
        for _ in range(CUTS):
            if done.wait(CUT_EVERY_S):
                return
            with killer.connect() as conn:
                # Two statements: within one, the server may call pg_terminate_backend before
                # it has filtered the connections by name.
                pids = (
                    conn.execute(
                        sa.text(
                            "SELECT pid FROM pg_stat_activity WHERE application_name = :app"
                            " AND pid <> pg_backend_pid()"
                        ),
                        {"app": application},
                    )
                    .scalars()
                    .all()
                )
                for pid in pids:
                    conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                cuts.append(len(pids))
    finally:
        killer.dispose()


def test_postgresql_connections_cut_every_half_second(
    tmp_path: Path, fault: Callable[..., Fault], pg_url: str
) -> None:
    application = pg_url.rpartition("application_name=")[2]
    check = fault(f"PostgreSQL connections cut every {CUT_EVERY_S:g} s", pg_url)
    config = held_grid(tmp_path)
    config["parameters"]["x"] = {"values": list(range(1, 9))}
    sweep = nbsweep.sweep(config, faulty.held, workers=2, store=pg_url)
    mid_run(sweep)
    check.before()
    done, cuts = threading.Event(), list[int]()
    cutter = threading.Thread(target=cut_connections, args=(pg_url, application, done, cuts))
    cutter.start()
    try:
        # The controller, the API and the agents all meet lost connections mid-sweep.
        while len(cuts) < CUTS // 3:
            assert sweep.state == "running"
            time.sleep(0.05)
        (tmp_path / "gate" / "go").touch()
        assert sweep.wait(timeout=90) == "finished", sweep.message
    finally:
        done.set()
        cutter.join()
    assert sum(cuts) >= CUTS // 3  # connections were really cut, many times
    runs = sweep.runs
    assert list(runs["state"]) == ["finished"] * 8 and list(runs["steps"]) == [6] * 8
    assert len(sweep.history()) == 48
    check.check(
        "every statement of the controller, the API and the agents reconnects and runs its"
        " transaction again (for up to RECONNECT_S); the sweep finishes",
        sweep.state,
    )


@contextmanager
def kernel_connections(store: Store, pragma: str) -> Iterator[None]:
    """Every new connection of this process to ``store`` runs ``pragma`` while it lasts.

    The tests run as root, whom file modes do not stop, and no small filesystem can be
    mounted: SQLite's own switches give the errors a user meets. ``query_only`` refuses
    writes with SQLITE_READONLY, as a file the user may not write does; ``max_page_count``
    at the current size refuses to grow the file with SQLITE_FULL, as a full disk does.
    The agents (other processes) go on writing; only the controller and the API meet it.
    """

    def run(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(pragma)

    sa.event.listen(store.engine, "connect", run)
    store.engine.dispose()  # connections open so far knew nothing of it
    try:
        yield
    finally:
        sa.event.remove(store.engine, "connect", run)
        store.engine.dispose()


def finished_once(sweep: nbsweep.Sweep, xs: list[int]) -> None:
    """Every config of the grid finished exactly once (runs cut by the fault ran again), and
    the cut runs were found dead with their agents, not after STALE_RUN_S of silence."""
    runs = sweep.runs
    assert sorted(runs.loc[runs["state"] == "finished", "config/x"]) == xs
    assert set(runs["state"]) <= {"finished", "crashed"}
    errors = runs.loc[runs["state"] == "crashed", "error"].tolist()
    assert not [e for e in errors if e.startswith(f"{CrashReason.AGENT_SILENT} for ")], errors


def test_store_read_only(tmp_path: Path, fault: Callable[..., Fault]) -> None:
    store = tmp_path / "store.db"
    check = fault("store turned read-only while the sweep runs", str(store))
    sweep = nbsweep.sweep(held_grid(tmp_path), faulty.held, workers=2, store=str(store))
    mid_run(sweep)
    check.before()
    said = r"it is read-only \(attempt to write a readonly database\): make it writable again"
    with kernel_connections(sweep.store, "PRAGMA query_only = ON"):
        # The controller stops at its next write; the store cannot even record the pause.
        with pytest.raises(StoreFault, match=f"paused: store {store} cannot be written: {said}"):
            sweep.wait(timeout=60)
        with pytest.raises(StoreFault, match=said):
            sweep.cancel()
        assert sweep.state == "running"
    # Writable again: the pause is recorded, with what happened and what to do.
    assert sweep.wait(timeout=60) == "paused"
    assert re.fullmatch(
        f"paused: store {store} cannot be written: {said}.*, then sweep.resume\\(\\)", sweep.message
    )
    (tmp_path / "gate" / "go").touch()
    sweep.resume()
    assert sweep.wait(timeout=90) == "finished"
    finished_once(sweep, [1, 2, 3, 4])
    check.check(
        "the controller's next write fails: it stops its agents and records the pause with"
        " what to do once the store takes writes again (till then wait() and cancel() raise"
        " StoreFault saying so); resume() runs the cut runs again",
        sweep.state,
    )


def test_store_disk_full(tmp_path: Path, fault: Callable[..., Fault]) -> None:
    store = tmp_path / "store.db"
    check = fault("store's disk full while the sweep runs", str(store))
    config = held_grid(tmp_path)
    config["parameters"]["x"] = {"values": list(range(1, 7))}
    # Each queued run then needs a page of its own: the controller's next one needs space.
    config["parameters"]["pad"] = {"value": "p" * 3000}
    sweep = nbsweep.sweep(config, faulty.held, workers=1, store=str(store))
    mid_run(sweep, runs=1)
    check.before()
    said = f"store {store} cannot be written: its disk is full \\(database or disk is full\\)"
    with kernel_connections(sweep.store, "PRAGMA max_page_count = 1"):
        (tmp_path / "gate" / "go").touch()  # the agent ends its run: a new one must be queued
        try:  # whether the store has room left for the pause itself is up to SQLite's pages
            state, message = sweep.wait(timeout=60), sweep.message
        except StoreFault as exc:
            state, message = "not recorded", str(exc)
        assert state in ("paused", "not recorded")
        assert re.search(f"paused: {said}: free space on that disk, then sweep.resume", message)
    assert sweep.wait(timeout=60) == "paused"
    assert re.fullmatch(
        f"paused: {said}: free space on that disk, then sweep.resume\\(\\)", sweep.message
    )
    sweep.resume()
    assert sweep.wait(timeout=90) == "finished"
    finished_once(sweep, list(range(1, 7)))
    check.check(
        "the controller's next write fails: it stops its agents and records the pause, with"
        " what to do, as soon as the store has room; resume() runs the cut runs again",
        sweep.state,
    )
