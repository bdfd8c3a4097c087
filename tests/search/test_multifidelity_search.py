"""Multi-fidelity bayes: one model over (config, iteration), fitted to every run's curve.

With ``early_terminate: {type: multifidelity}``, bayes learns from the partial curves of
stopped and running runs, where plain bayes sees one value per ended run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import nbsweep
from nbsweep import ConfigError
from nbsweep._runs import RunRecord
from nbsweep.config import SweepConfig
from nbsweep.search import BayesSearch, MultiFidelitySearch, RandomSearch, make_searcher
from nbsweep.search._multifidelity import fidelity_levels

U = {"distribution": "uniform", "min": 0.0, "max": 1.0}
OPTIMUM = (0.7, 0.3)


def config(method: str = "bayes", kind: str = "multifidelity", **early: Any) -> SweepConfig:
    settings = {"max_iter": 9, "min_iter": 1, "eta": 3, **early}
    if kind == "hyperband":
        settings = {"min_iter": 1, "eta": 3}
    return nbsweep.validate(
        {
            "method": method,
            "metric": {"name": "loss", "goal": "minimize"},
            "early_terminate": {"type": kind, **settings},
            "parameters": {"x": U, "y": U},
        }
    )


def loss(x: float, y: float, epoch: int) -> float:
    """A bowl around ``OPTIMUM`` that every epoch lowers."""
    return (x - OPTIMUM[0]) ** 2 + (y - OPTIMUM[1]) ** 2 + 1.0 / (epoch + 1)


def partial_runs(seed: int, state: str, epochs: list[int]) -> list[RunRecord]:
    """Runs at random points, each with the first ``epochs[i]`` values of its curve."""
    rng = np.random.default_rng(seed)
    runs = []
    for i, n in enumerate(epochs):
        x, y = rng.random(2).tolist()
        history = tuple(loss(x, y, t) for t in range(n))
        runs.append(RunRecord(f"r{i}", {"x": x, "y": y}, state, history))
    return runs


def distance(config: dict[str, float]) -> float:
    return math.dist((config["x"], config["y"]), OPTIMUM)


def test_bayes_with_multifidelity_is_the_curve_model() -> None:
    assert type(make_searcher(config())) is MultiFidelitySearch
    assert type(make_searcher(config(kind="asha"))) is BayesSearch
    assert type(make_searcher(config(kind="hyperband"))) is BayesSearch
    assert type(make_searcher(config(method="random"))) is RandomSearch


def test_levels_are_the_rungs_then_max_iter() -> None:
    early = config(max_iter=27).early_terminate
    assert early is not None
    assert fidelity_levels(early) == [1, 3, 9, 27]
    early = config(max_iter=20, min_iter=2, eta=2).early_terminate
    assert early is not None
    assert fidelity_levels(early) == [2, 4, 8, 16, 20]


def test_every_curve_is_observed_at_the_levels_it_reached() -> None:
    """A stopped run adds its best value so far at each rung it reached and where it stopped;
    a running run at each rung; a run that failed before logging is the worst at max_iter."""
    search = MultiFidelitySearch(config())
    runs = [
        RunRecord("stopped", {"x": 0.1, "y": 0.1}, "stopped", (5.0, 3.0, 4.0, 2.0, 2.5)),
        RunRecord("running", {"x": 0.2, "y": 0.2}, "running", (6.0, 1.0, 0.5, 0.7)),
        RunRecord("finished", {"x": 0.3, "y": 0.3}, "finished", (), 0.25),
        RunRecord("failed", {"x": 0.4, "y": 0.4}, "failed", ()),
    ]
    curves = search.curves(runs)
    x = curves.x[:, 0].round(1).tolist()
    rows = list(zip(x, curves.iteration.tolist(), curves.loss.tolist(), strict=True))
    assert rows == [
        (0.1, 1, 5.0),
        (0.1, 3, 3.0),
        (0.1, 5, 2.0),
        (0.2, 1, 6.0),
        (0.2, 3, 0.5),
        (0.3, 9, 0.25),
        (0.4, 9, 6.0),
    ]
    assert curves.pending_ids == ["running"] and curves.pending_reached.tolist() == [4]


def test_maximize_is_learned_as_a_loss() -> None:
    maximize = nbsweep.validate(
        {
            "method": "bayes",
            "metric": {"name": "acc", "goal": "maximize"},
            "early_terminate": {"type": "multifidelity", "max_iter": 9},
            "parameters": {"x": U, "y": U},
        }
    )
    run = RunRecord("r", {"x": 0.5, "y": 0.5}, "stopped", (0.5, 0.9, 0.7))
    assert MultiFidelitySearch(maximize).curves([run]).loss.tolist() == [-0.5, -0.9]


@pytest.mark.parametrize("seed", range(6))
def test_learns_from_stopped_runs_partial_curves(seed: int) -> None:
    """Only stopped runs, at rung 1 or 3: no run ever finished, yet the search heads for
    the optimum (nearer than the best run so far on most seeds; see the next test)."""
    runs = partial_runs(seed, "stopped", [1 if i % 2 else 3 for i in range(16)])
    (suggestion,) = MultiFidelitySearch(config(), seed=seed).suggest(runs, 1)
    assert distance(suggestion) < 0.35


def test_stopped_runs_lead_nearer_than_the_best_of_them() -> None:
    near, closer = 0, 0
    for seed in range(6):
        runs = partial_runs(seed, "stopped", [1 if i % 2 else 3 for i in range(16)])
        (suggestion,) = MultiFidelitySearch(config(), seed=seed).suggest(runs, 1)
        best = min(runs, key=lambda r: min(r.metric_history))
        near += distance(suggestion) < 0.05
        closer += distance(suggestion) < distance(best.config)
    assert near >= 5 and closer >= 5


@pytest.mark.parametrize("seed", range(4))
def test_learns_from_runs_still_in_flight(seed: int) -> None:
    """Twelve runs at rung 3, none ended: plain bayes has nothing to learn from and draws a
    Sobol point; the curve model already knows where the optimum is."""
    runs = partial_runs(seed, "running", [3] * 12)
    (suggestion,) = MultiFidelitySearch(config(), seed=seed).suggest(runs, 1)
    assert distance(suggestion) < 0.05
    assert BayesSearch(config(kind="asha"), seed=seed).observe(runs).y.size == 0


def test_predicts_the_final_value_from_a_partial_curve() -> None:
    """Runs stopped early are ranked by where their curves would end."""
    runs = partial_runs(0, "finished", [9] * 10) + partial_runs(1, "stopped", [3] * 6)
    runs = [
        RunRecord(f"{r.id}-{i}", r.config, r.state, r.metric_history) for i, r in enumerate(runs)
    ]
    search = MultiFidelitySearch(config())
    ids = [r.id for r in runs]
    predicted = search.predict_final(runs, ids)
    assert set(predicted) == set(ids)
    truth = {r.id: loss(r.config["x"], r.config["y"], 8) for r in runs}
    order = sorted(ids, key=predicted.__getitem__)
    assert set(order[:3]) == set(sorted(ids, key=truth.__getitem__)[:3])


def test_first_suggestions_are_sobol_and_seeded() -> None:
    search = MultiFidelitySearch(config(), seed=3)
    first = search.suggest([], 4)
    assert first == MultiFidelitySearch(config(), seed=3).suggest([], 4)
    assert len({(p["x"], p["y"]) for p in first}) == 4


def test_every_third_run_is_drawn_at_random() -> None:
    """BOHB's random third: the sweep's runs 3, 6, 9, ... are random search's draws there,
    whatever the model believes; the others are the model's."""
    runs = partial_runs(0, "stopped", [1 if i % 2 else 3 for i in range(15)])
    search, random = MultiFidelitySearch(config(), seed=5), RandomSearch(config(), seed=5)
    batch = search.suggest(runs, 3)
    assert batch[2] == random.suggest(runs, 3)[2]
    assert batch[0] != random.suggest(runs, 1)[0]
    assert distance(batch[0]) < 0.05
    # One at a time, the same positions are random.
    pending = [RunRecord(f"p{i}", batch[i], "pending", ()) for i in range(2)]
    assert search.suggest([*runs, *pending], 1) == [batch[2]]
    assert search.suggest(runs, 1) == batch[:1]


def test_same_runs_and_seed_give_the_same_suggestions() -> None:
    runs = partial_runs(2, "stopped", [1, 3, 3, 9, 1, 3, 1, 9, 3, 3])
    one = MultiFidelitySearch(config(), seed=7).suggest(runs, 3)
    other = MultiFidelitySearch(config(), seed=7)
    other.suggest(runs[:4], 2)  # an earlier call changes nothing
    assert other.suggest(runs, 3) == one
    assert len({(p["x"], p["y"]) for p in one}) == 3


def test_needs_max_iter() -> None:
    with pytest.raises(ConfigError, match=r"early_terminate\.max_iter"):
        nbsweep.validate(
            {
                "method": "bayes",
                "metric": {"name": "loss"},
                "early_terminate": {"type": "multifidelity"},
                "parameters": {"x": U},
            }
        )
