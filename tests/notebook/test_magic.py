"""``%%sweep`` and ``%sweep`` in an in-process IPython, against real sweeps and agents."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

import nbsweep

GRID = """
method: grid
metric: {name: loss, goal: minimize}
parameters:
  x: {values: [1, 2, 3]}
"""

TRAIN = """
import nbsweep

@nbsweep.train
def train(config):
    nbsweep.log({"loss": float(config.x)})
    return {"loss": float(config.x)}
"""


def test_yaml_cell_returns_the_finished_sweep_and_stores_it_in_output_var(ip, capsys):
    ip.run_cell(TRAIN)
    sweep = ip.run_cell_magic("sweep", "train --workers 1 --name magic-grid --wait -o sw", GRID)
    assert isinstance(sweep, nbsweep.Sweep)
    assert ip.user_ns["sw"] is sweep
    assert sweep.state == "finished" and sweep.name == "magic-grid"
    runs = sweep.runs
    assert sorted(runs["config/x"]) == [1, 2, 3]
    assert set(runs["state"]) == {"finished"}
    assert sorted(runs["summary/loss"]) == [1.0, 2.0, 3.0]
    assert "Traceback" not in capsys.readouterr().err


def test_train_defaults_to_the_last_decorated_function(ip):
    ip.run_cell(TRAIN.replace("float(config.x)", "10.0 * config.x").replace("def train", "def t2"))
    sweep = ip.run_cell_magic("sweep", "--workers 1 --wait", GRID)
    assert sorted(sweep.runs["summary/loss"]) == [10.0, 20.0, 30.0]


def test_body_can_be_a_python_dict_or_a_yaml_path(ip, tmp_path):
    ip.run_cell(TRAIN)
    ip.user_ns["cfg"] = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": [True, False]}},  # Python's booleans, not YAML's
    }
    from_dict = ip.run_cell_magic("sweep", "train --workers 1 --wait", "cfg\n")
    assert sorted(from_dict.runs["config/x"]) == [False, True]

    path = tmp_path / "sweep.yaml"
    path.write_text(GRID)
    ip.user_ns["cfg_path"] = str(path)
    from_path = ip.run_cell_magic("sweep", "train --workers 1 --wait", "cfg_path")
    assert sorted(from_path.runs["config/x"]) == [1, 2, 3]

    flow = "{method: grid, parameters: {x: {values: [7]}}}"  # YAML flow style, not Python
    from_flow = ip.run_cell_magic("sweep", "train --workers 1 --seed 3 --wait", flow)
    assert list(from_flow.runs["config/x"]) == [7]


def test_yaml_body_reads_exponents_as_numbers(ip):
    ip.run_cell(TRAIN)
    body = "method: random\nrun_cap: 2\nparameters:\n  x: {min: 1e-5, max: 1e-3}\n"
    sweep = ip.run_cell_magic("sweep", "train --workers 1 --wait", body)
    assert sweep.state == "finished"
    assert all(1e-5 <= x <= 1e-3 for x in sweep.runs["config/x"])


def test_config_error_prints_key_paths_not_a_traceback(ip, capsys):
    ip.run_cell(TRAIN)
    body = textwrap.dedent(
        """
        method: random
        metric: {name: loss, goal: maximise}
        parameters:
          lr: {min: 0.1, max: 0.01}
        """
    )
    assert ip.run_cell_magic("sweep", "train", body) is None
    err = capsys.readouterr().err
    assert err.startswith("%%sweep: invalid sweep config")
    assert "metric.goal" in err and "parameters.lr" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("line", "body", "message"),
    [
        ("nope", GRID, "no function named 'nope' in the notebook"),
        ("train", "\n  \n", "the %%sweep cell is empty"),
        ("train", "[1, 2]", "the %%sweep cell gave a list"),
        ("train", "undefined_name", "names something undefined"),
        ("train", "method: grid\nparameters:\n  x: {values: [1, 2}\n", "YAML: line 3, column 20"),
    ],
)
def test_user_mistakes_print_what_to_change(ip, capsys, line, body, message):
    ip.run_cell(TRAIN)
    assert ip.run_cell_magic("sweep", line, body) is None
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_executor_must_name_a_dask_client_in_the_notebook(ip, capsys):
    ip.run_cell(TRAIN)
    ip.user_ns["cluster_url"] = "tcp://scheduler:8786"
    for option, message in [
        ("--executor client", "--executor client: no variable named 'client' in the notebook"),
        ("--executor cluster_url", "'cluster_url' is a str, not a distributed.Client"),
    ]:
        assert ip.run_cell_magic("sweep", f"train {option}", GRID) is None
        err = capsys.readouterr().err
        assert err.startswith("%%sweep: ") and message in err and "Traceback" not in err
    assert nbsweep.list_sweeps().empty  # nothing was started

    sweep = ip.run_cell_magic("sweep", "train --workers 1 --wait", GRID)
    assert ip.run_line_magic("sweep", f"resume {sweep.id} --executor cluster_url") is None
    err = capsys.readouterr().err
    assert err.startswith("%sweep resume: --executor cluster_url: 'cluster_url' is a str")


def test_line_magic_steers_the_last_sweep(ip, capsys):
    ip.run_cell(SLOW_TRAIN)
    sweep = ip.run_cell_magic("sweep", "slow_train --workers 1", ENDLESS)
    try:
        ip.run_line_magic("sweep", "pause")
        assert sweep.state == "paused"
        assert f"sweep {sweep.id}: paused" in capsys.readouterr().out
        ip.run_line_magic("sweep", "resume")
        assert sweep.state == "running"
        listed = ip.run_line_magic("sweep", "list")
        assert isinstance(listed, pd.DataFrame)
        shown = ip.run_line_magic("sweep", f"show {sweep.id}")
        assert shown.id == sweep.id
    finally:
        ip.run_line_magic("sweep", "cancel")
    sweep.wait(timeout=60)
    assert sweep.state == "cancelled"


def test_line_magic_errors_are_short(ip, capsys):
    assert ip.run_line_magic("sweep", "show does-not-exist") is None
    err = capsys.readouterr().err
    assert "%sweep show" in err and "does-not-exist" in err and "Traceback" not in err
    assert ip.run_line_magic("sweep", "frobnicate") is None
    assert "usage: %sweep list | show" in capsys.readouterr().err


def test_retry_requeues_failed_runs(ip, tmp_path):
    flag = tmp_path / "fail-x2"
    flag.touch()
    ip.run_cell(FLAKY_TRAIN.replace("FLAG", repr(str(flag))))
    sweep = ip.run_cell_magic("sweep", "flaky --workers 1 --wait", GRID)
    assert sorted(sweep.runs["state"]) == ["failed", "finished", "finished"]
    failed = sweep.runs[sweep.runs["state"] == "failed"]
    assert "x=2 is cursed" in failed["error"].iloc[0]
    flag.unlink()  # the cause is fixed; the same function now succeeds
    ip.run_line_magic("sweep", "retry")
    sweep.wait(timeout=120)
    runs = sweep.runs
    finished = runs[runs["state"] == "finished"]
    assert sorted(finished["config/x"]) == [1, 2, 3]
    # The failed run stays on record; its config ran again as a new run.
    assert (
        runs.loc[runs["state"] == "failed", "run_id"].tolist()
        == finished.loc[finished["config/x"] == 2, "requeued_from"].tolist()
    )


SLOW_TRAIN = """
import time
import nbsweep

