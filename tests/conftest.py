"""Shared fixtures (a private SQLite store per test, a private PostgreSQL schema), the time
scale of every test process and the tier markers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Leases, heartbeats, agent silence and idle GPU hand-over at 0.3 of real time
# (nbsweep/_timing.py), here and in every agent, program and kernel a test starts (they
# inherit the environment). Set before nbsweep is imported. Not lower: a lease (1.5 s) must
# outlive a process stalled by a machine whose cores are all busy.
os.environ.setdefault("NBSWEEP_TIME_SCALE", "0.3")

PG_SERVER = os.environ.get("NBSWEEP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TESTS = Path(__file__).parent
# Each test's tier (a marker: ``pytest -m runtime``), by the longest entry naming its
# directory or file, relative to tests/.
TIERS = {
    "agents": "runtime",
    "agents/test_dask.py": "scale",
    "agents/test_pool.py": "pool",
    "analysis": "analysis",
    "analysis/test_analysis.py": "engine",
    "benchmarks": "benchmarks",
    "cli": "scale",
    "command": "scale",
    "config": "engine",
    "cost": "pool",
    "faults": "faults",
    "integrations": "integrations",
    "notebook": "notebook",
    "schedulers": "launch",
    "search": "engine",
    "space": "engine",
    "states": "engine",
    "stopping": "engine",
    "store": "runtime",
    "store/test_postgres.py": "scale",
    "store/test_store_upgrade.py": "pool",
    "sweep": "runtime",
    "test_layers.py": "lint",
    "views": "notebook",
    "views/test_pool_views.py": "pool",
    "wandb": "integrations",
    "widgets": "notebook",
}


def tier_of(path: Path) -> str | None:
    """The tier of a test file: the entry of ``TIERS`` that names most of its path."""
    parts = path.relative_to(TESTS).parts
    for end in range(len(parts), 0, -1):
        tier = TIERS.get("/".join(parts[:end]))
        if tier is not None:
            return tier
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(Path(item.path))
        if tier is None:
            raise pytest.UsageError(f"{item.path}: no tier; add its directory to TIERS")
        item.add_marker(tier)
    # The long tests (real kernels, the browser) first: on two workers they then overlap with
    # each other and the short ones fill the end, instead of one long test running alone last.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    """Path of a fresh SQLite store file (not created yet) in the test's own directory."""
    return str(tmp_path / ".nbsweep" / "nbsweep.db")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL schema, dropped afterwards, so parallel sessions never meet."""
    sa = pytest.importorskip("sqlalchemy")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_SERVER)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_SERVER} is needed for this test: {exc}")
    try:
        # Named after the schema too, so a test can find (and kill) its own connections.
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}&application_name={schema}"
    finally:
        from nbsweep.store import _store

        with _store._stores_lock:
            for url in [u for u in _store._stores if schema in u]:
                _store._stores.pop(url).dispose()
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store of each kind: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / ".nbsweep" / "nbsweep.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from its own directory, so default stores and logs land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _program_files_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Script runs write W&B's ``wandb/sweep-<id>/`` under ``WANDB_DIR``: not in the repo."""
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
