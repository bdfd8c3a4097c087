"""The runtime suite on PostgreSQL too: the tests that lean on the store run on both.

Runtime tests take their store from ``sqlite_store``. Those named in ``ON_POSTGRESQL``
(crashes, pause/resume, stop, cancel, run_cap, logging) run a second time with it pointing
at a fresh PostgreSQL schema (test ids ending in ``[postgresql]``), unchanged; the claim,
race and lease tests take ``store_url`` and run on both anyway.
``NBSWEEP_TEST_STORE=postgresql`` runs every runtime test that takes a store on both.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ON_POSTGRESQL = {
    "test_a_dead_agent_crashes_its_run_and_is_replaced",
    "test_run_cap_limits_the_runs_launched",
    "test_pause_keeps_pending_runs_waiting_and_resume_goes_on",
    "test_stop_lets_running_runs_finish_and_starts_no_more",
    "test_cancel_kills_running_runs",
    "test_log_returns_only_once_the_row_is_in_the_store",
}
# What only a SQLite file has: file modes, the owner check of a local file.
SQLITE_ONLY = {
    "test_store_files_and_directories_are_private",
    "test_a_dead_local_owner_loses_the_lease_at_once",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sqlite_store" not in metafunc.fixturenames:
        return
    name = metafunc.function.__name__
    everything = os.environ.get("NBSWEEP_TEST_STORE") == "postgresql"
    if name in ON_POSTGRESQL or (everything and name not in SQLITE_ONLY):
        metafunc.parametrize("sqlite_store", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def sqlite_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The test's store: a fresh SQLite file, or (``[postgresql]``) a fresh PostgreSQL schema.

    On PostgreSQL the test runs from its own directory, where the store keeps logs and the
    shipped train functions (``./.nbsweep``).
    """
    if getattr(request, "param", "sqlite") == "sqlite":
        return str(tmp_path / ".nbsweep" / "nbsweep.db")
    monkeypatch.chdir(tmp_path)
    return request.getfixturevalue("pg_url")
