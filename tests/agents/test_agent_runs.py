"""An agent never dies of a run: whatever the train function does, its run ends with a reason,
the processes it started end with it, and the next run starts as clean as the last.

Each sweep is a grid on one spawned agent, so every run after a faulty one shows whether the
same process went on (its pid) or a fresh one took over.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest

import nbsweep
import nbsweep.controller
from nbsweep.agents import FakeNVML
from tests.agents import trains
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(180)


def grid(xs: list[int], **fixed: Any) -> dict[str, Any]:
    return {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": xs}, **{k: {"value": v} for k, v in fixed.items()}},
    }


def by_x(sweep: nbsweep.Sweep) -> pd.DataFrame:
    return sweep.runs.sort_values("config/x").set_index("config/x")


def history_by_x(sweep: nbsweep.Sweep) -> pd.DataFrame:
    """Every logged row with its run's ``x``, in order of ``x``."""
    xs = sweep.runs.set_index("run_id")["config/x"]
    history = sweep.history()
    return history.assign(x=history["run_id"].map(xs)).sort_values("x")


def pids_by_x(sweep: nbsweep.Sweep) -> dict[int, int]:
    """The process each run logged from."""
    history = history_by_x(sweep)
    return dict(zip(history["x"], history["pid"], strict=True))


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("object", ["'model'", "object"]),
        ("keyboard", ["KeyboardInterrupt", "trains.py"]),
        ("exit", ["SystemExit: 3", "trains.py"]),
        ("base", ["Ended: a BaseException of its own", "trains.py"]),
    ],
)
def test_what_train_returns_or_raises_fails_its_run_and_the_agent_goes_on(
    sqlite_store: str, how: str, says: list[str]
) -> None:
    sweep = nbsweep.sweep(
        grid([0, 1, 2], at=1, how=how), trains.ends_badly, workers=1, store=sqlite_store
    )
    assert sweep.wait(120) == "finished"
    runs = by_x(sweep)
    assert list(runs["state"]) == ["finished", "failed", "finished"], runs["error"].tolist()
    error = runs.loc[1, "error"]
    assert "SIGABRT" not in error
    for text in says:
        assert text in error, error
    pids = pids_by_x(sweep)
    assert pids[0] == pids[1] == pids[2]  # one agent ran them all
    assert len(sweep.agents) == 1


