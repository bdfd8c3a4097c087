"""Every notebook in notebooks/ run headless by a real kernel, outputs and widget state checked."""

from __future__ import annotations

import ast
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.util import run_sync

from nbsweep.report import SECTIONS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of notebooks/ (each run writes its own store) and a kernel on this venv."""
    shutil.copytree(NOTEBOOKS, tmp_path / "notebooks", ignore=shutil.ignore_patterns(".*"))
    # The venv's kernelspec runs "python": make that the venv's python.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.delenv("NBSWEEP_STORE", raising=False)
    monkeypatch.delenv("NBSWEEP_DASHBOARD", raising=False)
    return tmp_path / "notebooks"


def execute(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
    )
    client.execute()
    return notebook


def text_of(notebook: nbformat.NotebookNode, index: int = -1) -> str:
    """What a code cell printed and returned, as text."""
    cell = [c for c in notebook.cells if c.cell_type == "code"][index]
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif "text/plain" in output.get("data", {}):
            parts.append(output["data"]["text/plain"])
    return "".join(parts)


def widget_values(notebook: nbformat.NotebookNode) -> list[str]:
    """The ``value`` of every saved HTML widget (the dashboard's header and table)."""
    state = notebook.metadata["widgets"][WIDGET_STATE]["state"]
    return [
        m["state"].get("value", "")
        for m in state.values()
        if m["model_name"] == "HTMLModel" and isinstance(m["state"].get("value"), str)
    ]


def sweep_cell(notebook: nbformat.NotebookNode) -> Any:
    return next(
        c for c in notebook.cells if c.cell_type == "code" and c.source.startswith("%%sweep")
    )


def assert_dashboard_saved(notebook: nbformat.NotebookNode, *texts: str) -> None:
    """The %%sweep cell shows a widget, and the saved widget state holds the final header."""
    views = [o for o in sweep_cell(notebook).outputs if "data" in o]
    assert any("application/vnd.jupyter.widget-view+json" in o["data"] for o in views)
    header = next(v for v in widget_values(notebook) if "nbs-title" in v)
    for text in texts:
        assert text in header


def test_quickstart(workdir: Path) -> None:
    notebook = execute(workdir / "quickstart.ipynb")
    assert_dashboard_saved(notebook, "digits-svc", "finished", "12 / 12 runs", "best val_acc")
    leaderboard = text_of(notebook, -2).strip().splitlines()
    assert leaderboard[0].split() == ["run_id", "config/C", "config/gamma", "summary/val_acc"]
    assert len(leaderboard) == 6
    # The notebook ends with one line: the best run, its metric and config, and the score
    # of scikit-learn's default SVC() beside it, which tuning must beat.
    line = text_of(notebook).strip()
    found = re.fullmatch(
        r"best run (\w+): val_acc=(0\.\d{4}) with (\{.*'C'.*'gamma'.*\}) "
        r"\(default SVC\(\): val_acc=(0\.\d{4})\)",
        line,
    )
    assert found, line
    best, default = float(found[2]), float(found[4])
    assert abs(best - float(leaderboard[1].split()[-1])) < 1e-4  # the leaderboard's top
    assert best > default
    # The two static figures came out as PNG images.
    pngs = [
        c
        for c in notebook.cells
        if c.cell_type == "code" and any("image/png" in o.get("data", {}) for o in c.outputs)
    ]
    assert len(pngs) == 2
    report = (workdir / "quickstart-report.html").read_text()
    assert report.count("data:image/png;base64,") == len(SECTIONS)  # one figure per section
    assert not re.search(r"""(src|href)=["']https?://""", report)


def test_conditional(workdir: Path) -> None:
    notebook = execute(workdir / "conditional.ipynb")
    assert_dashboard_saved(notebook, "digits-conditional", "finished", "10 / 10 runs")
    assert text_of(notebook, -2).strip() == "grid size: 21 runs"
    lines = text_of(notebook).strip().splitlines()
    assert len(lines) == 11 and lines[-1].startswith("best run ")
    for line in lines[:-1]:
        # Only the parameters a run's conditions switch on are in its config.
        config = ast.literal_eval(line[line.index("{") : line.rindex("}") + 1])
        if config["model"] == "svc":
            assert set(config) == {"model", "svc"} and set(config["svc"]) == {"C", "gamma"}
        else:
            assert set(config) == {"model", "mlp"}
            expected = {"num_layers", "units_1", "alpha"} | (
                {"units_2"} if config["mlp"]["num_layers"] == 2 else set()
            )
            assert set(config["mlp"]) == expected
    pngs = [
        c
        for c in notebook.cells
        if c.cell_type == "code" and any("image/png" in o.get("data", {}) for o in c.outputs)
    ]
    assert len(pngs) == 2


def test_hyperband(workdir: Path) -> None:
    notebook = execute(workdir / "hyperband.ipynb")
    assert_dashboard_saved(notebook, "digits-hyperband", "12 / 12 runs")
    bands = text_of(notebook, 3)
    assert "Band(iteration=3," in bands and "Band(iteration=9," in bands
    # Readable (4 significant digits), and the columns add up in every band.
    pattern = r"threshold=([^,]+), reached=(\d+), stopped=(\d+), continued=(\d+)"
    for threshold, reached, stopped, continued in re.findall(pattern, bands):
        digits = threshold.split("e")[0].replace("-", "").replace(".", "").lstrip("0")
        assert len(digits) <= 4, threshold
        assert int(reached) == int(stopped) + int(continued), bands
    states = text_of(notebook)
    assert "stopped" in states and "finished" in states


def test_multifidelity(workdir: Path) -> None:
    notebook = execute(workdir / "multifidelity.ipynb")
    assert_dashboard_saved(notebook, "digits-multifidelity", "finished", "12 / 12 runs")
    bands = text_of(notebook, 3)
    # ASHA's rungs below max_iter 27 with eta 3, and columns that add up in every band.
    assert "Band(iteration=1," in bands and "Band(iteration=3," in bands
    pattern = r"reached=(\d+), stopped=(\d+), continued=(\d+)"
    found = re.findall(pattern, bands)
    assert found, bands
    for reached, stopped, continued in found:
        assert int(reached) == int(stopped) + int(continued), bands
    lines = text_of(notebook).strip().splitlines()
    assert "finished" in "\n".join(lines[:-1])
    assert re.fullmatch(
        r"best run \w+: val_loss=\d+\.\d{4} with \{.*'alpha'.*'eta0'.*\}", lines[-1]
    )


def test_pytorch(workdir: Path) -> None:
    notebook = execute(workdir / "pytorch.ipynb")
    assert_dashboard_saved(notebook, "digits-mlp", "6 / 6 runs")
    best = text_of(notebook)
    assert re.search(r"best run \w+: val_acc=0\.(8|9)\d\d on (cpu|cuda)", best), best


def test_from_wandb(workdir: Path) -> None:
    notebook = execute(workdir / "from_wandb.ipynb")
    # wandb.agent's cell shows the dashboard, saved with the five runs done.
    agent = next(c for c in notebook.cells if c.source.startswith("wandb.agent("))
    views = [o for o in agent.outputs if "data" in o]
    assert any("application/vnd.jupyter.widget-view+json" in o["data"] for o in views)
    header = next(v for v in widget_values(notebook) if "nbs-title" in v)
    assert "5 runs" in header and "5 finished" in header
    out = text_of(notebook).strip().splitlines()
    assert re.fullmatch(r"5 runs, \d+ batch losses logged", out[0]), out
    assert out[1].split() == [
        "run_id",
        "config/optimizer",
        "config/fc_layer_size",
        "config/learning_rate",
        "summary/loss",
    ]
    assert len(out) == 7


def test_resume_after_a_real_kernel_restart(workdir: Path) -> None:
    path = workdir / "resume.ipynb"
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    restarted = False
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if "after-restart" in cell.metadata.get("tags", []) and not restarted:
                run_sync(client.km.restart_kernel)(now=True)
                run_sync(client.kc.wait_for_ready)(timeout=120)
                restarted = True
            client.execute_cell(cell, index)
    assert restarted
    paused = text_of(notebook, 3)
    assert re.search(r"paused \w+ with \d of 8 runs done", paused), paused
    out = text_of(notebook).splitlines()
    assert out[0] == "finished (8, 8)"
    assert out[1].split() == ["run_id", "config/x", "config/y", "summary/score"]
    # The best run, x=4 and y=2. Scores print as floats when a run the restart cut (crashed,
    # queued again) has none: whether one was running at the pause depends on the machine.
    assert [float(v) for v in out[2].split()[1:]] == [4, 2, 8]


def test_pause_and_resume_through_the_widget_comm(tmp_path: Path, workdir: Path) -> None:
    """Click the dashboard's buttons as a front end does: a comm message to the kernel."""
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path))
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        run(kc, "%load_ext nbsweep")
        run(kc, SLOW_TRAIN)
        run(kc, "%%sweep slow --workers 1 -o sweep\n" + ENDLESS)
        code = "from nbsweep.widgets import Dashboard\ndash = Dashboard(sweep)\n"
        button = run(kc, code + "print(dash.pause_button.model_id)").strip()
        click(kc, button)
        assert run(kc, "print(sweep.state, dash.pause_button.description)").split() == [
            "paused",
            "Resume",
        ]
        click(kc, button)
        assert run(kc, "print(sweep.state, dash.pause_button.description)").split() == [
            "running",
            "Pause",
        ]
        run(kc, "sweep.cancel(); sweep.wait(60); print(sweep.state)")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


SLOW_TRAIN = """
import time
import nbsweep

@nbsweep.train
def slow(config):
    for step in range(50):
        time.sleep(0.1)
        nbsweep.log({"loss": config.x - step})
"""

# Random search without a run_cap: the sweep runs until the test cancels it.
ENDLESS = """
method: random
parameters:
  x: {values: [1, 2, 3, 4, 5, 6]}
"""


def run(kc: Any, code: str) -> str:
    """Execute code in the kernel; return what it printed (fail on an error)."""
    printed: list[str] = []

    def on_output(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            printed.append("\n".join(msg["content"]["traceback"]))

    reply = kc.execute_interactive(code, timeout=120, output_hook=on_output)
    assert reply["content"]["status"] == "ok", "".join(printed)
    return "".join(printed)


def click(kc: Any, model_id: str) -> None:
    """Send the ``click`` event a Button view sends to its model in the kernel."""
    content = {"comm_id": model_id, "data": {"method": "custom", "content": {"event": "click"}}}
    kc.shell_channel.send(kc.session.msg("comm_msg", content))
    # Comm messages get no reply; the shell handles messages in order, so once a following
    # execute request is answered, the click has been handled.
    run(kc, "pass")
