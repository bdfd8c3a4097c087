"""A tab's figure is updated in place, built anew for new lines; a click on a line names its run."""

from __future__ import annotations

from types import SimpleNamespace

import anywidget  # noqa: F401 - FigureWidget is built on it
import plotly.graph_objects as go

from nbsweep.widgets._figures import FigurePane


def lines(runs: list[str]) -> object:
    fig = go.Figure()
    for i, run in enumerate(runs):
        fig.add_trace(go.Scatter(x=[1, 2], y=[i, i + 1], name=run, customdata=[[run, "x"]] * 2))
    return fig


def test_a_figure_is_updated_in_place_and_built_anew_for_new_lines():
    clicked: list[str] = []
    pane = FigurePane(lambda runs: None, lines, on_run=clicked.append)
    pane.draw(["r1", "r2"])
    figure = pane.figure
    pane.draw(["r1", "r3"])
    assert pane.figure is figure and [t.name for t in figure.data] == ["r1", "r3"]
    assert figure.layout.uirevision == "nbsweep"  # zoom kept across updates
    pane.draw(["r1", "r3", "r9"])
    assert pane.figure is not figure and [t.name for t in pane.figure.data] == ["r1", "r3", "r9"]
    assert pane.widget.children == (pane.figure,)
    pane._clicked(pane.figure.data[2], SimpleNamespace(point_inds=[0]), None)
    assert clicked == ["r9"]


def test_figures_take_the_width_the_page_reports():
    pane = FigurePane(lambda runs: None, lines)
    pane.draw(["r1"])
    pane.fit(640)
    assert pane.figure.layout.width == 640
    pane.draw(["r1", "r2"])  # built anew: at that width too
    assert pane.figure.layout.width == 640 and not pane.figure.layout.autosize


def test_plotly_js_goes_to_the_browser_once_not_with_every_figure():
    from nbsweep.widgets import _plotly_widget

    pane = FigurePane(lambda runs: None, lines)
    pane.draw(["r1"])
    first = pane.figure
    pane.draw(["r1", "r2"])  # a new figure
    assert pane.figure is not first
    bundle = str(go.FigureWidget._esm)  # plotly.js, 5 MB
    assert len(bundle) > 1_000_000
    assert all(len(f._esm) < 2_000 and bundle not in f._esm for f in (first, pane.figure))
    # One loader per kernel carries it, and the figures wait for its module.
    loader = _plotly_widget._loader
    assert loader.bundle == bundle and loader.comm is not None
    assert isinstance(pane.figure, go.FigureWidget)
