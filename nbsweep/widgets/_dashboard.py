"""The live sweep dashboard: ipywidgets 8 (and 7, as Colab ships), fed by store snapshots.

A refresher thread probes the store at most ``REFRESH_HZ`` times a second, redraws only when
the probe changed (re-reading only the runs that can have changed, see ``_feed``), waits ten
times as long as its last redraw took, and touches the front end only by setting widget
traits (never ``with output:`` from a thread): cells run while a sweep is live behave as
without one, at 10,000 runs as at 10. Between redraws it ticks the elapsed time and checks
that a controller still runs the sweep.

It is displayed as one MIME bundle: the widget view and a static HTML snapshot (``_static``)
for whoever reads the saved notebook without a kernel; the snapshot is refreshed through the
display id when the sweep pauses, resumes or ends, and, where the front end says when it
saves (``_watch``), written into the output at every save: the refresher keeps the kernel
watch's ``snapshot`` current and draws the figures anew after each save.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from nbsweep import _plotly, plot, views
from nbsweep._states import SWEEP_LIVE, AgentState, RunState, SweepState
from nbsweep._timing import CONTROLLER_CHECK_S, FIGURE_INTERVAL_S, TICK_S
from nbsweep.widgets import _html, _static
from nbsweep.widgets._feed import SweepFeed, next_wait
from nbsweep.widgets._figures import FigurePane
from nbsweep.widgets._gpu import gpu_stats
from nbsweep.widgets._parallel import ParallelView

REFRESH_HZ = 2.0
BANDS, PARALLEL, IMPORTANCE, CURVES, HISTORY, SLICE, TIMELINE, RUN = range(8)
TAB_TITLES = (
    "Bands", "Parallel coordinates", "Importance", "Curves", "History", "Slice", "Timeline", "Run",
)  # fmt: skip
FAILED = (RunState.FAILED, RunState.CRASHED)
MAX_FAILED_BUTTONS = 12
TABLE_ROWS = 200  # rows of the runs table drawn; the rest are counted
Y_AXES = {"auto": None, "linear": False, "log": True}
FIGURE_FRAME_PX = 64  # the dashboard's and the tab's padding and borders around a figure
MIN_FIGURE_PX = 320


class Dashboard:
    """Header, control buttons, agents, runs table and the analysis tabs of one sweep."""

    def __init__(self, sweep: Any, refresh_hz: float = REFRESH_HZ) -> None:
        self.sweep = sweep
        self.feed = SweepFeed(sweep)
        self.interval = 1.0 / refresh_hz  # the shortest wait between two refreshes
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._snapshot: views.Snapshot | None = None
        self._header: views.HeaderInfo | None = None
        self._controller_alive = True
        self._checked_controller = 0.0  # monotonic time of the last check
        self._ticked = 0.0
        self._took = 0.0  # seconds the last redraw took: the refresher waits ten times that
        self._drawn_tabs: set[int] = set()
        self._figure_due = 0.0  # monotonic time from which the visible figure may be redrawn
        self._figure_stale = False  # the store moved on since the visible figure was drawn
        self._display: Any = None  # the display handle of the MIME bundle, once displayed
        self._published_state: str | None = None
        self._run_id: str | None = None
        self._version = 0  # store reads the dashboard drew: what a saved snapshot shows
        self._saved_version = -1  # the version last put into the watch's snapshot
        self._figures_version = -1  # the version the watch's figures were drawn at
        self._figures_wanted = False  # the front end saved and waits for figures

        # Full-width parts have no margin: an HTML widget's 2 px each side would stick out.
        layout = widgets.Layout
        self.watch = _kernel_watch(str(sweep.id), self.show_run, self._on_saved)
        self.header = widgets.HTML(layout=layout(width="100%", margin="0"))
        self.pause_button = widgets.Button(description="Pause", icon="pause")
        self.stop_button = widgets.Button(
            description="Stop", icon="stop", tooltip="no new runs; running runs finish"
        )
        self.cancel_button = widgets.Button(
            description="Cancel…", icon="times", tooltip="kill every running run (asks first)"
        )
        self.retry_button = widgets.Button(description="Retry failed", icon="redo")
        self.status = widgets.HTML()
        self.pause_button.on_click(self._on_pause)
        self.stop_button.on_click(self._action("stop", lambda: self.sweep.stop()))
        self.cancel_button.on_click(self._ask_cancel)
        self.retry_button.on_click(self._action("retry failed", lambda: self.sweep.retry_failed()))
        # Cancel kills runs: a second, explicit click, away from Stop.
        self.confirm_text = widgets.HTML()
        self.confirm_cancel = widgets.Button(
            description="Kill runs", icon="times", button_style="danger",
            tooltip="cancel the sweep: running runs are killed",
        )  # fmt: skip
        self.keep_running = widgets.Button(description="Keep running")
        self.confirm_cancel.on_click(self._do_cancel)
        self.keep_running.on_click(lambda _: self._hide_confirm())
        self.confirm = widgets.HBox(
            [self.confirm_text, self.confirm_cancel, self.keep_running],
            layout=layout(display="none", flex_flow="row wrap", align_items="center"),
        )
        buttons = widgets.HBox(
            [self.pause_button, self.stop_button, self.retry_button, self.cancel_button],
            layout=layout(flex_flow="row wrap", width="100%"),
        )

        self.agent_rows: dict[str, tuple[list[widgets.HTML], widgets.Button]] = {}
        self.pool_line = widgets.HTML()  # the GPUs other sweeps of the store hold
        self.exited_line = widgets.HTML()  # how many agents have exited (not listed)
        self.agents_grid = widgets.GridBox(
            layout=layout(
                grid_template_columns="repeat(6, minmax(0, max-content)) max-content",
                grid_gap="0px 14px",
                align_items="center",
                width="100%",
                overflow="auto",
            )
        )
        self.agents_box = widgets.VBox(layout=layout(width="100%"))
        # One grid, so each Drain button sits in its agent's row.
        self.agent_heads = [widgets.HTML(f"<b>{head}</b>") for head in (*_html.AGENT_HEADS, "")]

        self.sort = widgets.Dropdown(
            options=list(views.SORT_KEYS), value="metric", description="sort by",
            layout=layout(width="auto"),
        )  # fmt: skip
        self.reverse = widgets.Checkbox(value=False, description="reverse", indent=False)
        self.sort.observe(lambda _: self._redraw_table(), names="value")
        self.reverse.observe(lambda _: self._redraw_table(), names="value")
        self.clear_filter = widgets.Button(
            description="Clear filter", layout=layout(display="none")
        )
        self.clear_filter.on_click(lambda _: self._clear_filter())
        self.table = widgets.HTML(
            layout=layout(width="100%", margin="0", max_height="360px", overflow="auto")
        )
        self.failed_buttons = widgets.HBox(layout=layout(flex_flow="row wrap"))

        self.bands_table = widgets.HTML()
        self.bands_y = _y_axis_picker()
        self.bands = FigurePane(plot.draw_bands, _plotly.bands_figure, self.show_run)
        self.parallel = ParallelView(on_brush=self._on_brush)
        self.importance = widgets.HTML()
        self.curve_key = widgets.Dropdown(options=[], description="key")
        self.curve_x = widgets.Dropdown(
            options=["iteration", "step"], value="iteration", description="x"
        )
        self.curve_y = _y_axis_picker()
        self.smoothing = widgets.FloatSlider(
            value=0.0, min=0.0, max=0.99, step=0.01, description="smoothing"
        )
        self.curves = FigurePane(plot.draw_curves, _plotly.curves_figure, self.show_run)
        self.history = FigurePane(plot.draw_history, _plotly.history_figure, self.show_run)
        self.slice = FigurePane(plot.draw_slice, _plotly.slice_figure, self.show_run)
        self.timeline = FigurePane(plot.draw_timeline, _plotly.timeline_figure, self.show_run)
        self.run_picker = widgets.Dropdown(options=[], description="run")
        self.detail = widgets.HTML(layout=layout(width="100%", margin="0"))
        self.run_curves = FigurePane(plot.draw_run_detail, _plotly.run_detail_figure)
        self._syncing = False  # while the code (not the user) sets a picker
        for control, tab in (
            (self.bands_y, BANDS),
            (self.curve_key, CURVES),
            (self.curve_x, CURVES),
            (self.curve_y, CURVES),
            (self.smoothing, CURVES),
        ):
            control.observe(lambda _, t=tab: self._user_redraw(t), names="value")
        self.run_picker.observe(self._on_run_picked, names="value")
        row = layout(flex_flow="row wrap", width="100%")
        full = layout(width="100%")
        self.tabs = widgets.Tab(
            children=[
                widgets.VBox([self.bands_table, self.bands_y, self.bands.widget], layout=full),
                self.parallel.widget,
                self.importance,
                widgets.VBox(
                    [
                        widgets.HBox(
                            [self.curve_key, self.curve_x, self.curve_y, self.smoothing],
                            layout=row,
                        ),
                        self.curves.widget,
                    ],
                    layout=full,
                ),
                self.history.widget,
                self.slice.widget,
                self.timeline.widget,
                widgets.VBox(
                    [
                        widgets.HTML(
                            '<span style="color:#757575">click a row of the runs table or a'
                            " line of a plot to show its run here</span>"
                        ),
                        self.run_picker,
                        self.detail,
                        self.run_curves.widget,
                    ],
                    layout=full,
                ),
            ],
            layout=full,
        )
        for index, title in enumerate(TAB_TITLES):
            self.tabs.set_title(index, title)
        self.tabs.observe(lambda _: self._redraw_tab(self.tabs.selected_index), "selected_index")

        parts: list[widgets.Widget] = [widgets.HTML(_html.STYLE)]
        if self.watch is not None:
            parts.append(self.watch)
        parts += [
            self.header,
            buttons,
            self.confirm,
            self.status,
            self.agents_box,
            widgets.HBox([self.sort, self.reverse, self.clear_filter], layout=row),
            self.table,
            self.failed_buttons,
            self.tabs,
        ]
        self.root = widgets.VBox(
            parts, layout=layout(border="1px solid #e0e0e0", padding="8px", width="100%")
        )
        self.root.add_class("nbsweep-dashboard")
        if self.watch is not None:
            self.watch.view_id = self.root.model_id
            self.watch.observe(lambda change: self._fit(change["new"]), names="width")
        # The tab is drawn by the refresher (or when chosen): its first figure imports
        # plotly, seconds a cell must not wait for.
        self.refresh(force=True, tab=False)
        self._took = 0.0  # the first read is of every run: no measure of the next ones

    # ------------------------------------------------------------------ display and thread

    def _ipython_display_(self) -> None:
        from IPython.display import display

        snap = self._snapshot
        self._published_state = snap.state if snap is not None else None
        self._display = display(self.bundle(), raw=True, display_id=True)
        self.start()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # For front ends that format rather than call _ipython_display_.
        self.start()
        return self.bundle()

    def bundle(self) -> dict[str, Any]:
        """The widget view with its static snapshot beside it, and a line of text."""
        snap = self._snapshot if self._snapshot is not None else self.feed.snapshot()
        ended = snap.state not in SWEEP_LIVE
        # The figures need the logged rows; drawn for a sweep that has runs to show.
        if ended and snap.history is None:
            snap = self.feed.snapshot(history=True)
        view = {"version_major": 2, "version_minor": 0, "model_id": self.root.model_id}
        return {
            "text/plain": _static.plain_text(snap),
            "text/html": _static.snapshot_html(snap, self._controller_alive, with_figures=ended),
            "application/vnd.jupyter.widget-view+json": view,
        }

    def _publish(self) -> None:
        """Refresh the saved snapshot when the sweep's state moved: through the display id
        (which the front end answers by drawing the widget anew), or, while the front end
        writes the snapshot at every save, only there until the sweep ends."""
        snap = self._snapshot
        if self._display is None or snap is None or snap.state == self._published_state:
            return
        self._published_state = snap.state
        saves = self.watch is not None and self.watch.saves
        if saves and snap.state in SWEEP_LIVE:
            return  # a pause or resume: the next save writes it (``_keep_saved``)
        bundle = self.bundle()
        self._display.update(bundle, raw=True)
        if saves:
            # What saves write from now on: the ended sweep, with its figures.
            self.watch.snapshot = bundle["text/html"]
            self._saved_version = self._version

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
        self._redraw_tab(self.tabs.selected_index or 0)  # once, untimed: it builds the figure
        self._figure_stale = False
        while not self._stop.wait(next_wait(self.interval, self._took)):
            try:
                if not self.refresh() and self._figure_stale:
                    self._redraw_visible()  # its turn came after the store settled
                self._check_controller()
                self._tick()
                self._publish()
                self._keep_saved()
            except Exception:  # noqa: BLE001 - a thread has nowhere else to report to
                self.status.value = _error_html(traceback.format_exc(limit=3))
                return
            # The snapshot that saw the sweep end was drawn in full: nothing more will change.
            if self._snapshot is not None and self._snapshot.state not in SWEEP_LIVE:
                return

    # ------------------------------------------------------------------ refresh

    def refresh(self, force: bool = False, tab: bool = True) -> bool:
        """Redraw if the store changed since the last call (or ``force``); returns whether it
        redrew. The visible tab is redrawn with the rest (unless ``tab`` is False); the
        others when they are shown."""
        start = time.monotonic()
        with self._lock:
            if not self.feed.changed() and not force:
                self._took = time.monotonic() - start
                return False
            # The history is the largest read: take it only for the tabs that draw it.
            self._snapshot = self.feed.snapshot(
                history=self._draws_history(self.tabs.selected_index)
            )
            if force:
                self._check_controller(force=True)
            self._drawn_tabs.clear()
            snap = self._snapshot
            self._header = views.header_info(snap)
            self._draw_header()
            self._update_buttons(snap)
            self._update_agents(snap)
            self._update_sort_options(snap)
            self._redraw_table()
            self._update_failed(snap)
            self._figure_stale = True
            self._version += 1
            self._took = time.monotonic() - start
        if tab:
            self._redraw_visible()
        return True

    def _redraw_visible(self) -> None:
        """Redraw the visible tab; a figure at most as often as its own cost allows.

        Parallel coordinates (cheap) and the run view go with the table they agree with.
        """
        index = self.tabs.selected_index or 0
        if index in (PARALLEL, RUN):
            self._figure_stale = False
            self._redraw_tab(index, force=True)
            return
        if not self._figure_stale or time.monotonic() < self._figure_due:
            return
        start = time.monotonic()
        self._figure_stale = False
        self._redraw_tab(index, force=True)
        self._figure_due = time.monotonic() + next_wait(FIGURE_INTERVAL_S, time.monotonic() - start)

    def _draw_header(self) -> None:
        if self._header is not None:
            self.header.value = _html.header_html(self._header, time.time(), self._controller_alive)
            self._ticked = time.monotonic()

    def _tick(self) -> None:
        """Move the elapsed time (and ETA) on between redraws while the sweep is live."""
        live = self._header is not None and self._header.live and self._controller_alive
        if live and time.monotonic() - self._ticked >= TICK_S:
            self._draw_header()

    def _on_saved(self) -> None:
        """The front end saved the notebook: the refresher draws the figures of now."""
        self._figures_wanted = True

    def _keep_saved(self) -> None:
        """Keep what the next save writes current (only where the front end writes it): the
        header and table at every redraw, the figures after a save asked for them."""
        watch = self.watch
        snap = self._snapshot
        if watch is None or not watch.saves or snap is None:
            return
        if self._saved_version != self._version:
            self._saved_version = self._version
            watch.snapshot = _static.snapshot_html(snap, self._controller_alive, with_figures=False)
        if self._figures_wanted:
            self._figures_wanted = False
            if self._figures_version != self._version:
                self._figures_version = self._version
                watch.figures = _static.figures_html(self.feed.snapshot(history=True))
            watch.send({"figures": True})

    def _check_controller(self, force: bool = False) -> None:
        """Whether a controller still runs the sweep: nothing in the store changes when one
        dies with its kernel, so the dashboard asks now and then."""
        if not force and time.monotonic() - self._checked_controller < CONTROLLER_CHECK_S:
            return
        self._checked_controller = time.monotonic()
        alive = bool(self.sweep.controller_alive)
        if alive != self._controller_alive:
            self._controller_alive = alive
            self._draw_header()

    def _draws_history(self, index: int | None) -> bool:
        """Curves and the run view draw logged rows, and so do Bands with hyperband."""
        config = self._snapshot.config if self._snapshot is not None else self.sweep.config
        return index in (CURVES, RUN) or (index == BANDS and views.has_bands(config))

    def _update_buttons(self, snap: views.Snapshot) -> None:
        paused = snap.state == SweepState.PAUSED
        self.pause_button.description = "Resume" if paused else "Pause"
        self.pause_button.icon = "play" if paused else "pause"
        ended = snap.state not in SWEEP_LIVE
        self.pause_button.disabled = ended
        self.stop_button.disabled = ended
        self.cancel_button.disabled = ended
        if ended:
            self._hide_confirm()
        why_not = _retry_blocked(snap.runs)
        self.retry_button.disabled = why_not is not None
        self.retry_button.tooltip = why_not or "queue the failed and crashed runs again"

    def _update_agents(self, snap: views.Snapshot) -> None:
        stats = gpu_stats()
        agents, exited = _html.present_agents(snap.agents)
        rows: list[widgets.Widget] = []
        for _, agent in agents.iterrows():
            agent_id = agent.get("agent")
            name = str(agent_id)
            if name not in self.agent_rows:
                labels = [widgets.HTML() for _ in _html.AGENT_HEADS]
                drain = widgets.Button(
                    description="Drain",
                    tooltip="finish this agent's run, then release its GPU",
                    layout=widgets.Layout(width="auto"),
                )
                drain.on_click(
                    self._action(f"drain {name}", lambda a=agent_id: self.sweep.drain(a))
                )
                self.agent_rows[name] = (labels, drain)
            labels, drain = self.agent_rows[name]
            for label, text in zip(labels, _html.agent_cells(agent, stats), strict=True):
                label.value = f'<span class="nbsweep">{_html.escape(text)}</span>'
            drain.disabled = str(agent.get("state")) == AgentState.DRAINING
            rows += [*labels, drain]
        if rows:
            wanted = [*self.agent_heads, *rows]
            if [id(w) for w in self.agents_grid.children] != [id(w) for w in wanted]:
                self.agents_grid.children = tuple(wanted)
        self.exited_line.value = _html.exited_html(exited)
        pool = _html.gpu_pool_html(snap.gpu_pool, snap.id)
        self.pool_line.value = pool
        box = (
            ([self.agents_grid] if rows else [])
            + ([self.exited_line] if exited else [])
            + ([self.pool_line] if pool else [])
        )
        if [id(w) for w in self.agents_box.children] != [id(w) for w in box]:
            self.agents_box.children = tuple(box)

    def _update_sort_options(self, snap: views.Snapshot) -> None:
        options = list(views.SORT_KEYS) + [p.name for p in views.parameters_of(snap.config)]
        if list(self.sort.options) != options:
            value = self.sort.value if self.sort.value in options else "metric"
            self.sort.options = options
            self.sort.value = value

    def _filter(self, snap: views.Snapshot) -> set[str] | None:
        """The runs inside the brushed ranges, from this snapshot's values (None: no brush).

        Recomputed at every redraw, so new runs inside the ranges show up in the table as
        their lines light up in the plot.
        """
        if not self.parallel.brushed:
            return None
        return self.parallel.selected(views.parallel_info(snap))

    def _redraw_table(self) -> None:
        snap = self._snapshot
        if snap is None:
            return
        ascending = views.default_ascending(snap, self.sort.value) != self.reverse.value
        only = self._filter(snap)
        info = views.runs_table_info(snap, self.sort.value, ascending, only, TABLE_ROWS)
        self.table.value = _html.runs_table_html(info, limit=TABLE_ROWS)
        self.clear_filter.layout.display = None if only is not None else "none"
        ids = [row.run_id for row in views.runs_table_info(snap).rows]
        if list(self.run_picker.options) != ids:
            self._syncing = True
            try:
                self.run_picker.options = ids
                self.run_picker.value = self._run_id if self._run_id in ids else None
            finally:
                self._syncing = False

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
        """Show a run in the Run tab: config, summary, GPU figures, curves, traceback, log."""
        self._run_id = run_id
        if run_id in self.run_picker.options and self.run_picker.value != run_id:
            self._syncing = True
            try:
                self.run_picker.value = run_id
            finally:
                self._syncing = False
        if self.tabs.selected_index != RUN:
            self.tabs.selected_index = RUN  # draws it
        else:
            self._redraw_tab(RUN, force=True)

    def _on_run_picked(self, change: Any) -> None:
        if not self._syncing and change["new"]:
            self.show_run(change["new"])

    def _user_redraw(self, index: int) -> None:
        if not self._syncing:
            self._redraw_tab(index, force=True)

    def _redraw_tab(self, index: int | None, force: bool = False) -> None:
        snap = self._snapshot
        if snap is None or index is None or (index in self._drawn_tabs and not force):
            return
        with self._lock:
            if snap.history is None and self._draws_history(index):
                snap = self._snapshot = self.feed.snapshot(history=True)
            self._drawn_tabs.add(index)
            if index == BANDS:
                info = views.bands_info(snap, log_y=Y_AXES[self.bands_y.value])
                self.bands_table.value = _html.bands_table_html(info)
                self.bands.draw(info)
            elif index == PARALLEL:
                self.parallel.update(views.parallel_info(snap))
            elif index == IMPORTANCE:
                self.importance.value = _html.importance_html(views.importance_info(snap))
            elif index == CURVES:
                self._draw_curves(snap)
            elif index == HISTORY:
                self.history.draw(views.history_info(snap))
            elif index == SLICE:
                self.slice.draw(views.slice_info(snap))
            elif index == TIMELINE:
                self.timeline.draw(views.timeline_info(snap))
            elif index == RUN:
                self._draw_run(snap)

    def _draw_curves(self, snap: views.Snapshot) -> None:
        info = views.curves_info(
            snap,
            self.curve_key.value or None,
            x=self.curve_x.value,
            smoothing=float(self.smoothing.value),
            log_y=Y_AXES[self.curve_y.value],
        )
        # The picker shows the key drawn (the metric at first), never a blank.
        self._syncing = True
        try:
            if list(self.curve_key.options) != info.keys:
                self.curve_key.options = info.keys
            if info.key in info.keys and self.curve_key.value != info.key:
                self.curve_key.value = info.key
        finally:
            self._syncing = False
        self.curves.draw(info)

    def _draw_run(self, snap: views.Snapshot) -> None:
        run_id = self._run_id
        if run_id is None:
            self.detail.value = '<span style="color:#757575">no run chosen yet</span>'
            return
        try:
            path = self.sweep.get_run(run_id).log_path
            info = views.run_detail_info(snap, run_id, views.log_tail(path) if path else "")
        except KeyError:
            self.detail.value = _error_html(f"run {run_id} is not in this sweep")
            return
        self.detail.value = _html.run_view_html(info)
        self.run_curves.draw(info)

    def _fit(self, width: int) -> None:
        """Size the figures to the dashboard's width in the page (less the tab's frame)."""
        if width <= 0:
            return
        room = max(MIN_FIGURE_PX, width - FIGURE_FRAME_PX)
        with self._lock:  # the refresher may be redrawing a figure
            self.parallel.fit(room)
            for pane in (
                self.bands, self.curves, self.history, self.slice, self.timeline, self.run_curves,
            ):  # fmt: skip
                pane.fit(room)

    # ------------------------------------------------------------------ actions

    def _on_brush(self) -> None:
        self._redraw_table()

    def _clear_filter(self) -> None:
        self.parallel.clear_ranges()
        self._redraw_table()

    def _on_pause(self, _: Any) -> None:
        if self.sweep.state == SweepState.PAUSED:
            self._action("resume", lambda: self.sweep.resume())(None)
        else:
            self._action("pause", lambda: self.sweep.pause())(None)

    def _ask_cancel(self, _: Any) -> None:
        running = _count(self._snapshot, RunState.RUNNING)
        self.confirm_text.value = (
            f"<b>Cancel the sweep and kill its {running} running runs?</b> "
            '<span style="color:#757575">(Stop lets them finish)</span>&nbsp;'
        )
        self.confirm.layout.display = None

    def _do_cancel(self, _: Any) -> None:
        self._hide_confirm()
        self._action("cancel", lambda: self.sweep.cancel())(None)

    def _hide_confirm(self) -> None:
        self.confirm.layout.display = "none"

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


def _kernel_watch(
    sweep_id: str, on_run: Callable[[str], None], on_saved: Callable[[], None]
) -> Any:
    """The browser-side watcher (``_watch``), or None without anywidget (e.g. Colab)."""
    try:
        from nbsweep.widgets._watch import KernelWatch
    except ImportError:
        return None
    return KernelWatch(sweep_id, on_run, on_saved)


def _y_axis_picker() -> widgets.Dropdown:
    return widgets.Dropdown(options=list(Y_AXES), value="auto", description="y axis")


def _count(snap: views.Snapshot | None, state: str) -> int:
    if snap is None or "state" not in snap.runs.columns:
        return 0
    return int((snap.runs["state"] == state).sum())


def _close_tree(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def _retry_blocked(runs: Any) -> str | None:
    """Why "Retry failed" has nothing to do (None: some failed run can be queued again)."""
    if "state" not in runs.columns:
        return "no failed or crashed runs to retry"
    failed = set(runs.loc[runs["state"].isin(FAILED), "run_id"])
    if not failed:
        return "no failed or crashed runs to retry"
    if "requeued_from" in runs.columns:
        failed -= set(runs["requeued_from"].dropna())
    if not failed:
        return "every failed or crashed run is already queued again"
    return None


def _error_html(text: str) -> str:
    return f'<span style="color:#e53935;white-space:pre-wrap">{_html.escape(text)}</span>'
