"""Random search: W&B's sampling, reproducible with a seed, stateless between calls."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from scipy import stats

import nbsweep
from nbsweep._runs import RunRecord
from nbsweep.search import RandomSearch

CONFIG = nbsweep.validate(
    {
        "method": "random",
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
            "batch": {"distribution": "categorical", "values": [16, 32, 64]},
            "epochs": {"distribution": "constant", "value": 10},
            "model": {
                "parameters": {
                    "depth": {"distribution": "int_uniform", "min": 1, "max": 6},
                    "drop": {"distribution": "q_uniform", "min": 0, "max": 0.5, "q": 0.1},
                }
            },
        },
    }
)


def runs_of(configs: list[dict[str, Any]]) -> list[RunRecord]:
    return [RunRecord(f"r{i}", c, "finished") for i, c in enumerate(configs)]


def test_configs_are_nested_complete_and_in_range() -> None:
    configs = RandomSearch(CONFIG, seed=3).suggest([], 200)
    json.dumps(configs)  # plain Python values only
    for c in configs:
        assert set(c) == {"lr", "batch", "epochs", "model"}
        assert c["epochs"] == 10
        assert 1e-5 <= c["lr"] <= 1e-1
        assert c["batch"] in (16, 32, 64)
        assert isinstance(c["model"]["depth"], int) and 1 <= c["model"]["depth"] <= 6
    assert {c["model"]["depth"] for c in configs} == set(range(1, 7))


def test_same_seed_and_runs_give_the_same_suggestions() -> None:
    first = RandomSearch(CONFIG, seed=42).suggest([], 3)
    # A restarted controller (a new searcher) asking with the same runs gets the same answer.
    assert RandomSearch(CONFIG, seed=42).suggest([], 3) == first
    runs = runs_of(first)
    later = RandomSearch(CONFIG, seed=42).suggest(runs, 2)
    assert RandomSearch(CONFIG, seed=42).suggest(runs, 2) == later
    assert all(c not in first for c in later)  # more runs: a new part of the sequence


def test_a_seeded_sweep_draws_the_same_configs_however_requests_are_batched() -> None:
    """The controller asks for as many runs as agents are idle; that must not change them."""
    search = RandomSearch(CONFIG, seed=9)
    one_batch = search.suggest([], 6)
    runs: list[RunRecord] = []
    for size in (1, 3, 2):
        runs += runs_of(search.suggest(runs, size))
    assert [r.config for r in runs] == one_batch


def test_config_seed_is_used_and_different_seeds_differ() -> None:
    assert RandomSearch(CONFIG.replace(seed=7)).suggest([], 4) == RandomSearch(
        CONFIG, seed=7
    ).suggest([], 4)
    assert RandomSearch(CONFIG, seed=1).suggest([], 4) != RandomSearch(CONFIG, seed=2).suggest(
        [], 4
    )
    # Negative seeds work and differ from their absolute value.
    assert RandomSearch(CONFIG, seed=-5).suggest([], 2) != RandomSearch(CONFIG, seed=5).suggest(
        [], 2
    )


def test_without_seed_suggestions_come_from_fresh_entropy() -> None:
    search = RandomSearch(CONFIG)
    lrs = [c["lr"] for c in search.suggest([], 5) + search.suggest([], 5)]
    assert len(set(lrs)) == 10


def test_random_ignores_runs_and_never_exhausts() -> None:
    tiny = {"method": "random", "parameters": {"a": {"distribution": "categorical", "values": [1]}}}
    search = RandomSearch(nbsweep.validate(tiny), seed=0)
    assert search.suggest(runs_of([{"a": 1}] * 5), 4) == [{"a": 1}] * 4


def test_seeded_stream_has_the_parameter_law() -> None:
    """Draws keyed by (seed, runs, index) are still a uniform stream: the laws hold."""
    search, runs = RandomSearch(CONFIG, seed=11), []
    for _ in range(150):
        runs += runs_of(search.suggest(runs, 8))
    lrs = np.log10([r.config["lr"] for r in runs])
    assert stats.kstest(lrs, stats.uniform(-5, 4).cdf).pvalue > 1e-3
    counts = np.bincount([r.config["model"]["depth"] for r in runs], minlength=7)[1:]
    assert stats.chisquare(counts).pvalue > 1e-3
