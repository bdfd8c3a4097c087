"""nbsweep.validate: W&B's schema (spec §2-§5, §9), Launch keys, and nbsweep's stricter checks."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Any

import pytest

import nbsweep
from nbsweep.config import (
    DISTRIBUTIONS,
    GRID_DISTRIBUTIONS,
    V1_LOG_DISTRIBUTIONS,
    ConfigError,
    ConfigWarning,
    validate,
)

BASE: dict[str, Any] = {"method": "random", "parameters": {"a": {"values": [1, 2]}}}
METRIC = {"name": "loss"}


def cfg(*drop: str, **changes: Any) -> dict[str, Any]:
    """BASE with top-level keys dropped or replaced."""
    out = copy.deepcopy(BASE)
    for key in drop:
        out.pop(key)
    out.update(changes)
    return out


def param(spec: Any, **changes: Any) -> dict[str, Any]:
    """BASE whose parameter ``a`` is ``spec``."""
    return cfg(parameters={"a": spec}, **changes)


def problems(config: Any) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        with pytest.raises(ConfigError) as info:
            validate(config)
    return info.value.problems


def quiet(config: Any) -> dict[str, Any]:
    """validate() that fails the test on any ConfigWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        return validate(config)


OPTUNA_JOB = "wandb/sweep-jobs/job-optuna-sweep-scheduler:latest"
HYPERBAND = {"type": "hyperband", "min_iter": 3}

