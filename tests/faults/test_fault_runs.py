"""Faults inside one run: it raises, its agent dies, hangs, or runs out of memory.

Each sweep is a grid over x = 0..3 on one agent; the run x=1 logs two rows, stops at a gate
while the test notes every row so far, then meets its fault. The other runs must finish,
nothing logged may go, and no agent or program may outlive the sweep.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import nbsweep
from tests.faults import faulty
from tests.faults.conftest import Fault

pytestmark = pytest.mark.timeout(120)


def gated(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    gate = tmp_path / "gate"
    gate.mkdir()
    return {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {
            "x": {"values": [0, 1, 2, 3]},
            "fault_at": {"value": 1},
            "gate": {"value": str(gate)},
            **{k: {"value": v} for k, v in extra.items()},
        },
    }


def through_gate(config: dict[str, Any], fault: Fault) -> int:
    """Wait for the faulty run at its gate, note the rows, let it go on to its fault."""
    gate = Path(config["parameters"]["gate"]["value"])
    deadline = time.monotonic() + 60
    while not (gate / "ready").exists():
        assert time.monotonic() < deadline, "the faulty run never reached its gate"
        time.sleep(0.01)
    rows = fault.before()
    (gate / "go").touch()
    return rows


def by_x(sweep: nbsweep.Sweep) -> Any:
    return sweep.runs.set_index("config/x")


def test_train_raises(tmp_path: Path, fault: Callable[..., Fault]) -> None:
    store = str(tmp_path / "store.db")
    config = gated(tmp_path)
    check = fault("train raises", store)
    sweep = nbsweep.sweep(config, faulty.raises, workers=1, store=store)
    assert through_gate(config, check) == 4
    assert sweep.wait() == "finished"
    runs = by_x(sweep)
    assert list(runs["state"]) == ["finished", "failed", "finished", "finished"]
    run = sweep.get_run(runs.loc[1, "run_id"])
    assert "ValueError: x=1 is cursed" in run.error and "faulty.py" in run.error
    assert "ValueError: x=1 is cursed" in run.log_path.read_text()
    assert len(run.history()) == 2
    check.check(
        "the run is `failed` with its traceback (also in its log); the agent goes on",
        sweep.state,
    )


@pytest.mark.parametrize(
    ("scenario", "function", "why"),
    [
        ("agent calls os._exit", faulty.exits, "exit code 7"),
        ("agent gets SIGKILL (as from the OOM killer)", faulty.sigkills, "killed by SIGKILL"),
    ],
)
def test_agent_dies(
    tmp_path: Path, fault: Callable[..., Fault], scenario: str, function: Any, why: str
) -> None:
    store = str(tmp_path / "store.db")
    config = gated(tmp_path)
    check = fault(scenario, store)
    sweep = nbsweep.sweep(config, function, workers=1, store=store)
    assert through_gate(config, check) == 4
    assert sweep.wait() == "finished"
    runs = by_x(sweep)
    assert list(runs["state"]) == ["finished", "crashed", "finished", "finished"]
    error = runs.loc[1, "error"]
    assert error.startswith("agent 0 (pid ") and error.endswith(why)
    assert list(sweep.agents["agent"]) == [0, 1]  # the dead agent and its replacement
    assert runs.loc[2, "agent"] == 1
    assert "agent_died" in set(sweep.events()["kind"])
    if function is faulty.exits:  # what the run printed before it died is its log
        assert sweep.get_run(runs.loc[1, "run_id"]).log_path.read_text() == "about to exit\n"
    check.check(
        f"the run is `crashed` ({why}); the process it started dies with the agent's process"
        " group; a new agent takes the next runs",
        sweep.state,
    )


def test_a_hung_run_ignores_stop_and_cancel_kills_it(
    tmp_path: Path, fault: Callable[..., Fault]
) -> None:
    store = str(tmp_path / "store.db")
    config = gated(tmp_path)
    check = fault("run hangs past stop (ignores SIGTERM and RunStopped)", store)
    sweep = nbsweep.sweep(config, faulty.hangs, workers=1, store=store)
    assert through_gate(config, check) == 4
    sweep.stop()  # W&B's stop: running runs finish, and this one never will
    assert sweep.wait(timeout=1.0) == "stopping"
    assert by_x(sweep).loc[1, "state"] == "running"
    sweep.cancel()
    assert sweep.wait(timeout=30) == "cancelled"
    runs = by_x(sweep)
    assert list(runs.index) == [0, 1] and list(runs["state"]) == ["finished", "killed"]
    check.check(
        "`stop` waits for it (as W&B's does); `cancel` SIGKILLs the agent and the process the"
        " run started, the run is `killed`",
        sweep.state,
    )


def test_a_program_that_ignores_sigterm_is_killed_at_cancel(
    tmp_path: Path, fault: Callable[..., Fault]
) -> None:
    program = tmp_path / "stubborn.py"
    program.write_text(faulty.STUBBORN_PROGRAM)
    config = {
        "method": "grid",
        "program": str(program),
        "command": [sys.executable, "${program}", "${args}"],
        "parameters": {"x": {"values": [1, 2]}},
    }
    store = str(tmp_path / "store.db")
    check = fault("program: run ignores SIGTERM at cancel", store)
    sweep = nbsweep.sweep(config, workers=1, store=store)
    deadline = time.monotonic() + 60
    while not (sweep.runs["steps"] >= 1).any():
        assert time.monotonic() < deadline, "the program never logged"
        time.sleep(0.05)
    assert check.before() == 1
    sweep.cancel()
    assert sweep.wait(timeout=30) == "cancelled"
    assert list(sweep.runs["state"]) == ["killed"]
    check.check(
        "the agent is SIGKILLed; its program ignores the SIGTERM this sends and is SIGKILLed"
        " when the controller shuts down, 5 s later",
        sweep.state,
    )


def test_a_run_out_of_memory_fails_and_the_sweep_goes_on(
    tmp_path: Path, fault: Callable[..., Fault]
) -> None:
    store = str(tmp_path / "store.db")
    config = gated(tmp_path)
    check = fault("run exhausts its memory (RLIMIT_AS)", store)
    sweep = nbsweep.sweep(config, faulty.eats_memory, workers=1, store=store)
    assert through_gate(config, check) == 4
    assert sweep.wait() == "finished"
    runs = by_x(sweep)
    assert list(runs["state"]) == ["finished", "failed", "finished", "finished"]
    error = runs.loc[1, "error"]
    assert error.rstrip().endswith("MemoryError") and "bytearray(8 * 2**30)" in error
    assert set(runs["agent"]) == {0}  # the agent lived through it
    check.check(
        "the allocation raises MemoryError: the run is `failed` with the traceback naming the"
        " line; the same agent runs the rest",
        sweep.state,
    )
