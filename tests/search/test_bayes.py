"""Bayes search: every distribution, W&B's observation and impute rules, batches, Branin."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from itertools import combinations
from typing import Any

import numpy as np
import pytest

import nbsweep
from nbsweep import ConfigError
from nbsweep._runs import RunRecord
from nbsweep.config import ConfigWarning, SweepConfig
from nbsweep.search import BayesSearch, RandomSearch, make_searcher
from nbsweep.search._bayes import MAX_OBSERVATIONS, _cap

NAN = float("nan")


def metric(goal: str = "minimize", impute: str = "worst", while_running: str = "false") -> dict:
    return {"name": "loss", "goal": goal, "impute": impute, "impute_while_running": while_running}


def bayes(parameters: dict[str, Any], **metric_kw: str) -> SweepConfig:
    with warnings.catch_warnings():  # EVERY has W&B's deprecated log distributions
        warnings.simplefilter("ignore", ConfigWarning)
        return nbsweep.validate(
            {"method": "bayes", "metric": metric(**metric_kw), "parameters": parameters}
        )


U = {"distribution": "uniform", "min": 0.0, "max": 1.0}
XY = bayes({"x": U, "y": U})


def rec(i: int, config: dict, state: str = "finished", history=(), summary=None) -> RunRecord:
    return RunRecord(f"r{i}", config, state, tuple(history), summary)


def bowl(x: float, y: float) -> float:
    return (x - 0.3) ** 2 + (y - 0.7) ** 2


def bowl_runs(n: int, seed: int = 0) -> list[RunRecord]:
    rng = np.random.default_rng(seed)
    runs = []
    for i in range(n):
        x, y = rng.random(2).tolist()
        runs.append(rec(i, {"x": x, "y": y}, history=[bowl(x, y)]))
    return runs


# -- every distribution, nested blocks --

EVERY = bayes(
    {
        "const": {"distribution": "constant", "value": {"k": [1, 2]}},
        "cat": {"distribution": "categorical", "values": ["a", None, [1, 2], {"d": 1}]},
        "weighted": {
            "distribution": "categorical_w_probabilities",
            "values": [1, 2, 3],
            "probabilities": [0.2, 0.5, 0.3],
        },
        "i": {"distribution": "int_uniform", "min": -3, "max": 3},
        "u": {"distribution": "uniform", "min": -1.0, "max": 1.0},
        "qu": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2},
        "lu1": {"distribution": "log_uniform", "min": -5.0, "max": 0.0},
        "luv": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0},
        "qlu1": {"distribution": "q_log_uniform", "min": 0.0, "max": 5.0, "q": 1.0},
        "qluv": {"distribution": "q_log_uniform_values", "min": 1.0, "max": 100.0, "q": 1.0},
        "ilu1": {"distribution": "inv_log_uniform", "min": 0.0, "max": 5.0},
        "iluv": {"distribution": "inv_log_uniform_values", "min": 1e-3, "max": 1.0},
        "nested": {
            "parameters": {
                "n": {"distribution": "normal", "mu": 0.0, "sigma": 1.0},
                "qn": {"distribution": "q_normal", "mu": 0.0, "sigma": 3.0, "q": 1.0},
                "deeper": {
                    "parameters": {
                        "ln": {"distribution": "log_normal", "mu": 0.0, "sigma": 1.0},
                        "qln": {"distribution": "q_log_normal", "mu": 1.0, "sigma": 1.0, "q": 1},
                        "b": {"distribution": "beta", "a": 2, "b": 3},
                        "qb": {"distribution": "q_beta", "a": 1, "b": 1, "q": 0.1},
                    }
                },
            }
        },
    }
)


def test_handles_every_distribution_and_nested_blocks() -> None:
    space = EVERY.space
    assert len(space.searchable) == 17
    rng = np.random.default_rng(0)
    runs = []
    for i in range(8):
        config = space.sample(rng)
        loss = float(np.sum((space.to_unit(config) - 0.4) ** 2))
        runs.append(rec(i, config, history=[loss]))
    runs.append(rec(8, space.sample(rng), "running"))
    suggestions = BayesSearch(EVERY, seed=1).suggest(runs, 3)
    assert len(suggestions) == 3
    json.dumps(suggestions)
    for s in suggestions:
        assert s["const"] == {"k": [1, 2]}
        assert s["weighted"] in (1, 2, 3)
        assert set(s["nested"]["deeper"]) == {"ln", "qln", "b", "qb"}
        assert isinstance(s["nested"]["deeper"]["qln"], int)
        u = space.to_unit(s)  # every value is a legal value of its parameter
        assert np.all((u >= 0) & (u <= 1))


def test_categorical_w_probabilities_is_searched() -> None:
    """W&B crashes on this distribution; here bayes learns which value is best."""
    config = bayes(
        {
            "w": {
                "distribution": "categorical_w_probabilities",
                "values": ["a", "b", "c", "d"],
                "probabilities": [0.4, 0.3, 0.2, 0.1],
            },
            "x": U,
        }
    )
    score = {"a": 1.0, "b": 0.0, "c": 2.0, "d": 3.0}
    search, runs = BayesSearch(config, seed=0), []
    for i in range(20):
        s = search.suggest(runs, 1)[0]
        runs.append(rec(i, s, history=[score[s["w"]] + (s["x"] - 0.5) ** 2]))
    late = [r.config["w"] for r in runs[10:]]
    assert late.count("b") > len(late) / 2


# -- observations and impute rules (spec §8.2, §8.3) --

C = {"x": 0.5, "y": 0.5}
IMPUTE_TABLE = [
    # (metric kw, runs, expected {run id: y}, expected in-flight ids)
    (
        {},
        [
            rec(0, C, "finished", [3.0, 1.0, 2.0]),
            rec(1, C, "finished", [3.0], 0.5),  # summary counts
            rec(2, C, "finished", [NAN, "x", None, math.inf, True]),  # no valid value: worst
            rec(3, C, "stopped", [5.0, 4.0]),  # early terminated: its real best
            rec(4, C, "failed", [0.1]),  # failed: imputed even with metrics
            rec(5, C, "running", [9.0]),  # in flight, and its 9.0 is not "worst"
            rec(6, C, "pending"),
        ],
        {"r0": 1.0, "r1": 0.5, "r2": 5.0, "r3": 4.0, "r4": 5.0},
        ["r5", "r6"],
    ),
    (
        {"goal": "maximize"},
        [
            rec(0, C, "finished", [3.0, 1.0, 2.0]),
            rec(1, C, "killed", [7.0]),
            rec(2, C, "crashed"),
        ],
        {"r0": 3.0, "r1": 1.0, "r2": 1.0},  # worst = min over the terminal runs' minima
        [],
    ),
    (
        {"impute": "best"},
        [
            rec(0, C, "failed", [0.3, 0.1, 0.2]),
            rec(1, C, "crashed"),  # best with no metric: 0.0
            rec(2, C, "finished", [2.0]),
        ],
        {"r0": 0.1, "r1": 0.0, "r2": 2.0},
        [],
    ),
    (
        {"impute": "latest"},
        [
            rec(0, C, "killed", [0.3, 0.1, 0.2], 0.05),  # latest history value, summary ignored
            rec(1, C, "failed"),
            rec(2, C, "finished"),  # finished without metric: imputed too
        ],
        {"r0": 0.2, "r1": 0.0, "r2": 0.0},
        [],
    ),
    (
        {},
        [rec(0, C, "failed"), rec(1, C, "running", [1.0])],  # no terminal values: worst is 0.0
        {"r0": 0.0},
        ["r1"],
    ),
    (
        {"while_running": "worst"},
        [
            rec(0, C, "finished", [2.0]),
            rec(1, C, "running", [1.0, 0.5]),  # a running run with metrics: its best so far
            rec(2, C, "running"),  # none yet: imputed with impute_while_running
            rec(3, C, "pending"),
        ],
        {"r0": 2.0, "r1": 0.5, "r2": 2.0},
        ["r3"],
    ),
    (
        {"while_running": "latest"},
        [rec(0, C, "running", [1.0, 3.0])],  # W&B: "latest" acts like best when metrics exist
        {"r0": 1.0},
        [],
    ),
]


@pytest.mark.parametrize(("metric_kw", "runs", "observed", "in_flight"), IMPUTE_TABLE)
def test_observations_follow_wandb_impute_rules(
    metric_kw: dict, runs: list[RunRecord], observed: dict, in_flight: list[str]
) -> None:
    obs = BayesSearch(bayes({"x": U, "y": U}, **metric_kw)).observe(runs)
    assert dict(zip(obs.ids, obs.y.tolist(), strict=True)) == pytest.approx(observed)
    assert obs.pending_ids == in_flight
    assert obs.x.shape == (len(observed), 2) and obs.pending.shape == (len(in_flight), 2)


def test_run_lacking_a_parameter_is_left_out_and_bad_value_names_the_run() -> None:
    config = bayes({"c": {"distribution": "categorical", "values": [1, 2]}, "x": U})
    search = BayesSearch(config)
    assert search.observe([rec(0, {"x": 0.1}, history=[1.0])]).ids == []
    with pytest.raises(ValueError, match=r"run r7: 3 is not one of the values of parameters\.c"):
        search.observe([rec(7, {"c": 3, "x": 0.1}, history=[1.0])])


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="metric"):
        XY.replace(metric=None)
    with pytest.raises(ConfigError, match="not constant"):
        bayes({"c": {"distribution": "constant", "value": 1}})
    assert isinstance(make_searcher(XY), BayesSearch)


# -- suggestions --


def unit(configs: list[dict]) -> np.ndarray:
    return np.array([[c["x"], c["y"]] for c in configs])


def test_warm_up_is_random_seeded_and_distinct() -> None:
    one = bowl_runs(1)
    first = BayesSearch(XY, seed=5).suggest(one, 4)
    assert first == BayesSearch(XY, seed=5).suggest(one, 4)
    assert first != BayesSearch(XY, seed=6).suggest(one, 4)
    assert len({(c["x"], c["y"]) for c in first}) == 4


def test_the_first_runs_are_one_design_however_they_are_batched() -> None:
    """x and y: three design runs, the same one at a time (results in between) or at once."""
    one_by_one: list[RunRecord] = []
    for i in range(3):
        (config,) = BayesSearch(XY, seed=4).suggest(one_by_one, 1)
        one_by_one.append(rec(i, config, history=[bowl(config["x"], config["y"])]))
    assert [r.config for r in one_by_one] == BayesSearch(XY, seed=4).suggest([], 3)
    # The fourth run is the model's: led by what the design found, not the design's next.
    fourth = BayesSearch(XY, seed=4).suggest(one_by_one, 1)
    assert fourth != BayesSearch(XY, seed=4).suggest([], 4)[3:]


def test_a_design_over_few_values_does_not_repeat_one() -> None:
    config = bayes({"a": {"values": [1, 2, 3]}, "b": {"values": [1, 2, 3]}})
    for seed in range(20):
        runs: list[RunRecord] = []
        for i in range(3):  # the design: one run more than the two parameters
            (suggested,) = BayesSearch(config, seed=seed).suggest(runs, 1)
            runs.append(rec(i, suggested, history=[float(i)]))
        assert len({(r.config["a"], r.config["b"]) for r in runs}) == 3, seed


def test_same_runs_and_seed_give_the_same_suggestions() -> None:
    runs = bowl_runs(8)
    first = BayesSearch(XY, seed=3).suggest(runs, 2)
    assert BayesSearch(XY, seed=3).suggest(runs, 2) == first


def test_model_moves_toward_the_optimum() -> None:
    point = unit(BayesSearch(XY, seed=0).suggest(bowl_runs(25), 1))[0]
    assert bowl(*point) < 0.02


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_pending_runs_steer_suggestions_apart(seed: int) -> None:
    runs = bowl_runs(15, seed)
    search = BayesSearch(XY, seed=seed)
    alone = search.suggest(runs, 1)[0]
    other = search.suggest([*runs, rec(99, alone, "pending")], 1)[0]
    assert np.linalg.norm(unit([alone]) - unit([other])) > 0.1


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_a_batch_is_distinct_and_spread_out(seed: int) -> None:
    batch = unit(BayesSearch(XY, seed=seed).suggest(bowl_runs(15, seed), 5))
    gaps = [np.linalg.norm(a - b) for a, b in combinations(batch, 2)]
    assert min(gaps) > 0.05
    # Spread, yet still led by the model: the first point is near the bowl's optimum.
    assert bowl(*batch[0]) < 0.01


def test_a_discrete_batch_does_not_repeat_points_while_others_are_left() -> None:
    config = bayes({"c": {"distribution": "categorical", "values": list("abcdef")}})
    runs = [rec(i, {"c": v}, history=[i]) for i, v in enumerate("ab")]
    batch = BayesSearch(config, seed=0).suggest(runs, 4)
    assert sorted(c["c"] for c in batch) == list("cdef")
    # Once every point has run, bayes still answers (it never exhausts).
    full = [rec(i, {"c": v}, history=[i]) for i, v in enumerate("abcdef")]
    assert len(BayesSearch(config, seed=0).suggest(full, 2)) == 2


def test_fit_keeps_the_best_half_and_the_most_recent() -> None:
    n = MAX_OBSERVATIONS + 50
    x = np.arange(n, dtype=float)[:, None]
    loss = np.arange(n, dtype=float)[::-1].copy()  # the most recent rows are the best
    loss[:10] = -1.0  # and the ten oldest are the very best
    kept_x, kept_loss = _cap(x, loss)
    kept = set(kept_x[:, 0].astype(int).tolist())
    assert len(kept) == MAX_OBSERVATIONS
    assert set(range(10)) <= kept and n - 1 in kept
    assert np.array_equal(kept_loss, loss[sorted(kept)])


# -- quality: bayes beats random search on Branin --


def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


BRANIN = bayes(
    {
        "x1": {"distribution": "uniform", "min": -5.0, "max": 10.0},
        "x2": {"distribution": "uniform", "min": 0.0, "max": 15.0},
    }
)


def best_after(method: type, seed: int, budget: int = 25) -> float:
    search, runs = method(BRANIN, seed=seed), []
    for i in range(budget):
        s = search.suggest(runs, 1)[0]
        runs.append(rec(i, s, history=[branin(s["x1"], s["x2"])]))
    return min(r.metric_history[0] for r in runs)


def test_bayes_beats_random_search_on_branin() -> None:
    seeds = range(3)
    bayes_best = [best_after(BayesSearch, s) for s in seeds]
    random_best = [best_after(RandomSearch, s) for s in seeds]
    # Branin's minimum is 0.397887; the median run of bayes must beat random's median.
    assert np.median(bayes_best) < np.median(random_best)
    assert np.median(bayes_best) < 0.6


# -- the model's parts --


def test_a_first_batch_covers_the_cube() -> None:
    """Before there is anything to model, a batch of 4 lands one point in each quadrant."""
    for seed in range(5):
        batch = unit(BayesSearch(XY, seed=seed).suggest([], 4))
        quadrants = {(int(x >= 0.5), int(y >= 0.5)) for x, y in batch}
        assert quadrants == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_answers_depend_on_the_runs_not_on_earlier_calls() -> None:
    """Past 100 runs the kernel is refitted every tenth; a searcher that served earlier
    calls still answers exactly as a fresh one (after a controller restart)."""
    runs = bowl_runs(135)
    served = BayesSearch(XY, seed=2)
    for count in (101, 118, 125, 135):
        served.suggest(runs[:count], 1)
    assert served.suggest(runs, 2) == BayesSearch(XY, seed=2).suggest(runs, 2)


def test_kernel_fit_gradient_matches_finite_differences() -> None:
    from scipy.optimize import approx_fprime

    from nbsweep.search._bayes import _neg_log_posterior, _prior

    rng = np.random.default_rng(0)
    x = rng.random((30, 3))
    y = np.sin(5 * x[:, 0]) + x[:, 1] ** 2
    y = (y - y.mean()) / y.std()
    mean, spread, _ = _prior(3)
    theta = mean + rng.normal(size=5) * 0.3
    value, grad = _neg_log_posterior(theta, x, y, mean, spread)
    numeric = approx_fprime(theta, lambda t: _neg_log_posterior(t, x, y, mean, spread)[0], 1e-6)
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-4)


def test_a_suggestion_uses_one_thread_of_every_blas_even_one_loaded_later() -> None:
    """Agents train on the same cores: BLAS threads would spin against them (a suggestion
    at 1,000 runs took 30-390 ms instead of 10 beside two busy processes). SciPy's own
    OpenBLAS comes with scipy.linalg, which a fresh controller process has not imported."""
    script = """
