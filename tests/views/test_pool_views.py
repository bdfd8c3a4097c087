"""The dashboard shows which sweep holds which GPU, the runs' GPU figures and the GPU-hours."""

from __future__ import annotations

import time

import nbsweep
from nbsweep import views
from nbsweep.agents import FakeNVML
from nbsweep.widgets import Dashboard, _html
from tests import gpu_trainfns


def endless(epochs: int) -> dict:
    """A sweep that runs until it is cancelled: random search without a run_cap."""
    return {
        "method": "random",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": [0, 1, 2, 3]}, "epochs": {"value": epochs}},
        "scheduler": {"num_workers": 1},
    }


def test_dashboard_names_the_sweep_on_each_gpu_and_what_runs_cost(sqlite_store: str) -> None:
    gpus = FakeNVML([{"uuid": "GPU-a", "util": 60}, {"uuid": "GPU-b", "util": 60}])
    mine = nbsweep.sweep(endless(4), gpu_trainfns.busy, store=sqlite_store, nvml=gpus, name="mine")
    other = nbsweep.sweep(
        endless(4), gpu_trainfns.busy, store=sqlite_store, nvml=gpus, name="other"
    )
    deadline = time.monotonic() + 60
    while len(mine.gpu_pool.query("state == 'holds'")) < 2:
        assert time.monotonic() < deadline, mine.gpu_pool
        time.sleep(0.05)
    line = Dashboard(mine).pool_line.value
    held = {row["gpu"]: row["sweep_id"] for _, row in mine.gpu_pool.iterrows()}
    mine_gpu = next(g for g, s in held.items() if s == mine.id)
    other_gpu = next(g for g, s in held.items() if s == other.id)
    assert f"{mine_gpu} → <b>this sweep</b>" in line
    assert f"{other_gpu} → other (medium)" in line
    deadline = time.monotonic() + 60
    while (mine.runs["state"] == "finished").sum() < 2:
        assert time.monotonic() < deadline, mine.runs
        time.sleep(0.05)
    for sweep in (mine, other):
        sweep.cancel()
        assert sweep.wait(60) == "cancelled"

    snap = views.Snapshot.from_sweep(mine, history=False)
    table = _html.runs_table_html(views.runs_table_info(snap))
    assert "GPU-s" in table and "60%" in table
    header = _html.header_html(views.header_info(snap))
    assert "GPU-hours used" in header and str(mine.cost()) in header
    assert _html.gpu_pool_html(mine.gpu_pool, mine.id) == ""  # every GPU is free again
