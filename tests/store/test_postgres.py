"""The store on a real PostgreSQL server when the server drops the connections of an agent."""

from __future__ import annotations

import pytest

import nbsweep
from tests.store import pgfns

pytestmark = pytest.mark.timeout(120)


def test_rows_logged_across_lost_connections_are_all_kept_once(pg_url: str, in_tmp: object) -> None:
    config = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": [1, 2]}},
    }
    sweep = nbsweep.sweep(config, pgfns.logs_through_lost_connections, workers=1, store=pg_url)
    assert sweep.wait(timeout=90) == "finished"
    runs = sweep.runs
    assert list(runs["state"]) == ["finished", "finished"], runs["error"].tolist()
    # Each run lost all of its agent's connections twice (at least the one it logs through).
    assert all(runs["summary/connections_cut"] >= len(pgfns.CUT_AT))
    history = sweep.history()
    for run_id, x in zip(runs["run_id"], runs["config/x"], strict=True):
        rows = history[history["run_id"] == run_id]
        assert list(rows["i"]) == list(range(pgfns.ROWS))  # none lost, none twice
        assert list(rows["loss"]) == [float(x * i) for i in range(pgfns.ROWS)]
