"""Static matplotlib figures of a sweep: ``sweep.plot.parallel_coordinates()`` and friends.

Figures are built with the object API (``matplotlib.figure.Figure``), never through pyplot, so
the dashboard can draw them from its refresher thread and nothing is left open in pyplot's
global list to be shown a second time at the end of a cell.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from nbsweep import views
from nbsweep._states import RunState

# The perceptual map for "how good is this run" (yellow: best, by rank).
DEFAULT_CMAP = "viridis"
# plotly's dash names (``views.DASHES``) as matplotlib line styles.
LINESTYLES: dict[str, Any] = {
    "solid": "-",
    "dash": "--",
    "dot": ":",
    "dashdot": "-.",
    "longdash": (0, (8, 3)),
}
# A legend names each run up to this many; past it the plot would be all legend.
LEGEND_RUNS = 20


def new_figure(width: float = 8.0, height: float = 4.0) -> Figure:
    """A figure that IPython can display, without pyplot."""
    _ensure_ipython_renders_figures()
    return Figure(figsize=(width, height), layout="constrained")


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure (for image widgets and the report)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _ensure_ipython_renders_figures() -> None:
    # IPython shows a bare Figure as text unless the inline backend registered a PNG formatter,
    # which happens only after pyplot was imported; register one ourselves when it is missing.
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, lambda fig: to_png(fig))


def _lines(ax: Axes, lines: list[list[tuple[float, float]]], **style: Any) -> None:
    """Many polylines as one collection: a ``Line2D`` per run costs a second per 1,000 runs."""
    ax.add_collection(LineCollection(lines, **style))
    ax.autoscale_view()


def _message(fig: Figure, text: str) -> Figure:
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, text, ha="center", va="center", color="#666666", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _run_lines(
    ax: Axes, curves: list[views.Curve], smoothed: bool = False, faded: bool = False
) -> None:
    """A line per run in its own colour and style; named in a legend when there are few.

    Stopped runs are drawn lighter with a cross where they stopped.
    """
    few = len(curves) <= LEGEND_RUNS
    if few:
        for curve in curves:
            stopped = curve.state == RunState.STOPPED
            y = curve.smoothed if smoothed and curve.smoothed is not None else curve.y
            if smoothed and curve.smoothed is not None:
                ax.plot(curve.x, curve.y, color=curve.colour, alpha=0.2, linewidth=1.0)
            ax.plot(
                curve.x,
                y,
                color=curve.colour,
                linestyle=LINESTYLES.get(curve.dash, "-"),
                linewidth=1.0 if stopped else 1.5,
                alpha=0.55 if stopped or faded else 0.95,
                label=f"{curve.run_id} ({curve.state})" if curve.state else curve.run_id,
            )
            if stopped:
                ax.plot(curve.x[-1:], y[-1:], marker="x", color=curve.colour, markersize=5)
        ax.legend(
            fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0
        )
        return
    lines = [
        list(zip(c.x, c.smoothed if smoothed and c.smoothed else c.y, strict=True)) for c in curves
    ]
    _lines(
        ax,
        lines,
        colors=[c.colour for c in curves],
        linestyles=[LINESTYLES.get(c.dash, "-") for c in curves],
        linewidths=[1.0 if c.state == RunState.STOPPED else 1.3 for c in curves],
        alpha=0.8,
    )


def _log_scale(ax: Axes, log_y: bool, label: str) -> None:
    if log_y:
        ax.set_yscale("log")
        label += " (log)"
    ax.set_ylabel(label)


def draw_parallel(info: views.ParallelInfo, fig: Figure | None = None) -> Figure:
    """One polyline per run across the axes (each spanning the search space), coloured by the
    run's rank by the metric; the best run on top, thick, outlined."""
    fig = fig or new_figure(max(6.0, 1.6 * len(info.dimensions)), 4.0)
    if not info.run_ids or not info.dimensions:
        return _message(fig, "no runs with a metric yet")
    ax = fig.add_subplot()
    count = len(info.dimensions)
    scaled = []
    for dim in info.dimensions:
        low, high = dim.range
        scaled.append(
            [(v - low) / (high - low) if math.isfinite(v) else math.nan for v in dim.values]
        )
    mapper = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=DEFAULT_CMAP)
    ranks = info.colour_ranks or [math.nan] * len(info.run_ids)
    # Worst first, so that the good runs are drawn over the others.
    order = sorted(range(len(info.run_ids)), key=lambda i: ranks[i] if ranks[i] == ranks[i] else -1)
    lines = [[(x, axis[i]) for x, axis in enumerate(scaled)] for i in order]
    # One call for every line: per line, to_rgba took seconds at 10,000 runs.
    picked = np.array([ranks[i] for i in order], dtype=float)
    colours = mapper.to_rgba(np.nan_to_num(picked))
    colours[~np.isfinite(picked)] = to_rgba("#1e88e5")
    _lines(ax, lines, colors=colours, alpha=0.8, linewidths=1.4)
    best = info.best_index
    if best is not None:
        points = [(x, axis[best]) for x, axis in enumerate(scaled)]
        _lines(ax, [points], colors="black", linewidths=4.0, zorder=3)
        _lines(ax, [points], colors=[mapper.to_rgba(1.0)], linewidths=2.2, zorder=4)
    for x, dim in enumerate(info.dimensions):
        ax.axvline(x, color="#444444", linewidth=1)
        low, high = dim.range
        for tick, label in zip(dim.ticks, dim.tick_labels, strict=True):
            y = (tick - low) / (high - low)
            ax.text(x + 0.03, y, label, fontsize=7, va="center", color="#333333")
    ax.set_xticks(range(count), [_axis_label(d) for d in info.dimensions], fontsize=8)
    ax.set_xlim(-0.1, count - 0.6 if count > 1 else 0.9)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    if info.colour_ticks:
        bar = fig.colorbar(mapper, ax=ax, pad=0.01)
        bar.set_ticks(info.colour_ticks, labels=info.colour_tick_labels)
        bar.set_label(f"{info.metric} (by rank; best at the top)", fontsize=8)
    if best is not None:
        ax.set_title(f"best run {info.best_run_id} (outlined)", fontsize=9, loc="left")
    return fig


