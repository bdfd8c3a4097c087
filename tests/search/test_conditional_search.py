"""Conditional parameters in grid, random and bayes search: only valid configs, inactive
parameters absent, seeded sweeps reproducible."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import nbsweep
from nbsweep._runs import RunRecord
from nbsweep.config import SweepConfig
from nbsweep.search import GridSearch, make_searcher
from nbsweep.space import INACTIVE

NETWORK: dict[str, Any] = {
    "optimizer": {"values": ["adam", "sgd"]},
    "momentum": {"values": [0.0, 0.9], "when": {"optimizer": "sgd"}},
    "num_layers": {"values": [1, 2, 3]},
    "units_2": {"values": [16, 32], "when": {"num_layers": [2, 3]}},
    "units_3": {"values": [16, 32], "when": {"num_layers": 3}},
    "batch": {"value": 64},
    "sgd": {"when": {"optimizer": "sgd"}, "parameters": {"nesterov": {"values": [True, False]}}},
}


def make(method: str, seed: int | None = None, **extra: Any) -> SweepConfig:
    raw: dict[str, Any] = {"method": method, "parameters": NETWORK, **extra}
    if seed is not None:
        raw["seed"] = seed
    if method == "bayes":
        raw["metric"] = {"name": "loss"}
    return nbsweep.validate(raw)


def valid_configs() -> list[dict[str, Any]]:
    """Every valid run config, written out by hand from NETWORK's conditions."""
    out = []
    for optimizer, layers in itertools.product(["adam", "sgd"], [1, 2, 3]):
        sgd = (
            [{}]
            if optimizer == "adam"
            else [
                {"momentum": m, "sgd": {"nesterov": n}} for m in (0.0, 0.9) for n in (True, False)
            ]
        )
        units: list[dict[str, Any]] = [{}]
        for i in range(2, layers + 1):
            units = [{**u, f"units_{i}": v} for u in units for v in (16, 32)]
        for s in sgd:
            for u in units:
                out.append({"optimizer": optimizer, "num_layers": layers, "batch": 64, **s, **u})
    return out


def key(config: dict[str, Any]) -> str:
    return repr(sorted((k, repr(v)) for k, v in config.items()))


def is_valid(config: dict[str, Any]) -> bool:
    return key(config) in {key(c) for c in valid_configs()}


def test_a_conditional_grid_enumerates_exactly_the_valid_combinations() -> None:
    cfg = make("grid")
    points = GridSearch(cfg).suggest([], n=10_000)
    assert sorted(map(key, points)) == sorted(map(key, valid_configs()))
    assert cfg.grid_size == len(GridSearch(cfg)) == len(valid_configs()) == 35


def test_conditional_grid_runs_consume_their_points_one_by_one() -> None:
    search, runs = GridSearch(make("grid")), []
    while batch := search.suggest(runs, 1):
        runs.append(RunRecord(f"r{len(runs)}", batch[0], "pending"))
    assert len(runs) == 35 and len({key(r.config) for r in runs}) == 35


def test_a_run_with_an_inactive_value_still_consumes_its_point() -> None:
    # A run config that carries momentum while adam is chosen (a run resumed from an older
    # sweep, say): momentum is inactive, so the run stands for the adam point without it.
    search = GridSearch(make("grid"))
    first = search.suggest([], 1)[0]
    assert first == {"batch": 64, "num_layers": 1, "optimizer": "adam"}
    run = RunRecord("r0", {**first, "momentum": 0.9}, "finished")
    assert first not in search.suggest([run], 100)


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_sampled_configs_leave_inactive_parameters_out(method: str) -> None:
    search = make_searcher(make(method, seed=1))
    runs: list[RunRecord] = []
    for i in range(12):
        (config,) = search.suggest(runs, 1)
        assert is_valid(config), config
        runs.append(RunRecord(f"r{i}", config, "finished", (), float(i % 5)))
    assert {r.config["optimizer"] for r in runs} == {"adam", "sgd"}


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_seeded_conditional_sweeps_reproduce(method: str) -> None:
    def sweep() -> list[dict[str, Any]]:
        search = make_searcher(make(method, seed=7))
        runs: list[RunRecord] = []
        for i in range(5):
            for config in search.suggest(runs, 2):
                runs.append(RunRecord(f"r{len(runs)}", config, "finished", (), float(i)))
        return [r.config for r in runs]

    assert sweep() == sweep()


