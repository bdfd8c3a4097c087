"""ASHA: rungs, the top-1/eta rule, too little evidence, and the bands a view is told."""

from __future__ import annotations

import math
from typing import Any

import pytest

import nbsweep
from nbsweep import ConfigError
from nbsweep._runs import RunRecord
from nbsweep.config import SweepConfig
from nbsweep.stopping import Asha, Band, asha_rungs

R, F, S, C = "running", "finished", "stopped", "crashed"


def config(goal: str = "minimize", **early_terminate: Any) -> SweepConfig:
    return nbsweep.validate(
        {
            "method": "random",
            "metric": {"name": "acc" if goal == "maximize" else "loss", "goal": goal},
            "early_terminate": {"type": "asha", **early_terminate},
            "parameters": {"lr": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
        }
    )


def rungs(**early_terminate: Any) -> list[int]:
    early = config(**early_terminate).early_terminate
    assert early is not None
    return asha_rungs(early)


def runs(*specs: tuple[str, str, list[Any]]) -> list[RunRecord]:
    return [RunRecord(id=i, config={}, state=s, metric_history=h) for i, s, h in specs]


@pytest.mark.parametrize(
    ("early_terminate", "expected"),
    [
        ({"min_iter": 1, "eta": 3, "max_iter": 81}, [1, 3, 9, 27]),  # none at max_iter itself
        ({"min_iter": 1, "max_iter": 82}, [1, 3, 9, 27, 81]),  # eta defaults to 3
        ({"min_iter": 2, "eta": 2, "max_iter": 20}, [2, 4, 8, 16]),
        ({"min_iter": 5, "eta": 2.5, "max_iter": 500}, [5, 12, 31, 78, 195, 488]),
        ({"min_iter": 4, "max_iter": 5}, [4]),
        ({"min_iter": 1, "eta": 1.2, "max_iter": 3}, [1, 2]),  # 1, 1.2, 1.44, 1.73, 2.07, 2.49
    ],
)
def test_rungs(early_terminate: dict[str, Any], expected: list[int]) -> None:
    assert rungs(**early_terminate) == expected


def test_rungs_without_max_iter_go_on() -> None:
    found = rungs(min_iter=3)
    assert found[:5] == [3, 9, 27, 81, 243]
    assert found[-1] > 10**12


@pytest.mark.parametrize(
    ("early_terminate", "needle"),
    [
        ({"min_iter": 0}, "early_terminate.min_iter"),
        ({}, "early_terminate.min_iter"),
        ({"min_iter": 2.5}, "early_terminate.min_iter"),
        ({"min_iter": 3, "eta": 1}, "early_terminate.eta"),
        ({"min_iter": 3, "eta": "3"}, "early_terminate.eta"),
        ({"min_iter": 9, "max_iter": 3}, "early_terminate.max_iter: must be greater than min_iter"),
        ({"min_iter": 9, "max_iter": 9}, "early_terminate.max_iter: must be greater than min_iter"),
    ],
)
def test_bad_config_names_the_key(early_terminate: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        config(**early_terminate)


# (name, early_terminate, goal, runs, run ids expected to stop)
DECISIONS: list[tuple[str, dict[str, Any], str, list[tuple[str, str, list[Any]]], list[str]]] = [
    (
        "fewer than eta runs at the rung: no evidence, everybody goes on",
        {"min_iter": 1, "eta": 3},
        "minimize",
        [("a", F, [1.0]), ("b", R, [9.0])],
        [],
    ),
    (
        "nine runs at rung 1, eta 3: the best three go on",
        {"min_iter": 1, "eta": 3},
        "minimize",
        [(f"r{v}", R, [float(v)]) for v in (5, 1, 9, 3, 7, 2, 8, 4, 6)],
        ["r5", "r9", "r7", "r8", "r4", "r6"],
    ),
    (
        "eta 2 keeps the best half (floor of 5 / 2 = 2)",
        {"min_iter": 1, "eta": 2},
        "minimize",
        [("a", R, [1]), ("b", R, [2]), ("c", R, [3]), ("d", R, [4]), ("e", R, [5])],
        ["c", "d", "e"],
    ),
    (
        "ties with the cutoff survive",
        {"min_iter": 1, "eta": 3},
        "minimize",
        [("a", F, [1]), ("b", R, [1]), ("c", R, [1])],
        [],
    ),
    (
        "maximize: the top third by the highest value",
        {"min_iter": 1, "eta": 3},
        "maximize",
        [("a", R, [0.9]), ("b", R, [0.5]), ("c", R, [0.7])],
        ["b", "c"],
    ),
    (
        "the value at a rung is the best so far: one bad epoch at the rung does not count",
        {"min_iter": 3, "eta": 3},
        "minimize",
        [("a", R, [9, 1, 9]), ("b", F, [2, 2, 2]), ("c", F, [3, 3, 3]), ("d", F, [4, 4, 4])],
        [],
    ),
    (
        "values after the rung do not count until the next rung",
        {"min_iter": 3, "eta": 3, "max_iter": 27},
        "minimize",
        [("a", R, [5, 5, 5, 0.1]), ("b", F, [1, 1, 1]), ("c", F, [2, 2, 2])],
        ["a"],
    ),
    (
        "a run is judged at its highest rung, against the runs that reached it",
        {"min_iter": 1, "eta": 3},
        "minimize",
        [
            ("a", R, [9, 9, 0.1]),  # worst at rung 1, best at rung 3
            ("b", F, [1, 1, 1]),
            ("c", F, [2, 2, 2]),
            ("d", F, [3]),
        ],
        [],
    ),
    (
        "every state counts as evidence, only running runs are returned",
        {"min_iter": 1, "eta": 3},
        "minimize",
        [("a", F, [1]), ("b", C, [2]), ("c", S, [3]), ("d", R, [4]), ("e", F, [9])],
        ["d"],
    ),
    (
        "invalid values are not iterations",
        {"min_iter": 2, "eta": 3},
        "minimize",
        [
            ("a", F, [1, 1]),
            ("b", F, [2, 2]),
            ("c", R, [float("nan"), None, "x", True, 5.0]),  # one valid value: before rung 2
        ],
        [],
    ),
    (
        "a run before min_iter (the grace period) is never judged",
        {"min_iter": 4, "eta": 3},
        "minimize",
        [("a", F, [1] * 4), ("b", F, [1] * 4), ("c", F, [1] * 4), ("d", R, [9, 9, 9])],
        [],
    ),
]


@pytest.mark.parametrize(
    ("early_terminate", "goal", "specs", "expected"),
    [d[1:] for d in DECISIONS],
    ids=[d[0] for d in DECISIONS],
)
def test_decisions(
    early_terminate: dict[str, Any],
    goal: str,
    specs: list[tuple[str, str, list[Any]]],
    expected: list[str],
) -> None:
    assert Asha(config(goal, **early_terminate)).decide(runs(*specs)).stop == expected


def test_a_promoted_run_is_stopped_when_better_runs_reach_its_rung() -> None:
    asha = Asha(config(min_iter=1, eta=3, max_iter=9))
    early = [("a", R, [5.0, 5.0])]
    assert asha.decide(runs(*early)).stop == []
    later = [*early, ("b", F, [1.0]), ("c", F, [2.0])]
    assert asha.decide(runs(*later)).stop == ["a"]


def test_bands() -> None:
    asha = Asha(config("maximize", min_iter=1, eta=2, max_iter=5))
    assert asha.bands == [1, 2, 4]
    decision = asha.decide(
        runs(
            ("a", F, [0.5, 0.8, 0.9, 0.9]),
            ("b", S, [0.2]),
            ("c", R, [0.4, 0.3]),
            ("d", R, [0.6]),
        )
    )
    # rung 1: [0.5, 0.2, 0.4, 0.6] keep floor(4/2) = 2 -> cutoff 0.5; b was stopped here.
    # rung 2: best so far [0.8, 0.4] keep 1 -> cutoff 0.8: c, judged at its highest rung, stops.
    # rung 4: one run, fewer than eta: no cutoff (every accuracy passes).
    assert decision.stop == ["c"]
    assert decision.bands == [
        Band(iteration=1, threshold=0.5, reached=4, stopped=1, continued=3),
        Band(iteration=2, threshold=0.8, reached=2, stopped=1, continued=1),
        Band(iteration=4, threshold=-math.inf, reached=1, stopped=0, continued=1),
    ]


def test_bands_without_max_iter_show_reached_rungs_and_the_next() -> None:
    decision = Asha(config(min_iter=2)).decide(runs(("a", R, [1] * 7)))
    assert [b.iteration for b in decision.bands] == [2, 6, 18]
