"""The ``multifidelity`` rule: ASHA's rungs, and a curve model that keeps slow starters.

Curves are built by hand: a small learning rate starts slowly and ends best, a large one drops
fast and stalls, and the largest diverge. ASHA stops the slow starter at its rung; the model,
fitted to the curves of its neighbours, predicts it ends among the best and lets it go on.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

import nbsweep
from nbsweep import ConfigError
from nbsweep._runs import RunRecord
from nbsweep.config import SweepConfig
from nbsweep.schedulers._nbsweep import NbsweepScheduler
from nbsweep.stopping import Asha, MultiFidelity, asha_rungs, make_stopper
from nbsweep.stopping import _multifidelity as multifidelity_rule

EPOCHS = 9


def config(kind: str = "multifidelity", goal: str = "minimize", **early: Any) -> SweepConfig:
    settings = {"max_iter": EPOCHS, "min_iter": 1, "eta": 3, **early}
    return nbsweep.validate(
        {
            "method": "random",
            "metric": {"name": "acc" if goal == "maximize" else "loss", "goal": goal},
            "early_terminate": {"type": kind, **settings},
            "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1.0}},
        }
    )


def lr(position: float) -> float:
    """The learning rate at ``position`` of its log range (0: 1e-4, 1: 1)."""
    return 10 ** (-4 + 4 * position)


def curve(position: float, epochs: int = EPOCHS) -> list[float]:
    """Slow starters end best; past 0.8 of the range the run diverges."""
    if position > 0.8:
        return [2.5] * epochs
    final, speed = 0.2 + 0.1 * position, 0.4 + 2 * position
    return [final + (1 - final) * math.exp(-speed * t) for t in range(epochs)]


def crossing_runs(sign: float = 1.0) -> list[RunRecord]:
    """Six finished runs over the range, a slow starter and a clear loser, both at rung 3."""
    runs = [
        RunRecord(f"done-{p}", {"lr": lr(p)}, "finished", tuple(sign * v for v in curve(p)))
        for p in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
    ]
    return [
        *runs,
        RunRecord(
            "slow-starter", {"lr": lr(0.05)}, "running", tuple(sign * v for v in curve(0.05, 3))
        ),
        RunRecord("loser", {"lr": lr(0.95)}, "running", tuple(sign * v for v in curve(0.95, 3))),
    ]


def test_rungs_are_ashas() -> None:
    stopper = make_stopper(config(max_iter=27))
    assert isinstance(stopper, MultiFidelity)
    early = config(max_iter=27).early_terminate
    assert early is not None
    assert stopper.bands == asha_rungs(early) == [1, 3, 9]


def test_the_curves_cross() -> None:
    """The premise: the slow starter is the worst at rung 3, and ends better than every run
    that beat it there but its slow neighbour."""
    at_rung = {p: min(curve(p)[:3]) for p in (0.05, 0.1, 0.3, 0.5, 0.7)}
    at_end = {p: curve(p)[-1] for p in (0.05, 0.1, 0.3, 0.5, 0.7)}
    assert max(at_rung, key=at_rung.__getitem__) == 0.05
    assert all(at_end[0.05] < at_end[p] for p in (0.3, 0.5, 0.7))


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_keeps_the_slow_starter_that_asha_stops(goal: str) -> None:
    runs = crossing_runs(sign=-1.0 if goal == "maximize" else 1.0)
    assert Asha(config("asha", goal)).decide(runs).stop == ["slow-starter", "loser"]
    assert make_stopper(config(goal=goal)).decide(runs).stop == ["loser"]  # type: ignore[union-attr]


def test_never_stops_a_run_asha_keeps() -> None:
    runs = crossing_runs()
    # Fast starters at rung 1: ASHA keeps the best third, and so does the model's rule.
    runs += [
        RunRecord(f"fast-{p}", {"lr": lr(p)}, "running", tuple(curve(p, 1))) for p in (0.6, 0.7)
    ]
    asha_stops = set(Asha(config("asha")).decide(runs).stop)
    model_stops = set(MultiFidelity(config()).decide(runs).stop)
    assert model_stops <= asha_stops
    assert "fast-0.7" not in model_stops


def test_stops_clear_losers() -> None:
    """Runs that diverge, next to finished runs that diverged, are stopped at the first rung."""
    runs = [
        RunRecord(f"done-{p}", {"lr": lr(p)}, "finished", tuple(curve(p)))
        for p in (0.1, 0.3, 0.5, 0.7, 0.85, 0.9)
    ]
    runs += [
        RunRecord(f"diverged-{p}", {"lr": lr(p)}, "running", (2.5,)) for p in (0.88, 0.95, 0.99)
    ]
    decision = MultiFidelity(config()).decide(runs)
    assert decision.stop == ["diverged-0.88", "diverged-0.95", "diverged-0.99"]
    (rung_1, *_) = decision.bands
    assert rung_1.iteration == 1 and rung_1.stopped == 3
    assert rung_1.reached == rung_1.stopped + rung_1.continued


def test_keeps_a_run_the_model_is_unsure_of(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every curve that went past rung 3 is a fast starter's; the slow starters near
    ``unseen`` were all stopped there, so the model has never seen a curve end in its region.
    Ranked by the mean, their early values condemn it; one standard deviation of optimism keeps
    it (and the model learns where such curves end)."""
    runs = [
        RunRecord(f"done-{p}", {"lr": lr(p)}, "finished", tuple(curve(p)))
        for p in (0.5, 0.6, 0.7, 0.75)
    ]
    runs += [
        RunRecord(f"fast-{p}", {"lr": lr(p)}, "stopped", tuple(curve(p, 3)))
        for p in (0.55, 0.65, 0.72, 0.78)
    ]
    runs += [
        RunRecord(f"slow-{p}", {"lr": lr(p)}, "stopped", tuple(curve(p, 3)))
        for p in (0.0, 0.03, 0.08, 0.12)
    ]
    runs.append(RunRecord("unseen", {"lr": lr(0.05)}, "running", tuple(curve(0.05, 3))))
    assert Asha(config("asha")).decide(runs).stop == ["unseen"]
    assert MultiFidelity(config()).decide(runs).stop == []
    monkeypatch.setattr(multifidelity_rule, "OPTIMISM", 0.0)
    assert MultiFidelity(config()).decide(runs).stop == ["unseen"]


