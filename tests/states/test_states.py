"""Run, sweep and agent states are W&B's plain strings, in code and in every store."""

from __future__ import annotations

import json

import sqlalchemy as sa

from nbsweep._states import (
    RUN_ALIVE,
    RUN_ENDED,
    SWEEP_LIVE,
    CrashReason,
    RunState,
    SweepState,
    cut_by_machine,
    describe_exit,
)
from nbsweep.store import open_store

CONFIG = {"method": "grid", "metric": {"name": "loss"}, "parameters": {"x": {"values": [1, 2]}}}


def test_states_read_print_and_hash_as_their_plain_strings() -> None:
    state = RunState.RUNNING
    assert state == "running" and hash(state) == hash("running")
    assert f"{state}" == str(state) == "running"
    assert f"run is {SweepState.PAUSED:>8}" == "run is   paused"
    assert json.dumps({"state": RunState.KILLED}) == '{"state": "killed"}'
    assert "pending" in RUN_ALIVE and "crashed" in RUN_ENDED and "stopping" in SWEEP_LIVE
    assert [s.value for s in RunState] == [
        "pending", "running", "finished", "failed", "crashed", "stopped", "killed"
    ]  # fmt: skip


def test_a_crash_of_the_machine_is_told_from_one_of_the_train_function() -> None:
    assert cut_by_machine(f"{CrashReason.CONTROLLER_DIED}")
    assert cut_by_machine(f"{CrashReason.AGENT_SILENT} for 60 s")
    assert cut_by_machine(f"agent 2 (pid 7) died: {CrashReason.WORKER_LOST} (tcp://a:1)")
    assert not cut_by_machine("agent 2 (pid 7) died: exit code 1") and not cut_by_machine(None)
    assert describe_exit(-9) == "killed by SIGKILL" and describe_exit(3) == "exit code 3"


def test_stores_keep_states_as_plain_strings(store_url: str) -> None:
    store = open_store(store_url)
    store.create_sweep("sw", "test", "grid", CONFIG, None, None, SweepState.RUNNING)
    (run_id,) = store.add_runs("sw", [{"x": 1}])
    assert store.claim("sw", 1, "", None) is not None
    store.end_runs("sw", [run_id], RunState.CRASHED, {run_id: CrashReason.CONTROLLER_DIED})
    engine = sa.create_engine(store.url)
    with engine.connect() as conn:
        sweep = conn.exec_driver_sql("SELECT state FROM nbsweep_sweeps").one()
        run = conn.exec_driver_sql("SELECT state, error FROM nbsweep_runs").one()
    engine.dispose()
    assert tuple(sweep) == ("running",) and tuple(run) == ("crashed", "controller process died")
    assert type(store.run_state(run_id)) is str
