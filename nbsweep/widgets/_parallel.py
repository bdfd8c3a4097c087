"""Parallel coordinates in the dashboard: a plotly FigureWidget with brushing, else an image.

Brushing is exact: numeric and log axes carry no ``tickvals``, because plotly treats an axis
with tick values as ordinal and snaps a brush to the ticks around it (dragging 0.163-0.20
selected 0.16-0.29). Only categorical and short integer axes keep them, where every value sits
on a tick and snapping to one is right.
The brushed ranges are kept here, in axis positions by axis name, and the runs they select are
recomputed from every new snapshot: the plot, the runs table and the hidden count agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from nbsweep import plot, views
from nbsweep.widgets._html import escape

Ranges = dict[str, list[tuple[float, float]]]


def _figure_widget(trace: dict[str, Any]) -> Any | None:
    # plotly 6+ builds FigureWidget on anywidget; either missing means the static image.
    try:
        import plotly.graph_objects as go

        from nbsweep.widgets._plotly_widget import figure_widget

        # Created with its data: a view that renders before a first restyle arrives would
        # otherwise stay an empty plot. No width: it follows the cell.
        return figure_widget(
            data=[go.Parcoords(**trace)],
            layout={
                "height": 420,
                "autosize": True,
                "margin": {"l": 60, "r": 60, "t": 70, "b": 30},
            },
        )
    except Exception:  # noqa: BLE001 - ImportError, or a plotly without widget support
        return None


def trace_spec(info: views.ParallelInfo, brushed: Mapping[str, list[tuple[float, float]]]) -> dict:
    """The Parcoords trace of ``info`` with the brushed ranges of axes that still exist."""
    dimensions = []
    for dim in info.dimensions:
        low, high = dim.range
        spec: dict[str, Any] = {
            "label": dim.label,
            "values": [v if math.isfinite(v) else None for v in dim.values],
            "range": [low, high],
        }
        if dim.is_categorical or (dim.is_integer and high - low <= SNAP_INTEGERS):
            # Snapping to the ticks is exact here: every value sits on one.
            ticks = dim.ticks if dim.is_categorical else _integers(low, high)
            spec["tickvals"] = ticks
            spec["ticktext"] = (
                dim.tick_labels if dim.is_categorical else [str(int(t)) for t in ticks]
            )
        elif dim.is_integer:
            spec["tickformat"] = "d"
        spans = brushed.get(dim.name)
        if spans:
            spec["constraintrange"] = (
                list(spans[0]) if len(spans) == 1 else [list(span) for span in spans]
            )
        dimensions.append(spec)
    ranked = len(info.colour_ranks) == len(info.run_ids) and info.metric is not None
    colours = info.colour_ranks if ranked else info.colour_values
    line: dict[str, Any] = {
        "color": [v if math.isfinite(v) else None for v in colours],
        "colorscale": "Viridis",
        "showscale": info.metric is not None,
        "colorbar": {"title": {"text": info.metric or ""}},
    }
    if ranked:
        # Colour by rank (1 = best, yellow): a linear scale paints every good run alike.
        line.update(cmin=0.0, cmax=1.0)
        line["colorbar"].update(tickvals=info.colour_ticks, ticktext=info.colour_tick_labels)
    else:
        line["reversescale"] = info.goal != "maximize"
    return {"dimensions": dimensions, "line": line}


SNAP_INTEGERS = 12  # integer axes up to this span get a tick (and a snap) per integer


def _integers(low: float, high: float) -> list[float]:
    return [float(i) for i in range(math.ceil(low), math.floor(high) + 1)]


def spans_of(constraint: Any) -> list[tuple[float, float]]:
    """A dimension's ``constraintrange`` (one pair, or a list of pairs) as a list of pairs."""
    if not constraint:
        return []
    pairs = constraint if isinstance(constraint[0], (list, tuple)) else [constraint]
    return [(min(float(lo), float(hi)), max(float(lo), float(hi))) for lo, hi in pairs]


