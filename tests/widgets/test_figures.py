"""A tab's figure is updated in place as runs come and go, and a click on a line names its run."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nbsweep.widgets._figures import FigurePane

go = pytest.importorskip("plotly.graph_objects")
pytest.importorskip("anywidget")


def lines(runs: list[str]) -> object:
    fig = go.Figure()
    for i, run in enumerate(runs):
        fig.add_trace(go.Scatter(x=[1, 2], y=[i, i + 1], name=run, customdata=[[run, "x"]] * 2))
    return fig


def test_runs_added_and_gone_update_the_same_figure():
    clicked: list[str] = []
    pane = FigurePane(lambda runs: None, lines, on_run=clicked.append)
    pane.draw(["r1", "r2"])
    figure = pane.figure
    pane.draw(["r1", "r2", "r3"])
    assert pane.figure is figure and [t.name for t in figure.data] == ["r1", "r2", "r3"]
    pane.draw(["r1"])
    assert pane.figure is figure and [t.name for t in figure.data] == ["r1"]
    assert figure.layout.uirevision == "nbsweep"  # zoom and legend clicks kept
    pane.draw(["r1", "r9"])
    pane._clicked(figure.data[1], SimpleNamespace(point_inds=[0]), None)
    assert clicked == ["r9"]
