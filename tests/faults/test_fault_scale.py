"""Size as a fault: a 10,000-point grid run to its end, then its 10,000 finished runs viewed.

The views must complete; how long they took is a figure for the matrix, never asserted
(speed is benchmarks/' job).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

import nbsweep
from nbsweep.widgets import Dashboard, HtmlDashboard
from tests.faults import faulty
from tests.faults.conftest import Fault

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SIDE = 100
SIZE = SIDE * SIDE


def test_a_10000_point_grid_and_its_10000_finished_runs(
    tmp_path: Path, fault: Callable[..., Fault]
) -> None:
    store = str(tmp_path / "store.db")
    config = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": list(range(SIDE))}, "y": {"values": list(range(SIDE))}},
    }
    grid = fault("a 10,000-point grid", store)
    grid.expect(SIZE)
    sweep = nbsweep.sweep(config, faulty.one_row, workers=2, store=store)
    assert sweep.wait(timeout=240) == "finished"
    runs = sweep.runs
    assert set(runs["state"]) == {"finished"}
    assert len(set(zip(runs["config/x"], runs["config/y"], strict=True))) == SIZE
    grid.check("every point runs once, each logs its row, and the sweep finishes", sweep.state)

    viewed = fault("10,000 finished runs: runs, history, dashboards", store)
    viewed.before()
    took = {}
    start = time.monotonic()
    assert len(sweep.runs) == SIZE
    took["Sweep.runs"] = time.monotonic() - start
    start = time.monotonic()
    assert len(sweep.history()) == SIZE
    took["history()"] = time.monotonic() - start
    start = time.monotonic()
    header = Dashboard(sweep).header.value
    took["widget dashboard"] = time.monotonic() - start
    assert f"<b>{SIZE} / {SIZE} runs</b>" in header
    start = time.monotonic()
    html = HtmlDashboard(sweep).bundle()["text/html"]
    took["HTML dashboard"] = time.monotonic() - start
    assert html.count("<tr") > 50  # the first 50 runs and the header row
    assert sweep.best_run is not None and sweep.best_run.config == {"x": 0, "y": 0}
    viewed.check(
        "each completes (" + ", ".join(f"{k} {v:.1f} s" for k, v in took.items()) + ")",
        sweep.state,
    )
