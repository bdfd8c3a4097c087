"""Several sweeps share the machine's GPUs: num_workers caps, priority hands out freed GPUs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

import nbsweep
from nbsweep import SweepError
from nbsweep.agents import FakeNVML
from tests.pool import trainfns


def config(values: int, epochs: int, **scheduler: Any) -> dict[str, Any]:
    return {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": list(range(values))}, "epochs": {"value": epochs}},
        **({"scheduler": scheduler} if scheduler else {}),
    }


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def started(sweep: nbsweep.Sweep) -> pd.DataFrame:
    runs = sweep.runs
    return runs[runs["started_at"].notna()]


def test_num_workers_caps_the_gpus_each_sweep_holds(sqlite_store: str) -> None:
    gpus = FakeNVML(4)
    one = nbsweep.sweep(
        config(4, 3, num_workers=1), trainfns.busy, store=sqlite_store, nvml=gpus, name="one"
    )
    three = nbsweep.sweep(
        config(8, 3, num_workers=3), trainfns.busy, store=sqlite_store, nvml=gpus, name="three"
    )
    most = {one.id: 0, three.id: 0}
    while one.state == "running" or three.state == "running":
        pool = one.gpu_pool
        held = pool[pool["state"] == "holds"]
        assert held["gpu"].is_unique
        for sweep_id, count in held["sweep_id"].value_counts().items():
            most[sweep_id] = max(most[sweep_id], int(count))
        running = pd.concat([r[r["state"] == "running"] for r in (one.runs, three.runs)])
        assert running["gpu"].is_unique, running  # never two runs on one GPU
        time.sleep(0.05)
    assert one.wait(60) == three.wait(60) == "finished"
    assert most == {one.id: 1, three.id: 3}
    assert one.runs["gpu"].nunique() == 1 and three.runs["gpu"].nunique() == 3
    assert one.gpu_pool.empty  # both over: every GPU is back in the pool


def test_a_raised_priority_gets_the_next_freed_gpu(sqlite_store: str) -> None:
    gpu = FakeNVML(1)
    first = nbsweep.sweep(config(40, 4), trainfns.busy, store=sqlite_store, nvml=gpu, name="a")
    wait_for(lambda: len(started(first)) >= 1)
    older = nbsweep.sweep(config(2, 2), trainfns.busy, store=sqlite_store, nvml=gpu, name="b")
    newer = nbsweep.sweep(config(2, 2), trainfns.busy, store=sqlite_store, nvml=gpu, name="c")
    wait_for(lambda: set(first.gpu_pool["state"]) == {"holds", "waits"})
    # Same priority: the holder keeps its GPU for run after run.
    seen = len(started(first))
    wait_for(lambda: len(started(first)) >= seen + 2)
    assert started(older).empty and started(newer).empty
    waits = first.gpu_pool.query("state == 'waits'")
    assert list(waits["sweep"]) == ["b", "c"] and set(waits["priority"]) == {"medium"}

    newer.set_priority("high")
    assert newer.config["scheduler"]["priority"] == "high"
    assert newer.wait(60) == "finished"
    assert older.wait(60) == "finished"
    wait_for(lambda: len(started(first)) > seen + 3)
    first.cancel()
    assert first.wait(60) == "cancelled"

    # The high one went first although "b" waited longer; "a" gave way only between runs.
    runs = pd.concat(
        [
            frame.assign(sweep=name)
            for name, frame in (("a", started(first)), ("b", started(older)), ("c", started(newer)))
        ]
    ).sort_values("started_at")
    sweeps_in_turn = list(runs["sweep"].loc[runs["sweep"] != runs["sweep"].shift()])
    assert sweeps_in_turn == ["a", "c", "b", "a"], sweeps_in_turn
    ends = runs["ended_at"].to_numpy()
    assert (runs["started_at"].to_numpy()[1:] >= ends[:-1]).all()  # one run at a time
    yielded = first.events().query("kind == 'agent_yielded'")
    assert len(yielded) == 1
    interrupted = started(first)
    assert (interrupted[interrupted["state"] == "finished"]["steps"] == 4).all()


def test_a_priority_must_be_low_medium_or_high(sqlite_store: str) -> None:
    sweep = nbsweep.sweep(config(1, 1), trainfns.busy, workers=1, store=sqlite_store)
    with pytest.raises(SweepError, match="priority 'urgent' is not one of low, medium, high"):
        sweep.set_priority("urgent")
    assert sweep.wait(60) == "finished"
