"""Parallel coordinates in the dashboard: a plotly FigureWidget with brushing, else an image."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from nbsweep import plot, views


def _figure_widget(trace: dict[str, Any]) -> Any | None:
    # plotly 6+ builds FigureWidget on anywidget; either missing means the static image.
    try:
        import plotly.graph_objects as go

        # Created with its data: a view that renders before a first restyle arrives would
        # otherwise stay an empty plot.
        return go.FigureWidget(
            data=[go.Parcoords(**trace)],
            layout={"height": 400, "margin": {"l": 70, "r": 50, "t": 60, "b": 30}},
        )
    except Exception:  # noqa: BLE001 - ImportError, or a plotly without widget support
        return None


def trace_spec(info: views.ParallelInfo, brushed: dict[str, Any]) -> dict[str, Any]:
    """The Parcoords trace of ``info``, keeping the brushed ranges of axes that still exist."""
    dimensions = []
    for dim in info.dimensions:
        low, high = dim.range
        spec: dict[str, Any] = {
            "label": dim.name + (" (log)" if dim.is_log else ""),
            "values": [v if math.isfinite(v) else None for v in dim.values],
            "range": [low, high],
        }
        if dim.ticks:
            spec["tickvals"] = dim.ticks
            spec["ticktext"] = dim.tick_labels
        if spec["label"] in brushed:
            spec["constraintrange"] = brushed[spec["label"]]
        dimensions.append(spec)
    line = {
        "color": [v if math.isfinite(v) else None for v in info.colour_values],
        "colorscale": "Viridis",
        "reversescale": info.goal != "maximize",
        "showscale": info.metric is not None,
        "colorbar": {"title": {"text": info.metric or ""}},
    }
    return {"dimensions": dimensions, "line": line}


class ParallelView:
    """Draws a ``ParallelInfo``; brushing an axis calls ``on_filter`` with the run ids kept.

    The figure is built on the first draw, i.e. when the tab is first shown: importing plotly's
    widget takes seconds, which a dashboard must not cost a kernel up front.
    """

    def __init__(self, on_filter: Callable[[set[str] | None], None]) -> None:
        self.on_filter = on_filter
        self.info: views.ParallelInfo | None = None
        self.figure: Any = None
        self.image: widgets.Image | None = None
        self._updating = False
        self.hint = widgets.HTML("drawing…")
        self.widget = widgets.VBox([self.hint])

    @property
    def interactive(self) -> bool:
        """True when drawn by plotly (brushing filters the runs table)."""
        return self.figure is not None

    def _build(self, info: views.ParallelInfo) -> None:
        self.figure = _figure_widget(trace_spec(info, {}))
        if self.figure is not None:
            self.figure.data[0].on_change(self._on_brush, "dimensions")
            self.widget.children = (self.hint, self.figure)
        else:
            self.image = widgets.Image(format="png")
            self.widget.children = (self.hint, self.image)

    def update(self, info: views.ParallelInfo) -> None:
        """Redraw, keeping the ranges the user brushed on axes that still exist."""
        self.info = info
        built = self.figure is not None or self.image is not None
        if not built:
            self._build(info)
        hint = " · drag along an axis to filter the runs table" if self.figure is not None else ""
        self.hint.value = f'<span style="color:#757575">{len(info.run_ids)} runs{hint}</span>'
        if self.image is not None:
            self.image.value = plot.to_png(plot.draw_parallel(info))
            return
        if not built:
            return
        trace = self.figure.data[0]
        brushed = {d.label: d.constraintrange for d in trace.dimensions if d.constraintrange}
        spec = trace_spec(info, brushed)
        self._updating = True
        try:
            with self.figure.batch_update():
                trace.dimensions = spec["dimensions"]
                trace.line = spec["line"]
        finally:
            self._updating = False

    def ranges(self) -> dict[str, list[tuple[float, float]]]:
        """The brushed ranges per parameter name (axis positions), from the figure."""
        if self.figure is None or self.info is None:
            return {}
        found: dict[str, list[tuple[float, float]]] = {}
        for dim, info_dim in zip(
            self.figure.data[0].dimensions, self.info.dimensions, strict=False
        ):
            spans = dim.constraintrange
            if not spans:
                continue
            pairs = spans if isinstance(spans[0], (list, tuple)) else [spans]
            found[info_dim.name] = [(float(lo), float(hi)) for lo, hi in pairs]
        return found

    def clear_ranges(self) -> None:
        """Remove every brush."""
        if self.figure is None:
            return
        self._updating = True
        try:
            with self.figure.batch_update():
                for dim in self.figure.data[0].dimensions:
                    dim.constraintrange = None
        finally:
            self._updating = False

    def _on_brush(self, *_: Any) -> None:
        if self._updating or self.info is None:
            return
        ranges = self.ranges()
        self.on_filter(views.runs_in_ranges(self.info, ranges) if ranges else None)
