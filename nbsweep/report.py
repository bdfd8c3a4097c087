"""``sweep.report(path)``: one standalone HTML page of a sweep that renders offline.

Everything is inline (CSS, figures as base64 PNG, no scripts, no CDN), so the file can be
mailed, attached to a CI run or opened years later without a network.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from nbsweep import plot, views
from nbsweep.widgets import _html

SECTIONS = (
    ("Best so far", "history"),
    ("Parallel coordinates", "parallel"),
    ("Parameter importance", "importance"),
    ("Slice: each parameter against the metric", "slice"),
    ("Hyperband bands", "bands"),
    ("Curves", "curves"),
    ("Timeline: runs per agent", "timeline"),
)


def write_report(sweep: Any, path: str | Path) -> Path:
    """Write the report of ``sweep`` to ``path`` and return the path."""
    snap = views.Snapshot.from_sweep(sweep, history=True)
    path = Path(path)
    path.write_text(report_html(snap), encoding="utf-8")
    return path


def report_html(snap: views.Snapshot) -> str:
    """The page for a snapshot (header, leaderboard, every figure, the config)."""
    header = views.header_info(snap)
    figures = {
        "history": plot.draw_history(views.history_info(snap)),
        "parallel": plot.draw_parallel(views.parallel_info(snap)),
        "importance": plot.draw_importance(views.importance_info(snap)),
        "slice": plot.draw_slice(views.slice_info(snap)),
        "bands": plot.draw_bands(views.bands_info(snap)),
        "curves": plot.draw_curves(views.curves_info(snap)),
        "timeline": plot.draw_timeline(views.timeline_info(snap)),
    }
    body = [
        _html.header_html(header),
        "<h2>Runs</h2>",
        _html.runs_table_html(views.runs_table_info(snap), limit=500),
    ]
    for title, key in SECTIONS:
        png = base64.b64encode(plot.to_png(figures[key], dpi=110)).decode("ascii")
        body.append(f"<h2>{title}</h2>")
        if key == "bands":
            body.append(_html.bands_table_html(views.bands_info(snap)))
        body.append(f'<img alt="{title}" src="data:image/png;base64,{png}">')
    config = yaml.safe_dump(_plain(snap.config.as_dict()), sort_keys=False)
    body.append(f"<h2>Config</h2><pre>{html.escape(config)}</pre>")
    written = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = html.escape(f"nbsweep report: {snap.name or snap.id}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"{_html.STYLE}<style>body {{ margin: 24px; }} img {{ max-width: 100%; }}"
        "h2 { font-family: sans-serif; font-size: 15px; margin-top: 28px; }</style></head>"
        f'<body class="nbsweep">{"".join(body)}'
        f'<p class="nbs-muted">written {written} by nbsweep</p></body></html>\n'
    )


def _plain(value: Any) -> Any:
    # The normalised config may hold numpy scalars or tuples; YAML wants plain values.
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
