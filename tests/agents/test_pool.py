"""Several sweeps share the machine's GPUs: num_workers caps, priority hands out freed GPUs."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import nbsweep
from nbsweep import PlacementError
from nbsweep.agents import FakeNVML
from tests import gpu_trainfns
from tests.waiting import wait_for


def config(values: int, epochs: int, **scheduler: Any) -> dict[str, Any]:
    return {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": list(range(values))}, "epochs": {"value": epochs}},
        **({"scheduler": scheduler} if scheduler else {}),
    }


def endless(epochs: int, **scheduler: Any) -> dict[str, Any]:
    """A sweep that runs until it is cancelled: random search without a run_cap."""
    return {**config(4, epochs, **scheduler), "method": "random"}


def started(sweep: nbsweep.Sweep) -> pd.DataFrame:
    runs = sweep.runs
    return runs[runs["started_at"].notna()]


def test_num_workers_caps_the_gpus_each_sweep_holds(sqlite_store: str) -> None:
    gpus = FakeNVML(4)
    one = nbsweep.sweep(
        config(4, 3, num_workers=1), gpu_trainfns.busy, store=sqlite_store, nvml=gpus, name="one"
    )
    three = nbsweep.sweep(
        config(8, 3, num_workers=3), gpu_trainfns.busy, store=sqlite_store, nvml=gpus, name="three"
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
    assert one.runs["gpu"].nunique() == 1 and three.agents["gpu"].nunique() == 3
    assert one.gpu_pool.empty  # both over: every GPU is back in the pool


def test_more_workers_than_gpus_share_them_in_turn(sqlite_store: str, tmp_path: Path) -> None:
    gpus = FakeNVML(2)
    uuids = [g["uuid"] for g in gpus.gpus]
    meet = tmp_path / "meet"
    meet.mkdir()
    four = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {
            "x": {"values": [0, 1, 2, 3]},
            "n": {"value": 4},
            "meet": {"value": str(meet)},
        },
    }
    small = nbsweep.sweep(
        four, gpu_trainfns.together, workers=4, store=sqlite_store, nvml=gpus, name="small"
    )
    wait_for(lambda: len(small.gpu_pool) == 2)
    other = nbsweep.sweep(config(1, 1), gpu_trainfns.busy, store=sqlite_store, nvml=gpus, name="o")
    assert small.wait(60) == "finished"
    runs = small.runs
    # Each run waits for the other three: they finish only with four agents at once.
    assert (runs["state"] == "finished").all() and len(runs) == 4
    assert sorted(small.agents["gpu"]) == sorted(uuids * 2)
    assert runs["gpu"].value_counts().to_dict() == {uuids[0]: 2, uuids[1]: 2}
    assert (runs["summary/cuda_visible_devices"] == runs["gpu"]).all()
    # The other sweep got a GPU only once the small one gave both back.
    assert other.wait(60) == "finished"
    assert other.runs["started_at"].min() >= runs["ended_at"].max()


def test_a_shared_gpu_changes_hands_once_its_last_agent_leaves(sqlite_store: str) -> None:
    gpu = FakeNVML(1)
    low = nbsweep.sweep(
        endless(4), gpu_trainfns.busy, workers=2, store=sqlite_store, nvml=gpu, name="low"
    )
    wait_for(lambda: (low.runs["state"] == "running").sum() == 2)  # both on the one GPU
    high = nbsweep.sweep(
        config(2, 2, priority="high"), gpu_trainfns.busy, store=sqlite_store, nvml=gpu, name="hi"
    )
    assert high.wait(60) == "finished"
    low.cancel()
    assert low.wait(60) == "cancelled"
    mine, theirs = started(high), started(low)
    first, last = mine["started_at"].min(), mine["ended_at"].max()
    # Both agents of the low sweep ended their runs before the high sweep's first began.
    overlap = (theirs["started_at"] < last) & (theirs["ended_at"] > first)
    assert not overlap.any(), theirs
    before = theirs[theirs["started_at"] < first]
    assert len(before) >= 2 and (before["steps"] == 4).all()  # none was cut mid-run


def test_a_raised_priority_gets_the_next_freed_gpu(sqlite_store: str) -> None:
    gpu = FakeNVML(1)
    first = nbsweep.sweep(endless(4), gpu_trainfns.busy, store=sqlite_store, nvml=gpu, name="a")
    wait_for(lambda: len(started(first)) >= 1)
    older = nbsweep.sweep(config(2, 2), gpu_trainfns.busy, store=sqlite_store, nvml=gpu, name="b")
    wait_for(lambda: "waits" in set(first.gpu_pool["state"]))
    newer = nbsweep.sweep(config(2, 2), gpu_trainfns.busy, store=sqlite_store, nvml=gpu, name="c")
    wait_for(lambda: list(first.gpu_pool["state"]).count("waits") == 2)
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
    sweep = nbsweep.sweep(config(1, 1), gpu_trainfns.busy, workers=1, store=sqlite_store)
    with pytest.raises(PlacementError, match="priority 'urgent' is not one of low, medium, high"):
        sweep.set_priority("urgent")
    assert sweep.wait(60) == "finished"


def test_a_paused_sweep_lends_its_idle_gpu_and_gets_it_back(
    sqlite_store: str, tmp_path: Path
) -> None:
    gpu = FakeNVML(1)
    gate = tmp_path / "gate"
    held = config(6, 4)
    held["parameters"]["gate"] = {"value": str(gate)}
    paused = nbsweep.sweep(held, gpu_trainfns.busy, store=sqlite_store, nvml=gpu, name="a")
    wait_for(lambda: len(started(paused)) >= 1)
    paused.pause()
    gate.touch()  # its first run goes on only now, so the sweep is paused mid-way
    other = nbsweep.sweep(config(2, 2), gpu_trainfns.busy, store=sqlite_store, nvml=gpu, name="b")
    # The paused sweep's agent ends its run, idles, then lets the waiting sweep have the GPU.
    assert other.wait(60) == "finished"
    assert paused.state == "paused"
    assert len(paused.events().query("kind == 'agent_yielded'")) == 1
    paused.resume()
    assert paused.wait(60) == "finished"
    assert (paused.runs["state"] == "finished").all() and len(paused.runs) == 6


def test_fewer_workers_on_resume_give_gpus_back_to_the_pool(sqlite_store: str) -> None:
    gpus = FakeNVML(3)
    big = nbsweep.sweep(endless(3), gpu_trainfns.busy, store=sqlite_store, nvml=gpus, name="big")
    wait_for(lambda: len(big.gpu_pool) == 3)
    small = nbsweep.sweep(config(4, 2), gpu_trainfns.busy, store=sqlite_store, nvml=gpus, name="s")
    wait_for(lambda: "waits" in set(big.gpu_pool["state"]))
    big.resume(config={"scheduler": {"num_workers": 1}})
    # Two of big's agents finish their run and leave; the waiting sweep gets their GPUs.
    assert small.wait(60) == "finished"
    assert small.agents["gpu"].nunique() == 2
    held = big.gpu_pool.query("state == 'holds'")
    assert list(held["sweep_id"]) == [big.id]
    big.cancel()
    assert big.wait(60) == "cancelled"


def test_the_gpus_of_a_killed_kernel_go_back_to_the_pool(sqlite_store: str, tmp_path: Path) -> None:
    script = tmp_path / "holder.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parents[2])!r})
            import nbsweep
            from nbsweep.agents import FakeNVML
            from tests import gpu_trainfns

            config = {{"method": "random", "parameters": {{"x": {{"values": [0, 1]}},
                      "epochs": {{"value": 5}}}}}}  # no end of its own: killed below
            sweep = nbsweep.sweep(config, gpu_trainfns.busy, store=sys.argv[1], nvml=FakeNVML(1))
            print(sweep.id, flush=True)
            sweep.wait()
            """
        )
    )
    holder = subprocess.Popen(
        [sys.executable, str(script), sqlite_store], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        held = nbsweep.load(holder.stdout.readline().strip(), store=sqlite_store)
        wait_for(lambda: len(held.gpu_pool) == 1)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    after = nbsweep.sweep(config(1, 1), gpu_trainfns.busy, store=sqlite_store, nvml=FakeNVML(1))
    assert after.wait(60) == "finished"
    assert list(after.runs["gpu"]) == [FakeNVML(1).gpus[0]["uuid"]]