def describe(info: views.ParallelInfo, brushed: Mapping[str, list[tuple[float, float]]]) -> str:
    """The brushed ranges in the parameters' own values: ``lr 0.0001–0.003 · kernel rbf``."""
    parts = []
    for dim in info.dimensions:
        spans = brushed.get(dim.name)
        if not spans:
            continue
        if dim.is_categorical:
            chosen = [
                label
                for tick, label in zip(dim.ticks, dim.tick_labels, strict=False)
                if any(lo <= tick <= hi for lo, hi in spans)
            ]
            parts.append(f"{dim.name} {', '.join(chosen) or '—'}")
            continue
        text = ", ".join(
            f"{views.format_value(dim.value_at(lo))}–{views.format_value(dim.value_at(hi))}"
            for lo, hi in spans
        )
        parts.append(f"{dim.name} {text}")
    return " · ".join(parts)


class ParallelView:
    """Draws a ``ParallelInfo``; brushing an axis calls ``on_brush`` (read ``brushed``).

    The figure is built on the first draw, i.e. when the tab is first shown: importing plotly's
    widget takes seconds, which a dashboard must not cost a kernel up front.
    """

    def __init__(self, on_brush: Callable[[], None]) -> None:
        self.on_brush = on_brush
        self.info: views.ParallelInfo | None = None
        self.figure: Any = None
        self.image: widgets.Image | None = None
        self.brushed: Ranges = {}  # axis positions per axis name, kept across redraws
        self.width: int | None = None  # px, as the page reports it
        self._updating = False
        self.hint = widgets.HTML("drawing…")
        self.widget = widgets.VBox([self.hint], layout=widgets.Layout(width="100%"))

    @property
    def interactive(self) -> bool:
        """True when drawn by plotly (brushing filters the runs table)."""
        return self.figure is not None

    def selected(self, info: views.ParallelInfo) -> set[str] | None:
        """The runs of ``info`` inside every brushed range; None when nothing is brushed."""
        known = {d.name for d in info.dimensions}
        ranges = {name: spans for name, spans in self.brushed.items() if name in known}
        return views.runs_in_ranges(info, ranges) if ranges else None

    def _build(self, info: views.ParallelInfo) -> None:
        self.figure = _figure_widget(trace_spec(info, self.brushed))
        if self.figure is not None:
            if self.width is not None:
                self.figure.layout.width = self.width
            self.figure.data[0].on_change(self._on_brush, "dimensions")
            self.widget.children = (self.hint, self.figure)
        else:
            self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
            self.widget.children = (self.hint, self.image)

    def update(self, info: views.ParallelInfo) -> None:
        """Redraw, keeping the ranges the user brushed on axes that still exist."""
        self.info = info
        built = self.figure is not None or self.image is not None
        if not built:
            self._build(info)
        self._update_hint(info)
        if self.image is not None:
            self.image.value = plot.to_png(plot.draw_parallel(info))
            return
        if not built:
            return
        spec = trace_spec(info, self.brushed)
        trace = self.figure.data[0]
        self._updating = True
        try:
            with self.figure.batch_update():
                trace.dimensions = spec["dimensions"]
                trace.line = spec["line"]
        finally:
            self._updating = False

    def _update_hint(self, info: views.ParallelInfo) -> None:
        if self.figure is None:
            self.hint.value = f'<span class="nbs-muted">{len(info.run_ids)} runs</span>'
            return
        chosen = self.selected(info)
        if chosen is None:
            text = f"{len(info.run_ids)} runs · drag along an axis to filter the runs table"
        else:
            text = (
                f"{len(chosen)} of {len(info.run_ids)} runs inside {describe(info, self.brushed)}"
                " · drag again to change, click an axis outside its range to clear"
            )
        self.hint.value = f'<span style="color:#757575">{escape(text)}</span>'

    def fit(self, width: int) -> None:
        """Size the figure to ``width`` px (the page's measure of the room it has)."""
        self.width = width
        if self.figure is not None:
            self.figure.layout.width = width

    def clear_ranges(self) -> None:
        """Remove every brush."""
        self.brushed = {}
        if self.figure is None:
            return
        self._updating = True
        try:
            with self.figure.batch_update():
                for dim in self.figure.data[0].dimensions:
                    dim.constraintrange = None
        finally:
            self._updating = False
        if self.info is not None:
            self._update_hint(self.info)

    def _on_brush(self, *_: Any) -> None:
        if self._updating or self.info is None:
            return
        # The figure's axes are the info's, in order (built from it by trace_spec).
        self.brushed = {
            info_dim.name: spans
            for dim, info_dim in zip(
                self.figure.data[0].dimensions, self.info.dimensions, strict=False
            )
            if (spans := spans_of(dim.constraintrange))
        }
        self._update_hint(self.info)
        self.on_brush()