import json, threadpoolctl
from nbsweep.search._bayes import _one_blas_thread
with _one_blas_thread():
    import scipy.linalg
    print(json.dumps([i["num_threads"] for i in threadpoolctl.threadpool_info()]))
"""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    threads = json.loads(done.stdout)
    assert len(threads) >= 2 and set(threads) == {1}, threads


def test_log_expected_improvement_ranks_where_ei_underflows() -> None:
    from scipy.stats import norm

    from nbsweep.search._bayes import _log_expected_improvement

    mean = np.array([-1.0, 0.0, 1.0, 5.0, 20.0, 40.0])
    sd = np.ones_like(mean)
    z = -mean
    ei = z * norm.cdf(z) + norm.pdf(z)
    log_ei = _log_expected_improvement(mean, sd, 0.0)
    assert np.allclose(log_ei[:4], np.log(ei[:4]), rtol=1e-3)
    assert np.all(np.isfinite(log_ei)) and np.all(np.diff(log_ei) < 0)


def test_categories_are_unordered_columns() -> None:
    """A category is a 0/1 column of its own: the middle value is as far from the first
    as the last is, so bayes does not assume an order the values do not have."""
    config = bayes({"c": {"distribution": "categorical", "values": ["a", "b", "c"]}, "x": U})
    search = BayesSearch(config, seed=0)
    points = np.array([search.space.to_unit({"c": v, "x": 0.5}) for v in "abc"])
    features = search._features(points)
    assert np.allclose(np.linalg.norm(features[0] - features[1]), 0.5)
    assert np.allclose(np.linalg.norm(features[0] - features[2]), 0.5)
    assert np.allclose(features[:, 3], 0.5)


def test_log_ei_gradient_matches_finite_differences() -> None:
    """Polishing climbs log EI with this gradient: near the incumbent, and far below it
    where EI itself underflows."""
    from scipy.optimize import approx_fprime

    from nbsweep.search._bayes import _GP, _fit_theta, _log_expected_improvement

    rng = np.random.default_rng(0)
    x = rng.random((30, 4))
    y = np.sin(5 * x[:, 0]) + x[:, 1] ** 2 - x[:, 3]
    y = (y - y.mean()) / y.std()
    gp = _GP(_fit_theta(x, y), x, y)
    columns = np.array([0, 1, 3])

    def log_ei(u: np.ndarray, point: np.ndarray) -> float:
        moved = point.copy()
        moved[columns] = u
        return float(_log_expected_improvement(*gp.predict(moved[None]), gp.incumbent)[0])

    far = x[np.argmax(y)]  # the worst observation: EI underflows there
    for point in [*rng.random((3, 4)), x[np.argmin(y)] + 0.05, far]:
        value, gradient = gp.log_ei_and_gradient(point.copy(), columns)
        assert math.isclose(value, log_ei(point[columns], point), rel_tol=1e-9)
        numeric = approx_fprime(point[columns], log_ei, 1e-7, point)
        assert np.allclose(gradient, numeric, rtol=1e-3, atol=1e-3), (gradient, numeric)


def test_polishing_moves_only_active_continuous_parameters_and_gains() -> None:
    config = bayes(
        {
            "opt": {"distribution": "categorical", "values": ["sgd", "adam"]},
            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1.0},
            "momentum": {**U, "when": {"opt": "sgd"}},
            "layers": {"distribution": "int_uniform", "min": 1, "max": 4},
        }
    )
    search = BayesSearch(config, seed=0)
    rng = np.random.default_rng(1)
    runs = []
    for i in range(20):
        c = search.space.sample(rng)
        loss = math.log10(c["lr"]) ** 2 / 10 + (c["opt"] == "adam") + c.get("momentum", 0.5)
        runs.append(rec(i, c, history=[loss]))
    obs = search.observe(runs)
    gp = search._fit_model(obs)[0]
    for _ in range(20):
        point = search.space.snap(rng.random((1, 4)))[0]
        score = search._log_ei(gp, point[None].copy())[0]
        polished = search._polish(gp, point, score, set(obs.taken))
        fixed = search._discrete | ~search.space.active_mask(point[None])[0]
        assert np.array_equal(polished[fixed], point[fixed])
        assert search._log_ei(gp, polished[None].copy())[0] >= score
    assert any(
        not np.array_equal(search._polish(gp, p, search._log_ei(gp, p[None].copy())[0], set()), p)
        for p in search.space.snap(rng.random((5, 4)))
    ), "polishing never moved a point"