def test_cuda_out_of_memory_fails_the_run_with_the_figures_and_the_next_starts_afresh(
    sqlite_store: str,
) -> None:
    gpus = FakeNVML([{"uuid": "GPU-a", "memory": 16 * 2**30, "used": 2**30}])
    sweep = nbsweep.sweep(
        grid([0, 1, 2], at=1, how="oom"), trains.ends_badly, store=sqlite_store, nvml=gpus
    )
    assert sweep.wait(120) == "finished"
    runs = by_x(sweep)
    assert list(runs["state"]) == ["finished", "failed", "finished"], runs["error"].tolist()
    error = runs.loc[1, "error"]
    assert "CUDA out of memory (OOM)" in error and "15360 MiB used of 16384 MiB" in error, error
    assert "RuntimeError: CUDA out of memory. Tried to allocate" in error
    pids = pids_by_x(sweep)
    assert pids[0] == pids[1] != pids[2]  # the run after it had a process of its own
    assert sweep.events()["kind"].eq("agent_died").sum() == 0


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _end(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(psutil.Error, OSError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("how", ["finishes", "hold", "dies"])
def test_no_process_a_run_started_outlives_it(tmp_path: Path, sqlite_store: str, how: str) -> None:
    """Children, a grandchild and (but where its agent is SIGKILLed) a child in a session of
    its own end when their run finishes, is cancelled, or its agent dies."""
    (tmp_path / "pids").mkdir()
    gate = tmp_path / "go"
    config = grid([0, 1], at=0, how=how, pids=str(tmp_path / "pids"), gate=str(gate))
    sweep = nbsweep.sweep(config, trains.spawns, workers=1, store=sqlite_store)
    listed = tmp_path / "pids" / "all"
    wait_for(listed.exists, "the run's children started")
    pids = [int(p) for p in listed.read_text().split()]
    try:
        if how == "finishes":
            wait_for(lambda: by_x(sweep)["state"].tolist() == ["finished", "running"], "run 0 end")
        elif how == "hold":
            sweep.cancel()
            assert sweep.wait(60) == "cancelled"
        else:
            wait_for(lambda: by_x(sweep).loc[0, "state"] == "crashed", "run 0 crashed")
        wait_for(lambda: all(_gone(p) for p in pids), f"{pids} ended", timeout=30)
        gate.touch()
        if how != "hold":
            assert sweep.wait(60) == "finished"
    finally:
        _end(pids)
        gate.touch()


def test_a_stopped_agent_is_noticed_its_run_queued_again_and_the_agent_replaced(
    tmp_path: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The controller runs in this process: its silence limit (18 s at the tests' time scale) is
    # shortened here alone, still 30 heartbeats (a loaded machine delays some by a second or
    # two, never by eight), so that the test does not wait it out.
    monkeypatch.setattr(nbsweep.controller, "STALE_RUN_S", 9.0)
    gate = tmp_path / "go"
    config = grid([0, 1], gate=str(gate))
    sweep = nbsweep.sweep(config, trains.stalls, workers=1, store=sqlite_store)
    ready = tmp_path / "ready"
    wait_for(lambda: ready.exists() and ready.read_text(), "the first run at its gate")
    pid = int(ready.read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        gate.touch()
        assert sweep.wait(120) == "finished"
        runs = sweep.runs.sort_values("created_at")
        first = runs.iloc[0]
        assert first["state"] == "crashed"
        assert first["error"].startswith("no heartbeat from its agent"), first["error"]
        again = runs[runs["requeued_from"] == first["run_id"]]
        assert again["state"].tolist() == ["finished"]
        assert sorted(runs[runs["state"] == "finished"]["config/x"]) == [0, 1]
        wait_for(lambda: _gone(pid), "the stopped agent killed")
        assert len(sweep.agents) == 2
    finally:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.kill(pid, signal.SIGCONT)


def test_gpu_memory_a_run_leaves_shows_at_the_next_runs_start(sqlite_store: str) -> None:
    gpus = FakeNVML([{"uuid": "GPU-a", "memory": 16 * 2**30, "used": 2**30}])
    sweep = nbsweep.sweep(
        grid([0, 1, 2]), trains.holds_gpu_memory, workers=1, store=sqlite_store, nvml=gpus
    )
    assert sweep.wait(120) == "finished"
    runs = by_x(sweep)
    assert runs["gpu_mem_start_mb"].tolist() == [0.0, 1024.0, 2048.0]
    assert not sweep.history()["torch"].any()  # the agent never imports torch by itself


def test_fresh_process_starts_every_run_in_a_process_of_its_own(sqlite_store: str) -> None:
    gpus = FakeNVML([{"uuid": "GPU-a", "memory": 16 * 2**30, "used": 2**30}])
    sweep = nbsweep.sweep(
        grid([0, 1, 2]),
        trains.holds_gpu_memory,
        workers=1,
        store=sqlite_store,
        nvml=gpus,
        fresh_process=True,
    )
    assert sweep.wait(120) == "finished"
    assert by_x(sweep)["gpu_mem_start_mb"].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(("fresh", "kept"), [(False, [1, 2, 3]), (True, [1, 1, 1])])
def test_a_leak_reaches_the_next_run_unless_each_gets_a_fresh_process(
    sqlite_store: str, fresh: bool, kept: list[int]
) -> None:
    sweep = nbsweep.sweep(
        grid([0, 1, 2]), trains.leaks, workers=1, store=sqlite_store, fresh_process=fresh
    )
    assert sweep.wait(120) == "finished"
    history = history_by_x(sweep)
    assert history["kept"].tolist() == kept
    assert history["pid"].nunique() == (3 if fresh else 1)
    assert all(sweep.runs["state"] == "finished")


def test_nbsweep_run_fresh_process(tmp_path: Path, sqlite_store: str) -> None:
    (tmp_path / "sweep.yaml").write_text(
        "method: grid\nmetric: {name: loss}\nparameters:\n  x: {values: [0, 1]}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "nbsweep.cli", "run", "sweep.yaml", "--workers", "1"]
        + ["--function", "tests.agents.trains:leaks", "--store", sqlite_store, "--fresh-process"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (sweep_id,) = nbsweep.list_sweeps(store=sqlite_store)["sweep_id"]
    assert nbsweep.load(sweep_id, store=sqlite_store).history()["kept"].tolist() == [1, 1]
