"""Grid search: W&B's order, identity rules, consumption by runs, exhaustion."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import nbsweep
from nbsweep import ConfigError, SweepError
from nbsweep._runs import RunRecord
from nbsweep._states import RunState
from nbsweep.config import SweepConfig
from nbsweep.search import GridSearch, RandomSearch, make_searcher


def cat(*values: Any) -> dict[str, Any]:
    return {"distribution": "categorical", "values": list(values)}


def grid(**parameters: Any) -> SweepConfig:
    return nbsweep.validate({"method": "grid", "parameters": parameters})


def run(config: dict[str, Any], state: str = "finished", i: int = 0) -> RunRecord:
    return RunRecord(id=f"r{i}", config=config, state=state)


def all_points(config: SweepConfig) -> list[dict[str, Any]]:
    return GridSearch(config).suggest([], n=10_000)


def drain_one_by_one(config: SweepConfig) -> list[dict[str, Any]]:
    """Ask for one point at a time, feeding each back as a pending run (the controller's way)."""
    search, runs = GridSearch(config), []
    while batch := search.suggest(runs, 1):
        runs.append(run(batch[0], "pending", len(runs)))
    return [r.config for r in runs]


def test_last_parameter_varies_fastest_in_sorted_order() -> None:
    points = all_points(grid(b=cat(1, 2), a=cat("x", "y", "z")))
    assert [(p["a"], p["b"]) for p in points] == [
        ("x", 1),
        ("x", 2),
        ("y", 1),
        ("y", 2),
        ("z", 1),
        ("z", 2),
    ]


def test_nested_blocks_flatten_depth_first_and_stay_nested() -> None:
    config = grid(**{"a-b": cat(1, 2), "a": {"parameters": {"x": cat("p", "q")}}})
    points = all_points(config)
    # a.x sorts before a-b: the nested block's leaf is the slower axis.
    assert points == [
        {"a": {"x": "p"}, "a-b": 1},
        {"a": {"x": "p"}, "a-b": 2},
        {"a": {"x": "q"}, "a-b": 1},
        {"a": {"x": "q"}, "a-b": 2},
    ]
    order = all_points(grid(b=cat(1, 2), _c=cat(1, 2), B=cat(1, 2)))
    assert [(p["B"], p["_c"], p["b"]) for p in order[:3]] == [(1, 1, 1), (1, 1, 2), (1, 2, 1)]


def test_mixed_config_with_constants_int_and_q_uniform() -> None:
    config = grid(
        lr=cat(0.1, 0.01),
        epochs={"distribution": "constant", "value": 5},
        depth={"distribution": "int_uniform", "min": 1, "max": 2},
        frac={"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.5},
    )
    points = all_points(config)
    assert len(points) == config.grid_size == 2 * 2 * 2
    assert all(p["epochs"] == 5 for p in points)
    assert points[:3] == [
        {"depth": 1, "epochs": 5, "frac": 0.0, "lr": 0.1},
        {"depth": 1, "epochs": 5, "frac": 0.0, "lr": 0.01},
        {"depth": 1, "epochs": 5, "frac": 0.5, "lr": 0.1},
    ]
    assert drain_one_by_one(config) == points  # batching equals one-at-a-time


def test_int_uniform_is_inclusive_and_q_uniform_excludes_max() -> None:
    points = all_points(grid(i={"distribution": "int_uniform", "min": -52, "max": 10}))
    assert len(points) == 63 and points[0] == {"i": -52} and points[-1] == {"i": 10}
    q = all_points(grid(q={"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25}))
    assert [p["q"] for p in q] == [0, 0.25, 0.5, 0.75]
    q5 = all_points(grid(q={"distribution": "q_uniform", "min": 0, "max": 10, "q": 5}))
    assert [p["q"] for p in q5] == [0, 5]


def test_duplicates_collapse_to_first_position_emitting_the_last_listed_value() -> None:
    points = all_points(grid(v=cat(1, 1.0, True, "1", 2, 1)))
    values = [p["v"] for p in points]
    assert values == [1, True, "1", 2]
    assert [type(v) for v in values] == [int, bool, str, int]
    points = all_points(grid(a=cat("a", "b", "c", "a"), n=cat(1, 2, 3)))
    assert [(p["a"], p["n"]) for p in points] == [(a, n) for a in "abc" for n in (1, 2, 3)]


IDENTITY = [
    # grid values, the value a run recorded, whether that run consumes the point
    ([1, 2], 1.0, True),  # top-level float with an integer value == int
    ([1.0, 2], 1, True),
    ([1, 2], True, False),  # True is not 1
    ([True, 2], 1, False),
    ([[1, 2], 3], (1, 2), False),  # a tuple is not a list
    ([[1, 2], 3], [1, 2], True),
    ([[1.0], 3], [1], False),  # nested floats are not converted
    ([float("nan"), 3], float("nan"), True),  # NaN is NaN
    ([{"a": 1, "b": 2}, 3], {"b": 2, "a": 1}, True),  # dict key order is irrelevant
    ([{"a": 1}, 3], {"a": 1, "extra": 9}, True),  # keys outside the grid values are stripped
    ([{"a": 1}, 3], {"a": 2}, False),
    (["1", 2], 1, False),
    ([None, 2], None, True),
    # nbsweep only: numpy scalars count as the Python ones (W&B's YAML dump tags them).
    ([1, 2], np.int64(1), True),
    ([0.5, 2], np.float64(0.5), True),
    ([True, 2], np.bool_(True), True),
]


@pytest.mark.parametrize(("values", "recorded", "consumed"), IDENTITY)
def test_identity_rules(values: list[Any], recorded: Any, consumed: bool) -> None:
    search = GridSearch(grid(v=cat(*values)))
    remaining = search.suggest([run({"v": recorded})], n=10)
    assert len(remaining) == (1 if consumed else 2)


def test_runs_in_every_state_consume_their_point() -> None:
    config = grid(v=cat(*range(len(list(RunState)) + 1)))
    runs = [run({"v": i}, state, i) for i, state in enumerate(list(RunState))]
    assert GridSearch(config).suggest(runs, 5) == [{"v": len(list(RunState))}]


def test_run_missing_a_parameter_consumes_nothing() -> None:
    config = grid(a=cat(1), b=cat(2))
    assert GridSearch(config).suggest([run({"a": 1})], 5) == [{"a": 1, "b": 2}]


def test_exhaustion_returns_fewer_then_none() -> None:
    search = GridSearch(grid(v=cat("x", "y")))
    first = search.suggest([], 5)
    assert first == [{"v": "x"}, {"v": "y"}]
    runs = [run(c, "finished", i) for i, c in enumerate(first)]
    assert search.suggest(runs, 5) == []
    assert search.suggest(runs[:1], 5) == [{"v": "y"}]


def test_all_constant_grid_yields_exactly_one_run() -> None:
    config = grid(
        a={"distribution": "constant", "value": 1}, b={"distribution": "constant", "value": [2]}
    )
    assert config.grid_size == 1
    first = GridSearch(config).suggest([], 3)
    assert first == [{"a": 1, "b": [2]}]
    assert GridSearch(config).suggest([run(first[0])], 3) == []


def test_suggested_configs_are_private_json_friendly_copies() -> None:
    config = grid(opt=cat({"name": "adam", "betas": [0.9, 0.99]}))
    search = GridSearch(config)
    point = search.suggest([], 1)[0]
    point["opt"]["betas"].append(1.0)
    assert search.suggest([], 1)[0]["opt"]["betas"] == [0.9, 0.99]
    json.dumps(all_points(grid(q={"distribution": "q_uniform", "min": 0, "max": 2, "q": 1})))


def test_grid_size() -> None:
    config = grid(a=cat(1, 2, 1), b={"distribution": "int_uniform", "min": 0, "max": 9})
    assert config.grid_size == 20
    assert len(all_points(config)) == 20


def test_non_grid_distribution_is_a_config_error_naming_the_parameter() -> None:
    with pytest.raises(ConfigError, match=r"parameters\.m\.parameters\.lr.*'uniform'"):
        grid(m={"parameters": {"lr": {"distribution": "uniform", "min": 0.0, "max": 1.0}}})
    weighted = {
        "distribution": "categorical_w_probabilities",
        "values": [1],
        "probabilities": [1.0],
    }
    with pytest.raises(ConfigError, match="categorical_w_probabilities"):
        grid(w=weighted)


def test_make_searcher_picks_the_method() -> None:
    assert isinstance(make_searcher(grid(a=cat(1))), GridSearch)
    assert isinstance(make_searcher(grid(a=cat(1)).replace(method="random"), seed=1), RandomSearch)
    with pytest.raises(SweepError, match="method 'custom' needs a scheduler"):
        make_searcher(grid(a=cat(1)).replace(method="custom"))
