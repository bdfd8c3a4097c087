"""The fault matrix's bookkeeping: what each scenario kept, what it left running.

Every scenario checks what a user relies on after a fault: the sweep's end state, that every
row logged before the fault is still in the store, and that no process is left behind. The
figures are collected here and written at the end of the session to
``build/reliability.json`` (or ``$NBSWEEP_RELIABILITY_JSON``), from which
``python -m tests.faults.report`` renders docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa

from nbsweep.store import resolve_url

REPO = Path(__file__).resolve().parents[2]
REPORT = Path(os.environ.get("NBSWEEP_RELIABILITY_JSON", REPO / "build" / "reliability.json"))
# How long processes get to leave on their own after the sweep ended: a bound, not a wait (a
# controller that shuts down waits nbsweep._timing.AGENT_GRACE_S for its agents, then kills
# them).
LEAVE_S = 15.0

_scenarios: dict[str, dict[str, Any]] = {}
_bad_inputs: dict[str, int] = {}


@dataclass
class Figures:
    """One row of the matrix as docs/reliability.md shows it."""

    scenario: str
    happens: str
    end_state: str
    rows_before: int | None
    rows_lost: int | None
    processes_left: int
    test: str


def store_rows(store: str) -> set[tuple[str, int, str]]:
    """Every logged row of the store, read through a connection of its own."""
    engine = sa.create_engine(resolve_url(store))
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT run_id, step, data FROM nbsweep_rows")).all()
    finally:
        engine.dispose()
    return {(run_id, step, data) for run_id, step, data in found}


def store_agent_pids(store: str) -> list[int]:
    engine = sa.create_engine(resolve_url(store))
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT pid FROM nbsweep_agents")).scalars().all()
    finally:
        engine.dispose()
    return [pid for pid in found if pid]


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def processes_of(
    where: Path, pids: Sequence[int], earlier: frozenset[int] = frozenset()
) -> list[psutil.Process]:
    """Processes still running that belong to the test: its children (but those ``earlier``
    than it, e.g. a session's cluster), the agents in ``pids`` and anything whose command
    line names the test's directory (agents and the programs they start)."""
    me = psutil.Process()
    found = {p.pid: p for p in me.children(recursive=True) if p.pid not in earlier}
    for pid in pids:
        if pid not in found and psutil.pid_exists(pid):
            try:
                process = psutil.Process(pid)
                if "nbsweep" in " ".join(process.cmdline()):
                    found[pid] = process
            except psutil.Error:
                continue
    for process in psutil.process_iter(["cmdline"]):
        if process.pid != me.pid and str(where) in " ".join(process.info["cmdline"] or ()):
            found.setdefault(process.pid, process)
    return [p for p in found.values() if _running(p)]


class Fault:
    """One scenario of the matrix: ``before()`` at the fault, ``check()`` once it is over."""

    def __init__(self, scenario: str, store: str, where: Path, test: str) -> None:
        self.scenario = scenario
        self.store = store
        self.where = where
        self.test = test
        self.kept: set[tuple[str, int, str]] | None = None
        self.expected: int | None = None
        self.earlier = frozenset(p.pid for p in psutil.Process().children(recursive=True))

    def before(self) -> int:
        """Note the rows logged so far (the fault comes next); returns how many."""
        self.kept = store_rows(self.store)
        return len(self.kept)

    def expect(self, rows: int) -> None:
        """Where every row is part of the fault (odd values): the rows the runs logged."""
        self.expected = rows

    def processes_left(self, pids: Sequence[int] = ()) -> list[psutil.Process]:
        """What of the test still runs once its processes had LEAVE_S to leave."""
        deadline = time.monotonic() + LEAVE_S
        while True:
            left = processes_of(self.where, pids, self.earlier)
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.1)

    def check(self, happens: str, end_state: str, rows: bool = True) -> Figures:
        """Record the figures, then assert nothing was lost and nothing is left running.

        ``rows=False`` where the fault removed the store itself: there is nothing to count.
        """
        assert self.kept is not None or self.expected is not None, "call before() or expect()"
        before, lost, pids = None, None, []
        if rows:
            now = store_rows(self.store)
            pids = store_agent_pids(self.store)
            if self.kept is not None:
                before, lost = len(self.kept), len(self.kept - now)
            else:
                before, lost = self.expected, max(0, (self.expected or 0) - len(now))
        left = self.processes_left(pids)
        figures = Figures(
            scenario=self.scenario,
            happens=happens,
            end_state=end_state,
            rows_before=before,
            rows_lost=lost,
            processes_left=len(left),
            test=self.test,
        )
        _scenarios[self.scenario] = asdict(figures)
        assert not lost, f"{lost} rows logged before the fault are gone"
        assert not left, f"left running: {[(p.pid, p.cmdline()) for p in left]}"
        return figures


@pytest.fixture
def fault(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str, str], Fault]:
    """``fault(scenario, store)``: the bookkeeping of one scenario of the matrix."""

    def make(scenario: str, store: str) -> Fault:
        return Fault(scenario, store, tmp_path, request.node.nodeid)

    return make


@pytest.fixture
def bad_inputs() -> Callable[[str, int], None]:
    """``bad_inputs(kind, count)``: how many bad inputs of a kind a test tried."""

    def record(kind: str, count: int) -> None:
        _bad_inputs[kind] = _bad_inputs.get(kind, 0) + count

    return record


@pytest.fixture
def kernel_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Kernels started by nbclient run this venv's python (the kernelspec says "python")."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.delenv("NBSWEEP_STORE", raising=False)
    yield


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _scenarios and not _bad_inputs:
        return
    # Under pytest-xdist each worker keeps its own figures: make reliability runs serially.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    target = REPORT.with_name(f"{REPORT.stem}-{worker}{REPORT.suffix}") if worker else REPORT
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        json.dumps(
            {
                "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
                "failed": session.testsfailed,
                "scenarios": _scenarios,
                "bad_inputs": _bad_inputs,
            },
            indent=2,
        )
        + "\n"
    )
