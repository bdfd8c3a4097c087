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

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

TRAIN = """import time
import nbsweep


@nbsweep.train
def train(config):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    X, y = load_digits(return_X_y=True)
    scores = []
    for fold, score in enumerate(cross_val_score(SVC(C=config.C, gamma=config.gamma,
                                                     kernel=config.kernel), X, y, cv=3)):
        time.sleep(0.7)  # slow enough to click Pause while it runs
        scores.append(score)
        nbsweep.log({"val_acc": sum(scores) / len(scores)})"""

SWEEP = """%%sweep train --workers 2 --name digits-svc --seed 0 -o sweep
method: random
metric: {name: val_acc, goal: maximize}
run_cap: 30
parameters:
  C: {distribution: log_uniform_values, min: 0.01, max: 100.0}
  gamma: {distribution: log_uniform_values, min: 1.0e-5, max: 0.1}
  kernel: {values: [rbf, poly, sigmoid]}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab serving a one-sweep notebook from a temporary root, no token."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does)")
    root = tmp_path / "root"
    root.mkdir()
    notebook = new_notebook(
        cells=[new_code_cell("%load_ext nbsweep"), new_code_cell(TRAIN), new_code_cell(SWEEP)]
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
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    env["JUPYTER_CONFIG_DIR"] = str(config)
    env.pop("NBSWEEP_STORE", None)
    env.pop("NBSWEEP_DASHBOARD", None)
    port = free_port()
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
        "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
        f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=True",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    log_path = tmp_path / "lab.log"
    log = log_path.open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"

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


def wait_until(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.25)


def runs_done(header: str) -> int:
    found = re.search(r"(\d+) / \d+ runs", header)
    return int(found.group(1)) if found else 0


def test_dashboard_in_jupyterlab_pause_resume_and_screenshot(lab: str) -> None:
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
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

            dashboard = page.locator(".nbsweep-dashboard")
            expect(dashboard).to_be_visible(timeout=180_000)
            header = dashboard.locator(".nbs-title").locator("xpath=..")
            expect(header).to_contain_text("running", timeout=60_000)

            dashboard.get_by_role("button", name="Pause").click()
            expect(dashboard.get_by_role("button", name="Resume")).to_be_visible(timeout=30_000)
            expect(header).to_contain_text("paused", timeout=30_000)

            dashboard.get_by_role("button", name="Resume").click()
            expect(dashboard.get_by_role("button", name="Pause")).to_be_visible(timeout=30_000)
            expect(header).to_contain_text("running", timeout=30_000)

            # Let enough runs finish for a telling picture, then show parallel coordinates.
            wait_until(lambda: runs_done(header.inner_text()) >= 8, 240, "runs did not finish")
            dashboard.get_by_role("tab", name="Parallel coordinates").click()
            # plotly (installed with the test extra) draws it as a FigureWidget.
            figure = dashboard.locator(".js-plotly-plot")
            expect(figure).to_be_visible(timeout=60_000)
            expect(figure).to_contain_text("gamma (log)", timeout=60_000)  # the axes are drawn
            page.wait_for_timeout(1500)  # plotly animates its first draw
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            dashboard.screenshot(path=str(SCREENSHOT))

            dashboard.get_by_role("button", name="Cancel").click()
            expect(header).to_contain_text("cancelled", timeout=60_000)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 20_000
