"""Interactive plotly figures of the sweep views: hover with the run id, legends, log axes.

The same ``views`` info objects that ``plot`` draws with matplotlib; plotly is optional
(``pip install nbsweep[plotly]``), so this module is imported only where plotly is wanted and
``available()`` says whether it can be.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

from nbsweep import views
from nbsweep._states import RunState

# A legend names each run up to this many; past it, hover still names every line.
LEGEND_RUNS = 40
# Every trace of runs carries ``customdata[0]`` = the run id per point (a click names the run);
# traces that are not runs (thresholds, GPU bars) carry none.
HOVER_RUN = "run %{customdata[0]} (%{customdata[1]})<br>x=%{x}<br>y=%{y:.4g}<extra></extra>"


def available() -> bool:
    """Whether plotly is installed (without importing it: that takes a second)."""
    return importlib.util.find_spec("plotly") is not None


def _go() -> Any:
    import plotly.graph_objects as go

    return go


def _layout(fig: Any, title: str = "", **axes: Any) -> Any:
    # No fixed width: the figure fills its cell, whatever the window.
    layout = {
        "title": {"text": title, "font": {"size": 13}},
        "margin": {"l": 60, "r": 20, "t": 50 if title else 30, "b": 50},
        "template": "plotly_white",
        "autosize": True,
        "hovermode": "closest",
    }
    fig.update_layout(**{**layout, **axes})
    return fig


def _message(text: str) -> Any:
    fig = _go().Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig)


def _run_traces(fig: Any, curves: list[views.Curve], smoothed: bool = False) -> None:
    go = _go()
    legend = len(curves) <= LEGEND_RUNS
    for curve in curves:
        stopped = curve.state == RunState.STOPPED
        y = curve.smoothed if smoothed and curve.smoothed is not None else curve.y
        data = [[curve.run_id, curve.state]] * len(curve.x)
        if smoothed and curve.smoothed is not None:
            fig.add_trace(
                go.Scatter(
                    x=curve.x,
                    y=curve.y,
                    mode="lines",
                    line={"color": curve.colour, "width": 1},
                    opacity=0.25,
                    legendgroup=curve.run_id,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=curve.x,
                y=y,
                mode="lines+markers" if stopped else "lines",
                name=f"{curve.run_id} ({curve.state})" if curve.state else curve.run_id,
                legendgroup=curve.run_id,
                showlegend=legend,
                line={"color": curve.colour, "dash": curve.dash, "width": 1.2 if stopped else 1.8},
                marker={
                    "symbol": "x",
                    "size": [0] * (len(curve.x) - 1) + [8],
                    "color": curve.colour,
                },
                opacity=0.6 if stopped else 1.0,
                customdata=data,
                hovertemplate=HOVER_RUN,
            )
        )


def curves_figure(info: views.CurvesInfo) -> Any:
    """``CurvesInfo`` as lines with a legend, hover naming the run, log y where chosen."""
    if not info.curves:
        return _message(f"no run has logged {info.key or 'anything'} yet")
    fig = _go().Figure()
    _run_traces(fig, info.curves, smoothed=info.smoothing > 0)
    return _layout(
        fig,
        xaxis={"title": {"text": info.x_label}},
        yaxis={"title": {"text": info.key or ""}, "type": "log" if info.log_y else "linear"},
    )


def bands_figure(info: views.BandsInfo) -> Any:
    """``BandsInfo``: curves by iteration, band lines labelled with their counts, thresholds."""
    if not info.enabled:
        return _message("no hyperband early_terminate in this sweep")
    if not info.curves:
        return _message(f"no run has logged {info.metric} yet")
    go = _go()
    fig = go.Figure()
    _run_traces(fig, info.curves)
    longest = max(max(c.x) for c in info.curves)
    shown = [b for b in info.bands if b.iteration <= longest * 1.5]
    for i, band in enumerate(shown):
        fig.add_vline(x=band.iteration, line={"dash": "dash", "color": "#444444", "width": 1})
        fig.add_annotation(
            x=band.iteration,
            y=1.0,
            yref="paper",
            yanchor="bottom",
            yshift=4 + 24 * (i % 2),  # staggered: neighbouring bands never overlap
            text=f"band {band.iteration}<br>{views.band_label(band)}",
            showarrow=False,
            font={"size": 10},
        )
    marks = [b for b in shown if math.isfinite(b.threshold)]
    if marks:
        fig.add_trace(
            go.Scatter(
                x=[b.iteration for b in marks],
                y=[b.threshold for b in marks],
                mode="markers",
                name="threshold",
                marker={
                    "symbol": "line-ew-open",
                    "size": 22,
                    "color": "#e53935",
                    "line": {"width": 3},
                },
                text=[views.band_label(b) for b in marks],  # customdata is for run ids
                hovertemplate="band %{x}: threshold %{y:.4g}<br>%{text}<extra></extra>",
            )
        )
    return _layout(
        fig,
        xaxis={"title": {"text": "iteration (valid values of the metric, from 1)"}},
        yaxis={"title": {"text": info.metric or ""}, "type": "log" if info.log_y else "linear"},
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
    )


def parallel_figure(info: views.ParallelInfo) -> Any:
    """``ParallelInfo`` as a Parcoords trace: axes over the search space, lines coloured by
    rank. Numeric axes get no ``tickvals``: plotly snaps a brush to them."""
    if not info.run_ids or not info.dimensions:
        return _message("no runs with a metric yet")
    go = _go()
    dimensions = []
    for dim in info.dimensions:
        spec: dict[str, Any] = {
            "label": dim.label,
            "values": [v if math.isfinite(v) else None for v in dim.values],
            "range": list(dim.range),
        }
        if dim.is_categorical:
            spec["tickvals"] = dim.ticks
            spec["ticktext"] = dim.tick_labels
        dimensions.append(spec)
    line = {
        "color": [r if math.isfinite(r) else None for r in info.colour_ranks],
        "colorscale": "Viridis",
        "cmin": 0.0,
        "cmax": 1.0,
        "showscale": bool(info.colour_ticks),
        "colorbar": {
            "title": {"text": f"{info.metric} (rank)"},
            "tickvals": info.colour_ticks,
            "ticktext": info.colour_tick_labels,
        },
    }
    fig = go.Figure(go.Parcoords(dimensions=dimensions, line=line))
    title = f"best run {info.best_run_id}" if info.best_run_id else ""
    return _layout(fig, title)


def history_figure(info: views.HistoryInfo) -> Any:
    """Each ended run's metric (hover: run id) and the best so far as a step line."""
    if not info.points:
        return _message(f"no run has ended with {info.metric or 'a metric'} yet")
    go = _go()
    x = [p.index for p in info.points]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[p.value for p in info.points],
            mode="markers",
            name="run",
            marker={"color": [views.STATE_COLOURS.get(p.state, "#9e9e9e") for p in info.points]},
            customdata=[[p.run_id, p.state] for p in info.points],
            hovertemplate=HOVER_RUN,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=info.best_so_far,
            mode="lines",
            name="best so far",
            line={"shape": "hv", "color": "#e53935", "width": 2},
        )
    )
    return _layout(
        fig,
        f"best: {info.best_run_id}",
        xaxis={"title": {"text": "run (in order of ending)"}},
        yaxis={"title": {"text": info.metric or ""}, "type": "log" if info.log_y else "linear"},
    )


