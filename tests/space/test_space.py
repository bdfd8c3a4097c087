"""The parameter space: every W&B distribution's law, quantiles, CDF, order and unit cube."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from nbsweep import ConfigError
from nbsweep.space import DISTRIBUTIONS, Parameter, Space

N = 3000


def param(distribution: str, **spec: Any) -> Parameter:
    return Parameter(("p",), {"distribution": distribution, **spec})


def draws(p: Parameter, seed: int = 1234, n: int = N) -> list[Any]:
    """Samples through the public path: a one-parameter space, seeded."""
    space = Space([p])
    rng = np.random.default_rng(seed)
    return [space.sample(rng)["p"] for _ in range(n)]


# -- laws: continuous distributions against the exact law (Kolmogorov-Smirnov) --

E = math.e
CONTINUOUS = [
    ("uniform", {"min": -2, "max": 3}, stats.uniform(-2, 5)),
    ("log_uniform_values", {"min": 1e-4, "max": 1e-1}, stats.loguniform(1e-4, 1e-1)),
    ("inv_log_uniform_values", {"min": 1e-4, "max": 1e-1}, stats.loguniform(1e-4, 1e-1)),
    # v1: bounds are natural-log exponents.
    ("log_uniform", {"min": -3, "max": 1}, stats.loguniform(E**-3, E**1)),
    ("inv_log_uniform", {"min": 1, "max": 4}, stats.loguniform(E**-4, E**-1)),
    ("normal", {"mu": 2.0, "sigma": 3.0}, stats.norm(2, 3)),
    ("log_normal", {"mu": 0.5, "sigma": 0.7}, stats.lognorm(s=0.7, scale=math.exp(0.5))),
    ("beta", {"a": 2, "b": 5}, stats.beta(2, 5)),
]


@pytest.mark.parametrize(("dist", "spec", "law"), CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_distribution_follows_its_law(dist: str, spec: dict, law: Any) -> None:
    values = draws(param(dist, **spec))
    assert all(type(v) is float for v in values)
    assert stats.kstest(values, law.cdf).pvalue > 1e-3


def test_kolmogorov_smirnov_check_rejects_a_wrong_law() -> None:
    """The law test has teeth: uniform draws are not log-uniform, nor the other way round."""
    uniform = draws(param("uniform", min=1e-4, max=1e-1))
    log_uniform = draws(param("log_uniform_values", min=1e-4, max=1e-1))
    assert stats.kstest(uniform, stats.loguniform(1e-4, 1e-1).cdf).pvalue < 1e-6
    assert stats.kstest(log_uniform, stats.uniform(1e-4, 1e-1 - 1e-4).cdf).pvalue < 1e-6


# -- laws: discrete distributions against the exact probabilities (chi-square) --


def q_law(cdf: Any, q: float, lo: float = -np.inf, hi: float = np.inf) -> Any:
    """P(value = k*q) for a q-rounded variable with base CDF ``cdf`` (rounding to nearest)."""

    def pmf(v: float) -> float:
        return float(cdf(min(v + q / 2, hi)) - cdf(max(v - q / 2, lo)))

    return pmf


def chi_square_pvalue(values: list[Any], pmf: Any) -> float:
    """Chi-square of observed counts against ``pmf``; rare outcomes pooled into one bin."""
    keys = sorted({repr(v) for v in values})
    by_key = {repr(v): v for v in values}
    observed, expected = [], []
    rest_obs = 0
    for key in keys:
        count = sum(1 for v in values if repr(v) == key)
        e = pmf(by_key[key]) * len(values)
        if e >= 5:
            observed.append(count)
            expected.append(e)
        else:
            rest_obs += count
    rest_exp = len(values) - sum(expected)
    observed.append(rest_obs)
    expected.append(rest_exp)
    if rest_exp < 1e-9:
        assert rest_obs == 0
        observed, expected = observed[:-1], expected[:-1]
    return float(stats.chisquare(observed, expected).pvalue)


def categorical_pmf(values: list[Any], probabilities: list[float]) -> Any:
    return lambda v: sum(p for x, p in zip(values, probabilities, strict=True) if x == v)


LOG_U = stats.loguniform(1, 100)
DISCRETE = [
    ("int_uniform", {"min": -3, "max": 4}, lambda v: 1 / 8 if -3 <= v <= 4 else 0.0),
    ("categorical", {"values": ["a", "b", "c"]}, categorical_pmf(["a", "b", "c"], [1 / 3] * 3)),
    (
        "categorical_w_probabilities",
        {"values": ["a", "b", "c", "d"], "probabilities": [0.1, 0.6, 0.0, 0.3]},
        categorical_pmf(["a", "b", "c", "d"], [0.1, 0.6, 0.0, 0.3]),
    ),
    ("q_uniform", {"min": 0, "max": 10, "q": 1}, q_law(stats.uniform(0, 10).cdf, 1, 0, 10)),
    ("q_uniform", {"min": 0, "max": 1, "q": 0.25}, q_law(stats.uniform(0, 1).cdf, 0.25, 0, 1)),
    (
        "q_log_uniform_values",
        {"min": 1, "max": 100, "q": 5},
        q_law(LOG_U.cdf, 5, 1, 100),
    ),
    (
        "q_log_uniform",
        {"min": 0, "max": math.log(100), "q": 5.0},
        q_law(LOG_U.cdf, 5.0, 1, 100),
    ),
    ("q_normal", {"mu": 0.0, "sigma": 2.0, "q": 1.0}, q_law(stats.norm(0, 2).cdf, 1.0)),
    (
        "q_log_normal",
        {"mu": 1.0, "sigma": 0.5, "q": 0.5},
        q_law(stats.lognorm(s=0.5, scale=math.e).cdf, 0.5, 0.0),
    ),
    ("q_beta", {"a": 2, "b": 2, "q": 0.25}, q_law(stats.beta(2, 2).cdf, 0.25, 0, 1)),
]


@pytest.mark.parametrize(
    ("dist", "spec", "pmf"), DISCRETE, ids=[f"{c[0]}-{i}" for i, c in enumerate(DISCRETE)]
)
def test_discrete_distribution_follows_its_law(dist: str, spec: dict, pmf: Any) -> None:
    values = draws(param(dist, **spec))
    assert chi_square_pvalue(values, pmf) > 1e-3


def test_chi_square_check_rejects_a_wrong_law() -> None:
    """Weighted draws fail against the uniform categorical law."""
    values = draws(
        param("categorical_w_probabilities", values=[1, 2, 3], probabilities=[0.5, 0.3, 0.2])
    )
    assert chi_square_pvalue(values, categorical_pmf([1, 2, 3], [1 / 3] * 3)) < 1e-6
    # And a zero-probability value is never drawn.
    zero = draws(param("categorical_w_probabilities", values=["x", "y"], probabilities=[0.0, 1.0]))
    assert set(zero) == {"y"}


# -- quantiles: W&B's verified values (spec §5.2) and nbsweep's clamps --

VERIFIED = [
    # distribution, spec, values at U = .25, .5, .999, 1; then the clamp at U = 0
    ("int_uniform", {"min": 1, "max": 4}, [1, 2, 4, 4], 1),  # W&B: 0 (min - 1)
    ("categorical", {"values": ["a", "b", "c", "d"]}, ["a", "b", "d", "d"], "a"),  # W&B: "d"
    ("log_uniform_values", {"min": 1, "max": 100}, [3.1623, 10.0, 99.5405, 100.0], 1.0),
]


@pytest.mark.parametrize(("dist", "spec", "expected", "at_zero"), VERIFIED)
def test_ppf_matches_wandb_verified_values(
    dist: str, spec: dict, expected: list[Any], at_zero: Any
) -> None:
    p = param(dist, **spec)
    got = [p.ppf(u) for u in (0.25, 0.5, 0.999, 1.0)]
    if isinstance(expected[0], float):
        assert got == pytest.approx(expected, abs=1e-4)
        assert spec["min"] <= min(got) and max(got) <= spec["max"]
    else:
        assert got == expected
    assert p.ppf(0.0) == at_zero


def test_ppf_clamps_unbounded_and_weighted_edges() -> None:
    normal = param("normal", mu=0.0, sigma=1.0)
    assert math.isfinite(normal.ppf(0.0)) and normal.ppf(0.0) < -6
    assert math.isfinite(normal.ppf(1.0)) and normal.ppf(1.0) > 6
    assert 0 < param("log_normal", mu=0.0, sigma=1.0).ppf(0.0) < 1e-2
    weighted = param(
        "categorical_w_probabilities", values=["a", "b", "c"], probabilities=[0.5, 0.5, 0.0]
    )
    # W&B gives "a" at U=1; nbsweep gives the last value that can be drawn.
    assert [weighted.ppf(u) for u in (0.0, 0.49, 0.5, 1.0)] == ["a", "a", "b", "b"]


def test_ppf_rejects_quantiles_outside_the_unit_interval() -> None:
    for u in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"parameters\.p: quantile"):
            param("uniform", min=0.0, max=1.0).ppf(u)


def test_q_rounding_is_half_to_even_with_int_or_float_results() -> None:
    floats = param("q_uniform", min=0, max=10, q=1.0)  # the default q is the float 1.0
    ints = param("q_uniform", min=0, max=10, q=1)
    assert [floats.ppf(u) for u in (0.05, 0.15, 0.25)] == [0.0, 2.0, 2.0]
    assert all(type(floats.ppf(u)) is float for u in (0.05, 0.4))
    assert [ints.ppf(u) for u in (0.05, 0.15, 0.25)] == [0, 2, 2]
    assert all(type(ints.ppf(u)) is int for u in (0.05, 0.4))
    assert floats.ppf(0.4) == 4.0
    assert param("q_normal", mu=0, sigma=1, q=2).ppf(0.5) == 0
    assert type(param("q_beta", a=1, b=1, q=0.5).ppf(0.3)) is float


def test_values_are_plain_python_types() -> None:
    """Run configs must survive json.dumps/yaml.safe_dump: no numpy scalars anywhere."""
    for dist, spec, _ in CONTINUOUS:
        assert type(param(dist, **spec).ppf(0.3)) is float
    assert type(param("int_uniform", min=0, max=3).ppf(0.3)) is int
    assert param("constant", value=[1, {"a": None}]).ppf(0.7) == [1, {"a": None}]


# -- CDF (spec §5.3) and the unit cube --


def test_cdf_encodings() -> None:
    cat = param("categorical", values=["a", "b", "c", "d"])
    assert [cat.cdf(v) for v in "abcd"] == [0.25, 0.5, 0.75, 1.0]
    assert param("int_uniform", min=1, max=4).cdf(2) == 0.5
    log = param("log_uniform_values", min=1, max=100)
    assert [log.cdf(v) for v in (1, 10, 100)] == pytest.approx([0.0, 0.5, 1.0])
    inv = param("inv_log_uniform_values", min=1, max=100)
    assert inv.cdf(10) == pytest.approx(0.5)
    assert param("uniform", min=-1, max=1).cdf(0.0) == 0.5
    assert param("normal", mu=1.0, sigma=2.0).cdf(1.0) == 0.5
    assert param("constant", value="x").cdf("x") == 0.0
    weighted = param(
        "categorical_w_probabilities", values=["a", "b", "c"], probabilities=[0.2, 0.5, 0.3]
    )
    # Midpoint of each value's probability interval (W&B crashes here).
    assert [weighted.cdf(v) for v in "abc"] == pytest.approx([0.1, 0.45, 0.85])


@pytest.mark.parametrize("dist", [d for d in DISTRIBUTIONS if d != "constant"])
def test_cdf_then_ppf_gives_the_value_back(dist: str) -> None:
    specs: dict[str, dict] = {c[0]: c[1] for c in CONTINUOUS + DISCRETE}
    p = param(dist, **specs[dist])
    for u in np.linspace(0.03, 0.97, 15):
        value = p.ppf(u)
        again = p.ppf(p.cdf(value))
        if isinstance(value, float):
            assert again == pytest.approx(value, rel=1e-9, abs=1e-12)
        else:
            assert again == value


def test_categorical_value_outside_values_names_the_parameter() -> None:
    space = Space.from_parameters(
        {
            "model": {
                "parameters": {"act": {"distribution": "categorical", "values": ["relu", "gelu"]}}
            }
        }
    )
    with pytest.raises(ValueError, match=r"'tanh'.*parameters\.model\.parameters\.act"):
        space.to_unit({"model": {"act": "tanh"}})


# -- order, flatten/nest, sample, unit round trip --

U01 = {"distribution": "uniform", "min": 0.0, "max": 1.0}


def test_flattening_is_depth_first_with_code_point_sorted_keys() -> None:
    space = Space.from_parameters({"a-b": U01, "a": {"parameters": {"x": U01}}})
    assert [p.path for p in space.parameters] == [("a", "x"), ("a-b",)]
    assert [p.name for p in space.parameters] == ["a/x", "a-b"]
    space = Space.from_parameters({"b": U01, "_c": U01, "B": U01})
    assert [p.name for p in space.parameters] == ["B", "_c", "b"]


MIXED = {
    "method": "random",
    "parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
        "epochs": {"distribution": "constant", "value": 3},
        "model": {
            "parameters": {
                "depth": {"distribution": "int_uniform", "min": 1, "max": 8},
                "act": {"distribution": "categorical", "values": ["relu", "gelu", None]},
                "opt": {
                    "parameters": {
                        "name": {
                            "distribution": "categorical_w_probabilities",
                            "values": ["adam", "sgd"],
                            "probabilities": [0.7, 0.3],
                        },
                        "beta": {"distribution": "q_beta", "a": 1, "b": 1, "q": 0.1},
                    }
                },
            }
        },
    },
}


def test_space_flatten_nest_and_searchable() -> None:
    space = Space.from_parameters(MIXED["parameters"])
    assert [p.name for p in space.parameters] == [
        "epochs",
        "lr",
        "model/act",
        "model/depth",
        "model/opt/beta",
        "model/opt/name",
    ]
    assert [p.name for p in space.searchable] == [p.name for p in space.parameters][1:]
    assert space.parameters[0].is_constant and space.parameters[2].is_categorical
    assert space.parameters[1].is_log and not space.parameters[3].is_log
    config = {
        "lr": 0.01,
        "epochs": 3,
        "model": {"act": None, "depth": 2, "opt": {"name": "sgd", "beta": 0.3}},
    }
    flat = space.flatten({**config, "extra": 1})
    assert flat[("model", "opt", "name")] == "sgd" and ("extra",) not in flat
    assert space.nest(flat) == config
    del flat[("epochs",)]
    assert space.nest(flat)["epochs"] == 3  # constants are always filled in


def test_sample_is_a_nested_config_with_constants() -> None:
    space = Space.from_parameters(MIXED["parameters"])
    config = space.sample(np.random.default_rng(0))
    assert config["epochs"] == 3
    assert set(config["model"]) == {"act", "depth", "opt"}
    assert set(config["model"]["opt"]) == {"name", "beta"}
    assert 1 <= config["model"]["depth"] <= 8


def test_to_unit_and_from_unit_round_trip() -> None:
    space = Space.from_parameters(MIXED["parameters"])
    rng = np.random.default_rng(7)
    for _ in range(50):
        config = space.sample(rng)
        u = space.to_unit(config)
        assert u.shape == (5,) and np.all((u >= 0) & (u <= 1))
        back = space.from_unit(u)
        assert back["model"]["act"] == config["model"]["act"]
        assert back["model"]["depth"] == config["model"]["depth"]
        assert back["model"]["opt"]["name"] == config["model"]["opt"]["name"]
        assert back["model"]["opt"]["beta"] == pytest.approx(config["model"]["opt"]["beta"])
        assert back["lr"] == pytest.approx(config["lr"])
    assert np.isnan(space.to_unit({"lr": 0.01})).sum() == 4  # missing values are NaN


def test_unnormalised_leaf_is_a_config_error_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"parameters\.a\.parameters\.b"):
        Space.from_parameters({"a": {"parameters": {"b": {"values": [1]}}}})
    with pytest.raises(ConfigError, match="unknown distribution 'gamma'"):
        Space.from_parameters({"a": {"distribution": "gamma"}})