BAD = [
    # spec §3.4 "Rejected", in the table's order
    (cfg("method"), "method: required"),
    (cfg(method="hyperopt"), "method: must be one of grid, random, bayes, custom"),
    (cfg("parameters"), "parameters: required"),
    (cfg(parameters={}), "parameters: must not be empty"),
    (cfg(foo=1), "foo: unknown key"),
    (cfg(run_cap=0), "run_cap: must be an integer >= 1"),
    (cfg(metric={"goal": "minimize"}), "metric.name: required"),
    (cfg(metric={"name": "l", "goal": "min"}), "metric.goal: must be one of minimize, maximize"),
    (cfg(metric={"name": "l", "extra": 1}), "metric.extra: unknown key"),
    (cfg(metric={"name": "l", "target": "1"}), "metric.target: must be a finite number"),
    (cfg(command="python train.py"), "command: must be a list"),
    (cfg(program=1), "program: must be a string"),
    (cfg(parameters={"1a": {"values": [1]}}), "parameters.1a: invalid parameter name"),
    (param({"values": []}), "parameters.a.values: 'values' must not be empty"),
    (param({"min": 1, "max": 1}), "parameters.a: min 1 is not less than max 1"),
    (param({"min": 0.0, "max": 1.0, "distribution": "int_uniform"}), "parameters.a.min: must "),
    (param({"min": False, "max": True}), "parameters.a.min: must be a finite number"),
    (param({"distribution": "log_uniform_values", "min": 0, "max": 1}), "parameters.a.min: must"),
    (param({"values": [1, 2], "probabilities": [0.5, 0.6]}), "a.probabilities: must sum to 1"),
    (param({"values": [1, 2], "probabilities": [1.0]}), "parameters.a.probabilities: has 1 "),
    (param({"distribution": "normal", "sigma": -1}), "parameters.a.sigma: must be >= 0"),
    (param({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0}), "parameters.a.q: must "),
    (param({"values": [1], "foo": 1}), "parameters.a.foo: unknown key"),
    (param({"value": 1, "values": [1]}), "parameters.a: 'value' and 'values' cannot be used"),
    (param({"parameters": {}}), "parameters.a.parameters: must not be empty"),
    (param({"distribution": "gaussian"}), "parameters.a.distribution: unknown distribution"),
    (cfg(metric=METRIC, early_terminate={"min_iter": 3}), "early_terminate.type: required"),
    (cfg(metric=METRIC, early_terminate={"type": "median"}), "early_terminate.type: must be one"),
    (cfg(metric=METRIC, early_terminate={"type": "hyperband"}), "early_terminate: hyperband nee"),
    (
        cfg(metric=METRIC, early_terminate={"type": "hyperband", "max_iter": 27}),
        "early_terminate.s: required with max_iter",
    ),
    (cfg(metric=METRIC, early_terminate={**HYPERBAND, "eta": 1}), "early_terminate.eta: must be >"),
    (cfg(metric=METRIC, early_terminate={**HYPERBAND, "foo": 1}), "early_terminate.foo: unknown"),
    (cfg(controller={"type": "x"}), "controller.type: must be one of local, cloud"),
    (cfg(controller={}), "controller.type: required"),
    # spec §3.4 "Raises ValueError": here a ConfigError with the key path
    (param([1, 2]), "parameters.a: must be a mapping"),
    (param(3), "parameters.a: must be a mapping"),
    # what W&B gets silently wrong, or defers to a crash
    (cfg(metric={"name": "l", "goal": "maximise"}), "metric.goal: must be one of minimize, max"),
    (param({"min": 0.0, "max": 1.0}, method="grid"), "parameters.a: grid search cannot enumerate"),
    (
        cfg(method="grid", parameters={"m": {"parameters": {"lr": {"min": 0.0, "max": 1.0}}}}),
        "parameters.m.parameters.lr: grid search cannot enumerate 'uniform'",
    ),
    (param({"values": [1, 2], "probabilities": [0.5, 0.5]}, method="grid"), "parameters.a: grid"),
    (param({"distribution": "normal"}, method="grid"), "parameters.a: grid search"),
    (cfg(method="bayes"), "metric: required by bayes search"),
    (param({"value": 1}, method="bayes", metric=METRIC), "parameters: bayes search needs at least"),
    (
        cfg(parameters={"m": {"parameters": {"2x": {"value": 1}}}}),
        "parameters.m.parameters.2x: invalid parameter name",
    ),
    (
        cfg(parameters={"model": {"parameters": {"depth": {"values": []}}}}),
        "parameters.model.parameters.depth.values: 'values' must not be empty",
    ),
    (
        cfg(parameters={"m": {"parameters": {"n": {"parameters": {"x": {"min": 2, "max": 1}}}}}}),
        "parameters.m.parameters.n.parameters.x: min 2 is not less than max 1",
    ),
    (param({"parameters": {"x": {"value": 1}}, "distribution": "x"}), "a.distribution: a nested"),
    (param({"distribution": "int_uniform", "min": 0, "max": 1.5}), "parameters.a.max: must be an "),
    (param({"distribution": "q_log_uniform_values", "min": -1, "max": 1}), "parameters.a.min: "),
    (param({"distribution": "inv_log_uniform_values", "min": 0.0, "max": 1}), "parameters.a.min"),
    (param({"distribution": "beta", "a": -1}), "parameters.a.a: must be >= 0"),
    (param({"distribution": "q_beta", "b": -0.5}), "parameters.a.b: must be >= 0"),
    (param({"distribution": "uniform", "min": 0, "max": 1, "values": [1]}), "a.values: does not"),
    (param({"distribution": "normal", "min": 0}), "parameters.a.min: does not belong here"),
    (param({"min": 0, "max": 1, "q": 0.5}), "parameters.a.q: does not belong here"),
    (param({}), "parameters.a: empty parameter spec"),
    (param({"min": 0}), "parameters.a.max: required by distribution 'int_uniform'"),
    (param({"q": 2}), "parameters.a: cannot infer the distribution from q"),
    (param({"values": "abc"}), "parameters.a.values: must be a list"),
    (param({"values": [1, 2], "probabilities": [-0.5, 1.5]}), "a.probabilities[0]: must be a num"),
    (param({"min": math.nan, "max": 1.0}), "parameters.a.min: must be a finite number"),
    (param({"min": 0.0, "max": math.inf}), "parameters.a.max: must be a finite number"),
    (param({"distribution": "normal", "mu": "0"}), "parameters.a.mu: must be a finite number"),
    (cfg(parameters={1: {"values": [1]}}), "parameters.1: parameter names must be strings"),
    (cfg(parameters={"a\n": {"values": [1]}}), "invalid parameter name"),
    (cfg(parameters=[{"a": 1}]), "parameters: must be a mapping of parameter names"),
    (
        cfg(metric=METRIC, early_terminate={"type": "hyperband", "max_iter": 27, "s": 2.0}),
        "early_terminate.s: must be an integer >= 1 (W&B's hyperband crashes",
    ),
    (
        cfg(metric=METRIC, early_terminate={"type": "hyperband", "max_iter": 2, "s": 2}),
        "early_terminate.max_iter: 2 gives no band with eta 3",
    ),
    (cfg(metric=METRIC, early_terminate={"type": "hyperband", "min_iter": 0}), "e.min_iter: must"),
    (cfg(metric=METRIC, early_terminate={**HYPERBAND, "strict": "yes"}), "early_terminate.strict"),
    (cfg(metric=METRIC, early_terminate={"type": "asha"}), "early_terminate.min_iter: required"),
    (
        cfg(metric=METRIC, early_terminate={"type": "asha", "min_iter": 1, "strict": True}),
        "early_terminate.strict: unknown key",
    ),
    (
        cfg(metric=METRIC, early_terminate={"type": "asha", "min_iter": 4, "max_iter": 4}),
        "early_terminate.max_iter: must be greater than min_iter (4)",
    ),
    (cfg(metric=METRIC, early_terminate={"type": "asha", "min_iter": 2, "eta": 1}), "eta: must"),
    (cfg(early_terminate=HYPERBAND), "early_terminate: needs metric"),
    (cfg(early_terminate=[HYPERBAND], metric=METRIC), "early_terminate: must be a mapping"),
    (cfg(seed=-1), "seed: must be an integer >= 0"),
    (cfg(seed=True), "seed: must be an integer >= 0"),
    (cfg(seed=1.5), "seed: must be an integer"),
    (cfg(run_cap=5.1), "run_cap: must be an integer"),
    (cfg(run_cap="1"), "run_cap: must be an integer"),
    (cfg(run_cap=True), "run_cap: must be an integer"),
    (cfg(metric={"name": ""}), "metric.name: must be the non-empty name"),
    (cfg(metric={"name": "l", "impute": "median"}), "metric.impute: must be one of latest"),
    (cfg(metric={"name": "l", "impute_while_running": "true"}), "metric.impute_while_running"),
    (cfg(metric="loss"), "metric: must be a mapping"),
    (cfg(method="custom", metrics=[METRIC]), "metrics: must list at least 2 metrics"),
    (cfg(metrics=[METRIC, {"name": "acc"}]), "metrics: only method: custom"),
    (
        cfg(method="custom", metric=METRIC, metrics=[METRIC, {"name": "acc"}]),
        "metrics: cannot be used together with metric",
    ),
    (cfg(method="custom", metrics=[METRIC, {"goal": "maximize"}]), "metrics[1].name: required"),
    (cfg(scheduler={"num_workers": 0}), "scheduler.num_workers: must be an integer >= 1"),
    (cfg(scheduler={"num_workers": 2.0}), "scheduler.num_workers: must be an integer"),
    (cfg(scheduler={"priority": "urgent"}), "scheduler.priority: must be one of low, medium"),
    (cfg(scheduler={"settings": {"pruner": {"args": {}}}}), "scheduler.settings.pruner.type: req"),
    (cfg(scheduler={"settings": {"pruner": {"type": "P", "args": 3}}}), "pruner.args: must be a"),
    (cfg(scheduler={"settings": {"tuner": {}}}), "scheduler.settings.tuner: unknown key"),
    (cfg(scheduler={"resource_args": {"env": "WANDB_API_KEY"}}), "scheduler.resource_args.env"),
    (cfg(scheduler={"engine": "hyperopt"}), "scheduler.engine: must be one of optuna, ax, wandb"),
    (cfg(scheduler={"engine": "ax", "search_space": "s"}), "scheduler.source: required with"),
    (cfg(scheduler={"source": "s"}), "scheduler.engine: required with source"),
    (cfg(scheduler={"job": 3}), "scheduler.job: must be a string"),
    (cfg(scheduler=["num_workers"]), "scheduler: must be a mapping"),
    (
        cfg(scheduler={"job": OPTUNA_JOB}, early_terminate=HYPERBAND, metric=METRIC),
        "early_terminate: the optuna scheduler stops runs itself",
    ),
    (
        cfg(scheduler={"engine": "ax"}, controller={"type": "local"}),
        "controller.type: 'local' cannot drive the ax scheduler",
    ),
    (cfg(queue=3), "queue: must be a string"),
    (cfg(launch=["registry"]), "launch: must be a mapping"),
    (cfg(kind="job"), "kind: must be one of sweep"),
    (cfg(name=5), "name: must be a string"),
    (cfg(description=["x"]), "description: must be a string"),
    (cfg(entity=None), "entity: must be a string"),
    (cfg(job={"name": "x"}), "job: must be a string"),
    (cfg(image_uri=1), "image_uri: must be a string"),
    (cfg(apiVersion=1), "apiVersion: must be a string"),
    (cfg(controller="local"), "controller: must be a mapping"),
    ({1: "grid", **BASE}, "1: keys must be strings"),
]


