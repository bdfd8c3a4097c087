"""The runtime suite on PostgreSQL too: every test that takes a store runs on both.

Runtime tests take their store from ``sqlite_store``; each runs a second time, unchanged,
with it pointing at a fresh PostgreSQL schema (test ids ending in ``[postgresql]``), except
the few in ``SQLITE_ONLY`` that check what only a local file has. The claim, race and lease
tests take ``store_url`` and run on both the same way. ``NBSWEEP_TEST_STORE=sqlite`` keeps
the suite on SQLite alone (a machine without PostgreSQL).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# What only a SQLite file has: file modes, the owner check of a local file.
SQLITE_ONLY = {
    "test_store_files_and_directories_are_private",
    "test_a_dead_local_owner_loses_the_lease_at_once",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sqlite_store" not in metafunc.fixturenames:
        return
    sqlite_alone = os.environ.get("NBSWEEP_TEST_STORE") == "sqlite"
    if not sqlite_alone and metafunc.function.__name__ not in SQLITE_ONLY:
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
