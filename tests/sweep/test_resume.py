"""Resuming a sweep whose controller died: every grid point still finishes exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

import nbsweep
from nbsweep._states import CrashReason
from nbsweep.store import pid_alive
from tests import trainfns
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys

sys.path.insert(0, {repo!r})
import nbsweep
from tests import trainfns

# Points 3 and 4 stop after 3 rows at a gate the test opens only once this process is gone.
config = {{
    "method": "grid",
    "parameters": {{
        "x": {{"values": [1, 2, 3, 4]}},
        "epochs": {{"value": 6}},
        "hold_from": {{"value": 3}},
        "hold_at": {{"value": 3}},
        "gate": {{"value": sys.argv[2]}},
    }},
}}
sweep = nbsweep.sweep(config, trainfns.gated, workers=2, store=sys.argv[1])
print(sweep.id, flush=True)
sweep.wait()
"""


def last_points_mid_way(runs: pd.DataFrame) -> bool:
    """Points 1 and 2 finished, 3 and 4 running with rows logged: nothing left pending."""
    running = runs.query("state == 'running' and steps >= 3")
    return (runs["state"] == "finished").sum() == 2 and len(running) == 2


def test_resume_after_the_controller_died_late_in_a_grid_runs_each_point_once(
    tmp_path: Path, sqlite_store: str
) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT.format(repo=str(REPO))))
    gate = tmp_path / "gate"
    process = subprocess.Popen(
        [sys.executable, str(script), sqlite_store, str(gate)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        sweep_id = process.stdout.readline().strip()
        sweep = nbsweep.load(sweep_id, store=sqlite_store)
        wait_for(lambda: last_points_mid_way(sweep.runs))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    pids = [p for p in sweep.agents["pid"] if p]
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=10)
    cut = sweep.runs.query("state == 'crashed'")
    assert sorted(cut["config/x"]) == [3, 4] and set(cut["error"]) == {CrashReason.CONTROLLER_DIED}

    # The new controller's first look finds the grid's last points cut and none pending: it
    # queues those two again, and the grid must count the copies as taken.
    gate.touch()
    nbsweep.load(sweep_id, store=sqlite_store).resume(train=trainfns.gated)
    assert sweep.wait() == "finished"
    runs = sweep.runs
    assert sorted(runs.query("state == 'finished'")["config/x"]) == [1, 2, 3, 4]
    assert len(runs) == 6  # the two cut runs stay, crashed, with their rows
    assert set(runs.dropna(subset=["requeued_from"])["requeued_from"]) == set(cut["run_id"])