def test_inactive_parameters_sit_at_one_point_of_the_cube() -> None:
    space = make("random").space
    names = [p.name for p in space.searchable]
    adam = {"optimizer": "adam", "num_layers": 1, "batch": 64}
    active = space.active(space.flatten(adam))
    inactive = [j for j, p in enumerate(space.searchable) if p.path not in active]
    assert [names[j] for j in inactive] == ["momentum", "sgd/nesterov", "units_2", "units_3"]
    assert (space.to_unit(adam)[inactive] == INACTIVE).all()
    # Snapping moves any coordinate of an inactive parameter to the same point.
    points = np.random.default_rng(0).random((64, len(names)))
    snapped = space.snap(points)
    for row in snapped:
        config = space.from_unit(row)
        assert is_valid(config)
        np.testing.assert_allclose(space.to_unit(config), row)


def test_a_run_lacking_an_active_parameter_is_not_observed_by_bayes() -> None:
    search = make_searcher(make("bayes", seed=0))
    partial = RunRecord(
        "r0", {"optimizer": "sgd", "num_layers": 1, "batch": 64}, "finished", (), 1.0
    )
    full = RunRecord(
        "r1",
        {"optimizer": "adam", "num_layers": 2, "units_2": 16, "batch": 64},
        "finished",
        (),
        2.0,
    )
    assert search.observe([partial, full]).ids == ["r1"]


def test_without_when_the_grid_order_is_wandbs() -> None:
    plain = {k: v for k, v in NETWORK.items() if "when" not in v}
    points = GridSearch(nbsweep.validate({"method": "grid", "parameters": plain})).suggest([], 10)
    assert [(p["num_layers"], p["optimizer"]) for p in points] == [
        (1, "adam"),
        (1, "sgd"),
        (2, "adam"),
        (2, "sgd"),
        (3, "adam"),
        (3, "sgd"),
    ]


def random_conditional_space(rng: np.random.Generator) -> dict[str, Any]:
    """A few categorical parameters, each depending on an earlier one with some chance."""
    parameters: dict[str, Any] = {}
    names = [f"p{i}" for i in range(int(rng.integers(3, 6)))]
    rng.shuffle(names)  # so that a parent may sort after its child
    for i, name in enumerate(names):
        spec: dict[str, Any] = {"values": list(range(int(rng.integers(1, 4))))}
        if i and rng.random() < 0.7:
            parent = names[int(rng.integers(i))]
            choices = parameters[parent]["values"]
            spec["when"] = {parent: [v for v in choices if rng.random() < 0.6] or choices[:1]}
        parameters[name] = spec
    return parameters


@pytest.mark.parametrize("seed", range(20))
def test_conditional_grids_match_the_filtered_plain_product(seed: int) -> None:
    parameters = random_conditional_space(np.random.default_rng(seed))
    cfg = nbsweep.validate({"method": "grid", "parameters": parameters})
    # The plain product, each point cut down to what its own values switch on, deduplicated.
    names = sorted(parameters)
    expected = set()
    for values in itertools.product(*(parameters[n]["values"] for n in names)):
        config = dict(zip(names, values, strict=True))
        active: dict[str, Any] = {}
        changed = True
        while changed:  # a fixed point: parents settle before their children
            changed = False
            for n in names:
                when = parameters[n].get("when", {})
                on = all(p in active and active[p] in vs for p, vs in when.items())
                if on and n not in active:
                    active[n], changed = config[n], True
        expected.add(key(active))
    points = GridSearch(cfg).suggest([], 10_000)
    assert len(points) == len({key(p) for p in points})
    assert {key(p) for p in points} == expected
    assert cfg.grid_size == len(expected)


@pytest.mark.parametrize("method", ["grid", "random", "bayes"])
def test_a_constant_can_switch_parameters_on(method: str) -> None:
    raw: dict[str, Any] = {
        "method": method,
        "metric": {"name": "loss"},
        "seed": 0,
        "parameters": {
            "mode": {"value": "fast"},
            "steps": {"values": [1, 2], "when": {"mode": "fast"}},
            "depth": {"values": [3, 4], "when": {"steps": 2}},
        },
    }
    search = make_searcher(nbsweep.validate(raw))
    for config in search.suggest([], 4):
        assert set(config) == (
            {"mode", "steps", "depth"} if config["steps"] == 2 else {"mode", "steps"}
        )
    # A value the constant never takes would leave a parameter that never runs: refused.
    raw["parameters"]["depth"]["when"] = {"mode": "slow"}
    with pytest.raises(nbsweep.ConfigError, match="it takes only 'fast'"):
        nbsweep.validate(raw)


def test_warm_start_keeps_runs_that_leave_inactive_parameters_out() -> None:
    from nbsweep._warm_start import _project

    space = make("random").space
    adam = {"optimizer": "adam", "num_layers": 2, "units_2": 32, "batch": 64}
    assert _project(space, adam) == adam
    assert _project(space, {**adam, "optimizer": "sgd"}) == "without parameters.momentum"
