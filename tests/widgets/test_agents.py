"""The agents list: the agents still there, and a count of those that have exited."""

from __future__ import annotations

import pandas as pd

from nbsweep.widgets import _html


def agents(*states: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "agent": list(range(len(states))),
            "gpu": [""] * len(states),
            "gpu_name": [""] * len(states),
            "state": list(states),
            "run_id": ["r1" if s == "busy" else None for s in states],
        }
    )


def test_exited_agents_are_counted_not_listed_as_dead():
    # Two of an earlier controller (before a restart) and one that left cleanly.
    shown = _html.agents_html(agents("dead", "dead", "busy", "idle", "dead"), {})
    assert shown.count("<tr>") == 3  # the heading row and the two agents still there
    assert "busy" in shown and "idle" in shown and "r1" in shown
    assert "dead" not in shown and "3 agents have exited" in shown


def test_an_ended_sweep_shows_only_how_many_agents_exited():
    shown = _html.agents_html(agents("dead", "dead"), {})
    assert "<table" not in shown and "dead" not in shown
    assert "2 agents have exited" in shown
    assert "1 agent has exited" in _html.agents_html(agents("dead"), {})
    assert "no agents" in _html.agents_html(agents(), {})