def test_the_bad_table_is_large_and_distinct() -> None:
    assert len(BAD) >= 50
    assert len({repr(config) for config, _ in BAD}) == len(BAD)


@pytest.mark.parametrize(("config", "expected"), BAD, ids=[e for _, e in BAD])
def test_bad_config_is_refused_with_its_key_path(config: dict[str, Any], expected: str) -> None:
    found = problems(config)
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    "config",
    [None, [BASE], 3, 1.5, True, b"method: grid", object()],
    ids=lambda c: type(c).__name__ if type(c) is object else repr(c),
)
def test_non_mapping_config_is_a_config_error(config: Any) -> None:
    found = problems(config)
    assert "must be a dict, YAML text or a path" in found[0]


@pytest.mark.parametrize("text", ["- method: grid", "42", "grid\n", "''\n", "null\n", "# c\n"])
def test_yaml_that_is_not_a_mapping_is_a_config_error(text: str) -> None:
    assert "must be a mapping of keys" in problems(text)[0]


def test_every_problem_is_listed_in_one_error() -> None:
    config = {
        "method": "gird",
        "metric": {"name": "loss", "goal": "maximise", "nmae": "x"},
        "parameters": {
            "lr": {"min": 0.1, "max": 0.01},
            "model": {"parameters": {"depth": {"values": []}, "2d": {"value": 1}}},
        },
        "run_cap": 0,
        "early_terminate": {"type": "hyperband"},
        "scheduler": {"num_worker": 2},
    }
    found = problems(config)
    expected = [
        "method: must be one of grid, random, bayes, custom, got 'gird'; did you mean 'grid'?",
        "metric.goal: must be one of minimize, maximize, got 'maximise'; did you mean 'maximize'?",
        "metric.nmae: unknown key; did you mean 'name'?",
        "parameters.lr: min 0.1 is not less than max 0.01",
        "parameters.model.parameters.depth.values: 'values' must not be empty",
        "parameters.model.parameters.2d: invalid parameter name: start with a letter or _, then "
        "use only letters, digits, _, . and -",
        "run_cap: must be an integer >= 1, got 0",
        "early_terminate: hyperband needs min_iter, or max_iter and s",
        "scheduler.num_worker: unknown key; did you mean 'num_workers'?",
    ]
    assert sorted(found) == sorted(expected)