def slice_figure(info: views.SliceInfo) -> Any:
    """A panel per parameter: metric against value, hover naming the run; log x where the
    parameter is log-distributed."""
    if not info.panels or not any(p.x for p in info.panels):
        return _message(f"no run has {info.metric or 'a metric'} yet")
    from plotly.subplots import make_subplots

    go = _go()
    columns = min(len(info.panels), 4)
    rows = math.ceil(len(info.panels) / columns)
    fig = make_subplots(rows=rows, cols=columns, shared_yaxes=True, horizontal_spacing=0.04)
    for i, panel in enumerate(info.panels):
        row, col = divmod(i, columns)
        best = [j for j, r in enumerate(panel.run_ids) if r == info.best_run_id]
        fig.add_trace(
            go.Scatter(
                x=panel.x,
                y=panel.y,
                mode="markers",
                name=panel.parameter,
                showlegend=False,
                marker={
                    "color": panel.colours,
                    "size": [13 if j in best else 8 for j in range(len(panel.x))],
                    "line": {"width": [2 if j in best else 0 for j in range(len(panel.x))]},
                },
                customdata=[[r] for r in panel.run_ids],
                hovertemplate=f"run %{{customdata[0]}}<br>{panel.parameter}=%{{x}}"
                "<br>%{y:.4g}<extra></extra>",
            ),
            row=row + 1,
            col=col + 1,
        )
        xaxis: dict[str, Any] = {"title": {"text": panel.parameter}}
        if panel.is_log:
            xaxis["type"] = "log"
        if panel.is_categorical:
            xaxis.update(tickvals=panel.tick_values, ticktext=panel.tick_labels)
        fig.update_xaxes(row=row + 1, col=col + 1, **xaxis)
    fig.update_yaxes(type="log" if info.log_y else "linear")
    fig.update_yaxes(title={"text": info.metric or ""}, col=1)
    return _layout(fig, height=300 * rows)


