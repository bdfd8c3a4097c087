"""Faults of the process that runs the sweep: it is killed, its kernel restarts, or a second
notebook opens the same sweep."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.util import run_sync

import nbsweep
from nbsweep import ShippingError, SweepStateError
from nbsweep._start import start_controller
from nbsweep._states import CrashReason
from tests.faults import faulty
from tests.faults.conftest import REPO, Fault
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(180)


def start_script(tmp_path: Path, body: str, store: str) -> tuple[subprocess.Popen[str], str]:
    """A script (a notebook without the notebook) that starts a sweep; returns its id.

    Its runs wait after their third row until the test opens the gate (``tmp_path/gate``).
    """
    script = tmp_path / "script.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(REPO)!r})\n" + textwrap.dedent(body))
    (tmp_path / "gate").mkdir()
    process = subprocess.Popen(
        [sys.executable, str(script), store, str(tmp_path / "gate")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def open_gate(tmp_path: Path) -> None:
    (tmp_path / "gate" / "go").touch()


SLOW_GRID = """
import nbsweep
from tests.faults import faulty


def train(config):  # defined in the script: it travels by value, as a notebook's does
    faulty.held(config)


config = {
    "method": "grid",
    "metric": {"name": "loss"},
    "parameters": {
        "x": {"values": [1, 2, 3, 4]},
        "epochs": {"value": 5},
        "gate": {"value": sys.argv[2]},
    },
}
sweep = nbsweep.sweep(config, train, workers=2, store=sys.argv[1])
print(sweep.id, flush=True)
sweep.wait()
"""


def test_controller_sigkill_then_resume(tmp_path: Path, fault: Callable[..., Fault]) -> None:
    store = str(tmp_path / "store.db")
    check = fault("controller process SIGKILLed, then resume", store)
    process, sweep_id = start_script(tmp_path, SLOW_GRID, store)
    sweep = nbsweep.load(sweep_id, store=store)
    try:
        wait_for(lambda: (sweep.runs["steps"] >= 3).sum() >= 2)
        check.before()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    pids = [p for p in sweep.agents["pid"] if p]
    assert len(pids) == 2
    assert not check.processes_left(pids)  # the agents left with their controller
    cut = sweep.runs.query("state == 'crashed'")
    assert len(cut) == 2 and set(cut["error"]) == {CrashReason.CONTROLLER_DIED}
    open_gate(tmp_path)
    with pytest.raises(ShippingError, match=r"pass it again: sweep.resume\(train=...\)"):
        nbsweep.load(sweep_id, store=store).resume()  # the store never holds the function
    nbsweep.load(sweep_id, store=store).resume(train=faulty.held)
    assert sweep.wait() == "finished"
    runs = sweep.runs
    finished = sorted(runs.query("state == 'finished'")["config/x"])
    assert finished == [1, 2, 3, 4], runs[["config/x", "state", "requeued_from", "error"]]
    assert set(runs.dropna(subset=["requeued_from"])["requeued_from"]) == set(cut["run_id"])
    check.check(
        "its agents see the pipe close, mark their runs `crashed` and exit; `resume()` asks"
        " for the train function again, then queues those configs again: every grid point"
        " finishes once",
        sweep.state,
    )


def test_two_processes_on_one_sweep(tmp_path: Path, fault: Callable[..., Fault]) -> None:
    store = str(tmp_path / "store.db")
    check = fault("a second process opens the same sweep", store)
    process, sweep_id = start_script(
        tmp_path,
        """
        import nbsweep
        from tests.faults import faulty

        config = {
            "method": "random",
            "run_cap": 6,
            "parameters": {
                "x": {"min": 0.0, "max": 1.0},
                "epochs": {"value": 5},
                "gate": {"value": sys.argv[2]},
            },
        }
        sweep = nbsweep.sweep(config, faulty.held, workers=1, store=sys.argv[1])
        print(sweep.id, flush=True)
        sweep.wait()
        """,
        store,
    )
    try:
        sweep = nbsweep.load(sweep_id, store=store)
        wait_for(lambda: (sweep.runs["steps"] >= 3).any())
        owner = sweep.store.lease_owner(sweep_id)
        assert owner is not None and f":{process.pid}:" in owner
        check.before()
        assert sweep.resume() is sweep  # only un-pauses: the first process keeps control
        with pytest.raises(SweepStateError, match="already run by controller"):
            start_controller(sweep.store, sweep_id, tmp_path / "unused.json", [])
        executed: list[int] = []
        second = threading.Thread(
            target=lambda: executed.append(nbsweep.agent(sweep_id, faulty.held, store=store))
        )
        second.start()  # it takes the run waiting in the queue, then more until the end
        wait_for(lambda: (sweep.runs["steps"] >= 3).sum() == 2)
        # Both run a run now; the first process still holds the lease (it lets it go when
        # the sweep ends, which may come before the second process returns).
        assert sweep.store.lease_owner(sweep_id) == owner
        open_gate(tmp_path)
        second.join(timeout=120)
        assert len(executed) == 1 and executed[0] >= 1
        assert process.wait(timeout=120) == 0
    finally:
        process.kill()
    runs = sweep.runs
    assert sweep.state == "finished" and list(runs["state"]) == ["finished"] * 6  # run_cap 6
    assert (runs["agent"] == 1).sum() == executed[0]  # the runs the second process executed
    check.check(
        "the lease keeps one controller; the second process watches and adds an agent;"
        " run_cap counts the runs of both once",
        sweep.state,
    )


TRAIN_CELL = """\
%load_ext nbsweep
import os
import time
import nbsweep


