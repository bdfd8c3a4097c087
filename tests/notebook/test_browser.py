"""The dashboard in a real browser: JupyterLab on localhost, Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

CHROMIUM = Path("/usr/bin/chromium")
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Deterministic and quick: the loss is a function of the config, logged over six short epochs,
# so hyperband has bands to stop runs at and every tab has something to draw.
TRAIN = """import math, time
import nbsweep


@nbsweep.train
def train(config):
    penalty = {"rbf": 0.0, "poly": 0.05, "sigmoid": 0.1}[config.kernel]
    base = (math.log10(config.lr) + 2.5) ** 2 / 4 + abs(config.width - 6) / 20 + penalty
    for epoch in range(1, 7):
        time.sleep(0.15)
        nbsweep.log({"val_loss": base + 0.5 / epoch, "epoch": epoch})"""

SWEEP = """import nbsweep
from nbsweep.widgets import dashboard

config = {
    "method": "random",
    "metric": {"name": "val_loss", "goal": "minimize"},
    "run_cap": 400,
    "parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
        "width": {"distribution": "uniform", "min": 0, "max": 10},
        "kernel": {"values": ["rbf", "poly", "sigmoid"]},
    },
    "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
}
sweep = nbsweep.sweep(config, train, workers=2, name="browser-sweep", seed=0)
dash = dashboard(sweep)
dash"""

# What the brushed ranges select, from the sweep's own data (not from the dashboard's code):
# each range mapped to values (10**position on a log axis), then the runs whose value lies in
# every range.
CHECK = """import json
runs = sweep.runs
keep = runs["summary/val_loss"].notna()
ranges = {}
for name, spans in dash.parallel.brushed.items():
    dim = next(d for d in dash.parallel.info.dimensions if d.name == name)
    column = "summary/val_loss" if name == "val_loss" else f"config/{name}"
    values = [(dim.value_at(lo), dim.value_at(hi)) for lo, hi in spans]
    ranges[name] = values
    keep &= runs[column].map(lambda v, values=values: any(lo <= v <= hi for lo, hi in values))
print("CHECK " + json.dumps({"ranges": ranges, "expected": sorted(runs.loc[keep, "run_id"])}))"""

RESUME = """%load_ext nbsweep
import nbsweep
sweep_id = nbsweep.list_sweeps()["sweep_id"].iloc[-1]
%sweep resume {sweep_id}"""

TABS = (
    "Bands", "Parallel coordinates", "Importance", "Curves", "History", "Slice", "Timeline", "Run",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Lab(str):
    """JupyterLab's URL, with ``root``: the folder it serves (the notebooks as saved)."""

    root: Path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab serving a one-sweep notebook from a temporary root, no token."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does)")
    root = tmp_path / "root"
    root.mkdir()
    notebook = new_notebook(
        cells=[
            new_code_cell(TRAIN),
            new_code_cell(SWEEP),
            new_code_cell(CHECK),
            new_code_cell(TRAIN),
            new_code_cell(RESUME),
        ]
    )
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(notebook, root / "dashboard.ipynb")
    # A private config dir: no news pop-up over the screenshot, no user settings.
    config = tmp_path / "config"
    (config / "labconfig").mkdir(parents=True)
    disabled = {"@jupyterlab/apputils-extension:announcements": True}
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": disabled})
    )
    # Every cell stays in the page (no windowing), so the test can reach the dashboard.
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    env["JUPYTER_CONFIG_DIR"] = str(config)
    env.pop("NBSWEEP_STORE", None)
    env.pop("NBSWEEP_TIME_SCALE", None)  # the browser sees the dashboard at a user's pace
    env.pop("NBSWEEP_DASHBOARD", None)
    port = free_port()
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
        "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
        f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=True",
        f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    log_path = tmp_path / "lab.log"
    log = log_path.open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = Lab(f"http://127.0.0.1:{port}")
    url.root = root

    def started() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"JupyterLab exited:\n{log_path.read_text()[-2000:]}")
        return _responds(f"{url}/api/status")

    try:
        wait_until(started, 120, "JupyterLab did not start")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(
    condition: Callable[[], bool], timeout: float, message: str, seen: Any = None
) -> None:
    """Poll ``condition``; on timeout fail with ``message`` and the text of ``seen`` (a
    locator), which says what the page showed instead."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            shown = f"\n--- the page showed:\n{seen.inner_text()}" if seen is not None else ""
            raise AssertionError(message + shown)
        time.sleep(0.25)


WIDGET = "application/vnd.jupyter.widget-view+json"
PARKED = "application/vnd.nbsweep.widget-view+json"  # the view, as a saved file keeps it


def dashboard_outputs(path: Path) -> list[dict[str, Any]]:
    """The MIME bundles of the dashboard outputs in the notebook file, as last saved."""
    try:
        notebook = json.loads(path.read_text())
    except ValueError:  # caught mid-write
        return []
    return [
        output["data"]
        for cell in notebook["cells"]
        for output in cell.get("outputs", ())
        if WIDGET in output.get("data", {}) or PARKED in output.get("data", {})
    ]


def saved_html(path: Path) -> str:
    """The snapshot in the file's first dashboard output ("" before there is one)."""
    found = dashboard_outputs(path)
    html = found[0].get("text/html", "") if found else ""
    return "".join(html) if isinstance(html, list) else html