def timeline_figure(info: views.TimelineInfo) -> Any:
    """A row per agent, runs as bars coloured by state (hover: run, state, times, GPU use)."""
    if not info.rows:
        return _message("no run has started yet")
    go = _go()
    fig = go.Figure()
    seen: set[str] = set()
    for row in info.rows:
        for bar in row.bars:
            util = "—" if bar.gpu_util is None else f"{bar.gpu_util:.0f}%"
            fig.add_trace(
                go.Bar(
                    x=[max(bar.end_s - bar.start_s, 1e-3)],
                    base=[bar.start_s],
                    y=[row.label],
                    orientation="h",
                    marker={"color": bar.colour, "line": {"color": "white", "width": 1}},
                    name=bar.state,
                    legendgroup=bar.state,
                    showlegend=bar.state not in seen,
                    customdata=[[bar.run_id, bar.state, util]],
                    hovertemplate="run %{customdata[0]} (%{customdata[1]})<br>"
                    "%{base:.0f}s to %{x:.0f}s long<br>GPU %{customdata[2]}<extra></extra>",
                )
            )
            seen.add(bar.state)
            if bar.gpu_util is not None:
                fig.add_trace(
                    go.Bar(
                        x=[max(bar.end_s - bar.start_s, 1e-3) * bar.gpu_util / 100],
                        base=[bar.start_s],
                        y=[row.label + " · GPU util"],
                        orientation="h",
                        marker={"color": views.STATE_COLOURS[RunState.RUNNING]},
                        name="GPU util",
                        legendgroup="gpu",
                        showlegend="gpu" not in seen,
                        hovertemplate=f"run {bar.run_id}: GPU {util}<extra></extra>",
                    )
                )
                seen.add("gpu")
    labels = [
        label
        for row in info.rows
        for label in (row.label, row.label + " · GPU util")
        if label == row.label or any(b.gpu_util is not None for b in row.bars)
    ]
    fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1])
    return _layout(
        fig,
        barmode="overlay",
        xaxis={"title": {"text": "seconds since the first run started"}},
        height=120 + 40 * len(labels),
    )


def run_detail_figure(info: views.RunDetailInfo) -> Any:
    """Every numeric key the run logged, a small panel each, against iteration."""
    if not info.curves:
        return _message(f"run {info.run_id} has logged nothing yet")
    from plotly.subplots import make_subplots

    go = _go()
    keys = list(info.curves)
    columns = min(len(keys), 3)
    rows = math.ceil(len(keys) / columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=keys)
    for i, key in enumerate(keys):
        curve = info.curves[key]
        row, col = divmod(i, columns)
        fig.add_trace(
            go.Scatter(
                x=curve.x,
                y=curve.y,
                mode="lines",
                name=key,
                showlegend=False,
                line={"color": info.colour},
                hovertemplate=f"{key}: %{{y:.4g}} at %{{x}}<extra></extra>",
            ),
            row=row + 1,
            col=col + 1,
        )
        if views.wants_log(curve.y):
            fig.update_yaxes(type="log", row=row + 1, col=col + 1)
    return _layout(fig, f"run {info.run_id} ({info.state})", height=260 * rows)
