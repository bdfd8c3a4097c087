"""The dashboards of a live sweep with 10,000 finished runs: a refresh costs what changed.

The runs are written through the Store API as agents write them (claim, then finish). What is
asserted are counts (store probes, snapshots, runs read back), never durations: the refresh
times at this size are figures for benchmarks/, not for tests.
"""

from __future__ import annotations

from typing import Any

import pytest

import nbsweep
from nbsweep.config import validate
from nbsweep.store import Finish, new_id, open_store
from nbsweep.widgets import Dashboard, HtmlDashboard
from nbsweep.widgets._feed import BUSY_SHARE, next_wait
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(300)

SIZE = 10_000
CONFIG = {
    "method": "random",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {"x": {"values": list(range(100))}, "y": {"values": list(range(100))}},
}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A running sweep (no agents of its own) whose 10,000 runs have finished."""
    path = tmp_path_factory.mktemp("big") / "nbsweep.db"
    store = open_store(path)
    sweep_id = new_id()
    store.create_sweep(sweep_id, "big", "random", validate(CONFIG), None, 0, "running")
    store.add_runs(sweep_id, [{"x": i % 100, "y": i // 100} for i in range(SIZE)])
    finish = None
    while (claim := store.claim(sweep_id, 0, finish=finish)) is not None:
        loss = float(claim.config["x"] + claim.config["y"])
        finish = Finish(claim.run_id, "finished", {"loss": loss})
    store.finish(finish)
    return nbsweep.load(sweep_id, store=path)


def finish_one_more(sweep: Any, loss: float) -> str:
    """Queue one more run, and let an agent claim and finish it with ``loss``."""
    store = sweep.store
    (run_id,) = store.add_runs(sweep.id, [{"x": 0, "y": 0}])
    claim = store.claim(sweep.id, 1)
    assert claim is not None and claim.run_id == run_id
    store.finish(Finish(run_id, "finished", {"loss": loss}))
    return run_id


def test_a_live_dashboard_reads_10000_runs_once_while_nothing_changes(big):
    runs = len(big.runs)
    dash = Dashboard(big)
    feed = dash.feed
    assert f"<b>{runs} runs</b>" in dash.header.value
    assert feed.full_reads == 1 and feed.runs_read == runs
    dash.interval = 0.01  # probe as often as it may
    dash.start()
    try:
        wait_for(lambda: feed.checks >= 10, "the refresher stopped probing the store", 120)
        # Ten probes, and not one snapshot or run read after the first draw.
        assert feed.snapshots == 1 and feed.runs_read == runs
    finally:
        dash.close()


def test_one_more_run_is_drawn_from_the_runs_that_can_change_only(big):
    dash = Dashboard(big)
    feed = dash.feed
    read, taken = feed.runs_read, feed.snapshots
    assert dash.importance.value == ""  # a tab not shown is not drawn
    dash.interval = 0.01
    dash.start()
    try:
        run_id = finish_one_more(big, loss=-1.0)
        wait_for(lambda: f"run {run_id}" in dash.header.value, "the new best run never showed", 120)
        assert f"<b>{len(big.runs)} runs</b>" in dash.header.value
        snapshots = feed.snapshots - taken
        # Each snapshot read back at most the one run that changed, never the 10,000 others.
        assert 1 <= feed.runs_read - read <= snapshots
        assert feed.full_reads == 1
        assert dash.importance.value == ""  # redraws leave hidden tabs alone
    finally:
        dash.close()


def test_html_dashboard_redraws_only_when_the_store_changed(big):
    view = HtmlDashboard(big)
    assert view.refresh()  # the first look
    read, taken = view.feed.runs_read, view.feed.snapshots
    assert not any(view.refresh() for _ in range(5))
    assert view.feed.snapshots == taken and view.feed.runs_read == read
    run_id = finish_one_more(big, loss=-2.0)
    assert view.refresh()
    table = view.bundle()["text/html"].split("<th>run</th>")[1]
    assert run_id in table.split("<tr data-run=")[1]  # the best run, first in the table
    assert view.feed.runs_read - read == 1  # the new run, read once: then it is settled


def test_a_slow_refresh_is_followed_by_a_wait_ten_times_as_long():
    assert next_wait(0.5, 0.01) == 0.5
    took = 2.0
    wait = next_wait(0.5, took)
    assert took / (took + wait) <= BUSY_SHARE