def runs_done(header: str) -> int:
    found = re.search(r"(\d+) / \d+ runs", header)
    return int(found.group(1)) if found else 0


def run_cell(page: Any, index: int) -> None:
    """Run one cell as a user does: click into it, Shift+Enter."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


def checked(page: Any) -> dict[str, Any]:
    """Run the CHECK cell; its answer: the brushed ranges in values and the runs inside."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    prompt = cell.locator(".jp-InputPrompt")
    before = prompt.inner_text()
    run_cell(page, 2)
    wait_until(
        lambda: prompt.inner_text() not in (before, "[*]:") and "CHECK " in cell.inner_text(),
        120,
        "the check cell did not answer",
    )
    line = next(x for x in cell.inner_text().splitlines() if x.startswith("CHECK "))
    return json.loads(line.removeprefix("CHECK "))


def table_ids(dash: Any) -> list[str]:
    return sorted(dash.locator("tr[data-run]").evaluate_all("rows => rows.map(r => r.dataset.run)"))


def drag(page: Any, dash: Any, axis: int, top: float, bottom: float) -> None:
    """Drag along a parallel-coordinates axis from ``top`` to ``bottom`` (fractions of it)."""
    brush = dash.locator(".js-plotly-plot .axis-brush rect.background").nth(axis)
    brush.scroll_into_view_if_needed()
    box = brush.bounding_box()
    assert box is not None
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] * top)
    page.mouse.down()
    page.mouse.move(x, box["y"] + box["height"] * bottom, steps=12)
    page.mouse.up()


def assert_table_matches_brush(page: Any, dash: Any) -> dict[str, Any]:
    """The runs table shows exactly the runs inside the brushed values, as the data says."""
    answer = checked(page)
    expected = answer["expected"]
    wait_until(lambda: table_ids(dash) == expected, 60, f"table != {expected}: {table_ids(dash)}")
    hint = dash.locator(".widget-html", has_text="runs inside")
    expect_text(hint, f"{len(expected)} of ")
    return answer


# Resolves once nothing in the element has changed for 300 ms (at most 5 s): a figure is drawn,
# then fitted to the cell's width, before a screenshot shows it.
QUIET = """el => new Promise((resolve) => {
  let timer = setTimeout(done, 300);
  const observer = new MutationObserver(() => {
    clearTimeout(timer);
    timer = setTimeout(done, 300);
  });
  const limit = setTimeout(done, 5000);
  function done() { observer.disconnect(); clearTimeout(limit); clearTimeout(timer); resolve(); }
  observer.observe(el, { subtree: true, childList: true, attributes: true });
})"""


def settle(locator: Any) -> None:
    """Wait till the element's page stops changing (for screenshots only, asserts nothing)."""
    locator.evaluate(QUIET)


def expect_text(locator: Any, text: str, timeout: float = 60_000) -> None:
    from playwright.sync_api import expect

    expect(locator.first).to_contain_text(text, timeout=timeout)


