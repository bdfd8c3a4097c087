"""The live sweep dashboard: ipywidgets 8 (and 7, as Colab ships), fed by store snapshots.

A refresher thread probes the store at most ``REFRESH_HZ`` times a second, redraws only when
the probe changed (re-reading only the runs that can have changed, see ``_feed``), waits ten
times as long as its last redraw took, and touches the front end only by setting widget
traits (never ``with output:`` from a thread): cells run while a sweep is live behave as
without one, at 10,000 runs as at 10.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from nbsweep import plot, views
from nbsweep._states import SWEEP_LIVE, AgentState, RunState, SweepState
from nbsweep.widgets import _html
from nbsweep.widgets._feed import SweepFeed, next_wait
from nbsweep.widgets._gpu import gpu_stats
from nbsweep.widgets._parallel import ParallelView

REFRESH_HZ = 2.0
TAB_TITLES = ("Bands", "Parallel coordinates", "Importance", "Curves")
FAILED = (RunState.FAILED, RunState.CRASHED)
MAX_FAILED_BUTTONS = 12
TABLE_ROWS = 200  # rows of the runs table drawn; the rest are counted


class Dashboard:
    """Header, control buttons, agents, runs table and the four analysis tabs of one sweep."""

    def __init__(self, sweep: Any, refresh_hz: float = REFRESH_HZ) -> None:
        self.sweep = sweep
        self.feed = SweepFeed(sweep)
        self.interval = 1.0 / refresh_hz  # the shortest wait between two refreshes
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._snapshot: views.Snapshot | None = None
        self._took = 0.0  # seconds the last redraw took: the refresher waits ten times that
        self._filter: set[str] | None = None
        self._drawn_tabs: set[int] = set()

        layout = widgets.Layout
        self.header = widgets.HTML()
        self.pause_button = widgets.Button(description="Pause", icon="pause")
        self.stop_button = widgets.Button(
            description="Stop", icon="stop", tooltip="no new runs; running runs finish"
        )
        self.cancel_button = widgets.Button(
            description="Cancel", icon="times", button_style="danger", tooltip="kill every run"
        )
        self.retry_button = widgets.Button(
            description="Retry failed", icon="redo", tooltip="queue failed and crashed runs again"
        )
        self.status = widgets.HTML()
        self.pause_button.on_click(self._on_pause)
        self.stop_button.on_click(self._action("stop", lambda: self.sweep.stop()))
        self.cancel_button.on_click(self._action("cancel", lambda: self.sweep.cancel()))
        self.retry_button.on_click(self._action("retry failed", lambda: self.sweep.retry_failed()))
        buttons = widgets.HBox(
            [
                self.pause_button,
                self.stop_button,
                self.cancel_button,
                self.retry_button,
                self.status,
            ]
        )

        self.agent_rows: dict[str, tuple[widgets.HTML, widgets.Button]] = {}
        self.pool_line = widgets.HTML()  # the GPUs other sweeps of the store hold
        self.agents_box = widgets.VBox()

        self.sort = widgets.Dropdown(
            options=list(views.SORT_KEYS), value="metric", description="sort by",
            layout=layout(width="220px"),
        )  # fmt: skip
        self.reverse = widgets.Checkbox(value=False, description="reverse", indent=False)
        self.sort.observe(lambda _: self._redraw_table(), names="value")
        self.reverse.observe(lambda _: self._redraw_table(), names="value")
        self.clear_filter = widgets.Button(
            description="Clear filter", layout=layout(display="none")
        )
        self.clear_filter.on_click(lambda _: self._set_filter(None))
        self.table = widgets.HTML(layout=layout(max_height="360px", overflow="auto"))
        self.failed_buttons = widgets.HBox(layout=layout(flex_flow="row wrap"))
        self.detail = widgets.HTML()

        self.bands_image = widgets.Image(format="png")
        self.bands_table = widgets.HTML()
        self.parallel = ParallelView(on_filter=self._set_filter)
        self.importance = widgets.HTML()
        self.curve_key = widgets.Dropdown(options=[], description="key")
        self.curve_key.observe(lambda _: self._redraw_tab(3, force=True), names="value")
        self.curves_image = widgets.Image(format="png")
        self.tabs = widgets.Tab(
            children=[
                widgets.VBox([self.bands_table, self.bands_image]),
                self.parallel.widget,
                self.importance,
                widgets.VBox([self.curve_key, self.curves_image]),
            ]
        )
        for index, title in enumerate(TAB_TITLES):
            self.tabs.set_title(index, title)
        self.tabs.observe(lambda _: self._redraw_tab(self.tabs.selected_index), "selected_index")

        self.root = widgets.VBox(
            [
                widgets.HTML(_html.STYLE),
                self.header,
                buttons,
                self.agents_box,
                widgets.HBox([self.sort, self.reverse, self.clear_filter]),
                self.table,
                self.failed_buttons,
                self.detail,
                self.tabs,
            ],
            layout=layout(border="1px solid #e0e0e0", padding="8px"),
        )
        self.root.add_class("nbsweep-dashboard")
        self.refresh(force=True)

    # ------------------------------------------------------------------ display and thread

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.root)
        self.start()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # For front ends that format rather than call _ipython_display_. ipywidgets 7 widgets
        # have no _repr_mimebundle_: write the same view reference they display.
        self.start()
        bundle = getattr(self.root, "_repr_mimebundle_", None)
        if bundle is not None:
            return bundle(**kwargs)
        view = {"version_major": 2, "version_minor": 0, "model_id": self.root.model_id}
        return {
            "text/plain": f"Dashboard of sweep {self.sweep.id}",
            "application/vnd.jupyter.widget-view+json": view,
        }

    def start(self) -> None:
        """Start the refresher thread (once); it ends by itself when the sweep ends."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name=f"nbsweep-dashboard-{self.sweep.id}", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop refreshing and close the dashboard's widgets."""
        self._stop.set()
        _close_tree(self.root)

    @property
    def live(self) -> bool:
        """True while the refresher thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(next_wait(self.interval, self._took)):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a thread has nowhere else to report to
                self.status.value = _error_html(traceback.format_exc(limit=3))
                return
            # The snapshot that saw the sweep end was drawn in full: nothing more will change.
            if self._snapshot is not None and self._snapshot.state not in SWEEP_LIVE:
                return

    # ------------------------------------------------------------------ refresh

    def refresh(self, force: bool = False) -> bool:
        """Redraw if the store changed since the last call (or ``force``); returns whether it
        redrew. The visible tab is redrawn with the rest; the others when they are shown."""
        start = time.monotonic()
        with self._lock:
            if not self.feed.changed() and not force:
                self._took = time.monotonic() - start
                return False
            # The history is the largest read: take it only for the tabs that draw it.
            self._snapshot = self.feed.snapshot(
                history=self._draws_history(self.tabs.selected_index)
            )
            self._drawn_tabs.clear()
            snap = self._snapshot
            self.header.value = _html.header_html(views.header_info(snap))
            self._update_buttons(snap)
            self._update_agents(snap)
            self._update_sort_options(snap)
            self._redraw_table()
            self._update_failed(snap)
            self._redraw_tab(self.tabs.selected_index or 0)
            self._took = time.monotonic() - start
            return True

    def _draws_history(self, index: int | None) -> bool:
        """Curves draw logged rows, and so do Bands for a sweep with hyperband."""
        config = self._snapshot.config if self._snapshot is not None else self.sweep.config
        return index == 3 or (index == 0 and views.has_bands(config))

    def _update_buttons(self, snap: views.Snapshot) -> None:
        paused = snap.state == SweepState.PAUSED
        self.pause_button.description = "Resume" if paused else "Pause"
        self.pause_button.icon = "play" if paused else "pause"
        ended = snap.state not in SWEEP_LIVE
        self.pause_button.disabled = ended
        self.stop_button.disabled = ended
        self.cancel_button.disabled = ended
        self.retry_button.disabled = not _retryable(snap.runs)

    def _update_agents(self, snap: views.Snapshot) -> None:
        stats = gpu_stats()
        agents = snap.agents
        rows: list[widgets.Widget] = []
        heads = "".join(f"<th style='width:110px'>{h}</th>" for h in _html.AGENT_HEADS)
        if agents is not None and len(agents):
            rows.append(widgets.HTML(f'<div class="nbsweep"><table><tr>{heads}</tr></table></div>'))
        for _, agent in agents.iterrows() if agents is not None else ():
            agent_id = agent.get("agent")
            name = str(agent_id)
            if name not in self.agent_rows:
                label = widgets.HTML()
                drain = widgets.Button(
                    description="Drain",
                    tooltip="finish this agent's run, then release its GPU",
                    layout=widgets.Layout(width="80px"),
                )
                drain.on_click(
                    self._action(f"drain {name}", lambda a=agent_id: self.sweep.drain(a))
                )
                self.agent_rows[name] = (label, drain)
            label, drain = self.agent_rows[name]
            cells = _html.agent_cells(agent, stats)
            label.value = (
                '<div class="nbsweep"><table><tr>'
                + "".join(f"<td style='width:110px'>{_html.escape(c)}</td>" for c in cells)
                + "</tr></table></div>"
            )
            drain.disabled = str(agent.get("state")) in (AgentState.DRAINING, AgentState.DEAD)
            rows.append(widgets.HBox([label, drain]))
        pool = _html.gpu_pool_html(snap.gpu_pool, snap.id)
        self.pool_line.value = pool
        if pool:
            rows.append(self.pool_line)
        if [id(w) for w in self.agents_box.children] != [id(w) for w in rows]:
            self.agents_box.children = tuple(rows)

    def _update_sort_options(self, snap: views.Snapshot) -> None:
        options = list(views.SORT_KEYS) + [p.name for p in views.parameters_of(snap.config)]
        if list(self.sort.options) != options:
            value = self.sort.value if self.sort.value in options else "metric"
            self.sort.options = options
            self.sort.value = value

    def _redraw_table(self) -> None:
        snap = self._snapshot
        if snap is None:
            return
        ascending = views.default_ascending(snap, self.sort.value) != self.reverse.value
        info = views.runs_table_info(snap, self.sort.value, ascending, self._filter, TABLE_ROWS)
        self.table.value = _html.runs_table_html(info, limit=TABLE_ROWS)

    def _update_failed(self, snap: views.Snapshot) -> None:
        runs = snap.runs
        failed = (
            [] if "state" not in runs.columns else list(runs[runs["state"].isin(FAILED)]["run_id"])
        )
        current = [b.description for b in self.failed_buttons.children]
        wanted = [f"{run_id}" for run_id in failed[-MAX_FAILED_BUTTONS:]]
        if current == wanted:
            return
        buttons = []
        for run_id in wanted:
            button = widgets.Button(
                description=run_id, icon="bug", button_style="warning",
                tooltip=f"show the traceback and log of {run_id}",
            )  # fmt: skip
            button.on_click(lambda _, r=run_id: self.show_run(r))
            buttons.append(button)
        label = widgets.HTML("<b>failed runs:</b>&nbsp;") if buttons else None
        self.failed_buttons.children = tuple([label, *buttons] if label else [])

    def show_run(self, run_id: str) -> None:
        """Show a run's config, traceback and the tail of its log under the table."""
        self.detail.value = _html.STYLE + _html.run_detail_html(self.sweep.get_run(run_id))

    def _redraw_tab(self, index: int | None, force: bool = False) -> None:
        snap = self._snapshot
        if snap is None or index is None or (index in self._drawn_tabs and not force):
            return
        with self._lock:
            if snap.history is None and self._draws_history(index):
                snap = self._snapshot = self.feed.snapshot(history=True)
            self._drawn_tabs.add(index)
            if index == 0:
                info = views.bands_info(snap)
                self.bands_table.value = _html.bands_table_html(info)
                if info.enabled or not self.bands_image.value:  # else one message, drawn once
                    self.bands_image.value = plot.to_png(plot.draw_bands(info))
            elif index == 1:
                self.parallel.update(views.parallel_info(snap))
            elif index == 2:
                self.importance.value = _html.importance_html(views.importance_info(snap))
            elif index == 3:
                keys = views.logged_keys(snap.history)
                if list(self.curve_key.options) != keys:
                    self.curve_key.options = keys
                key = self.curve_key.value or None
                self.curves_image.value = plot.to_png(
                    plot.draw_curves(views.curves_info(snap, key))
                )

    # ------------------------------------------------------------------ actions

    def _set_filter(self, run_ids: set[str] | None) -> None:
        self._filter = run_ids
        self.clear_filter.layout.display = None if run_ids is not None else "none"
        if run_ids is None:
            self.parallel.clear_ranges()
        self._redraw_table()

    def _on_pause(self, _: Any) -> None:
        if self.sweep.state == SweepState.PAUSED:
            self._action("resume", lambda: self.sweep.resume())(None)
        else:
            self._action("pause", lambda: self.sweep.pause())(None)

    def _action(self, what: str, call: Callable[[], Any]) -> Callable[[Any], None]:
        def on_click(_: Any) -> None:
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - shown next to the buttons, not lost
                self.status.value = _error_html(f"{what}: {exc}")
                return
            self.status.value = f'<span style="color:#757575">{what}: done</span>'
            self.refresh(force=True)

        return on_click


def _close_tree(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def _retryable(runs: Any) -> bool:
    """Whether some failed or crashed run has not been queued again yet."""
    if "state" not in runs.columns:
        return False
    failed = set(runs.loc[runs["state"].isin(FAILED), "run_id"])
    if "requeued_from" in runs.columns:
        failed -= set(runs["requeued_from"].dropna())
    return bool(failed)


def _error_html(text: str) -> str:
    return f'<span style="color:#e53935;white-space:pre-wrap">{_html.escape(text)}</span>'
