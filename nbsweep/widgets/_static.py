"""The dashboard as static HTML: what a saved notebook shows where no kernel runs it.

The widget dashboard is displayed as one MIME bundle holding both the widget view and this
snapshot (``text/html``): front ends with a live kernel draw the widget, and nbconvert, GitHub
or a JupyterLab without the widget's model draw the snapshot (JupyterLab only where the file
parks the widget view, as its saves do: see ``_watch``). Figures are inline PNG, no
scripts, so it renders anywhere. The display-handle dashboard (``_handle``) shows the same.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from nbsweep import plot, views
from nbsweep.widgets import _html
from nbsweep.widgets._gpu import gpu_stats

TABLE_ROWS = 200


def figures(snap: views.Snapshot) -> list[tuple[str, Callable[[], Any]]]:
    """The dashboard's figures of ``snap`` (which needs its history), in tab order."""
    shown: list[tuple[str, Callable[[], Any]]] = []
    if views.has_bands(snap.config):
        shown.append(("Bands", lambda: plot.draw_bands(views.bands_info(snap))))
    shown += [
        ("Parallel coordinates", lambda: plot.draw_parallel(views.parallel_info(snap))),
        ("Importance", lambda: plot.draw_importance(views.importance_info(snap))),
        ("Curves", lambda: plot.draw_curves(views.curves_info(snap))),
        ("History", lambda: plot.draw_history(views.history_info(snap))),
        ("Slice", lambda: plot.draw_slice(views.slice_info(snap))),
        ("Timeline", lambda: plot.draw_timeline(views.timeline_info(snap))),
    ]
    return shown


# Where ``figures_html`` goes in a snapshot drawn without figures (filled in at saves).
FIGURES_MARK = "<!--nbsweep-figures-->"


def snapshot_html(
    snap: views.Snapshot,
    controller_alive: bool = True,
    with_figures: bool = True,
    rows: int = TABLE_ROWS,
) -> str:
    """Header, agents, runs table and (``with_figures``, from a snapshot with its history)
    the figures as inline images; without them, ``FIGURES_MARK`` marks their place."""
    header = views.header_info(snap)
    body = [
        _html.STYLE,
        '<div class="nbsweep nbsweep-snapshot">',
        _html.header_html(header, controller_alive=controller_alive),
        _html.agents_html(snap.agents, gpu_stats()),
        _html.gpu_pool_html(snap.gpu_pool, snap.id),
        _html.runs_table_html(views.runs_table_info(snap, limit=rows), limit=rows),
        figures_html(snap) if with_figures else FIGURES_MARK,
        "</div>",
    ]
    return "".join(body)


def figures_html(snap: views.Snapshot) -> str:
    """The figures of ``snap`` (which needs its history) as inline PNG, and the bands table."""
    if not len(snap.runs):
        return ""
    body = []
    for title, draw in figures(snap):
        png = base64.b64encode(plot.to_png(draw(), dpi=80)).decode("ascii")
        body.append(
            f"<details open><summary><b>{_html.escape(title)}</b></summary>"
            f'<img alt="{_html.escape(title)}" src="data:image/png;base64,{png}"></details>'
        )
    if views.has_bands(snap.config):
        body.append(_html.bands_table_html(views.bands_info(snap)))
    return "".join(body)


def plain_text(snap: views.Snapshot) -> str:
    """One line for terminals: name, id, state, progress and the best value."""
    header = views.header_info(snap)
    best = (
        f", best {header.metric}={views.format_value(header.best_value)}"
        if header.best_value is not None
        else ""
    )
    return (
        f"Sweep {header.name or header.id} ({header.id}): {header.state}, "
        f"{header.progress_text}{best}"
    )
