"""The header: a clock that runs between redraws, and a sweep nobody controls said plainly."""

from __future__ import annotations

import pandas as pd

from nbsweep import validate, views
from nbsweep.widgets import _html

CONFIG = validate(
    {
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"values": [1, 2, 3, 4]}},
    }
)


def live_header() -> views.HeaderInfo:
    runs = pd.DataFrame(
        {
            "run_id": ["r1", "r2", "r3"],
            "state": ["finished", "running", "pending"],
            "config/x": [1, 2, 3],
            "summary/loss": [0.5, None, None],
            "created_at": pd.to_datetime([0, 10, 20], unit="s", utc=True),
            "ended_at": pd.to_datetime([30, None, None], unit="s", utc=True),
        }
    )
    snap = views.Snapshot(
        id="sw1", name="clock", method="grid", state="running", message="", config=CONFIG,
        created_at=0.0, progress=(1, 4), runs=runs, taken_at=60.0,
    )  # fmt: skip
    return views.header_info(snap)


def test_elapsed_moves_on_between_snapshots():
    info = live_header()
    assert 'elapsed <span class="nbs-elapsed">1m' in _html.header_html(info, now=60.0)
    later = _html.header_html(info, now=60.0 + 3600)
    assert 'elapsed <span class="nbs-elapsed">1h' in later


def test_a_live_sweep_without_a_controller_says_how_to_resume_it():
    info = live_header()
    shown = _html.header_html(info, now=120.0, controller_alive=False)
    assert "no controller" in shown
    assert "%sweep resume sw1" in shown and "nbsweep resume sw1" in shown
    assert "ETA" not in shown  # nothing moves until someone resumes it
    # Its clock stops where the snapshot saw it.
    assert shown.count("1m") >= 1 and "2m" not in shown
    assert "no controller" not in _html.header_html(info, now=120.0)