def _axis_label(dim: views.Dimension) -> str:
    return f"{dim.name}\n(log)" if dim.is_log else dim.name


def draw_importance(info: views.ImportanceInfo, fig: Figure | None = None) -> Figure:
    """Importance bars and correlation bars per parameter, as W&B's panel."""
    fig = fig or new_figure(8.0, max(2.0, 0.45 * len(info.rows) + 1.2))
    if not info.rows:
        return _message(fig, info.note or "no importance yet")
    left, right = fig.subplots(1, 2, sharey=True)
    names = [r.parameter for r in info.rows][::-1]
    importance = [r.importance for r in info.rows][::-1]
    correlation = [r.correlation for r in info.rows][::-1]
    left.barh(names, importance, color="#5c6bc0")
    left.set_title(f"importance for {info.metric}", fontsize=10)
    left.set_xlim(0, max(1e-9, max(importance)) * 1.1)
    colours = ["#43a047" if c > 0 else "#e53935" for c in correlation]
    right.barh(names, correlation, color=colours)
    right.axvline(0, color="#444444", linewidth=0.8)
    right.set_xlim(-1, 1)
    right.set_title("correlation", fontsize=10)
    return fig


def draw_curves(info: views.CurvesInfo, fig: Figure | None = None) -> Figure:
    """The chosen key per run, a colour and line style each (log y when asked or needed)."""
    fig = fig or new_figure()
    if not info.curves:
        return _message(fig, f"no run has logged {info.key or 'anything'} yet")
    ax = fig.add_subplot()
    _run_lines(ax, info.curves, smoothed=info.smoothing > 0)
    ax.set_xlabel(info.x_label)
    _log_scale(ax, info.log_y, info.key or "")
    ax.grid(alpha=0.3)
    return fig