def test_error_message_shows_each_problem_on_its_own_line() -> None:
    with pytest.raises(ConfigError) as info:
        validate(param({"min": 2, "max": 1}, run_cap=-1))
    text = str(info.value)
    assert text.startswith("invalid sweep config (2 problems):")
    assert "\n  - parameters.a: min 2 is not less than max 1" in text
    assert "\n  - run_cap: must be an integer >= 1, got -1" in text


def test_explicit_int_uniform_with_float_bounds_reports_both_bounds() -> None:
    # W&B reports 2 violations here (tests/test_validation.py::test_minmax_type_inference)
    found = problems(param({"distribution": "int_uniform", "min": 0.0, "max": 1.0}))
    assert [p.split(":")[0] for p in found] == ["parameters.a.min", "parameters.a.max"]


DID_YOU_MEAN = [
    (cfg("parameters", paramters={"a": {"values": [1]}}), "paramters", "parameters"),
    (cfg(metric={"name": "l", "gaol": "minimize"}), "metric.gaol", "goal"),
    (param({"vlaues": [1, 2]}), "parameters.a.vlaues", "values"),
    (param({"distribution": "uniform", "min": 0, "mx": 1}), "parameters.a.mx", "max"),
    (
        param({"distribution": "log_uniform_value", "min": 1, "max": 2}),
        "a.distribution",
        "log_uniform_values",
    ),
    (
        cfg(metric=METRIC, early_terminate={"type": "hyperband", "min_itr": 3}),
        "min_itr",
        "min_iter",
    ),
    (cfg(metric=METRIC, early_terminate={"type": "hyperbnad", "min_iter": 3}), "type", "hyperband"),
    (cfg(scheduler={"num_worker": 2}), "scheduler.num_worker", "num_workers"),
    (cfg(scheduler={"setings": {}}), "scheduler.setings", "settings"),
    (cfg(method="bayse", metric=METRIC), "method", "bayes"),
    (cfg(metric={"name": "l", "impute": "wrost"}), "metric.impute", "worst"),
]


@pytest.mark.parametrize(("config", "path", "suggestion"), DID_YOU_MEAN)
def test_misspelt_key_gets_a_suggestion(config: dict[str, Any], path: str, suggestion: str) -> None:
    found = problems(config)
    assert any(path in p and f"did you mean {suggestion!r}?" in p for p in found), found


# ---------------------------------------------------------------- accepted


