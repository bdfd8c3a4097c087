"""The Bands numbers add up, and a run that completed its last iteration is ``finished``."""

from __future__ import annotations

import random

import pytest

import nbsweep
from nbsweep import validate
from nbsweep._runs import RunRecord
from nbsweep.schedulers._nbsweep import NbsweepScheduler, last_iteration
from nbsweep.stopping import Band, Hyperband
from tests import trainfns


def config(**early_terminate: object) -> object:
    return validate(
        {
            "method": "random",
            "metric": {"name": "loss", "goal": "minimize"},
            "parameters": {"x": {"values": [1, 2]}},
            "early_terminate": {"type": "hyperband", "eta": 3, **early_terminate},
        }
    )


@pytest.mark.parametrize("seed", range(20))
def test_reached_is_stopped_plus_continued_in_every_band(seed: int) -> None:
    rng = random.Random(seed)
    states = ["running", "finished", "stopped", "failed", "crashed"]
    runs = [
        RunRecord(
            f"r{i}", {}, rng.choice(states), tuple(rng.random() for _ in range(rng.randint(0, 30)))
        )
        for i in range(30)
    ]
    for et in ({"min_iter": 3}, {"max_iter": 27, "s": 3}, {"min_iter": 1, "strict": False}):
        for band in Hyperband(config(**et)).decide(runs).bands:
            assert band.reached == band.stopped + band.continued, band


def test_a_run_stopped_past_its_band_counts_as_stopped_only() -> None:
    # b logged 5 values, past band 3, and was judged (and stopped) at band 3 by the controller.
    runs = [
        RunRecord("a", {}, "finished", (1.0,) * 9),
        RunRecord("b", {}, "stopped", (9.0,) * 5),
        RunRecord("c", {}, "running", (2.0,) * 3),
    ]
    band = Hyperband(config(min_iter=3)).decide(runs).bands[0]
    assert band == Band(3, band.threshold, reached=3, stopped=1, continued=2)


def test_band_repr_is_rounded() -> None:
    band = Band(3, 0.41234567890123456, 12, 4, 8)
    assert repr(band) == "Band(iteration=3, threshold=0.4123, reached=12, stopped=4, continued=8)"


def test_last_iteration_is_known_once_a_run_finished_the_longest() -> None:
    finished = RunRecord("a", {}, "finished", (1.0,) * 3)
    running = RunRecord("b", {}, "running", (5.0,) * 3)
    assert last_iteration([running]) is None
    assert last_iteration([finished, running]) == 3
    assert last_iteration([finished, RunRecord("c", {}, "running", (5.0,) * 4)]) is None
    scheduler = NbsweepScheduler(config(min_iter=3))
    assert scheduler.stop([finished, running]) == {}  # b is at its last iteration: done
    early = RunRecord("b", {}, "running", (5.0,) * 3)
    longer = RunRecord("a", {}, "finished", (1.0,) * 4)
    assert list(scheduler.stop([longer, early])) == ["b"]  # W&B's rule, unchanged


@pytest.mark.timeout(90)
def test_a_run_that_completed_its_last_iteration_is_finished(sqlite_store: str) -> None:
    # Band 3 is the last iteration: the worse run reaches it after the better one finished.
    config = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": [1, 5]}, "epochs": {"value": 3}},
        "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 3},
    }
    sweep = nbsweep.sweep(config, trainfns.curve, workers=1, store=sqlite_store)
    assert sweep.wait() == "finished"
    assert list(sweep.runs["state"]) == ["finished", "finished"]
    band = sweep.bands()[0]
    assert (band.iteration, band.reached, band.stopped, band.continued) == (3, 2, 0, 2)


def test_the_store_does_not_judge_a_run_at_the_last_iteration(store_url: str) -> None:
    from nbsweep.store import Finish, open_store

    store = open_store(store_url)
    store.create_sweep("sw", "test", "grid", config(min_iter=1), None, None, "running")
    a, b, c = store.add_runs("sw", [{"x": 1}, {"x": 2}, {"x": 3}])
    for agent in range(3):
        store.claim("sw", agent)

    def log(run_id: str, value: float, iteration: int, judge: object = None) -> str | None:
        row = {"step": iteration - 1, "metric_iter": iteration, "steps": iteration}
        data = {"data": {"loss": value}, "metric": value, "summary": {}}
        return store.log_row("sw", run_id, **row, **data, judge=judge)[1]

    def worse(histories: dict[str, list[float]]) -> str:
        return "worse"

    log(a, 1.0, 1)
    assert log(b, 9.0, 1, judge=(1, worse)) == "worse"  # a is still running: W&B's rule
    store.finish(Finish(a, "finished", {"loss": 1.0}))
    # a finished at iteration 1 and no run went further: c has had its whole budget there.
    assert log(c, 9.0, 1, judge=(1, worse)) is None
    assert store.run_state(c) == "running"
