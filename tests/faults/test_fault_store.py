"""Faults of the store file: locked by another process, removed while in use, corrupted."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import nbsweep
from nbsweep import StoreError
from tests.faults import faulty
from tests.faults.conftest import REPO, Fault

pytestmark = pytest.mark.timeout(120)

LOCK_S = 3.0
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