ACCEPTED = [
    # spec §3.4 "Accepted" (bayes without metric is refused on purpose, see BAD)
    cfg(run_cap=5),
    cfg(run_cap=5.0),
    cfg(kind="sweep"),
    cfg(method="custom"),
    cfg(parameters={"a.b-c": {"values": [1]}}),
    param({"min": 0, "max": 1.5}),
    param({"distribution": "constant", "value": 3}),
    param({"distribution": "categorical", "values": [1]}),
    param({"parameters": {"b": {"values": [1, 2]}}}),
    # the rest of the schema
    cfg(
        metric={"name": "acc", "goal": "maximize", "target": 0.99, "impute": "best"},
        name="n",
        description="d",
        program="train.py",
        command=["${env}", "${interpreter}", "${program}", "${args}", 3],
        controller={"type": "local", "extra": 1},
        entity="e",
        project="p",
        job="j",
        image_uri="i",
        apiVersion="v1",
        queue="q",
        launch={"registry": "r"},
        seed=0,
    ),
    cfg(method="custom", metrics=[METRIC, {"name": "acc", "goal": "maximize"}]),
    cfg(metric=METRIC, early_terminate={"type": "hyperband", "max_iter": 81, "s": 3, "eta": 3}),
    cfg(metric=METRIC, early_terminate={"type": "hyperband", "min_iter": 1, "strict": False}),
    cfg(metric=METRIC, early_terminate={"type": "asha", "min_iter": 1, "eta": 2.5, "max_iter": 9}),
    param({"distribution": "q_uniform", "min": 0, "max": 10}, method="grid"),
    param({"min": -52, "max": 10}, method="grid"),
    param({"parameters": {"b": {"values": [1]}, "c": {"value": 2}}}, method="grid"),
    param({"values": [1], "probabilities": [1]}, method="bayes", metric=METRIC),
    cfg(
        scheduler={
            "num_workers": 8,
            "job": "wandb/sweep-jobs/job-wandb-sweep-scheduler:latest",
            "resource": "local-container",
            "resource_args": {"env": ["WANDB_API_KEY"], "gpus": 1},
            "docker_image": "img",
            "priority": "high",
            "settings": {"pruner": {"type": "PercentilePruner", "args": {"percentile": 25.0}}},
        }
    ),
    cfg(method="custom", scheduler={"engine": "wandb", "source": "s", "optimizer": "o"}),
]


@pytest.mark.parametrize("config", ACCEPTED)
def test_accepted_config_validates_without_warnings(config: dict[str, Any]) -> None:
    out = quiet(config)
    assert out["method"] == config["method"]


def test_run_cap_float_is_normalised_to_int() -> None:
    out = quiet(cfg(run_cap=5.0))
    assert out["run_cap"] == 5
    assert type(out["run_cap"]) is int


INFERENCE = [
    ({"min": 0, "max": 10}, {"distribution": "int_uniform", "min": 0, "max": 10}),
    ({"min": 0, "max": 1.5}, {"distribution": "uniform", "min": 0, "max": 1.5}),
    ({"min": 0.0, "max": 1}, {"distribution": "uniform", "min": 0.0, "max": 1}),
    (
        {"distribution": "uniform", "min": 0, "max": 1},
        {"distribution": "uniform", "min": 0, "max": 1},
    ),
    ({"values": [1, "a", None]}, {"distribution": "categorical", "values": [1, "a", None]}),
    (
        {"values": ["x", "y"], "probabilities": [0.25, 0.75]},
        {
            "distribution": "categorical_w_probabilities",
            "values": ["x", "y"],
            "probabilities": [0.25, 0.75],
        },
    ),
    ({"value": 3}, {"distribution": "constant", "value": 3}),
    ({"value": None}, {"distribution": "constant", "value": None}),
    ({"value": [1, 2]}, {"distribution": "constant", "value": [1, 2]}),
    ({"value": {"x": 1}}, {"distribution": "constant", "value": {"x": 1}}),
    (
        {"distribution": "q_uniform", "min": 0, "max": 10},
        {"distribution": "q_uniform", "min": 0, "max": 10, "q": 1.0},
    ),
    (
        {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2},
        {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2},
    ),
    ({"distribution": "normal"}, {"distribution": "normal", "mu": 0.0, "sigma": 1.0}),
    ({"distribution": "q_normal"}, {"distribution": "q_normal", "q": 1.0, "mu": 0.0, "sigma": 1.0}),
    (
        {"distribution": "log_normal", "mu": 1},
        {"distribution": "log_normal", "mu": 1, "sigma": 1.0},
    ),
    (
        {"distribution": "q_log_normal"},
        {"distribution": "q_log_normal", "q": 1.0, "mu": 0.0, "sigma": 1.0},
    ),
    ({"distribution": "beta"}, {"distribution": "beta", "a": 1, "b": 1}),
    ({"distribution": "q_beta"}, {"distribution": "q_beta", "a": 1, "b": 1, "q": 1.0}),
    (
        {"distribution": "log_uniform_values", "min": 1e-5, "max": 0.1},
        {"distribution": "log_uniform_values", "min": 1e-5, "max": 0.1},
    ),
    (
        {"distribution": "q_log_uniform_values", "min": 1, "max": 100},
        {"distribution": "q_log_uniform_values", "min": 1, "max": 100, "q": 1.0},
    ),
    (
        {"distribution": "inv_log_uniform_values", "min": 0.5, "max": 2},
        {"distribution": "inv_log_uniform_values", "min": 0.5, "max": 2},
    ),
    ({"values": (1, 2)}, {"distribution": "categorical", "values": [1, 2]}),
]