def test_stateless_and_deterministic() -> None:
    """Same runs, same answer: from a fresh stopper, on a second call, in any order."""
    runs = crossing_runs()
    first = make_stopper(config())
    assert first is not None
    expected = first.decide(runs).stop
    assert first.decide(runs).stop == expected
    shuffled = list(runs)
    random.Random(0).shuffle(shuffled)
    again = make_stopper(config())
    assert again is not None
    assert sorted(again.decide(shuffled).stop) == sorted(expected)
    assert first.decide(runs).bands == again.decide(runs).bands


def test_without_a_searchable_parameter_it_is_asha() -> None:
    fixed = nbsweep.validate(
        {
            "method": "grid",
            "metric": {"name": "loss"},
            "early_terminate": {"type": "multifidelity", "max_iter": EPOCHS},
            "parameters": {"lr": {"value": 0.1}},
        }
    )
    stopper = MultiFidelity(fixed)
    assert stopper.model is None
    runs = [RunRecord(f"r{i}", {"lr": 0.1}, "finished", tuple(curve(0.1 * i))) for i in range(6)]
    runs.append(RunRecord("late", {"lr": 0.1}, "running", tuple(curve(0.0, 3))))
    assert stopper.decide(runs).stop == Asha(fixed).decide(runs).stop == ["late"]


def test_the_controller_judges_not_the_agents() -> None:
    """The model needs every run's config and curve: agents get no checkpoints."""
    assert NbsweepScheduler(config()).checkpoints == ()
    assert NbsweepScheduler(config("asha")).checkpoints == frozenset({1, 3})
    stops = NbsweepScheduler(config()).stop(crossing_runs())
    assert list(stops) == ["loser"]
    assert stops["loser"] == "early_terminate: stopped at 3 iterations"


@pytest.mark.parametrize(
    ("early_terminate", "needle"),
    [
        ({"max_iter": None}, "early_terminate.max_iter: required"),
        ({"max_iter": 1}, "early_terminate.max_iter: must be an integer >= 2"),
        ({"max_iter": 9.5}, "early_terminate.max_iter: must be an integer"),
        ({"min_iter": 0}, "early_terminate.min_iter: must be an integer >= 1"),
        ({"min_iter": 9}, "early_terminate.max_iter: must be greater than min_iter"),
        ({"eta": 1}, "early_terminate.eta: must be > 1"),
        ({"eta": "3"}, "early_terminate.eta"),
        ({"s": 2}, "early_terminate.s"),
    ],
)
def test_bad_config_names_the_key(early_terminate: dict[str, Any], needle: str) -> None:
    settings = {"max_iter": EPOCHS, "min_iter": 1, **early_terminate}
    settings = {k: v for k, v in settings.items() if v is not None}
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        nbsweep.validate(
            {
                "method": "random",
                "metric": {"name": "loss"},
                "early_terminate": {"type": "multifidelity", **settings},
                "parameters": {"lr": {"min": 0.0, "max": 1.0}},
            }
        )


def test_needs_a_metric() -> None:
    with pytest.raises(ConfigError, match="early_terminate: needs metric"):
        nbsweep.validate(
            {
                "method": "random",
                "early_terminate": {"type": "multifidelity", "max_iter": EPOCHS},
                "parameters": {"lr": {"min": 0.0, "max": 1.0}},
            }
        )


@pytest.mark.timeout(120)
def test_a_sweep_stops_runs_with_it(sqlite_store: str) -> None:
    """Through the real API: agents in processes, the SQLite store, the controller judging."""

    def train(config: Any) -> None:
        import time

        import nbsweep

        for epoch in range(9):
            time.sleep(0.05)  # an epoch: long enough for the controller to read the rung
            nbsweep.log({"loss": config.x + 1.0 / (epoch + 1), "epoch": epoch})

    sweep = nbsweep.sweep(
        {
            "method": "bayes",
            "metric": {"name": "loss", "goal": "minimize"},
            "run_cap": 9,
            "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 4.0}},
            "early_terminate": {"type": "multifidelity", "max_iter": 9, "eta": 3},
        },
        train,
        workers=2,
        store=sqlite_store,
        seed=0,
    )
    assert sweep.wait() == "finished"
    runs = sweep.runs
    assert len(runs) == 9
    states = runs["state"].value_counts().to_dict()
    assert states.get("stopped", 0) >= 1 and states.get("finished", 0) >= 1, states
    assert set(states) <= {"stopped", "finished"}, states
    # The controller stopped them, at a rung or a row or two past it.
    events = sweep.events()
    stops = events[events["kind"] == "stopped"]
    assert set(stops["run_id"]) == set(runs[runs["state"] == "stopped"]["run_id"])
    assert all(m.startswith("early_terminate: stopped at ") for m in stops["message"]), stops
    assert [b.iteration for b in sweep.bands()] == [1, 3]