@nbsweep.train
def slow_train(config):
    for step in range(20):
        time.sleep(0.1)
        nbsweep.log({"loss": float(config.x) - step})
"""

# Random search without a run_cap: the sweep runs until the test cancels it.
ENDLESS = """
method: random
metric: {name: loss, goal: minimize}
parameters:
  x: {values: [1, 2, 3, 4, 5, 6, 7, 8]}
"""

FLAKY_TRAIN = """
import os
import nbsweep

@nbsweep.train
def flaky(config):
    if config.x == 2 and os.path.exists(FLAG):
        raise ValueError("x=2 is cursed")
    nbsweep.log({"loss": float(config.x)})
"""


def test_fresh_process_gives_each_run_a_process_of_its_own(ip):
    ip.run_cell(
        "import os, nbsweep\n"
        "@nbsweep.train\n"
        "def own(config):\n"
        "    nbsweep.log({'loss': float(config.x), 'pid': os.getpid()})\n"
    )
    sweep = ip.run_cell_magic("sweep", "own --workers 1 --fresh-process --wait", GRID)
    assert sweep.state == "finished"
    assert sweep.history()["pid"].nunique() == 3


DEAD_CONTROLLER_CONFIG = """
method: random
program: never_runs.py
metric: {name: loss, goal: minimize}
parameters:
  x: {distribution: uniform, min: 0, max: 1}