@pytest.mark.parametrize(("spec", "leaf"), INFERENCE)
def test_distribution_is_inferred_and_defaults_filled(
    spec: dict[str, Any], leaf: dict[str, Any]
) -> None:
    out = quiet(param(spec))["parameters"]["a"]
    assert out == leaf
    # W&B's default q is the float 1.0 (an omitted q gives float values); int bounds stay ints
    assert [type(out[k]) for k in leaf] == [type(v) for v in leaf.values()]


def test_nested_blocks_are_filled_recursively_and_stay_nested() -> None:
    config = cfg(
        parameters={
            "opt": {"parameters": {"lr": {"min": 0.0, "max": 1.0}, "beta": {"value": 0.9}}},
            "model": {"parameters": {"arch": {"parameters": {"depth": {"min": 1, "max": 4}}}}},
            "c": {"values": [1]},
        }
    )
    assert quiet(config)["parameters"] == {
        "opt": {
            "parameters": {
                "lr": {"distribution": "uniform", "min": 0.0, "max": 1.0},
                "beta": {"distribution": "constant", "value": 0.9},
            }
        },
        "model": {
            "parameters": {
                "arch": {
                    "parameters": {"depth": {"distribution": "int_uniform", "min": 1, "max": 4}}
                }
            }
        },
        "c": {"distribution": "categorical", "values": [1]},
    }


def test_same_name_at_different_levels_is_allowed() -> None:
    out = quiet(cfg(parameters={"a": {"parameters": {"a": {"value": 1}}}, "b": {"value": 2}}))
    assert out["parameters"]["a"]["parameters"]["a"]["value"] == 1


def test_defaults_are_filled_for_metric_and_hyperband() -> None:
    out = quiet(cfg(metric={"name": "loss"}, early_terminate={"type": "hyperband", "min_iter": 3}))
    assert out["metric"] == {
        "name": "loss",
        "goal": "minimize",
        "impute": "worst",
        "impute_while_running": "false",
    }
    assert out["early_terminate"] == {"type": "hyperband", "min_iter": 3, "eta": 3, "strict": True}


def test_given_values_win_over_defaults() -> None:
    config = cfg(
        metric={
            "name": "acc",
            "goal": "maximize",
            "impute": "best",
            "impute_while_running": "latest",
        },
        early_terminate={"type": "hyperband", "min_iter": 2, "eta": 2, "strict": False},
    )
    out = quiet(config)
    assert out["metric"] == config["metric"]
    assert out["early_terminate"] == config["early_terminate"]


def test_asha_gets_its_eta_default() -> None:
    out = quiet(cfg(metric=METRIC, early_terminate={"type": "asha", "min_iter": 1}))
    assert out["early_terminate"] == {"type": "asha", "min_iter": 1, "eta": 3}


def test_yaml_false_for_impute_while_running_means_the_string_false() -> None:
    out = quiet(
        "method: random\nmetric: {name: l, impute_while_running: false}\n"
        "parameters: {a: {values: [1]}}\n"
    )
    assert out["metric"]["impute_while_running"] == "false"


def test_input_is_never_mutated_and_output_shares_nothing() -> None:
    config = cfg(
        metric={"name": "l"},
        early_terminate={"type": "hyperband", "min_iter": 3},
        parameters={
            "a": {"min": 0, "max": 1},
            "b": {"value": {"k": [1]}},
            "n": {"parameters": {"x": {"values": [[1]]}}},
        },
    )
    before = copy.deepcopy(config)
    out = quiet(config)
    assert config == before
    out["parameters"]["b"]["value"]["k"].append(2)
    out["parameters"]["n"]["parameters"]["x"]["values"][0].append(2)
    assert config == before


def test_yaml_text_path_and_dict_give_the_same_result(tmp_path: Path) -> None:
    text = (
        "method: bayes\n"
        "metric: {name: val_loss, goal: minimize}\n"
        "parameters:\n"
        "  lr: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}\n"
        "  layers: {values: [1, 2, 3]}\n"
    )
    as_dict = {
        "method": "bayes",
        "metric": {"name": "val_loss", "goal": "minimize"},
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 0.1},
            "layers": {"values": [1, 2, 3]},
        },
    }
    yaml_file, yml_file = tmp_path / "sweep.yaml", tmp_path / "sweep.yml"
    yaml_file.write_text(text)
    yml_file.write_text(text)
    expected = quiet(as_dict)
    assert expected["parameters"]["lr"]["min"] == 1e-5
    for source in (text, yaml_file, str(yaml_file), yml_file, str(yml_file)):
        assert quiet(source) == expected


def test_a_missing_yaml_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    for source in (missing, str(missing)):
        (problem,) = problems(source)
        assert str(missing) in problem and "no such file" in problem