@nbsweep.train
def train(config):
    for step in range(5):
        nbsweep.log({"score": config.x * step})
        while step == 2 and not os.path.exists(GO):
            time.sleep(0.01)
"""


def test_kernel_restart_then_resume_magic(
    tmp_path: Path, fault: Callable[..., Fault], kernel_path: None
) -> None:
    store = str(tmp_path / "store.db")
    go = tmp_path / "go"
    cells = [
        f"GO = {str(go)!r}\n" + TRAIN_CELL,
        f"%%sweep train --workers 2 --store {store} -o sweep\n"
        "method: grid\n"
        "metric: {name: score, goal: maximize}\n"
        "parameters:\n"
        "  x: {values: [1, 2, 3, 4]}\n",
        "while (sweep.runs['steps'] >= 3).sum() < 2:\n    time.sleep(0.05)\nprint(sweep.id)\n",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    check = fault("kernel restarted mid-sweep, then %sweep resume", store)
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        sweep_id = notebook.cells[-1].outputs[0]["text"].strip()
        check.before()
        run_sync(client.km.restart_kernel)(now=True)
        run_sync(client.kc.wait_for_ready)(timeout=60)
        go.touch()
        after = [
            f"GO = {str(go)!r}\n" + TRAIN_CELL,
            f"%sweep resume {sweep_id} --store {store}",
            f"print(nbsweep.load({sweep_id!r}, store={store!r}).wait(timeout=90))",
        ]
        for offset, source in enumerate(after):
            cell = nbformat.v4.new_code_cell(source)
            notebook.cells.append(cell)
            client.execute_cell(cell, len(cells) + offset)
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    assert printed.strip() == "finished"
    sweep = nbsweep.load(sweep_id, store=store)
    runs = sweep.runs
    cut = runs.query("state == 'crashed'")
    assert len(cut) >= 1 and set(cut["error"]) == {CrashReason.CONTROLLER_DIED}
    assert sorted(runs.query("state == 'finished'")["config/x"]) == [1, 2, 3, 4]
    check.check(
        "the agents end their runs as `crashed` when the kernel dies; after the restart"
        " `%sweep resume ID` takes the train function defined again and finishes the grid",
        sweep.state,
    )


def test_controller_sigkill_while_a_program_ignores_sigterm(
    tmp_path: Path, fault: Callable[..., Fault]
) -> None:
    program = tmp_path / "stubborn.py"
    program.write_text(faulty.STUBBORN_PROGRAM)
    store = str(tmp_path / "store.db")
    check = fault("controller SIGKILLed while its program ignores SIGTERM", store)
    process, sweep_id = start_script(
        tmp_path,
        f"""
        import nbsweep

        config = {{
            "method": "grid",
            "program": {str(program)!r},
            "command": [sys.executable, "${{program}}", "${{args}}"],
            "parameters": {{"x": {{"values": [1, 2]}}}},
        }}
        sweep = nbsweep.sweep(config, workers=1, store=sys.argv[1])
        print(sweep.id, flush=True)
        sweep.wait()
        """,
        store,
    )
    sweep = nbsweep.load(sweep_id, store=store)
    try:
        wait_for(lambda: (sweep.runs["steps"] >= 1).any())
        check.before()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    check.check(
        "the agent sees the pipe close, marks its run `crashed`, sends its program SIGTERM and,"
        " 5 s later, SIGKILL, then exits",
        f"{sweep.state} (no controller: resume() takes over)",
    )
    states = list(sweep.runs["state"])
    assert states[0] == "crashed" and set(states[1:]) <= {"pending"}


AGENT = """
import sys
sys.path.insert(0, sys.argv[3])
import nbsweep
from tests.faults import faulty
nbsweep.agent(sys.argv[1], faulty.held, store=sys.argv[2])
"""


def test_an_agent_of_this_host_sigkilled_is_noticed_without_waiting_out_the_silence(
    tmp_path: Path, fault: Callable[..., Fault]
) -> None:
    """An ``nbsweep agent`` process (not one of the controller's) is SIGKILLed: nobody
    records its death. Its run is crashed once it missed three heartbeats and its pid is
    gone, not after STALE_RUN_S (18 s here) as for an agent on another host."""
    store = str(tmp_path / "store.db")
    (tmp_path / "gate").mkdir()
    config = {
        "method": "grid",
        "parameters": {
            "x": {"values": [1, 2]},
            "epochs": {"value": 4},
            "gate": {"value": str(tmp_path / "gate")},
        },
    }
    check = fault("an `nbsweep agent` of this host SIGKILLed", store)
    with pytest.warns(UserWarning, match="workers=0"):
        sweep = nbsweep.sweep(config, faulty.held, workers=0, store=store)
    agent = subprocess.Popen([sys.executable, "-c", AGENT, sweep.id, store, str(REPO)])
    try:
        wait_for(lambda: (sweep.runs["steps"] >= 3).any())
        check.before()
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait()
    wait_for(lambda: "crashed" in set(sweep.runs["state"]))
    (cut,) = sweep.runs.query("state == 'crashed'")["error"]
    assert cut == f"{CrashReason.AGENT_SILENT}: agent 0 (pid {agent.pid}) of this host is gone"
    open_gate(tmp_path)
    assert nbsweep.agent(sweep.id, faulty.held, store=store) == 2  # the cut config, then x=2
    assert sweep.wait(timeout=60) == "finished"
    runs = sweep.runs
    assert sorted(runs.query("state == 'finished'")["config/x"]) == [1, 2]
    check.check(
        "nobody records its death; its run is `crashed` once it missed 3 heartbeats and its"
        " pid is gone (not after the 60 s silence an agent elsewhere gets), and queued again",
        sweep.state,
    )
