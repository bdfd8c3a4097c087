"""Sweeps end to end: real agent processes, a real store, the W&B control verbs."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

import nbsweep
from nbsweep import RunStopped, SweepError, SweepNotFoundError
from nbsweep.agents import FakeNVML
from tests import trainfns
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(90)


def grid(values: list[Any], **constants: Any) -> dict[str, Any]:
    parameters: dict[str, Any] = {"x": {"values": values}}
    parameters.update({k: {"value": v} for k, v in constants.items()})
    return {"method": "grid", "metric": {"name": "loss"}, "parameters": parameters}


def test_run_cap_limits_the_runs_launched(sqlite_store: str) -> None:
    config = {
        "method": "random",
        "run_cap": 5,
        "parameters": {"x": {"min": 0.0, "max": 1.0}},
    }
    sweep = nbsweep.sweep(config, trainfns.quadratic, workers=2, store=sqlite_store)
    assert sweep.wait() == "finished"
    assert len(sweep.runs) == 5
    assert sweep.progress == (5, 5)
    assert "run_cap" in sweep.message


def test_metric_target_finishes_the_sweep(sqlite_store: str, tmp_path: Path) -> None:
    config = grid(list(range(3, 40)), gate=str(tmp_path / "gate"))
    config["metric"]["target"] = 0.5
    sweep = nbsweep.sweep(config, trainfns.target_then_gate, workers=1, store=sqlite_store)
    wait_for(lambda: "reached metric.target" in sweep.message, timeout=30)
    (tmp_path / "gate").touch()  # the run after the one on target may end now
    assert sweep.wait() == "finished"
    runs = sweep.runs
    assert "reached metric.target" in sweep.message
    assert runs["state"].iloc[0] == "finished"
    assert len(runs) < 37  # the rest of the grid never ran
    assert set(runs["state"]) == {"finished"}


def test_pause_keeps_pending_runs_waiting_and_resume_goes_on(
    sqlite_store: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    config = grid([1, 2, 3, 4], epochs=6, gate=str(gate))
    sweep = nbsweep.sweep(config, trainfns.gated, workers=1, store=sqlite_store)
    wait_for(lambda: {"running", "pending"} <= set(sweep.runs["state"]), timeout=30)
    sweep.pause()
    assert sweep.state == "paused"
    gate.touch()  # the run held at its start ends; no other may start
    wait_for(lambda: not (sweep.runs["state"] == "running").any(), timeout=30)
    before = sweep.runs
    time.sleep(0.5)
    after = sweep.runs
    assert (after["state"] == "running").sum() == 0
    assert list(after["state"]) == list(before["state"])
    assert (after["state"] == "pending").any()
    sweep.resume()
    assert sweep.wait() == "finished"
    assert list(sweep.runs["state"]) == ["finished"] * 4


def test_stop_lets_running_runs_finish_and_starts_no_more(
    sqlite_store: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    config = grid([1, 2, 3, 4], epochs=6, gate=str(gate))
    sweep = nbsweep.sweep(config, trainfns.gated, workers=1, store=sqlite_store)
    wait_for(lambda: (sweep.runs["state"] == "running").any(), timeout=30)
    sweep.stop()
    gate.touch()
    assert sweep.wait() == "finished"
    runs = sweep.runs
    assert list(runs["state"]) == ["finished"]
    assert runs["steps"].iloc[0] == 6


def test_cancel_kills_running_runs(sqlite_store: str, tmp_path: Path) -> None:
    # Each run logs 3 rows, then waits at a gate that stays closed: only the cancel ends it.
    config = grid([1, 2, 3], epochs=200, hold_at=3, gate=str(tmp_path / "gate"))
    sweep = nbsweep.sweep(config, trainfns.gated, workers=2, store=sqlite_store)
    wait_for(lambda: (sweep.runs.query("state == 'running'")["steps"] == 3).sum() == 2, timeout=30)
    sweep.cancel()
    assert sweep.wait() == "cancelled"
    runs = sweep.runs
    assert list(runs["state"]) == ["killed", "killed"]
    assert (runs["steps"] < 200).all()
    pids = sweep.agents["pid"].tolist()
    wait_for(lambda: all(not nbsweep.store.pid_alive(p) for p in pids), timeout=10)


def test_fake_gpus_get_one_agent_each_with_its_uuid(sqlite_store: str, tmp_path: Path) -> None:
    nvml = FakeNVML(
        [{"name": "Fake A100", "uuid": "GPU-aaaa"}, {"name": "Fake H100", "uuid": "GPU-bbbb"}]
    )
    config = grid([1, 2, 3, 4], meet=str(tmp_path / "meet"))  # both agents take a run
    sweep = nbsweep.sweep(config, trainfns.environment, store=sqlite_store, nvml=nvml)
    assert sweep.wait() == "finished"
    agents = sweep.agents.set_index("agent")
    assert sorted(agents["gpu"]) == ["GPU-aaaa", "GPU-bbbb"]
    assert sorted(agents["gpu_name"]) == ["Fake A100", "Fake H100"]
    runs = sweep.runs
    for _, run in runs.iterrows():
        assert run["summary/cuda_visible_devices"] == agents.loc[run["agent"], "gpu"] == run["gpu"]
        assert run["summary/cuda_device_order"] == "PCI_BUS_ID"
    assert set(runs["gpu"]) == {"GPU-aaaa", "GPU-bbbb"}


def test_log_returns_only_once_the_row_is_in_the_store(sqlite_store: str) -> None:
    sweep = nbsweep.sweep(grid([1]), trainfns.durable, workers=1, store=sqlite_store)
    assert sweep.wait() == "finished"
    assert sweep.runs["summary/seen"].iloc[0] == [1, 2, 3]


def test_hyperband_stops_a_bad_run_at_the_band(sqlite_store: str) -> None:
    config = grid([1, 5], epochs=12)
    config["early_terminate"] = {"type": "hyperband", "min_iter": 3, "eta": 3}
    sweep = nbsweep.sweep(config, trainfns.stubborn_curve, workers=1, store=sqlite_store)
    assert sweep.wait() == "finished"
    runs = sweep.runs
    # With two runs and eta 3 the threshold at band 3 is the better value (W&B's rule).
    assert list(runs["state"]) == ["finished", "stopped"]
    assert list(runs["steps"]) == [13, 3]  # 12 curve rows and the swallowed count
    bad = sweep.get_run(runs["run_id"].iloc[1])
    assert len(bad.history()) == 3
    stops = sweep.events().query("kind == 'stopped'")
    assert stops["message"].iloc[0].startswith("early_terminate: stopped at band 3")
    assert [b.iteration for b in sweep.bands()][:1] == [3]


def test_run_stopped_is_not_an_exception() -> None:
    assert issubclass(RunStopped, BaseException)
    assert not issubclass(RunStopped, Exception)


def test_log_outside_a_run_says_so() -> None:
    with pytest.raises(SweepError, match="outside a sweep run"):
        nbsweep.log({"loss": 1.0})


def test_custom_method_is_refused(sqlite_store: str) -> None:
    config = {"method": "custom", "parameters": {"x": {"values": [1]}}}
    with pytest.raises((SweepError, nbsweep.ConfigError), match="custom"):
        nbsweep.sweep(config, trainfns.quadratic, workers=1, store=sqlite_store)


def test_list_and_load_see_the_same_sweep(sqlite_store: str) -> None:
    sweep = nbsweep.sweep(grid([1, 2]), trainfns.quadratic, 1, sqlite_store, name="lr-search")
    sweep.wait()
    listed = nbsweep.list_sweeps(sqlite_store)
    assert listed.set_index("sweep_id").loc[sweep.id, "name"] == "lr-search"
    again = nbsweep.load(sweep.id, store=sqlite_store)
    assert again.state == "finished" and len(again.runs) == 2
    with pytest.raises(SweepNotFoundError, match="nosuch"):
        nbsweep.load("nosuch", store=sqlite_store)


def test_retry_failed_queues_failed_and_crashed_configs_again(sqlite_store: str) -> None:
    sweep = nbsweep.sweep(grid([0, 1]), trainfns.exits, workers=1, store=sqlite_store)
    assert sweep.wait() == "finished"
    crashed = sweep.runs.query("state == 'crashed'")["run_id"].tolist()
    new = sweep.retry_failed()
    assert len(new) == 1
    assert sweep.wait() == "finished"
    runs = sweep.runs.set_index("run_id")
    assert runs.loc[new, "requeued_from"].tolist() == crashed
    assert runs.loc[new, "config/x"].tolist() == [1]
    assert sweep.progress == (2, 2)  # the requeued run replaces the original in the grid


def test_failures_at_the_start_pause_the_sweep_with_the_first_traceback(
    sqlite_store: str,
) -> None:
    sweep = nbsweep.sweep(grid([1, 2, 3, 4, 5, 6]), trainfns.fails, workers=1, store=sqlite_store)
    assert sweep.wait() == "paused"
    assert re.search(r"the first [3-6] runs failed", sweep.message)
    assert "ValueError: bad x 1" in sweep.message
    sweep.cancel()
    assert sweep.wait() == "cancelled"


def test_agent_runs_trials_in_this_process(sqlite_store: str) -> None:
    sweep = nbsweep.sweep(grid([1, 2, 3]), trainfns.quadratic, workers=0, store=sqlite_store)
    assert nbsweep.agent(sweep.id, trainfns.quadratic, count=2, store=sqlite_store) == 2
    runs = sweep.runs
    assert list(runs.query("state == 'finished'")["config/x"]) == [1, 2]
    # Without a function: the importable one the sweep was started with.
    assert nbsweep.agent(sweep.id, store=sqlite_store) == 1
    assert sweep.wait() == "finished"
    agents = sweep.agents
    assert list(agents["pid"]) == [os.getpid(), os.getpid()]


def test_a_run_whose_agent_falls_silent_is_crashed_and_queued_again(
    sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbsweep import controller

    real_limit = controller.STALE_RUN_S
    monkeypatch.setattr(controller, "STALE_RUN_S", 1.0)  # 60 s in use
    sweep = nbsweep.sweep(grid([1, 2]), trainfns.quadratic, workers=0, store=sqlite_store)
    # An agent on another machine claims a run, then the machine vanishes without a word.
    gone = sweep.store.add_agent(sweep.id, pid=None, host="vanished-host")
    claimed: list[Any] = []
    wait_for(
        lambda: claimed.append(sweep.store.claim(sweep.id, gone)) or claimed[-1] is not None,
        timeout=30,
    )
    wait_for(lambda: "crashed" in set(sweep.runs["state"]), timeout=30)
    # The agent below runs in this process, as foreign to the controller as the vanished one:
    # on a loaded machine its heartbeat can lag a second, so the short limit ends here.
    monkeypatch.setattr(controller, "STALE_RUN_S", real_limit)
    assert nbsweep.agent(sweep.id, store=sqlite_store) == 2
    assert sweep.wait(timeout=60) == "finished"
    runs = sweep.runs
    crashed = runs[runs["state"] == "crashed"]
    assert len(crashed) == 1 and "no heartbeat from its agent" in crashed["error"].iloc[0]
    # Its grid point is not lost: it ran again, and every point finished once.
    assert sorted(runs.loc[runs["state"] == "finished", "config/x"]) == [1, 2]


def test_an_agent_drained_while_it_starts_claims_no_run(sqlite_store: str) -> None:
    from nbsweep.agents._loop import Agent

    sweep = nbsweep.sweep(grid([1, 2]), trainfns.quadratic, workers=0, store=sqlite_store)
    # An executor registered the agent; Drain is clicked before its process has started.
    number = sweep.store.add_agent(sweep.id, pid=None)
    sweep.drain(number)
    assert Agent(sweep.store, sweep.id, trainfns.quadratic, number, redirect=False).run() == 0
    assert list(sweep.agents["state"]) == ["dead"]
    assert set(sweep.runs["state"]) <= {"pending"}  # both grid points wait for another agent
    sweep.cancel()


def test_a_drained_agent_finishes_its_run_and_leaves(sqlite_store: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    config = grid([1, 2, 3, 4, 5, 6], epochs=10, gate=str(gate))
    sweep = nbsweep.sweep(config, trainfns.gated, workers=2, store=sqlite_store)
    wait_for(lambda: (sweep.agents["state"] == "busy").sum() == 2, timeout=30)
    sweep.drain(0)
    drained_at = time.time()

    def beat() -> float:
        return next(a.heartbeat_at for a in sweep.store.agents(sweep.id) if a.agent == 0)

    # Agent 0 hears of the drain at a heartbeat; the one after shows it has taken it in.
    wait_for(lambda: beat() > drained_at, timeout=30)
    heard_at = beat()
    wait_for(lambda: beat() > heard_at, timeout=30)
    gate.touch()  # both first runs go on only now, so agent 0 is drained during its first
    wait_for(lambda: sweep.agents.set_index("agent").loc[0, "state"] == "dead", timeout=30)
    assert sweep.wait() == "finished"
    runs = sweep.runs
    assert set(runs["state"]) == {"finished"} and len(runs) == 6
    assert list(runs["agent"]).count(0) == 1
    assert len(sweep.agents) == 2  # a drained agent is not replaced
    with pytest.raises(SweepError, match="no agent 9"):
        sweep.drain(9)


def test_views_and_analysis_read_the_sweep(sqlite_store: str) -> None:
    config = {
        "method": "random",
        "run_cap": 8,
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"min": 0.0, "max": 6.0}, "epochs": {"value": 1}},
    }
    sweep = nbsweep.sweep(config, trainfns.quadratic, workers=2, store=sqlite_store)
    assert sweep.wait() == "finished"
    assert "x" in sweep.importance()["parameter"].tolist()
    refined = sweep.refine(top=0.5)
    assert refined["parameters"]["x"]["min"] >= 0.0
    assert repr(sweep).startswith(f"<nbsweep.Sweep {sweep.id}")
    assert sweep.bands() == []  # no early_terminate
    assert sweep.method == "random" and sweep.created_at.tzinfo is not None


def test_crashed_runs_that_logged_nothing_do_not_count_against_run_cap(
    sqlite_store: str,
) -> None:
    config = grid([1, 2, 3, 4, 5])
    config["run_cap"] = 3
    sweep = nbsweep.sweep(config, trainfns.sigkills, workers=1, store=sqlite_store)
    assert sweep.wait() == "finished"
    runs = sweep.runs
    assert list(runs["config/x"]) == [1, 2, 3, 4]
    assert list(runs["state"]) == ["crashed", "finished", "finished", "finished"]
    assert "run_cap 3 reached" in sweep.message


def test_scheduler_num_workers_caps_the_agents(sqlite_store: str) -> None:
    config = grid([1, 2, 3])
    config["scheduler"] = {"num_workers": 1}
    sweep = nbsweep.sweep(config, trainfns.quadratic, workers=3, store=sqlite_store)
    assert sweep.wait() == "finished"
    assert len(sweep.agents) == 1
    assert set(sweep.runs["agent"]) == {0}
