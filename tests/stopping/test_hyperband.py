"""W&B's hyperband rule (spec §9): bands, thresholds, who stops, and what the view is told."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest

import nbsweep
from nbsweep import ConfigError
from nbsweep._runs import RunRecord
from nbsweep.config import ConfigWarning, SweepConfig
from nbsweep.stopping import Asha, Band, Hyperband, hyperband_bands, make_stopper

NAN = float("nan")


def config(goal: str = "minimize", **early_terminate: Any) -> SweepConfig:
    """A validated config with hyperband's ``early_terminate`` settings."""
    with warnings.catch_warnings():  # min_iter with max_iter: the warning says it is ignored
        warnings.simplefilter("ignore", ConfigWarning)
        return nbsweep.validate(
            {
                "method": "random",
                "metric": {"name": "loss", "goal": goal},
                "early_terminate": {"type": "hyperband", **early_terminate},
                "parameters": {"lr": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
            }
        )


def bands(**early_terminate: Any) -> list[int]:
    early = config(**early_terminate).early_terminate
    assert early is not None
    return hyperband_bands(early)


def runs(*specs: tuple[str, str, list[Any]]) -> list[RunRecord]:
    return [RunRecord(id=i, config={}, state=s, metric_history=h) for i, s, h in specs]


@pytest.mark.parametrize(
    ("early_terminate", "expected"),
    [
        ({"max_iter": 81, "eta": 3, "s": 3}, [3, 9, 27]),
        ({"max_iter": 18, "eta": 3, "s": 2}, [2, 6]),
        ({"max_iter": 27, "eta": 3, "s": 2}, [3, 9]),
        ({"max_iter": 9, "eta": 3, "s": 5}, [1, 3]),
        ({"max_iter": 100, "eta": 2, "s": 3}, [12, 25, 50]),
        ({"max_iter": 10, "eta": 2.5, "s": 4}, [1, 4]),
        ({"max_iter": 27, "s": 2}, [3, 9]),  # eta defaults to 3
        ({"max_iter": 81, "s": 3, "min_iter": 5}, [3, 9, 27]),  # max_iter wins
    ],
)
def test_max_iter_bands(early_terminate: dict[str, Any], expected: list[int]) -> None:
    assert bands(**early_terminate) == expected


@pytest.mark.parametrize(
    ("early_terminate", "head"),
    [
        ({"min_iter": 3, "eta": 3}, [3, 9, 27, 81]),
        ({"min_iter": 30, "eta": 1.5}, [30, 45, 67, 101, 151, 227]),
        ({"min_iter": 5, "eta": 2.5}, [5, 12, 31, 78, 195, 488]),
        ({"min_iter": 1, "eta": 2}, [1, 2, 4, 8, 16]),
    ],
)
def test_min_iter_bands(early_terminate: dict[str, Any], head: list[int]) -> None:
    found = bands(**early_terminate)
    assert found[: len(head)] == head
    assert len(found) == 100  # W&B builds 100 bands from min_iter
    assert found == sorted(set(found))


@pytest.mark.parametrize(
    ("early_terminate", "needle"),
    [
        ({"max_iter": 2, "eta": 3, "s": 2}, "early_terminate.max_iter: 2 gives no band"),
        ({"max_iter": 27, "s": 1.5}, "early_terminate.s"),
        ({"max_iter": 27}, "early_terminate.s"),
        ({"max_iter": "27", "s": 2}, "early_terminate.max_iter"),
        ({"min_iter": 0}, "early_terminate.min_iter"),
        ({"min_iter": 3, "eta": 1}, "early_terminate.eta"),
        ({"eta": 3}, "min_iter, or max_iter and s"),
    ],
)
def test_bad_early_terminate_names_the_key(early_terminate: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        config(**early_terminate)


R, F, S, C, X = "running", "finished", "stopped", "crashed", "failed"

# (name, early_terminate, goal, runs, run ids expected to stop)
DECISIONS: list[tuple[str, dict[str, Any], str, list[tuple[str, str, list[Any]]], list[str]]] = [
    ("lone running run never stopped", {"min_iter": 1}, "minimize", [("a", R, [9, 9, 9])], []),
    (
        "2 runs, eta 2: the worse value is the threshold, nobody stops",
        {"min_iter": 1, "eta": 2},
        "minimize",
        [("a", R, [1, 1]), ("b", R, [2, 2])],
        [],
    ),
    (
        "2 runs, eta 3: the better value is the threshold, the worse stops",
        {"min_iter": 1, "eta": 3},
        "minimize",
        [("a", R, [1, 1]), ("b", R, [2, 2])],
        ["b"],
    ),
    (
        "ties survive",
        {"min_iter": 1},
        "minimize",
        [("a", R, [1.0]), ("b", R, [1.0]), ("c", F, [1.0])],
        [],
    ),
    (
        "maximize: the lower value is the worse",
        {"min_iter": 1},
        "maximize",
        [("a", R, [0.9]), ("b", R, [0.1])],
        ["b"],
    ),
    (
        "minimize: the same runs, the other one stops",
        {"min_iter": 1},
        "minimize",
        [("a", R, [0.9]), ("b", R, [0.1])],
        ["a"],
    ),
    (
        "strict: judged on the value at the band",
        {"min_iter": 2, "strict": True},
        "minimize",
        [("a", F, [1, 1, 1, 1]), ("b", F, [2, 2, 2, 2]), ("c", R, [5, 5, 0.5])],
        ["c"],
    ),
    (
        "non-strict: the best value of the whole history sneaks in",
        {"min_iter": 2, "strict": False},
        "minimize",
        [("a", F, [1, 1, 1, 1]), ("b", F, [2, 2, 2, 2]), ("c", R, [5, 5, 0.5])],
        [],
    ),
    (
        "invalid values are not iterations: one valid value has not reached band 2",
        {"min_iter": 2},
        "minimize",
        [("a", F, [0.1, 0.1]), ("b", R, [NAN, None, "x", True, math.inf, 5.0])],
        [],
    ),
    (
        "invalid values are skipped: the second valid value is compared at band 2",
        {"min_iter": 2},
        "minimize",
        [("a", F, [0.1, 0.1]), ("b", R, [NAN, 5.0, None, "6", 6.0])],
        ["b"],
    ),
    (
        "invalid values do not enter thresholds",
        {"min_iter": 1},
        "minimize",
        [("a", F, [NAN]), ("b", F, [-math.inf]), ("c", R, [3.0])],
        [],
    ),
    (
        "non-running runs are never returned",
        {"min_iter": 1},
        "minimize",
        [("a", F, [9]), ("b", X, [9]), ("c", S, [9]), ("d", C, [9]), ("e", R, [1])],
        [],
    ),
    (
        "thresholds pool every state",
        {"min_iter": 1},
        "minimize",
        [("a", R, [5]), ("b", F, [1]), ("c", C, [1])],
        ["a"],
    ),
    (
        "a run before the first band is not judged",
        {"min_iter": 3},
        "minimize",
        [("a", F, [1, 1, 1]), ("b", F, [1, 1, 1]), ("c", R, [9, 9])],
        [],
    ),
    (
        "max_iter form: each run is judged at its closest band",
        {"max_iter": 9, "s": 2},  # bands [1, 3]
        "minimize",
        [
            ("a", F, [1, 1, 1, 1]),
            ("b", F, [2, 2, 2, 2]),
            ("c", R, [3, 0, 0]),  # worst at band 1, but judged at band 3 where it is best
            ("d", R, [3, 3]),  # band 1: threshold is 2 among [1, 2, 3, 3]
        ],
        ["d"],
    ),
    (
        "output in input order",
        {"min_iter": 1},
        "minimize",
        [("z", R, [9]), ("a", F, [1]), ("m", R, [8]), ("b", R, [1]), ("c", F, [1])],
        ["z", "m"],
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
    assert Hyperband(config(goal, **early_terminate)).decide(runs(*specs)).stop == expected


def test_summary_is_not_an_iteration() -> None:
    records = [
        RunRecord("a", {}, R, metric_history=[], summary_metric=0.0),
        RunRecord("b", {}, R, metric_history=[5.0], summary_metric=5.0),
    ]
    assert Hyperband(config(min_iter=1)).decide(records).stop == []


def test_band_counts_and_thresholds() -> None:
    hyperband = Hyperband(config(max_iter=9, s=2))  # bands [1, 3]
    assert hyperband.bands == [1, 3]
    decision = hyperband.decide(
        runs(
            ("a", F, [1, 1, 1, 1]),
            ("b", S, [4]),  # stopped earlier at band 1
            ("c", R, [3, 3]),  # stopped now, at band 1
            ("d", R, [2, 2, 2]),
            ("e", "pending", []),
        )
    )
    # band 1: values [1, 4, 3, 2] -> sorted [1, 2, 3, 4][int(4/3)] = 2; c (3) stops, d (2) ties.
    # band 3: values [1, 2] -> sorted [1, 2][int(2/3)] = 1; d (2) stops there.
    assert decision.stop == ["c", "d"]
    assert decision.bands == [
        # c went past band 1 but was judged (and stopped) there: stopped, not continued.
        Band(iteration=1, threshold=2.0, reached=4, stopped=2, continued=2),
        Band(iteration=3, threshold=1.0, reached=2, stopped=1, continued=1),
    ]


def test_band_thresholds_in_the_metric_sign_for_maximize() -> None:
    decision = Hyperband(config("maximize", max_iter=9, s=2)).decide(
        runs(("a", F, [0.5, 0.6]), ("b", R, [0.7, 0.8]), ("c", R, [0.1]))
    )
    assert decision.stop == ["c"]
    # band 1: negated [-0.5, -0.7, -0.1] -> sorted[1] = -0.5, reported as accuracy 0.5.
    # band 3: nobody has 3 values; every accuracy passes: -inf.
    assert [b.threshold for b in decision.bands] == [0.5, -math.inf]
    assert [b.reached for b in decision.bands] == [3, 0]


def test_min_iter_form_reports_reached_bands_and_the_next() -> None:
    decision = Hyperband(config(min_iter=2)).decide(
        runs(("a", F, [1] * 7), ("b", R, [1] * 3), ("c", "pending", []))
    )
    assert [b.iteration for b in decision.bands] == [2, 6, 18]
    assert decision.bands[-1] == Band(18, math.inf, reached=0, stopped=0, continued=0)


def test_no_runs() -> None:
    decision = Hyperband(config(max_iter=27, s=2)).decide([])
    assert decision.stop == []
    assert [(b.iteration, b.threshold, b.reached) for b in decision.bands] == [
        (3, math.inf, 0),
        (9, math.inf, 0),
    ]


def test_make_stopper() -> None:
    assert make_stopper(config(min_iter=3).replace(early_terminate=None)) is None
    assert isinstance(make_stopper(config(min_iter=3)), Hyperband)
    asha = config(min_iter=3).replace(early_terminate={"type": "asha", "min_iter": 3})
    assert isinstance(make_stopper(asha), Asha)


def test_metric_is_required() -> None:
    with pytest.raises(ConfigError, match="early_terminate: needs metric"):
        config(min_iter=3).replace(metric=None)