def test_dashboard_in_jupyterlab(lab: Lab) -> None:
    """Brushing is exact, the table follows the plot live, every tab draws, the layout fits
    1024 px, a restarted kernel's dashboard says so and %sweep resume brings a live one."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.goto(f"{lab}/lab/tree/dashboard.ipynb")
            expect(page.locator(".jp-Notebook")).to_be_visible(timeout=120_000)
            idle = page.get_by_role("button", name=re.compile(r"Python 3.*\| Idle"))
            expect(idle).to_be_visible(timeout=120_000)
            select = page.get_by_role("button", name="Select Kernel")
            if select.is_visible():  # JupyterLab asks when it is unsure of the kernel
                select.click()
            run_cell(page, 0)
            run_cell(page, 1)

            dash = page.locator(".nbsweep-dashboard").first
            expect(dash).to_be_visible(timeout=180_000)
            header = dash.locator(".nbs-title").locator("xpath=..")
            expect(header).to_contain_text("running", timeout=60_000)
            wait_until(
                lambda: runs_done(header.inner_text()) >= 6, 240, "runs did not end", seen=dash
            )

            # A brush on the log axis while runs go on ending: the table follows each redraw.
            dash.get_by_role("tab", name="Parallel coordinates").click()
            figure = dash.locator(".js-plotly-plot", has=page.locator(".axis-brush")).first
            expect(figure).to_contain_text("lr (log)", timeout=60_000)
            drag(page, dash, 0, 0.2, 0.75)
            expect_text(dash.locator(".widget-html", has_text="runs inside"), "inside lr")
            brushed_at = runs_done(header.inner_text())
            wait_until(
                lambda: runs_done(header.inner_text()) >= brushed_at + 6,
                240,
                "no live redraw",
                seen=dash,
            )
            dash.get_by_role("button", name="Pause").click()
            expect(header).to_contain_text("paused", timeout=60_000)
            wait_until(
                lambda: not re.search(r"\d+ running", header.inner_text()), 120, "runs still run"
            )
            answer = assert_table_matches_brush(page, dash)
            assert list(answer["ranges"]) == ["lr"] and answer["expected"]

            # A second axis, the metric: both ranges hold at once.
            drag(page, dash, 3, 0.45, 0.95)
            answer = assert_table_matches_brush(page, dash)
            assert sorted(answer["ranges"]) == ["lr", "val_loss"]

            # The metric alone: a numeric axis, exactly the dragged values.
            dash.get_by_role("button", name="Clear filter").click()
            wait_until(lambda: not dash.locator("text=runs inside").count(), 60, "not cleared")
            drag(page, dash, 3, 0.5, 0.9)
            answer = assert_table_matches_brush(page, dash)
            assert list(answer["ranges"]) == ["val_loss"] and answer["expected"]
            low, high = answer["ranges"]["val_loss"][0]
            assert low < high

            # Saved mid-sweep, the file holds the dashboard of now: every reader draws it.
            saved = lab.root / "dashboard.ipynb"
            done_now = f"{runs_done(header.inner_text())} / 400 runs"
            page.keyboard.press("Control+s")
            wait_until(
                lambda: "paused" in saved_html(saved) and done_now in saved_html(saved),
                60,
                f"the saved snapshot is not of now ({done_now}, paused): {saved_html(saved)[:300]}",
            )

            # Every tab, for the docs; a click on the best row opens the Run tab.
            IMAGES.mkdir(parents=True, exist_ok=True)
            dash.locator("tr[data-run]").first.click()
            expect(dash.get_by_role("tab", name="Run")).to_have_attribute(
                "aria-selected", "true", timeout=60_000
            )
            for title in TABS:
                dash.get_by_role("tab", name=title).click()
                panel = dash.locator(".widget-tab-contents > .lm-Widget:not(.lm-mod-hidden)")
                if title == "Importance":
                    expect(panel).to_contain_text("correlation", timeout=60_000)
                elif title == "Run":
                    expect(panel).to_contain_text("config", timeout=60_000)
                else:
                    expect(panel.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
                settle(dash)  # the figure is fitted to the cell after it shows (picture only)
                slug = title.lower().replace(" ", "-")
                dash.screenshot(path=str(IMAGES / f"dashboard-{slug}.png"))
            dash.get_by_role("tab", name="Parallel coordinates").click()
            settle(dash)
            dash.screenshot(path=str(IMAGES / "dashboard.png"))

            # 1024 px with the file browser open: nothing scrolls out of the cell.
            page.set_viewport_size({"width": 1024, "height": 900})
            if not page.locator(".jp-FileBrowser").is_visible():
                page.keyboard.press("Control+Shift+F")
            expect(page.locator(".jp-FileBrowser")).to_be_visible(timeout=30_000)
            figure.scroll_into_view_if_needed()
            wait_until(
                lambda: not overflow(dash, figure), 60, "overflow", seen=Overflow(dash, figure)
            )
            settle(dash)
            page.screenshot(path=str(IMAGES / "dashboard-1024.png"))
            page.set_viewport_size({"width": 1400, "height": 1500})

            # Meanwhile the kernel drew the figures of the save: a second save holds them.
            wait_until(lambda: "data:image/png" in saved_html(saved), 120, "no saved figures")
            (data,) = dashboard_outputs(saved)
            assert WIDGET not in data and data[PARKED]["model_id"]
            from nbconvert import HTMLExporter

            converted, _ = HTMLExporter().from_filename(str(saved))
            converted = converted[converted.index("nbsweep-snapshot") :]
            assert "browser-sweep" in converted and "paused" in converted
            assert done_now in converted and '<tr data-run="' in converted

            # A colleague's JupyterLab (its own kernel, no dashboard in it) shows the snapshot;
            # this page, reloaded while its kernel lives, the live dashboard. Both load at once.
            copy = lab.root / "copy.ipynb"
            copy.write_bytes(saved.read_bytes())
            reader = browser.new_page(viewport={"width": 1400, "height": 1000})
            reader.goto(f"{lab}/lab/workspaces/reader/tree/copy.ipynb", wait_until="commit")
            page.reload(wait_until="commit")
            snapshot = reader.locator(".jp-OutputArea-output .nbsweep-snapshot").first
            expect(snapshot).to_contain_text("browser-sweep", timeout=120_000)
            expect(snapshot).to_contain_text("paused")
            expect(snapshot.locator("img").first).to_be_visible()
            assert not reader.get_by_text("model not found").count()
            reader.close()

            expect(figure).to_be_visible(timeout=120_000)
            expect(header).to_contain_text("paused", timeout=60_000)
            assert not page.locator(".jp-OutputArea-output .nbsweep-snapshot").count()
            expect_text(dash.locator(".widget-html", has_text="runs inside"), "inside val_loss")

            # The kernel restarts: the old dashboard says its kernel is gone.
            page.get_by_role("menuitem", name="Kernel", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Restart Kernel…")).first.click()
            page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
            banner = dash.locator(".nbs-kernel-banner")
            expect(banner).to_contain_text("%sweep resume", timeout=90_000)
            expect(banner).to_contain_text("kernel")
            expect(idle).to_be_visible(timeout=120_000)

            # %sweep resume in the new kernel shows a live dashboard again.
            run_cell(page, 3)
            run_cell(page, 4)
            resumed = page.locator(".nbsweep-dashboard").nth(1)
            expect(resumed).to_be_visible(timeout=180_000)
            again = resumed.locator(".nbs-title").locator("xpath=..")
            expect(again).to_contain_text("running", timeout=60_000)
            before = runs_done(again.inner_text())
            wait_until(lambda: runs_done(again.inner_text()) > before, 240, "resumed, not live")
            assert not resumed.locator(".nbs-kernel-banner").count()

            resumed.get_by_role("button", name="Cancel…").click()
            resumed.get_by_role("button", name="Kill runs").click()
            expect(again).to_contain_text("cancelled", timeout=60_000)
        finally:
            browser.close()
    for title in TABS:
        assert (IMAGES / f"dashboard-{title.lower().replace(' ', '-')}.png").stat().st_size
    assert (IMAGES / "dashboard.png").stat().st_size > 20_000


def overflow(dash: Any, figure: Any) -> str:
    """What sticks out: the dashboard past its cell, the plot (colour bar included) past the
    dashboard, or anything past the dashboard's edge ("" when everything fits)."""
    outer = dash.bounding_box()
    # The drawing itself: a plot element can fit while its picture runs on, clipped.
    plot = figure.locator("svg.main-svg").first.bounding_box()
    area = dash.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea-output')]").first
    cell = area.bounding_box()
    if not (outer and plot and cell):
        return "not drawn"
    right = outer["x"] + outer["width"]
    found = []
    if plot["x"] + plot["width"] > right + 1:
        found.append(f"plot right {plot['x'] + plot['width']:.0f} > dashboard right {right:.0f}")
    if right > cell["x"] + cell["width"] + 1:
        found.append(f"dashboard right {right:.0f} > cell right {cell['x'] + cell['width']:.0f}")
    sticking_out = dash.evaluate(WIDEST)
    if sticking_out:
        found.append(f"past the dashboard's edge: {sticking_out}")
    return "; ".join(found)


# The elements past the dashboard's right edge (outermost first), unless a scrolling box (the
# runs table) holds them.
WIDEST = """el => {
  const edge = el.getBoundingClientRect().right;
  const clipped = (e) => {
    for (let p = e.parentElement; p && p !== el; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") return true;
    }
    return false;
  };
  return Array.from(el.querySelectorAll("*"))
    .filter((e) => e.getBoundingClientRect().right > edge + 1 && !clipped(e))
    .slice(0, 6)
    .map((e) => e.tagName + "." + String(e.className).split(" ").join(".") + " "
      + Math.round(e.getBoundingClientRect().right - edge) + "px")
    .join(", ");
}"""


class Overflow:
    """``overflow`` as a locator-like ``inner_text`` for ``wait_until``'s failure message."""

    def __init__(self, dash: Any, figure: Any) -> None:
        self.dash, self.figure = dash, figure

    def inner_text(self) -> str:
        return overflow(self.dash, self.figure)
