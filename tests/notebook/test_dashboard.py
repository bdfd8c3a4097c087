"""The dashboard on real sweeps: every button, the tables, the tabs, the refresher thread."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from nbsweep.agents._gpus import FakeNVML, set_nvml
from nbsweep.widgets import Dashboard, HtmlDashboard, dashboard
from nbsweep.widgets._dashboard import TAB_TITLES

# Each run logs once, then waits at a gate (a file the test creates) before it logs more: so
# a sweep is surely running while the test clicks, and its runs end when the test says.
SLOW = """
import os, time
import nbsweep

@nbsweep.train
def slow(config):
    nbsweep.log({{"loss": config.x}})
    while not os.path.exists({gate!r}):
        time.sleep(0.02)
    for step in range(1, 4):
        nbsweep.log({{"loss": config.x / (step + 1)}})
"""

FAST = """
import nbsweep

@nbsweep.train
def fast(config):
    if config.x == 3:
        print("about to fail")
        raise ValueError("x=3 is cursed")
    for step in range(4):
        nbsweep.log({"loss": config.x / (step + 1), "lr": config.lr})
"""

GRID = """
method: grid
metric: {name: loss, goal: minimize}
parameters:
  x: {values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
  lr: {values: [0.01]}
"""


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every message widgets send to the front end, recorded by a dummy comm."""
    import ipywidgets
    from ipywidgets.widgets import widget as widget_module

    messages: list[dict[str, Any]] = []

    class RecordingComm:
        kernel = "Truthy"

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.comm_id = uuid.uuid4().hex

        def open(self, *args: Any, **kwargs: Any) -> None:
            pass

        def on_msg(self, *args: Any, **kwargs: Any) -> None:
            pass

        def send(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
            messages.append(data)

        def close(self, *args: Any, **kwargs: Any) -> None:
            pass

    if hasattr(widget_module, "comm"):  # ipywidgets 8
        monkeypatch.setattr(widget_module.comm, "create_comm", lambda **kw: RecordingComm())
    else:  # ipywidgets 7
        monkeypatch.setattr(widget_module, "Comm", RecordingComm)
        monkeypatch.setattr(ipywidgets.Widget.comm, "klass", RecordingComm)
    return messages


@pytest.fixture
def gate(tmp_path: Any) -> Any:
    """The gate of the ``live`` sweep's runs: ``gate.touch()`` lets them end."""
    return tmp_path / "gate"


@pytest.fixture
def live(ip: Any, gate: Any) -> Any:
    """A grid sweep whose runs wait at ``gate``, cancelled at the end of the test."""
    ip.run_cell(SLOW.format(gate=str(gate)))
    sweep = ip.run_cell_magic("sweep", "slow --workers 1", GRID)
    yield sweep
    if sweep.state in ("pending", "running", "paused"):
        sweep.cancel()
    sweep.wait(timeout=60)


@pytest.fixture(scope="module")
def done(shell: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A finished grid sweep: 9 finished runs and one failed (shared: tests only read it)."""
    store = tmp_path_factory.mktemp("done") / "nbsweep.db"
    shell.run_cell(FAST)
    return shell.run_cell_magic(
        "sweep", f"fast --workers 2 --name dash --store {store} --wait", GRID
    )


def test_cell_result_displays_as_the_dashboard(ip, done):
    assert isinstance(dashboard(done), Dashboard)
    assert isinstance(dashboard(done, mode="html"), HtmlDashboard)
    with pytest.raises(ValueError, match="dashboard mode must be one of"):
        dashboard(done, mode="tui")


def test_header_and_table_of_a_finished_sweep(done):
    dash = Dashboard(done)
    header = dash.header.value
    assert "dash" in header and done.id in header and "finished" in header
    assert "10 / 10 runs" in header and "9 finished" in header and "1 failed" in header
    assert "best loss (minimize): <b>0.25</b>" in header
    table = dash.table.value
    assert table.count("<tr") == 11  # the header row and one per run
    # Best first: x=1 ends at 1/4 = 0.25.
    first_row = table.split("<tr")[2]
    assert "0.25" in first_row
    assert "x=3 is cursed" in table
    # Every control but Retry is off for a finished sweep.
    assert dash.pause_button.disabled and dash.stop_button.disabled and dash.cancel_button.disabled
    assert not dash.retry_button.disabled


def test_header_of_a_warm_started_sweep_names_the_runs_it_learned_from(shell, done):
    import nbsweep

    config = {
        "method": "bayes",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"values": list(range(1, 11))}, "lr": {"values": [0.01]}},
    }
    with (
        pytest.warns(UserWarning, match="warm start: 9 runs of sweep"),  # the failed one not
        pytest.warns(UserWarning, match="workers=0"),
    ):
        warm = nbsweep.sweep(
            config, shell.user_ns["fast"], workers=0, store=done.store, warm_start=done
        )
    try:
        expected = f"warm start: 9 runs from {done.id}"
        assert expected in Dashboard(warm).header.value
        assert expected in HtmlDashboard(warm).bundle()["text/html"]
        assert "warm start" not in Dashboard(done).header.value
    finally:
        warm.cancel()
        warm.wait(timeout=30)


def test_agents_that_exited_are_counted_not_listed_as_dead(done):
    import dataclasses

    dash = Dashboard(done)  # its two agents left when the sweep ended
    assert dash.agents_box.children == (dash.exited_line,)
    assert "2 agents have exited" in dash.exited_line.value
    # One still there among two gone (say, from before a restart): only it has a row.
    mixed = done.agents.assign(state=["dead", "idle"])
    dash._update_agents(dataclasses.replace(dash._snapshot, agents=mixed))
    width = len(dash.agent_heads)
    assert len(dash.agents_grid.children) == 2 * width
    assert dash.agents_box.children == (dash.agents_grid, dash.exited_line)
    cells = " ".join(w.value for w in dash.agents_grid.children[width:] if hasattr(w, "value"))
    assert "idle" in cells and "dead" not in cells
    assert "1 agent has exited" in dash.exited_line.value


def test_sorting_the_table(done):
    dash = Dashboard(done)
    assert "x" in dash.sort.options and "lr" in dash.sort.options
    dash.sort.value = "x"
    rows = dash.table.value.split("<tr")[2:]
    assert "<td>10</td>" in rows[0]  # a parameter sorts descending first
    dash.reverse.value = True
    rows = dash.table.value.split("<tr")[2:]
    assert "<td>1</td>" in rows[0]


def test_failed_run_button_shows_traceback_and_log(done):
    dash = Dashboard(done)
    buttons = [b for b in dash.failed_buttons.children if hasattr(b, "click")]
    assert len(buttons) == 1
    buttons[0].click()
    assert "ValueError: x=3 is cursed" in dash.detail.value
    assert "about to fail" in dash.detail.value


def test_tabs_draw_when_selected(done):
    dash = Dashboard(done)
    for index in [*range(1, len(TAB_TITLES)), 0]:  # the first tab is drawn when chosen
        dash.tabs.selected_index = index
    assert [dash.tabs.get_title(i) for i in range(len(TAB_TITLES))] == list(TAB_TITLES)
    assert "no hyperband" in dash.bands_table.value
    # Each figure is interactive plotly where installed, else a PNG.
    for pane in (dash.bands, dash.curves, dash.history, dash.slice, dash.timeline):
        assert pane.interactive or bytes(pane.image.value).startswith(b"\x89PNG")
    # The key picker shows the key drawn, the metric, from the first look.
    assert list(dash.curve_key.options) == ["loss", "lr"] and dash.curve_key.value == "loss"
    # The y axis picker and the smoothing slider redraw the curves.
    dash.curve_y.value = "log"
    dash.smoothing.value = 0.5
    if dash.curves.interactive:
        assert dash.curves.figure.layout.yaxis.type == "log"
        # Smoothed: each run's raw values stay behind its smoothed line, faint.
        assert any(t.opacity == 0.25 for t in dash.curves.figure.data)
    assert "importance" in dash.importance.value and "<td>x</td>" in dash.importance.value
    if dash.parallel.interactive:
        dims = dash.parallel.figure.data[0].dimensions
        assert [d.label for d in dims] == ["x", "lr", "loss"]


def test_clicking_a_run_shows_it_in_the_run_tab(done):
    dash = Dashboard(done)
    best = done.best_run.id
    dash.show_run(best)
    assert dash.tabs.selected_index == TAB_TITLES.index("Run")
    assert f"run {best}" in dash.detail.value and "config" in dash.detail.value
    assert dash.run_picker.value == best
    # A click on a table row reaches the kernel as a message from the watcher.
    if dash.watch is not None:
        failed = done.runs.loc[done.runs["state"] == "failed", "run_id"].iloc[0]
        dash.watch._answer(None, {"run": failed}, [])
        assert "ValueError: x=3 is cursed" in dash.detail.value
        assert f'data-run="{best}"' in dash.table.value


def test_brushing_parallel_coordinates_filters_the_table(done):
    dash = Dashboard(done)
    dash.tabs.selected_index = 1
    try:
        import plotly  # noqa: F401
    except ImportError:
        # Without plotly (Colab's default) the tab is a static image, and says nothing of drags.
        assert not dash.parallel.interactive
        assert bytes(dash.parallel.image.value).startswith(b"\x89PNG")
        assert "drag" not in dash.parallel.hint.value
        return
    assert dash.parallel.interactive and "drag along an axis" in dash.parallel.hint.value
    axis = dash.parallel.figure.data[0].dimensions[0]
    # What a drag along the x axis sends back: x is categorical, 1 and 2 sit at 0 and 1.
    axis.constraintrange = [-0.5, 1.5]
    assert dash.table.value.count("<tr") == 3
    # Hidden: the plotted runs outside the brush (the failed run has no line to hide).
    assert "7 runs hidden" in dash.table.value
    assert "x 1, 2" in dash.parallel.hint.value
    assert dash.clear_filter.layout.display is None
    dash.clear_filter.click()
    assert dash.table.value.count("<tr") == 11
    assert dash.parallel.figure.data[0].dimensions[0].constraintrange is None


def test_pause_resume_stop_buttons(live, gate):
    dash = Dashboard(live)
    assert dash.pause_button.description == "Pause"
    dash.pause_button.click()
    assert live.state == "paused"
    assert dash.pause_button.description == "Resume"
    assert "paused" in dash.header.value
    dash.pause_button.click()
    assert live.state == "running"
    assert dash.pause_button.description == "Pause"
    dash.stop_button.click()
    gate.touch()
    live.wait(timeout=60)
    assert live.state == "finished"
    # Stop lets running runs finish and starts no new ones.
    assert len(live.runs) < 10


def test_cancel_button_asks_then_kills_running_runs(live):
    dash = Dashboard(live)
    dash.cancel_button.click()
    assert live.state == "running"  # nothing killed yet: it asks first
    assert dash.confirm.layout.display is None and "kill" in dash.confirm_text.value
    dash.keep_running.click()
    assert dash.confirm.layout.display == "none" and live.state == "running"
    dash.cancel_button.click()
    dash.confirm_cancel.click()
    live.wait(timeout=60)
    assert live.state == "cancelled"
    assert "running" not in set(live.runs["state"])


def test_drain_button_and_agent_gpu_stats(ip, gate):
    set_nvml(
        FakeNVML([{"name": "Fake H100", "util": 87, "used": 30 * 2**30, "memory": 80 * 2**30}])
    )
    try:
        ip.run_cell(SLOW.format(gate=str(gate)))  # never opened: the runs wait till cancelled
        sweep = ip.run_cell_magic("sweep", "slow", GRID)
        try:
            dash = Dashboard(sweep)
            deadline = time.monotonic() + 60
            while not dash.agents_box.children:  # the agent process registers itself
                assert time.monotonic() < deadline, "the agent never showed"
                time.sleep(0.1)
                dash.refresh()
            # One grid: a heading row, then each agent's cells with its Drain button last.
            cells = dash.agents_grid.children
            width = len(dash.agent_heads)
            assert len(cells) == 2 * width
            *labels, drain = cells[width:]
            text = " ".join(label.value for label in labels)
            assert "Fake H100" in text and "87%" in text and "30.0 / 80 GiB" in text
            assert drain.description == "Drain"
            drain.click()
            assert "drain 0: done" in dash.status.value
            # The agent finishes its run, then exits.
            deadline = time.monotonic() + 60
            while sweep.agents["state"].iloc[0] not in ("draining", "dead"):
                assert time.monotonic() < deadline, "the agent was not drained"
                time.sleep(0.1)
        finally:
            sweep.cancel()
            sweep.wait(timeout=60)
    finally:
        set_nvml(None)


def test_retry_button(ip, tmp_path):
    flag = tmp_path / "fail"
    flag.touch()
    ip.run_cell(
        FAST.replace(
            "config.x == 3", f"config.x == 3 and __import__('os').path.exists({str(flag)!r})"
        )
    )
    sweep = ip.run_cell_magic("sweep", "fast --workers 1 --wait", GRID)
    dash = Dashboard(sweep)
    flag.unlink()
    dash.retry_button.click()
    assert "retry failed: done" in dash.status.value
    sweep.wait(timeout=120)
    runs = sweep.runs
    failed = runs.loc[runs["state"] == "failed", "run_id"].tolist()
    assert len(failed) == 1  # the failed run stays in the record...
    again = runs[runs["requeued_from"] == failed[0]]
    assert again["state"].tolist() == ["finished"]  # ...and its config ran again
    dash.refresh(force=True)
    assert dash.retry_button.disabled
    # Greyed out with its reason.
    assert dash.retry_button.tooltip == "every failed or crashed run is already queued again"


def test_refresher_sends_updates_through_traits_and_stops_with_the_sweep(live, gate, sent):
    dash = Dashboard(live, refresh_hz=10)
    dash.start()
    assert dash.live
    sent.clear()
    live.pause()
    live.resume()
    live.stop()
    gate.touch()
    live.wait(timeout=60)
    dash._thread.join(timeout=30)
    assert not dash.live
    updates = [m["state"] for m in sent if m and m.get("method") == "update"]
    assert any("finished" in s.get("value", "") for s in updates if isinstance(s, dict))


def test_html_mode_bundle(done):
    view = dashboard(done, mode="html")
    bundle = view.bundle()
    assert "10 / 10 runs" in bundle["text/html"]
    assert bundle["text/plain"].startswith(f"Sweep dash ({done.id}): finished, 10 / 10 runs")
    assert "best loss=0.25" in bundle["text/plain"]


@pytest.fixture
def published(ip: Any) -> Any:
    """What the shell displays (``display`` and display-handle updates), captured."""
    from IPython.core.displaypub import CapturingDisplayPublisher

    original = ip.display_pub
    ip.display_pub = CapturingDisplayPublisher()
    yield ip.display_pub.outputs
    ip.display_pub = original


def test_a_sweep_displays_as_its_dashboard(ip, done, published):
    from IPython.display import display

    display(done)  # what a kernel does with a cell's result
    views = [
        o["data"] for o in published if "application/vnd.jupyter.widget-view+json" in o["data"]
    ]
    assert len(views) == 1


@pytest.mark.anywidget
def test_a_front_end_that_writes_snapshots_at_saves_gets_them_current(ip, live, gate, published):
    """JupyterLab's kernel watch says it writes the snapshot at saves (``saves``): the kernel
    keeps the snapshot current, draws figures when a save asks, and no longer redraws the
    whole widget through the display id on a pause; it still does at the end."""
    from nbsweep.widgets._static import FIGURES_MARK
    from tests.waiting import wait_for

    dash = Dashboard(live, refresh_hz=10)
    dash.interval = 0.05
    answers: list[Any] = []
    dash.watch.send = answers.append  # what the watch tells the browser
    dash.watch.saves = True  # as the browser side sets it when it could hook saves
    dash._ipython_display_()
    assert dash.watch.view_id == dash.root.model_id
    wait_for(lambda: "running" in dash.watch.snapshot, "the snapshot of the live sweep")
    assert FIGURES_MARK in dash.watch.snapshot and live.id in dash.watch.snapshot
    dash.watch._answer(None, {"saved": True}, [])  # the browser saved the notebook
    wait_for(lambda: answers == [{"figures": True}], "figures drawn after the save")
    assert dash.watch.figures.count("data:image/png;base64,") >= 3
    live.pause()
    wait_for(lambda: "paused" in dash.watch.snapshot, "the pause in the snapshot")
    assert len(published) == 1  # the display as shown, not drawn anew
    live.resume()
    live.stop()
    gate.touch()
    live.wait(timeout=60)
    dash._thread.join(timeout=30)
    first, last = published
    assert last["update"] and last["transient"] == first["transient"]
    final = last["data"]["text/html"]
    assert "finished" in final and dash.watch.snapshot == final


def test_html_mode_is_chosen_without_a_kernel_and_forced_by_env(monkeypatch):
    from nbsweep.widgets import detect_mode

    monkeypatch.delenv("NBSWEEP_DASHBOARD", raising=False)
    assert detect_mode() == "html"  # IPython's test shell has no kernel, so no widget comms
    monkeypatch.setenv("NBSWEEP_DASHBOARD", "widgets")
    assert detect_mode() == "widgets"


def test_html_dashboard_updates_in_place_until_the_sweep_ends(ip, live, gate, published):
    view = dashboard(live, mode="html")
    view.interval = 0.05
    view._ipython_display_()
    assert view.live
    live.stop()
    gate.touch()
    live.wait(timeout=60)
    view._thread.join(timeout=30)
    assert not view.live
    first, *updates = published
    assert first["transient"]["display_id"]
    assert updates and all(u["update"] for u in updates)
    assert {u["transient"]["display_id"] for u in updates} == {first["transient"]["display_id"]}
    assert "finished" in updates[-1]["data"]["text/html"]


def test_static_plots_are_figures_that_ipython_shows_as_png(ip, done):
    from matplotlib.figure import Figure

    figures = [
        done.plot.parallel_coordinates(),
        done.plot.importance(),
        done.plot.bands(),
        done.plot.curves(),
        done.plot.curves("lr"),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    # Without pyplot's inline backend IPython would show "<Figure size ...>"; a kernel (where
    # every MIME type is active, unlike this terminal shell) shows the PNG.
    printer = ip.display_formatter.formatters["image/png"].lookup_by_type(Figure)
    png = printer(figures[0])
    assert png[:4] == b"\x89PNG"
    importance_bars = figures[1].axes[0].patches
    assert len(importance_bars) == 1  # x; lr is constant (one value), so not listed
    assert figures[4].axes[0].get_ylabel() == "lr"


def test_report_is_one_offline_html_file(done, tmp_path):
    path = done.report(tmp_path / "report.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "dash" in page and "10 / 10 runs" in page and "x=3 is cursed" in page
    from nbsweep.report import SECTIONS

    assert page.count("data:image/png;base64,") == len(SECTIONS) == 7
    assert "<script" not in page
    assert "http://" not in page and "https://" not in page
    assert "method: grid" in page  # the config, as YAML


SAVED = """%%sweep fast --workers 1 --name saved-sweep --wait
method: grid
metric: {name: loss, goal: minimize}
parameters:
  x: {values: [1, 2, 4]}
  lr: {values: [0.01]}
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_saved_notebook_shows_its_sweep_without_a_kernel(tmp_path, monkeypatch):
    """Executed by a real kernel, saved as JupyterLab saves (no widget state), converted by
    nbconvert with no kernel: the snapshot beside the widget view shows the sweep."""
    import os
    import sys

    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter
    from nbformat.v4 import new_code_cell, new_notebook

    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.delenv("NBSWEEP_STORE", raising=False)
    monkeypatch.delenv("NBSWEEP_DASHBOARD", raising=False)
    notebook = new_notebook(
        cells=[new_code_cell("%load_ext nbsweep"), new_code_cell(FAST), new_code_cell(SAVED)]
    )
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}}, store_widget_state=False,
    )  # fmt: skip
    client.execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)

    saved = nbformat.read(path, as_version=4)
    (bundle,) = [o["data"] for o in saved.cells[-1].outputs if "data" in o]
    # One MIME bundle: the live widget for a kernel, the snapshot for everyone else.
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/html" in bundle
    page, _ = HTMLExporter().from_notebook_node(saved)
    start = page.index("nbsweep-snapshot")
    snapshot = page[start:]
    assert "saved-sweep" in snapshot and "finished" in snapshot and "3 / 3 runs" in snapshot
    # The runs table, best first, and the figures as inline images.
    assert "<th>run</th>" in snapshot and snapshot.count('<tr data-run="') == 3
    assert "data:image/png;base64," in snapshot
    assert "application/vnd.jupyter.widget-view+json" not in page  # no state: not drawn
