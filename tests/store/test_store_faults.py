"""Store faults a user meets without a crash: many processes creating one store at once, a
full disk or a read-only store (the error says which), long error texts."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

import nbsweep
from nbsweep._errors import StoreFault
from nbsweep.store import Finish, _engine, open_store, owner_alive, pid_alive
from nbsweep.store._codec import ERROR_BYTES
from tests.faults.conftest import REPO

pytestmark = pytest.mark.timeout(120)

PROCESSES = 6
# Waits at the gate (a file the test creates once every process is ready), then opens the
# store and creates a sweep in it, as each task of a SLURM job array does at its start.
CREATE = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from nbsweep.store import new_id, open_store
gate, store, name = sys.argv[2:5]
open(gate + "." + name, "w").close()
while not os.path.exists(gate):
    time.sleep(0.001)
opened = open_store(store)
config = {"method": "grid", "parameters": {"x": {"values": [1]}}}
opened.create_sweep(new_id(), name, "grid", config, None, None, "pending")
print("created", flush=True)
"""


def test_processes_create_one_store_at_once(tmp_path: Path) -> None:
    store, gate = tmp_path / ".nbsweep" / "nbsweep.db", tmp_path / "gate"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CREATE, str(REPO), str(gate), str(store), f"task{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    ready = [Path(f"{gate}.task{i}") for i in range(PROCESSES)]
    try:
        while not all(path.exists() for path in ready):
            assert all(p.poll() is None for p in processes), "a process died before the gate"
            time.sleep(0.01)
        gate.touch()  # all at once
        results = [p.communicate(timeout=90) for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert [p.returncode for p in processes] == [0] * PROCESSES, [e for _, e in results]
    assert [out for out, _ in results] == ["created\n"] * PROCESSES
    names = sorted(s.name for s in open_store(str(store)).sweeps())
    assert names == sorted(f"task{i}" for i in range(PROCESSES))


def test_a_new_store_held_by_another_process_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite answers the switch of a new store to WAL with "database is locked" at once, not
    after its busy timeout, while another process holds the store's write lock."""
    path = tmp_path / "nbsweep.db"
    path.touch()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    waiting = threading.Event()

    def sleep(seconds: float) -> None:
        waiting.set()
        time.sleep(seconds)

    monkeypatch.setattr(_engine, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    ended: list[object] = []

    def open_it() -> None:
        try:
            ended.append(open_store(str(path)))
        except Exception as exc:
            ended.append(exc)

    opener = threading.Thread(target=open_it)
    opener.start()
    while opener.is_alive() and not waiting.wait(0.01):
        pass
    holder.execute("COMMIT")
    opener.join(60)
    assert len(ended) == 1 and not isinstance(ended[0], Exception), ended
    assert ended[0].sweeps() == []


LONG_LINES = """
import sys
for i in range(40):
    print(f"line {i} " + "x" * 100_000)
print("the last words", file=sys.stderr)
sys.exit(3)
"""


def test_a_program_printing_long_lines_stores_a_capped_error(tmp_path: Path) -> None:
    (tmp_path / "long.py").write_text(LONG_LINES)
    config = {
        "method": "grid",
        "program": str(tmp_path / "long.py"),
        "parameters": {"x": {"values": [1]}},
    }
    sweep = nbsweep.sweep(config, workers=1, store=str(tmp_path / "store.db"))
    assert sweep.wait(timeout=90) == "finished"
    (run,) = sweep.runs.to_dict("records")
    error = sweep.get_run(run["run_id"]).error
    assert run["state"] == "failed" and error is not None
    assert len(error.encode()) <= ERROR_BYTES
    # Its end is kept, where it says how the program ended; a note says what was cut.
    assert error.endswith("the last words\nprogram exited with code 3")
    assert re.match(r"\[nbsweep: the first \d+ bytes of this error were cut", error)


def test_every_error_text_is_capped(sqlite_store: str) -> None:
    store = open_store(sqlite_store)
    config = {"method": "grid", "parameters": {"x": {"values": [1, 2]}}}
    store.create_sweep("sw", "long", "grid", config, None, None, "running")
    huge = "é" * ERROR_BYTES + " the end"  # two bytes a character: cut inside one
    failed, crashed = store.add_runs("sw", [{"x": 1}, {"x": 2}])
    store.claim("sw", 0)
    store.finish(Finish(run_id=failed, state="failed", summary={}, error=huge))
    store.claim("sw", 1)
    store.end_runs("sw", [crashed], "crashed", {crashed: huge})
    store.update_sweep("sw", state="paused", message=huge, event=huge)
    texts = [
        store.run(failed).error,
        store.run(crashed).error,
        store.sweep("sw").message,
        *[e.message for e in store.events("sw")][-2:],
    ]
    for text in texts:
        assert len(text.encode()) <= ERROR_BYTES
        assert text.endswith("éé the end") and text.startswith("[nbsweep: the first")


def test_a_zombie_agent_is_not_alive() -> None:
    """A killed agent whose controller never reaped it stays a zombie: its runs are free."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        while os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            time.sleep(0.01)  # ended, not reaped: a zombie
        assert not pid_alive(process.pid)
        assert not owner_alive(f"{socket.gethostname()}:{process.pid}:abcdef")
        assert pid_alive(os.getpid())
    finally:
        process.wait()


def test_a_read_only_postgresql_store_says_so(pg_url: str) -> None:
    config = {"method": "grid", "parameters": {"x": {"values": [1]}}}
    open_store(pg_url).create_sweep("sw", "ro", "grid", config, None, None, "running")
    # A standby, or a database set read-only: every transaction refuses writes.
    on = "options=-cdefault_transaction_read_only%3Don%20"
    read_only = open_store(pg_url.replace("options=", on))
    assert read_only.sweep("sw") is not None  # reads go on
    with pytest.raises(StoreFault, match=r"cannot be written: it is read-only \(.*read-only"):
        read_only.update_sweep("sw", state="paused")


@pytest.mark.parametrize("server_kept_it", [False, True])
def test_a_commit_whose_answer_is_lost_is_written_once(pg_url: str, server_kept_it: bool) -> None:
    """The connection breaks as the controller commits: the COMMIT never reached the server,
    or the server committed and its answer was lost. The server says which (txid_status):
    the write is run again, or taken as done; either way it is in the store once."""
    store = open_store(pg_url)
    config = {"method": "grid", "parameters": {"x": {"values": [1, 2]}}}
    store.create_sweep("sw", "cut", "grid", config, None, None, "running")
    cut: list[bool] = []

    def break_at_commit(conn: sa.Connection) -> None:
        if cut:
            return
        cut.append(True)
        driver = conn.connection.dbapi_connection
        if server_kept_it:  # committed behind the driver's back; it still thinks it is in one
            driver.pgconn.exec_(b"COMMIT; BEGIN")
        fd = os.dup(driver.pgconn.socket)
        with socket.socket(fileno=fd) as raw:
            raw.shutdown(socket.SHUT_RDWR)  # the driver's COMMIT goes nowhere

    sa.event.listen(store.engine, "commit", break_at_commit)
    try:
        store.add_runs("sw", [{"x": 1}])
    finally:
        sa.event.remove(store.engine, "commit", break_at_commit)
    assert cut == [True]
    assert [r.config for r in store.runs("sw")] == [{"x": 1}]