def draw_bands(info: views.BandsInfo, fig: Figure | None = None) -> Figure:
    """Metric against iteration, a line per run, a dashed line per band with its threshold and
    its count, stopped runs lighter with a cross where they stopped."""
    fig = fig or new_figure()
    if not info.enabled:
        return _message(fig, "no hyperband early_terminate in this sweep")
    if not info.curves:
        return _message(fig, f"no run has logged {info.metric} yet")
    ax = fig.add_subplot()
    _run_lines(ax, info.curves)
    longest = max(max(c.x) for c in info.curves)
    shown = [b for b in info.bands if b.iteration <= longest * 1.5]
    for i, band in enumerate(shown):
        ax.axvline(band.iteration, color="#444444", linestyle="--", linewidth=0.9, zorder=0)
        if math.isfinite(band.threshold):
            ax.plot(
                [band.iteration],
                [band.threshold],
                marker="_",
                color="#e53935",
                markersize=18,
                markeredgewidth=2.5,
                zorder=3,
            )
        # Counts sit above the plot, staggered in two rows, so neighbours never overlap.
        ax.annotate(
            f"band {band.iteration}\n{views.band_label(band)}",
            (band.iteration, 1.0),
            xycoords=("data", "axes fraction"),
            textcoords="offset points",
            xytext=(0, 4 + 22 * (i % 2)),
            ha="center",
            va="bottom",
            fontsize=7,
            annotation_clip=False,
        )
    ax.set_xlabel("iteration (valid values of the metric, from 1)")
    _log_scale(ax, info.log_y, info.metric or "")
    ax.grid(alpha=0.3)
    return fig


def draw_history(info: views.HistoryInfo, fig: Figure | None = None) -> Figure:
    """Each ended run's metric in the order runs ended, and the best so far as a step line."""
    fig = fig or new_figure()
    if not info.points:
        return _message(fig, f"no run has ended with {info.metric or 'a metric'} yet")
    ax = fig.add_subplot()
    x = [p.index for p in info.points]
    ax.scatter(
        x,
        [p.value for p in info.points],
        c=[views.STATE_COLOURS.get(p.state, "#9e9e9e") for p in info.points],
        s=18,
        zorder=2,
        label="run",
    )
    ax.step(x, info.best_so_far, where="post", color="#e53935", linewidth=1.8, label="best so far")
    ax.set_xlabel("run (in order of ending)")
    _log_scale(ax, info.log_y, info.metric or "")
    ax.set_title(f"best: {info.best_run_id}", fontsize=9, loc="left")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def draw_slice(info: views.SliceInfo, fig: Figure | None = None) -> Figure:
    """A panel per parameter: the metric against its value, a dot per run (log x for log
    parameters), the best run ringed."""
    count = len(info.panels)
    fig = fig or new_figure(max(6.0, 3.0 * min(count, 4)), 3.2 * max(1, math.ceil(count / 4)))
    if not count or not any(p.x for p in info.panels):
        return _message(fig, f"no run has {info.metric or 'a metric'} yet")
    columns = min(count, 4)
    axes = fig.subplots(math.ceil(count / columns), columns, sharey=True, squeeze=False)
    for ax, panel in zip(axes.flat, info.panels, strict=False):
        ax.scatter(panel.x, panel.y, c=panel.colours, s=18)
        if info.best_run_id in panel.run_ids:
            i = panel.run_ids.index(info.best_run_id)
            ax.scatter([panel.x[i]], [panel.y[i]], s=80, facecolors="none", edgecolors="black")
        if panel.is_log:
            ax.set_xscale("log")
        if panel.is_categorical:
            ax.set_xticks(panel.tick_values, panel.tick_labels, rotation=30, fontsize=7)
        ax.set_xlabel(panel.parameter + (" (log)" if panel.is_log else ""), fontsize=8)
        if info.log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[count:]:
        ax.set_axis_off()
    axes[0][0].set_ylabel(info.metric or "")
    return fig


