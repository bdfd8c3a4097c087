"""Static matplotlib figures of a sweep: ``sweep.plot.parallel_coordinates()`` and friends.

Figures are built with the object API (``matplotlib.figure.Figure``), never through pyplot, so
the dashboard can draw them from its refresher thread and nothing is left open in pyplot's
global list to be shown a second time at the end of a cell.
"""

from __future__ import annotations

import io
import math
from typing import Any

from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from nbsweep import views
from nbsweep._states import RunState

DEFAULT_CMAP = "viridis"


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


def draw_parallel(info: views.ParallelInfo, fig: Figure | None = None) -> Figure:
    """One polyline per run across the parameter axes, coloured by the metric."""
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
    colours = [v for v in info.colour_values if math.isfinite(v)]
    norm = Normalize(min(colours), max(colours)) if colours else None
    mapper = ScalarMappable(norm=norm, cmap=_cmap(info.goal)) if norm is not None else None
    lines, line_colours = [], []
    for i, value in enumerate(info.colour_values):
        lines.append([(x, axis[i]) for x, axis in enumerate(scaled)])
        line_colours.append(mapper.to_rgba(value) if mapper and math.isfinite(value) else "#1e88e5")
    _lines(ax, lines, colors=line_colours, alpha=0.75, linewidths=1.4)
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
    if mapper is not None:
        fig.colorbar(mapper, ax=ax, label=info.metric, pad=0.01)
    return fig


def _axis_label(dim: views.Dimension) -> str:
    return f"{dim.name}\n(log)" if dim.is_log else dim.name


def _cmap(goal: str) -> str:
    # The best runs are drawn bright in both directions (yellow end of viridis).
    return DEFAULT_CMAP if goal == "maximize" else DEFAULT_CMAP + "_r"


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
    """The chosen key against step, one line per run."""
    fig = fig or new_figure()
    if not info.curves:
        return _message(fig, f"no run has logged {info.key or 'anything'} yet")
    ax = fig.add_subplot()
    if len(info.curves) <= 12:  # few enough to name in a legend
        for curve in info.curves:
            ax.plot(curve.x, curve.y, linewidth=1.2, alpha=0.85, label=curve.run_id)
        ax.legend(fontsize=7, ncol=2)
    else:
        lines = [list(zip(c.x, c.y, strict=True)) for c in info.curves]
        colours = [f"C{i % 10}" for i in range(len(lines))]  # matplotlib's own colour cycle
        _lines(ax, lines, colors=colours, linewidths=1.2, alpha=0.85)
    ax.set_xlabel("step")
    ax.set_ylabel(info.key or "")
    ax.grid(alpha=0.3)
    return fig


def draw_bands(info: views.BandsInfo, fig: Figure | None = None) -> Figure:
    """Metric against iteration, a dashed line per band and its threshold, stopped runs grey."""
    fig = fig or new_figure()
    if not info.enabled:
        return _message(fig, "no hyperband early_terminate in this sweep")
    if not info.curves:
        return _message(fig, f"no run has logged {info.metric} yet")
    ax = fig.add_subplot()
    for stopped in (True, False):  # stopped runs grey, under the others
        curves = [c for c in info.curves if (c.state == RunState.STOPPED) == stopped]
        _lines(
            ax,
            [list(zip(c.x, c.y, strict=True)) for c in curves],
            colors=[
                "#b0b0b0" if stopped else views.STATE_COLOURS.get(c.state, "#1e88e5")
                for c in curves
            ],
            alpha=0.6 if stopped else 0.9,
            linewidths=1.0 if stopped else 1.4,
            zorder=1 if stopped else 2,
        )
    longest = max(max(c.x) for c in info.curves)
    for band in info.bands:
        if band.iteration > longest * 1.5:
            continue  # min_iter gives 100 bands; draw the ones runs can reach
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
            ax.annotate(
                f"{band.stopped} stopped / {band.reached}",
                (band.iteration, band.threshold),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=7,
            )
    ax.set_xlabel("iteration (valid values of the metric)")
    ax.set_ylabel(info.metric or "")
    ax.grid(alpha=0.3)
    return fig


class SweepPlots:
    """``sweep.plot``: the dashboard's tabs as static matplotlib figures."""

    def __init__(self, sweep: Any) -> None:
        self._sweep = sweep

    def _snapshot(self, history: bool) -> views.Snapshot:
        return views.Snapshot.from_sweep(self._sweep, history=history)

    def parallel_coordinates(self) -> Figure:
        """One line per run across the parameters, coloured by the metric."""
        return draw_parallel(views.parallel_info(self._snapshot(history=False)))

    def importance(self) -> Figure:
        """Random-forest importance and correlation of each parameter with the metric."""
        return draw_importance(views.importance_info(self._snapshot(history=False)))

    def bands(self) -> Figure:
        """Hyperband bands: where runs were compared, the thresholds, who was stopped."""
        return draw_bands(views.bands_info(self._snapshot(history=True)))

    def curves(self, key: str | None = None) -> Figure:
        """``key`` (default: the metric) against step for every run."""
        return draw_curves(views.curves_info(self._snapshot(history=True), key))