"""


@pytest.fixture
def orphan(tmp_path) -> tuple[str, str]:
    """A sweep whose controller (``nbsweep run``, no agents) was SIGKILLed: (store, id)."""
    import signal
    import subprocess
    import sys

    from tests.waiting import wait_for

    store = str(tmp_path / "orphan.db")
    (tmp_path / "sweep.yaml").write_text(DEAD_CONTROLLER_CONFIG)
    (tmp_path / "never_runs.py").write_text("raise SystemExit(1)\n")
    command = [sys.executable, "-m", "nbsweep.cli", "run", "sweep.yaml", "--workers", "0"]
    controller = subprocess.Popen(
        [*command, "--store", store], cwd=tmp_path, stdout=subprocess.DEVNULL
    )
    try:
        listed = lambda: nbsweep.list_sweeps(store=store)  # noqa: E731
        wait_for(lambda: list(listed()["controller"]) == ["alive"], "the controller's lease")
    finally:
        controller.send_signal(signal.SIGKILL)
        controller.wait(timeout=60)
    assert controller.returncode == -signal.SIGKILL
    return store, str(listed()["sweep_id"].iloc[0])


def test_a_sweep_whose_controller_was_killed_says_so_everywhere(ip, orphan, capsys):
    from nbsweep.cli import main
    from nbsweep.widgets import Dashboard

    store, sweep_id = orphan
    # nbsweep ls: the sweep is still "running" where it stopped, with no controller.
    assert main(["ls", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "running" in out and f"no controller: nbsweep resume {sweep_id}" in out
    assert main(["show", sweep_id, "--store", store]) == 0
    assert f"no controller: its process has gone; resume it with: nbsweep resume {sweep_id}" in (
        capsys.readouterr().out
    )
    # %sweep list: the same, in the notebook's words.
    listed = ip.run_line_magic("sweep", f"list --store {store}")
    assert list(listed["controller"]) == [f"no controller: %sweep resume {sweep_id}"]
    # The handle and its dashboard.
    sweep = nbsweep.load(sweep_id, store=store)
    assert sweep.state == "running" and not sweep.controller_alive
    header = Dashboard(sweep).header.value
    assert "no controller" in header and f"%sweep resume {sweep_id}" in header
    assert "ETA" not in header


def test_config_warnings_show_their_message_only(ip, capsys):
    ip.run_cell(TRAIN)
    body = """
method: random
run_cap: 1
metric: {name: loss, goal: minimize}
parameters:
  x: {values: [1]}
  lr: {distribution: log_uniform, min: -5, max: -1}
"""
    ip.run_cell_magic("sweep", "train --workers 1 --wait", body)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "log_uniform" in line]
    assert lines and all(line.startswith("ConfigWarning: ") for line in lines)
    assert len(lines) == 1 and ".py:" not in err and "warnings.warn" not in err


def test_resume_shows_the_dashboard(ip, capsys):
    from IPython.core.displaypub import CapturingDisplayPublisher

    ip.run_cell(SLOW_TRAIN)
    sweep = ip.run_cell_magic("sweep", "slow_train --workers 1", ENDLESS)
    original, ip.display_pub = ip.display_pub, CapturingDisplayPublisher()
    try:
        ip.run_line_magic("sweep", "pause")
        assert not ip.display_pub.outputs  # pause says one line, as before
        ip.run_line_magic("sweep", f"resume {sweep.id}")
        (shown,) = [o["data"] for o in ip.display_pub.outputs]
        assert "application/vnd.jupyter.widget-view+json" in shown
        assert sweep.id in shown["text/html"] and "running" in shown["text/html"]
        assert f"sweep {sweep.id}: running" in capsys.readouterr().out
    finally:
        ip.display_pub = original
        sweep.cancel()
        sweep.wait(timeout=60)