def draw_timeline(info: views.TimelineInfo, fig: Figure | None = None) -> Figure:
    """A row per agent, its runs as bars coloured by state; the run's mean GPU utilisation as
    a thin bar beneath when it was measured."""
    fig = fig or new_figure(8.0, max(2.0, 0.55 * len(info.rows) + 1.2))
    if not info.rows:
        return _message(fig, "no run has started yet")
    ax = fig.add_subplot()
    for y, row in enumerate(info.rows):
        spans = [(b.start_s, max(b.end_s - b.start_s, 1e-3)) for b in row.bars]
        ax.broken_barh(
            spans, (y - 0.35, 0.5), facecolors=[b.colour for b in row.bars], edgecolor="white"
        )
        for bar in row.bars:
            if bar.gpu_util is not None:
                width = max(bar.end_s - bar.start_s, 1e-3)
                shade = views.STATE_COLOURS[RunState.RUNNING]
                ax.broken_barh([(bar.start_s, width)], (y + 0.2, 0.15), facecolors="#e0e0e0")
                ax.broken_barh(
                    [(bar.start_s, width * bar.gpu_util / 100)], (y + 0.2, 0.15), facecolors=shade
                )
    ax.set_yticks(range(len(info.rows)), [r.label for r in info.rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first run started")
    states = sorted({b.state for r in info.rows for b in r.bars})
    handles = [Patch(color=views.STATE_COLOURS.get(s, "#9e9e9e"), label=s) for s in states]
    if info.has_gpu:
        handles.append(Patch(color=views.STATE_COLOURS[RunState.RUNNING], label="GPU util"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    return fig


def draw_run_detail(info: views.RunDetailInfo, fig: Figure | None = None) -> Figure:
    """Every numeric key the run logged, a small panel each, against iteration."""
    keys = list(info.curves)
    columns = min(max(len(keys), 1), 3)
    rows = max(1, math.ceil(len(keys) / columns))
    fig = fig or new_figure(max(4.0, 3.2 * columns), 2.6 * rows)
    if not keys:
        return _message(fig, f"run {info.run_id} has logged nothing yet")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        curve = info.curves[key]
        ax.plot(curve.x, curve.y, color=info.colour, linewidth=1.5)
        if views.wants_log(curve.y):
            ax.set_yscale("log")
        ax.set_title(key, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_axis_off()
    return fig


class SweepPlots:
    """``sweep.plot``: the dashboard's tabs as static matplotlib figures."""

    def __init__(self, sweep: Any) -> None:
        self._sweep = sweep

    def _snapshot(self, history: bool) -> views.Snapshot:
        return views.Snapshot.from_sweep(self._sweep, history=history)

    def parallel_coordinates(self) -> Figure:
        """One line per run across the parameters, coloured by its rank by the metric."""
        return draw_parallel(views.parallel_info(self._snapshot(history=False)))

    def importance(self) -> Figure:
        """Random-forest importance and correlation of each parameter with the metric."""
        return draw_importance(views.importance_info(self._snapshot(history=False)))

    def bands(self, log_y: bool | None = None) -> Figure:
        """Hyperband bands: where runs were compared, the thresholds, who was stopped."""
        return draw_bands(views.bands_info(self._snapshot(history=True), log_y))

    def curves(
        self,
        key: str | None = None,
        x: str = "iteration",
        smoothing: float = 0.0,
        log_y: bool | None = None,
    ) -> Figure:
        """``key`` (default: the metric) for every run, against iteration (from 1) or step."""
        info = views.curves_info(self._snapshot(history=True), key, x, smoothing, log_y)
        return draw_curves(info)

    def history(self) -> Figure:
        """Each ended run's metric in the order they ended, and the best so far."""
        return draw_history(views.history_info(self._snapshot(history=False)))

    def slice(self) -> Figure:
        """Each parameter against the metric, a dot per run."""
        return draw_slice(views.slice_info(self._snapshot(history=False)))

    def timeline(self) -> Figure:
        """A row per agent with its runs as bars coloured by state: where the time went."""
        return draw_timeline(views.timeline_info(self._snapshot(history=False)))