def test_broken_yaml_reports_line_and_column() -> None:
    (problem,) = problems("method: grid\nparameters:\n  a: {values: [1, 2}\n")
    assert "line 3, column 20" in problem  # the stray "}"


def test_python_object_tags_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (problem,) = problems(f'!!python/object/apply:os.system ["touch {marker}"]\n')
    assert "python/object/apply:os.system" in problem and "line 1, column 1" in problem
    assert not marker.exists()


# ---------------------------------------------------------------- warnings


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"distribution": "log_uniform", "min": math.log(1e-5), "max": math.log(0.1)},
            "parameters.a: 'log_uniform' takes natural-log exponents as min/max and is "
            "deprecated; use 'log_uniform_values' with min: 1e-05, max: 0.1",
        ),
        (
            {"distribution": "q_log_uniform", "min": 0, "max": math.log(100), "q": 2},
            "use 'q_log_uniform_values' with min: 1, max: 100, q: 2",
        ),
        (
            {"distribution": "inv_log_uniform", "min": math.log(10), "max": math.log(1000)},
            "use 'inv_log_uniform_values' with min: 0.001, max: 0.1",
        ),
        (  # the W&B Launch docs' own example: bounds that were clearly meant as values
            {"distribution": "log_uniform", "min": 1e-5, "max": 1e-3},
            "as written it samples between 1.00001 and 1.001. If 1e-05 and 0.001 are the values "
            "you meant, use 'log_uniform_values' with min: 1e-05, max: 0.001",
        ),
    ],
)
def test_v1_log_distributions_are_accepted_with_a_warning(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.warns(ConfigWarning) as record:
        out = validate(param(spec))
    assert out["parameters"]["a"]["distribution"] == spec["distribution"]
    assert any(message in str(w.message) for w in record), [str(w.message) for w in record]


@pytest.mark.parametrize(
    ("early_terminate", "message"),
    [
        (
            {"type": "hyperband", "min_iter": 3, "s": 2},
            "early_terminate.s: ignored without max_iter",
        ),
        (
            {"type": "hyperband", "min_iter": 3, "max_iter": 27, "s": 2},
            "early_terminate.min_iter: ignored",
        ),
    ],
)
def test_hyperband_keys_that_do_nothing_warn(early_terminate: dict[str, Any], message: str) -> None:
    with pytest.warns(ConfigWarning, match=message):
        validate(cfg(metric=METRIC, early_terminate=early_terminate))


def test_no_warning_is_emitted_for_config_without_v1_distributions() -> None:
    quiet(param({"distribution": "log_uniform_values", "min": 1e-5, "max": 1}))


# ---------------------------------------------------------------- Launch and scheduler


def test_optuna_scheduler_job_without_method_becomes_custom() -> None:
    out = quiet(
        {"scheduler": {"job": OPTUNA_JOB, "num_workers": 2}, "parameters": BASE["parameters"]}
    )
    assert out["method"] == "custom"


def test_optuna_engine_without_method_becomes_custom() -> None:
    out = quiet({"scheduler": {"engine": "optuna"}, "parameters": BASE["parameters"]})
    assert out["method"] == "custom"


def test_a_method_given_next_to_the_optuna_scheduler_is_kept() -> None:
    assert quiet(cfg(scheduler={"job": OPTUNA_JOB}))["method"] == "random"


def test_parameters_may_be_omitted_with_a_search_space() -> None:
    out = quiet(
        {
            "method": "custom",
            "scheduler": {"engine": "optuna", "source": "s", "search_space": "space.py"},
        }
    )
    assert "parameters" not in out


def test_an_empty_search_space_does_not_replace_parameters() -> None:
    found = problems(
        {"method": "custom", "scheduler": {"engine": "optuna", "source": "s", "search_space": ""}}
    )
    assert any(p.startswith("parameters: required") for p in found)


def test_launch_keys_are_kept_in_the_normalised_config() -> None:
    config = cfg(
        queue="gpu-a100-queue",
        launch={"registry": "r"},
        job="my-project/train:v1",
        scheduler={"num_workers": 4, "resource_args": {"env": ("A", "B")}},
    )
    out = quiet(config)
    assert out["queue"] == "gpu-a100-queue"
    assert out["launch"] == {"registry": "r"}
    assert out["scheduler"] == {"num_workers": 4, "resource_args": {"env": ["A", "B"]}}


def test_seed_is_kept() -> None:
    assert quiet(cfg(seed=42))["seed"] == 42


# ---------------------------------------------------------------- constants


def test_distribution_table_matches_the_spec() -> None:
    assert set(DISTRIBUTIONS) == {
        "constant", "categorical", "categorical_w_probabilities", "int_uniform", "uniform",
        "q_uniform", "log_uniform", "log_uniform_values", "q_log_uniform", "q_log_uniform_values",
        "inv_log_uniform", "inv_log_uniform_values", "normal", "q_normal", "log_normal",
        "q_log_normal", "beta", "q_beta",
    }  # fmt: skip
    assert DISTRIBUTIONS["q_beta"].required == ()
    assert dict(DISTRIBUTIONS["q_beta"].defaults) == {"a": 1, "b": 1, "q": 1.0}
    assert DISTRIBUTIONS["categorical_w_probabilities"].required == ("values", "probabilities")
    assert set(GRID_DISTRIBUTIONS) == {"constant", "categorical", "int_uniform", "q_uniform"}
    assert set(V1_LOG_DISTRIBUTIONS) == {"log_uniform", "q_log_uniform", "inv_log_uniform"}


def test_top_level_validate_is_the_config_one() -> None:
    assert nbsweep.validate is validate
    assert issubclass(ConfigError, ValueError)


# ---------------------------------------------------------------- W&B Launch examples

SEED_CONFIGS = Path(__file__).parent.parent / "data" / "seed_configs"
GRID_OF_UNIFORM = "parameters.learning_rate: grid search cannot enumerate 'uniform'"
# Examples from the seeds that nbsweep refuses; each file's header says why.
SEEDS_REFUSED = {
    "000_wandb_scheduler_job.yaml": [GRID_OF_UNIFORM],
    "001_custom_scheduler_job.yaml": [GRID_OF_UNIFORM],
    "001_multi_queue_routing.yaml": ["method: required"],
    "001_shared_queue_priority.yaml": [
        "job_overrides: unknown key",
        "method: required",
        "parameters: required",
    ],
}
SEED_FILES = sorted(SEED_CONFIGS.glob("*.yaml"))


def test_every_seed_example_is_here() -> None:
    assert len(SEED_FILES) == 14
    assert set(SEEDS_REFUSED) <= {path.name for path in SEED_FILES}
    for path in SEED_FILES:
        assert path.read_text().startswith("# Sweep config example from shared/seeds/0")


SEEDS_VALID = [p for p in SEED_FILES if p.name not in SEEDS_REFUSED]


@pytest.mark.parametrize("path", SEEDS_VALID, ids=[p.name for p in SEEDS_VALID])
def test_seed_example_validates(path: Path) -> None:
    with warnings.catch_warnings():
        # several examples use W&B's deprecated log_uniform, which warns
        warnings.simplefilter("ignore", ConfigWarning)
        out = validate(path)
    assert out["method"] in ("grid", "random", "bayes", "custom")
    assert out["parameters"]


@pytest.mark.parametrize(("name", "expected"), SEEDS_REFUSED.items())
def test_seed_example_is_refused_for_its_stated_reason(name: str, expected: list[str]) -> None:
    found = problems(SEED_CONFIGS / name)
    assert len(found) == len(expected)
    for problem in expected:
        assert any(p.startswith(problem) for p in found), found


# ---------------------------------------------------------------- hostile shapes


def test_a_parameter_block_that_contains_itself_is_refused() -> None:
    block: dict[str, Any] = {}
    block["a"] = {"parameters": block}
    (problem,) = problems({"method": "random", "parameters": block})
    assert problem.startswith("parameters.a.parameters: contains itself")


def test_yaml_aliases_cannot_blow_up_the_walk() -> None:
    # each level names the previous one twice: 2**15 leaves if walked naively (deeper, the
    # YAML loader's cap on expanded values refuses it first: tests/config/test_bounds.py)
    text = "method: random\nparameters:\n  p0: &p0 {parameters: {v: {value: 1}}}\n"
    for i in range(1, 16):
        text += f"  p{i}: &p{i} {{parameters: {{a: *p{i - 1}, b: *p{i - 1}}}}}\n"
    (problem,) = problems(text)
    assert problem.endswith("more than 10000 parameter specs in all")


def test_a_value_that_cannot_be_copied_is_a_config_error() -> None:
    class Uncopyable:
        def __deepcopy__(self, memo: dict[int, Any]) -> Any:
            raise TypeError("cannot pickle 'Uncopyable'")

    (problem,) = problems(param({"value": Uncopyable()}))
    assert problem == "the config holds a value that cannot be copied (cannot pickle 'Uncopyable')"


def test_bounds_beyond_the_float_range_are_refused() -> None:
    (problem,) = problems(param({"min": -(10**400), "max": 0.5}))
    assert problem.startswith("parameters.a.min: must be a finite number")


@pytest.mark.parametrize("config", ACCEPTED)
def test_validating_a_normalised_config_changes_nothing(config: dict[str, Any]) -> None:
    out = quiet(config)
    assert quiet(out) == out
